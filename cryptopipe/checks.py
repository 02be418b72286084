"""What a local run checks before it starts, each failure a :class:`PipelineError` saying how to fix it.

Spark's, a socket's or DuckDB's own error would come later and say less: no JVM
surfaces as a py4j traceback after seconds of start-up, a busy port as a bind error
from a thread, a warehouse held by a DuckDB shell as a lock timeout on the first batch.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
from pathlib import Path

from cryptopipe.errors import PipelineError
from core.layout import LocalLayout


def require_java() -> None:
    """Fail early, saying how to fix it, when Spark would not find a JVM."""
    if shutil.which("java") is None:
        raise PipelineError(
            "Java was not found on PATH, and Spark needs it: install Java 17 "
            "(apt-get install openjdk-17-jre-headless), or run scripts/run-local, which does"
        )


def require_free_port(port: int, what: str) -> None:
    """Fail naming the port and its use, rather than with a bind traceback."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            raise PipelineError(
                f"port {port} for the {what} is busy ({error.strerror}): stop what uses it or pick another port"
            ) from None


def require_unlocked_warehouse(path: Path) -> None:
    """Fail when another process (a DuckDB shell, say) keeps the warehouse file open."""
    from jobs.errors import WarehouseLockedError
    from jobs.loaders.duckdb import open_reader

    if not path.exists():
        return
    try:
        with open_reader(path, timeout=2.0):
            pass
    except WarehouseLockedError as error:
        raise PipelineError(f"{error}; close the other program and start again") from None


def claim_data_dir(layout: LocalLayout) -> int:
    """Hold an exclusive lock on the layout's data directory for this run; returns the lock's descriptor.

    Two runs on one data directory would share a checkpoint and a landing zone;
    the stream's short-lived warehouse connections would not notice, so the run
    itself takes a lock, released by the OS however the process ends.
    """
    layout.root.mkdir(parents=True, exist_ok=True)
    fd = os.open(layout.run_lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise PipelineError(
            f"another `cryptopipe up` is running on {layout.root}: stop it first, or use another --data-dir"
        ) from None
    return fd
