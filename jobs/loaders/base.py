"""The warehouse contract: what the stream needs from BigQuery or DuckDB.

``foreachBatch`` is at-least-once: after a crash Spark runs the last micro-batch
again. A :class:`Warehouse` makes that exactly once by keying every load on a
:class:`LoadId` (the streaming query's id and the batch id) and recording it in the
same atomic step that adds the rows; a load id already recorded is a no-op.

The stream stages each batch as Parquet, one set of files per table, and hands the
file URIs over (:class:`StagedFiles`). The staged columns are the tables' columns
(:mod:`core.tables`), each ending in the load id, with the tables' modes: a field that
is not nullable is a ``required`` Parquet field, a nullable one ``optional``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from jobs.locations import Location

@dataclass(frozen=True, order=True)
class LoadId:
    """The identity of one micro-batch's load.

    ``query_id`` is the streaming query's id, which Spark keeps in the checkpoint: it
    survives restarts, so a replayed batch has the same load id, and a new
    checkpoint gets a new one, so its batch 0 is not mistaken for the old batch 0.
    """

    query_id: str
    batch_id: int

    def __str__(self) -> str:
        return f"{self.query_id}/{self.batch_id}"


@dataclass(frozen=True)
class StagedFiles:
    """One micro-batch as Parquet file URIs, per table. A table without rows has no files."""

    ticks: tuple[str, ...]
    quarantine: tuple[str, ...]
    newest_event_time: datetime | None = None
    """The latest ``last_updated`` among the staged live ticks (back-filled points left out),
    as Spark computed it while staging: every warehouse reports this."""


@dataclass(frozen=True)
class LoadResult:
    """What a load added, or what the earlier load of the same id added."""

    load_id: LoadId
    ticks: int
    """Rows added to the ticks table."""
    quarantined: int
    """Rows added to the quarantine table."""
    newest_event_time: datetime | None
    """The latest ``last_updated`` among the ticks; None when there were none."""
    already_loaded: bool = False
    """True when the load id was recorded before: nothing was added this time."""


class Warehouse(ABC):
    """Where micro-batches end up. Use as a context manager, or call :meth:`close`.

    Implementations take their settings from a URI (``from_uri``) and must not
    touch the warehouse until :meth:`setup`, so a bad URI fails fast and cheaply.
    """

    default_trigger_seconds: ClassVar[float] = 1.0
    """Seconds between micro-batches when ``--trigger-seconds`` is not given."""
    min_trigger_seconds: ClassVar[float] = 0.0
    """The shortest trigger interval the warehouse sustains all day (a load-job quota,
    say); the job refuses a shorter one rather than fail hours later."""

    @classmethod
    @abstractmethod
    def from_uri(cls, uri: str) -> Warehouse:
        """Build from ``--warehouse``; raises ConfigError naming the URI."""

    def check_staging(self, staging: Location) -> None:
        """Raise ConfigError when this warehouse cannot read files staged at ``staging``."""

    def use_checkpoint(self, checkpoint: Location) -> None:
        """The query's checkpoint, beside which a warehouse may keep state of its own (the
        Storage Write path's stream records); raise ConfigError if it cannot. Most keep none."""

    @abstractmethod
    def setup(self) -> None:
        """Make sure the tables (and any load ledger) exist and fit; idempotent.

        DuckDB creates what is missing; BigQuery's tables belong to the CDKTF app,
        so there it checks them instead.
        """

    @abstractmethod
    def load_batch(self, load_id: LoadId, staged: StagedFiles) -> LoadResult:
        """Add the staged rows and record ``load_id``, atomically; no-op if recorded."""

    def close(self) -> None:
        """Release what the warehouse holds (connections, clients)."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
