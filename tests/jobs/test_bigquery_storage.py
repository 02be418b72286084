"""The Storage Write path against bqemulator with the real clients: each replay state, and failures.

The emulator (scripts/bigquery_emulator.py) serves BigQuery's REST and Storage Write gRPC APIs;
the warehouse talks to it with the real ``bigquery.Client`` and ``BigQueryWriteClient``.
Where the emulator is not BigQuery (docs/STREAM.md, "The BigQuery stand-in"), the tests say
so: a committed stream shows no ``commit_time`` and a second commit answers
INVALID_STREAM_STATE, so "committed" is recognised by the rows under the load id there;
BigQuery's own answers (``commit_time``, STREAM_ALREADY_COMMITTED) are taken by
:class:`CommittedOnBigQuery`, which answers as BigQuery documents and records the requests.
The emulator keeps no load jobs by the id a load asks for, so the load-jobs path's jobs a
switched stream finds are kept by :class:`LoadJobsOnBigQuery` (``jobs.get`` as BigQuery
documents it: the job of that id, or 404).
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.api_core.exceptions import BadRequest, NotFound, ServiceUnavailable
from google.cloud import bigquery
from google.cloud.bigquery_storage_v1 import types

from core.schema import arrow_schema
from core.tables import LOAD_ID, QUARANTINE_FIELDS, QUARANTINE_TABLE, TICK_FIELDS, TICKS_TABLE
from jobs.errors import WarehouseError
from jobs.loaders import LoadId, StagedFiles
from jobs.loaders.bigquery import load_job_id
from jobs.loaders.bigquery_storage import RECORDS_FOLDER, StorageWriteWarehouse, _write_client
from jobs.locations import Location

PROJECT = "test-project"
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
_datasets = itertools.count()


def staged_rows(fields, load_id: LoadId, count: int, folder: Path) -> tuple[str, ...]:
    """``count`` rows in ``fields``' columns and modes, as the stager writes them, each value from the schema."""
    values = {"string": lambda name, i: f"{name}-{load_id.batch_id}-{i}", "float64": lambda name, i: float(i),
              "int64": lambda name, i: i, "timestamp": lambda name, i: T0 + timedelta(seconds=i)}
    rows = [{f.name: str(load_id) if f.name == LOAD_ID else values[f.type](f.name, i) for f in fields}
            for i in range(count)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "part-00000.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(fields)), path)
    return (f"file:{path}",)


@pytest.fixture
def target(bq_emulator, monkeypatch, tmp_path):
    """A fresh dataset with the warehouse's tables, the environment naming the emulator, a staging dir."""
    dataset = f"storage_write_{next(_datasets)}"
    bq_emulator.create_tables(PROJECT, dataset)
    for name, value in bq_emulator.environment.items():
        monkeypatch.setenv(name, value)
    return dataset, Location.parse(tmp_path / "staging", option="--staging")


def checkpoint(target) -> Location:
    return Location.parse(target[1].local_path.parent / "checkpoint", option="--checkpoint")


def warehouse(target, write_client: Any = None, client: Any = None) -> StorageWriteWarehouse:
    dataset, staging = target
    built = StorageWriteWarehouse(PROJECT, dataset, write_client=write_client, client=client)
    built.check_staging(staging)
    built.use_checkpoint(checkpoint(target))
    built.setup()
    return built


def staged(target, load_id: LoadId, ticks: int = 3, quarantined: int = 1) -> StagedFiles:
    root = target[1].local_path / f"batch_id={load_id.batch_id}"
    return StagedFiles(
        ticks=staged_rows(TICK_FIELDS, load_id, ticks, root / TICKS_TABLE) if ticks else (),
        quarantine=staged_rows(QUARANTINE_FIELDS, load_id, quarantined, root / QUARANTINE_TABLE) if quarantined else (),
        newest_event_time=T0,
    )


def rows(bq_emulator, target, table: str) -> list[str]:
    client = bq_emulator.client(PROJECT)
    try:
        return sorted(r[0] for r in client.query(f"SELECT {LOAD_ID} FROM `{PROJECT}.{target[0]}.{table}`").result())
    finally:
        client.close()


def record_paths(target) -> list[Path]:
    """The stream records, newest version of a batch first."""
    return sorted((checkpoint(target).local_path / RECORDS_FOLDER).rglob("batch_*.json"))


def records(target) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in record_paths(target)]


class FailingCommit:
    """The real write client, whose BatchCommitWriteStreams fails for the tables named: a crash
    after the streams were finalized and recorded, before (some of) the commits."""

    def __init__(self, tables: set[str]) -> None:
        self.real = _write_client()
        self.tables = tables

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def batch_commit_write_streams(self, request: Any) -> Any:
        if request.parent.rsplit("/", 1)[-1] in self.tables:
            raise ServiceUnavailable("injected: the commit never reached BigQuery")
        return self.real.batch_commit_write_streams(request=request)


LOAD = LoadId("5d1c1b4e-8f7a-4c2e-9b1d-2a6f0e3c7d84", 7)


def test_a_batch_never_written_is_written_committed_and_recorded(bq_emulator, target):
    with warehouse(target) as wh:
        result = wh.load_batch(LOAD, staged(target, LOAD))
    assert (result.ticks, result.quarantined, result.already_loaded) == (3, 1, False)
    assert rows(bq_emulator, target, TICKS_TABLE) == [str(LOAD)] * 3
    assert rows(bq_emulator, target, QUARANTINE_TABLE) == [str(LOAD)]
    (record,) = records(target)
    assert record["load_id"] == str(LOAD)
    assert {record[t]["rows"] for t in (TICKS_TABLE, QUARANTINE_TABLE)} == {3, 1}


def test_a_replayed_committed_batch_adds_nothing(bq_emulator, target):
    with warehouse(target) as wh:
        wh.load_batch(LOAD, staged(target, LOAD))
        again = wh.load_batch(LOAD, staged(target, LOAD))
    assert (again.ticks, again.quarantined, again.already_loaded) == (3, 1, True)
    assert rows(bq_emulator, target, TICKS_TABLE) == [str(LOAD)] * 3
    assert rows(bq_emulator, target, QUARANTINE_TABLE) == [str(LOAD)]


def test_a_failed_commit_fails_the_batch_and_the_replay_commits_the_recorded_streams(bq_emulator, target):
    with warehouse(target, FailingCommit({TICKS_TABLE, QUARANTINE_TABLE})) as wh:
        with pytest.raises(ServiceUnavailable, match="injected"):
            wh.load_batch(LOAD, staged(target, LOAD))
    assert rows(bq_emulator, target, TICKS_TABLE) == []  # finalized, recorded, invisible
    recorded = records(target)
    with warehouse(target) as wh:
        replay = wh.load_batch(LOAD, staged(target, LOAD, ticks=5))  # a replay restages: the record wins
    assert (replay.ticks, replay.quarantined, replay.already_loaded) == (3, 1, False)
    assert rows(bq_emulator, target, TICKS_TABLE) == [str(LOAD)] * 3
    assert rows(bq_emulator, target, QUARANTINE_TABLE) == [str(LOAD)]
    assert records(target) == recorded


def test_each_table_commits_on_its_own_a_replay_commits_only_the_one_left(bq_emulator, target):
    with warehouse(target, FailingCommit({QUARANTINE_TABLE})) as wh:
        with pytest.raises(ServiceUnavailable):
            wh.load_batch(LOAD, staged(target, LOAD))
    assert (rows(bq_emulator, target, TICKS_TABLE), rows(bq_emulator, target, QUARANTINE_TABLE)) == (
        [str(LOAD)] * 3, [])
    with warehouse(target) as wh:
        replay = wh.load_batch(LOAD, staged(target, LOAD))
    assert not replay.already_loaded
    assert rows(bq_emulator, target, TICKS_TABLE) == [str(LOAD)] * 3
    assert rows(bq_emulator, target, QUARANTINE_TABLE) == [str(LOAD)]


def test_a_recorded_stream_gone_uncommitted_is_written_again(bq_emulator, target):
    with warehouse(target, FailingCommit({TICKS_TABLE, QUARANTINE_TABLE})) as wh:
        with pytest.raises(ServiceUnavailable):
            wh.load_batch(LOAD, staged(target, LOAD))
    (path,) = record_paths(target)
    record = json.loads(path.read_text())
    gone = record[TICKS_TABLE]["stream"].rsplit("/", 1)[0] + "/0123456789abcdef"
    path.write_text(json.dumps({**record, TICKS_TABLE: {**record[TICKS_TABLE], "stream": gone}}))
    with warehouse(target) as wh:
        replay = wh.load_batch(LOAD, staged(target, LOAD))
    assert (replay.ticks, replay.already_loaded) == (3, False)
    assert rows(bq_emulator, target, TICKS_TABLE) == [str(LOAD)] * 3
    assert [p.name for p in record_paths(target)] == ["batch_7.1.json", "batch_7.json"]  # a new version
    assert records(target)[0][TICKS_TABLE]["stream"] != gone


def test_a_refused_commit_with_part_of_the_rows_in_the_table_fails_with_a_clear_error(bq_emulator, target):
    with warehouse(target) as wh:
        wh.load_batch(LOAD, staged(target, LOAD))
    (path,) = record_paths(target)
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, TICKS_TABLE: {**record[TICKS_TABLE], "rows": 4}}))
    with warehouse(target) as wh, pytest.raises(WarehouseError, match=r"holds 3 of its 4 rows.*rather than load it twice"):
        wh.load_batch(LOAD, staged(target, LOAD))
    assert rows(bq_emulator, target, TICKS_TABLE) == [str(LOAD)] * 3


def test_only_the_last_batch_keeps_its_record(bq_emulator, target):
    with warehouse(target) as wh:
        for batch in (1, 2, 3):
            wh.load_batch(LoadId(LOAD.query_id, batch), staged(target, LoadId(LOAD.query_id, batch)))
        empty = wh.load_batch(LoadId(LOAD.query_id, 4), StagedFiles((), ()))
    assert (empty.ticks, empty.quarantined) == (0, 0)
    assert [r["load_id"] for r in records(target)] == [f"{LOAD.query_id}/3"]
    assert len(rows(bq_emulator, target, TICKS_TABLE)) == 9


class CommittedOnBigQuery:
    """BigQuery's documented answers the emulator does not give: a committed stream's
    ``commit_time`` from GetWriteStream, STREAM_ALREADY_COMMITTED from a second commit."""

    def __init__(self, *, shows_commit_time: bool) -> None:
        self.shows_commit_time = shows_commit_time
        self.requests: list[tuple[str, Any]] = []

    def get_write_stream(self, name: str) -> types.WriteStream:
        self.requests.append(("GetWriteStream", name))
        return types.WriteStream(name=name, commit_time=T0 if self.shows_commit_time else None)

    def batch_commit_write_streams(self, request: Any) -> types.BatchCommitWriteStreamsResponse:
        self.requests.append(("BatchCommitWriteStreams", (request.parent, list(request.write_streams))))
        return types.BatchCommitWriteStreamsResponse(stream_errors=[types.StorageError(
            code=types.StorageError.StorageErrorCode.STREAM_ALREADY_COMMITTED, entity=request.write_streams[0])])


@pytest.mark.parametrize("shows_commit_time", [True, False])
def test_on_bigquery_a_committed_stream_is_recognised_from_its_answers_without_a_query(tmp_path, shows_commit_time):
    fake = CommittedOnBigQuery(shows_commit_time=shows_commit_time)
    wh = StorageWriteWarehouse(PROJECT, "cryptopipe_dev", write_client=fake, client=object())  # no query: no client
    wh.use_checkpoint(Location.parse(tmp_path, option="--checkpoint"))
    stream = f"projects/{PROJECT}/datasets/cryptopipe_dev/tables/market_ticks/streams/abc"
    wh._folder(LOAD).create("batch_7.json", json.dumps({TICKS_TABLE: {"stream": stream, "rows": 3}}).encode())
    result = wh.load_batch(LOAD, StagedFiles(("file:/nowhere.parquet",), ()))
    assert (result.ticks, result.already_loaded) == (3, True)
    expected = [("GetWriteStream", stream)]
    if not shows_commit_time:
        expected.append(("BatchCommitWriteStreams", (stream.rsplit("/streams/", 1)[0], [stream])))
    assert fake.requests == expected


def test_staged_rows_that_do_not_fit_the_table_fail_the_batch_clearly_and_nothing_is_written(bq_emulator, target):
    folder = target[1].local_path / "batch_id=7" / TICKS_TABLE
    good = staged_rows(TICK_FIELDS, LOAD, 2, folder)
    table = pq.read_table(good[0].removeprefix("file:"))
    nullable = pa.schema([f.with_nullable(True) for f in table.schema])
    broken = table.cast(nullable).set_column(0, nullable.field(0), pa.array([None, "x"], pa.string()))
    pq.write_table(broken, good[0].removeprefix("file:"))  # coin_id is REQUIRED: a null cannot go in
    refused = r"staged rows of batch 7 do not fit test-project\.storage_write_\d+\.market_ticks \(.*coin_id.*non-null"
    with warehouse(target) as wh, pytest.raises(WarehouseError, match=refused):
        wh.load_batch(LOAD, StagedFiles(good, ()))
    assert rows(bq_emulator, target, TICKS_TABLE) == []
    assert records(target) == []  # the replay writes it again, from a fixed stage


class RefusingAppend(FailingCommit):
    """The real write client, whose AppendRows answers with an error, as BigQuery does for rows it
    refuses (an ``AppendRowsResponse`` carrying ``error`` and ``row_errors``) instead of raising."""

    def __init__(self) -> None:
        super().__init__(set())
        self.appended: list[tuple[str, int]] = []

    def append_rows(self, requests: Any, **options: Any) -> Any:
        from google.rpc import status_pb2

        for request in requests:
            self.appended.append((request.write_stream, request.offset))
            yield types.AppendRowsResponse(
                error=status_pb2.Status(code=3, message="Errors found while processing rows"),
                row_errors=[types.RowError(index=1, code=types.RowError.RowErrorCode.FIELDS_ERROR,
                                           message="value out of range")],
                write_stream=request.write_stream,
            )


def test_an_append_refused_fails_the_batch_naming_the_stream_and_the_replay_loads_it_once(bq_emulator, target):
    refusing = RefusingAppend()
    with warehouse(target, refusing) as wh, pytest.raises(
        WarehouseError, match=r"market_ticks \(stream projects/.+/streams/\w+\) failed: 3 Errors found.*; row 1: value"
    ):
        wh.load_batch(LOAD, staged(target, LOAD))
    assert [offset for _, offset in refusing.appended] == [0]  # one request: 3 rows from offset 0
    assert records(target) == [] and rows(bq_emulator, target, TICKS_TABLE) == []
    with warehouse(target) as wh:
        replay = wh.load_batch(LOAD, staged(target, LOAD))
    assert (replay.ticks, replay.quarantined, replay.already_loaded) == (3, 1, False)
    assert rows(bq_emulator, target, TICKS_TABLE) == [str(LOAD)] * 3


class LoadJob:
    """A load job of the load-jobs path as ``get_job`` hands it back: id, destination, outcome."""

    job_type = "load"

    def __init__(self, job_id: str, destination: str, rows: int, error: dict[str, str] | None = None) -> None:
        self.job_id, self.output_rows, self.error_result = job_id, rows, error
        self.destination = bigquery.TableReference.from_string(destination)

    def result(self, timeout: float | None = None) -> LoadJob:
        if self.error_result is not None:
            raise BadRequest(self.error_result["message"])
        return self


class LoadJobsOnBigQuery:
    """The emulator's real client, with the load jobs an earlier load-jobs run left: ``get_job``
    answers the job of that id or 404, as BigQuery does, and records each request."""

    def __init__(self, bq_emulator, target, jobs: list[LoadJob]) -> None:
        self.real = bq_emulator.client(PROJECT)
        self.jobs = {job.job_id: job for job in jobs}
        self.gets: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def get_job(self, job_id: str, *, project: str, location: str | None) -> LoadJob:
        self.gets.append((job_id, project))
        if job_id not in self.jobs:
            raise NotFound(f"Not found: Job {project}:{location}.{job_id}")
        return self.jobs[job_id]


def load_jobs(target, table: str) -> tuple[str, ...]:
    """The ids of the load-jobs path's attempts 0 and 1 for LOAD into ``table``."""
    return tuple(load_job_id(f"{PROJECT}.{target[0]}.{table}", LOAD, attempt) for attempt in (0, 1))


FAILED = {"reason": "backendError", "message": "injected: the load job failed"}


def test_a_batch_the_load_jobs_path_loaded_is_not_written_again_after_switching(bq_emulator, target):
    ticks, quarantine = load_jobs(target, TICKS_TABLE)[0], load_jobs(target, QUARANTINE_TABLE)
    client = LoadJobsOnBigQuery(bq_emulator, target, [
        LoadJob(ticks, f"{PROJECT}.{target[0]}.{TICKS_TABLE}", rows=3),
        LoadJob(quarantine[0], f"{PROJECT}.{target[0]}.{QUARANTINE_TABLE}", rows=0, error=FAILED),
        LoadJob(quarantine[1], f"{PROJECT}.{target[0]}.{QUARANTINE_TABLE}", rows=1),  # its second attempt loaded
    ])
    with warehouse(target, client=client) as wh:
        replay = wh.load_batch(LOAD, staged(target, LOAD))
    assert (replay.ticks, replay.quarantined, replay.already_loaded) == (3, 1, True)
    assert client.gets == [(ticks, PROJECT), (quarantine[0], PROJECT), (quarantine[1], PROJECT)]
    assert rows(bq_emulator, target, TICKS_TABLE) == [] and rows(bq_emulator, target, QUARANTINE_TABLE) == []
    assert records(target) == []


def test_a_batch_whose_ticks_the_load_jobs_path_loaded_writes_only_its_quarantine(bq_emulator, target):
    ticks = load_jobs(target, TICKS_TABLE)[0]
    client = LoadJobsOnBigQuery(bq_emulator, target, [LoadJob(ticks, f"{PROJECT}.{target[0]}.{TICKS_TABLE}", rows=3)])
    with warehouse(target, client=client) as wh:
        replay = wh.load_batch(LOAD, staged(target, LOAD))
    assert (replay.ticks, replay.quarantined, replay.already_loaded) == (3, 1, False)
    assert client.gets == [(ticks, PROJECT), (load_jobs(target, QUARANTINE_TABLE)[0], PROJECT)]
    assert rows(bq_emulator, target, TICKS_TABLE) == []  # the load job's rows; the stream wrote none
    assert rows(bq_emulator, target, QUARANTINE_TABLE) == [str(LOAD)]
    (record,) = records(target)
    assert record[TICKS_TABLE] == {"load_job": ticks, "rows": 3}
    with warehouse(target, client=client) as wh:  # and a crash now: the record knows both tables
        again = wh.load_batch(LOAD, staged(target, LOAD))
    assert (again.ticks, again.quarantined, again.already_loaded) == (3, 1, True)
    assert rows(bq_emulator, target, QUARANTINE_TABLE) == [str(LOAD)]


def test_a_failed_load_job_is_not_loaded_and_only_a_runs_first_batch_asks(bq_emulator, target):
    ticks = load_jobs(target, TICKS_TABLE)
    client = LoadJobsOnBigQuery(bq_emulator, target, [
        LoadJob(ticks[0], f"{PROJECT}.{target[0]}.{TICKS_TABLE}", rows=0, error=FAILED)])
    with warehouse(target, client=client) as wh:
        replay = wh.load_batch(LOAD, staged(target, LOAD, quarantined=0))
        following = LoadId(LOAD.query_id, LOAD.batch_id + 1)
        wh.load_batch(following, staged(target, following, quarantined=0))
    assert (replay.ticks, replay.already_loaded) == (3, False)
    assert client.gets == [(ticks[0], PROJECT), (ticks[1], PROJECT)]  # the next batch cannot be a replay
    assert rows(bq_emulator, target, TICKS_TABLE) == sorted([str(LOAD)] * 3 + [str(following)] * 3)
