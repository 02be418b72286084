#!/usr/bin/env python3
"""The test JVMs' options, and a class-data-sharing archive of the classes a Spark driver loads.

The suite starts about twenty Spark drivers (the session's, and the job's processes that the
crash, scheduled-mode and CLI tests start and kill), each living seconds to minutes. A JVM
spends most of such a start loading and verifying Spark's and Scala's classes; a dynamic
CDS archive (JDK 13+, JEP 350) holds them parsed and verified, and each JVM maps it instead:
one one-file run of the job went from 9 s to 6 s on this machine (docs/TESTING.md).

``scripts/test`` makes the archive during set-up (:func:`ensure`): one run of the job
(``jobs/stream.py --available-now`` on a valid and a bad line, into DuckDB) with
``-XX:ArchiveClassesAtExit``, which the JVM writes as it exits. It lives in ``.cache/``
under a key of the JDK's release and pyspark's version, so an upgrade of either makes a new
one. A JVM that cannot use it (another JDK, another class path) runs without it: the
JVM's own check, silenced so that no test's output changes. Tests only: production
drivers run for days, and Dataproc's image has its own JDK.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCHIVES = ROOT / ".cache" / "spark-classes"

#: C1 only (no C2 compiling on the shared 2 cores) and the serial collector: a short driver's
#: CPU halved, a fifth off the session's (docs/TESTING.md). Tests only: a long-running
#: production driver wants C2.
TEST_JVM_OPTIONS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")
#: A JVM that finds the archive unusable says so on stdout; the tests' output stays the job's.
_QUIET_CDS = ("-Xlog:cds=off", "-Xlog:cds+dynamic=off")


def _jdk() -> str:
    """The JDK spark-submit starts (``$JAVA_HOME/bin/java``, else ``java`` on the PATH): its
    ``release`` file, which names its version and build, or its path when it has none."""
    home = os.environ.get("JAVA_HOME")
    java = shutil.which("java", path=str(Path(home) / "bin") if home else None)
    if java is None:
        return ""
    release = Path(os.path.realpath(java)).parents[1] / "release"
    return release.read_text() if release.exists() else os.path.realpath(java)


def archive() -> Path:
    """Where the archive for this JDK and this pyspark is (whether or not it exists yet)."""
    key = json.dumps([_jdk(), version("pyspark"), TEST_JVM_OPTIONS])
    return ARCHIVES / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.jsa"


def java_options() -> str:
    """The test drivers' JVM options: :data:`TEST_JVM_OPTIONS`, and the archive when it is there."""
    path = archive()
    shared = (f"-XX:SharedArchiveFile={path}", *_QUIET_CDS) if path.exists() else ()
    return " ".join((*TEST_JVM_OPTIONS, *shared))


def submit_args(options: str) -> str:
    """``PYSPARK_SUBMIT_ARGS`` giving every driver ``options``: PySpark passes it to spark-submit
    after the session's own ``--conf``, and the default options come before a job's own
    ``spark.driver.extraJavaOptions``, which stay as they are."""
    return f'--conf "spark.driver.defaultJavaOptions={options}" pyspark-shell'


def ensure() -> Path:
    """Make the archive unless it is there: one run of the job, archived as its JVM exits."""
    path = archive()
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(ROOT))
    from core.schema import record_model  # the one schema: a line the job loads, not quarantines

    with tempfile.TemporaryDirectory(prefix="spark-classes-") as scratch:
        run = Path(scratch)
        (run / "landing").mkdir()
        valid = record_model().model_validate({
            "id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "current_price": 64000.5,
            "last_updated": "2025-06-01T12:00:03.123Z", "vs_currency": "usd",
            "ingested_at": "2025-06-01T12:00:05.001Z", "poll_id": "archive", "origin": "poll",
        }).model_dump_json()
        (run / "landing" / "poll.ndjson").write_text(f"{valid}\nnot json\n")
        partial = path.with_name(f"{path.stem}.{os.getpid()}.partial")  # beside it: one rename
        places = {name: run / name for name in ("landing", "archive", "checkpoint", "staging")}
        argv = [sys.executable, str(ROOT / "jobs" / "stream.py"), "--available-now",
                *(arg for name, place in places.items() for arg in (f"--{name}", str(place))),
                "--warehouse", f"duckdb://{run / 'warehouse.duckdb'}"]
        options = " ".join((*TEST_JVM_OPTIONS, f"-XX:ArchiveClassesAtExit={partial}"))
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "TMPDIR": scratch, "PYSPARK_SUBMIT_ARGS": submit_args(options)})
        if done.returncode != 0 or not partial.exists():
            raise SystemExit(f"scripts/spark_classes.py: the archiving run failed ({done.returncode}):\n"
                             f"{done.stdout[-3000:]}{done.stderr[-3000:]}")
        os.replace(partial, path)  # whole or not at all: a suite beside this one may read it
    return path


if __name__ == "__main__":
    print(f"scripts/spark_classes.py: {ensure()}", file=sys.stderr)
