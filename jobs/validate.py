"""Parse landing lines into ticks, and give every line that is not a valid tick a reason.

Lines are read as text so a bad line keeps its raw form for the quarantine. Every
check is derived from the one schema (``core/schemas/market_tick.json``): a
field's type, whether it may be null and its minimum; the event time must not be
further ahead than :data:`~core.schema.MAX_CLOCK_SKEW`. The checks mirror the
producer's pydantic model, so a line the producer would reject is quarantined here.

How the JSON is read, and why:

- One ``from_json`` reads the record with the schema's types, except timestamps,
  which are read as text and converted with the landing format: Spark's JSON reader
  would take a number as epoch seconds, and the text makes a precise reason.
- ``spark.sql.json.enablePartialResults`` must be on (the stream sets it) so a
  wrong-typed field nulls only itself, not its whole record; the parser then also
  fills a corrupt-record column, which tells a wrong-typed field from a missing one.
- Only lines with a corrupt record pay for more parsing: a *probe* per numeric field
  reads it as text, so "there but not a number" and "missing" get different reasons,
  and ``json_object_keys`` tells lines that are not JSON objects at all.
- ``allowNonNumericNumbers`` is off: ``"NaN"`` is not a price.

String fields accept any JSON scalar as its text (Spark's JSON reader converts);
the producer's strict model already rejects them, and catching them here would
cost every row an exception inside the parser.
"""

from __future__ import annotations

from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from core.schema import MAX_CLOCK_SKEW, TIMESTAMP_FORMAT_SPARK, FieldSpec, market_tick, spark_schema
from core.tables import LOAD_ID, QUARANTINE_FIELDS, RAW_LINE_CUT, RAW_LINE_KEPT_CHARS

#: The batch's column for each column of the quarantine table but the load id (the
#: load adds that): its name behind an underscore, so none collides with a record
#: field. Derived from ``core.tables``, so a renamed quarantine column fails here, at import.
QUARANTINE_COLUMNS = {spec.name: f"_{spec.name}" for spec in QUARANTINE_FIELDS if spec.name != LOAD_ID}

#: Why a line was quarantined; null for a valid tick.
REASON = QUARANTINE_COLUMNS["reason"]
#: The line as it was read.
RAW_LINE = QUARANTINE_COLUMNS["raw_line"]
#: The landing file the line came from (a URI).
SOURCE_FILE = QUARANTINE_COLUMNS["source_file"]
#: When the micro-batch that read the line started (a quarantined line's
#: ``quarantined_at``). In a streaming plan Spark fixes ``current_timestamp()`` to
#: that, and a replay of the batch keeps it.
READ_AT = QUARANTINE_COLUMNS["quarantined_at"]

#: The reason for a line that is not a JSON object at all (garbage, a cut-off write).
NOT_AN_OBJECT = "line is not a JSON object"
#: The reason for a landing file without a single record (its row has a null ``value``).
NO_RECORDS = "file has no records (empty or blank)"

#: The Spark SQL setting the checks rely on (see the module docstring).
PARTIAL_RESULTS_CONF = "spark.sql.json.enablePartialResults"

_CORRUPT = "_corrupt_record"
_JSON_OPTIONS = {"mode": "PERMISSIVE", "allowNonNumericNumbers": "false", "columnNameOfCorruptRecord": _CORRUPT}
_NUMERIC = ("float64", "int64")
_EXPECTED = {
    "float64": "not a number",
    "int64": "not an integer",
    "timestamp": "not a timestamp like 2025-06-01T12:00:03.123Z",
}
_EVENT_TIME = market_tick().partition_field  # the table is partitioned by event time
_PARSED = "_parsed"


def parse_lines(lines: DataFrame) -> DataFrame:
    """Turn ``value`` (one landing line) and ``_source_file`` into typed ticks.

    Returns the schema's fields in order, typed (null where the line had no valid
    value), then :data:`REASON`, :data:`RAW_LINE`, :data:`SOURCE_FILE` and
    :data:`READ_AT`. Filter blank lines out before: they are not records at all. A
    null ``value`` stands for a file without records: it gets :data:`NO_RECORDS`
    and an empty raw line. Raises ValueError unless the session enables
    :data:`PARTIAL_RESULTS_CONF`.
    """
    if lines.sparkSession.conf.get(PARTIAL_RESULTS_CONF, "false").lower() != "true":
        raise ValueError(f"parse_lines needs {PARTIAL_RESULTS_CONF}=true on the session to tell which field is bad")
    parsed = lines.select(
        F.col("value").alias(RAW_LINE),
        F.col(SOURCE_FILE),
        F.current_timestamp().alias(READ_AT),
        F.from_json("value", _parse_schema(), _JSON_OPTIONS).alias(_PARSED),
    )
    fields = market_tick().fields
    # Typed values in their own projection: the checks read them several times, and
    # Spark computes a column once where it would repeat an inlined to_timestamp.
    typed = parsed.select(*[_value(spec).alias(spec.name) for spec in fields], _PARSED, RAW_LINE, SOURCE_FILE, READ_AT)
    problems = [problem for spec in fields for problem in _problems(spec)]
    # Valid rows only evaluate the conditions; the messages are built for bad rows
    # alone, and json_object_keys (another parse) runs only for them too.
    failed = reduce(lambda a, b: a | b, (F.coalesce(condition, F.lit(False)) for condition, _ in problems))
    raw = F.col(RAW_LINE)
    reason = F.when(raw.isNull(), F.lit(NO_RECORDS)).when(
        failed,
        F.when(F.json_object_keys(raw).isNull(), F.lit(NOT_AN_OBJECT)).otherwise(
            F.concat_ws("; ", *(F.when(condition, message) for condition, message in problems))
        ),
    )
    return typed.select(
        *[spec.name for spec in fields],
        reason.alias(REASON),
        _kept(F.coalesce(raw, F.lit(""))).alias(RAW_LINE),
        SOURCE_FILE,
        READ_AT,
    )


def _kept(raw: Column) -> Column:
    """``raw`` as the quarantine keeps it: a line over :data:`~core.tables.RAW_LINE_KEPT_CHARS`
    characters cut there and followed by its length in bytes and its SHA-256 (both of the
    whole line, as UTF-8), so no quarantine row can outgrow a Storage Write request."""
    before, after = RAW_LINE_CUT.split("{bytes}")
    between, end = after.split("{sha256}")
    cut = F.concat(F.substring(raw, 1, RAW_LINE_KEPT_CHARS), F.lit(before), F.octet_length(raw).cast("string"),
                   F.lit(between), F.sha2(raw, 256), F.lit(end))
    return F.when(F.length(raw) > RAW_LINE_KEPT_CHARS, cut).otherwise(raw)


def _parse_schema() -> T.StructType:
    """The record's Spark schema, timestamps as text (see :func:`_value`), plus the corrupt record."""
    return T.StructType(
        [
            *[
                T.StructField(f.name, T.StringType() if isinstance(f.dataType, T.TimestampType) else f.dataType)
                for f in spark_schema().fields
            ],
            T.StructField(_CORRUPT, T.StringType()),
        ]
    )


def _probe(name: str) -> Column:
    """Field ``name`` as text: non-null exactly when the line has a non-null value there."""
    return F.from_json(RAW_LINE, T.StructType([T.StructField(name, T.StringType())]), _JSON_OPTIONS)[name]


def _value(spec: FieldSpec) -> Column:
    """The typed value of ``spec`` from the parsed record; null if absent or invalid."""
    parsed = F.col(_PARSED)[spec.name]
    if spec.type == "timestamp":
        return F.to_timestamp(parsed, TIMESTAMP_FORMAT_SPARK)
    return parsed


def _problems(spec: FieldSpec) -> list[tuple[Column, Column]]:
    """The checks on ``spec``: (condition that flags a bad value, reason to give).

    The conditions read ``parse_lines``'s typed frame: the typed value columns
    and the parsed record (for timestamps' text and the corrupt record).
    """
    if spec.type in _NUMERIC:
        return _numeric_problems(spec)
    name = spec.name
    text = F.col(_PARSED)[name]
    problems = []
    if not spec.nullable:
        problems.append((text.isNull(), F.lit(f"{name}: missing or null")))
    if spec.type == "string":
        problems.append((text == "", F.lit(f"{name}: empty")))
        if spec.values:
            allowed = ", ".join(spec.values)
            problems.append(
                (~text.isin(*spec.values), F.concat(F.lit(f"{name}: '"), text, F.lit(f"' is not one of {allowed}")))
            )
        return problems
    value = F.col(name)
    problems.append(
        (text.isNotNull() & value.isNull(), F.concat(F.lit(f"{name}: '"), text, F.lit(f"' is {_EXPECTED[spec.type]}")))
    )
    if name == _EVENT_TIME:
        limit = F.col(READ_AT) + F.expr(f"INTERVAL {int(MAX_CLOCK_SKEW.total_seconds())} SECONDS")
        problems.append(
            (value > limit, F.concat(F.lit(f"{name}: "), text, F.lit(f" is more than {MAX_CLOCK_SKEW} in the future")))
        )
    return problems


def _numeric_problems(spec: FieldSpec) -> list[tuple[Column, Column]]:
    """:func:`_problems` for numbers: missing, wrong type, not finite, below the minimum."""
    name = spec.name
    value = F.col(name)
    # A null value is missing, unless the record is corrupt and the field is there:
    # then it had the wrong type. The probe (a second JSON lookup) is pure, so the
    # result is right in whatever order Spark evaluates the conditions; Spark SQL does
    # not promise to short-circuit & and |, so the probe may also run for valid records
    # (its generated code usually skips it, an optimisation, not a guarantee).
    corrupt = F.col(_PARSED)[_CORRUPT].isNotNull()
    problems = [(corrupt & value.isNull() & _probe(name).isNotNull(), F.lit(f"{name}: {_EXPECTED[spec.type]}"))]
    if not spec.nullable:
        missing = value.isNull() & (~corrupt | _probe(name).isNull())
        problems.insert(0, (missing, F.lit(f"{name}: missing or null")))
    if spec.type == "float64":
        problems.append((F.isnan(value) | (F.abs(value) == float("inf")), F.lit(f"{name}: not a finite number")))
    if spec.minimum is not None:
        below = F.concat(F.lit(f"{name}: "), value.cast("string"), F.lit(f" is below the minimum {spec.minimum:g}"))
        problems.append((value < F.lit(spec.minimum), below))
    return problems
