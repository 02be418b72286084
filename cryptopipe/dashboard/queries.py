"""The dashboard's queries over the views, written once in GoogleSQL like the views.

Each backend runs :meth:`Query.sql` in its own dialect (:mod:`core.views.translate`)
and binds the ``@parameters`` itself; the declared types are what BigQuery needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from core.views.translate import translate

#: Most coins the latest-prices table lists (CoinGecko's page size, the producer's default top N).
MAX_LATEST_ROWS = 250


@dataclass(frozen=True)
class Query:
    """One dashboard query: GoogleSQL over the views, with typed ``@parameters``."""

    name: str
    source: str
    params: Mapping[str, str]
    """Parameter name -> BigQuery type (``STRING``, ``TIMESTAMP``, ``ARRAY<STRING>``, ...)."""

    def sql(self, dialect: str, *, project: str | None = None, dataset: str | None = None) -> str:
        return translate(self.source, dialect, project=project, dataset=dataset)


LATEST = Query(
    "latest",
    f"""
    SELECT coin_id, symbol, name, price, price_change_percentage_24h, market_cap, market_cap_rank, last_updated
    FROM latest_prices
    WHERE vs_currency = @vs_currency
    ORDER BY market_cap_rank ASC NULLS LAST, coin_id
    LIMIT {MAX_LATEST_ROWS}
    """,
    {"vs_currency": "STRING"},
)

CANDLES = Query(
    "candles",
    """
    SELECT coin_id, minute, open, high, low, close, total_volume, samples, backfilled
    FROM candles_1m
    WHERE vs_currency = @vs_currency AND coin_id IN UNNEST(@coins) AND minute >= @since
    ORDER BY coin_id, minute
    """,
    {"vs_currency": "STRING", "coins": "ARRAY<STRING>", "since": "TIMESTAMP"},
)
