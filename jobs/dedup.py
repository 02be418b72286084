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
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from core.schema import market_tick
from jobs.validate import QUARANTINE_COLUMNS, REASON

#: Random id of a quarantined row (null for valid ticks), its key in the quarantine.
QUARANTINE_ID = QUARANTINE_COLUMNS["quarantine_id"]


def drop_duplicate_ticks(rows: DataFrame, watermark: timedelta) -> DataFrame:
    """Drop repeated and late valid ticks from :func:`jobs.validate.parse_lines` output."""
    schema = market_tick()
    event_time = schema.partition_field  # the table is partitioned by event time
    valid = F.col(REASON).isNull()
    keyed = rows.withColumn(QUARANTINE_ID, F.when(~valid, F.expr("uuid()"))).withColumn(
        event_time, F.when(valid, F.col(event_time))
    )
    delay = f"{int(watermark.total_seconds())} seconds"
    return keyed.withWatermark(event_time, delay).dropDuplicatesWithinWatermark([*schema.key, QUARANTINE_ID])


def dropped_rows(progress: Mapping[str, Any]) -> tuple[int, int]:
    """(duplicates, late rows) a micro-batch dropped, from its progress (as a dict)."""
    duplicates = late = 0
    for operator in progress.get("stateOperators", []):
        duplicates += int(operator.get("customMetrics", {}).get("numDroppedDuplicateRows", 0))
        late += int(operator.get("numRowsDroppedByWatermark", 0))
    return duplicates, late
