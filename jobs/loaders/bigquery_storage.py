"""The cloud warehouse's fresh path: BigQuery's Storage Write API, PENDING streams, exactly once.

Load jobs cap the trigger at 115.2 s (1,500 load jobs per table per day,
:mod:`jobs.loaders.bigquery`). The Storage Write API has no per-table job quota: a
batch costs one ``CreateWriteStream`` per table that has rows, against 10,000 a project
and region an hour, so the trigger floor is 3,600 x 2 / 10,000 = 0.72 s
(:mod:`core.bigquery_quotas`; docs/STREAM.md, "Storage Write API").

One batch, per table with rows: the staged Parquet (the table's columns and modes,
``_load_id`` last, :mod:`jobs.staging`) is read on the driver as Arrow in the schema
:func:`core.schema.arrow_schema` derives from the one record schema, appended to a new
PENDING stream with explicit offsets in requests cut by their serialized size
(:data:`APPEND_REQUEST_BYTES`, under BigQuery's 10,000,000), each call carrying the
routing header BigQuery needs (:data:`ROUTING_HEADER`), and the stream finalized (its
rows stay invisible). A transient error (:data:`TRANSIENT`) starts the table over on a
new stream, at most :data:`APPEND_ATTEMPTS` times with jittered backoff; the abandoned
stream is never committed, so no row goes in twice. Then the batch's stream names go
into its *stream record*, one small JSON object beside the checkpoint
(``<checkpoint>/_write_streams/``, which no lifecycle rule ages out), created whole and
create-only before anything is committed, and each table's stream is committed with
``BatchCommitWriteStreams``. A commit is atomic per table, so ticks and quarantine are
two commits, and each is made idempotent on its own.

A replayed batch (Spark runs it again after a crash) is recognised by its record:

- no record: nothing was committed (streams of the killed run, if any, stay pending
  and are never seen), so the batch is written again;
- a record: for each of its tables, the stream is committed if it was not
  (``get_write_stream`` shows no ``commit_time`` and the commit succeeds now), or
  found committed (a ``commit_time``, ``STREAM_ALREADY_COMMITTED``, or, when the
  stream cannot be read or committed for another reason, the table holding exactly the
  stream's rows under this load id, in the partitions the table still keeps:
  :meth:`StorageWriteWarehouse._rows_loaded`). A table that holds none of them (the
  pending stream was garbage-collected before the replay came) is written again under
  a new version of the record; any other count fails the batch.

Two drivers on one checkpoint (a job resubmitted while the old one runs) never both
commit a batch: records are created create-only, so the first driver's streams are the
batch's and a second one commits those or fails; and each driver registers itself
under the next number when its first batch runs, so an older driver that finds a newer
one registered refuses to record another batch (docs/STREAM.md, "Two drivers on one
checkpoint").

A batch the load-jobs path loaded (:mod:`jobs.loaders.bigquery`) has no record but may
have load jobs: switching ``bigquery_write`` replaces the Dataproc job, and the old driver
may have been cancelled after its load jobs and before Spark's checkpoint commit. So the
first batch of a run that finds no record (only the first can be a replay: Spark replays
its last uncommitted batch when a query starts) asks BigQuery for that batch's load jobs
(:meth:`StorageWriteWarehouse._loaded_by_load_jobs`). A table whose job succeeded is
loaded and not written again; it enters the record as ``{"load_job": id, "rows": n}``.

Every failure of the write path (an append error, a row count that does not match, a
refused commit) raises :class:`~jobs.errors.WarehouseError` naming the table and the
stream: the batch fails, the stream stops, and the replay starts from the record.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from google.api_core import exceptions as api_errors
from pyarrow import fs as pafs

from core.bigquery_quotas import DEFAULT_TRIGGER_SECONDS, MIN_TRIGGER_SECONDS
from core.schema import arrow_schema
from core.tables import LOAD_ID
from core.uris import file_uri
from jobs.errors import ConfigError, WarehouseError
from jobs.loaders.base import LoadId, LoadResult, StagedFiles
from jobs.loaders.bigquery import _QUARANTINE, _TICKS, BigQueryWarehouse, _check_is_our_load, _Table, load_job_id
from jobs.loaders.stream_records import GCS_EMULATOR_HOST, RecordFolder, open_folder
from jobs.locations import Location

logger = logging.getLogger(__name__)

#: BigQuery's limit on one AppendRows request, serialized: "must be less than 10 MB"
#: (AppendRowsRequest reference); the Java client enforces 10L * 1000L * 1000L
#: (StreamWriter.getApiMaxRequestBytes). docs/STREAM.md, "The strict stand-in".
MAX_REQUEST_BYTES = 10_000_000
#: What a request is cut to: its whole serialized size (rows, schema, stream name, offset)
#: is measured, and 1 MB is left for what the server may count beyond the message.
APPEND_REQUEST_BYTES = MAX_REQUEST_BYTES - 1_000_000
#: The routing header of an AppendRows call, as the client library's own
#: ``bigquery_storage_v1/writer.py`` (AppendRowsStream) sends it: the generated client
#: adds an empty one to this bidi call, and BigQuery then cannot route it
#: (googleapis/python-bigquery-storage#577, googleapis/google-cloud-python#16650).
ROUTING_HEADER = "x-goog-request-params"
#: Errors after which a table's rows are written again on a new stream: the service was
#: unavailable, a quota briefly exhausted, a server error "that can be retried"
#: (AppendRowsResponse.error reference); as exceptions and as in-band status codes.
TRANSIENT = (api_errors.ServiceUnavailable, api_errors.TooManyRequests, api_errors.InternalServerError,
             api_errors.Aborted)
_TRANSIENT_CODES = {14, 8, 13, 10}  # UNAVAILABLE, RESOURCE_EXHAUSTED, INTERNAL, ABORTED
#: Streams one table of one batch may take in a run, and the backoff between them
#: (full jitter: a uniform wait up to base x 2^attempt, capped).
APPEND_ATTEMPTS = 4
BACKOFF_SECONDS = (1.0, 16.0)
#: Where the stream records live, under the checkpoint.
RECORDS_FOLDER = "_write_streams"
#: Environment: the emulator's gRPC ``host:port``; with ``BIGQUERY_EMULATOR_HOST`` (the
#: BigQuery client's own variable, for REST) the clients talk to it without credentials.
STORAGE_EMULATOR_HOST = "BIGQUERY_STORAGE_EMULATOR_HOST"
REST_EMULATOR_HOST = "BIGQUERY_EMULATOR_HOST"


class _Transient(Exception):
    """A transient failure of one stream: the table is written again on a new one."""


class StorageWriteWarehouse(BigQueryWarehouse):
    """Loads micro-batches into ``market_ticks`` and ``quarantine`` through PENDING write streams.

    ``write_client`` is a ``BigQueryWriteClient`` or a stand-in (tests); without one,
    :meth:`setup` builds one. The stream records live beside the checkpoint, which
    :meth:`use_checkpoint` (called by the job's config) or ``records`` gives;
    ``storage_client`` is the ``storage.Client`` for ``gs://`` records (tests).
    ``sleep``, ``rng`` and ``now`` are the backoff's and the partition horizon's clock.
    """

    default_trigger_seconds = DEFAULT_TRIGGER_SECONDS["storage-write"]
    min_trigger_seconds = MIN_TRIGGER_SECONDS["storage-write"]

    def __init__(
        self, project: str, dataset: str, *, records: Location | None = None, client: Any = None,
        write_client: Any = None, storage_client: Any = None, sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None, now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        super().__init__(project, dataset, client=client)
        self.records = records
        self._write = write_client
        self._owns_write = write_client is None
        self._storage = storage_client
        self._sleep, self._rng, self._now = sleep, rng or random.Random(), now
        self._first_batch = True
        self._driver: int | None = None

    def check_staging(self, staging: Location) -> None:
        """Any staging the driver can read (local for local Spark, ``gs://`` on Dataproc)."""
        if staging.scheme not in ("file", "gs"):
            raise ConfigError(f"--staging: expected a local path or gs:// location, got {staging.uri!r}")

    def use_checkpoint(self, checkpoint: Location) -> None:
        """The stream records go beside the query's state, where no lifecycle rule deletes them."""
        if checkpoint.scheme not in ("file", "gs"):
            raise ConfigError(f"--checkpoint: expected a local path or gs:// location, got {checkpoint.uri!r}")
        self.records = checkpoint.child(RECORDS_FOLDER)

    def setup(self) -> None:
        if self._client is None and os.environ.get(REST_EMULATOR_HOST):
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import bigquery

            self._client = bigquery.Client(project=self.project, credentials=AnonymousCredentials())
        super().setup()
        self._first_batch = True  # a (re)started query: its first batch may be a replay
        self._driver = None  # and it registers as the newest driver then
        if self._write is None:
            self._write = _write_client()

    def close(self) -> None:
        if self._owns_write and self._write is not None:
            self._write.transport.close()
            self._write = None
        super().close()

    def load_batch(self, load_id: LoadId, staged: StagedFiles) -> LoadResult:
        if self._write is None or self.records is None:
            raise WarehouseError("StorageWriteWarehouse.load_batch before setup() and use_checkpoint()")
        folder = self._folder(load_id)
        if self._driver is None:
            self._driver = _register_driver(folder)
        files = {_TICKS.name: staged.ticks, _QUARANTINE.name: staged.quarantine}
        version, record = _read_record(folder, load_id)
        earlier = record is not None
        first, self._first_batch = self._first_batch, False
        if record is None:
            record = self._loaded_by_load_jobs(load_id, files) if first else {}
            earlier = bool(record) and record.keys() == {name for name, uris in files.items() if uris}
            written = {t.name: self._write_table(t, load_id, files[t.name]) for t in (_TICKS, _QUARANTINE)
                       if files[t.name] and t.name not in record}
            if not written:
                return _result(load_id, record, staged, already_loaded=earlier)
            record.update(written)
            version = 0
            self._create_record(folder, load_id, version, record)
        found_committed = []
        for table in (_TICKS, _QUARANTINE):
            if "load_job" in record.get(table.name, {}):
                found_committed.append(True)  # the load-jobs path loaded this table
            elif table.name in record:
                committed, entry = self._commit(table, load_id, record[table.name], files[table.name])
                found_committed.append(committed)
                if entry != record[table.name]:
                    record[table.name] = entry
                    version += 1
                    self._create_record(folder, load_id, version, record)
                    self._commit(table, load_id, entry, ())
        _forget_before(folder, load_id)
        return _result(load_id, record, staged, already_loaded=earlier and all(found_committed))

    # -- batches the load-jobs path loaded ---------------------------------------------

    def _loaded_by_load_jobs(self, load_id: LoadId, files: dict[str, Sequence[str]]) -> dict[str, dict[str, Any]]:
        """The tables with rows whose load job for ``load_id`` succeeded: their record entries.

        The load-jobs path's ids are deterministic (:func:`~jobs.loaders.bigquery.load_job_id`)
        and its attempts start in order, each only after every earlier one failed, so the
        attempts are walked until one is not found (none loaded) or one succeeded (the
        table holds the batch: its ``output_rows``). A failed attempt loaded nothing.
        """
        found = {}
        for table in (_TICKS, _QUARANTINE):
            if not files[table.name]:
                continue
            destination = self._table_id(table)
            attempt = 0
            while True:
                job_id = load_job_id(destination, load_id, attempt)
                try:
                    job = self._client.get_job(job_id, project=self.project, location=self._location)
                except api_errors.NotFound:
                    break
                _check_is_our_load(job, destination)
                if self._wait(job) is None:
                    found[table.name] = {"load_job": job_id, "rows": job.output_rows or 0}
                    break
                attempt += 1
        return found

    # -- writing one table's stream ------------------------------------------------

    def _write_table(self, table: _Table, load_id: LoadId, uris: Sequence[str]) -> dict[str, Any]:
        """Write the staged rows of ``table`` to a new finalized PENDING stream; its record entry.

        A transient failure abandons the stream (never committed, its rows never seen)
        and starts over on a new one, so the rows go in once whatever failed where.
        """
        try:
            rows = _read_staged(uris, arrow_schema(table.fields))
        except (ValueError, pa.ArrowException) as error:  # ArrowInvalid, ArrowTypeError are both
            raise WarehouseError(
                f"the staged rows of batch {load_id.batch_id} do not fit {self._table_id(table)} ({error}); "
                f"nothing was written: {', '.join(uris)}"
            ) from error
        rows = self._kept_rows(table, load_id, rows)
        abandoned: list[str] = []
        for attempt in range(APPEND_ATTEMPTS):
            try:
                stream = self._write_stream(table, load_id, rows)
            except _Transient as failure:
                abandoned.append(str(failure))
                if attempt + 1 < APPEND_ATTEMPTS:
                    base, cap = BACKOFF_SECONDS
                    wait = self._rng.uniform(0, min(cap, base * 2**attempt))
                    logger.warning("batch %s, %s: %s; writing it again on a new stream in %.1f s",
                                   load_id.batch_id, self._table_id(table), failure, wait)
                    self._sleep(wait)
                continue
            return {"stream": stream, "rows": rows.num_rows, "days": _days(rows, table)}
        raise WarehouseError(
            f"writing batch {load_id.batch_id} to {self._table_id(table)} failed {APPEND_ATTEMPTS} times "
            f"({'; '.join(abandoned)}); nothing was committed, the replay writes it again"
        )

    def _write_stream(self, table: _Table, load_id: LoadId, rows: pa.Table) -> str:
        """Append ``rows`` to a new stream and finalize it; its name. Raises _Transient."""
        from google.cloud.bigquery_storage_v1 import types

        try:
            stream = self._write.create_write_stream(
                parent=self._parent(table), write_stream=types.WriteStream(type_=types.WriteStream.Type.PENDING)
            ).name
        except TRANSIENT as error:
            raise _Transient(f"creating a stream: {error}") from error
        where = f"batch {load_id.batch_id} to {self._table_id(table)} (stream {stream})"
        requests = _append_requests(stream, rows, where)
        try:
            if requests:
                # retry=None: the generated client's retry would re-open the call on the
                # same, already consumed requests and send nothing (docs/STREAM.md).
                responses = self._write.append_rows(
                    iter(requests), retry=None,
                    metadata=((ROUTING_HEADER, f"write_stream={stream}"),),
                )
                for response in responses:
                    if "error" in response:
                        message = (f"appending {where} failed: {response.error.code} {response.error.message}"
                                   + "".join(f"; row {e.index}: {e.message}" for e in response.row_errors))
                        if response.error.code in _TRANSIENT_CODES:
                            raise _Transient(message)
                        raise WarehouseError(message)
            finalized = self._write.finalize_write_stream(name=stream)
        except TRANSIENT as error:
            raise _Transient(f"appending {where}: {error}") from error
        if finalized.row_count != rows.num_rows:
            raise WarehouseError(
                f"stream {stream} of batch {load_id.batch_id} holds {finalized.row_count} rows, "
                f"{rows.num_rows} were appended to {self._table_id(table)}: not committed"
            )
        return stream

    def _kept_rows(self, table: _Table, load_id: LoadId, rows: pa.Table) -> pa.Table:
        """``rows`` without those in partitions the table has already expired: BigQuery would
        not keep them (or would refuse them, and the batch with them, at every replay)."""
        horizon = self._horizon(table)
        if horizon is None or rows.num_rows == 0:
            return rows
        keep = pc.greater_equal(pc.cast(rows.column(table.partition_field), pa.date32()), pa.scalar(horizon))
        kept = rows.filter(keep)
        if kept.num_rows < rows.num_rows:
            logger.warning("batch %s: %d rows of %s fall in partitions before %s, which the table expires: "
                           "not written", load_id.batch_id, rows.num_rows - kept.num_rows, self._table_id(table),
                           horizon)
        return kept

    def _horizon(self, table: _Table, margin_days: int = 0) -> date | None:
        """The oldest partition day ``table`` still keeps, plus ``margin_days``; None without expiration."""
        found = self._tables.get(table.name)
        expiration = found.time_partitioning.expiration_ms if found is not None and found.time_partitioning else None
        if not expiration:
            return None
        return (self._now() - timedelta(milliseconds=expiration)).date() + timedelta(days=margin_days)

    def _commit(
        self, table: _Table, load_id: LoadId, entry: dict[str, Any], uris: Sequence[str]
    ) -> tuple[bool, dict[str, Any]]:
        """Commit ``entry``'s stream unless it was; (True if it was committed before, the entry).

        A stream that cannot be read or committed is decided by the table's rows: BigQuery
        names a collected stream ``INVALID_STREAM_STATE`` ("not finalized or is garbaged")
        on commit, and its ``GetWriteStream`` answer is not documented, so NotFound,
        FailedPrecondition and InvalidArgument all go to the count (docs/STREAM.md).
        """
        from google.cloud.bigquery_storage_v1 import types

        try:
            if self._write.get_write_stream(name=entry["stream"]).commit_time:
                return True, entry
            response = self._write.batch_commit_write_streams(
                request=types.BatchCommitWriteStreamsRequest(parent=self._parent(table), write_streams=[entry["stream"]])
            )
        except (api_errors.NotFound, api_errors.FailedPrecondition, api_errors.InvalidArgument) as error:
            refused = str(error)
        else:
            if response.commit_time:
                return False, entry
            codes = {error.code for error in response.stream_errors}
            if codes == {types.StorageError.StorageErrorCode.STREAM_ALREADY_COMMITTED}:
                return True, entry
            refused = "; ".join(f"{e.code.name}: {e.error_message}" for e in response.stream_errors)
        loaded, expected = self._rows_loaded(table, load_id, entry)
        if loaded == expected:
            return True, entry
        if loaded == 0 and uris:
            # The stream is gone uncommitted: its rows never reached the table. Write them anew.
            return False, self._write_table(table, load_id, uris)
        raise WarehouseError(
            f"committing batch {load_id.batch_id} to {self._table_id(table)} (stream {entry['stream']}) was refused "
            f"({refused or 'no commit time'}) and the table holds {loaded} of its {expected} rows: "
            f"the batch fails rather than load it twice or lose it"
        )

    def _rows_loaded(self, table: _Table, load_id: LoadId, entry: dict[str, Any]) -> tuple[int, int]:
        """(rows of ``table`` under ``load_id``, rows of ``entry`` expected there): the truth
        when a commit's outcome is unclear. Only partitions the table keeps a day from now
        are compared, so rows the table has expired since (back-fill) count on neither side.

        A query job, run only on a replay whose commit was refused (rare: after a crash).
        """
        from google.cloud import bigquery

        horizon = self._horizon(table, margin_days=1)
        days = entry.get("days")
        if horizon is None or days is None:  # no expiration, or a record from before days were kept
            horizon, expected = None, entry["rows"]
        else:
            expected = sum(n for day, n in days.items() if date.fromisoformat(day) >= horizon)
            if expected == 0:
                return 0, 0  # every row fell in a partition the table no longer keeps
        parameters = [bigquery.ScalarQueryParameter("id", "STRING", str(load_id))]
        sql = f"SELECT COUNT(*) AS n FROM `{self._table_id(table)}` WHERE {LOAD_ID} = @id"
        if horizon is not None:
            sql += f" AND DATE({table.partition_field}) >= @horizon"
            parameters.append(bigquery.ScalarQueryParameter("horizon", "DATE", horizon))
        config = bigquery.QueryJobConfig(query_parameters=parameters)
        (row,) = self._client.query(sql, job_config=config, project=self.project).result()
        return row[0], expected

    def _parent(self, table: _Table) -> str:
        return f"projects/{self.project}/datasets/{self.dataset}/tables/{table.name}"

    # -- stream records -------------------------------------------------------------

    def _folder(self, load_id: LoadId) -> RecordFolder:
        """The records of one target and query: one object per batch, one per driver."""
        digest = hashlib.sha256(f"{self.project}.{self.dataset}\n{load_id.query_id}".encode()).hexdigest()[:20]
        return open_folder(self.records.child(digest), self._storage)

    def _create_record(self, folder: RecordFolder, load_id: LoadId, version: int, record: dict[str, Any]) -> None:
        """Create version ``version`` of the batch's record, create-only, unless a newer driver runs."""
        newer = folder.read(_driver_name(self._driver + 1))
        if newer is not None:
            raise WarehouseError(
                f"a newer driver registered on this checkpoint ({newer.decode()}) while this one (driver "
                f"{self._driver}) ran batch {load_id.batch_id}: this one stops without committing; cancel the "
                f"job that should not run (docs/STREAM.md, \"Two drivers on one checkpoint\")"
            )
        data = json.dumps({**record, "load_id": str(load_id)}, sort_keys=True).encode()
        if not folder.create(_record_name(load_id.batch_id, version), data):
            raise WarehouseError(
                f"batch {load_id.batch_id}'s stream record (version {version}) was written by another driver "
                f"first: this one commits nothing; the replay commits the recorded streams"
            )


def _record_name(batch_id: int, version: int) -> str:
    return f"batch_{batch_id}.json" if version == 0 else f"batch_{batch_id}.{version}.json"


def _driver_name(number: int) -> str:
    return f"driver_{number}.json"


def _read_record(folder: RecordFolder, load_id: LoadId) -> tuple[int, dict[str, Any] | None]:
    """(version, the batch's newest record) or (-1, None): a replaced entry is a new version."""
    version, record = -1, None
    while (data := folder.read(_record_name(load_id.batch_id, version + 1))) is not None:
        version, record = version + 1, json.loads(data)
    if record is not None:
        record.pop("load_id", None)
    return version, record


def _register_driver(folder: RecordFolder) -> int:
    """This driver's number: one more than any registered, created create-only."""
    numbers = [int(name[7:-5]) for name in folder.names() if name.startswith("driver_") and name.endswith(".json")]
    number = max(numbers, default=0) + 1
    who = json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                      "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}).encode()
    while not folder.create(_driver_name(number), who):
        number += 1
    return number


def _forget_before(folder: RecordFolder, load_id: LoadId) -> None:
    """Delete the records of the query's earlier batches: Spark replays only its last batch."""
    for name in folder.names():
        if name.startswith("batch_") and name.endswith(".json") and int(name[6:].split(".")[0]) < load_id.batch_id:
            folder.delete(name)


def _result(load_id: LoadId, record: dict[str, Any], staged: StagedFiles, *, already_loaded: bool) -> LoadResult:
    """The batch's outcome: each table's rows as its record entry counts them."""
    return LoadResult(
        load_id,
        record.get(_TICKS.name, {}).get("rows", 0),
        record.get(_QUARANTINE.name, {}).get("rows", 0),
        staged.newest_event_time,
        already_loaded=already_loaded,
    )


def _days(rows: pa.Table, table: _Table) -> dict[str, int]:
    """Rows per partition day (UTC): what the replay's count compares, partition by partition."""
    if rows.num_rows == 0:
        return {}
    counts = pc.value_counts(pc.cast(rows.column(table.partition_field), pa.date32()))
    return {str(item["values"]): item["counts"] for item in counts.to_pylist()}


def _append_requests(stream: str, rows: pa.Table, where: str) -> list[Any]:
    """AppendRows requests for ``rows`` from offset 0, each at most :data:`APPEND_REQUEST_BYTES`
    serialized, the stream's name included; the first carries the writer schema.

    A single row over the limit cannot be sent at all: the quarantine keeps raw lines
    short for that (docs/STREAM.md, "Quarantine"), so only a tick with megabytes in a
    field gets here, and its batch fails naming it.
    """
    from google.cloud.bigquery_storage_v1 import types

    schema = types.ArrowSchema(serialized_schema=rows.schema.serialize().to_pybytes())
    requests: list[Any] = []
    start, guess = 0, rows.num_rows
    while start < rows.num_rows:
        count = min(guess, rows.num_rows - start)
        batch = rows.slice(start, count).combine_chunks().to_batches()[0]
        data = types.AppendRowsRequest.ArrowData(
            rows=types.ArrowRecordBatch(serialized_record_batch=batch.serialize().to_pybytes()))
        if start == 0:
            data.writer_schema = schema
        request = types.AppendRowsRequest(write_stream=stream, offset=start, arrow_rows=data)
        size = types.AppendRowsRequest.pb(request).ByteSize()
        if size > APPEND_REQUEST_BYTES:
            if count == 1:
                raise WarehouseError(
                    f"row {start} of {where} is {size:,} bytes serialized, more than an AppendRows request "
                    f"may carry ({APPEND_REQUEST_BYTES:,}): nothing was written"
                )
            guess = max(1, int(count * APPEND_REQUEST_BYTES / size * 0.9))
            continue
        requests.append(request)
        start += count
    return requests


def _read_staged(uris: Sequence[str], schema: pa.Schema) -> pa.Table:
    """The staged Parquet files as one Arrow table in ``schema`` (a column missing or mistyped fails)."""
    tables = []
    for uri in uris:
        filesystem, path = _filesystem(uri)
        tables.append(pq.read_table(path, filesystem=filesystem, columns=schema.names).cast(schema))
    return pa.concat_tables(tables).combine_chunks()


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The Arrow file system and path of a Hadoop-style URI (``file:/abs``, ``file:///abs``, ``gs://b/p``)."""
    file = file_uri(uri)
    if file.scheme == "file":
        return pafs.LocalFileSystem(), file.path
    if file.scheme == "gs":
        emulator = os.environ.get(GCS_EMULATOR_HOST)
        if not emulator:
            return pafs.GcsFileSystem(), file.object_path
        where = urlsplit(emulator)
        return (pafs.GcsFileSystem(anonymous=True, scheme=where.scheme, endpoint_override=where.netloc),
                file.object_path)
    raise ConfigError(f"the Storage Write path reads local or gs:// files only, got {uri!r}")


def _write_client() -> Any:
    """A ``BigQueryWriteClient``: the environment's credentials, or the emulator's plain gRPC port."""
    from google.cloud.bigquery_storage_v1 import BigQueryWriteClient

    emulator = os.environ.get(STORAGE_EMULATOR_HOST)
    if not emulator:
        return BigQueryWriteClient()
    import grpc
    from google.cloud.bigquery_storage_v1.services.big_query_write.transports import BigQueryWriteGrpcTransport

    return BigQueryWriteClient(transport=BigQueryWriteGrpcTransport(channel=grpc.insecure_channel(emulator)))
