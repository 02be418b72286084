"""De-duplicate ticks across micro-batches by the schema's key, within a watermark.

CoinGecko caches ``/coins/markets`` for 45-60 s, so consecutive polls repeat rows with
the same (coin_id, vs_currency, last_updated). ``dropDuplicatesWithinWatermark``
keeps the first and remembers its key until the watermark (newest event time seen
minus the delay) passes it; a row older than the watermark is dropped as late. Spark
reports both counts per batch in the query progress (:func:`dropped_rows`).

Quarantined rows travel through the same operator, since one streaming plan feeds
``foreachBatch``, but must be neither de-duplicated nor dropped, and must not move
the watermark (a far-future ``last_updated`` would make every later row late). Each
gets a random :data:`QUARANTINE_ID`, so its key is unique, and a null event time: in
Spark 3.5 a null never raises the watermark (the progress report shows it as a 1970
minimum), is never older than the watermark, and its state expires at the next
eviction. ``tests/jobs/test_stream.py`` holds Spark to that.

Back-filled rows (``origin = 'backfill'``) pass the operator the same way: hours or
months old, they would all be late, and their repeats are stopped before landing
(each back-fill object is landed once, docs/PRODUCER.md "Back-fill"). They get a
random id and a null event time inside the operator, their ``last_updated`` is put
back after it, so a live tick and a back-filled point never meet in its state. The
key and the state's schema stay as they were: an existing checkpoint keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from core.schema import market_tick
from core.tables import BACKFILL, ORIGIN
from jobs.validate import QUARANTINE_COLUMNS, REASON

#: Random id of a quarantined row (null for valid ticks), its key in the quarantine.
QUARANTINE_ID = QUARANTINE_COLUMNS["quarantine_id"]

_HELD_EVENT_TIME = "_backfill_event_time"


def drop_duplicate_ticks(rows: DataFrame, watermark: timedelta) -> DataFrame:
    """Drop repeated and late valid ticks from :func:`jobs.validate.parse_lines` output."""
    schema = market_tick()
    event_time = schema.partition_field  # the table is partitioned by event time
    valid = F.col(REASON).isNull()
    backfill = valid & F.coalesce(F.col(ORIGIN) == BACKFILL, F.lit(False))  # null: a row from before the field
    keyed = (
        rows.withColumn(_HELD_EVENT_TIME, F.when(backfill, F.col(event_time)))
        .withColumn(QUARANTINE_ID, F.when(~valid, F.expr("uuid()")).when(backfill, F.expr("uuid()")))
        .withColumn(event_time, F.when(valid & ~backfill, F.col(event_time)))
    )
    delay = f"{int(watermark.total_seconds())} seconds"
    kept = keyed.withWatermark(event_time, delay).dropDuplicatesWithinWatermark([*schema.key, QUARANTINE_ID])
    return kept.withColumn(event_time, F.coalesce(F.col(event_time), F.col(_HELD_EVENT_TIME))).drop(_HELD_EVENT_TIME)


def dropped_rows(progress: Mapping[str, Any]) -> tuple[int, int]:
    """(duplicates, late rows) a micro-batch dropped, from its progress (as a dict)."""
    duplicates = late = 0
    for operator in progress.get("stateOperators", []):
        duplicates += int(operator.get("customMetrics", {}).get("numDroppedDuplicateRows", 0))
        late += int(operator.get("numRowsDroppedByWatermark", 0))
    return duplicates, late
