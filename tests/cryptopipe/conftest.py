"""A local warehouse with the views, and ways to load ticks into it as the stream does.

``warehouse`` is a :class:`DuckDBWarehouse` set up in a temp dir with the views
created; ``load(warehouse, ticks)`` stages the ticks as Parquet and calls
``load_batch`` (a short writer connection and a transaction, exactly the stream's
path), so the dashboard tests meet the same locking the stream causes.
:class:`MarketWriter` keeps doing that on a thread with the bundled replay market,
standing in for a running ``cryptopipe up`` without Spark's start-up time.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections.abc import Iterable
from contextlib import closing
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cryptopipe.replay.market import Market
from cryptopipe.schema import record_model
from cryptopipe.views import create_duckdb_views
from jobs.loaders import TICK_FIELDS, LoadId, StagedFiles
from jobs.loaders.duckdb import DuckDBWarehouse, connect

_ARROW = {
    "string": pa.string(),
    "float64": pa.float64(),
    "int64": pa.int64(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}
_BATCH_IDS = itertools.count()


def minute_ago(minutes: int = 0) -> datetime:
    """The start of the minute ``minutes`` before the current one (UTC)."""
    return datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(minutes=minutes)


def tick(coin_id: str, price: float, last_updated: datetime, **overrides: Any) -> dict[str, Any]:
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


@functools.cache
def _top_market(top: int) -> Market:
    # The bundled market cut to its top coins: a frame of all ~320 costs 0.1 s.
    snapshot = json.loads(resources.files("cryptopipe.replay").joinpath("data/coins.json").read_text())
    ranked = sorted((c for c in snapshot["coins"] if c["market_cap_rank"]), key=lambda c: c["market_cap_rank"])
    return Market({**snapshot, "coins": ranked[:top]})


def market_ticks(frame: int, at: datetime, *, top: int) -> list[dict[str, Any]]:
    """The bundled replay market's top coins at ``frame``, as ticks with event time ``at``.

    Each record goes through the producer's validation, so the rows are what the
    stream would load; ``last_updated`` is pinned to ``at`` so consecutive frames
    are consecutive in event time.
    """
    stamp = at.isoformat()
    rows = []
    for record in _top_market(top).frame(frame):
        landing = record_model().model_validate({
            **record, "last_updated": stamp, "vs_currency": "usd", "ingested_at": stamp, "poll_id": f"test-{frame}",
        }).model_dump()  # fmt: skip
        times = {name: datetime.fromisoformat(landing[name]) for name in ("last_updated", "ingested_at")}
        rows.append({**landing, **times})
    return rows


class MarketWriter(threading.Thread):
    """Loads an hour of market history, then a new frame every ``every`` seconds until stopped.

    Every batch is a short writer connection (``load_batch``), as the stream makes;
    an error ends the thread and is kept in :attr:`error` for the test to raise.
    """

    def __init__(self, warehouse: DuckDBWarehouse, *, top: int = 12, every: float = 0.4) -> None:
        super().__init__(name="market-writer", daemon=True)
        self.warehouse = warehouse
        self.top = top
        self.every = every
        self.batches = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()
        now = datetime.now(timezone.utc)
        load(warehouse, [row for k in range(60) for row in market_ticks(k, now - timedelta(minutes=60 - k), top=top)])

    def run(self) -> None:
        try:
            for frame in itertools.count(60):
                if self._halt.wait(self.every):
                    return
                load(self.warehouse, market_ticks(frame, datetime.now(timezone.utc), top=self.top))
                self.batches += 1
        except BaseException as error:  # noqa: BLE001 - reported by stop()
            self.error = error

    def stop(self) -> None:
        """Stop, and raise what ended the thread early, if anything did."""
        self._halt.set()
        self.join(timeout=30)
        if self.error is not None:
            raise self.error
