"""The market tick record, declared once and derived for every system that stores it.

``schemas/market_tick.json`` is the single source of truth. Everything that has to
agree on the record's shape is generated from it here:

- :func:`record_model`: the pydantic model the producer validates each CoinGecko
  record with (aliases map CoinGecko's names onto ours);
- :func:`spark_schema`: the ``StructType`` the streaming job parses landing lines with;
- :func:`duckdb_columns`: the column definitions of the local warehouse;
- :func:`bigquery_fields`: the BigQuery table schema the CDKTF app declares.

A test checks all four field by field, so a change to the JSON file changes all of
them or fails loudly.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any, Literal

from core.timefmt import utc_millis

if TYPE_CHECKING:
    from pydantic import BaseModel

# pydantic and pyspark are imported inside the functions that need them: the Spark
# job ships this module to Dataproc in a --py-files zip, where pydantic (a compiled
# extension that cannot load from a zip) may be absent, and the producer VM never
# installs pyspark.

#: How far in the future an event time may be before a record is rejected: clocks
#: drift, but a ``last_updated`` hours ahead of now is corrupt data.
MAX_CLOCK_SKEW = timedelta(hours=1)

#: The landing format's timestamp layout (ISO-8601, UTC, milliseconds), as Python
#: writes it and as Spark's ``timestampFormat`` reads it.
TIMESTAMP_FORMAT_SPARK = "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"

# Each logical type and what it is called in every system; one row per type keeps
# the mappings side by side so they cannot drift apart.
_TYPES: dict[str, dict[str, str]] = {
    "string": {"duckdb": "VARCHAR", "bigquery": "STRING", "spark": "StringType", "arrow": "string"},
    "float64": {"duckdb": "DOUBLE", "bigquery": "FLOAT64", "spark": "DoubleType", "arrow": "float64"},
    "int64": {"duckdb": "BIGINT", "bigquery": "INT64", "spark": "LongType", "arrow": "int64"},
    "timestamp": {"duckdb": "TIMESTAMPTZ", "bigquery": "TIMESTAMP", "spark": "TimestampType", "arrow": "timestamp"},
}


@dataclass(frozen=True)
class FieldSpec:
    """One column of the record."""

    name: str
    type: str
    nullable: bool
    description: str
    source: str | None = None
    """CoinGecko's name for the field; None when the producer supplies it."""
    minimum: float | None = None
    """Smallest valid value for numeric fields, checked by producer and stream alike."""
    values: tuple[str, ...] | None = None
    """The only values a string field may take, checked by producer and stream alike."""


@dataclass(frozen=True)
class RecordSchema:
    """The record: its fields, its de-duplication key and its physical layout."""

    name: str
    description: str
    fields: tuple[FieldSpec, ...]
    key: tuple[str, ...]
    partition_field: str
    cluster_fields: tuple[str, ...]

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"no field {name!r} in schema {self.name!r}; fields are {self.names}")


@cache
def market_tick() -> RecordSchema:
    """Load and check ``schemas/market_tick.json``."""
    raw = json.loads(resources.files("core").joinpath("schemas/market_tick.json").read_text())
    fields = tuple(FieldSpec(**{**f, "values": tuple(f["values"])} if "values" in f else f) for f in raw["fields"])
    schema = RecordSchema(
        name=raw["name"],
        description=raw["description"],
        fields=fields,
        key=tuple(raw["key"]),
        partition_field=raw["partition_field"],
        cluster_fields=tuple(raw["cluster_fields"]),
    )
    for spec in fields:
        if spec.type not in _TYPES:
            raise ValueError(f"field {spec.name!r} has type {spec.type!r}; expected one of {sorted(_TYPES)}")
    for spec in fields:
        if spec.values is not None and spec.type != "string":
            raise ValueError(f"field {spec.name!r} lists values but is a {spec.type}; only strings may")
    for name in (*schema.key, schema.partition_field, *schema.cluster_fields):
        schema.field(name)  # raises on a name that is not a field
    return schema


@cache
def record_model() -> type[BaseModel]:
    """The pydantic model of one record, reading CoinGecko's names and writing ours.

    ``model_validate({**coingecko_record, "vs_currency": ..., "ingested_at": ...,
    "poll_id": ...})`` validates a record; ``model_dump(mode="json")`` gives the
    landing line, timestamps as ISO-8601 UTC with milliseconds.
    """
    from pydantic import (
        AwareDatetime,
        BaseModel,
        ConfigDict,
        Field,
        PlainSerializer,
        Strict,
        create_model,
        field_validator,
    )

    utc_timestamp = Annotated[AwareDatetime, PlainSerializer(utc_millis, return_type=str)]

    def python_type(spec: FieldSpec) -> Any:
        if spec.type == "string" and spec.values:
            base: Any = Literal[spec.values]
        elif spec.type == "string":
            base = Annotated[str, Strict(), Field(min_length=1)]
        elif spec.type == "float64":
            # Strict: a price sent as a string is a wrong-typed record, not a number.
            base = Annotated[float, Strict(), Field(ge=spec.minimum, allow_inf_nan=False)]
        elif spec.type == "int64":
            base = Annotated[int, Strict(), Field(ge=spec.minimum)]
        else:
            base = utc_timestamp
        return base | None if spec.nullable else base

    class RecordBase(BaseModel):
        model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

        @field_validator("last_updated", check_fields=False)
        @classmethod
        def _not_in_future(cls, value: datetime) -> datetime:
            limit = datetime.now(timezone.utc) + MAX_CLOCK_SKEW
            if value > limit:
                raise ValueError(f"is in the future ({utc_millis(value)} > now + {MAX_CLOCK_SKEW})")
            return value

    definitions: dict[str, Any] = {}
    for spec in market_tick().fields:
        default = None if spec.nullable else ...
        alias = spec.source or spec.name
        definitions[spec.name] = (
            python_type(spec),
            Field(default, validation_alias=alias, description=spec.description),
        )
    return create_model("MarketTick", __base__=RecordBase, **definitions)


def spark_schema(fields: Iterable[FieldSpec] | None = None):
    """The record (or ``fields``) as a Spark ``StructType``; pyspark is imported only when asked for."""
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField(spec.name, getattr(T, _TYPES[spec.type]["spark"])(), spec.nullable)
            for spec in (market_tick().fields if fields is None else fields)
        ]
    )


def duckdb_columns(fields: Iterable[FieldSpec] | None = None) -> list[str]:
    """Column definitions (``name TYPE [NOT NULL]``) for the DuckDB table.

    ``fields`` defaults to the market tick's; the warehouse's other tables (the
    quarantine) pass their own so every table maps types the same way.
    """
    return [
        f"{spec.name} {_TYPES[spec.type]['duckdb']}{'' if spec.nullable else ' NOT NULL'}"
        for spec in (market_tick().fields if fields is None else fields)
    ]


def bigquery_fields(fields: Iterable[FieldSpec] | None = None) -> list[dict[str, str]]:
    """The BigQuery table schema, in the JSON form ``google_bigquery_table`` takes.

    ``fields`` defaults to the market tick's, as in :func:`duckdb_columns`.
    """
    return [
        {
            "name": spec.name,
            "type": _TYPES[spec.type]["bigquery"],
            "mode": "NULLABLE" if spec.nullable else "REQUIRED",
            "description": spec.description,
        }
        for spec in (market_tick().fields if fields is None else fields)
    ]


def arrow_schema(fields: Iterable[FieldSpec] | None = None):
    """The record (or ``fields``) as an Arrow schema, for the Storage Write API's Arrow rows.

    Timestamps are UTC microseconds, BigQuery's own precision; pyarrow is imported only when asked for.
    """
    import pyarrow as pa

    def arrow_type(spec: FieldSpec):
        name = _TYPES[spec.type]["arrow"]
        return pa.timestamp("us", tz="UTC") if name == "timestamp" else pa.type_for_alias(name)

    return pa.schema(
        [pa.field(spec.name, arrow_type(spec), spec.nullable)
         for spec in (market_tick().fields if fields is None else fields)]
    )
