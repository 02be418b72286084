"""Warehouses the stream loads into, chosen by the scheme of ``--warehouse``.

- ``duckdb:///abs/path.duckdb``: :class:`jobs.loaders.duckdb.DuckDBWarehouse`, local;
- ``bigquery://project.dataset``: on Dataproc, written the way ``--bigquery-write``
  says (:data:`BIGQUERY_WRITE_PATHS`): ``storage-write``,
  :class:`jobs.loaders.bigquery_storage.StorageWriteWarehouse` (PENDING write streams,
  seconds-fresh), or ``load-jobs``, :class:`jobs.loaders.bigquery.BigQueryWarehouse`
  (one load job per table and batch: for large backfills, at a trigger of minutes).

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
    "BIGQUERY_WRITE_PATHS",
    "WAREHOUSE_SCHEMES",
    "LoadId",
    "LoadResult",
    "StagedFiles",
    "Warehouse",
    "warehouse_from_uri",
]

#: The ``--warehouse`` URI schemes, and an example of each.
WAREHOUSE_SCHEMES = {SCHEMES[form]: EXAMPLES[form] for form in WAREHOUSE_FORMS}


#: How the BigQuery warehouse writes batches (``--bigquery-write``); the first is the default.
BIGQUERY_WRITE_PATHS = ("storage-write", "load-jobs")


def warehouse_from_uri(uri: str, *, bigquery_write: str = BIGQUERY_WRITE_PATHS[0]) -> Warehouse:
    """The warehouse ``uri`` names, not yet touched; raises ConfigError naming ``uri``.

    :func:`core.uris.parse_warehouse` reads the URI (and refuses a malformed one); its
    form picks the class, whose ``from_uri`` takes the settings; for BigQuery,
    ``bigquery_write`` picks the write path.
    """
    if isinstance(parse_warehouse(uri, error=ConfigError), DuckDBFile):
        from jobs.loaders.duckdb import DuckDBWarehouse

        return DuckDBWarehouse.from_uri(uri)
    if bigquery_write not in BIGQUERY_WRITE_PATHS:
        raise ConfigError(f"--bigquery-write: {bigquery_write!r} is not one of {', '.join(BIGQUERY_WRITE_PATHS)}")
    try:
        if bigquery_write == "storage-write":
            from jobs.loaders.bigquery_storage import StorageWriteWarehouse as BigQueryWarehouse
        else:
            from jobs.loaders.bigquery import BigQueryWarehouse
    except ModuleNotFoundError as error:
        if not (error.name or "").startswith("google"):
            raise
        raise ConfigError(
            f"--warehouse: {uri!r} needs google-cloud-bigquery and google-cloud-bigquery-storage ({error}); install cryptopipe[dataproc]"
        ) from error
    return BigQueryWarehouse.from_uri(uri)
