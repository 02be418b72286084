"""The view definitions: their GoogleSQL sources and each warehouse's version of them."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import TYPE_CHECKING

from core.views.translate import translate

if TYPE_CHECKING:
    import duckdb

#: The views. Each reads only ``market_ticks``, so any order creates them; this one
#: makes the price chart's source the first data source of the Looker Studio report.
VIEWS: tuple[str, ...] = ("candles_1m", "latest_prices")


@cache
def view_source(view: str) -> str:
    """The view's GoogleSQL as written; ValueError naming the views for an unknown one."""
    if view not in VIEWS:
        raise ValueError(f"no view {view!r}; the views are {', '.join(VIEWS)}")
    return resources.files("core.views").joinpath(f"{view}.sql").read_text(encoding="utf-8")


def view_description(view: str) -> str:
    """The first line of the view's header comment, e.g. for the BigQuery table description."""
    first = view_source(view).splitlines()[0]
    return first.removeprefix("--").strip().removeprefix(f"{view}:").strip()


def duckdb_view_sql(view: str) -> str:
    """The view's body (a SELECT) in DuckDB's dialect."""
    return translate(view_source(view), "duckdb")


def bigquery_view_sql(view: str, project: str, dataset: str) -> str:
    """The view's body (a SELECT) in GoogleSQL, reading ``project.dataset`` tables.

    What the CDKTF app puts in ``google_bigquery_table.view.query``
    (``use_legacy_sql = false``). Raises ValueError for an invalid project or dataset id.
    """
    return translate(view_source(view), "bigquery", project=project, dataset=dataset)


def create_duckdb_views(con: duckdb.DuckDBPyConnection) -> None:
    """Create or replace every view on a read-write connection whose tables exist.

    Idempotent, and replacing (not skipping) existing views means a warehouse made
    by an older version gets the current definitions the next time the stream starts.
    """
    for view in VIEWS:
        con.execute(f"CREATE OR REPLACE VIEW {view} AS\n{duckdb_view_sql(view)}")
