"""Stage each micro-batch as Parquet, one folder per table, for the warehouse to load.

Layout: ``<staging>/batch_id=<id>/market_ticks/*.parquet`` and
``.../quarantine/*.parquet``, with exactly the warehouse tables' columns and modes,
so a BigQuery load job can take them as they are: a column the table declares
REQUIRED is a ``required`` Parquet field, a NULLABLE one ``optional``
(:func:`_as_declared`; why: docs/STREAM.md, "Column modes in the staged Parquet").

Staging a batch first deletes its folder, so a batch replayed after a crash replaces
what a killed attempt left, including Spark's hidden ``.spark-staging-*``/``_temporary``
folders; the file lists handed to the warehouse name only ``*.parquet`` files, never
those. A table without rows in the batch gets no files at all: Spark would write an
empty Parquet file, and BigQuery would spend a load job (of 1,500 a table a day) on
it. Once the warehouse has committed a batch its folder is deleted.

Files are reached through Hadoop's file systems, so ``gs://`` staging works the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from core.schema import FieldSpec, market_tick, spark_schema
from core.tables import BACKFILL, LOAD_ID, ORIGIN, QUARANTINE_FIELDS, QUARANTINE_TABLE, TICKS_TABLE, TICK_FIELDS
from core.uris import file_uri
from jobs.batch_files import BatchFiles
from jobs.dedup import QUARANTINE_ID
from jobs.loaders.base import LoadId, StagedFiles
from jobs.locations import Location
from jobs.validate import NO_RECORDS, QUARANTINE_COLUMNS, RAW_LINE, READ_AT, REASON, SOURCE_FILE

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
#: A non-null value of each logical type; only its type is ever used (:func:`_declared`).
_PLACEHOLDERS = {"string": "", "float64": 0.0, "int64": 0, "timestamp": _EPOCH}


def _as_declared(frame: DataFrame, table: str, fields: Sequence[FieldSpec]) -> DataFrame:
    """``frame``'s columns ``fields`` with the modes ``table`` declares, for Parquet to carry them.

    Spark writes a nullable column as an ``optional`` Parquet field whatever its values, and
    a non-nullable one as ``required``. ``DataFrame.to`` refuses to narrow nullability, and
    rebuilding the frame from its rows (``createDataFrame(rdd, schema)``) would convert every
    row twice; :func:`_declared` is a projection, evaluated as the rows are written.
    """
    return frame.select(*[_declared(table, spec) for spec in fields])


def _declared(table: str, spec: FieldSpec) -> Column:
    """Column ``spec``, non-nullable to Spark when the table declares it REQUIRED.

    Spark types a ``coalesce`` non-nullable when one of its arguments is, as a literal is.
    The literal is never reached: a null reaches ``raise_error`` first and fails the batch,
    so a row with a null where the table allows none is never loaded, least of all with a
    made-up value. Validation quarantines such lines, so this only fires on a bug.
    """
    column = F.col(spec.name)
    if spec.nullable:
        return column
    data_type = spark_schema([spec])[spec.name].dataType
    null = F.raise_error(F.lit(f"{table}.{spec.name} is null in a row being staged, but the table requires a value"))
    return F.coalesce(column, null, F.lit(_PLACEHOLDERS[spec.type]).cast(data_type)).alias(spec.name)


def _columns(fields: Sequence[FieldSpec], load_id: LoadId, renamed: Mapping[str, str] | None = None) -> list[Column]:
    """A table's ``fields`` from the batch: the load id as a literal, every other field
    from its batch column (``renamed`` maps those the batch names otherwise)."""
    renamed = renamed or {}
    load = F.lit(str(load_id))
    return [(load if f.name == LOAD_ID else F.col(renamed.get(f.name, f.name))).alias(f.name) for f in fields]


class BatchStager:
    """Writes micro-batches under ``root`` and removes them once loaded."""

    def __init__(self, spark: SparkSession, root: Location, batch_files: BatchFiles) -> None:
        self._spark = spark
        self._root = root
        self._batch_files = batch_files

    def stage(self, batch: DataFrame, load_id: LoadId, landing_files: Sequence[str]) -> StagedFiles:
        """Write the batch's ticks and quarantined lines; return their Parquet files.

        ``landing_files`` are the files the batch took (:mod:`jobs.batch_files`): each
        zero-byte one adds a quarantine row with an empty raw line. Only files without
        a row in the batch can be empty, so only those are looked at: on GCS every look
        is a request, and a catch-up batch has hundreds of files.
        """
        folder = self._folder(load_id.batch_id)
        # The summary and the writes all read the batch: cache it so the stream (and
        # its de-duplication state) is computed once.
        batch.persist()
        try:
            rows, newest, sources = self._summary(batch)
            empty = self._batch_files.empty([f for f in landing_files if _file_key(f) not in sources])
            rows[QUARANTINE_TABLE] += len(empty)
            self.discard(load_id.batch_id)
            for table, frame in self._tables(batch, load_id, empty).items():
                if rows[table]:
                    frame.write.parquet(f"{folder}/{table}")
        finally:
            batch.unpersist()
        return StagedFiles(
            ticks=self._parquet_files(f"{folder}/{TICKS_TABLE}") if rows[TICKS_TABLE] else (),
            quarantine=self._parquet_files(f"{folder}/{QUARANTINE_TABLE}") if rows[QUARANTINE_TABLE] else (),
            newest_event_time=newest,
        )

    def _tables(self, batch: DataFrame, load_id: LoadId, empty_files: Sequence[str]) -> dict[str, DataFrame]:
        """Each table's rows of the batch, in its columns and modes."""
        valid = F.col(REASON).isNull()
        quarantined = batch.where(~valid).select(*QUARANTINE_COLUMNS.values())
        if empty_files:
            quarantined = quarantined.unionByName(self._empty_file_rows(empty_files))
        quarantined = quarantined.select(*_columns(QUARANTINE_FIELDS, load_id, QUARANTINE_COLUMNS))
        ticks = batch.where(valid).select(*_columns(TICK_FIELDS, load_id))
        return {
            TICKS_TABLE: _as_declared(ticks, TICKS_TABLE, TICK_FIELDS),
            QUARANTINE_TABLE: _as_declared(quarantined, QUARANTINE_TABLE, QUARANTINE_FIELDS),
        }

    def _empty_file_rows(self, files: Sequence[str]) -> DataFrame:
        """Rows for zero-byte landing files, in the batch's quarantine columns."""
        now = datetime.now(timezone.utc)
        rows = [
            {QUARANTINE_ID: str(uuid.uuid4()), RAW_LINE: "", REASON: NO_RECORDS, SOURCE_FILE: file, READ_AT: now}
            for file in files
        ]
        schema = spark_schema(
            [replace(spec, name=QUARANTINE_COLUMNS[spec.name]) for spec in QUARANTINE_FIELDS if spec.name != LOAD_ID]
        )
        return self._spark.createDataFrame([tuple(row[name] for name in schema.names) for row in rows], schema)

    def discard(self, batch_id: int) -> None:
        """Delete a batch's staged files (after the warehouse committed them, or before staging it again)."""
        path = self._hadoop_path(self._folder(batch_id))
        path.getFileSystem(self._hadoop_conf()).delete(path, True)

    @staticmethod
    def _summary(batch: DataFrame) -> tuple[dict[str, int], datetime | None, set[tuple[str, str, str]]]:
        """Rows per table, the newest event time among the live ticks, and the files with rows, in one pass.

        Back-filled points are left out of the newest event time: they fill the past, and
        counting them would let a back-fill make stale data look fresh (the data age the
        per-batch line reports, core/health.py)."""
        valid = F.col(REASON).isNull()
        live = valid & F.coalesce(F.col(ORIGIN) != BACKFILL, F.lit(True))
        event_time = F.col(market_tick().partition_field)
        (summary,) = batch.select(
            F.count_if(valid).alias(TICKS_TABLE),
            F.count_if(~valid).alias(QUARANTINE_TABLE),
            # Epoch microseconds: collect() would hand a timestamp over in this process's zone.
            F.max(F.when(live, F.unix_micros(event_time))).alias("newest"),
            F.collect_set(SOURCE_FILE).alias("sources"),
        ).collect()
        newest = None if summary["newest"] is None else _EPOCH + timedelta(microseconds=summary["newest"])
        rows = {TICKS_TABLE: summary[TICKS_TABLE], QUARANTINE_TABLE: summary[QUARANTINE_TABLE]}
        return rows, newest, {_file_key(source) for source in summary["sources"]}

    def _folder(self, batch_id: int) -> str:
        return self._root.child(f"batch_id={batch_id}").uri

    def _parquet_files(self, folder: str) -> tuple[str, ...]:
        pattern = self._hadoop_path(f"{folder}/*.parquet")
        statuses = pattern.getFileSystem(self._hadoop_conf()).globStatus(pattern) or []
        return tuple(sorted(status.getPath().toString() for status in statuses))

    def _hadoop_path(self, uri: str):  # -> org.apache.hadoop.fs.Path (a py4j proxy)
        return self._spark.sparkContext._jvm.org.apache.hadoop.fs.Path(uri)

    def _hadoop_conf(self):  # -> org.apache.hadoop.conf.Configuration
        return self._spark.sparkContext._jsc.hadoopConfiguration()


def _file_key(uri: str) -> tuple[str, str, str]:
    """A file URI as (scheme, authority, path): the source's log writes ``file:///a``
    where the scan's rows say ``file:/a``."""
    file = file_uri(uri)
    return file.scheme, file.bucket, file.path
