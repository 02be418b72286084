"""The poll loop end to end: replay server over HTTP -> validation -> spool -> local landing."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from datetime import datetime

from cryptopipe.replay import Fault
from producer import LocalLandingZone, Poller, RequestBudget, Spool
from producer.logs import JsonFormatter

ALL_COINS = 321  # the replay market: page 1 has 250 coins, page 2 the other 71
DEAD_COIN = "orbis-legacy"  # null current_price: rejected in every full poll


def events(caplog, name: str) -> list[dict]:
    """The fields of every logged event called ``name``."""
    return [r.cryptopipe_event for r in caplog.records if getattr(r, "cryptopipe_event", {}).get("event") == name]


def test_poll_writes_one_ndjson_file_per_poll_under_dt_and_hour(make_config, landing, expected, caplog):
    caplog.set_level(logging.INFO)
    with Poller.from_config(make_config(top_n=ALL_COINS)) as poller:
        report = poller.poll_once()
        stats = poller.stats.snapshot()

    [path] = landing.files()
    poll_time = datetime.strptime(report.poll_id[:15], "%Y%m%dT%H%M%S")
    assert path.relative_to(landing.root).as_posix() == (
        f"dt={poll_time:%Y-%m-%d}/hour={poll_time:%H}/{report.poll_id}.ndjson"
    )
    [(poll_id, records)] = landing.polls().items()
    assert poll_id == report.poll_id
    assert {r["poll_id"] for r in records.values()} == {report.poll_id}
    assert landing.ticks()[poll_id] == expected(0)
    assert (report.status, report.accepted, report.rejected, report.landed) == ("ok", ALL_COINS - 1, 1, True)
    assert (stats.rows_landed, stats.polls_landed, stats.spool_depth) == (ALL_COINS - 1, 1, 0)
    assert stats.newest_last_updated.isoformat(timespec="milliseconds").replace("+00:00", "Z") == max(
        r["last_updated"] for r in records.values()
    )
    [record] = [r for r in caplog.records if getattr(r, "cryptopipe_event", {}).get("event") == "poll"]
    line = json.loads(JsonFormatter().format(record))
    assert {"accepted", "rejected", "rejections", "attempts", "api_latency_ms", "upload_ms", "spool_depth"} <= set(line)
    assert line["rejections"] == {"current_price: float_type": 1}


def test_invalid_record_is_rejected_with_reason_and_valid_ones_of_the_same_poll_land(
    make_config, replay, landing, expected, caplog
):
    replay.inject(Fault.bad_records())  # corrupts the records at positions 0-3 of page 1
    corrupted = [r["id"] for r in replay.market.frame(0)[:4]]
    with Poller.from_config(make_config(top_n=ALL_COINS)) as poller:
        report = poller.poll_once()
        stats = poller.stats.snapshot()

    good = {coin: r for coin, r in expected(0).items() if coin not in corrupted}
    assert landing.ticks() == {report.poll_id: good}
    assert report.rejected == stats.records_rejected == 5
    assert report.rejections == {
        "current_price: float_type": 2,  # a price sent as a string, and the dead coin's null
        "id: missing": 1,
        "last_updated: datetime_from_date_parsing": 1,
        "market_cap: greater_than_equal": 1,
    }
    rejected = {e["coin_id"]: e["reason"] for e in events(caplog, "record_rejected")}
    assert rejected[corrupted[0]] == "current_price: Input should be a valid number (got '104512.5')"
    assert rejected[DEAD_COIN] == "current_price: Input should be a valid number (got None)"


def test_every_valid_record_of_every_poll_lands_exactly_once_when_faults_are_scripted(
    make_config, replay, landing, expected
):
    """Each poll reads its own replay frame through its own script of faults (two pages,
    four attempts each)."""
    timeout = Fault.delay(1.5)  # read_timeout_seconds is 0.5
    scripts = [
        # page 1: rate limited, a 500, then fine; page 2: a reset, then fine
        [Fault.status(429, retry_after="0"), Fault.status(500), None, Fault.reset(), None],
        # page 1 never gets through: the poll lands page 2 alone (partial)
        [Fault.html(502), Fault.truncated_json(), Fault.error_object(503), Fault.empty_list(), None],
        # a read timeout, then a page with corrupted records; page 2 fine
        [timeout, Fault.bad_records(), None],
        # nothing gets through: the poll fails, nothing lands
        [Fault.status(503)] * 4 + [Fault.reset()] * 4,
        # a clean poll after a failed one
        [None, None],
    ]
    reports = []
    with Poller.from_config(make_config(top_n=ALL_COINS)) as poller:
        for frame, script in enumerate(scripts):
            replay.frame = frame
            replay.inject(*[fault or Fault.delay(0) for fault in script])
            reports.append(poller.poll_once())
            assert not replay.pending_faults, f"poll {frame} did not play its whole script"
        stats = poller.stats.snapshot()

    assert [r.status for r in reports] == ["ok", "partial", "ok", "failed", "ok"]
    corrupted = {r["id"] for r in replay.market.frame(2)[:4]}
    page_2_of_frame_1 = {r["id"] for r in replay.market.frame(1)[250:]}
    want = {
        reports[0].poll_id: expected(0),
        reports[1].poll_id: {c: r for c, r in expected(1).items() if c in page_2_of_frame_1},
        reports[2].poll_id: {c: r for c, r in expected(2).items() if c not in corrupted},
        reports[4].poll_id: expected(4),
    }
    assert landing.ticks() == want
    lines = Counter((p, c) for p, records in landing.polls().items() for c in records)
    assert set(lines.values()) == {1}  # and the file per poll holds each coin once
    assert stats.rows_landed == stats.records_accepted == sum(len(r) for r in want.values())
    assert (stats.polls, stats.polls_failed, stats.polls_partial) == (5, 1, 1)


def test_request_rate_never_exceeds_the_budget_when_measured_from_the_server_log(make_config, replay):
    """A budget of 3 requests per 0.5 s under retries of every kind, two pages per poll."""
    window, limit = 0.5, 3
    replay.inject(
        Fault.status(429), Fault.status(500), Fault.reset(), Fault.html(502), Fault.status(429),
        Fault.truncated_json(), Fault.empty_list(), Fault.status(503), Fault.error_object(429),
    )  # fmt: skip
    config = make_config(top_n=ALL_COINS, interval_seconds=0.4, backoff_base_seconds=0.001, backoff_cap_seconds=0.01)
    with Poller.from_config(config, budget=RequestBudget(limit, window)) as poller:
        poller.run(threading.Event(), max_polls=6)

    arrivals = [r.at for r in replay.requests]
    assert len(arrivals) >= 12  # the budget was used up, not merely respected
    assert all(later - earlier >= window for earlier, later in zip(arrivals, arrivals[limit:], strict=False))


def test_run_keeps_polling_on_schedule_when_a_poll_fails(make_config, replay, landing, caplog):
    caplog.set_level(logging.INFO)
    replay.inject(Fault.status(500), Fault.status(500))
    config = make_config(top_n=5, max_attempts=2, interval_seconds=0.3)
    with Poller.from_config(config) as poller:
        stats = poller.run(threading.Event(), max_polls=3)

    assert [e["status"] for e in events(caplog, "poll")] == ["failed", "ok", "ok"]
    assert (stats.polls, stats.polls_failed, stats.polls_landed) == (3, 1, 2)
    assert len(landing.files()) == 2
    starts = [datetime.strptime(e["poll_id"][:18], "%Y%m%dT%H%M%S%f") for e in events(caplog, "poll")]
    # The failed poll took a few milliseconds; the next one still waited for its slot.
    assert (starts[1] - starts[0]).total_seconds() >= 0.29


def test_run_returns_when_stop_is_set_between_polls(make_config):
    stop = threading.Event()
    with Poller.from_config(make_config(top_n=5, interval_seconds=30)) as poller:
        threading.Timer(0.3, stop.set).start()
        stats = poller.run(stop)
    assert stats.polls == 1


def test_spool_lands_the_backlog_in_order_when_the_landing_zone_recovers(make_config, tmp_path, caplog):
    blocker = tmp_path / "blocked"
    blocker.write_text("a file where the landing directory should be")
    config = make_config(top_n=5, landing_uri=str(blocker / "landing"))
    landed: list[str] = []

    class RecordingLanding(LocalLandingZone):
        def put(self, name, data):
            super().put(name, data)
            landed.append(name)

    with Poller.from_config(config) as poller:
        poller.landing = RecordingLanding(blocker / "landing")
        outage = [poller.poll_once(), poller.poll_once()]
        assert [r.landed for r in outage] == [False, False]
        assert poller.spool.pending() == [r.poll_id for r in outage]
        assert events(caplog, "landing_unavailable")

        blocker.unlink()
        recovered = poller.poll_once()
        stats = poller.stats.snapshot()

    ids = [r.poll_id for r in (*outage, recovered)]
    assert landed == [f"dt={i[:4]}-{i[4:6]}-{i[6:8]}/hour={i[9:11]}/{i}.ndjson" for i in ids]
    assert recovered.landed and recovered.spool_depth == 0
    assert (stats.polls_landed, stats.rows_landed, stats.spool_depth) == (3, 15, 0)


def test_spool_drops_the_new_poll_loudly_when_full(make_config, tmp_path, caplog):
    blocker = tmp_path / "blocked"
    blocker.write_text("")
    config = make_config(top_n=5, landing_uri=str(blocker / "landing"), spool_max_polls=1)
    with Poller.from_config(config) as poller:
        kept = poller.poll_once()
        dropped = poller.poll_once()
        stats = poller.stats.snapshot()
        assert poller.spool.pending() == [kept.poll_id]

    assert (kept.dropped, dropped.dropped, stats.polls_dropped) == (False, True, 1)
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert error.cryptopipe_event["poll_id"] == dropped.poll_id
    assert "spool_max_polls=1" in error.cryptopipe_event["errors"][0]


def test_poller_lands_what_a_previous_run_left_in_the_spool_first(make_config, landing):
    config = make_config(top_n=5)
    leftover = "20250101T000000000Z-000000000000"
    Spool(config.spool_dir, config.spool_max_polls).add(leftover, b'{"coin_id":"left-over"}\n')
    with Poller.from_config(config) as poller:
        report = poller.poll_once()
    assert [p.name for p in landing.files()] == [f"{leftover}.ndjson", f"{report.poll_id}.ndjson"]


def test_landing_conflict_quarantines_the_poll_and_keeps_going(make_config, landing, caplog):
    config = make_config(top_n=5)
    taken = "20250101T000000000Z-000000000000"
    LocalLandingZone(landing.root).put(f"dt=2025-01-01/hour=00/{taken}.ndjson", b"someone else's bytes\n")
    Spool(config.spool_dir, config.spool_max_polls).add(taken, b"our bytes\n")
    with Poller.from_config(config) as poller:
        report = poller.poll_once()
        quarantined = list(poller.spool.quarantine_dir.iterdir())
    assert report.landed and report.spool_depth == 0
    assert [p.name for p in quarantined] == [f"{taken}.ndjson"]
    assert events(caplog, "landing_conflict")


def test_heartbeat_file_reports_the_counters_after_each_poll(make_config, tmp_path):
    health = tmp_path / "health" / "producer.json"
    with Poller.from_config(make_config(top_n=5, interval_seconds=0.1, health_file=str(health))) as poller:
        poller.run(threading.Event(), max_polls=2)
    beat = json.loads(health.read_text())
    assert (beat["polls"], beat["rows_landed"], beat["last_poll_status"]) == (2, 10, "ok")


def test_run_survives_a_crash_inside_a_poll(make_config, caplog):
    class BuggyLanding:
        uri = "buggy"

        def put(self, name, data):
            raise RuntimeError("a bug in a landing zone")

    with Poller.from_config(make_config(top_n=5, interval_seconds=0.1)) as poller:
        poller.landing = BuggyLanding()
        stats = poller.run(threading.Event(), max_polls=2)
    assert (stats.polls, stats.polls_failed, stats.last_poll_status) == (2, 2, "crashed")
    assert "a bug in a landing zone" in caplog.text
