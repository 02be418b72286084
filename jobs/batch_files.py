"""The landing files a micro-batch took, and which of them are zero-byte files.

The file source lists a zero-byte file, counts it into a batch and archives it with
the others, but Spark's file index drops zero-length files before the scan
(``PartitioningAwareFileIndex.listFiles``), so no row ever stands for it and the
quarantine would never hear of it. A blank file (only line breaks and spaces) is read,
and :func:`jobs.stream.read_landing` gives it a row itself; this module covers the
zero-byte case.

Which files a batch took is in the checkpoint, in two logs: the query's offset log
(``offsets/<batch id>``) holds, for the file source, the last entry of the source's own
log the batch reads up to (its ``logOffset``), and the source's log (``sources/0/<n>``,
compacted into ``<n>.compact`` every tenth entry, which then holds every entry so far)
lists the files of each entry. A batch takes the source entries after the previous
batch's ``logOffset`` up to its own. The two numberings usually agree, but not after a
driver dies between writing a source entry and writing the batch's offsets: the next
run plans that batch over two source entries, and from then on source entry n is not
batch n. Spark's own ``OffsetSeqLog`` and ``FileStreamSourceLog`` read both logs, so a
batch replayed after a crash gets the same files. They are still under the landing
root while the batch runs: Spark archives the files of committed batches only.
"""

from __future__ import annotations

import json

from pyspark.sql import SparkSession

from jobs.locations import Location

# The streaming query has one source, the landing zone: the checkpoint's source 0.
_SOURCE_LOG = "sources/0"
_OFFSET_LOG = "offsets"


class BatchFiles:
    """The files of each batch of the query checkpointed at ``checkpoint``."""

    def __init__(self, spark: SparkSession, checkpoint: Location) -> None:
        self._spark = spark
        self._log_path = checkpoint.child(_SOURCE_LOG).uri
        self._offsets_path = checkpoint.child(_OFFSET_LOG).uri
        self._log = self._offsets = None  # built on first use: the query creates the folders when it starts

    def of_batch(self, batch_id: int) -> list[str]:
        """URIs of the files batch ``batch_id`` took: the source's entries after the previous
        batch's log offset, up to and including its own."""
        first = self._log_offset(batch_id - 1) + 1 if batch_id > 0 else 0
        files = []
        for entry_id in range(first, self._log_offset(batch_id) + 1):
            entries = self._source_log().get(entry_id)
            if not entries.isDefined():
                raise RuntimeError(f"the file source's log at {self._log_path} has no entry {entry_id}")
            # A compaction entry holds the files of every entry so far.
            files += [entry.path() for entry in entries.get() if entry.batchId() == entry_id]
        return files

    def _log_offset(self, batch_id: int) -> int:
        """The last source-log entry batch ``batch_id`` reads, from the query's offset log."""
        if self._offsets is None:
            streaming = self._spark.sparkContext._jvm.org.apache.spark.sql.execution.streaming
            self._offsets = streaming.OffsetSeqLog(self._spark._jsparkSession, self._offsets_path)
        offsets = self._offsets.get(batch_id)
        if not offsets.isDefined():
            raise RuntimeError(f"the query's offset log at {self._offsets_path} has no batch {batch_id}")
        source = offsets.get().offsets().head()  # the one source's offset: {"logOffset": n}
        return json.loads(source.get().json())["logOffset"]

    def empty(self, files: list[str]) -> list[str]:
        """The zero-byte ones among ``files`` (of a batch not yet committed), spelled as
        Hadoop lists them, like the rows' source files."""
        jvm = self._spark.sparkContext._jvm
        conf = self._spark.sparkContext._jsc.hadoopConfiguration()
        empty = []
        for file in files:
            path = jvm.org.apache.hadoop.fs.Path(jvm.java.net.URI(file))
            status = path.getFileSystem(conf).getFileStatus(path)
            if status.getLen() == 0:
                empty.append(status.getPath().toString())
        return sorted(empty)

    def _source_log(self):  # -> org.apache.spark.sql.execution.streaming.FileStreamSourceLog
        if self._log is None:
            streaming = self._spark.sparkContext._jvm.org.apache.spark.sql.execution.streaming
            self._log = streaming.FileStreamSourceLog(
                streaming.FileStreamSourceLog.VERSION(), self._spark._jsparkSession, self._log_path
            )
        return self._log
