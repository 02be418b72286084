"""Ctrl-C stops the local app's long-running commands, however they were started.

A process that starts with SIGINT ignored keeps ignoring it: CPython installs its
KeyboardInterrupt handler only over the default disposition, and a shell without job
control (a script) starts its background jobs with SIGINT ignored, so a ``cryptopipe up &``
or ``python -m cryptopipe.replay &`` there ignored Ctrl-C and ``kill -INT`` alike. The
producer and the stream job install handlers of their own; these commands ask for
CPython's.
"""

from __future__ import annotations

import signal


def stop_on_ctrl_c() -> None:
    """SIGINT raises KeyboardInterrupt in the main thread, whatever this process inherited."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
