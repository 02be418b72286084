"""The DuckDB warehouse: idempotent loads, and living with other processes' locks."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.schema import FieldSpec
from core.tables import QUARANTINE_FIELDS, TICK_FIELDS
from jobs.errors import ConfigError, WarehouseError, WarehouseLockedError
from jobs.loaders import LoadId, StagedFiles, warehouse_from_uri
from jobs.loaders.duckdb import DuckDBWarehouse, open_reader
from jobs.locations import Location

from .conftest import landing_record

ARROW_TYPES = {
    "string": pa.string(),
    "float64": pa.float64(),
    "int64": pa.int64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}

# Holds the warehouse file open, as a second process (a dashboard, another stream)
# would, until a line arrives on stdin.
HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "read")
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


def _parquet(path: Path, fields: tuple[FieldSpec, ...], rows: list[dict[str, Any]]) -> str:
    schema = pa.schema([pa.field(f.name, ARROW_TYPES[f.type], f.nullable) for f in fields])
    columns = {f.name: [row[f.name] for row in rows] for f in fields}
    pq.write_table(pa.Table.from_pydict(columns, schema=schema), path)
    return f"file:{path}"


def _staged(tmp_path: Path, load_id: LoadId, coins: list[str], bad_lines: int = 0) -> StagedFiles:
    ticks = []
    for coin in coins:
        row = landing_record(coin)
        for name in ("last_updated", "ingested_at"):
            row[name] = datetime.fromisoformat(row[name])
        ticks.append({**row, "_load_id": str(load_id)})
    quarantine = [
        {
            "quarantine_id": f"q{i}",
            "raw_line": "not json",
            "reason": "line is not a JSON object",
            "source_file": "file:/landing/x.ndjson",
            "quarantined_at": datetime(2025, 6, 1, 12, 5, tzinfo=timezone.utc),
            "_load_id": str(load_id),
        }
        for i in range(bad_lines)
    ]
    return StagedFiles(
        ticks=(_parquet(tmp_path / f"ticks-{load_id.batch_id}.parquet", TICK_FIELDS, ticks),),
        quarantine=(_parquet(tmp_path / f"quarantine-{load_id.batch_id}.parquet", QUARANTINE_FIELDS, quarantine),),
        # as the stager reports it: the newest live tick (jobs/staging.py)
        newest_event_time=max((row["last_updated"] for row in ticks), default=None),
    )


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    warehouse = DuckDBWarehouse(tmp_path / "wh" / "warehouse.duckdb", lock_timeout=20)
    warehouse.setup()
    return warehouse


@pytest.fixture
def holder(warehouse: DuckDBWarehouse):
    """Start a process holding the warehouse; ``release()`` makes it let go."""
    processes: list[subprocess.Popen[str]] = []

    def hold(mode: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(warehouse.path), mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout.readline().strip() == "holding"
        processes.append(process)
        return process

    yield hold
    for process in processes:
        process.communicate("\n", timeout=30)


def _release_soon(process: subprocess.Popen[str], seconds: float = 0.5) -> None:
    def release() -> None:
        process.stdin.write("\n")
        process.stdin.flush()

    threading.Timer(seconds, release).start()


def test_load_batch_adds_ticks_quarantine_and_ledger_row(warehouse, tmp_path):
    load_id = LoadId("query-a", 0)
    result = warehouse.load_batch(load_id, _staged(tmp_path, load_id, ["bitcoin", "ethereum"], bad_lines=1))
    assert (result.ticks, result.quarantined, result.already_loaded) == (2, 1, False)
    assert result.newest_event_time == datetime(2025, 6, 1, 12, 0, 3, 123000, tzinfo=timezone.utc)
    with open_reader(warehouse.path) as con:
        assert con.execute("SELECT coin_id, _load_id FROM market_ticks ORDER BY coin_id").fetchall() == [
            ("bitcoin", "query-a/0"),
            ("ethereum", "query-a/0"),
        ]
        assert con.execute("SELECT reason, _load_id FROM quarantine").fetchall() == [
            ("line is not a JSON object", "query-a/0")
        ]
        assert con.execute("SELECT load_id, query_id, batch_id, ticks, quarantined FROM _loads").fetchall() == [
            ("query-a/0", "query-a", 0, 2, 1)
        ]


def test_load_batch_twice_with_same_load_id_adds_rows_once(warehouse, tmp_path):
    load_id = LoadId("query-a", 7)
    staged = _staged(tmp_path, load_id, ["bitcoin", "ethereum"], bad_lines=1)
    warehouse.load_batch(load_id, staged)
    replay = warehouse.load_batch(load_id, staged)
    assert (replay.ticks, replay.quarantined, replay.already_loaded) == (2, 1, True)
    with open_reader(warehouse.path) as con:
        assert con.execute("SELECT count(*) FROM market_ticks").fetchone() == (2,)
        assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (1,)
        assert con.execute("SELECT count(*) FROM _loads").fetchone() == (1,)


def test_load_batch_with_same_batch_id_of_new_query_loads_again(warehouse, tmp_path):
    # A new checkpoint starts at batch 0 again, under a new query id.
    warehouse.load_batch(LoadId("old-query", 0), _staged(tmp_path, LoadId("old-query", 0), ["bitcoin"]))
    result = warehouse.load_batch(LoadId("new-query", 0), _staged(tmp_path, LoadId("new-query", 0), ["bitcoin"]))
    assert not result.already_loaded
    with open_reader(warehouse.path) as con:
        assert con.execute("SELECT count(*) FROM market_ticks").fetchone() == (2,)


def test_load_batch_that_fails_midway_adds_nothing(warehouse, tmp_path):
    load_id = LoadId("query-a", 1)
    staged = _staged(tmp_path, load_id, ["bitcoin"])
    broken = StagedFiles(ticks=staged.ticks, quarantine=(f"file:{tmp_path / 'missing.parquet'}",))
    with pytest.raises(Exception, match="missing.parquet"):
        warehouse.load_batch(load_id, broken)
    with open_reader(warehouse.path) as con:
        counts = con.execute("SELECT (SELECT count(*) FROM market_ticks), (SELECT count(*) FROM _loads)").fetchone()
    assert counts == (0, 0)
    assert not warehouse.load_batch(load_id, staged).already_loaded


def test_setup_twice_keeps_loaded_rows(warehouse, tmp_path):
    warehouse.load_batch(LoadId("q", 0), _staged(tmp_path, LoadId("q", 0), ["bitcoin"]))
    warehouse.setup()
    with open_reader(warehouse.path) as con:
        assert con.execute("SELECT count(*) FROM market_ticks").fetchone() == (1,)


def test_reader_sees_timestamps_in_utc(warehouse, tmp_path):
    warehouse.load_batch(LoadId("q", 0), _staged(tmp_path, LoadId("q", 0), ["bitcoin"]))
    with open_reader(f"duckdb://{warehouse.path}") as con:
        (value,) = con.execute("SELECT last_updated FROM market_ticks").fetchone()
        assert con.execute("SELECT current_setting('TimeZone')").fetchone() == ("UTC",)
    assert value == datetime(2025, 6, 1, 12, 0, 3, 123000, tzinfo=timezone.utc)
    assert value.utcoffset().total_seconds() == 0


def test_reader_waits_while_another_process_writes(warehouse, holder):
    _release_soon(holder("write"))
    with open_reader(warehouse.path, timeout=20) as con:
        assert con.execute("SELECT count(*) FROM market_ticks").fetchone() == (0,)


def test_reader_gives_up_with_clear_error_when_lock_is_held(warehouse, holder):
    holder("write")
    with pytest.raises(WarehouseLockedError, match="locked by another process") as error:
        with open_reader(warehouse.path, timeout=0.3):
            pass
    assert str(warehouse.path) in str(error.value)
    assert "PID" in str(error.value)  # DuckDB names the holder


def test_load_waits_while_another_process_reads(warehouse, holder, tmp_path):
    _release_soon(holder("read"))
    result = warehouse.load_batch(LoadId("q", 0), _staged(tmp_path, LoadId("q", 0), ["bitcoin"]))
    assert result.ticks == 1


def test_load_gives_up_with_clear_error_when_lock_is_held(warehouse, holder, tmp_path):
    holder("read")
    impatient = DuckDBWarehouse(warehouse.path, lock_timeout=0.3)
    with pytest.raises(WarehouseLockedError, match="locked by another process"):
        impatient.load_batch(LoadId("q", 0), _staged(tmp_path, LoadId("q", 0), ["bitcoin"]))


def test_reader_of_missing_warehouse_says_the_stream_creates_it(tmp_path):
    with pytest.raises(WarehouseError, match="no warehouse at .*the stream creates it"):
        with open_reader(tmp_path / "nowhere.duckdb"):
            pass


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("duckdb://relative/warehouse.duckdb", "absolute file path"),
        ("duckdb:///data/", "absolute file path"),
        ("duckdb:///data/w.duckdb?mode=x", "query or fragment"),
        ("postgres://host/db", "not a warehouse URI"),
        ("warehouse.duckdb", "not a warehouse URI"),
    ],
)
def test_warehouse_uri_that_cannot_work_is_refused_by_value(uri, message):
    with pytest.raises(ConfigError, match=message) as error:
        warehouse_from_uri(uri)
    assert repr(uri) in str(error.value)


def test_duckdb_warehouse_refuses_remote_staging():
    warehouse = warehouse_from_uri("duckdb:///data/warehouse.duckdb")
    with pytest.raises(ConfigError, match="local disk"):
        warehouse.check_staging(Location.parse("gs://bucket/staging", option="--staging"))


def test_readers_and_writer_in_one_process_wait_for_each_other_instead_of_failing(tmp_path):
    """DuckDB refuses a read-only and a read-write handle on one file in one process
    ("Unique file handle conflict"); both sides must retry, as the dashboard and the
    stream share the process of `cryptopipe up`."""
    import threading
    import time

    from jobs.loaders.duckdb import DuckDBWarehouse, open_reader

    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    warehouse.setup()
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_forever() -> None:
        while not stop.is_set():
            try:
                with open_reader(warehouse.path) as con:
                    con.execute("SELECT count(*) FROM market_ticks").fetchall()
            except BaseException as error:  # noqa: BLE001 - collected and asserted below
                errors.append(error)

    reader = threading.Thread(target=read_forever)
    reader.start()
    try:
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            warehouse.setup()  # a writer connection, opened and closed like a batch's
    finally:
        stop.set()
        reader.join()
    assert errors == []


def _recreate_ledger(warehouse: DuckDBWarehouse, change) -> None:  # noqa: ANN001
    """Rebuild ``_loads`` from its own DDL after ``change(ddl)``: a fault or a missing guard, for real."""
    from contextlib import closing

    from jobs.loaders.duckdb import connect

    with closing(connect(warehouse.path, read_only=False, timeout=5)) as con:
        (ddl,) = con.execute("SELECT sql FROM duckdb_tables() WHERE table_name = '_loads'").fetchone()
        con.execute("DROP TABLE _loads")
        con.execute(change(ddl.rstrip().rstrip(";")))


def test_a_ledger_insert_that_fails_after_the_rows_leaves_nothing_loaded(warehouse, tmp_path):
    """The rows and the ledger row commit together: a fault at the ledger step (here a CHECK
    the batch violates) rolls the rows back too, and the batch stays unrecorded for its replay."""
    _recreate_ledger(warehouse, lambda ddl: ddl[:-1] + ", CHECK (batch_id <> 13))")
    load_id = LoadId("query-a", 13)
    staged = _staged(tmp_path, load_id, ["bitcoin", "ethereum"], bad_lines=1)
    with pytest.raises(Exception, match="CHECK constraint"):
        warehouse.load_batch(load_id, staged)
    with open_reader(warehouse.path) as con:
        assert con.execute(
            "SELECT (SELECT count(*) FROM market_ticks), (SELECT count(*) FROM quarantine), "
            "(SELECT count(*) FROM _loads)"
        ).fetchone() == (0, 0, 0)


def test_a_replay_adds_nothing_even_without_the_ledgers_primary_key(warehouse, tmp_path):
    """The ledger check itself keeps a replay out, not the primary key's error."""
    _recreate_ledger(warehouse, lambda ddl: ddl.replace("PRIMARY KEY", ""))
    load_id = LoadId("query-a", 8)
    staged = _staged(tmp_path, load_id, ["bitcoin", "ethereum"], bad_lines=1)
    warehouse.load_batch(load_id, staged)
    replay = warehouse.load_batch(load_id, staged)
    assert replay.already_loaded
    with open_reader(warehouse.path) as con:
        assert con.execute(
            "SELECT (SELECT count(*) FROM market_ticks), (SELECT count(*) FROM quarantine), "
            "(SELECT count(*) FROM _loads)"
        ).fetchone() == (2, 1, 1)
