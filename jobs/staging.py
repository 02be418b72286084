"""Stage each micro-batch as Parquet, one folder per table, for the warehouse to load.

Layout: ``<staging>/batch_id=<id>/market_ticks/*.parquet`` and
``.../quarantine/*.parquet``, with exactly the warehouse tables' columns (so a
BigQuery load job can take them as they are). Staging a batch first deletes its
folder, so a batch replayed after a crash replaces what a killed attempt left,
including Spark's hidden ``.spark-staging-*``/``_temporary`` folders; the file lists
handed to the warehouse name only ``*.parquet`` files, never those. A table without
rows in the batch gets no files at all: Spark would write an empty Parquet file,
and BigQuery would spend a load job (of 1,500 a table a day) on it. Once the
warehouse has committed a batch its folder is deleted.

Files are reached through Hadoop's file systems, so ``gs://`` staging works the same.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from cryptopipe.schema import market_tick, spark_schema
from jobs.dedup import QUARANTINE_ID
from jobs.loaders.base import (
    LOAD_ID,
    QUARANTINE_FIELDS,
    QUARANTINE_TABLE,
    TICK_FIELDS,
    TICKS_TABLE,
    LoadId,
    StagedFiles,
)
from jobs.locations import Location
from jobs.validate import NO_RECORDS, RAW_LINE, READ_AT, REASON, SOURCE_FILE

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _quarantine_sources() -> dict[str, Column]:
    """Where each quarantine column comes from in the validated batch."""
    return {
        "quarantine_id": F.col(QUARANTINE_ID),
        "raw_line": F.col(RAW_LINE),
        "reason": F.col(REASON),
        "source_file": F.col(SOURCE_FILE),
        "quarantined_at": F.col(READ_AT),
    }


class BatchStager:
    """Writes micro-batches under ``root`` and removes them once loaded."""

    def __init__(self, spark: SparkSession, root: Location) -> None:
        self._spark = spark
        self._root = root

    def stage(self, batch: DataFrame, load_id: LoadId, empty_files: Sequence[str] = ()) -> StagedFiles:
        """Write the batch's ticks and quarantined lines; return their Parquet files.

        ``empty_files`` (zero-byte landing files of the batch, which have no rows in
        it: :mod:`jobs.batch_files`) each add a quarantine row with an empty raw line.
        """
        folder = self._folder(load_id.batch_id)
        load = F.lit(str(load_id))
        quarantine = {**_quarantine_sources(), LOAD_ID: load}
        valid = F.col(REASON).isNull()
        quarantined = batch.where(~valid).select(*[quarantine[f.name].alias(f.name) for f in QUARANTINE_FIELDS])
        if empty_files:
            quarantined = quarantined.unionByName(self._empty_file_rows(empty_files, load_id))
        tables = {
            TICKS_TABLE: batch.where(valid).select(
                *[load.alias(f.name) if f.name == LOAD_ID else F.col(f.name) for f in TICK_FIELDS]
            ),
            QUARANTINE_TABLE: quarantined,
        }
        # The summary and the writes all read the batch: cache it so the stream (and
        # its de-duplication state) is computed once.
        batch.persist()
        try:
            rows, newest = self._summary(batch)
            rows[QUARANTINE_TABLE] += len(empty_files)
            self.discard(load_id.batch_id)
            for table, frame in tables.items():
                if rows[table]:
                    frame.write.parquet(f"{folder}/{table}")
        finally:
            batch.unpersist()
        return StagedFiles(
            ticks=self._parquet_files(f"{folder}/{TICKS_TABLE}") if rows[TICKS_TABLE] else (),
            quarantine=self._parquet_files(f"{folder}/{QUARANTINE_TABLE}") if rows[QUARANTINE_TABLE] else (),
            newest_event_time=newest,
        )

    def _empty_file_rows(self, files: Sequence[str], load_id: LoadId) -> DataFrame:
        """Quarantine rows for zero-byte landing files, in the quarantine table's columns."""
        now = datetime.now(timezone.utc)
        rows = [
            {
                "quarantine_id": str(uuid.uuid4()),
                "raw_line": "",
                "reason": NO_RECORDS,
                "source_file": file,
                "quarantined_at": now,
                LOAD_ID: str(load_id),
            }
            for file in files
        ]
        schema = spark_schema(QUARANTINE_FIELDS)
        return self._spark.createDataFrame([tuple(row[name] for name in schema.names) for row in rows], schema)

    def discard(self, batch_id: int) -> None:
        """Delete a batch's staged files (after the warehouse committed them, or before staging it again)."""
        path = self._hadoop_path(self._folder(batch_id))
        path.getFileSystem(self._hadoop_conf()).delete(path, True)

    @staticmethod
    def _summary(batch: DataFrame) -> tuple[dict[str, int], datetime | None]:
        """Rows per table, and the newest event time among the ticks, in one pass."""
        valid = F.col(REASON).isNull()
        event_time = F.col(market_tick().partition_field)
        (summary,) = batch.select(
            F.count_if(valid).alias(TICKS_TABLE),
            F.count_if(~valid).alias(QUARANTINE_TABLE),
            # Epoch microseconds: collect() would hand a timestamp over in this process's zone.
            F.max(F.when(valid, F.unix_micros(event_time))).alias("newest"),
        ).collect()
        newest = None if summary["newest"] is None else _EPOCH + timedelta(microseconds=summary["newest"])
        return {TICKS_TABLE: summary[TICKS_TABLE], QUARANTINE_TABLE: summary[QUARANTINE_TABLE]}, newest

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
