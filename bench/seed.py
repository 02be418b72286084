"""The seed design (docs/ARCHITECTURE.md §5), emulated with this project's job code.

"Seed configuration" here means the same parse/validate/de-duplicate/stage code as
``jobs.stream.ticks_stream`` and the same DuckDB tables, with the seed's settings
where the seed had one:

- ``maxFilesPerTrigger=1`` (one landing file per micro-batch);
- a never-cleaned landing folder: no ``cleanSource``/``sourceArchiveDir``, so every
  file ever landed stays under the input path and is listed on every trigger;
- Spark's defaults where the project tunes them: 200 shuffle partitions
  (``spark.sql.shuffle.partitions``) and the default
  ``spark.sql.sources.parallelPartitionDiscovery.threshold`` of 32;
- at-least-once append: each batch is inserted as is, with no ``_loads`` ledger check
  (:class:`SeedAppendWarehouse`).

What the seed did not have at all (quarantine, watermark de-duplication) is kept,
unless ``dedup=False``: the comparison is then of configuration, not of features.
"""

from __future__ import annotations

from contextlib import closing

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from core.tables import QUARANTINE_FIELDS, QUARANTINE_TABLE, TICKS_TABLE, TICK_FIELDS
from jobs.batch_files import BatchFiles
from jobs.config import StreamConfig
from jobs.dedup import drop_duplicate_ticks
from jobs.loaders.base import LoadId, LoadResult, StagedFiles
from jobs.loaders.duckdb import DuckDBWarehouse, connect, duckdb_path
from jobs.metrics import ProgressListener, StreamMetrics
from jobs.session import SESSION_CONF
from jobs.staging import BatchStager
from jobs.stream import StreamHandle, _BatchWriter, _JOB_SQL_CONF, read_landing
from jobs.validate import REASON, parse_lines

#: Spark's own defaults, which the seed ran with.
SEED_SQL_CONF = {
    "spark.sql.shuffle.partitions": "200",
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "32",
}
SEED_MAX_FILES_PER_TRIGGER = 1


class SeedAppendWarehouse(DuckDBWarehouse):
    """At-least-once: insert every batch handed over, with no ledger check."""

    def load_batch(self, load_id: LoadId, staged: StagedFiles) -> LoadResult:
        with closing(connect(self.path, read_only=False, timeout=self.lock_timeout)) as con:
            ticks = _append(con, TICKS_TABLE, [f.name for f in TICK_FIELDS], [_path(u) for u in staged.ticks])
            quarantined = _append(
                con, QUARANTINE_TABLE, [f.name for f in QUARANTINE_FIELDS], [_path(u) for u in staged.quarantine]
            )
        return LoadResult(load_id, ticks, quarantined, None)


def _append(con, table: str, columns: list[str], files: list[str]) -> int:  # noqa: ANN001
    if not files:
        return 0
    names = ", ".join(columns)
    return con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM read_parquet(?)", [files]).fetchone()[0]


def _path(uri: str) -> str:
    return uri.removeprefix("file://").removeprefix("file:")


def seed_session(spark: SparkSession) -> SparkSession:
    session = spark.newSession()
    for key, value in {**SESSION_CONF, **_JOB_SQL_CONF, **SEED_SQL_CONF}.items():
        session.conf.set(key, value)
    return session


def start_seed_stream(spark: SparkSession, config: StreamConfig, *, dedup: bool = True) -> StreamHandle:
    """Start the seed-configured stream (see the module docstring); like ``jobs.stream.start_stream``."""
    warehouse = SeedAppendWarehouse(duckdb_path(config.warehouse))
    warehouse.setup()
    session = seed_session(spark)
    metrics = StreamMetrics()
    listener = ProgressListener(metrics)
    session.streams.addListener(listener)
    batch_files = BatchFiles(session, config.checkpoint)
    rows = parse_lines(
        read_landing(session, config.landing, max_files_per_trigger=SEED_MAX_FILES_PER_TRIGGER, archive=None)
    )
    if dedup:
        rows = drop_duplicate_ticks(rows, config.watermark_delay)
    else:  # the staging step expects the de-duplication's id column
        rows = rows.withColumn("_quarantine_id", F.when(F.col(REASON).isNotNull(), F.expr("uuid()")))
    query = (
        rows.writeStream.foreachBatch(
            _BatchWriter(BatchStager(session, config.staging, batch_files), warehouse, metrics, batch_files)
        )
        .option("checkpointLocation", config.checkpoint.uri)
        .trigger(**config.trigger)
        .start()
    )
    return StreamHandle(query, metrics, warehouse, session, listener)
