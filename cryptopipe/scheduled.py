"""Scheduled mode on one machine: the streaming job with ``--available-now``, started on a timer.

The cloud's scheduled mode (docs/STREAM.md, "Scheduled mode") starts the same job on
the same checkpoint every interval, one run at a time: a slot whose previous run is
still going is skipped, and a run killed half-way is replayed by the next one from the
checkpoint. Here the job runs as it does on a cluster, a process of its own
(``python -m jobs.stream``, local Spark), so that a run can end, fail or be killed
without taking ``cryptopipe up`` with it::

    runs = ScheduledRuns(layout, every_seconds=60)
    while True:
        runs.tick()          # starts a run when a new slot begins and none is going
        time.sleep(1)

Each run's output goes to ``<data>/runs/run-<slot>.log``; its per-batch lines are read
back for the same totals the cloud's log-based metrics count (core/health.py).
"""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.health import QUARANTINED_FIELD, RECORDS_FIELD, STREAM_BATCH, read_field, stream_mark
from core.joboptions import job_argv
from core.layout import LocalLayout

log = logging.getLogger(__name__)

#: How long a stopped run may take to end after SIGINT before it is killed.
STOP_GRACE_SECONDS = 30.0
_LOADED = re.compile(r", (\d+) loaded, ")


@dataclass(frozen=True)
class RunResult:
    """One finished run: its slot, exit status, and what its batch lines counted."""

    slot: int
    returncode: int
    batches: int
    records_in: int
    loaded: int
    quarantined: int

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def read_run_log(path: Path) -> tuple[int, int, int, int]:
    """(batches, records in, rows loaded, quarantined) of a run's output, from its per-batch lines."""
    batches = records = loaded = quarantined = 0
    mark = stream_mark(STREAM_BATCH)
    for line in path.read_text(errors="replace").splitlines():
        if mark not in line:
            continue
        batches += 1
        records += int(read_field(line, RECORDS_FIELD) or 0)
        quarantined += int(read_field(line, QUARANTINED_FIELD) or 0)
        found = _LOADED.search(line)
        loaded += int(found.group(1)) if found else 0
    return batches, records, loaded, quarantined


class ScheduledRuns:
    """Start ``python -m jobs.stream --available-now`` on ``layout`` once a slot of ``every_seconds``.

    - ``job_options``: the job's other options (``trigger_seconds``, ``max_files_per_trigger``, ...);
    - ``clock``: seconds since the epoch; slots are ``clock() // every_seconds``;
    - ``on_run_end``: called with each finished run's :class:`RunResult`.
    """

    def __init__(
        self, layout: LocalLayout, every_seconds: float, *, job_options: dict[str, object] | None = None,
        clock: Callable[[], float] = time.time, on_run_end: Callable[[RunResult], None] | None = None,
    ) -> None:
        if every_seconds <= 0:
            raise ValueError(f"every_seconds must be positive, not {every_seconds!r}")
        self.layout = layout
        self.every_seconds = every_seconds
        self.clock = clock
        self.on_run_end = on_run_end
        self.argv = [sys.executable, "-m", "jobs.stream",
                     *job_argv({**layout.job_places(), **(job_options or {}), "available_now": True})]
        self.results: list[RunResult] = []
        self._process: subprocess.Popen | None = None
        self._slot: int | None = None
        self._last_slot: int | None = None
        self._lock = threading.Lock()

    @property
    def runs_dir(self) -> Path:
        return self.layout.root / "runs"

    def log_of(self, slot: int) -> Path:
        return self.runs_dir / f"run-{slot}.log"

    @property
    def running(self) -> bool:
        """A run is going (after :meth:`reap` has collected any that ended)."""
        self.reap()
        return self._process is not None

    def tick(self) -> str:
        """``started`` a run for a new slot, ``skipped`` a new slot because a run is still going,
        or ``waiting`` for the next slot."""
        with self._lock:
            self._reap()
            slot = int(self.clock() // self.every_seconds)
            if slot == self._last_slot:
                return "waiting"
            self._last_slot = slot
            if self._process is not None:
                log.warning("scheduled run of slot %d skipped: the run of slot %d is still going", slot, self._slot)
                return "skipped"
            self._start(slot)
            return "started"

    def _start(self, slot: int) -> None:
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.layout.spark_scratch.mkdir(parents=True, exist_ok=True)
        with self.log_of(slot).open("w") as output:
            # A process group of its own: a stop or a kill reaches the driver and its JVM together.
            self._process = subprocess.Popen(
                self.argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                env={**os.environ, "TMPDIR": str(self.layout.spark_scratch)},
            )
        self._slot = slot
        log.info("scheduled run of slot %d started (pid %d)", slot, self._process.pid)

    def reap(self) -> RunResult | None:
        """Collect the run that ended, if one did."""
        with self._lock:
            return self._reap()

    def _reap(self) -> RunResult | None:
        if self._process is None or self._process.poll() is None:
            return None
        slot, returncode = self._slot, self._process.returncode
        self._process = self._slot = None
        result = RunResult(slot, returncode, *read_run_log(self.log_of(slot)))
        self.results.append(result)
        (log.info if result.ok else log.error)("scheduled run of slot %d ended with status %d: %d batches",
                                               slot, returncode, result.batches)
        if self.on_run_end is not None:
            self.on_run_end(result)
        return result

    def wait(self, timeout: float) -> RunResult | None:
        """Wait up to ``timeout`` seconds for the run in flight to end; its result, or None if it has not."""
        process = self._process
        if process is None:
            return None
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        return self.reap()

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the run in flight (its whole process group)."""
        if self._process is not None:
            os.killpg(self._process.pid, signum)

    def stop(self) -> RunResult | None:
        """Stop the run in flight (SIGINT: the batch in flight ends as a kill would leave it, and the
        next run replays it from the checkpoint), killing it if it does not end in time."""
        if self._process is None:
            return None
        self.signal(signal.SIGINT)
        result = self.wait(STOP_GRACE_SECONDS)
        if result is None:
            self.signal(signal.SIGKILL)
            result = self.wait(STOP_GRACE_SECONDS)
        return result
