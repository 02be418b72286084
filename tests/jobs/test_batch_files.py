"""Which files a batch took, read from the checkpoint (compacted log included), and which are empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.batch_files import BatchFiles
from jobs.locations import Location
from jobs.validate import NO_RECORDS

from .conftest import Pipeline, line

# Spark compacts the file source's log every 10 batches: batch 9 lives in 9.compact.
COMPACTED_BATCH = 9


@pytest.mark.spark
def test_each_batchs_files_come_from_the_checkpoint_and_zero_byte_files_are_quarantined(spark, pipeline: Pipeline):
    landed = [pipeline.land_bytes(b"", name="empty-first")]
    landed += [pipeline.land([line(f"coin-{n}")], name=f"poll-{n:02d}") for n in range(1, COMPACTED_BATCH)]
    landed.append(pipeline.land_bytes(b"", name="empty-compacted"))  # batch 9
    landed.append(pipeline.land([line("coin-10")], name="poll-10"))

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
    assert (status.files_in, status.rows_in, status.rows_loaded, status.rows_quarantined) == (11, 11, 9, 2)
    with pytest.raises(RuntimeError, match="has no batch 11"):
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
