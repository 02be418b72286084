"""A durable local queue of finished polls, drained into the landing zone in order.

Every finished poll goes through the spool, not only when the landing zone is down:
the poll is fsync'd here first and removed only after the landing zone has it. So a
crash, a SIGTERM or an outage at any moment loses nothing that was finished, and the
drain path is the everyday path, not code that runs once a year. A restart drains
what the last run left.

One file per poll, ``<poll_id>.ndjson``; poll ids sort by time, so a sorted listing
is the landing order. Temp files start with ``.`` and are removed at start-up: they
are polls that were never finished.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from producer.errors import SpoolFull
from producer.files import fsync_dir, write_synced

_SUFFIX = ".ndjson"


class Spool:
    """At most ``max_polls`` polls waiting to land, in ``directory``. Thread-safe."""

    def __init__(self, directory: str | os.PathLike[str], max_polls: int) -> None:
        self.directory = Path(directory)
        self.max_polls = max_polls
        self.quarantine_dir = self.directory / "quarantine"
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        for stale in self.directory.glob(".*.tmp"):
            stale.unlink()

    def add(self, poll_id: str, data: bytes) -> None:
        """Store a poll durably; raises :class:`SpoolFull` when ``max_polls`` are waiting."""
        with self._lock:
            depth = len(self.pending())
            if depth >= self.max_polls:
                raise SpoolFull(
                    f"spool {self.directory} holds {depth} polls (spool_max_polls={self.max_polls}); "
                    f"poll {poll_id} is dropped. The landing zone has been failing: see the "
                    "landing errors in the log"
                )
            target = self._path(poll_id)
            temp = self.directory / f".{target.name}.tmp"
            write_synced(temp, data)
            os.rename(temp, target)
            fsync_dir(self.directory)

    def pending(self) -> list[str]:
        """Poll ids waiting to land, oldest first."""
        return sorted(p.name[: -len(_SUFFIX)] for p in self.directory.glob(f"[!.]*{_SUFFIX}"))

    @property
    def depth(self) -> int:
        return len(self.pending())

    def read(self, poll_id: str) -> bytes:
        return self._path(poll_id).read_bytes()

    def remove(self, poll_id: str) -> None:
        """Forget a poll once the landing zone has it."""
        self._path(poll_id).unlink()
        fsync_dir(self.directory)

    def quarantine(self, poll_id: str) -> Path:
        """Set aside a poll that can never land (its name is taken by other content)."""
        target = self.quarantine_dir / self._path(poll_id).name
        os.rename(self._path(poll_id), target)
        fsync_dir(self.directory)
        return target

    def _path(self, poll_id: str) -> Path:
        return self.directory / f"{poll_id}{_SUFFIX}"
