"""Fixtures and helpers shared by the whole suite.

``warehouse``: a local DuckDB warehouse with the views, set up in a temp dir;
``load(warehouse, rows)`` stages rows (``warehouse_row(...)``) as Parquet and calls
``load_batch``, a short writer connection and a transaction, exactly the stream's
path, so view and dashboard tests meet the locking the stream causes.

``coingecko(...)``: a CoinGecko ``/coins/markets`` record with the producer's fields;
``landed(record)``: a record as the producer lands it (validated, the schema's names).

``spark``: one local SparkSession for the test session. Starting Spark costs 5-10 s
and its first query several more, so every Spark test shares it; it is built by the
job's own :func:`jobs.session.build_session` (UI off, two cores, temp files under
pytest's base temp), so tests run on the settings the job runs on. Mark tests that
use it ``@pytest.mark.spark``.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import sys
import time
from pathlib import Path

# gRPC's C core logs each closed loopback connection at INFO (the Storage Write stand-in's);
# before any test imports grpc, so the output keeps to what failed.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import closing
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.schema import record_model
from core.tables import TICK_FIELDS
from core.views import create_duckdb_views
from jobs.loaders import LoadId, StagedFiles
from jobs.loaders.duckdb import DuckDBWarehouse, connect

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def script_module(name: str):
    """The program ``scripts/<name>.py`` as a module (the folder holds programs, not a package)."""
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", Path(__file__).parents[1] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # a dataclass of the module looks the module up there
    spec.loader.exec_module(module)
    return module


# Every Spark driver the tests start (the session's, the job's processes, `cryptopipe up`'s) lives
# seconds to minutes: C1 only, the serial collector, and Spark's classes from the archive
# `scripts/test` makes (scripts/spark_classes.py, docs/TESTING.md). Read as each driver starts.
_spark_classes = script_module("spark_classes")
os.environ.setdefault("PYSPARK_SUBMIT_ARGS", _spark_classes.submit_args(_spark_classes.java_options()))


#: Session resources that cost seconds to start, by the fixture that starts them, and the
#: xdist group that keeps every test using one on the same worker (``--dist loadgroup``):
#: one JVM and one bqemulator per run. A test that asks for one only at run time
#: (``request.getfixturevalue``) marks itself ``xdist_group`` with the group named here.
COSTLY_SESSION_FIXTURES = {"spark": "spark", "bq_emulator": "bigquery-emulator"}
#: The CDKTF app's tests import the google provider bindings (12-13 s a process) and share
#: one synth per family (tests/cdktf/conftest.py): all on one worker.
CDKTF_TESTS = Path(__file__).parent / "cdktf"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Group each test by the first costly session resource it uses (in the order above),
    or as a CDKTF test; tests that use none are spread over the workers one by one. The
    ``slow`` tests (a minute or more each, mostly waiting on processes they kill and
    restart) go first among the tests of no group; xdist hands out the groups first, the
    largest first (``--loadscope-reorder``, its default).

    First of this hook's implementations: xdist's own (on each worker) turns the mark into
    the node id's ``@group`` suffix, which is what its scheduler reads."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        fixtures = set(getattr(item, "fixturenames", ()))
        group = next((group for fixture, group in COSTLY_SESSION_FIXTURES.items() if fixture in fixtures), None)
        if group is None and item.path.is_relative_to(CDKTF_TESTS):
            group = "cdktf"
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))


def pytest_runtest_setup(item: pytest.Item) -> None:
    """On an xdist worker under ``--dist loadgroup``, fail a grouped test whose node id lacks its
    ``@group`` suffix: without it xdist spreads the group over the workers in silence (a JVM and a
    CDKTF import on each), as it did with pytest 9.2.0, whose node ids no longer take xdist
    3.8.0's suffix (pytest-dev/pytest-xdist#1386)."""
    config = item.config
    if hasattr(config, "workerinput") and config.getvalue("loadgroup") and "@" not in item.nodeid \
            and item.get_closest_marker("xdist_group") is not None:
        pytest.fail(f"{item.nodeid} lost its xdist group (pytest-dev/pytest-xdist#1386): "
                    "pin a pytest whose node ids take xdist's @group suffix", pytrace=False)


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    from jobs.session import build_session

    session = build_session(
        "cryptopipe-tests",
        master="local[2]",
        scratch_root=tmp_path_factory.mktemp("spark-scratch"),
        ui=False,
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


_ARROW = {
    "string": pa.string(),
    "float64": pa.float64(),
    "int64": pa.int64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
_BATCH_IDS = itertools.count()


#: What the producer adds to every CoinGecko record before validating it.
PRODUCER_FIELDS = {
    "vs_currency": "usd", "ingested_at": "2025-06-01T12:00:05.001Z", "poll_id": "20250601T120005001Z-p1", "origin": "poll"
}


def coingecko(coin_id: str = "bitcoin", **overrides: Any) -> dict[str, Any]:
    """A CoinGecko /coins/markets record, plus the producer's fields; ``overrides`` by CoinGecko's names."""
    record = {
        "id": coin_id,
        "symbol": coin_id[:3],
        "name": coin_id.title(),
        "current_price": 64000.5,
        "market_cap": 1.26e12,
        "market_cap_rank": 1,
        "fully_diluted_valuation": 1.34e12,
        "total_volume": 3.1e10,
        "high_24h": 65000.0,
        "low_24h": 63000.0,
        "price_change_24h": -12.5,
        "price_change_percentage_24h": -0.02,
        "circulating_supply": 19.7e6,
        "total_supply": 21e6,
        "max_supply": 21e6,
        "last_updated": "2025-06-01T12:00:03.123Z",
        **PRODUCER_FIELDS,
    }
    record.update(overrides)
    return record


def landed(record: Mapping[str, Any], **fields: Any) -> dict[str, Any]:
    """``record`` (CoinGecko's names) as the producer lands it: the producer's fields added
    (``fields`` override them), validated by the one schema and written with its names.

    Raises pydantic's ValidationError for a record the producer would reject.
    """
    return record_model().model_validate({**PRODUCER_FIELDS, **record, **fields}).model_dump(mode="json")


def minute_ago(minutes: int = 0) -> datetime:
    """The start of the minute ``minutes`` before the current one (UTC)."""
    return datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=minutes)


def warehouse_row(coin_id: str, price: float, last_updated: datetime, **overrides: Any) -> dict[str, Any]:
    """One warehouse row: the schema's columns, plausible defaults, ``price`` at ``last_updated``."""
    row = {
        "coin_id": coin_id,
        "symbol": coin_id[:3],
        "name": coin_id.title(),
        "vs_currency": "usd",
        "price": price,
        "market_cap": price * 1e6,
        "market_cap_rank": 1,
        "fully_diluted_valuation": None,
        "total_volume": 1e9,
        "high_24h": None,
        "low_24h": None,
        "price_change_24h": None,
        "price_change_percentage_24h": 1.5,
        "circulating_supply": None,
        "total_supply": None,
        "max_supply": None,
        "last_updated": last_updated,
        "ingested_at": last_updated + timedelta(seconds=2),
        "poll_id": f"poll-{last_updated:%H%M%S}",
    }
    row.update(overrides)
    return row


def load(warehouse: DuckDBWarehouse, ticks: Iterable[dict[str, Any]]) -> None:
    """Load ``ticks`` as one micro-batch, the way the stream's ``foreachBatch`` does."""
    load_id = LoadId("test-query", next(_BATCH_IDS))
    rows = [{**row, "_load_id": str(load_id)} for row in ticks]
    schema = pa.schema([pa.field(f.name, _ARROW[f.type], f.nullable) for f in TICK_FIELDS])
    path = warehouse.path.parent / f"staged-{load_id.batch_id}.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    warehouse.load_batch(load_id, StagedFiles(ticks=(f"file:{path}",), quarantine=()))
    path.unlink()


def make_warehouse(path: Path) -> DuckDBWarehouse:
    """A set-up warehouse at ``path`` with the dashboard's views."""
    warehouse = DuckDBWarehouse(path, lock_timeout=20)
    warehouse.setup()
    with closing(connect(path, read_only=False, timeout=20)) as con:
        create_duckdb_views(con)
    return warehouse


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    return make_warehouse(tmp_path / "warehouse.duckdb")


def wait_until(condition: Callable[[], object], what: str, within: float, *, every: float = 0.1) -> None:
    """Poll ``condition`` every ``every`` seconds until it holds; fail naming ``what`` after ``within``:
    a wait on a condition with a deadline, never a fixed sleep."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {within:g} s")
        time.sleep(every)


def isolated_environ(monkeypatch: pytest.MonkeyPatch, prefix: str) -> Callable[[dict[str, str]], None]:
    """Clear every variable under ``prefix`` from this test's environment; return a setter for
    the test's own (the settings tests read the real process environment, as the programs do)."""
    for name in [name for name in os.environ if name.upper().startswith(prefix)]:
        monkeypatch.delenv(name)

    def set_variables(variables: dict[str, str]) -> None:
        for name, value in variables.items():
            monkeypatch.setenv(name, value)

    return set_variables
