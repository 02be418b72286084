"""The local warehouse: one DuckDB file, one transaction per micro-batch.

A DuckDB file takes one writer process at a time, and while a process holds it
read-write no other process can even read it. So the stream opens a short-lived
connection per batch instead of holding one, and both the stream and readers
(``cryptopipe query``, the dashboard) retry opening with a bounded backoff when the
other side has it; a reader that gives up gets a :class:`WarehouseLockedError`
saying so.

Exactly once: :meth:`DuckDBWarehouse.load_batch` checks the ``_loads`` ledger,
inserts the ticks and quarantined lines from the staged Parquet and records the
load id, in one transaction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import duckdb

from core.schema import duckdb_columns, market_tick
from core.tables import APPENDED_FIELDS, QUARANTINE_FIELDS, QUARANTINE_TABLE, TICKS_TABLE, TICK_FIELDS
from core.uris import EXAMPLES, DuckDBFile, file_uri, parse_warehouse
from core.views import create_duckdb_views
from jobs.errors import ConfigError, WarehouseError, WarehouseLockedError
from jobs.loaders.base import LoadId, LoadResult, StagedFiles, Warehouse
from jobs.locations import Location

LOADS_TABLE = "_loads"

#: How long the stream waits for a reader to let go before failing the batch.
WRITER_LOCK_TIMEOUT = 60.0
#: How long a reader waits for the stream's batch to commit before giving up.
READER_LOCK_TIMEOUT = 10.0

_FIRST_RETRY = 0.05
_LONGEST_RETRY = 1.0
# DuckDB's words for "another process holds the file" and, within one process,
# "a connection with other settings (read-only vs read-write) is open" (two wordings).
_LOCK_CONFLICTS = ("Could not set lock", "different configuration", "Unique file handle conflict")


class DuckDBWarehouse(Warehouse):
    """Loads micro-batches into a DuckDB file.

    Tables: ``market_ticks`` (the schema's columns and ``_load_id``), ``quarantine``
    and the ``_loads`` ledger of committed load ids.
    """

    def __init__(self, path: Path, *, lock_timeout: float = WRITER_LOCK_TIMEOUT) -> None:
        self.path = path
        self.lock_timeout = lock_timeout

    @classmethod
    def from_uri(cls, uri: str) -> DuckDBWarehouse:
        return cls(duckdb_path(uri))

    def check_staging(self, staging: Location) -> None:
        if staging.scheme != "file":
            raise ConfigError(
                f"--staging: the duckdb warehouse reads staged Parquet from the local disk, got {staging.uri!r}"
            )

    def setup(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(connect(self.path, read_only=False, timeout=self.lock_timeout)) as con:
            con.execute(f"CREATE TABLE IF NOT EXISTS {TICKS_TABLE} ({', '.join(duckdb_columns(TICK_FIELDS))})")
            # A warehouse made before a field was appended gets it now, null in its old rows.
            for column in duckdb_columns(market_tick().field(name) for name in APPENDED_FIELDS):
                con.execute(f"ALTER TABLE {TICKS_TABLE} ADD COLUMN IF NOT EXISTS {column}")
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} ({', '.join(duckdb_columns(QUARANTINE_FIELDS))})"
            )
            con.execute(
                f"""CREATE TABLE IF NOT EXISTS {LOADS_TABLE} (
                    load_id VARCHAR PRIMARY KEY,
                    query_id VARCHAR NOT NULL,
                    batch_id BIGINT NOT NULL,
                    ticks BIGINT NOT NULL,
                    quarantined BIGINT NOT NULL,
                    newest_event_time TIMESTAMPTZ,
                    loaded_at TIMESTAMPTZ NOT NULL
                )"""
            )
            create_duckdb_views(con)

    def load_batch(self, load_id: LoadId, staged: StagedFiles) -> LoadResult:
        with closing(connect(self.path, read_only=False, timeout=self.lock_timeout)) as con:
            con.begin()
            result = self._load(con, load_id, staged)
            if not result.already_loaded:
                con.commit()
            # Closing without a commit (already loaded, or an error) rolls back.
            return result

    def _load(self, con: duckdb.DuckDBPyConnection, load_id: LoadId, staged: StagedFiles) -> LoadResult:
        done = con.execute(
            f"SELECT ticks, quarantined, newest_event_time FROM {LOADS_TABLE} WHERE load_id = ?", [str(load_id)]
        ).fetchone()
        if done is not None:
            return LoadResult(load_id, done[0], done[1], done[2], already_loaded=True)
        tick_files = [_local_file(uri) for uri in staged.ticks]
        ticks = _insert(con, TICKS_TABLE, [f.name for f in TICK_FIELDS], tick_files)
        quarantined = _insert(
            con, QUARANTINE_TABLE, [f.name for f in QUARANTINE_FIELDS], [_local_file(uri) for uri in staged.quarantine]
        )
        newest = staged.newest_event_time if ticks else None  # live ticks only (jobs/staging.py)
        con.execute(
            f"INSERT INTO {LOADS_TABLE} VALUES (?, ?, ?, ?, ?, ?, now())",
            [str(load_id), load_id.query_id, load_id.batch_id, ticks, quarantined, newest],
        )
        return LoadResult(load_id, ticks, quarantined, newest)


def duckdb_path(uri: str) -> Path:
    """The file a ``duckdb:///abs/path.duckdb`` URI names; ConfigError otherwise."""
    target = parse_warehouse(uri, error=ConfigError)
    if not isinstance(target, DuckDBFile):
        raise ConfigError(f"--warehouse: {uri!r} is not a duckdb URI; expected {EXAMPLES[DuckDBFile]}")
    return Path(target.path)


def connect(path: Path, *, read_only: bool, timeout: float) -> duckdb.DuckDBPyConnection:
    """Open ``path``, retrying while another connection holds its lock, in UTC.

    Raises :class:`WarehouseLockedError` once ``timeout`` seconds have passed.
    """
    deadline = time.monotonic() + timeout
    delay = _FIRST_RETRY
    while True:
        try:
            con = duckdb.connect(str(path), read_only=read_only)
            break
        except (duckdb.IOException, duckdb.ConnectionException, duckdb.ResourceInUseException) as error:
            if not any(marker in str(error) for marker in _LOCK_CONFLICTS):
                if read_only and not path.exists():
                    raise WarehouseError(f"no warehouse at {path}: the stream creates it when it starts") from error
                raise
            if time.monotonic() + delay > deadline:
                raise WarehouseLockedError(
                    f"warehouse {path} is locked by another process ({error}); "
                    f"gave up after {timeout:g} s: retry when that process is done with it"
                ) from error
            time.sleep(delay)
            delay = min(delay * 2, _LONGEST_RETRY)
    con.execute("SET TimeZone = 'UTC'")
    return con


@contextmanager
def open_reader(warehouse: str | Path, *, timeout: float = READER_LOCK_TIMEOUT) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to the warehouse (a path or ``duckdb:///`` URI), closed on exit.

    Waits up to ``timeout`` seconds for the stream's batch in progress to commit;
    keep the connection short so the stream's next batch can get in::

        with open_reader("data/warehouse.duckdb") as con:
            rows = con.execute("SELECT count(*) FROM market_ticks").fetchall()
    """
    path = duckdb_path(warehouse) if isinstance(warehouse, str) and warehouse.startswith("duckdb:") else Path(warehouse)
    with closing(connect(path, read_only=True, timeout=timeout)) as con:
        yield con


def _insert(con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str], files: list[str]) -> int:
    if not files:
        return 0
    names = ", ".join(columns)
    return con.execute(f"INSERT INTO {table} ({names}) SELECT {names} FROM read_parquet(?)", [files]).fetchone()[0]


def _local_file(uri: str) -> str:
    # Hadoop lists local files as file:/abs/path (or file:///abs/path).
    file = file_uri(uri)
    if file.scheme != "file":
        raise ConfigError(f"the duckdb warehouse reads local files only, got {uri!r}")
    return file.path
