"""The alert logic on the local test bed: a real pipeline (replay server, producer thread,
Spark stream, DuckDB) whose producer, then stream, is stopped and started again, judged by
`cryptopipe status`'s code with small thresholds."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from core.health import ALERTS, Observation, Thresholds, judge
from cryptopipe.cli import cli
from core.layout import LocalLayout
from cryptopipe.health.judge import observe, pipeline_health
from cryptopipe.health.state import StreamWatch
from cryptopipe.pipeline import LocalPipeline
from cryptopipe.settings import producer_config, stream_config

#: Small enough for a test, large enough that a healthy 2 s poll / 1 s trigger stays green.
THRESHOLDS = Thresholds(freshness_seconds=12, producer_silence_seconds=8, stream_silence_seconds=300)


def _verdicts(layout: LocalLayout) -> dict:
    return {v.alert.key: v for v in pipeline_health(layout)}


def _wait_for(layout: LocalLayout, condition: Callable[[dict], bool], what: str, within: float) -> dict:
    """Poll the status until ``condition`` holds; fail naming ``what`` after ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        verdicts = _verdicts(layout)
        if condition(verdicts):
            return verdicts
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {within} s: {verdicts}")
        time.sleep(0.5)


def _green(*keys: str) -> Callable[[dict], bool]:
    return lambda verdicts: all(verdicts[key].ok for key in keys)


def _age(verdict) -> float:
    return float(verdict.value.removesuffix(" s"))


@pytest.mark.spark
def test_stopping_the_producer_or_the_stream_turns_freshness_red_and_a_restart_green(spark, tmp_path):
    layout = LocalLayout(tmp_path / "data")
    producer = producer_config(layout, "replay", interval_seconds=2, top_n=20)
    stream = stream_config(layout, trigger_seconds=1.0)
    with LocalPipeline(layout, producer, stream, replay_port=0, thresholds=THRESHOLDS) as pipeline:
        _wait_for(layout, _green("data-freshness", "producer-down", "stream-not-running"), "all green", 120)

        pipeline.stop_producer()
        red = _wait_for(layout, lambda v: not v["data-freshness"].ok, "freshness red", 60)
        # red as soon as the newest tick is older than the threshold, not later
        assert THRESHOLDS.freshness_seconds <= _age(red["data-freshness"]) < THRESHOLDS.freshness_seconds + 10
        # The producer's silence is counted from its last poll, the data's age from the ticks' own
        # last_updated (older than the poll, more so under load): either may turn red first.
        down = _wait_for(layout, lambda v: not v["producer-down"].ok, "producer down", 60)
        assert down["stream-not-running"].ok
        shown = CliRunner().invoke(cli, ["status", "--data-dir", str(layout.root)])
        assert shown.exit_code == 1 and "RED" in shown.output and "Data freshness" in shown.output

        pipeline.start_producer()
        _wait_for(layout, _green("data-freshness", "producer-down"), "green after the producer's restart", 60)

        pipeline.stop_stream()
        stopped = _verdicts(layout)
        assert not stopped["stream-not-running"].ok  # at once: the run says its stream stopped
        red = _wait_for(layout, lambda v: not v["data-freshness"].ok, "freshness red without a stream", 60)
        assert red["producer-down"].ok  # the producer still polls; nothing loads what it lands

        pipeline.start_stream()
        verdicts = _wait_for(layout, _green("data-freshness", "stream-not-running"),
                             "green after the stream's restart", 90)
        assert "2 starts/h" in verdicts["stream-not-running"].value
    shown = CliRunner().invoke(cli, ["status", "--data-dir", str(layout.root)])
    assert "stopped" in shown.output  # the run is over: its stream is reported stopped


def test_judge_reads_each_signal_against_its_threshold():
    healthy = Observation(data_age_seconds=30, producer_heartbeat_age_seconds=20, stream_running=True,
                          stream_silence_seconds=1, driver_starts_last_hour=1, lines_last_window=1000,
                          quarantined_last_window=10)
    thresholds = Thresholds.from_intervals(60, 120)
    assert [v.ok for v in judge(healthy, thresholds)] == [True] * len(ALERTS)
    broken = Observation(data_age_seconds=None, producer_heartbeat_age_seconds=600, stream_running=True,
                         stream_silence_seconds=1, driver_starts_last_hour=4, lines_last_window=100,
                         quarantined_last_window=6)
    assert {v.alert.key: v.ok for v in judge(broken, thresholds)} == {
        "data-freshness": False, "producer-down": False, "stream-not-running": False, "quarantine-rate": False}


def test_the_watch_counts_the_windows_lines_across_a_stream_restart(tmp_path):
    layout = LocalLayout(tmp_path)  # no warehouse
    watch = StreamWatch(layout.stream_state, THRESHOLDS)
    watch.started(now=1000.0)
    watch.record(True, 100, 0, now=1000.0)
    watch.record(True, 300, 10, now=1100.0)
    watch.started(now=1150.0)  # a new stream counts from zero again
    watch.record(True, 50, 40, now=1200.0)
    seen, thresholds = observe(layout, now=1201.0)
    assert (seen.lines_last_window, seen.quarantined_last_window) == (350, 50)  # 100 + 200, then 50 anew
    assert seen.driver_starts_last_hour == 2 and seen.stream_running and thresholds == THRESHOLDS
    later, _ = observe(layout, now=1300.0)
    assert not later.stream_running  # nobody wrote for 100 s: the run is gone
    watch.record(True, 60, 40, now=2200.0)  # 15 minutes on: only the last 10 lines are in the window
    seen, _ = observe(layout, now=2201.0)
    assert (seen.lines_last_window, seen.quarantined_last_window) == (10, 0)
    assert seen.driver_starts_last_hour == 2


def test_status_of_a_data_dir_that_never_ran_is_red_and_says_never(tmp_path):
    shown = CliRunner().invoke(cli, ["status", "--data-dir", str(tmp_path)])
    assert shown.exit_code == 1
    assert shown.output.count("RED") == 3 and "never" in shown.output and "stopped" in shown.output


def test_data_age_counts_live_ticks_only_so_a_backfill_never_makes_stale_data_fresh(tmp_path):
    """A back-filled point fills the past: the data age is the newest live tick's (a null origin
    is a row from before the field: a live poll)."""
    import duckdb

    from core.schema import duckdb_columns
    from core.tables import TICK_FIELDS, TICKS_TABLE

    layout = LocalLayout(tmp_path)
    with duckdb.connect(str(layout.warehouse)) as con:
        con.execute(f"CREATE TABLE {TICKS_TABLE} ({', '.join(duckdb_columns(TICK_FIELDS))})")
        for epoch, origin in ((1000, "poll"), (1100, None), (1900, "backfill")):
            con.execute(
                f"INSERT INTO {TICKS_TABLE} (coin_id, vs_currency, symbol, name, price, last_updated, ingested_at, poll_id,"
                " _load_id, origin) VALUES ('bitcoin', 'usd', 'btc', 'Bitcoin', 1.0, to_timestamp(?), to_timestamp(?),"
                " 'p', 'q/0', ?)",
                [epoch, epoch, origin],
            )

    seen, _ = observe(layout, now=2000.0)
    assert seen.data_age_seconds == 900.0


def test_status_shows_the_months_credits_red_while_the_producers_projection_runs_short(tmp_path):
    """The producer's heartbeat carries its credits' state (producer/credits.py); status judges it."""
    import json
    from datetime import datetime, timezone

    from producer import Credits, ProducerConfig

    layout = LocalLayout(tmp_path)
    config = ProducerConfig(api_plan="demo", api_key="k", interval_seconds=300, spool_dir=str(tmp_path / "spool"))
    credits = Credits(config, clock=lambda: datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc))

    def beat() -> dict:
        layout.producer_heartbeat.write_text(json.dumps({"time": "2026-11-30T23:00:00+00:00",
                                                         "credits": credits.state().as_json()}))
        return {v.alert.key: v for v in pipeline_health(layout)}

    verdict = beat()["coingecko-credits"]
    assert verdict.ok and verdict.value == "10,000 of 10,000 left, 12 needed to 2026-12-01"
    credits.record(9_994)
    verdict = beat()["coingecko-credits"]
    assert not verdict.ok
    assert verdict.value == ("6 of 10,000 left, out at 2026-11-30T23:30:00.000Z polling every 300 s: polls every "
                             "600 s, back-fill waits")
    shown = CliRunner().invoke(cli, ["status", "--data-dir", str(layout.root)])
    assert shown.exit_code == 1 and "CoinGecko" in shown.output  # rich may wrap the title

    keyless = ProducerConfig(spool_dir=str(tmp_path / "spool"))  # no monthly cap: no row
    layout.producer_heartbeat.write_text(json.dumps({"time": "2026-11-30T23:00:00+00:00",
                                                     "credits": Credits(keyless).state().as_json()}))
    assert "coingecko-credits" not in {v.alert.key for v in pipeline_health(layout)}


def test_scheduled_thresholds_derive_from_the_schedule_and_a_runs_time():
    hourly = Thresholds.for_schedule(60, 3600, 300)
    assert hourly.freshness_seconds == 3600 + 300 + 3 * 60  # the interval, a run, the polls' slack
    assert hourly.stream_silence_seconds == 3600 + 300 and hourly.schedule_seconds == 3600
    assert Thresholds.for_schedule(60, 900, 300).freshness_seconds == 1380  # every 15 min: 23 min
    stream = Thresholds.from_intervals(60, 10)
    assert stream.schedule_seconds is None and stream.freshness_seconds < Thresholds.for_schedule(
        60, 900, 300).freshness_seconds


def test_scheduled_mode_judges_a_missed_or_failed_run_instead_of_a_stopped_stream(tmp_path):
    """Between runs nothing runs, which is fine; no good run for the interval plus a run's time,
    or a failed last run, is red."""
    layout = LocalLayout(tmp_path)
    thresholds = Thresholds.for_schedule(10, 60, 30)
    watch = StreamWatch(layout.stream_state, thresholds)
    watch.started(now=1000.0)
    watch.record(False, 0, 0, now=1000.0)
    by_key = {v.alert.key: v for v in pipeline_health(layout, now=1119.0)}
    assert "stream-not-running" not in by_key and by_key["run-missed"].ok  # no run yet; 60 + 30 s is under Monitoring's 2 min floor
    assert not {v.alert.key: v for v in pipeline_health(layout, now=1121.0)}["run-missed"].ok
    watch.run_ended(True, now=1200.0)
    watch.record(False, 36, 1, now=1200.0)  # idle between runs
    verdict = {v.alert.key: v for v in pipeline_health(layout, now=1280.0)}["run-missed"]
    assert verdict.ok and verdict.value == "idle, last good run 80 s ago" and verdict.threshold == "2 min without a good run"
    watch.run_ended(False, now=1285.0)  # the next run failed: red at the watch's next write
    watch.record(False, 40, 1, now=1285.0)
    verdict = {v.alert.key: v for v in pipeline_health(layout, now=1286.0)}["run-missed"]
    assert not verdict.ok and verdict.value.endswith("the last run failed")
    watch.run_ended(True, now=1350.0)
    watch.record(False, 44, 1, now=1350.0)
    assert {v.alert.key: v for v in pipeline_health(layout, now=1351.0)}["run-missed"].ok
