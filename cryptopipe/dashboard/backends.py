"""Where the dashboard's queries run: the local DuckDB file, or BigQuery.

A :class:`QueryBackend` runs one :class:`~cryptopipe.dashboard.queries.Query` and
returns its rows as dicts. :func:`backend_from_uri` picks one from the same URIs as
the stream's ``--warehouse`` (``duckdb:///abs/path.duckdb``, ``bigquery://project.dataset``).

DuckDB takes one writer process at a time, and while the stream writes a batch no
other connection can open the file (docs/ARCHITECTURE.md §4). So :class:`DuckDBBackend`
never holds it: each query opens a read-only connection, waits a bounded time for
the batch in progress to commit, and closes it at once; if the wait runs out it
raises :class:`BackendBusy` and the caller serves its last good answer.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from core.uris import DuckDBFile, parse_warehouse
from core.views.translate import check_dataset_ref
from cryptopipe.dashboard.errors import BackendBusy, BackendUnavailable, BadWarehouse
from cryptopipe.dashboard.queries import Query

Rows = list[dict[str, Any]]

#: Seconds a dashboard read waits for the stream's batch to commit. A batch takes
#: well under a second; an HTTP request should not hang much longer than that.
READ_LOCK_TIMEOUT = 3.0


class QueryBackend(ABC):
    """Runs the dashboard's queries against one warehouse."""

    #: Seconds an answer is reused before the warehouse is asked again: caps the load
    #: (and, on BigQuery, the bill) however many browsers refresh.
    reuse_seconds: float

    @property
    @abstractmethod
    def uri(self) -> str:
        """The warehouse, as a ``--warehouse`` URI."""

    @property
    def name(self) -> str:
        """The warehouse as the page names it: :attr:`uri` unless a backend has a shorter name."""
        return self.uri

    @abstractmethod
    def fetch(self, query: Query, params: Mapping[str, Any]) -> Rows:
        """The query's rows; raises :class:`BackendBusy` or :class:`BackendUnavailable`."""


class DuckDBBackend(QueryBackend):
    """Short read-only connections to the local warehouse file, one at a time."""

    def __init__(self, path: Path, *, lock_timeout: float = READ_LOCK_TIMEOUT, reuse_seconds: float = 1.0) -> None:
        self.path = Path(path).resolve()
        # As the user named it: `cryptopipe up` in the repository shows data/warehouse.duckdb,
        # not where the repository happens to be checked out.
        self._name = os.path.relpath(self.path) if self.path.is_relative_to(Path.cwd()) else str(self.path)
        self.lock_timeout = lock_timeout
        self.reuse_seconds = reuse_seconds
        # One reader at a time from this process: parallel requests would otherwise
        # stack up connections and narrow the gaps the stream's writer needs.
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        return f"duckdb://{self.path}"

    @property
    def name(self) -> str:
        """The file relative to the directory the dashboard started in, if it is under it."""
        return self._name

    def fetch(self, query: Query, params: Mapping[str, Any]) -> Rows:
        import duckdb

        from jobs.errors import WarehouseError, WarehouseLockedError
        from jobs.loaders.duckdb import open_reader

        with self._lock:
            try:
                with open_reader(self.path, timeout=self.lock_timeout) as con:
                    cursor = con.execute(query.sql("duckdb"), dict(params))
                    names = [column[0] for column in cursor.description]
                    return [dict(zip(names, row)) for row in cursor.fetchall()]
            except WarehouseLockedError as error:
                raise BackendBusy(str(error)) from error
            except WarehouseError as error:
                raise BackendUnavailable(str(error)) from error
            except duckdb.CatalogException as error:
                raise BackendUnavailable(
                    f"{self.path} has no dashboard views yet ({error}); the stream creates them "
                    "when it starts: run `cryptopipe up`"
                ) from error
            except duckdb.Error as error:
                raise BackendUnavailable(f"query {query.name!r} failed on {self.path}: {error}") from error


class BigQueryBackend(QueryBackend):
    """Parameterised query jobs on the deployed views of ``project.dataset``.

    ``client`` is a ``google.cloud.bigquery.Client`` (or a stand-in with the same
    ``query(sql, job_config=...)``); by default one is made with the application
    default credentials. Answers are reused for 30 s: every query is billed.
    """

    def __init__(
        self, project: str, dataset: str, *, client: Any = None, timeout: float = 30.0, reuse_seconds: float = 30.0
    ) -> None:
        try:
            check_dataset_ref(project, dataset)
        except ValueError as error:
            raise BadWarehouse(str(error)) from None
        self.project = project
        self.dataset = dataset
        self.timeout = timeout
        self.reuse_seconds = reuse_seconds
        self._bigquery = _import_bigquery()
        self._client = client if client is not None else self._default_client()

    @property
    def uri(self) -> str:
        return f"bigquery://{self.project}.{self.dataset}"

    def _default_client(self) -> Any:
        from google.auth.exceptions import DefaultCredentialsError

        try:
            return self._bigquery.Client(project=self.project)
        except DefaultCredentialsError as error:
            raise BackendUnavailable(
                f"no Google credentials for BigQuery ({error}): run `gcloud auth application-default login`"
            ) from error

    def fetch(self, query: Query, params: Mapping[str, Any]) -> Rows:
        from google.api_core.exceptions import GoogleAPIError

        bigquery = self._bigquery
        config = bigquery.QueryJobConfig(
            query_parameters=[_parameter(bigquery, name, type_, params[name]) for name, type_ in query.params.items()]
        )
        sql = query.sql("bigquery", project=self.project, dataset=self.dataset)
        try:
            rows = self._client.query(sql, job_config=config).result(timeout=self.timeout)
            return [dict(row.items()) for row in rows]
        except (GoogleAPIError, TimeoutError) as error:
            raise BackendUnavailable(f"BigQuery query {query.name!r} on {self.uri} failed: {error}") from error


def _import_bigquery() -> Any:
    try:
        from google.cloud import bigquery
    except ImportError as error:
        raise BackendUnavailable(
            "the BigQuery backend needs google-cloud-bigquery: pip install -e '.[local]'"
        ) from error
    return bigquery


def _parameter(bigquery: Any, name: str, type_: str, value: Any) -> Any:
    if type_.startswith("ARRAY<"):
        return bigquery.ArrayQueryParameter(name, type_.removeprefix("ARRAY<").removesuffix(">"), list(value))
    return bigquery.ScalarQueryParameter(name, type_, value)


def backend_from_uri(uri: str) -> QueryBackend:
    """The backend for ``duckdb:///abs/path.duckdb`` or ``bigquery://project.dataset``.

    Raises :class:`BadWarehouse` naming the URI and the accepted forms.
    """
    target = parse_warehouse(uri, error=BadWarehouse)
    if isinstance(target, DuckDBFile):
        return DuckDBBackend(Path(target.path))
    return BigQueryBackend(target.project, target.dataset)
