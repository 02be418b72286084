"""The warehouse's views, written once and created in DuckDB and in BigQuery.

- ``latest_prices``: each coin's newest tick (price, 24h change, market-cap rank,
  last update, freshness in seconds), one row per coin and quote currency;
- ``candles_1m``: per coin, quote currency and minute of event time: open, high,
  low, close and the number of ticks (samples).

Each is one GoogleSQL file beside this module, translated by
:mod:`core.views.translate`, so both warehouses run the same definition.

Where they are created:

- DuckDB: :func:`create_duckdb_views`, from the stream's warehouse setup, in the
  short writer connection that creates the tables (readers never write: a DuckDB
  file takes one writer process at a time, docs/ARCHITECTURE.md §4);
- BigQuery: the CDKTF app declares one view per name with :func:`bigquery_view_sql`,
  and outputs :func:`looker_studio_url`, which opens a Looker Studio report on them.

Example::

    bigquery_view_sql("candles_1m", "my-project", "cryptopipe_dev")
    # SELECT ... FROM `my-project`.`cryptopipe_dev`.`market_ticks` ...
"""

from __future__ import annotations

from core.views.definitions import (
    VIEWS,
    bigquery_view_sql,
    create_duckdb_views,
    duckdb_view_sql,
    view_description,
    view_source,
)
from core.views.looker import looker_studio_url

__all__ = [
    "VIEWS",
    "bigquery_view_sql",
    "create_duckdb_views",
    "duckdb_view_sql",
    "looker_studio_url",
    "view_description",
    "view_source",
]
