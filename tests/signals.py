"""Ctrl-C as it can reach a program: on any of its threads, and after a start with SIGINT ignored.

``kill(2)`` lets the kernel hand a process's signal to any of its threads that does not
block it; CPython runs handlers in the main thread only, so a program whose main thread is
blocked somewhere a signal to another thread does not wake may not stop. ``tgkill(2)``
picks the thread, so a test can make that delivery happen on purpose. And a shell without
job control starts its background jobs with SIGINT ignored, which a Python program keeps
unless it installs a handler: :func:`started_ignoring_ctrl_c` starts a child that way.
"""

from __future__ import annotations

import ctypes
import os
import platform
import signal

#: tgkill(2)'s system call number per machine.
_TGKILL = {"x86_64": 234, "aarch64": 131}


def other_threads(pid: int) -> list[int]:
    """The ids of ``pid``'s threads other than its main one."""
    return [int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid]


def signal_thread(pid: int, tid: int, signum: int) -> None:
    """Send ``signum`` to thread ``tid`` of process ``pid``."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_TGKILL[platform.machine()], pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), f"tgkill({pid}, {tid}, {signum})")


def started_ignoring_ctrl_c() -> None:
    """A ``preexec_fn``: the child starts with SIGINT ignored, as a script's background job does."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
