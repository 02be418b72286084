"""The SparkSession the job runs in: the settings docs/ARCHITECTURE.md §4 measured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from jobs.session import LOCAL_DRIVER_MEMORY, _own_scratch_dir

from ..conftest import script_module


@pytest.mark.spark
def test_session_runs_in_utc_with_small_shuffles_and_micros_timestamps(spark):
    conf = spark.conf
    assert conf.get("spark.sql.session.timeZone") == "UTC"
    assert conf.get("spark.sql.shuffle.partitions") == "4"
    assert int(conf.get("spark.sql.sources.parallelPartitionDiscovery.threshold")) > 32
    assert conf.get("spark.sql.parquet.outputTimestampType") == "TIMESTAMP_MICROS"
    assert conf.get("spark.ui.enabled") == "false"


@pytest.mark.spark
def test_local_session_keeps_its_temp_files_in_its_own_scratch_folder(spark):
    local_dir = Path(spark.sparkContext.getConf().get("spark.local.dir"))
    assert local_dir.name.startswith("pid-")
    assert f"-Djava.io.tmpdir={local_dir}" in spark.sparkContext.getConf().get("spark.driver.extraJavaOptions")
    assert spark.sparkContext._jvm.System.getProperty("java.io.tmpdir") == str(local_dir)


@pytest.mark.spark
def test_local_driver_listens_on_loopback_only(spark):
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.driver.bindAddress") == "127.0.0.1"
    assert conf.get("spark.driver.host") == "127.0.0.1"


@pytest.mark.spark
def test_local_jvm_starts_with_the_smaller_heap(spark):
    # spark.driver.memory only counts if it reaches the JVM's command line (-Xmx): ask the JVM.
    heap_mib = spark.sparkContext._jvm.java.lang.Runtime.getRuntime().maxMemory() / 2**20
    assert heap_mib <= parse_mib(LOCAL_DRIVER_MEMORY) < 1024


@pytest.mark.spark
def test_the_test_jvms_map_sparks_classes_from_the_archive_the_set_up_made(spark):
    """Not a product setting: the suite's own JVM start-up (scripts/spark_classes.py). A JVM that
    cannot use the archive runs without it in silence, so this is where a stale one shows."""
    archive = script_module("spark_classes").archive()
    assert archive.exists(), "scripts/test makes it: .venv/bin/python scripts/spark_classes.py"
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    assert str(archive) in Path(f"/proc/{pid}/maps").read_text()


def parse_mib(size: str) -> int:
    assert size.endswith("m"), size
    return int(size[:-1])


def test_scratch_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f"pid-{dead.stdout.strip()}"
    (leftover / "blockmgr-1").mkdir(parents=True)
    unrelated = tmp_path / "keep-me"
    unrelated.mkdir()

    mine = _own_scratch_dir(tmp_path)

    assert mine.is_dir() and not leftover.exists() and unrelated.exists()
