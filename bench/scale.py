"""Scale: every coin CoinGecko lists, in several quote currencies, a poll a minute, through the stream.

Each part runs as a process of its own, as in production, so each is measured apart:

- the replay (``python -m cryptopipe.replay --coins N --plan analyst``): a synthetic market of
  ``coins`` coins (:meth:`cryptopipe.replay.Market.synthetic`) at the Analyst plan's 500 calls a
  minute, a frame a minute (CoinGecko's cache);
- the producer (``python -m producer``, ``TOP_N=all``, ``VS_CURRENCIES=usd,eur,btc``): one
  request a page and currency, every currency of a poll landed as one object
  (docs/PRODUCER.md, "Quote currencies"), budgeted the plan's 500 calls a minute;
- the stream (``python -m jobs.stream``, Spark ``local[*]``, DuckDB, a 1 s trigger).

For ``minutes`` after the first rows are queryable it watches the DuckDB file as a reader
does (every 0.5 s, :func:`bench.freshness.watch_polls`), then stops the producer, lets the
stream load what it landed, and stops it. Reports calls a minute and the credits a month
they project, landing bytes a poll, rows a second through the stream, freshness from a
response to queryable rows with where the time goes (the poll's fetch, landing, the stream's
batches), the JVM's, the producer's and the replay's peak memory, and whether the warehouse holds every
distinct tick landed exactly once. Fails (exit 1) if not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, WORK, BenchFailure, LoadSampler, MemorySampler, write_result
from bench.freshness import _landed_keys, _poll_ids, _stats, watch_polls
from core.coingecko_plans import ALL, MONTH_SECONDS, PLANS
from core.joboptions import job_argv
from core.layout import LocalLayout

PLAN = "analyst"
#: The credits the replay's account and the producer are given: the load needs far more than
#: any documented plan has (the report says how much), and the bench measures the load, not the plan.
BENCH_CREDITS = 100_000_000
TRIGGER_SECONDS = 1.0
INTERVAL_SECONDS = 60.0
#: Freshness and memory goals at this load (issue #27).
TARGET_P95_SECONDS = 5.0
TARGET_JVM_MIB = 1024
_BATCH = re.compile(r"batch (\d+): (\d+) records in \((\d+) files\).*?; ([\d.]+) s \(stage ([\d.]+) s, load ([\d.]+) s\)")


def _start(command: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})}, start_new_session=True)


def _stop(process: subprocess.Popen, grace: float = 60) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def _replay(root: Path, coins: int) -> tuple[subprocess.Popen, str]:
    log = root / "replay.log"
    process = _start([sys.executable, "-m", "cryptopipe.replay", "--port", "0", "--coins", str(coins),
                      "--plan", PLAN, "--monthly-credits", str(BENCH_CREDITS),
                      "--frame-seconds", str(INTERVAL_SECONDS)], log)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        match = re.search(r" at (http://\S+) ", log.read_text())
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            raise BenchFailure(f"the replay exited ({process.returncode}); see {log}")
        time.sleep(0.2)
    raise BenchFailure(f"the replay did not start; see {log}")


def producer_env(layout: LocalLayout, url: str, currencies: tuple[str, ...]) -> dict[str, str]:
    """The producer's settings: every coin in every one of ``currencies``, the plan's calls a minute."""
    settings = {"base_url": url, "api_plan": PLAN, "api_key": "bench", "monthly_credits": BENCH_CREDITS,
                "top_n": ALL, "vs_currencies": ",".join(currencies),
                "requests_per_minute": PLANS[PLAN].calls_per_minute,
                "interval_seconds": INTERVAL_SECONDS, "landing_uri": layout.landing,
                "spool_dir": layout.root / "spool", "backfill_after_intervals": 0}
    return {f"CRYPTOPIPE__PRODUCER__{name.upper()}": str(value) for name, value in settings.items()}


def poll_events(log: Path) -> list[dict[str, Any]]:
    """The ``poll`` events of the producer's JSON log."""
    events = []
    for line in log.read_text().splitlines():
        if line.startswith("{") and '"event":"poll"' in line:
            events.append(json.loads(line))
    return events


def batch_lines(log: Path) -> list[dict[str, float]]:
    """The stream's per-batch lines: records, files, seconds, stage and load seconds."""
    out = []
    for match in _BATCH.finditer(log.read_text()):
        batch, records, files, seconds, stage, load = match.groups()
        out.append({"batch": int(batch), "records": int(records), "files": int(files), "seconds": float(seconds),
                    "stage_seconds": float(stage), "load_seconds": float(load)})
    return out


def monthly_projection(calls_per_minute: float) -> dict[str, Any]:
    """Credits a 31-day month of this load needs (plus the producer's hourly ``/key`` check),
    against the plan's."""
    checks = MONTH_SECONDS // 3600
    needed = round(calls_per_minute * MONTH_SECONDS / 60) + checks
    plan_credits = PLANS[PLAN].monthly_credits
    return {"credits_a_month": needed, "plan": PLAN, "plan_credits": plan_credits,
            "times_the_plan": round(needed / plan_credits, 1),
            "largest_documented": max(p.monthly_credits or 0 for p in PLANS.values())}


def account_calls(url: str) -> int:
    """Every call the producer made, as the replay's account counted them (``/key``'s
    ``current_total_monthly_calls``, less this question): what CoinGecko would bill, retries
    and the producer's own ``/key`` checks included."""
    import httpx

    usage = httpx.get(f"{url}/key", headers={"x-cg-pro-api-key": "bench"}, timeout=30).json()
    return usage["current_total_monthly_calls"] - 1


def _wait_caught_up(layout: LocalLayout, landed_polls: set[str], stream: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stream.poll() is not None:
            raise BenchFailure(f"the stream exited ({stream.returncode})")
        if landed_polls <= set(_poll_ids(layout.warehouse) or ()):
            return
        time.sleep(1)
    raise BenchFailure(f"the stream did not load every landed poll within {seconds:.0f} s")


def main(minutes: float = 5.0, coins: int = 18_000, currencies: tuple[str, ...] = ("usd", "eur", "btc"),
         name: str = "scale") -> dict[str, Any]:
    started = time.monotonic()
    root = WORK / name
    shutil.rmtree(root, ignore_errors=True)
    layout = LocalLayout(root)
    for folder in (layout.landing, layout.archive, layout.staging):
        folder.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen] = []
    with LoadSampler() as load:
        try:
            replay, url = _replay(root, coins)
            processes.append(replay)
            stream = _start([sys.executable, "-m", "jobs.stream",
                             *job_argv({**layout.job_places(), "trigger_seconds": TRIGGER_SECONDS})],
                            root / "stream.log")
            processes.append(stream)
            producer = _start([sys.executable, "-m", "producer"], root / "producer.log",
                              producer_env(layout, url, currencies))
            processes.append(producer)
            producing_since = time.monotonic()

            def running() -> None:
                for process in processes:
                    if process.poll() is not None:
                        raise BenchFailure(f"{process.args[2]} exited early ({process.returncode}); logs in {root}")

            with (MemorySampler(root=stream.pid) as jvm, MemorySampler(root=replay.pid) as replay_memory,
                  MemorySampler(root=producer.pid) as producer_memory):
                seen, first_rows_after = watch_polls(lambda: _poll_ids(layout.warehouse) or (), minutes,
                                                     "scale", check=running)
            producing_seconds = time.monotonic() - producing_since
            _stop(producer)
            calls = account_calls(url)
            landed = _landed_keys(layout.root)
            _wait_caught_up(layout, set(landed), stream, 180)
            _stop(stream)
        finally:
            for process in reversed(processes):
                _stop(process)
    result = _measure(layout, root, currencies, coins, minutes, seen, first_rows_after, producing_seconds, calls,
                      jvm.peaks, producer_memory.peaks, replay_memory.peaks)
    document = write_result(name, result, load, started)
    if result["problems"]:
        raise BenchFailure("; ".join(result["problems"]))
    shutil.rmtree(root, ignore_errors=True)
    return document


def _measure(layout: LocalLayout, root: Path, currencies: tuple[str, ...], coins: int, minutes: float,
             seen: dict, first_rows_after: float, producing_seconds: float, calls: int, jvm: dict[str, float],
             producer: dict[str, float], replay: dict[str, float]) -> dict[str, Any]:
    from jobs import open_reader

    with open_reader(layout.warehouse) as con:
        polls = con.execute(
            """SELECT t.poll_id, min(t.ingested_at), max(t.ingested_at), max(l.loaded_at), count(*),
                      count(DISTINCT t._load_id)
               FROM market_ticks t JOIN _loads l ON t._load_id = l.load_id GROUP BY t.poll_id"""
        ).fetchall()
        dupes = con.execute(
            "SELECT count(*) - count(DISTINCT (coin_id, vs_currency, last_updated)) FROM market_ticks"
        ).fetchone()[0]
        warehouse_rows = con.execute("SELECT count(*) FROM market_ticks").fetchone()[0]
    mtimes: dict[str, float] = {}
    landed = _landed_keys(layout.root, mtimes)
    sizes = {path.stem: path.stat().st_size for folder in (layout.landing, layout.archive)
             for path in folder.rglob("*.ndjson") if not path.name.startswith(".")}
    events = poll_events(root / "producer.log")
    first_poll = min((e["poll_id"] for e in events), default=None)
    fresh, last_fresh, fetch, land, stream_part, visible = [], [], [], [], [], []
    for poll_id, first_in, last_in, loaded, _rows, _loads in polls:
        if poll_id == first_poll or poll_id not in seen:
            continue  # the first poll waited for Spark's start: freshness is steady state
        fresh.append((seen[poll_id] - first_in).total_seconds())
        last_fresh.append((seen[poll_id] - last_in).total_seconds())
        fetch.append((last_in - first_in).total_seconds())
        if poll_id in mtimes:
            land.append(mtimes[poll_id] - last_in.timestamp())
            stream_part.append(loaded.timestamp() - mtimes[poll_id])
        visible.append((seen[poll_id] - loaded).total_seconds())
    batches = batch_lines(root / "stream.log")
    busy = sum(b["seconds"] for b in batches)
    expected = len({key for keys in landed.values() for key in keys})
    problems = []
    if dupes:
        problems.append(f"{dupes} duplicate ticks in the warehouse")
    if warehouse_rows != expected:
        problems.append(f"warehouse holds {warehouse_rows} ticks; the producer landed {expected} distinct ticks")
    missing = set(landed) - {p[0] for p in polls}
    if missing:
        problems.append(f"{len(missing)} landed polls not in the warehouse")
    if any(p[5] != 1 for p in polls):
        problems.append("a poll's rows were split over loads")
    if len(fresh) < minutes - 1:
        problems.append(f"only {len(fresh)} polls measured in {minutes} minutes")
    missing_currencies = set(currencies) - {c for (_, c, _) in (k for keys in landed.values() for k in keys)}
    if missing_currencies:
        problems.append(f"no ticks landed in {', '.join(sorted(missing_currencies))}")
    # A poll a minute: the calls of a poll are the calls a minute (the run's wall time would
    # also count the minute before the first poll's rows and a last partial one).
    calls_per_minute = calls / max(len(events), 1) * 60 / INTERVAL_SECONDS
    rows_landed = sum(len(keys) for keys in landed.values())
    result = {
        "minutes": minutes,
        "coins": coins,
        "currencies": list(currencies),
        "top_n": ALL,
        "interval_seconds": INTERVAL_SECONDS,
        "trigger_seconds": TRIGGER_SECONDS,
        "plan": PLAN,
        "rate_limit_per_minute": PLANS[PLAN].calls_per_minute,
        "calls": calls,
        "producing_seconds": round(producing_seconds, 1),
        "calls_per_minute": round(calls_per_minute, 1),
        "pages_per_poll": round(statistics_mean([e["pages"] for e in events]), 1),
        "retried_attempts": sum(e["attempts"] - e["pages"] for e in events),
        "polls": len(events),
        "polls_not_ok": sum(e["status"] != "ok" for e in events),
        "duplicates_within_polls": sum(e.get("duplicates", 0) for e in events),
        "rejected_per_poll": round(statistics_mean([e["rejected"] for e in events]), 1),
        "fetch_ms": _stats([e["fetch_ms"] / 1000 for e in events]),
        "monthly": monthly_projection(calls_per_minute),
        "landing_bytes_per_poll": round(statistics_mean(list(sizes.values()))),
        "landing_bytes_per_minute": round(sum(sizes.values()) / (producing_seconds / 60)),
        "rows_per_poll": round(rows_landed / max(len(landed), 1)),
        "rows_landed": rows_landed,
        "distinct_ticks_landed": expected,
        "rows_in_warehouse": warehouse_rows,
        "duplicate_ticks": dupes,
        "stream_rows_per_second": round(sum(b["records"] for b in batches) / (producing_seconds + 1e-9), 1),
        "stream_rows_per_busy_second": round(sum(b["records"] for b in batches) / busy, 1) if busy else None,
        "stream_busy_share": round(busy / producing_seconds, 2),
        "batches": len(batches),
        "batch_seconds": _stats([b["seconds"] for b in batches]),
        "batch_stage_seconds": _stats([b["stage_seconds"] for b in batches]),
        "batch_load_seconds": _stats([b["load_seconds"] for b in batches]),
        "batch_other_seconds": _stats([b["seconds"] - b["stage_seconds"] - b["load_seconds"] for b in batches]),
        "first_rows_queryable_seconds": round(first_rows_after, 1),
        "freshness_seconds": _stats(fresh),
        "freshness_from_last_page_seconds": _stats(last_fresh),
        "stages_seconds": {"fetch: first to last response": _stats(fetch),
                           "validate, spool, land": _stats(land),
                           "stream: landed to loaded": _stats(stream_part),
                           "loaded to seen by a reader": _stats(visible)},
        "memory_mib": {"jvm": jvm.get("jvm"), "stream_driver": jvm.get("python_driver"),
                       "producer": producer.get("python_driver"), "replay": replay.get("python_driver")},
        "target_p95_seconds": TARGET_P95_SECONDS,
        "target_jvm_mib": TARGET_JVM_MIB,
        "problems": problems,
    }
    result["freshness_target_met"] = result["freshness_seconds"]["p95"] <= TARGET_P95_SECONDS
    result["jvm_target_met"] = (jvm.get("jvm") or 0) <= TARGET_JVM_MIB
    return result


def statistics_mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")
