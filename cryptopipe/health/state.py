"""The stream's state, written by ``cryptopipe up`` for ``cryptopipe status`` (another process) to read.

The file is replaced whole on each write, so a reader sees the old state or the new
one, never half of one. Its path is the layout's (:attr:`core.layout.LocalLayout.stream_state`).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path

from core.health import QUARANTINE_WINDOW_SECONDS, Thresholds

#: How often ``cryptopipe up`` writes its stream's state; a file older than a few of
#: these means the run is gone.
WRITE_SECONDS = 1.0
GONE_AFTER_SECONDS = 5 * WRITE_SECONDS
HOUR_SECONDS = 3600.0


class StreamWatch:
    """What the local runner knows of its stream, kept in a file for ``cryptopipe status``."""

    def __init__(self, path: Path, thresholds: Thresholds) -> None:
        self.path = path
        self.thresholds = thresholds
        self._starts: deque[float] = deque()
        self._samples: deque[tuple[float, int, int]] = deque()  # (time, lines, quarantined), cumulative
        self._lines = self._quarantined = 0
        self._last_totals = (0, 0)
        self._last_running_at: float | None = None
        self._before_window = (0.0, 0, 0)  # the totals as the window began
        # Scheduled mode: when the watch began, when a run last ended well, whether the last one failed.
        self._since: float | None = None
        self._last_run_ok_at: float | None = None
        self._last_run_failed = False
        self._lock = threading.Lock()  # the watch thread and a stop both record

    def started(self, now: float | None = None) -> None:
        """A stream (a driver, in the cloud) started: counts towards the restarts per hour."""
        self._starts.append(time.time() if now is None else now)
        if self._since is None:
            self._since = self._starts[-1]
        self._last_totals = (0, 0)  # a new stream counts from zero

    def run_ended(self, ok: bool, now: float | None = None) -> None:
        """A scheduled run ended, well or not (the runs' totals still come through :meth:`record`)."""
        with self._lock:
            if ok:
                self._last_run_ok_at = time.time() if now is None else now
            self._last_run_failed = not ok

    def record(self, running: bool, lines: int, quarantined: int, now: float | None = None) -> None:
        """The stream's state and its running totals now; writes the file."""
        with self._lock:
            self._record(running, lines, quarantined, time.time() if now is None else now)

    def _record(self, running: bool, lines: int, quarantined: int, now: float) -> None:
        self._lines += max(lines - self._last_totals[0], 0)
        self._quarantined += max(quarantined - self._last_totals[1], 0)
        self._last_totals = (lines, quarantined)
        if running:
            self._last_running_at = now
        self._samples.append((now, self._lines, self._quarantined))
        while self._samples and self._samples[0][0] < now - QUARANTINE_WINDOW_SECONDS:
            self._before_window = self._samples.popleft()
        while self._starts and self._starts[0] < now - HOUR_SECONDS:
            self._starts.popleft()
        _write_json(self.path, {
            "written_at": now, "running": running, "last_running_at": self._last_running_at,
            "starts": list(self._starts), "window": [self._before_window, *self._samples],
            "thresholds": asdict(self.thresholds),
            "runs": {"since": self._since, "last_ok_at": self._last_run_ok_at, "last_failed": self._last_run_failed},
        })


def _write_json(path: Path, content: dict) -> None:
    """Replace ``path`` with ``content`` at once: a reader sees the old file or the new one."""
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(content))
    os.replace(temp, path)


def read_json(path: Path) -> dict | None:
    """The state ``path`` holds, or None when nothing has written it yet."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
