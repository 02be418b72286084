"""The SparkSession the job runs in, locally or on Dataproc.

Settings follow what was measured on 2-core machines (docs/ARCHITECTURE.md §4):

- UTC session time zone: event times are UTC end to end.
- Few shuffle partitions (4, not 200): a micro-batch is thousands of rows, and every
  partition is a task and a state store to commit.
- A raised ``parallelPartitionDiscovery.threshold``: above 32 files per batch Spark
  otherwise starts a separate listing job costing about 2 s a batch.
- ``TIMESTAMP_MICROS`` Parquet timestamps: what DuckDB and BigQuery read as UTC
  timestamps (Spark's default INT96 is deprecated).
- Locally, ``spark.local.dir`` and ``java.io.tmpdir`` in one scratch folder this
  process owns: a ``kill -9`` leaves temp files behind, and they are then in one
  place, removed by the next start.
- Locally, a driver heap of :data:`LOCAL_DRIVER_MEMORY`, not Spark's 1 GiB default: the
  local JVM is driver and executor in one, and its resident size is the heap plus about
  300 MiB of its own (code, metaspace, threads). A batch of 54,000 rows (18,000 coins in
  three currencies, one 30 MB poll) runs in 512 MiB, and the JVM then stays under 1 GiB
  (docs/BENCHMARKS.md, "Scale"); with the default heap the same batches took it to 1.2-1.4 GiB,
  since the JVM grows its heap towards the maximum before it collects. On Dataproc the
  cluster's properties size the driver and executors.
- Locally, the driver on loopback (127.0.0.1): a local run needs no network, and
  Spark would otherwise bind to the machine's first non-loopback address.
- Locally and when asked (``quiet``, the local app's default), a JVM that logs errors
  only, from its first line: log4j reads its configuration as the JVM starts, and
  Spark's start-up warnings (the native Hadoop library, ``spark.local.dir``) come
  before any ``setLogLevel`` could stop them.

On Dataproc (launched by ``spark-submit``) the master and local dirs are YARN's.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

from pyspark.sql import SparkSession

#: SQL settings for every session, local or cluster (the stream sets them on its own
#: session too, whoever built the SparkSession).
SESSION_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "4",
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "1024",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}

#: The local JVM's heap (``spark.driver.memory``; read as the JVM starts, so only by the
#: session that starts it). See the module docstring.
LOCAL_DRIVER_MEMORY = "512m"

_SCRATCH_PREFIX = "pid-"

#: The JVM's log4j2 configuration when ``quiet``: errors only, on stderr, in Spark's format.
#: The filter, not the root level, drops warnings: with the root at WARN, the level
#: Spark gives a pyspark "shell", Spark announces no "Setting default log level" either.
_ERRORS_ONLY_LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = stderr
appender.console.type = Console
appender.console.name = stderr
appender.console.target = SYSTEM_ERR
appender.console.filter.errors.type = ThresholdFilter
appender.console.filter.errors.level = error
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex
"""


def build_session(
    app_name: str = "cryptopipe-stream",
    *,
    master: str | None = None,
    scratch_root: Path | None = None,
    ui: bool = True,
    quiet: bool = False,
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """Build (or get) the SparkSession.

    - ``master``: None means spark-submit's when launched by it (Dataproc), else
      ``local[*]``.
    - ``scratch_root``: local mode only; this process uses ``<root>/pid-<pid>`` for
      Spark's and the JVM's temp files, and removes folders of processes that are
      gone. Defaults to ``<system temp>/cryptopipe-spark``.
    - ``ui``: the Spark UI (port 4040); off for tests.
    - ``quiet``: local mode only; the JVM logs errors only (Spark's own log4j
      configuration otherwise: warnings and its start-up notes).
    - ``conf``: extra settings, applied last.
    """
    launched_by_spark_submit = "PYSPARK_GATEWAY_PORT" in os.environ
    if master is None and not launched_by_spark_submit:
        master = "local[*]"
    builder = SparkSession.builder.appName(app_name)
    settings = dict(SESSION_CONF)
    settings["spark.ui.enabled"] = str(ui).lower()
    if master is not None:
        builder = builder.master(master)
        if master.startswith("local"):
            scratch = _own_scratch_dir(scratch_root or Path(tempfile.gettempdir()) / "cryptopipe-spark")
            settings["spark.local.dir"] = str(scratch)
            java_options = [f"-Djava.io.tmpdir={scratch}"]
            if quiet:
                log_config = scratch / "log4j2-errors-only.properties"
                log_config.write_text(_ERRORS_ONLY_LOG4J2)
                java_options.append(f"-Dlog4j2.configurationFile={log_config}")
            settings["spark.driver.extraJavaOptions"] = " ".join(java_options)
            settings["spark.driver.memory"] = LOCAL_DRIVER_MEMORY
            settings["spark.driver.host"] = settings["spark.driver.bindAddress"] = "127.0.0.1"
            # Read by the JVM as it starts, before any setting: stops the
            # "hostname resolves to a loopback address" warning and its address lookup.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def _own_scratch_dir(root: Path) -> Path:
    """Create this process's scratch folder under ``root``; remove those of dead processes."""
    root.mkdir(parents=True, exist_ok=True)
    for folder in root.glob(f"{_SCRATCH_PREFIX}*"):
        pid = folder.name.removeprefix(_SCRATCH_PREFIX)
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
    scratch = root / f"{_SCRATCH_PREFIX}{os.getpid()}"
    scratch.mkdir(exist_ok=True)
    return scratch


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
