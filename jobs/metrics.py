"""What the running stream has done: a live status for ``cryptopipe up`` and one log line per batch.

Two threads feed it: ``foreachBatch`` records each load (rows loaded and
quarantined, newest event time), and a query listener records what Spark dropped
(duplicates, late rows), which only the batch's progress report knows. The log
line for a batch is written when both halves are in.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from pyspark.sql.streaming import StreamingQueryListener

from core.health import IDLE_LINE_SECONDS, STREAM_IDLE, batch_fields, stream_mark
from core.totals import Totals
from jobs.dedup import dropped_rows
from jobs.loaders.base import LoadResult

log = logging.getLogger("jobs.stream")


@dataclass(frozen=True)
class StreamStatus:
    """Totals since the stream started in this process."""

    batches: int = 0
    """Micro-batches loaded (or found already loaded)."""
    files_in: int = 0
    """Landing files read."""
    rows_in: int = 0
    """Records read from them: every non-blank line, and one for a file without any.
    Each is loaded, quarantined, or dropped as a duplicate or late."""
    rows_loaded: int = 0
    """Ticks this process added to the warehouse."""
    rows_quarantined: int = 0
    """Lines this process added to the quarantine."""
    duplicates_dropped: int = 0
    """Ticks dropped as repeats of a key already loaded."""
    late_rows_dropped: int = 0
    """Ticks dropped as older than the watermark."""
    newest_event_time: datetime | None = None
    """The latest ``last_updated`` loaded."""
    last_batch_id: int | None = None
    """The last micro-batch loaded."""


@dataclass(frozen=True)
class _Load:
    result: LoadResult
    files: int
    stage_seconds: float
    load_seconds: float


class StreamMetrics:
    """Thread-safe running totals; read them with :meth:`snapshot`."""

    def __init__(self) -> None:
        self._totals = Totals(StreamStatus())
        self._lock = threading.Lock()  # guards _unreported
        self._unreported: dict[int, _Load] = {}

    def snapshot(self) -> StreamStatus:
        """The totals now (immutable)."""
        return self._totals.snapshot()

    def record_load(
        self, batch_id: int, result: LoadResult, *, files: int, stage_seconds: float, load_seconds: float
    ) -> None:
        """Count a batch of ``files`` landing files the warehouse has committed (called from ``foreachBatch``)."""
        added = not result.already_loaded

        def count(status: StreamStatus) -> StreamStatus:
            newest = max(
                (t for t in (status.newest_event_time, result.newest_event_time) if t is not None), default=None
            )
            return replace(
                status,
                batches=status.batches + 1,
                files_in=status.files_in + files,
                rows_loaded=status.rows_loaded + (result.ticks if added else 0),
                rows_quarantined=status.rows_quarantined + (result.quarantined if added else 0),
                newest_event_time=newest,
                last_batch_id=batch_id,
            )

        self._totals.update(count)
        with self._lock:
            self._unreported[batch_id] = _Load(result, files, stage_seconds, load_seconds)

    def record_progress(self, progress: Mapping[str, Any]) -> None:
        """Count what Spark dropped in a loaded batch, and log the batch; once per batch.

        Progress reports of batches not loaded (idle triggers) or already counted
        are ignored, so the listener and a final sweep of ``recentProgress`` can
        both call this.
        """
        batch_id = progress.get("batchId")
        with self._lock:
            load = self._unreported.pop(batch_id, None)
        if load is None:
            return
        duplicates, late = dropped_rows(progress)
        result = load.result
        self._totals.count(
            rows_in=result.ticks + result.quarantined + duplicates + late,
            duplicates_dropped=duplicates,
            late_rows_dropped=late,
        )
        log.info(_batch_line(batch_id, progress, load, duplicates, late))

    def record_progresses(self, progresses: Iterable[Mapping[str, Any]]) -> None:
        """:meth:`record_progress` for each (e.g. ``query.recentProgress`` after a stop)."""
        for progress in progresses:
            self.record_progress(progress)


class ProgressListener(StreamingQueryListener):
    """Feeds every progress report of the session's queries to :class:`StreamMetrics`."""

    def __init__(self, metrics: StreamMetrics) -> None:
        self._metrics = metrics
        self._last_idle_line = -float(IDLE_LINE_SECONDS)

    def onQueryStarted(self, event: Any) -> None:
        pass

    def onQueryProgress(self, event: Any) -> None:
        try:
            self._metrics.record_progress(json.loads(event.progress.json))
        except Exception:  # an exception here would only reach Spark's listener bus log
            log.exception("could not record the progress of a micro-batch")

    def onQueryIdle(self, event: Any) -> None:
        # A healthy stream with nothing to read says so now and then: the stream-not-running
        # alert tells a quiet stream from a dead one by this line (core/health.py).
        now = time.monotonic()
        if now - self._last_idle_line >= IDLE_LINE_SECONDS:
            self._last_idle_line = now
            log.info("%s nothing new to read", stream_mark(STREAM_IDLE))

    def onQueryTerminated(self, event: Any) -> None:
        pass


def _batch_line(batch_id: int, progress: Mapping[str, Any], load: _Load, duplicates: int, late: int) -> str:
    result = load.result
    newest = result.newest_event_time.isoformat() if result.newest_event_time else "none"
    seconds = progress.get("durationMs", {}).get("triggerExecution", 0) / 1000
    timing = f"{seconds:.2f} s (stage {load.stage_seconds:.2f} s, load {load.load_seconds:.2f} s)"
    if result.already_loaded:
        head = f"already loaded by an earlier run ({result.ticks} ticks, {result.quarantined} quarantined)"
    else:
        head = f"{result.ticks} loaded, {result.quarantined} quarantined"
    records = result.ticks + result.quarantined + duplicates + late
    age = None
    if result.ticks and result.newest_event_time is not None:
        # Spark hands timestamps back as naive local times; astimezone() reads them so.
        age = (datetime.now(timezone.utc) - result.newest_event_time.astimezone(timezone.utc)).total_seconds()
    return (
        f"batch {batch_id}: {records} records in "
        f"({load.files} files), {head}, "
        f"{duplicates} duplicates, {late} late; newest event {newest}; {timing}; "
        f"{batch_fields(records, result.quarantined, age)}"
    )
