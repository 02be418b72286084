"""Which files a batch took, read from the checkpoint (compacted log included), and which are empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import stream
from jobs.batch_files import BatchFiles
from jobs.locations import Location
from jobs.validate import NO_RECORDS

from .conftest import Pipeline, line

# Spark compacts the file source's log every `compactInterval` batches (10 by default): with 4,
# batch 3 lives in 3.compact, reached in five one-file batches instead of eleven.
COMPACT_INTERVAL = "spark.sql.streaming.fileSource.log.compactInterval"
COMPACTED_BATCH = 3


@pytest.fixture
def compacting_every_fourth(spark, monkeypatch):
    """The shared session, and the job's own sessions compacting the source log every fourth batch.
    The test's reader keeps Spark's default: it learns the interval from the log, as a reader
    of a log written under another interval must."""
    monkeypatch.setitem(stream.JOB_SQL_CONF, COMPACT_INTERVAL, str(COMPACTED_BATCH + 1))
    return spark


@pytest.mark.spark
def test_each_batchs_files_come_from_the_checkpoint_and_zero_byte_files_are_quarantined(
    compacting_every_fourth, pipeline: Pipeline
):
    spark = compacting_every_fourth
    landed = [pipeline.land_bytes(b"", name="empty-first")]
    landed += [pipeline.land([line(f"coin-{n}")], name=f"poll-{n:02d}") for n in range(1, COMPACTED_BATCH)]
    landed.append(pipeline.land_bytes(b"", name="empty-compacted"))  # the compacted batch
    landed.append(pipeline.land([line("coin-last")], name="poll-last"))  # read after the compaction

    status = pipeline.run(spark, "--max-files-per-trigger", "1")

    files = BatchFiles(spark, Location.parse(str(pipeline.checkpoint), option="--checkpoint"))
    assert (pipeline.checkpoint / "sources" / "0" / f"{COMPACTED_BATCH}.compact").exists()
    assert [[Path(uri.removeprefix("file://")) for uri in files.of_batch(batch)] for batch in range(len(landed))] == [
        [path] for path in landed
    ]
    # Each zero-byte file is one quarantine row, named as Spark names the rows' files.
    assert pipeline.query("SELECT source_file, reason, raw_line FROM quarantine ORDER BY source_file") == [
        (f"file:{landed[-2]}", NO_RECORDS, ""),
        (f"file:{landed[0]}", NO_RECORDS, ""),
    ]
    assert (status.files_in, status.rows_in, status.rows_loaded, status.rows_quarantined) == (
        len(landed), len(landed), len(landed) - 2, 2)
    with pytest.raises(RuntimeError, match=f"has no batch {len(landed)}"):
        files.of_batch(len(landed))


@pytest.mark.spark
def test_only_files_without_rows_in_the_batch_are_looked_at(spark, pipeline: Pipeline, monkeypatch):
    asked: list[list[str]] = []
    look = BatchFiles.empty

    def recording(self, files):
        asked.append(sorted(Path(uri.removeprefix("file://")).name for uri in files))
        return look(self, files)

    monkeypatch.setattr(BatchFiles, "empty", recording)
    repeated = line("bitcoin")
    pipeline.land([repeated], name="first")
    pipeline.land([repeated], name="repeat")  # all its rows are duplicates: none reach the batch
    pipeline.land([line("ethereum")], name="fresh")
    pipeline.land_bytes(b"", name="empty")

    status = pipeline.run(spark, "--max-files-per-trigger", "4")

    assert asked == [["empty.ndjson", "repeat.ndjson"]]
    assert (status.files_in, status.rows_loaded, status.duplicates_dropped, status.rows_quarantined) == (4, 2, 1, 1)


@pytest.mark.spark
def test_a_driver_dying_between_the_source_entry_and_the_batch_offsets_loses_and_breaks_nothing(
    spark, pipeline: Pipeline
):
    """The checkpoint of a driver killed after the file source wrote its entry for batch 2 and
    before the query wrote batch 2's offsets: the next run plans batch 2 over two source entries,
    so from then on source entry n is not batch n, and each batch's files must be read through
    the offset log (an earlier version read entry n, and the next batch failed on a file of
    another batch that Spark had already archived)."""
    import shutil
    from contextlib import closing

    from jobs.loaders.duckdb import connect

    for n in range(1, 4):
        pipeline.land([line(f"coin-{n}")], name=f"poll-{n}")
    pipeline.run(spark, "--max-files-per-trigger", "1")
    # Undo batch 2 as if it never ran, keeping the source's entry 2 (poll-3, still under landing/).
    for log in ("offsets", "commits"):
        for name in ("2", ".2.crc"):
            (pipeline.checkpoint / log / name).unlink()
    (batch_2,) = [load_id for (load_id,) in pipeline.query("SELECT load_id FROM _loads") if load_id.endswith("/2")]
    with closing(connect(pipeline.warehouse, read_only=False, timeout=10)) as con:
        con.execute("DELETE FROM market_ticks WHERE _load_id = ?", [batch_2])
        con.execute("DELETE FROM _loads WHERE load_id = ?", [batch_2])
    assert (pipeline.checkpoint / "sources" / "0" / "2").exists() and pipeline.files(pipeline.landing) == ["poll-3.ndjson"]
    shutil.rmtree(pipeline.staging, ignore_errors=True)

    for n in range(4, 6):
        pipeline.land([line(f"coin-{n}")], name=f"poll-{n}")
    pipeline.run(spark, "--max-files-per-trigger", "1")

    files = BatchFiles(spark, Location.parse(str(pipeline.checkpoint), option="--checkpoint"))
    assert [sorted(Path(uri).name for uri in files.of_batch(batch)) for batch in (2, 3)] == [
        ["poll-3.ndjson", "poll-4.ndjson"], ["poll-5.ndjson"]]
    assert pipeline.query("SELECT coin_id, count(*) FROM market_ticks GROUP BY coin_id ORDER BY coin_id") == [
        (f"coin-{n}", 1) for n in range(1, 6)]
