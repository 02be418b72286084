"""The staged Parquet carries the BigQuery tables' modes: REQUIRED columns are ``required`` fields.

BigQuery has refused load jobs whose schema says REQUIRED for a column the Parquet file
declares optional (docs/STREAM.md, "Column modes in the staged Parquet"), and Spark
writes every nullable column as optional unless told otherwise. These tests stage
batches the way the job does, with real Spark, and read the files with pyarrow.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest
from py4j.protocol import Py4JJavaError
from pyspark.sql import functions as F

from core.schema import FieldSpec, bigquery_fields
from core.tables import QUARANTINE_FIELDS, QUARANTINE_TABLE, TICKS_TABLE, TICK_FIELDS
from jobs.batch_files import BatchFiles
from jobs.dedup import QUARANTINE_ID
from jobs.loaders import LoadId
from jobs.locations import Location
from jobs.staging import BatchStager
from jobs.validate import PARTIAL_RESULTS_CONF, SOURCE_FILE, parse_lines

from .conftest import line


def _optional(uri: str) -> list[tuple[str, bool]]:
    """Each field of a staged Parquet file, in order, and whether it is optional (pyarrow: nullable)."""
    return [(field.name, field.nullable) for field in pq.read_schema(urlsplit(uri).path)]


def _nullable(fields: tuple[FieldSpec, ...]) -> list[tuple[str, bool]]:
    """Each column of the BigQuery table, in order, and whether it is NULLABLE, as the CDKTF app declares it."""
    return [(field["name"], field["mode"] == "NULLABLE") for field in bigquery_fields(fields)]


@pytest.fixture
def staged_fields(monkeypatch) -> dict[str, list[list[tuple[str, bool]]]]:
    """Per table, :func:`_optional` of every file the stream stages, read before the stream deletes it."""
    found: dict[str, list[list[tuple[str, bool]]]] = {TICKS_TABLE: [], QUARANTINE_TABLE: []}
    stage = BatchStager.stage

    def stage_and_read(self, *args):
        staged = stage(self, *args)
        found[TICKS_TABLE] += [_optional(uri) for uri in staged.ticks]
        found[QUARANTINE_TABLE] += [_optional(uri) for uri in staged.quarantine]
        return staged

    monkeypatch.setattr(BatchStager, "stage", stage_and_read)
    return found


@pytest.mark.spark
def test_staged_parquet_fields_are_required_exactly_where_the_bigquery_table_is(spark, pipeline, staged_fields):
    pipeline.land(
        [
            line("bitcoin"),
            line("tiny-coin", market_cap_rank=None, max_supply=None),  # nulls in NULLABLE columns
            line("bitcoin").replace('"symbol": "bit", ', ""),  # a REQUIRED column missing: quarantined
            "not json",
        ]
    )
    pipeline.land_bytes(b"", name="empty")  # its quarantine row is made apart from the batch's

    status = pipeline.run(spark)

    assert (status.rows_loaded, status.rows_quarantined) == (2, 3)
    assert pipeline.query("SELECT count(*) FROM market_ticks WHERE market_cap_rank IS NULL") == [(1,)]
    for table, fields in ((TICKS_TABLE, TICK_FIELDS), (QUARANTINE_TABLE, QUARANTINE_FIELDS)):
        assert staged_fields[table], f"no {table} files staged"
        for file_fields in staged_fields[table]:
            assert file_fields == _nullable(fields), table


@pytest.mark.spark
def test_null_in_a_required_column_fails_the_batch_and_stages_nothing(spark, tmp_path: Path):
    session = spark.newSession()
    session.conf.set(PARTIAL_RESULTS_CONF, "true")
    lines = session.createDataFrame([(line("bitcoin"), "file:/a.ndjson")], f"value string, {SOURCE_FILE} string")
    # A valid tick as foreachBatch gets it, then a bug in validation, simulated: a null
    # where the table requires a value.
    batch = parse_lines(lines).withColumn(QUARANTINE_ID, F.lit(None).cast("string"))
    broken = batch.withColumn("symbol", F.lit(None).cast("string"))
    staging = tmp_path / "staging"
    checkpoint = Location.parse(tmp_path / "checkpoint", option="--checkpoint")
    stager = BatchStager(session, Location.parse(staging, option="--staging"), BatchFiles(session, checkpoint))

    with pytest.raises(Py4JJavaError, match="market_ticks.symbol is null in a row being staged"):
        stager.stage(broken, LoadId("query", 0), [])
    # Spark may leave the failed task's partial file in its _temporary folder: never handed over.
    assert not list((staging / "batch_id=0" / TICKS_TABLE).glob("*.parquet"))
