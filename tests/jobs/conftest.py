"""Landing files and a pipeline in a temp dir, for the streaming job's tests.

Landing lines are made the way the producer makes them (``landed(coingecko(...))``,
tests/conftest.py); bad input is written by hand.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from core.joboptions import job_argv
from core.layout import LocalLayout

from ..conftest import coingecko, landed, script_module

T0 = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def landing_record(coin_id: str = "bitcoin", **overrides: Any) -> dict[str, Any]:
    """A landing record (schema names) of :func:`~tests.conftest.coingecko`'s record."""
    return landed(coingecko(coin_id, **overrides))


def line(coin_id: str = "bitcoin", **overrides: Any) -> str:
    """One landing line."""
    return json.dumps(landing_record(coin_id, **overrides))


@dataclass(frozen=True)
class Pipeline(LocalLayout):
    """The local pipeline's layout in a test's temp dir, and ways to land files and run the stream over it."""

    _polls: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def land(self, lines: Iterable[str], *, name: str | None = None, end: str = "\n") -> Path:
        """Write one landing file of ``lines``; see :meth:`land_bytes`."""
        body = "\n".join(lines)
        return self.land_bytes((body + end if body else "").encode(), name=name)

    def land_bytes(self, data: bytes, *, name: str | None = None) -> Path:
        """Write one landing file atomically (temp name + rename), like the producer.

        Files get increasing modification times: Spark's file source takes the
        oldest first, so the order files are landed in is the order of batches.
        """
        poll = next(self._polls)
        when = T0 + timedelta(minutes=poll)
        folder = self.landing / f"dt={when:%Y-%m-%d}" / f"hour={when:%H}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name or f'poll-{poll:03d}'}.ndjson"
        temporary = folder / f".{path.name}.tmp"
        temporary.write_bytes(data)
        mtime = 1_700_000_000 + poll
        os.utime(temporary, (mtime, mtime))
        temporary.rename(path)
        return path

    def args(self, *extra: str) -> list[str]:
        return [*job_argv(self.job_places()), *extra]

    def run(self, spark: Any, *extra: str) -> Any:
        """One ``--available-now`` run of the stream; returns its StreamStatus."""
        from jobs.stream import parse_args, run

        return run(spark, parse_args(self.args("--available-now", *extra)))

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        from jobs.loaders.duckdb import open_reader

        with open_reader(self.warehouse) as con:
            return con.execute(sql, list(params)).fetchall()

    def files(self, folder: Path) -> list[str]:
        return sorted(path.name for path in folder.rglob("*.ndjson")) if folder.exists() else []


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(tmp_path)


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """bqemulator on loopback for the session (scripts/bigquery_emulator.py: pinned, offline, its one shim)."""
    with script_module("bigquery_emulator").Emulator(log=tmp_path_factory.mktemp("bqemulator") / "emulator.log") as emulator:
        yield emulator
