"""The cloud warehouse's fresh path: BigQuery's Storage Write API, PENDING streams, exactly once.

Load jobs cap the trigger at 115.2 s (1,500 load jobs per table per day,
:mod:`jobs.loaders.bigquery`). The Storage Write API has no per-table job quota: a
batch costs one ``CreateWriteStream`` per table that has rows, against 10,000 a project
and region an hour, so the trigger floor is 3,600 x 2 / 10,000 = 0.72 s
(:mod:`core.bigquery_quotas`; docs/STREAM.md, "Storage Write API").

One batch, per table with rows: the staged Parquet (the table's columns and modes,
``_load_id`` last, :mod:`jobs.staging`) is read on the driver as Arrow in the schema
:func:`core.schema.arrow_schema` derives from the one record schema, appended to a new
PENDING stream with explicit offsets, and the stream finalized (its rows stay invisible).
Then the batch's stream names go into its *stream record*, one small JSON object under
``<staging>/_write_streams/``, written whole before anything is committed, and each
table's stream is committed with ``BatchCommitWriteStreams``. A commit is atomic per
table, so ticks and quarantine are two commits, and each is made idempotent on its own.

A replayed batch (Spark runs it again after a crash) is recognised by its record:

- no record: nothing was committed (streams of the killed run, if any, stay pending
  and are never seen), so the batch is written again;
- a record: for each of its tables, the stream is committed if it was not
  (``get_write_stream`` shows no ``commit_time`` and the commit succeeds now), or
  found committed (a ``commit_time``, ``STREAM_ALREADY_COMMITTED``, or, when the
  commit is refused for another reason, the table already holding exactly the
  stream's rows under this load id: :meth:`StorageWriteWarehouse._rows_loaded`).
  A table that holds none of them (the pending stream was garbage-collected before
  the replay came) is written again; any other count fails the batch.

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
import os
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
from google.api_core.exceptions import NotFound
from pyarrow import fs as pafs

from core.bigquery_quotas import DEFAULT_TRIGGER_SECONDS, MIN_TRIGGER_SECONDS
from core.schema import arrow_schema
from core.tables import LOAD_ID
from jobs.errors import ConfigError, WarehouseError
from jobs.loaders.base import LoadId, LoadResult, StagedFiles
from jobs.loaders.bigquery import _QUARANTINE, _TICKS, BigQueryWarehouse, _check_is_our_load, _Table, load_job_id
from jobs.locations import Location

#: Rows per AppendRows request: a request may carry 20 MB; a tick is a few hundred bytes.
ROWS_PER_APPEND = 10_000
#: Where the stream records live, under the staging location.
RECORDS_FOLDER = "_write_streams"
#: Environment: the emulator's gRPC ``host:port``; with ``BIGQUERY_EMULATOR_HOST`` (the
#: BigQuery client's own variable, for REST) the clients talk to it without credentials.
STORAGE_EMULATOR_HOST = "BIGQUERY_STORAGE_EMULATOR_HOST"
REST_EMULATOR_HOST = "BIGQUERY_EMULATOR_HOST"


class StorageWriteWarehouse(BigQueryWarehouse):
    """Loads micro-batches into ``market_ticks`` and ``quarantine`` through PENDING write streams.

    ``write_client`` is a ``BigQueryWriteClient`` or a stand-in (tests); without one,
    :meth:`setup` builds one. The stream records live under the staging location,
    which :meth:`check_staging` (called by the job's config) or ``records`` gives.
    """

    default_trigger_seconds = DEFAULT_TRIGGER_SECONDS["storage-write"]
    min_trigger_seconds = MIN_TRIGGER_SECONDS["storage-write"]

    def __init__(
        self, project: str, dataset: str, *, records: Location | None = None, client: Any = None,
        write_client: Any = None,
    ) -> None:
        super().__init__(project, dataset, client=client)
        self.records = records
        self._write = write_client
        self._owns_write = write_client is None
        self._first_batch = True

    def check_staging(self, staging: Location) -> None:
        """Any staging the driver can read (local for local Spark, ``gs://`` on Dataproc);
        the stream records go under it."""
        if staging.scheme not in ("file", "gs"):
            raise ConfigError(f"--staging: expected a local path or gs:// location, got {staging.uri!r}")
        self.records = staging.child(RECORDS_FOLDER)

    def setup(self) -> None:
        if self._client is None and os.environ.get(REST_EMULATOR_HOST):
            from google.auth.credentials import AnonymousCredentials
            from google.cloud import bigquery

            self._client = bigquery.Client(project=self.project, credentials=AnonymousCredentials())
        super().setup()
        self._first_batch = True  # a (re)started query: its first batch may be a replay
        if self._write is None:
            self._write = _write_client()

    def close(self) -> None:
        if self._owns_write and self._write is not None:
            self._write.transport.close()
            self._write = None
        super().close()

    def load_batch(self, load_id: LoadId, staged: StagedFiles) -> LoadResult:
        if self._write is None or self.records is None:
            raise WarehouseError("StorageWriteWarehouse.load_batch before setup() and check_staging()")
        files = {_TICKS.name: staged.ticks, _QUARANTINE.name: staged.quarantine}
        record = self._read_record(load_id)
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
            self._write_record(load_id, record)
        found_committed = []
        for table in (_TICKS, _QUARANTINE):
            if "load_job" in record.get(table.name, {}):
                found_committed.append(True)  # the load-jobs path loaded this table
            elif table.name in record:
                committed, entry = self._commit(table, load_id, record[table.name], files[table.name])
                found_committed.append(committed)
                if entry != record[table.name]:
                    record[table.name] = entry
                    self._write_record(load_id, record)
        self._forget_before(load_id)
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
                except NotFound:
                    break
                _check_is_our_load(job, destination)
                if self._wait(job) is None:
                    found[table.name] = {"load_job": job_id, "rows": job.output_rows or 0}
                    break
                attempt += 1
        return found

    # -- writing one table's stream ------------------------------------------------

    def _write_table(self, table: _Table, load_id: LoadId, uris: Sequence[str]) -> dict[str, Any]:
        """Append the staged rows of ``table`` to a new PENDING stream and finalize it; its record entry."""
        from google.cloud.bigquery_storage_v1 import types

        try:
            rows = _read_staged(uris, arrow_schema(table.fields))
        except (ValueError, pa.ArrowException) as error:  # ArrowInvalid, ArrowTypeError are both
            raise WarehouseError(
                f"the staged rows of batch {load_id.batch_id} do not fit {self._table_id(table)} ({error}); "
                f"nothing was written: {', '.join(uris)}"
            ) from error
        stream = self._write.create_write_stream(
            parent=self._parent(table), write_stream=types.WriteStream(type_=types.WriteStream.Type.PENDING)
        )
        for response in self._write.append_rows(_append_requests(stream.name, rows)):
            if "error" in response:
                raise WarehouseError(
                    f"appending batch {load_id.batch_id} to {self._table_id(table)} (stream {stream.name}) "
                    f"failed: {response.error.code} {response.error.message}"
                    + "".join(f"; row {e.index}: {e.message}" for e in response.row_errors)
                )
        finalized = self._write.finalize_write_stream(name=stream.name)
        if finalized.row_count != rows.num_rows:
            raise WarehouseError(
                f"stream {stream.name} of batch {load_id.batch_id} holds {finalized.row_count} rows, "
                f"{rows.num_rows} were appended to {self._table_id(table)}: not committed"
            )
        return {"stream": stream.name, "rows": rows.num_rows}

    def _commit(
        self, table: _Table, load_id: LoadId, entry: dict[str, Any], uris: Sequence[str]
    ) -> tuple[bool, dict[str, Any]]:
        """Commit ``entry``'s stream unless it was; (True if it was committed before, the entry)."""
        from google.cloud.bigquery_storage_v1 import types

        try:
            if self._write.get_write_stream(name=entry["stream"]).commit_time:
                return True, entry
            response = self._write.batch_commit_write_streams(
                request=types.BatchCommitWriteStreamsRequest(parent=self._parent(table), write_streams=[entry["stream"]])
            )
        except NotFound as error:  # the stream is gone, committed or not: the table tells which
            refused = str(error)
        else:
            if response.commit_time:
                return False, entry
            codes = {error.code for error in response.stream_errors}
            if codes == {types.StorageError.StorageErrorCode.STREAM_ALREADY_COMMITTED}:
                return True, entry
            refused = "; ".join(f"{e.code.name}: {e.error_message}" for e in response.stream_errors)
        loaded = self._rows_loaded(table, load_id)
        if loaded == entry["rows"]:
            return True, entry
        if loaded == 0 and uris:
            # The stream is gone uncommitted: its rows never reached the table. Write them anew.
            fresh = self._write_table(table, load_id, uris)
            committed, _ = self._commit(table, load_id, fresh, ())
            return committed, fresh
        raise WarehouseError(
            f"committing batch {load_id.batch_id} to {self._table_id(table)} (stream {entry['stream']}) was refused "
            f"({refused or 'no commit time'}) and the table holds {loaded} of its {entry['rows']} rows: "
            f"the batch fails rather than load it twice or lose it"
        )

    def _rows_loaded(self, table: _Table, load_id: LoadId) -> int:
        """Rows of ``table`` carrying ``load_id``: the truth when a commit's outcome is unclear.

        A query job, run only on a replay whose commit was refused (rare: after a crash).
        """
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(query_parameters=[bigquery.ScalarQueryParameter("id", "STRING", str(load_id))])
        sql = f"SELECT COUNT(*) AS n FROM `{self._table_id(table)}` WHERE {LOAD_ID} = @id"
        (row,) = self._client.query(sql, job_config=config, project=self.project).result()
        return row[0]

    def _parent(self, table: _Table) -> str:
        return f"projects/{self.project}/datasets/{self.dataset}/tables/{table.name}"

    # -- stream records -------------------------------------------------------------

    def _record_path(self, load_id: LoadId) -> tuple[pafs.FileSystem, str]:
        """Where batch ``load_id``'s record lives: one folder per target and query, one object per batch."""
        digest = hashlib.sha256(f"{self.project}.{self.dataset}\n{load_id.query_id}".encode()).hexdigest()[:20]
        folder = self.records.child(digest)
        filesystem, path = _filesystem(folder.uri)
        return filesystem, f"{path}/batch_{load_id.batch_id}.json"

    def _read_record(self, load_id: LoadId) -> dict[str, Any] | None:
        filesystem, path = self._record_path(load_id)
        try:
            with filesystem.open_input_stream(path) as stream:
                return json.loads(stream.read())
        except FileNotFoundError:
            return None

    def _write_record(self, load_id: LoadId, record: dict[str, Any]) -> None:
        """Write the record whole: a new object (GCS) or a rename (local) makes it appear at once."""
        filesystem, path = self._record_path(load_id)
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        temporary = f"{path}.tmp"
        with filesystem.open_output_stream(temporary) as stream:
            stream.write(json.dumps({**record, "load_id": str(load_id)}, sort_keys=True).encode())
        filesystem.move(temporary, path)

    def _forget_before(self, load_id: LoadId) -> None:
        """Delete the records of the query's earlier batches: Spark replays only its last batch."""
        filesystem, path = self._record_path(load_id)
        folder = path.rsplit("/", 1)[0]
        for info in filesystem.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
            name = info.base_name
            if name.startswith("batch_") and name.endswith(".json") and int(name[6:-5]) < load_id.batch_id:
                filesystem.delete_file(info.path)


def _result(load_id: LoadId, record: dict[str, Any], staged: StagedFiles, *, already_loaded: bool) -> LoadResult:
    """The batch's outcome: each table's rows as its record entry counts them."""
    return LoadResult(
        load_id,
        record.get(_TICKS.name, {}).get("rows", 0),
        record.get(_QUARANTINE.name, {}).get("rows", 0),
        staged.newest_event_time,
        already_loaded=already_loaded,
    )


def _append_requests(stream: str, rows: pa.Table) -> Iterator[Any]:
    """AppendRows requests for ``rows`` with explicit offsets; the first carries the writer schema."""
    from google.cloud.bigquery_storage_v1 import types

    offset = 0
    for number, batch in enumerate(rows.to_batches(max_chunksize=ROWS_PER_APPEND)):
        data = types.AppendRowsRequest.ArrowData(
            rows=types.ArrowRecordBatch(serialized_record_batch=batch.serialize().to_pybytes())
        )
        if number == 0:
            data.writer_schema = types.ArrowSchema(serialized_schema=rows.schema.serialize().to_pybytes())
        yield types.AppendRowsRequest(write_stream=stream, offset=offset, arrow_rows=data)
        offset += batch.num_rows


def _read_staged(uris: Sequence[str], schema: pa.Schema) -> pa.Table:
    """The staged Parquet files as one Arrow table in ``schema`` (a column missing or mistyped fails)."""
    tables = []
    for uri in uris:
        filesystem, path = _filesystem(uri)
        tables.append(pq.read_table(path, filesystem=filesystem, columns=schema.names).cast(schema))
    return pa.concat_tables(tables).combine_chunks()


def _filesystem(uri: str) -> tuple[pafs.FileSystem, str]:
    """The Arrow file system and path of a Hadoop-style URI (``file:/abs``, ``file:///abs``, ``gs://b/p``)."""
    parts = urlsplit(uri)
    if parts.scheme in ("", "file"):
        return pafs.LocalFileSystem(), parts.path
    if parts.scheme == "gs":
        return pafs.GcsFileSystem(), f"{parts.netloc}{parts.path}"
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
