"""The bundled replay market written into a local warehouse, as a running ``cryptopipe up`` would.

:class:`MarketWriter` keeps loading the replay's ticks on a thread through
``load`` (tests/conftest.py: the stream's own path, a short writer connection and a
transaction), standing in for a running ``cryptopipe up`` without Spark's start-up time.
"""

from __future__ import annotations

import functools
import itertools
import json
import threading
from datetime import datetime, timedelta, timezone
from importlib import resources
from typing import Any

from cryptopipe.replay.market import Market
from jobs.loaders.duckdb import DuckDBWarehouse

from ..conftest import landed, load


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
        landing = landed(record, last_updated=stamp, ingested_at=stamp, poll_id=f"test-{frame}")
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
