"""The cloud warehouse: BigQuery, one load job per table and micro-batch, exactly once.

A batch's staged Parquet (``gs://<bucket>/staging/batch_id=<n>/<table>/*.parquet``)
goes in with one load job per table that has rows: ``WRITE_APPEND``, Parquet, the
table's explicit schema (its columns and modes, rather than what BigQuery would infer
from the files), day partitioning and clustering as the CDKTF app declares them, and
``CREATE_NEVER``: the tables, with their expirations and protections, are the CDKTF
app's, so :meth:`BigQueryWarehouse.setup` checks them and never creates one. The
staged files carry the same modes (:mod:`jobs.staging`): BigQuery has refused loads
whose schema says REQUIRED where the file says optional, and no document says it no
longer does (docs/STREAM.md, "Column modes in the staged Parquet").

Exactly once. A load job is atomic (all its rows or none) and its id is ours to
choose: :func:`load_job_id` derives it from the table, the streaming query's id and
the batch id. When Spark replays a batch after a crash (or the client's own retry
re-sends an insert whose answer was lost), inserting that id fails with 409
Conflict, and the existing job is looked at instead of loading again:

- done without error: the table has the batch already; nothing more is loaded;
- still running: wait for it, then as above;
- done with an error: nothing was loaded, so the next *attempt* is started, under
  the same id with the next ``_a<n>`` suffix. Attempts are walked in order and a
  new one starts only when every earlier one has failed, so at most one succeeds.

A failed job is retried rather than ending the stream for good because most load
failures pass (backend errors, a quota refilling) and a stream that heals itself
needs no operator at 3 a.m. The retries are bounded: one run starts at most
:data:`NEW_ATTEMPTS_PER_RUN` jobs per table and batch, then raises
:class:`~jobs.errors.LoadJobFailedError`; the stream exits non-zero, Dataproc
restarts the driver (at most ``max_failures_per_hour`` times), and the replay walks
past the failed attempts to the next. A lasting fault (a changed table, a revoked
permission) so costs a few failed jobs per restart, each counting against the
table's daily load-job quota, until it is fixed.

The quota is also why :attr:`BigQueryWarehouse.min_trigger_seconds` exists: 1,500
load jobs per table per day, failed ones included, and up to two jobs a batch
(ticks, and quarantine when the batch had bad lines). Budgeting both jobs against
one allowance, a batch every 86,400 x 2 / 1,500 = 115.2 s uses it all; the default
trigger of 120 s makes at most 720 batches a day, 48 % of each table's quota,
leaving the rest for failed attempts and backfills (docs/STREAM.md).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from google.api_core.exceptions import Conflict, GoogleAPICallError, NotFound
from google.cloud import bigquery

from core.bigquery_quotas import DEFAULT_TRIGGER_SECONDS, MIN_TRIGGER_SECONDS
from core.gcp import PROJECT_ID
from core.schema import FieldSpec, bigquery_fields, market_tick
from core.tables import QUARANTINE_FIELDS, QUARANTINE_PARTITION_FIELD, QUARANTINE_TABLE, TICKS_TABLE, TICK_FIELDS
from core.uris import BigQueryDataset, parse_warehouse
from jobs.errors import ConfigError, LoadJobFailedError, WarehouseError
from jobs.loaders.base import LoadId, LoadResult, StagedFiles, Warehouse
from jobs.locations import Location

#: New load jobs one run starts for a table's batch before giving up (see module docstring).
NEW_ATTEMPTS_PER_RUN = 2
#: How long to wait for one load job; a timeout fails the batch, and the replay waits again.
LOAD_TIMEOUT_SECONDS = 600.0

# BigQuery's rules for the ids a --warehouse URI names.
_PROJECT_ID = re.compile(rf"^{PROJECT_ID}$")
_DATASET_ID = re.compile(r"^[A-Za-z0-9_]{1,1024}$")
_EXPECTED_URI = "expected bigquery://project.dataset, e.g. bigquery://my-project.cryptopipe_dev"
# Job ids take letters, digits, underscores and dashes, up to 1,024 characters.
_NOT_IN_JOB_ID = re.compile(r"[^A-Za-z0-9_-]")
_READABLE_MAX = 200
# tables.get answers with the legacy type names; the schema speaks standard SQL.
_STANDARD_TYPES = {"FLOAT": "FLOAT64", "INTEGER": "INT64"}


@dataclass(frozen=True)
class _Table:
    """One destination table: its columns and physical layout, as the CDKTF app declares them."""

    name: str
    fields: tuple[FieldSpec, ...]
    partition_field: str
    cluster_fields: tuple[str, ...] = ()


_TICKS = _Table(TICKS_TABLE, TICK_FIELDS, market_tick().partition_field, market_tick().cluster_fields)
_QUARANTINE = _Table(QUARANTINE_TABLE, QUARANTINE_FIELDS, QUARANTINE_PARTITION_FIELD)


@dataclass(frozen=True)
class _Loaded:
    rows: int
    earlier: bool
    """True when a job of an earlier run had loaded the batch already."""


def load_job_id(table: str, load_id: LoadId, attempt: int = 0) -> str:
    """The id of attempt ``attempt`` to load batch ``load_id`` into ``table`` (``project.dataset.table``).

    ``cryptopipe_<table>_<query id>_b<batch id>_<digest>_a<attempt>``: the readable
    part is cleaned to the job-id alphabet and cut short; the digest covers the
    exact identity, project and dataset included, so neither the cleaning nor a
    checkpoint reused against another dataset of the same project can give two
    loads one id, which would pass the second off as already loaded.
    """
    digest = hashlib.sha256(f"{table}\n{load_id.query_id}\n{load_id.batch_id}".encode()).hexdigest()[:20]
    name = table.rsplit(".", 1)[-1]
    readable = _NOT_IN_JOB_ID.sub("_", f"{name}_{load_id.query_id}_b{load_id.batch_id}")[:_READABLE_MAX]
    return f"cryptopipe_{readable}_{digest}_a{attempt}"


def _load_job_config(table: _Table) -> bigquery.LoadJobConfig:
    """How every batch is loaded into ``table``."""
    return bigquery.LoadJobConfig(
        source_format=bigquery.SourceFormat.PARQUET,
        write_disposition=bigquery.WriteDisposition.WRITE_APPEND,
        create_disposition=bigquery.CreateDisposition.CREATE_NEVER,
        schema=[bigquery.SchemaField.from_api_repr(field) for field in bigquery_fields(table.fields)],
        time_partitioning=bigquery.TimePartitioning(
            type_=bigquery.TimePartitioningType.DAY, field=table.partition_field
        ),
        clustering_fields=list(table.cluster_fields) or None,
    )


class BigQueryWarehouse(Warehouse):
    """Loads micro-batches into ``market_ticks`` and ``quarantine`` of one dataset.

    ``client`` is a ``google.cloud.bigquery.Client`` or a stand-in (tests); without
    one, :meth:`setup` builds a client with the environment's credentials (on
    Dataproc: the cluster's service account).
    """

    default_trigger_seconds = DEFAULT_TRIGGER_SECONDS["load-jobs"]
    min_trigger_seconds = MIN_TRIGGER_SECONDS["load-jobs"]  # core/bigquery_quotas.py

    def __init__(
        self, project: str, dataset: str, *, client: Any = None, job_timeout: float = LOAD_TIMEOUT_SECONDS
    ) -> None:
        self.project = project
        self.dataset = dataset
        self.job_timeout = job_timeout
        self._client = client
        self._owns_client = client is None
        self._location: str | None = None
        self._tables: dict[str, Any] = {}
        """Each table as :meth:`setup` found it (``bigquery.Table``), by name."""

    @classmethod
    def from_uri(cls, uri: str) -> BigQueryWarehouse:
        target = parse_warehouse(uri, error=ConfigError)
        if not (
            isinstance(target, BigQueryDataset)
            and _PROJECT_ID.match(target.project)
            and _DATASET_ID.match(target.dataset)
        ):
            raise ConfigError(f"--warehouse: {uri!r} is not a BigQuery dataset URI; {_EXPECTED_URI}")
        return cls(target.project, target.dataset)

    def check_staging(self, staging: Location) -> None:
        if staging.scheme != "gs":
            raise ConfigError(
                f"--staging: BigQuery load jobs read staged Parquet from Cloud Storage only, got {staging.uri!r}; "
                f"give a gs://bucket/staging location"
            )

    def _table_id(self, table: _Table) -> str:
        return f"{self.project}.{self.dataset}.{table.name}"

    def setup(self) -> None:
        """Check both tables exist with the contract's columns and layout; remember their location."""
        if self._client is None:
            self._client = bigquery.Client(project=self.project)
        for table in (_TICKS, _QUARANTINE):
            try:
                found = self._client.get_table(self._table_id(table))
            except NotFound as error:
                raise WarehouseError(
                    f"BigQuery table {self._table_id(table)} does not exist: the CDKTF app creates it "
                    f"(cdktf deploy <env>); the job never creates tables"
                ) from error
            problems = _differences(table, found)
            if problems:
                raise WarehouseError(
                    f"BigQuery table {self._table_id(table)} is not what the job loads: {'; '.join(problems)}. "
                    f"Deploy the CDKTF app of this job's version"
                )
            self._location = found.location
            self._tables[table.name] = found

    def load_batch(self, load_id: LoadId, staged: StagedFiles) -> LoadResult:
        if self._location is None:
            raise WarehouseError("BigQueryWarehouse.load_batch before setup(): the tables' location is unknown")
        ticks = self._load(_TICKS, load_id, staged.ticks)
        quarantine = self._load(_QUARANTINE, load_id, staged.quarantine)
        loads = [load for load in (ticks, quarantine) if load is not None]
        return LoadResult(
            load_id,
            ticks.rows if ticks else 0,
            quarantine.rows if quarantine else 0,
            staged.newest_event_time,
            # Both tables had it, or there was nothing to load. When a crash fell
            # between the two jobs, the replay loads the second table only and the
            # counts are of both jobs, the earlier included.
            already_loaded=bool(loads) and all(load.earlier for load in loads),
        )

    def close(self) -> None:
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None

    def _load(self, table: _Table, load_id: LoadId, uris: tuple[str, ...]) -> _Loaded | None:
        """Load ``uris`` into ``table`` under ``load_id`` unless an earlier attempt did (module docstring)."""
        if not uris:
            return None
        destination = self._table_id(table)
        failures: list[str] = []
        started = 0
        attempt = 0
        while started < NEW_ATTEMPTS_PER_RUN:
            job_id = load_job_id(destination, load_id, attempt)
            try:
                job = self._client.load_table_from_uri(
                    list(uris),
                    destination,
                    job_id=job_id,
                    project=self.project,
                    location=self._location,
                    job_config=_load_job_config(table),
                )
                started += 1
                new = True
            except Conflict:
                job = self._client.get_job(job_id, project=self.project, location=self._location)
                _check_is_our_load(job, destination)
                new = False
            error = self._wait(job)
            if error is None:
                return _Loaded(job.output_rows or 0, earlier=not new)
            failures.append(f"{job_id}: {error}")
            attempt += 1
        raise LoadJobFailedError(
            f"loading batch {load_id.batch_id} into {destination} failed: {'; '.join(failures)}. "
            f"The stream stops; a restart replays the batch and tries the next attempt, so fix the cause first"
        )

    def _wait(self, job: Any) -> str | None:
        """Wait for ``job``; None when it loaded, else BigQuery's reason why not."""
        try:
            job.result(timeout=self.job_timeout)
        except GoogleAPICallError:
            if job.error_result is None:
                raise  # waiting failed, not the job: its outcome is unknown, so the batch fails
            return f"{job.error_result.get('reason')}: {job.error_result.get('message')}"
        return None


def _check_is_our_load(job: Any, destination: str) -> None:
    # The digest in the id makes a collision with another load all but impossible;
    # if it ever happened, "already loaded" would silently skip a batch.
    if job.job_type != "load" or job.destination is None or job.destination.path != _table_path(destination):
        raise WarehouseError(
            f"job {job.job_id} exists but is not a load into {destination}: cannot tell if it is loaded"
        )


def _table_path(table_id: str) -> str:
    project, dataset, table = table_id.split(".")
    return f"/projects/{project}/datasets/{dataset}/tables/{table}"


def _differences(table: _Table, found: Any) -> list[str]:
    """How ``found`` (a ``bigquery.Table``) differs from what the job loads into ``table``."""
    expected = {f["name"]: (f["type"], f["mode"]) for f in bigquery_fields(table.fields)}
    actual = {f.name: (_STANDARD_TYPES.get(f.field_type, f.field_type), f.mode) for f in found.schema}
    problems = [
        f"column {name} is {' '.join(actual[name]) if name in actual else 'missing'}, expected {' '.join(want)}"
        for name, want in expected.items()
        if actual.get(name) != want
    ]
    problems += [f"column {name} is not loaded by the job" for name in actual.keys() - expected.keys()]
    partitioning = found.time_partitioning
    if partitioning is None or (partitioning.type_, partitioning.field) != ("DAY", table.partition_field):
        described = f"{partitioning.type_} on {partitioning.field}" if partitioning else "none"
        problems.append(f"partitioning is {described}, expected DAY on {table.partition_field}")
    if list(found.clustering_fields or ()) != list(table.cluster_fields):
        problems.append(f"clustering is {found.clustering_fields}, expected {list(table.cluster_fields) or None}")
    return problems
