"""What every benchmark shares: machine facts, load sampling, process memory, results files."""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
#: Scratch space for generated landing zones, checkpoints and warehouses.
WORK = Path(os.environ.get("CRYPTOPIPE_BENCH_WORK", "/tmp/cryptopipe-bench"))


class BenchFailure(Exception):
    """A correctness check failed (row counts differ): the run is void."""


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu_model": cpu,
        "kernel": platform.release(),
    }


def versions() -> dict[str, str]:
    import duckdb
    import pyspark

    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr.splitlines()
    return {
        "python": platform.python_version(),
        "pyspark": pyspark.__version__,
        "duckdb": duckdb.__version__,
        "java": java[0].strip() if java else "unknown",
    }


class LoadSampler:
    """Samples the 1-minute load average every few seconds while a benchmark runs.

    Other work on the machine (other engineers' test suites here) competes for the
    same cores; every result carries the load seen during its run.
    """

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-sampler", daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(os.getloadavg()[0])
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])

    def summary(self) -> dict[str, float]:
        s = self.samples or [os.getloadavg()[0]]
        return {"load1_min": round(min(s), 2), "load1_mean": round(statistics.fmean(s), 2), "load1_max": round(max(s), 2)}


def proc_status(pid: int) -> dict[str, int]:
    """VmHWM/VmRSS of a process in KiB (``/proc/<pid>/status``)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def children(pid: int) -> list[int]:
    """Direct and indirect child pids of ``pid``."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            kids = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        for kid in map(int, kids):
            found.append(kid)
            todo.append(kid)
    return found


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


class MemorySampler:
    """Peak memory of this Python process, its JVM and any Python children (VmHWM, MiB).

    The JVM is a child of the driver (py4j's gateway); ``/usr/bin/time`` would not see
    it, so its ``/proc/<pid>/status`` is read while it runs (VmHWM is the peak so far).
    """

    def __init__(self, every: float = 2.0, root: int | None = None) -> None:
        self.every = every
        self.root = root or os.getpid()
        self.peaks: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mem-sampler", daemon=True)

    def sample(self) -> None:
        me = self.root
        self._peak("python_driver", proc_status(me).get("VmHWM", 0))
        workers = 0
        for pid in children(me):
            name = comm(pid)
            hwm = proc_status(pid).get("VmHWM", 0)
            if name == "java":
                self._peak("jvm", hwm)
            elif name.startswith("python"):
                workers = max(workers, hwm)
        if workers:
            self._peak("python_workers_max", workers)

    def _peak(self, key: str, kib: int) -> None:
        mib = round(kib / 1024, 1)
        if mib > self.peaks.get(key, 0):
            self.peaks[key] = mib

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.sample()


def percentile(values: Iterable[float], q: float) -> float:
    data = sorted(values)
    if not data:
        return float("nan")
    if len(data) == 1:
        return data[0]
    pos = (len(data) - 1) * q
    low = int(pos)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (pos - low)


def command_line() -> str:
    return ".venv/bin/python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])


def write_result(name: str, result: dict[str, Any], load: LoadSampler, started: float) -> dict[str, Any]:
    """Add the run's context and write ``bench/results/<name>.json``."""
    document = {
        "benchmark": name,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": command_line(),
        "wall_seconds": round(time.monotonic() - started, 1),
        "machine": machine(),
        "load": load.summary(),
        "versions": versions(),
        **result,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"wrote {path.relative_to(REPO)}", flush=True)
    return document


def quiet_spark_logs() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("py4j").setLevel(logging.ERROR)


def bench_session(app: str, scratch: Path, conf: dict[str, str] | None = None):  # noqa: ANN201
    from jobs import build_session

    spark = build_session(
        app, scratch_root=scratch, ui=False, conf={"spark.ui.showConsoleProgress": "false", **(conf or {})}
    )
    spark.sparkContext.setLogLevel("ERROR")
    return spark
