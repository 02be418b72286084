"""The one schema and everything derived from it agree field by field."""

from __future__ import annotations

import json
from importlib import resources

import duckdb
import pytest
from pydantic import ValidationError
from pyspark.sql import types as T

from core.schema import bigquery_fields, duckdb_columns, market_tick, record_model, spark_schema

from ..conftest import coingecko

FIELDS = market_tick().fields
SPARK_TYPES = {"string": T.StringType(), "float64": T.DoubleType(), "int64": T.LongType(), "timestamp": T.TimestampType()}
DUCKDB_TYPES = {"string": "VARCHAR", "float64": "DOUBLE", "int64": "BIGINT", "timestamp": "TIMESTAMP WITH TIME ZONE"}
BIGQUERY_TYPES = {"string": "STRING", "float64": "FLOAT64", "int64": "INT64", "timestamp": "TIMESTAMP"}


def test_schema_file_lists_each_field_once_with_description():
    raw = json.loads(resources.files("core").joinpath("schemas/market_tick.json").read_text())
    names = [f["name"] for f in raw["fields"]]
    assert len(names) == len(set(names))
    assert all(f["description"] for f in raw["fields"])


def test_prices_are_64_bit_floats_in_every_system():
    spark = {f.name: f.dataType for f in spark_schema().fields}
    bigquery = {f["name"]: f["type"] for f in bigquery_fields()}
    assert spark["price"] == T.DoubleType()
    assert bigquery["price"] == "FLOAT64"
    assert "price DOUBLE NOT NULL" in duckdb_columns()


def test_spark_schema_matches_fields_in_order_type_and_nullability():
    derived = spark_schema().fields
    assert [f.name for f in derived] == market_tick().names
    for spec, field in zip(FIELDS, derived):
        assert field.dataType == SPARK_TYPES[spec.type], spec.name
        assert field.nullable is spec.nullable, spec.name


def test_bigquery_fields_match_fields_in_order_type_and_mode():
    derived = bigquery_fields()
    assert [f["name"] for f in derived] == market_tick().names
    for spec, field in zip(FIELDS, derived):
        assert field["type"] == BIGQUERY_TYPES[spec.type], spec.name
        assert field["mode"] == ("NULLABLE" if spec.nullable else "REQUIRED"), spec.name
        assert field["description"] == spec.description


def test_duckdb_table_from_columns_matches_fields():
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t ({', '.join(duckdb_columns())})")
    described = con.execute("DESCRIBE t").fetchall()
    assert [row[0] for row in described] == market_tick().names
    for spec, (name, type_, null, *_rest) in zip(FIELDS, described):
        assert type_ == DUCKDB_TYPES[spec.type], name
        assert (null == "YES") is spec.nullable, name


def test_record_model_reads_coingecko_names_and_writes_schema_names():
    line = record_model().model_validate(coingecko()).model_dump(mode="json")
    assert list(line) == market_tick().names
    assert line["coin_id"] == "bitcoin"
    assert line["price"] == 64000.5
    assert line["last_updated"] == "2025-06-01T12:00:03.123Z"


@pytest.mark.parametrize("spec", [f for f in FIELDS if not f.nullable], ids=lambda f: f.name)
def test_record_model_rejects_null_in_required_field(spec):
    with pytest.raises(ValidationError) as error:
        record_model().model_validate(coingecko(**{spec.source or spec.name: None}))
    assert (spec.source or spec.name) in str(error.value)


@pytest.mark.parametrize("spec", [f for f in FIELDS if f.nullable and f.source], ids=lambda f: f.name)
def test_record_model_accepts_null_in_nullable_field(spec):
    line = record_model().model_validate(coingecko(**{spec.source: None})).model_dump(mode="json")
    assert line[spec.name] is None


@pytest.mark.parametrize("spec", [f for f in FIELDS if f.minimum is not None], ids=lambda f: f.name)
def test_record_model_rejects_value_below_schema_minimum(spec):
    with pytest.raises(ValidationError):
        record_model().model_validate(coingecko(**{spec.source: spec.minimum - 1}))


def test_record_model_keeps_tiny_prices_exact():
    line = record_model().model_validate(coingecko(current_price=1.2e-08)).model_dump(mode="json")
    assert line["price"] == 1.2e-08


def test_record_model_rejects_price_sent_as_string():
    with pytest.raises(ValidationError, match="current_price"):
        record_model().model_validate(coingecko(current_price="64000.5"))


def test_record_model_rejects_far_future_event_time():
    with pytest.raises(ValidationError, match="in the future"):
        record_model().model_validate(coingecko(last_updated="2999-01-01T00:00:00.000Z"))


def test_record_model_normalises_offsets_to_utc_milliseconds():
    line = record_model().model_validate(
        coingecko(last_updated="2025-06-01T14:00:03.123456+02:00")
    ).model_dump(mode="json")
    assert line["last_updated"] == "2025-06-01T12:00:03.123Z"


def test_origin_takes_only_its_values_and_may_be_null():
    model = record_model()
    assert model.model_validate(coingecko(origin="backfill")).model_dump(mode="json")["origin"] == "backfill"
    assert model.model_validate(coingecko(origin=None)).model_dump(mode="json")["origin"] is None
    with pytest.raises(ValidationError, match="origin"):
        model.model_validate(coingecko(origin="scraped"))


def test_appended_origin_column_is_nullable_and_after_the_load_id_everywhere():
    """An existing table takes a NULLABLE column at its end in place (docs/PRODUCER.md "Back-fill")."""
    from core.tables import LOAD_ID, TICK_FIELDS

    names = [f.name for f in TICK_FIELDS]
    assert names[-2:] == [LOAD_ID, "origin"]
    assert bigquery_fields(TICK_FIELDS)[-1] == {**bigquery_fields(TICK_FIELDS)[-1], "mode": "NULLABLE"}
    con = duckdb.connect()
    before = [f for f in TICK_FIELDS if f.name != "origin"]
    con.execute(f"CREATE TABLE market_ticks ({', '.join(duckdb_columns(before))})")
    con.execute(f"ALTER TABLE market_ticks ADD COLUMN {duckdb_columns([TICK_FIELDS[-1]])[0]}")
    assert [row[0] for row in con.execute("DESCRIBE market_ticks").fetchall()] == names


def test_the_arrow_schema_is_the_records_columns_modes_and_types():
    import pyarrow as pa

    from core.schema import arrow_schema, market_tick

    schema = arrow_schema()
    assert schema.names == market_tick().names
    for spec in market_tick().fields:
        field = schema.field(spec.name)
        assert field.nullable == spec.nullable
        expected = {"string": pa.string(), "float64": pa.float64(), "int64": pa.int64(),
                    "timestamp": pa.timestamp("us", tz="UTC")}[spec.type]
        assert field.type == expected, spec.name
