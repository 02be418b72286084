"""The bundled replay market written into a local warehouse, as a running ``cryptopipe up`` would,
and dashboards over it.

:class:`MarketWriter` keeps loading the replay's ticks on a thread through
``load`` (tests/conftest.py: the stream's own path, a short writer connection and a
transaction), standing in for a running ``cryptopipe up`` without Spark's start-up time.

``serve(**settings)`` starts a dashboard on a free port over the ``warehouse`` fixture
(stopped after the test); ``get(server, path)`` asks it over real HTTP.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from cryptopipe.dashboard import DashboardServer, DuckDBBackend
from cryptopipe.replay.market import Market
from jobs.loaders.duckdb import DuckDBWarehouse

from ..conftest import landed, load


@functools.cache
def _top_market(top: int) -> Market:
    # The bundled market cut to its top coins: a frame of all ~320 costs 0.1 s.
    snapshot = json.loads(resources.files("cryptopipe.replay").joinpath("data/coins.json").read_text())
    ranked = sorted((c for c in snapshot["coins"] if c["market_cap_rank"]), key=lambda c: c["market_cap_rank"])
    return Market({**snapshot, "coins": ranked[:top]})


def market_ticks(frame: int, at: datetime, *, top: int, vs_currency: str = "usd") -> list[dict[str, Any]]:
    """The bundled replay market's top coins at ``frame`` in ``vs_currency`` (a code the replay
    converts to), as ticks with event time ``at``.

    Each record goes through the producer's validation, so the rows are what the
    stream would load; ``last_updated`` is pinned to ``at`` so consecutive frames
    are consecutive in event time.
    """
    stamp = at.isoformat()
    rows = []
    for record in _top_market(top).frame(frame, vs_currency):
        landing = landed(record, vs_currency=vs_currency, last_updated=stamp, ingested_at=stamp, poll_id=f"test-{frame}")
        times = {name: datetime.fromisoformat(landing[name]) for name in ("last_updated", "ingested_at")}
        rows.append({**landing, **times})
    return rows


def frozen_now(*, second: int) -> datetime:
    """A fixed instant ``second`` seconds into the minute before this one (UTC), for a
    dashboard's injected clock: a page drawn from data at fixed offsets to it looks the
    same on every run. Recent, because the views read the warehouse's own clock for their
    last-day filter."""
    return datetime.now(timezone.utc).replace(second=second, microsecond=0) - timedelta(minutes=1)


class MarketWriter(threading.Thread):
    """Loads ``history`` minutes of market history (an hour; a fresh start has a minute or
    two), then a new frame every ``every`` seconds until stopped.

    Every batch is a short writer connection (``load_batch``), as the stream makes;
    an error ends the thread and is kept in :attr:`error` for the test to raise.
    """

    def __init__(self, warehouse: DuckDBWarehouse, *, top: int = 12, every: float = 0.4, history: int = 60) -> None:
        super().__init__(name="market-writer", daemon=True)
        self.warehouse = warehouse
        self.top = top
        self.every = every
        self.history = history
        self.batches = 0
        self.error: BaseException | None = None
        self._halt = threading.Event()
        now = datetime.now(timezone.utc)
        past = [market_ticks(k, now - timedelta(minutes=history - k), top=top) for k in range(history)]
        load(warehouse, [row for frame in past for row in frame])

    def run(self) -> None:
        try:
            for frame in itertools.count(self.history):
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


@pytest.fixture
def serve(warehouse) -> Iterator:
    """``serve(**settings)`` starts a dashboard on a free port over the warehouse; stopped after the test."""
    servers: list[DashboardServer] = []

    def start(path: Path | None = None, *, lock_timeout: float = 3.0, **settings) -> DashboardServer:
        backend = DuckDBBackend(path or warehouse.path, lock_timeout=lock_timeout, reuse_seconds=0)
        servers.append(DashboardServer(backend, port=0, **settings).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def get(server: DashboardServer, path: str) -> httpx.Response:
    """``GET path`` (relative to the dashboard's root) over real HTTP."""
    return httpx.get(server.url + path.lstrip("/"), timeout=10)
