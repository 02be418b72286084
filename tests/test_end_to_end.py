"""The whole local pipeline on real parts: replay server over HTTP -> producer ->
landing directory -> Spark (availableNow) -> DuckDB, compared with what the replayed
market says must be there."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.joboptions import job_argv
from core.layout import LocalLayout
from cryptopipe.replay.faults import DEFAULT_CORRUPTIONS, Fault
from cryptopipe.replay.market import Market
from cryptopipe.replay.server import ReplayServer
from jobs.loaders.duckdb import open_reader
from jobs.stream import parse_args, run
from producer import Poller, ProducerConfig

from .conftest import landed

pytestmark = pytest.mark.spark

TOP_N = 300  # two pages of /coins/markets per poll
FRAME_SECONDS = 60.0


def _producer(server: ReplayServer, layout: LocalLayout) -> Poller:
    config = ProducerConfig(
        base_url=server.url,
        top_n=TOP_N,
        requests_per_minute=600,
        landing_uri=str(layout.landing),
        spool_dir=str(layout.spool),
    )
    return Poller.from_config(config)


def _stream_once(spark, layout: LocalLayout) -> None:
    run(spark, parse_args(job_argv({**layout.job_places(), "available_now": True})))


def _warehouse_rows(layout: LocalLayout, sql: str) -> list[tuple]:
    with open_reader(layout.warehouse) as con:
        return con.execute(sql).fetchall()


def _expected_ticks(frames: list[int], skip: dict[int, set[str]]) -> dict[tuple, float]:
    """(coin_id, last_updated ISO) -> price for every valid record of the polled frames."""
    expected: dict[tuple, float] = {}
    for k in frames:
        for record in Market.bundled().frame(k, frame_seconds=FRAME_SECONDS)[:TOP_N]:
            if record["id"] in skip.get(k, set()) or record["current_price"] is None:
                continue
            line = landed(record)
            expected.setdefault((line["coin_id"], line["last_updated"]), line["price"])
    return expected


class _Records(logging.Handler):
    """Every record our loggers write during the run, for the log-line checks below."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def log_records() -> Iterator[list[logging.LogRecord]]:
    handler = _Records()
    loggers = [logging.getLogger(name) for name in ("producer", "jobs")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    yield handler.records
    for logger, level in zip(loggers, levels):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture(scope="module")
def pipeline_run(spark, tmp_path_factory, log_records):
    """Four polls over three frames (one repeated, one with corrupted records), then one stream run."""
    layout = LocalLayout(tmp_path_factory.mktemp("e2e"))
    with ReplayServer(frame_seconds=FRAME_SECONDS, auto_advance=False, rebase=False) as server:
        poller = _producer(server, layout)
        reports = [poller.poll_once()]
        reports.append(poller.poll_once())  # the same frame again, as CoinGecko's cache does
        server.advance()
        reports.append(poller.poll_once())
        server.advance()
        server.inject(Fault.bad_records())
        reports.append(poller.poll_once())
        poller.close()
        bad_ids = {Market.bundled().frame(2, frame_seconds=FRAME_SECONDS)[i]["id"] for i in DEFAULT_CORRUPTIONS}
    _stream_once(spark, layout)
    return layout, reports, bad_ids


def test_every_valid_replayed_record_is_in_the_warehouse_once(pipeline_run):
    layout, _reports, bad_ids = pipeline_run
    expected = _expected_ticks([0, 1, 2], skip={2: bad_ids})
    rows = _warehouse_rows(
        layout,
        "SELECT coin_id, strftime(last_updated, '%Y-%m-%dT%H:%M:%S.%gZ'), price FROM market_ticks",
    )
    loaded = {(coin, updated): price for coin, updated, price in rows}
    assert len(rows) == len(loaded), "a (coin, last_updated) key was loaded twice"
    assert loaded == expected


def test_repeated_poll_lands_but_adds_no_rows(pipeline_run):
    layout, reports, _bad = pipeline_run
    first, repeat = reports[0], reports[1]
    assert first.accepted == repeat.accepted > 0 and repeat.landed
    from_frame_0 = _warehouse_rows(
        layout, f"SELECT count(*) FROM market_ticks WHERE poll_id IN ('{first.poll_id}', '{repeat.poll_id}')"
    )[0][0]
    # Thin coins repeat their last_updated in every frame: their one row may come from any poll.
    frame_0_ids = {r["id"] for r in Market.bundled().frame(0, frame_seconds=FRAME_SECONDS)[:TOP_N]}
    thin = len(frame_0_ids & set(Market.bundled().frozen_ids))
    assert first.accepted - thin <= from_frame_0 <= first.accepted


def test_invalid_records_are_rejected_with_reasons_and_the_rest_of_the_poll_lands(pipeline_run):
    layout, reports, bad_ids = pipeline_run
    corrupted = reports[3]
    # The dead coin (null price) is rejected in every poll; the corrupted ones in this one.
    assert corrupted.rejected == reports[2].rejected + len(DEFAULT_CORRUPTIONS)
    assert any("current_price" in reason for reason in corrupted.rejections)
    assert any("last_updated" in reason for reason in corrupted.rejections)
    landed = _warehouse_rows(
        layout, f"SELECT count(*) FROM market_ticks WHERE poll_id = '{corrupted.poll_id}'"
    )[0][0]
    assert 0 < landed <= corrupted.accepted
    in_poll = _warehouse_rows(
        layout,
        f"SELECT count(*) FROM market_ticks WHERE poll_id = '{corrupted.poll_id}' "
        f"AND coin_id IN ({', '.join(repr(i) for i in bad_ids if i)})",
    )[0][0]
    assert in_poll == 0


def test_stream_run_again_on_same_checkpoint_adds_no_rows(spark, pipeline_run):
    layout, _reports, _bad = pipeline_run
    before = _warehouse_rows(layout, "SELECT count(*), count(DISTINCT _load_id) FROM market_ticks")
    _stream_once(spark, layout)
    assert _warehouse_rows(layout, "SELECT count(*), count(DISTINCT _load_id) FROM market_ticks") == before


def test_landed_files_are_one_ndjson_object_per_poll_under_dt_hour(pipeline_run):
    layout, reports, _bad = pipeline_run
    files = sorted(Path(layout.archive).rglob("*.ndjson")) + sorted(Path(layout.landing).rglob("*.ndjson"))
    names = {f.stem for f in files}
    assert names == {r.poll_id for r in reports}
    for f in files:
        assert f.parent.name.startswith("hour=") and f.parent.parent.name.startswith("dt=")


def _cloud_entries(records: list[logging.LogRecord]) -> list[dict]:
    """The records as Cloud Logging would hold them: the producer's JSON lines (its own formatter)
    as serial console text, the job's lines (its driver's format) as Dataproc driver output. The
    envelopes follow Google's documentation (cdktf/infra/monitoring/log_metrics.py); the payloads are the real lines."""
    from jobs.stream import LOG_FORMAT
    from producer.logs import JsonFormatter

    producer, job = JsonFormatter(), logging.Formatter(LOG_FORMAT)
    entries = []
    for record in records:
        if record.name.startswith("producer"):
            entries.append({"resource": {"type": "gce_instance"},
                            "logName": "projects/p/logs/serialconsole.googleapis.com%2Fserial_port_1_output",
                            "textPayload": producer.format(record)})
        else:
            entries.append({"resource": {"type": "cloud_dataproc_job"},
                            "logName": "projects/p/logs/dataproc.job.driver",
                            "jsonPayload": {"message": job.format(record)}})
    return entries


def test_each_log_metric_filter_matches_the_lines_the_code_writes(pipeline_run, log_records):
    """Renaming a word of a log line (core/health.py or its writers) fails here: the cloud
    alerts would count nothing."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cdktf"))
    from infra.monitoring.log_metrics import VALUE_FIELDS, log_filters, value_extractor
    from jobs.metrics import ProgressListener, StreamMetrics

    from .logging_filter import extract, matches

    layout, reports, _bad = pipeline_run
    ProgressListener(StreamMetrics()).onQueryIdle(None)  # what a quiet stream writes
    entries = _cloud_entries(log_records)
    hits = {key: [e for e in entries if matches(filter_, e)] for key, filter_ in log_filters().items()}
    assert len(hits["polls"]) == len(reports)  # one per poll; not poll_overran, not producer_started
    assert len(hits["stream-starts"]) >= 1  # one a stream run (this module runs a second one)
    batches = hits["records"]
    assert batches and hits["quarantined"] == batches
    assert len(hits["stream-reports"]) == len(batches) + 1  # the batches and the idle line
    values = {key: [extract(value_extractor(field), e) for e in hits[key]] for key, field in VALUE_FIELDS.items()}
    assert all(v is not None and float(v) >= 0 for found in values.values() for v in found)
    ticks, quarantined = _warehouse_rows(layout, "SELECT (SELECT count(*) FROM market_ticks), "
                                                 "(SELECT count(*) FROM quarantine)")[0]
    assert sum(float(v) for v in values["quarantined"]) == quarantined
    assert sum(float(v) for v in values["records"]) >= ticks + quarantined
    assert 0 < len(hits["data-age"]) <= len(batches)
