"""Durable local writes shared by the spool, the local landing zone and the heartbeat."""

from __future__ import annotations

import os
from pathlib import Path


def write_synced(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` and fsync it; ``exclusive`` fails if ``path`` exists."""
    with open(path, "xb" if exclusive else "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename, link or unlink in ``path`` survive a power cut."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
