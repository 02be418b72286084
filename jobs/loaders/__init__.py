"""Warehouses the stream loads into, chosen by the scheme of ``--warehouse``.

- ``duckdb:///abs/path.duckdb``: :class:`jobs.loaders.duckdb.DuckDBWarehouse`, local;
- ``bigquery://project.dataset``: :class:`jobs.loaders.bigquery.BigQueryWarehouse`,
  on Dataproc.

Adding a warehouse is one form in :mod:`core.uris`, one :class:`Warehouse` subclass
and one branch in :func:`warehouse_from_uri`. Each is imported only when asked for,
so the Dataproc job never needs DuckDB, nor a laptop the BigQuery client.
"""

from __future__ import annotations

from core.uris import EXAMPLES, SCHEMES, WAREHOUSE_FORMS, DuckDBFile, parse_warehouse
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
WAREHOUSE_SCHEMES = {SCHEMES[form]: EXAMPLES[form] for form in WAREHOUSE_FORMS}


def warehouse_from_uri(uri: str) -> Warehouse:
    """The warehouse ``uri`` names, not yet touched; raises ConfigError naming ``uri``.

    :func:`core.uris.parse_warehouse` reads the URI (and refuses a malformed one); its
    form picks the class, whose ``from_uri`` takes the settings.
    """
    if isinstance(parse_warehouse(uri, error=ConfigError), DuckDBFile):
        from jobs.loaders.duckdb import DuckDBWarehouse

        return DuckDBWarehouse.from_uri(uri)
    try:
        from jobs.loaders.bigquery import BigQueryWarehouse
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("google"):
            raise
        raise ConfigError(
            f"--warehouse: {uri!r} needs google-cloud-bigquery ({error}); install cryptopipe[dataproc]"
        ) from error
    return BigQueryWarehouse.from_uri(uri)
