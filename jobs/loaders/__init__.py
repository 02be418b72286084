"""Warehouses the stream loads into, chosen by the scheme of ``--warehouse``.

- ``duckdb:///abs/path.duckdb``: :class:`jobs.loaders.duckdb.DuckDBWarehouse`, local;
- ``bigquery://project.dataset``: :class:`jobs.loaders.bigquery.BigQueryWarehouse`,
  on Dataproc.

Adding a warehouse is one :class:`Warehouse` subclass and one branch in
:func:`warehouse_from_uri`. Each is imported only when asked for, so the Dataproc
job never needs DuckDB, nor a laptop the BigQuery client.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from jobs.errors import ConfigError
from jobs.loaders.base import (
    LoadId,
    LoadResult,
    StagedFiles,
    Warehouse,
)

__all__ = [
    "WAREHOUSE_SCHEMES",
    "LoadId",
    "LoadResult",
    "StagedFiles",
    "Warehouse",
    "warehouse_from_uri",
]

#: The ``--warehouse`` URI schemes, and an example of each.
WAREHOUSE_SCHEMES = {"duckdb": "duckdb:///abs/path/warehouse.duckdb", "bigquery": "bigquery://project.dataset"}


def warehouse_from_uri(uri: str) -> Warehouse:
    """The warehouse ``uri`` names, not yet touched; raises ConfigError naming ``uri``."""
    scheme = urlsplit(uri).scheme
    if scheme == "duckdb":
        from jobs.loaders.duckdb import DuckDBWarehouse

        return DuckDBWarehouse.from_uri(uri)
    if scheme == "bigquery":
        try:
            from jobs.loaders.bigquery import BigQueryWarehouse
        except ModuleNotFoundError as error:
            if not (error.name or "").startswith("google"):
                raise
            raise ConfigError(
                f"--warehouse: {uri!r} needs google-cloud-bigquery ({error}); install cryptopipe[dataproc]"
            ) from error
        return BigQueryWarehouse.from_uri(uri)
    expected = ", ".join(WAREHOUSE_SCHEMES.values())
    raise ConfigError(f"--warehouse: {uri!r} is not a warehouse URI; expected one of {expected}")
