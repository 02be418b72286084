"""The streaming job: landing NDJSON -> validate -> de-duplicate -> warehouse, exactly once.

One entry point, locally and on Dataproc::

    spark-submit --py-files cryptopipe.zip jobs/stream.py --landing gs://b/landing \\
        --archive gs://b/archive --checkpoint gs://b/checkpoints/stream \\
        --staging gs://b/staging --warehouse bigquery://project.dataset
    python jobs/stream.py --landing data/landing --archive data/archive \\
        --checkpoint data/checkpoint --staging data/staging \\
        --warehouse duckdb:///abs/data/warehouse.duckdb --available-now

In process (``cryptopipe up`` builds its :class:`StreamConfig` in code), with a live status::

    handle = start_stream(spark, config)
    handle.status()        # StreamStatus: batches, rows loaded, quarantined, ...
    handle.stop()

Each micro-batch: the file source hands over at most ``--max-files-per-trigger``
new landing files and archives the ones already processed; lines are parsed and
checked against the schema (:mod:`jobs.validate`), valid ticks de-duplicated
(:mod:`jobs.dedup`), and ``foreachBatch`` stages the batch as Parquet
(:mod:`jobs.staging`) and has the warehouse load it under a load id that makes a
replay a no-op (:mod:`jobs.loaders`).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import fields
from types import TracebackType

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import StreamingQuery

from core.health import RUN_FINISHED, STREAM_STARTED, stream_mark
from jobs.batch_files import BatchFiles
from jobs.config import StreamConfig, parse_args
from jobs.dedup import QUARANTINE_ID, drop_duplicate_ticks
from jobs.loaders import LoadId, Warehouse
from jobs.locations import Location
from jobs.metrics import ProgressListener, StreamMetrics, StreamStatus
from jobs.session import SESSION_CONF, build_session
from jobs.staging import BatchStager
from jobs.validate import PARTIAL_RESULTS_CONF, REASON, SOURCE_FILE, parse_lines

__all__ = [
    "JOB_SQL_CONF",
    "StreamConfig",
    "StreamHandle",
    "StreamStatus",
    "main",
    "parse_args",
    "read_landing",
    "run",
    "start_stream",
    "ticks_stream",
]

#: The driver's log lines: Dataproc sends each to Cloud Logging as one entry (cdktf/infra/monitoring/log_metrics.py).
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("jobs.stream")

#: SQL settings of the job's own session, on top of :data:`jobs.session.SESSION_CONF`.
JOB_SQL_CONF = {
    PARTIAL_RESULTS_CONF: "true",
    # A batch without new data would only stage and load nothing; state eviction
    # waits for the next data batch instead.
    "spark.sql.streaming.noDataMicroBatches.enabled": "false",
}
# The binaryFile source's fixed columns; a streaming source must be told them.
_BINARY_FILE_SCHEMA = "path STRING, modificationTime TIMESTAMP, length BIGINT, content BINARY"


class StreamHandle:
    """A running stream: read its status, wait for it, stop it (also as a context manager)."""

    def __init__(
        self,
        query: StreamingQuery,
        metrics: StreamMetrics,
        warehouse: Warehouse,
        session: SparkSession,
        listener: ProgressListener,
    ) -> None:
        self.query = query
        self._metrics = metrics
        self._warehouse = warehouse
        self._session = session
        self._listener = listener
        self._stopped = False

    def status(self) -> StreamStatus:
        """Totals so far; cheap and thread-safe, fit for a status line refreshed every second."""
        return self._metrics.snapshot()

    @property
    def is_active(self) -> bool:
        return self.query.isActive

    def await_termination(self, timeout: float | None = None) -> bool:
        """Wait for the query to end (``--available-now`` ends by itself); True if it has.

        Raises the query's error (a ``StreamingQueryException``) if it failed.
        """
        ended = self.query.awaitTermination(timeout) if timeout is not None else self.query.awaitTermination()
        if ended is None or ended:
            self._catch_up()
            return True
        return False

    def stop(self) -> None:
        """Stop the query (the batch in flight is abandoned and replayed next start)."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self.query.stop()
            self._catch_up()
        finally:
            self._session.streams.removeListener(self._listener)
            self._warehouse.close()

    def _catch_up(self) -> None:
        # The listener runs on Spark's event bus and may not have seen the last
        # batches yet; the query keeps its recent progress reports.
        self._metrics.record_progresses(self.query.recentProgress)

    def __enter__(self) -> StreamHandle:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _BatchWriter:
    """The ``foreachBatch`` function: stage the batch, load it, delete the staged files."""

    def __init__(self, stager: BatchStager, warehouse: Warehouse, metrics: StreamMetrics, files: BatchFiles) -> None:
        self._stager = stager
        self._warehouse = warehouse
        self._metrics = metrics
        self._files = files

    def __call__(self, batch: DataFrame, batch_id: int) -> None:
        load_id = LoadId(_query_id(batch), batch_id)
        started = time.monotonic()
        files = self._files.of_batch(batch_id)
        staged = self._stager.stage(batch, load_id, files)
        staged_at = time.monotonic()
        result = self._warehouse.load_batch(load_id, staged)
        loaded_at = time.monotonic()
        self._stager.discard(batch_id)
        self._metrics.record_load(
            batch_id, result, files=len(files), stage_seconds=staged_at - started, load_seconds=loaded_at - staged_at
        )


def start_stream(
    spark: SparkSession,
    config: StreamConfig,
    *,
    warehouse: Warehouse | None = None,
    session_conf: Mapping[str, str] | None = None,
    archive_processed: bool = True,
    deduplicate: bool = True,
) -> StreamHandle:
    """Set up the warehouse and start the query; returns at once with a :class:`StreamHandle`.

    The query runs in a new session of ``spark`` (same SparkContext, own SQL
    settings and listeners), so the caller's session settings stay as they were.
    The keywords change how the stream runs, for the benchmarks' emulation of the
    seed design (bench/seed.py); the job itself never sets them:

    - ``warehouse``: load into this one (set up here) instead of ``config.target``;
    - ``session_conf``: SQL settings applied over the job's own;
    - ``archive_processed``: False leaves processed files under the landing root;
    - ``deduplicate``: False loads repeated ticks as they come.
    """
    log.info("stream config: %s", _describe(config))
    warehouse = warehouse or config.target
    warehouse.setup()
    session = _job_session(spark, config, session_conf or {})
    metrics = StreamMetrics()
    listener = ProgressListener(metrics)
    session.streams.addListener(listener)
    batch_files = BatchFiles(session, config.checkpoint)
    try:
        query = (
            ticks_stream(session, config, archive_processed=archive_processed, deduplicate=deduplicate)
            .writeStream.foreachBatch(
                _BatchWriter(BatchStager(session, config.staging, batch_files), warehouse, metrics, batch_files)
            )
            .option("checkpointLocation", config.checkpoint.uri)
            .trigger(**config.trigger)
            .start()
        )
    except BaseException:
        session.streams.removeListener(listener)
        warehouse.close()
        raise
    log.info("%s query id %s", stream_mark(STREAM_STARTED), query.id)
    return StreamHandle(query, metrics, warehouse, session, listener)


def ticks_stream(
    spark: SparkSession, config: StreamConfig, *, archive_processed: bool = True, deduplicate: bool = True
) -> DataFrame:
    """The streaming DataFrame ``foreachBatch`` receives: validated, de-duplicated lines."""
    archive = config.archive if archive_processed else None
    lines = parse_lines(read_landing(spark, config.landing, max_files_per_trigger=config.max_files_per_trigger,
                                     archive=archive))
    if not deduplicate:  # staging still takes the quarantined lines' ids from the de-duplication's column
        return lines.withColumn(QUARANTINE_ID, F.when(F.col(REASON).isNotNull(), F.expr("uuid()")))
    return drop_duplicate_ticks(lines, config.watermark_delay)


def read_landing(
    spark: SparkSession, landing: Location, *, max_files_per_trigger: int, archive: Location | None
) -> DataFrame:
    """New landing files as lines: ``value`` and :data:`~jobs.validate.SOURCE_FILE`.

    Files are read whole (``binaryFile``) and split into lines here, rather than by
    the text source, so that a file of blank lines only still yields a row, with a
    null ``value``, for the quarantine: the text source would pass over it without a
    trace. (Zero-byte files never reach the scan at all: :mod:`jobs.batch_files`.) A
    landing file is one poll (about 150 KB for 250 coins), far below the 2 GiB Spark
    allows a file read whole.

    With ``archive``, processed files leave the landing root (``cleanSource``).
    """
    reader = (
        spark.readStream.format("binaryFile")
        .schema(_BINARY_FILE_SCHEMA)
        # Recursive listing of the landing root, without partition inference: the
        # dt=/hour= folders only keep directories small.
        .option("recursiveFileLookup", "true")
        .option("pathGlobFilter", "*.ndjson")
        .option("maxFilesPerTrigger", max_files_per_trigger)
    )
    if archive is not None:
        # Processed files leave the landing root, so its listing (every trigger)
        # stays small as the zone grows. Spark archives a batch's files when the
        # next batch starts.
        reader = reader.option("cleanSource", "archive").option("sourceArchiveDir", archive.uri)
    # Both warehouses refuse strings that are not UTF-8: one binary file would fail
    # its batch at every replay. Decoding turns bad bytes into U+FFFD instead.
    text = F.decode(F.col("content"), "UTF-8")
    # Split on "\n" alone: a one-character delimiter takes Java's fast path, where an
    # alternation like "\r\n|\n" runs the regex engine over every byte (it was the
    # costliest step of a batch). A CRLF line keeps its "\r", which JSON reads as
    # whitespace; only the blank-line test needs to look past it. That test trims
    # spaces and "\r" from both ends (btrim stops at a line's first other character)
    # rather than removing every "\r" first: translate copies each line character by
    # character, a fifth of a 54,000-line file's parse time.
    records = F.filter(F.split(text, "\n"), lambda line: F.btrim(line, F.lit(" \r")) != "")
    return reader.load(landing.uri).select(
        F.explode_outer(records).alias("value"), F.col("path").alias(SOURCE_FILE)
    )


#: The longest the driver's main thread waits on the query at a time, so that it sees a stop
#: request soon: CPython runs signal handlers in the main thread only, and when the kernel hands
#: SIGINT to another of the driver's threads (py4j's, Spark's callback server), a main thread
#: blocked in one long ``awaitTermination`` read is not woken; on an idle stream no answer comes.
WAIT_SECONDS = 1.0


def run(spark: SparkSession, config: StreamConfig, stop: threading.Event | None = None) -> StreamStatus:
    """Run the stream until it ends (``--available-now``), fails, or ``stop`` is set; then it is
    stopped, the batch in flight abandoned (replayed from the checkpoint at the next start)."""
    stop = stop or threading.Event()
    with start_stream(spark, config) as handle:
        while not handle.await_termination(WAIT_SECONDS) and not stop.is_set():
            pass
    return handle.status()


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: parse, build Spark, run, map failures to an exit status."""
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    logging.getLogger("py4j").setLevel(logging.WARNING)
    config = parse_args(argv)
    interrupted = threading.Event()
    spark = None
    try:
        spark = build_session()
        # Ctrl-C asks the stream to stop: a flag the main thread reads between waits on the query.
        # Set after the session, whose SparkContext installs a handler of its own that calls into
        # the JVM from inside whatever py4j call the main thread is in (and breaks that call).
        signal.signal(signal.SIGINT, lambda signum, frame: interrupted.set())
        status = run(spark, config, interrupted)
    except KeyboardInterrupt:  # while the session started
        interrupted.set()
    except Exception:
        log.exception("stream failed")
        return 1
    finally:
        if spark is not None:
            spark.stop()
    if interrupted.is_set():
        log.info("interrupted: stream stopped")
        return 130
    if config.available_now:  # a scheduled run's sign of success (core/health.py)
        log.info("%s %s", stream_mark(RUN_FINISHED), status)
    else:
        log.info("stream finished: %s", status)
    return 0


def _job_session(spark: SparkSession, config: StreamConfig, overrides: Mapping[str, str]) -> SparkSession:
    session = spark.newSession()
    settings = {**SESSION_CONF, **JOB_SQL_CONF, "spark.sql.shuffle.partitions": str(config.shuffle_partitions),
                **overrides}
    for key, value in settings.items():
        session.conf.set(key, value)
    return session


def _query_id(batch: DataFrame) -> str:
    # Spark sets this on the thread that runs foreachBatch; it is the query's id,
    # kept in the checkpoint across restarts.
    query_id = batch.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId")
    if not query_id:
        raise RuntimeError("foreachBatch ran without sql.streaming.queryId: cannot name the load")
    return query_id


def _describe(config: StreamConfig) -> str:
    return ", ".join(f"{field.name}={getattr(config, field.name)}" for field in fields(config) if field.init)


if __name__ == "__main__":
    sys.exit(main())
