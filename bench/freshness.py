"""Freshness: from a poll's response (``ingested_at``) to its rows being queryable.

Runs ``cryptopipe up --source replay --no-dashboard`` (the README's local pipeline,
default 1 s trigger, a replay poll every 10 s) as a child process for ``minutes``
after its first rows appear, and watches its DuckDB file from outside, as a
dashboard would: every 0.5 s a short read-only connection
(``jobs.loaders.duckdb.open_reader``) lists the poll ids present. A poll's freshness
is the moment its id was first seen minus its rows' earliest ``ingested_at`` (an
upper bound: the watcher's 0.5 s period is included). The ``_loads`` ledger's
``loaded_at`` (the load transaction's start) gives a second figure without
the watcher's granularity.

Also: seconds from starting ``cryptopipe up`` to the first queryable rows (issue 2
promises under 60 s), and peak memory of its Python process and JVM.

Fails unless every landed row of the measured polls is in the warehouse once.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path
from collections.abc import Callable, Iterable
from typing import Any

from bench.common import REPO, WORK, BenchFailure, LoadSampler, MemorySampler, percentile, write_result

WATCH_PERIOD = 0.5
#: How long the pipeline may take to make its first rows queryable.
FIRST_ROWS_WITHIN_SECONDS = 300


def watch_polls(
    poll_ids: Callable[[], Iterable[str]], minutes: float, what: str, *, check: Callable[[], None]
) -> tuple[dict[str, datetime], float]:
    """When each poll id first became queryable, watched from ``what``'s start until ``minutes``
    after its first rows; and how long those first rows took. ``check`` raises if the pipeline died."""
    seen: dict[str, datetime] = {}
    first_rows_after = None
    started = time.monotonic()
    end = None
    while end is None or time.monotonic() < end:
        check()
        now = datetime.now(timezone.utc)
        for poll_id in poll_ids():
            seen.setdefault(poll_id, now)
        if seen and first_rows_after is None:
            first_rows_after = time.monotonic() - started
            end = time.monotonic() + minutes * 60
            print(f"{what}: first rows queryable {first_rows_after:.1f} s after start", flush=True)
        if end is None and time.monotonic() - started > FIRST_ROWS_WITHIN_SECONDS:
            raise BenchFailure(f"no rows queryable {FIRST_ROWS_WITHIN_SECONDS} s after starting {what}")
        time.sleep(WATCH_PERIOD)
    return seen, first_rows_after


def _poll_ids(warehouse: Path) -> dict[str, datetime] | None:
    from jobs import WarehouseError, open_reader

    if not warehouse.exists():
        return None
    try:
        with open_reader(warehouse, timeout=5.0) as con:
            return dict(con.execute("SELECT poll_id, min(ingested_at) FROM market_ticks GROUP BY poll_id").fetchall())
    except WarehouseError:
        return None
    except Exception as error:  # noqa: BLE001 - tables not created yet
        if "does not exist" in str(error):
            return None
        raise


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 0.5), 2),
        "p95": round(percentile(values, 0.95), 2),
        "max": round(max(values), 2) if values else float("nan"),
    }


def main(minutes: float = 5.0) -> dict[str, Any]:
    started_mono = time.monotonic()
    root = WORK / "freshness"
    shutil.rmtree(root, ignore_errors=True)
    warehouse = root / "warehouse.duckdb"
    command = [str(REPO / ".venv/bin/cryptopipe"), "up", "--source", "replay", "--data-dir", str(root), "--no-dashboard"]
    with LoadSampler() as load:
        log = (WORK / "freshness-up.log").open("w")
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)

        def running() -> None:
            if proc.poll() is not None:
                raise BenchFailure(f"cryptopipe up exited early ({proc.returncode}); see {log.name}")

        try:
            with MemorySampler(root=proc.pid) as memory:
                seen, first_rows_after = watch_polls(lambda: _poll_ids(warehouse) or (), minutes, "cryptopipe up",
                                                     check=running)
                memory.sample()
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.terminate()
                proc.wait(30)
            log.close()
    from jobs import open_reader

    with open_reader(warehouse) as con:
        polls = con.execute(
            """SELECT t.poll_id, min(t.ingested_at), max(l.loaded_at), count(*), count(DISTINCT t._load_id)
               FROM market_ticks t JOIN _loads l ON t._load_id = l.load_id GROUP BY t.poll_id"""
        ).fetchall()
        dupes = con.execute(
            "SELECT count(*) - count(DISTINCT (coin_id, vs_currency, last_updated)) FROM market_ticks"
        ).fetchone()[0]
    mtimes: dict[str, float] = {}
    landed_keys = _landed_keys(root, mtimes)
    # The first poll's rows waited for Spark's start-up: freshness is steady state.
    first_poll = min(polls, key=lambda p: p[1])[0] if polls else None
    observed, ledger, to_landed, landed_to_loaded = [], [], [], []
    for poll_id, ingested, loaded, _rows, loads in polls:
        if poll_id == first_poll or poll_id not in seen:
            continue
        observed.append((seen[poll_id] - ingested).total_seconds())
        ledger.append((loaded - ingested).total_seconds())
        if poll_id in mtimes:
            to_landed.append(mtimes[poll_id] - ingested.timestamp())
            landed_to_loaded.append(loaded.timestamp() - mtimes[poll_id])
    problems = []
    if dupes:
        problems.append(f"{dupes} duplicate ticks in the warehouse")
    if any(p[4] != 1 for p in polls):
        problems.append("a poll's rows were split over loads")
    warehouse_rows = sum(p[3] for p in polls)
    loaded_polls = {p[0] for p in polls}
    expected = len({key for poll_id, keys in landed_keys.items() if poll_id in loaded_polls for key in keys})
    landed = sum(len(keys) for keys in landed_keys.values())
    if warehouse_rows != expected:
        problems.append(
            f"warehouse holds {warehouse_rows} ticks; the polls it loaded landed {expected} distinct ticks"
        )
    if len(observed) < minutes * 60 / 10 * 0.8:
        problems.append(f"only {len(observed)} polls measured in {minutes} minutes")
    result = {
        "minutes": minutes,
        "trigger_seconds": 1.0,
        "poll_interval_seconds": 10.0,
        "first_rows_queryable_seconds": round(first_rows_after, 1),
        "first_rows_target_seconds": 60,
        "observed_seconds": _stats(observed),
        "ledger_seconds": _stats(ledger),
        # Where the time goes: the producer (response to file landed), the stream
        # (file landed to load transaction).
        "producer_seconds": _stats(to_landed),
        "stream_seconds": _stats(landed_to_loaded),
        "polls_measured": len(observed),
        "rows_landed": landed,
        "distinct_ticks_of_loaded_polls": expected,
        "rows_in_warehouse": warehouse_rows,
        "duplicate_ticks": dupes,
        "target_p95_seconds": 5.0,
        "memory_mib": memory.peaks,
        "problems": problems,
    }
    result["target_met"] = result["observed_seconds"]["p95"] < 5.0
    document = write_result("freshness", result, load, started_mono)
    shutil.rmtree(root, ignore_errors=True)
    if problems:
        raise BenchFailure("; ".join(problems))
    return document


def _landed_keys(root: Path, mtimes: dict[str, float] | None = None) -> dict[str, list[tuple[str, str, str]]]:
    """De-duplication keys of every landing line, per poll, processed (archived) or not.

    ``mtimes`` gets each poll file's modification time (when it landed; archiving by
    rename keeps it)."""
    import json

    keys: dict[str, list[tuple[str, str, str]]] = {}
    for folder in (root / "landing", root / "archive"):
        for path in folder.rglob("*.ndjson"):
            if path.name.startswith("."):
                continue
            if mtimes is not None:
                mtimes[path.stem] = path.stat().st_mtime
            for line in path.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    keys.setdefault(row["poll_id"], []).append((row["coin_id"], row["vs_currency"], row["last_updated"]))
    return keys
