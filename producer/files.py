"""Durable local writes shared by the spool, the local landing zone, the heartbeat and the back-fill state."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


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


def replace_json(path: Path, content: Any) -> None:
    """Replace ``path`` with ``content`` as JSON, atomically: a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    write_synced(temp, json.dumps(content).encode())
    os.replace(temp, path)
    fsync_dir(path.parent)
