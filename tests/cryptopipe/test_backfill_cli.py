"""`cryptopipe backfill` against the replay: exact rows, landed once, and clear errors for bad input."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.timefmt import utc_millis
from cryptopipe.cli import cli
from core.layout import LocalLayout
from cryptopipe.replay import Fault, ReplayServer
from producer.config import ENV_PREFIX

from ..conftest import isolated_environ

COINS = ("bitcoin", "ethereum")
FIVE_MINUTES = timedelta(minutes=5)


@pytest.fixture
def replay(monkeypatch):
    """The replay with frame 0 three hours ago (on a 5-minute boundary), now at frame 170."""
    with ReplayServer(auto_advance=False, frame_seconds=60) as server:
        now = datetime.now(timezone.utc)
        base = now - timedelta(hours=3)
        base = base.replace(minute=base.minute // 5 * 5, second=0, microsecond=0)
        server.shift = base - server.market.as_of
        server.frame = 170
        isolated_environ(monkeypatch, ENV_PREFIX)({
            f"{ENV_PREFIX}BASE_URL": server.url, f"{ENV_PREFIX}BACKOFF_BASE_SECONDS": "0.01",
        })  # fmt: skip
        yield server


def _base(replay: ReplayServer) -> datetime:
    return replay.market.as_of + replay.shift


def _backfill(data: Path, start: datetime, end: datetime, *extra: str):
    args = ["backfill", "--from", utc_millis(start), "--to", utc_millis(end), "--data-dir", str(data), *extra]
    return CliRunner().invoke(cli, args, catch_exceptions=False)


def _said(result) -> str:
    """The command's output on one line (the console wraps long lines)."""
    return " ".join(result.output.split())


def _landed(data: Path) -> dict[str, list[dict]]:
    """Landed back-fill rows by object name (relative to the landing zone)."""
    landing = LocalLayout(data).landing
    return {
        str(path.relative_to(landing)): [json.loads(line) for line in path.read_text().splitlines()]
        for path in sorted(landing.rglob("*.ndjson"))
    }


def _expected(replay: ReplayServer, coin_id: str, start: datetime, end: datetime) -> list[dict]:
    """Every 5 minutes from start to end, the frame current then (one frame a minute)."""
    rows = []
    at = start
    while at <= end:
        k = round((at - _base(replay)) / timedelta(minutes=1))
        (record,) = [r for r in replay.market.frame(k, frame_seconds=60, shift=replay.shift) if r["id"] == coin_id]
        rows.append({
            "coin_id": coin_id, "symbol": record["symbol"], "name": record["name"], "vs_currency": "usd",
            "price": float(record["current_price"]), "market_cap": float(record["market_cap"]),
            "total_volume": float(record["total_volume"]), "last_updated": utc_millis(at), "origin": "backfill",
        })  # fmt: skip
        at += FIVE_MINUTES
    return rows


_OTHER_FIELDS = ("market_cap_rank", "fully_diluted_valuation", "high_24h", "low_24h", "price_change_24h",
                 "price_change_percentage_24h", "circulating_supply", "total_supply", "max_supply")  # fmt: skip


def test_backfill_lands_exact_rows_once_and_again_adds_nothing_even_after_archiving(replay, tmp_path):
    start, end = _base(replay) + timedelta(minutes=10), _base(replay) + timedelta(minutes=40)
    data = tmp_path / "data"

    result = _backfill(data, start, end, "--coin-ids", ",".join(COINS))

    assert result.exit_code == 0, result.output
    assert "2 charts (coin × currency) · 14 rows in 2 objects landed · 0 already back-filled" in _said(result)
    landed = _landed(data)
    assert len(landed) == 2
    for name, rows in landed.items():
        assert name.startswith(f"dt={start:%Y-%m-%d}/hour={start:%H}/{utc_millis(start, basic=True)}-bf")
        coin = rows[0]["coin_id"]
        assert all(row["poll_id"] == Path(name).stem for row in rows)
        assert all(row[field] is None for row in rows for field in _OTHER_FIELDS)
        kept = [{k: v for k, v in row.items() if k not in ("ingested_at", "poll_id", *_OTHER_FIELDS)} for row in rows]
        assert kept == _expected(replay, coin, start, end)
    charts = [r for r in replay.requests if "market_chart" in r.path]
    assert sorted(r.path.split("/")[-3] for r in charts) == sorted(COINS)
    assert {(r.params["from"], r.params["to"]) for r in charts} == {
        (str(int(start.timestamp())), str(int(end.timestamp())))
    }

    # The stream archives what it read: the landing names are free again, and still nothing lands twice.
    archive = tmp_path / "archive"
    shutil.move(LocalLayout(data).landing / f"dt={start:%Y-%m-%d}", archive)
    again = _backfill(data, start, end, "--coin-ids", ",".join(COINS))
    assert again.exit_code == 0, again.output
    assert "0 rows in 0 objects landed · 2 already back-filled" in _said(again)
    assert _landed(data) == {}
    assert len([r for r in replay.requests if "market_chart" in r.path]) == 2  # no chart fetched again


def _kept(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("ingested_at", "poll_id", *_OTHER_FIELDS)} for row in rows]


def _charts_since(replay: ReplayServer, seen: int) -> set[tuple[str, int, int]]:
    """(coin, from, to) of the chart requests after the first ``seen`` requests, ``from``/``to`` in
    minutes after the replay's base."""
    base = int(_base(replay).timestamp())
    return {
        (r.path.split("/")[-3], (int(r.params["from"]) - base) // 60, (int(r.params["to"]) - base) // 60)
        for r in replay.requests[seen:]
        if "market_chart" in r.path
    }


def test_overlapping_ranges_land_only_what_was_not_backfilled_and_no_point_twice(replay, tmp_path):
    data = tmp_path / "data"
    minutes = lambda m: _base(replay) + timedelta(minutes=m)  # noqa: E731
    runs = [  # (from, to) in minutes after the base; then the chart requests it sends, and the rows it lands
        ((30, 60), {(30, 60)}, "14 rows in 2 objects landed · 0 already back-filled"),
        ((45, 90), {(60, 90)}, "12 rows in 2 objects landed · 0 already back-filled"),  # overlaps on one side
        ((10, 120), {(10, 30), (90, 120)}, "20 rows in 4 objects landed · 0 already back-filled"),  # contains
        ((20, 100), set(), "0 rows in 0 objects landed · 2 already back-filled"),  # inside
    ]
    landed: dict[str, list[dict]] = {}
    for (start, end), charts, said in runs:
        seen = len(replay.requests)
        result = _backfill(data, minutes(start), minutes(end), "--coin-ids", ",".join(COINS))
        assert result.exit_code == 0, result.output
        assert said in _said(result)
        # A piece next to a covered span asks from that span's last second; its point there is not kept.
        assert _charts_since(replay, seen) == {(coin, *chart) for coin in COINS for chart in charts}
        new = {name: rows for name, rows in _landed(data).items() if name not in landed}
        # Each piece's points: its request's, less the one at an edge shared with a covered span.
        kept = sorted((a if a == start else a + 5, b if b == end else b - 5) for a, b in charts)
        for coin in COINS:
            pieces = sorted((_kept(rows) for rows in new.values() if rows[0]["coin_id"] == coin),
                            key=lambda rows: rows[0]["last_updated"])  # fmt: skip
            assert pieces == [_expected(replay, coin, minutes(a), minutes(b)) for a, b in kept]
        landed.update(new)

    for coin in COINS:  # every point from 10 to 120 minutes, each once
        rows = sorted((row for rows in landed.values() for row in rows if row["coin_id"] == coin),
                      key=lambda row: row["last_updated"])  # fmt: skip
        assert _kept(rows) == _expected(replay, coin, minutes(10), minutes(120))


@pytest.mark.parametrize(
    ("shift_from", "shift_to", "message"),
    [
        (timedelta(minutes=-30), timedelta(hours=1), "is in the future"),
        (timedelta(hours=1), timedelta(hours=2), "is in the future"),
        (timedelta(minutes=-10), timedelta(minutes=-20), "must be before --to"),
    ],
    ids=["ends-in-the-future", "all-in-the-future", "from-after-to"],
)
def test_bad_range_is_a_usage_error_before_any_request(replay, tmp_path, shift_from, shift_to, message):
    now = datetime.now(timezone.utc)
    result = _backfill(tmp_path / "data", now + shift_from, now + shift_to, "--coin-ids", "bitcoin")
    assert result.exit_code == 2, result.output
    assert message in _said(result)
    assert replay.requests == []


def test_unreadable_time_and_unknown_coin_are_usage_errors(replay, tmp_path):
    result = CliRunner().invoke(cli, ["backfill", "--from", "yesterday", "--to", "now", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--from 'yesterday' is not a time" in _said(result)

    start = _base(replay) + timedelta(minutes=10)
    result = _backfill(tmp_path / "data", start, start + timedelta(minutes=30), "--coin-ids", "bitcoin,no-such-coin")
    assert result.exit_code == 2, result.output
    assert "unknown coin id(s): no-such-coin" in _said(result)
    assert [r for r in replay.requests if "market_chart" in r.path] == []
    assert _landed(tmp_path / "data") == {}

    # No id known at all: CoinGecko answers an empty list, retried as a bad page, then named.
    result = _backfill(tmp_path / "data", start, start + timedelta(minutes=30), "--coin-ids", "no-such-coin")
    assert result.exit_code == 1, result.output
    assert "are these CoinGecko coin ids (--coin-ids)?" in _said(result)
    assert [r for r in replay.requests if "market_chart" in r.path] == []


def test_a_429_from_the_history_endpoint_is_retried_after_its_retry_after(replay, tmp_path):
    start = _base(replay) + timedelta(minutes=10)
    replay.inject(Fault.delay(0), Fault.status(429, retry_after="1"))  # the coin list passes, the chart is refused

    result = _backfill(tmp_path / "data", start, start + timedelta(minutes=30), "--coin-ids", "bitcoin")

    assert result.exit_code == 0, result.output
    assert [r.status for r in replay.requests if "market_chart" in r.path] == [429, 200]
    assert [len(rows) for rows in _landed(tmp_path / "data").values()] == [7]


def test_garbage_from_the_history_endpoint_fails_that_coin_clearly_and_a_rerun_completes(replay, tmp_path):
    start, end = _base(replay) + timedelta(minutes=10), _base(replay) + timedelta(minutes=40)
    data = tmp_path / "data"
    # The coin list passes; bitcoin's chart gets garbage at all four attempts; ethereum's is fine.
    replay.inject(Fault.delay(0), Fault.html(200), Fault.truncated_json(), Fault.error_object(), Fault.html(502))

    result = _backfill(data, start, end, "--coin-ids", "bitcoin,ethereum")

    assert result.exit_code == 1, result.output
    assert "error: no chart for bitcoin (usd): ApiUnavailable: HTTP 502" in _said(result)  # the last of four failures
    assert "run the same back-fill again" in _said(result)
    assert {rows[0]["coin_id"] for rows in _landed(data).values()} == {"ethereum"}

    again = _backfill(data, start, end, "--coin-ids", "bitcoin,ethereum")
    assert again.exit_code == 0, again.output
    assert "7 rows in 1 objects landed · 1 already back-filled" in _said(again)
    assert {rows[0]["coin_id"] for rows in _landed(data).values()} == {"bitcoin", "ethereum"}


def test_the_producer_vm_entry_point_backfills_with_the_service_settings(replay, tmp_path):
    import os
    import subprocess
    import sys

    start = _base(replay) + timedelta(minutes=10)
    env = {**os.environ, f"{ENV_PREFIX}LANDING_URI": str(tmp_path / "landing"),
           f"{ENV_PREFIX}SPOOL_DIR": str(tmp_path / "spool"), f"{ENV_PREFIX}COIN_IDS": "bitcoin"}  # fmt: skip
    argv = [sys.executable, "-m", "producer", "backfill", "--from", utc_millis(start)]

    done = subprocess.run([*argv, "--to", utc_millis(start + timedelta(minutes=30))],
                          env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert (report["landed_objects"], report["landed_rows"], report["failed"]) == (1, 7, {})

    future = subprocess.run([*argv, "--to", utc_millis(datetime.now(timezone.utc) + timedelta(hours=1))],
                            env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert future.returncode == 2 and "is in the future" in future.stderr
