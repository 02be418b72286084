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
from dataclasses import replace

from pyspark.sql import SparkSession

from core.tables import QUARANTINE_FIELDS, QUARANTINE_TABLE, TICK_FIELDS, TICKS_TABLE
from core.uris import file_uri
from jobs import (
    JOB_SQL_CONF,
    SESSION_CONF,
    DuckDBWarehouse,
    LoadId,
    LoadResult,
    StagedFiles,
    StreamConfig,
    StreamHandle,
    connect,
    duckdb_path,
    start_stream,
)

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
    return file_uri(uri).path


def seed_session(spark: SparkSession) -> SparkSession:
    """A session of ``spark`` with the job's settings but Spark's defaults where the seed had them."""
    session = spark.newSession()
    for key, value in {**SESSION_CONF, **JOB_SQL_CONF, **SEED_SQL_CONF}.items():
        session.conf.set(key, value)
    return session


def start_seed_stream(spark: SparkSession, config: StreamConfig, *, dedup: bool = True) -> StreamHandle:
    """Start the seed-configured stream (see the module docstring): the job's own
    ``start_stream`` with the seed's settings."""
    return start_stream(
        spark, replace(config, max_files_per_trigger=SEED_MAX_FILES_PER_TRIGGER),
        warehouse=SeedAppendWarehouse(duckdb_path(config.warehouse)), session_conf=SEED_SQL_CONF,
        archive_processed=False, deduplicate=dedup,
    )
