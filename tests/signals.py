"""A signal to one chosen thread of another process, as the kernel may deliver a process's.

``kill(2)`` lets the kernel hand a process's signal to any of its threads that does not
block it; CPython runs handlers in the main thread only, so a program whose main thread is
blocked somewhere a signal to another thread does not wake may not stop. ``tgkill(2)``
picks the thread, so a test can make that delivery happen on purpose.
"""

from __future__ import annotations

import ctypes
import os
import platform

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
