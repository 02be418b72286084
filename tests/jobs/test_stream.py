"""The streaming job end to end: landing files -> local Spark -> DuckDB, in temp dirs."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from jobs import stream
from jobs.stream import main, parse_args, start_stream
from jobs.validate import NO_RECORDS

from ..conftest import wait_until
from ..signals import other_threads, signal_thread
from .conftest import Pipeline, line, landing_record

UTC = timezone.utc


def _wait_for(condition, *, timeout: float = 30.0) -> None:
    """Spark archives files on a background thread: wait for it, without timing it."""
    wait_until(condition, "the condition", timeout)


@pytest.mark.spark
def test_available_now_run_loads_exact_rows_and_values(spark, pipeline: Pipeline, caplog):
    pipeline.land(
        [
            line("bitcoin", current_price=64000.5),
            line("ethereum", current_price=3500.25, last_updated="2025-06-01T12:00:01.500Z"),
            line(
                "tiny-coin",
                current_price=1.2e-08,
                market_cap_rank=None,
                fully_diluted_valuation=None,
                max_supply=None,
            ),
        ]
    )
    pipeline.land([line("bitcoin", current_price=64010.0, last_updated="2025-06-01T12:01:03.456Z")])

    with caplog.at_level(logging.INFO, logger="jobs.stream"):
        status = pipeline.run(spark, "--max-files-per-trigger", "1")

    rows = pipeline.query(
        "SELECT coin_id, price, market_cap_rank, fully_diluted_valuation, max_supply, last_updated, vs_currency "
        "FROM market_ticks ORDER BY coin_id, last_updated"
    )
    assert rows == [
        ("bitcoin", 64000.5, 1, 1.34e12, 21e6, datetime(2025, 6, 1, 12, 0, 3, 123000, tzinfo=UTC), "usd"),
        ("bitcoin", 64010.0, 1, 1.34e12, 21e6, datetime(2025, 6, 1, 12, 1, 3, 456000, tzinfo=UTC), "usd"),
        ("ethereum", 3500.25, 1, 1.34e12, 21e6, datetime(2025, 6, 1, 12, 0, 1, 500000, tzinfo=UTC), "usd"),
        ("tiny-coin", 1.2e-08, None, None, None, datetime(2025, 6, 1, 12, 0, 3, 123000, tzinfo=UTC), "usd"),
    ]
    loads = pipeline.query("SELECT load_id, batch_id, ticks FROM _loads ORDER BY batch_id")
    assert [(batch, ticks) for _, batch, ticks in loads] == [(0, 3), (1, 1)]
    assert pipeline.query("SELECT DISTINCT _load_id FROM market_ticks ORDER BY 1") == [(loads[0][0],), (loads[1][0],)]
    assert (status.batches, status.rows_in, status.rows_loaded, status.rows_quarantined) == (2, 4, 4, 0)
    assert status.newest_event_time == datetime(2025, 6, 1, 12, 1, 3, 456000, tzinfo=UTC)
    assert "batch 0: 3 records in (1 files), 3 loaded, 0 quarantined, 0 duplicates, 0 late" in caplog.text
    assert not list(pipeline.staging.glob("batch_id=*")), "staged Parquet is deleted once loaded"


@pytest.mark.spark
def test_rerun_on_same_checkpoint_adds_no_rows(spark, pipeline: Pipeline):
    pipeline.land([line("bitcoin"), line("ethereum")])
    pipeline.run(spark)

    again = pipeline.run(spark)

    assert again.batches == 0
    assert pipeline.query("SELECT count(*) FROM market_ticks") == [(2,)]
    assert pipeline.query("SELECT count(*) FROM _loads") == [(1,)]


@pytest.mark.spark
def test_batch_replayed_after_a_crash_adds_no_rows(spark, pipeline: Pipeline, caplog):
    pipeline.land([line("bitcoin"), line("ethereum"), "garbage"])
    pipeline.run(spark)
    # A crash after the warehouse committed but before Spark did: the commit log
    # lacks the batch, so the next start runs it again under the same load id.
    for name in ("0", ".0.crc"):
        (pipeline.checkpoint / "commits" / name).unlink()

    with caplog.at_level(logging.INFO, logger="jobs.stream"):
        replay = pipeline.run(spark)

    assert (replay.batches, replay.rows_loaded, replay.rows_quarantined) == (1, 0, 0)
    assert "batch 0: 3 records in (1 files), already loaded by an earlier run (2 ticks, 1 quarantined)" in caplog.text
    assert pipeline.query("SELECT count(*) FROM market_ticks") == [(2,)]
    assert pipeline.query("SELECT count(*) FROM quarantine") == [(1,)]


@pytest.mark.spark
def test_files_landed_after_a_run_are_loaded_and_processed_files_archived(spark, pipeline: Pipeline):
    first = [pipeline.land([line(coin)]).name for coin in ("bitcoin", "ethereum", "solana")]
    pipeline.run(spark, "--max-files-per-trigger", "1")
    # Spark archives a batch's files when the next batch starts: all but the last run's last.
    _wait_for(lambda: set(first[:2]) <= set(pipeline.files(pipeline.archive)))
    assert not set(pipeline.files(pipeline.landing)) & set(pipeline.files(pipeline.archive))

    later = pipeline.land([line("cardano")]).name
    status = pipeline.run(spark, "--max-files-per-trigger", "1")

    assert status.rows_loaded == 1
    assert pipeline.query("SELECT coin_id FROM market_ticks ORDER BY coin_id") == [
        ("bitcoin",), ("cardano",), ("ethereum",), ("solana",)
    ]  # fmt: skip
    _wait_for(lambda: set(first) <= set(pipeline.files(pipeline.archive)))
    assert pipeline.files(pipeline.landing) in ([], [later])
    archived = next(pipeline.archive.rglob(first[0]))
    assert archived.relative_to(pipeline.archive).as_posix().endswith(f"landing/dt=2025-06-01/hour=12/{first[0]}")


@pytest.mark.spark
def test_repeated_key_is_loaded_once_within_and_across_batches(spark, pipeline: Pipeline):
    cached = line("bitcoin", current_price=64000.5)  # CoinGecko serves the same row to several polls
    pipeline.land([cached, line("ethereum")])
    pipeline.land([cached, line("ethereum")])  # same batch as the first (2 files a batch)
    pipeline.land([cached, line("ethereum", last_updated="2025-06-01T12:01:00.000Z")])
    pipeline.land([line("bitcoin", current_price=1.0)])  # same key, other values: still a repeat

    status = pipeline.run(spark, "--max-files-per-trigger", "2")

    assert pipeline.query("SELECT coin_id, price, last_updated FROM market_ticks ORDER BY coin_id, last_updated") == [
        ("bitcoin", 64000.5, datetime(2025, 6, 1, 12, 0, 3, 123000, tzinfo=UTC)),
        ("ethereum", 64000.5, datetime(2025, 6, 1, 12, 0, 3, 123000, tzinfo=UTC)),
        ("ethereum", 64000.5, datetime(2025, 6, 1, 12, 1, tzinfo=UTC)),
    ]
    assert (status.batches, status.rows_in, status.rows_loaded, status.duplicates_dropped) == (2, 7, 3, 4)


@pytest.mark.spark
def test_bad_lines_are_quarantined_with_reasons_while_valid_rows_load(spark, pipeline: Pipeline):
    garbage = pipeline.land(["this is not json", "<html>502 Bad Gateway</html>"], name="garbage")
    # Bytes that are not UTF-8 (a gzip header, a cut multi-byte character): both
    # warehouses refuse such strings, so unhandled they would fail the batch forever.
    binary = pipeline.land_bytes(b"\x1f\x8b\x08\x00\xff\xfe\x00binary\n\xc3(\n", name="binary")
    lines = [
        line("ethereum"),
        line("bitcoin").replace('"price": 64000.5', '"price": "64000.5"'),
        "",
        line("bitcoin").replace('"price": 64000.5', '"price": -1.0'),
        line("bitcoin").replace('"coin_id": "bitcoin", ', ""),
        line("bitcoin").replace("2025-06-01T12:00:03.123Z", "2999-01-01T00:00:00.000Z"),
        "   ",
        line("tiny-coin", current_price=1.2e-08, max_supply=None),
        '{"coin_id": "solana", "symbol": "so',  # the end of a file cut short
    ]
    mixed = pipeline.land(lines, name="mixed", end="")
    empty = pipeline.land_bytes(b"", name="empty")  # an upload that never got its body
    blank = pipeline.land_bytes(b"\n  \r\n", name="blank")
    pipeline.land_bytes(line("dogecoin").encode() + b"\r\n\r\n", name="crlf")  # Windows line ends load as usual
    # Later and older than the far-future line: must not be dropped as late.
    pipeline.land([line("cardano", last_updated="2025-06-01T11:00:00.000Z")], name="after")

    status = pipeline.run(spark, "--max-files-per-trigger", "1")

    assert pipeline.query("SELECT coin_id FROM market_ticks ORDER BY coin_id") == [
        ("cardano",), ("dogecoin",), ("ethereum",), ("tiny-coin",)
    ]  # fmt: skip
    quarantined = pipeline.query("SELECT source_file, reason, raw_line FROM quarantine ORDER BY source_file, reason")
    assert [(Path(source).name, reason) for source, reason, _ in quarantined] == [
        (binary.name, "line is not a JSON object"),
        (binary.name, "line is not a JSON object"),
        (blank.name, NO_RECORDS),
        (empty.name, NO_RECORDS),
        (garbage.name, "line is not a JSON object"),
        (garbage.name, "line is not a JSON object"),
        (mixed.name, "coin_id: missing or null"),
        (mixed.name, "last_updated: 2999-01-01T00:00:00.000Z is more than 1:00:00 in the future"),
        (mixed.name, "line is not a JSON object"),
        (mixed.name, "price: -1.0 is below the minimum 0"),
        (mixed.name, "price: not a number"),
    ]
    assert {raw for _, _, raw in quarantined} >= {
        "this is not json", '{"coin_id": "solana", "symbol": "so', "\x1f\ufffd\x08\x00\ufffd\ufffd\x00binary", "\ufffd("
    }  # fmt: skip
    assert pipeline.query("SELECT count(*) FROM quarantine WHERE quarantined_at IS NULL OR _load_id IS NULL") == [(0,)]
    assert (status.rows_loaded, status.rows_quarantined, status.late_rows_dropped) == (4, 11, 0)
    assert (status.files_in, status.rows_in) == (7, 15)


@pytest.mark.spark
def test_rows_older_than_the_watermark_are_dropped_and_counted(spark, pipeline: Pipeline):
    # One file a batch. Spark judges lateness in batch N by the watermark set after
    # batch N-2 (the one before is still being evicted with), so the late row comes
    # two batches after the row that moves the watermark.
    pipeline.land([line("bitcoin", last_updated="2025-06-01T12:00:00.000Z")])
    pipeline.land([line("ethereum", last_updated="2025-06-01T15:00:00.000Z")])  # watermark -> 13:00
    pipeline.land([line("solana", last_updated="2025-06-01T15:00:00.000Z")])
    pipeline.land([line("litecoin", last_updated="2025-06-01T12:30:00.000Z")])  # behind 13:00: late

    status = pipeline.run(spark, "--max-files-per-trigger", "1", "--watermark", "2 hours")

    assert pipeline.query("SELECT coin_id FROM market_ticks ORDER BY coin_id") == [
        ("bitcoin",), ("ethereum",), ("solana",)
    ]  # fmt: skip
    assert (status.rows_loaded, status.late_rows_dropped) == (3, 1)


@pytest.mark.spark
def test_running_stream_archives_what_it_read_still_sees_new_files_and_stops_on_request(spark, pipeline: Pipeline):
    first = pipeline.land([line("bitcoin"), line("bitcoin"), "garbage"]).name
    handle = start_stream(spark, parse_args(pipeline.args("--trigger-seconds", "0.5")))
    try:
        _wait_for(lambda: handle.status().batches >= 1)
        second = pipeline.land([line("ethereum")]).name
        _wait_for(lambda: handle.status().rows_loaded >= 2)
        # The next batch archived the first file out of the input path...
        _wait_for(lambda: first in pipeline.files(pipeline.archive))
        assert pipeline.files(pipeline.landing) == [second]
        # ...and files landing after that are still picked up, the archived one not again.
        pipeline.land([line("solana")])
        _wait_for(lambda: handle.status().rows_loaded >= 3)
        _wait_for(lambda: second in pipeline.files(pipeline.archive))
        assert handle.is_active
    finally:
        handle.stop()
    status = handle.status()
    assert not handle.is_active
    assert (status.batches, status.rows_loaded, status.rows_quarantined, status.duplicates_dropped) == (3, 3, 1, 1)
    assert pipeline.query("SELECT coin_id FROM market_ticks ORDER BY 1") == [("bitcoin",), ("ethereum",), ("solana",)]
    assert status.newest_event_time == datetime(2025, 6, 1, 12, 0, 3, 123000, tzinfo=UTC)


def test_an_idle_stream_stops_on_ctrl_c_whichever_of_its_threads_the_kernel_hands_it(pipeline: Pipeline):
    """SIGINT to a process goes to any of its threads that does not block it. Delivered to one of
    the driver's other threads (py4j's, Spark's callback server), it never woke a main thread that
    waited in one long ``awaitTermination`` read, and an idle stream, with no batch to call back,
    ran on: it hung a test's stop for five minutes. Here the signal goes to such a thread on
    purpose, on a stream with nothing to read."""
    log = pipeline.root / "stream.log"
    pipeline.landing.mkdir(parents=True)  # nothing landed: the stream has nothing to read
    with log.open("w") as output:
        process = subprocess.Popen([sys.executable, "-m", "jobs.stream", *pipeline.args("--trigger-seconds", "0.5")],
                                   stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "TMPDIR": str(pipeline.spark_scratch)})
    try:
        _wait_for(lambda: "stream_started:" in log.read_text(errors="replace") or process.poll() is not None,
                  timeout=120)
        assert process.poll() is None, log.read_text()[-3000:]
        signal_thread(process.pid, other_threads(process.pid)[-1], signal.SIGINT)
        assert process.wait(timeout=60) == 130, log.read_text()[-3000:]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert "interrupted: stream stopped" in log.read_text()


def test_main_logs_a_failure_and_exits_non_zero(monkeypatch, pipeline: Pipeline, caplog):
    def no_java(*args, **kwargs):
        raise RuntimeError("Java gateway process exited before sending its port number")

    monkeypatch.setattr(stream, "build_session", no_java)
    with caplog.at_level(logging.ERROR, logger="jobs.stream"):
        assert main(pipeline.args("--available-now")) == 1
    assert "stream failed" in caplog.text and "Java gateway" in caplog.text


def test_main_refuses_bad_uri_before_starting_spark(monkeypatch, pipeline: Pipeline, capsys):
    monkeypatch.setattr(stream, "build_session", lambda *a, **k: pytest.fail("Spark started"))
    with pytest.raises(SystemExit) as exit_:
        main([*pipeline.args(), "--landing", "ftp://host/landing"])
    assert exit_.value.code == 2
    assert "'ftp://host/landing'" in capsys.readouterr().err


@pytest.mark.spark
def test_one_coin_and_time_in_two_quote_currencies_loads_twice_and_repeats_still_drop(spark, pipeline: Pipeline):
    """The de-duplication key holds the quote currency: usd and eur rows of the same coin and
    last_updated are two ticks; a repeat within a currency is still one."""
    poll = [line("bitcoin", vs_currency="usd", current_price=64000.5),
            line("bitcoin", vs_currency="eur", current_price=59000.25)]
    pipeline.land(poll)
    pipeline.land(poll)  # CoinGecko's cache serves both again

    status = pipeline.run(spark)

    assert pipeline.query("SELECT coin_id, vs_currency, price FROM market_ticks ORDER BY vs_currency") == [
        ("bitcoin", "eur", 59000.25),
        ("bitcoin", "usd", 64000.5),
    ]
    assert (status.rows_loaded, status.duplicates_dropped) == (2, 2)


@pytest.mark.spark
def test_backfilled_points_pass_the_watermark_and_stay_apart_from_live_ticks(spark, pipeline: Pipeline):
    # A live tick moves the watermark to 13:00; back-filled points hours older still load,
    # one at the live tick's very key too (same coin, currency and time): the two kinds never meet.
    pipeline.land([line("bitcoin", last_updated="2025-06-01T15:00:00.000Z", origin="poll")])
    pipeline.land([line("solana", last_updated="2025-06-01T15:00:00.000Z", origin="poll")])
    pipeline.land([
        line("bitcoin", last_updated="2025-05-01T00:00:00.000Z", origin="backfill"),
        line("bitcoin", last_updated="2025-06-01T15:00:00.000Z", origin="backfill"),
        json.dumps({**landing_record("bitcoin", last_updated="2025-06-01T15:00:00.000Z"), "origin": "scraped"}),
    ])  # fmt: skip

    status = pipeline.run(spark, "--max-files-per-trigger", "1", "--watermark", "2 hours")

    assert pipeline.query(
        "SELECT coin_id, origin, last_updated FROM market_ticks ORDER BY coin_id, origin, last_updated"
    ) == [
        ("bitcoin", "backfill", datetime(2025, 5, 1, tzinfo=UTC)),
        ("bitcoin", "backfill", datetime(2025, 6, 1, 15, tzinfo=UTC)),
        ("bitcoin", "poll", datetime(2025, 6, 1, 15, tzinfo=UTC)),
        ("solana", "poll", datetime(2025, 6, 1, 15, tzinfo=UTC)),
    ]
    assert pipeline.query("SELECT reason FROM quarantine") == [("origin: 'scraped' is not one of poll, backfill",)]
    assert (status.late_rows_dropped, status.duplicates_dropped) == (0, 0)


def test_the_newest_event_time_and_the_batch_lines_data_age_count_live_ticks_only(spark, pipeline: Pipeline):
    """A back-filled point newer than every live tick (as after a back-fill of the hour the
    producer just missed) must not make the batch look fresh: freshness is about live polls."""
    pipeline.land([
        line("bitcoin", last_updated="2025-06-01T15:00:00.000Z", origin="poll"),
        line("bitcoin", last_updated="2025-06-01T16:00:00.000Z", origin="backfill"),
    ])  # fmt: skip
    pipeline.land([line("solana", last_updated="2025-06-01T17:00:00.000Z", origin="backfill")])

    status = pipeline.run(spark, "--max-files-per-trigger", "1")

    assert pipeline.query("SELECT count(*) FROM market_ticks") == [(3,)]
    assert status.newest_event_time == datetime(2025, 6, 1, 15, tzinfo=UTC)
