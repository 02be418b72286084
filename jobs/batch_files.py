"""The landing files a micro-batch took, and which of them are zero-byte files.

The file source lists a zero-byte file, counts it into a batch and archives it with
the others, but Spark's file index drops zero-length files before the scan
(``PartitioningAwareFileIndex.listFiles``), so no row ever stands for it and the
quarantine would never hear of it. A blank file (only line breaks and spaces) is read,
and :func:`jobs.stream.read_landing` gives it a row itself; this module covers the
zero-byte case.

Which files a batch took is in the source's log in the checkpoint
(``sources/0/<batch id>``, compacted into ``<id>.compact`` every tenth batch, which
then holds every batch's entries); Spark's own ``FileStreamSourceLog`` reads it, so a
batch replayed after a crash gets the same files. They are still under the landing root while the batch
runs: Spark archives the files of committed batches only.
"""

from __future__ import annotations

from pyspark.sql import SparkSession

from jobs.locations import Location

# The streaming query has one source, the landing zone: the checkpoint's source 0.
_SOURCE_LOG = "sources/0"


class BatchFiles:
    """The files of each batch of the query checkpointed at ``checkpoint``."""

    def __init__(self, spark: SparkSession, checkpoint: Location) -> None:
        self._spark = spark
        self._log_path = checkpoint.child(_SOURCE_LOG).uri
        self._log = None  # built on first use: the query creates the log folder when it starts

    def of_batch(self, batch_id: int) -> list[str]:
        """URIs of the files batch ``batch_id`` took, as the source's log records them."""
        entries = self._source_log().get(batch_id)
        if not entries.isDefined():
            raise RuntimeError(f"the file source's log at {self._log_path} has no batch {batch_id}")
        # A compaction batch's log holds the entries of every batch so far.
        return [entry.path() for entry in entries.get() if entry.batchId() == batch_id]

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
