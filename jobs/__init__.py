"""The Spark Structured Streaming job and the warehouses it loads into.

``jobs/stream.py`` is the entry point (``spark-submit`` on Dataproc, in-process for
``cryptopipe up``); ``jobs/loaders`` holds the warehouse contract and its DuckDB and
BigQuery implementations. docs/STREAM.md describes the job.

The names below are the package's public surface; everything else is private to it
and may change. Each loads on first use, so ``import jobs`` imports neither Spark nor
a warehouse client (the dashboard reads DuckDB through this package without Spark)::

    from jobs import parse_args, start_stream, build_session

    with start_stream(build_session(), parse_args([...])) as handle:
        handle.await_termination()
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

#: Public name -> the module that defines it.
_SURFACE = {
    # running the stream
    "StreamConfig": "jobs.config",
    "parse_args": "jobs.config",
    "start_stream": "jobs.stream",
    "run": "jobs.stream",
    "StreamHandle": "jobs.stream",
    "JOB_SQL_CONF": "jobs.stream",
    "StreamStatus": "jobs.metrics",
    "build_session": "jobs.session",
    "SESSION_CONF": "jobs.session",
    # warehouses
    "Warehouse": "jobs.loaders",
    "LoadId": "jobs.loaders",
    "LoadResult": "jobs.loaders",
    "StagedFiles": "jobs.loaders",
    "warehouse_from_uri": "jobs.loaders",
    "DuckDBWarehouse": "jobs.loaders.duckdb",
    "open_reader": "jobs.loaders.duckdb",
    "connect": "jobs.loaders.duckdb",
    "duckdb_path": "jobs.loaders.duckdb",
    # errors
    "ConfigError": "jobs.errors",
    "WarehouseError": "jobs.errors",
    "WarehouseLockedError": "jobs.errors",
}

__all__ = sorted(_SURFACE)


def __getattr__(name: str) -> Any:
    if name not in _SURFACE:
        raise AttributeError(f"module 'jobs' has no attribute {name!r}; its public names are {__all__}")
    value = getattr(import_module(_SURFACE[name]), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value
