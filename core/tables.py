"""The warehouse's two tables, as every part sees them: names, columns, modes, partitioning.

The stream stages and loads exactly these columns, the CDKTF app declares the
BigQuery tables from them, the DuckDB warehouse creates its tables from them: one
definition, so a column added here reaches every table and nothing restates one.
``market_ticks`` is the one record schema (:mod:`core.schema`) plus the load id every
loaded row carries; ``quarantine`` holds the landing lines the stream could not load.
"""

from __future__ import annotations

from core.schema import FieldSpec, market_tick

TICKS_TABLE = "market_ticks"
QUARANTINE_TABLE = "quarantine"

#: The quarantine table's partitioning column (by day): when the stream read the line.
QUARANTINE_PARTITION_FIELD = "quarantined_at"

#: The column every loaded row carries: the load that added it.
LOAD_ID = "_load_id"

_LOAD_ID_FIELD = FieldSpec(LOAD_ID, "string", False, "The load that added the row: '<query id>/<batch id>'.")

#: Record fields added after the tables were first deployed. They come after the load
#: id: an existing BigQuery table (like DuckDB's ``ALTER TABLE ... ADD COLUMN``) appends
#: a new column at the end, so this order is the one an existing table takes in place.
APPENDED_FIELDS: tuple[str, ...] = ("origin",)

#: The field saying where a row came from, and its value for back-filled rows. Any other
#: value, or none (rows loaded before the field existed), is a live poll: data age, the
#: latest prices and the alerts look at live rows only.
ORIGIN = "origin"
BACKFILL = "backfill"
assert BACKFILL in (market_tick().field(ORIGIN).values or ()), "core/schemas/market_tick.json lost the back-fill origin"

#: Columns of the ticks table: the record's, then the load id, then the appended fields.
TICK_FIELDS: tuple[FieldSpec, ...] = (
    *(spec for spec in market_tick().fields if spec.name not in APPENDED_FIELDS),
    _LOAD_ID_FIELD,
    *(market_tick().field(name) for name in APPENDED_FIELDS),
)

#: The most characters of a landing line a quarantine row keeps (at most 64 KiB in UTF-8). A
#: longer line (a whole ``/coins/markets`` array is about 160 KB) keeps its first
#: ``RAW_LINE_KEPT_CHARS`` characters followed by :data:`RAW_LINE_CUT`, which gives the whole
#: line's length in bytes and its SHA-256: a quarantine row then always fits a Storage Write
#: request (10 MB) with room for over a hundred more (docs/STREAM.md, "Quarantine").
RAW_LINE_KEPT_CHARS = 16_384
RAW_LINE_CUT = " …[cut: {bytes} bytes in all, sha256 {sha256}]"

#: Columns of the quarantine table: a landing line the stream could not load, and why.
QUARANTINE_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("quarantine_id", "string", False, "Random id of the quarantined line."),
    FieldSpec("raw_line", "string", False, "The line as read from the landing file (a long one cut, see "
              "RAW_LINE_KEPT_CHARS)."),
    FieldSpec("reason", "string", False, "Every failed check as '<field>: <problem>', joined by '; '."),
    FieldSpec("source_file", "string", False, "URI of the landing file the line came from."),
    FieldSpec("quarantined_at", "timestamp", False, "Start of the micro-batch that read the line (UTC)."),
    _LOAD_ID_FIELD,
)
