"""The whole pipeline on one machine: replay server, producer and stream in one process.

``cryptopipe up`` is this module. Each part is the production code with local
addresses (docs/ARCHITECTURE.md §1): the producer polls the bundled replay server (or the
live API) and lands polls in a local directory; the Spark job streams that directory
into a DuckDB file (``processing="stream"``), or runs the same job with ``--available-now``
every ``every_seconds`` as a process of its own (``processing="scheduled"``,
:mod:`cryptopipe.scheduled`; docs/STREAM.md, "Scheduled mode"). Each part takes its own typed settings, made for the layout
(:mod:`cryptopipe.settings`). The producer runs on a thread, the
stream on Spark's threads, and the caller watches both through :meth:`LocalPipeline.status`::

    layout = LocalLayout(Path("data"))
    producer, stream = producer_config(layout, "replay"), stream_config(layout)
    with LocalPipeline(layout, producer, stream, replay_port=0) as pipeline:
        while not pipeline.caught_up():
            print(pipeline.status())
            time.sleep(1)
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import TYPE_CHECKING, Any

from core.health import Thresholds
from core.tables import TICKS_TABLE
from cryptopipe.checks import claim_data_dir, require_free_port, require_java, require_unlocked_warehouse
from cryptopipe.errors import PipelineError
from cryptopipe.health.render import dashboard_alerts
from cryptopipe.health.state import WRITE_SECONDS, StreamWatch
from cryptopipe.scheduled import RunResult, ScheduledRuns
from core.layout import LocalLayout

if TYPE_CHECKING:
    from jobs import StreamConfig
    from producer import ProducerConfig

log = logging.getLogger(__name__)

PROCESSING_MODES = ("stream", "scheduled")
#: How long a local scheduled run may take, for its thresholds: a Spark start, the first batch and the drain.
LOCAL_RUN_SECONDS = 120.0


@dataclass(frozen=True)
class Status:
    """One reading of the running pipeline, for the live status line."""

    polls: int
    rows_landed: int
    rows_rejected: int
    batches: int
    rows_read: int
    rows_loaded: int
    rows_quarantined: int
    newest_loaded: datetime | None

    @property
    def freshness_seconds(self) -> float | None:
        """Age of the newest row in the warehouse, by its event time."""
        if self.newest_loaded is None:
            return None
        return (datetime.now(timezone.utc) - self.newest_loaded).total_seconds()


class LocalPipeline:
    """Replay server (optional), producer thread and Spark stream, started and stopped together.

    - ``producer``, ``stream``: the two parts' settings (:func:`cryptopipe.settings.producer_config`,
      :func:`cryptopipe.settings.stream_config`);
    - ``replay_port``: serve the bundled replay on this port (0: any free one) and poll
      it instead of ``producer.base_url``; None polls the configured API;
    - ``max_polls``: the producer stops after this many polls;
    - ``dashboard_port``: serve the dashboard on this port (0: any free one); None: no dashboard;
    - ``verbose``: Spark's own log lines (its start-up warnings, say) too; by default its
      JVM logs errors only, so the terminal shows cryptopipe's lines;
    - ``processing``: ``stream`` (in this process) or ``scheduled`` (a run every ``every_seconds``).
    """

    def __init__(
        self,
        layout: LocalLayout,
        producer: ProducerConfig,
        stream: StreamConfig,
        *,
        replay_port: int | None = None,
        max_polls: int | None = None,
        dashboard_port: int | None = None,
        verbose: bool = False,
        thresholds: Thresholds | None = None,
        processing: str = "stream",
        every_seconds: float = 60.0,
    ) -> None:
        if processing not in PROCESSING_MODES:
            raise PipelineError(f"processing {processing!r} is not one of {', '.join(PROCESSING_MODES)}")
        self.layout = layout
        self.producer = producer
        self.stream = stream
        self.replay_port = replay_port
        self.max_polls = max_polls
        self.dashboard_port = dashboard_port
        self.verbose = verbose
        self._dashboard = None
        self._stop = threading.Event()
        self._replay = None
        self._poller = None
        self._producer_thread: threading.Thread | None = None
        self._own_spark = None
        self._stream = None
        self._lock_fd: int | None = None
        self._producer_stop = threading.Event()
        self._watch_thread: threading.Thread | None = None
        self._watch = None
        self.thresholds = thresholds
        self.processing = processing
        self.every_seconds = every_seconds
        self._runs: ScheduledRuns | None = None
        self._runs_thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        """Both the producer and the stream have started (their status is readable)."""
        return self._poller is not None and (self._stream is not None or self._runs is not None)

    @property
    def replay_url(self) -> str | None:
        return self._replay.url if self._replay is not None else None

    @property
    def dashboard_url(self) -> str | None:
        return self._dashboard.url if self._dashboard is not None else None

    def start(self) -> LocalPipeline:
        """Check the machine, then start replay, producer and stream, in that order."""
        require_java()
        self._lock_fd = claim_data_dir(self.layout)
        try:
            if self.replay_port:
                require_free_port(self.replay_port, "replay server")
            require_unlocked_warehouse(self.layout.warehouse)
            if self.dashboard_port is not None:
                self._start_dashboard()
            for folder in (self.layout.landing, self.layout.archive, self.layout.staging, self.layout.spool):
                folder.mkdir(parents=True, exist_ok=True)
            self._start_producer()
            self._start_stream()
            self._start_watch()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_dashboard(self) -> None:
        # Started before Spark so a busy port fails in a second, not after its start-up.
        from cryptopipe.dashboard import DashboardError, DashboardServer

        try:
            self._dashboard = DashboardServer(
                self.layout.warehouse, port=self.dashboard_port, vs_currencies=self.producer.vs_currencies,
                alerts=functools.partial(dashboard_alerts, self.layout),
            ).start()
        except (DashboardError, OSError) as error:
            raise PipelineError(f"the dashboard cannot start on port {self.dashboard_port}: {error}") from None

    def _start_producer(self) -> None:
        from producer import Poller

        config = self.producer
        if self.replay_port is not None:
            from cryptopipe.replay.server import ReplayServer

            self._replay = ReplayServer(
                port=self.replay_port, frame_seconds=config.interval_seconds, rebase=True
            ).start()
            # Known once the server listens; a loopback http URL, which every plan's checks take.
            config = config.model_copy(update={"base_url": self._replay.url})
            log.info("using the bundled CoinGecko replay at %s (no internet needed)", self._replay.url)
        self._poller = Poller.from_config(config)
        self._producer_stop = threading.Event()
        self._producer_thread = threading.Thread(
            target=self._poller.run, args=(self._producer_stop,), kwargs={"max_polls": self.max_polls},
            name="producer", daemon=True,
        )
        self._producer_thread.start()

    def _start_stream(self) -> None:
        if self.processing == "scheduled":
            self._start_runs()
            return
        from pyspark.sql import SparkSession

        from jobs import build_session, start_stream

        # A session that already runs in this process (a notebook's, a test's) is
        # used and left running; one started here is stopped here.
        spark = SparkSession.getActiveSession()
        if spark is None:
            spark = self._own_spark = build_session(
                "cryptopipe-local",
                scratch_root=self.layout.spark_scratch,
                ui=False,
                quiet=not self.verbose,
                conf={"spark.ui.showConsoleProgress": "false"},
            )
        self._stream = start_stream(spark, self.stream)
        if self._watch is not None:
            self._watch.started()

    def _start_runs(self) -> None:
        """Scheduled mode: a run now and one each slot of ``every_seconds``, checked every second."""
        stream = self.stream
        self._runs = ScheduledRuns(self.layout, self.every_seconds, on_run_end=self._run_ended, job_options={
            "trigger_seconds": stream.trigger_seconds, "max_files_per_trigger": stream.max_files_per_trigger,
            "watermark": stream.watermark, "shuffle_partitions": stream.shuffle_partitions})
        self._runs.tick()

        def timer() -> None:
            while not self._stop.wait(1.0):
                self._runs.tick()

        self._runs_thread = threading.Thread(target=timer, name="scheduled-runs", daemon=True)
        self._runs_thread.start()

    def _run_ended(self, result: RunResult) -> None:
        if self._watch is not None:
            self._watch.run_ended(result.ok)

    def _start_watch(self) -> None:
        """Write the stream's state every second for ``cryptopipe status`` (:mod:`cryptopipe.health`)."""
        if self.processing == "scheduled":
            default = Thresholds.for_schedule(self.producer.interval_seconds, self.every_seconds, LOCAL_RUN_SECONDS)
        else:
            default = Thresholds.from_intervals(self.producer.interval_seconds, self.stream.trigger_seconds)
        thresholds = self.thresholds or default
        self._watch = StreamWatch(self.layout.stream_state, thresholds)
        self._watch.started()

        def watch() -> None:
            while True:
                self._write_watch()
                if self._stop.wait(WRITE_SECONDS):
                    return

        self._watch_thread = threading.Thread(target=watch, name="stream-watch", daemon=True)
        self._watch_thread.start()

    def _write_watch(self) -> None:
        if self._runs is not None:
            totals = self._loading()
            self._watch.record(self._runs.running, totals["rows_read"], totals["rows_quarantined"])
            return
        stream = self._stream
        totals = stream.status() if stream is not None else None
        self._watch.record(stream is not None and stream.is_active,
                           totals.rows_in if totals else 0, totals.rows_quarantined if totals else 0)

    def stop_producer(self) -> None:
        """Stop polling (the poll in flight finishes); :meth:`start_producer` starts again."""
        self._producer_stop.set()
        if self._producer_thread is not None:
            self._producer_thread.join(timeout=30)

    def start_producer(self) -> None:
        """Start a stopped producer again, on the same spool and landing zone."""
        self._producer_thread = threading.Thread(
            target=self._poller.run, args=(self._producer_stop,), name="producer", daemon=True)
        self._producer_stop.clear()
        self._producer_thread.start()

    def stop_stream(self) -> None:
        """Stop the stream (the batch in flight finishes); :meth:`start_stream` starts it again."""
        if self._stream is not None:
            self._stream.stop()
            if self._watch is not None:
                self._write_watch()  # `cryptopipe status` shows it at once

    def start_stream(self) -> None:
        """Start the stream again on its checkpoint, as a restarted driver does."""
        self._start_stream()

    def _loading(self) -> dict[str, Any]:
        """The stream's side of :class:`Status`: the running stream's totals, or in scheduled mode
        the finished runs' (from their batch lines) with the newest tick from the warehouse."""
        if self._runs is not None:
            results = list(self._runs.results)
            return {"batches": sum(r.batches for r in results), "rows_read": sum(r.records_in for r in results),
                    "rows_loaded": sum(r.loaded for r in results),
                    "rows_quarantined": sum(r.quarantined for r in results),
                    "newest_loaded": _newest_tick(self.layout)}
        streamed = self._stream.status()
        return {"batches": streamed.batches, "rows_read": streamed.rows_in, "rows_loaded": streamed.rows_loaded,
                "rows_quarantined": streamed.rows_quarantined, "newest_loaded": streamed.newest_event_time}

    def status(self) -> Status:
        produced = self._poller.stats.snapshot()
        return Status(polls=produced.polls, rows_landed=produced.rows_landed, rows_rejected=produced.records_rejected,
                      **self._loading())

    @property
    def producer_done(self) -> bool:
        """The producer has made its last poll (``max_polls`` reached)."""
        return self._producer_thread is not None and not self._producer_thread.is_alive()

    def caught_up(self) -> bool:
        """The producer is done and the stream has read every row it landed."""
        if not self.producer_done:
            return False
        status = self.status()
        return status.rows_read >= status.rows_landed

    def check_stream(self) -> None:
        """Raise if the stream has died (its error is Spark's, with the cause)."""
        # Scheduled mode: a failed run is the next slot's to replay, and the health files say so.
        if self._stream is not None and not self._stream.is_active:
            self._stream.await_termination(0)
            raise PipelineError("the stream stopped unexpectedly; see the log above")

    def stop(self) -> None:
        """Stop in reverse order: producer first, so nothing lands after the stream stops."""
        if self._dashboard is not None:
            self._dashboard.stop()
        self._stop.set()
        self._producer_stop.set()
        if self._watch_thread is not None:
            self._watch_thread.join(timeout=5)
        if self._producer_thread is not None:
            self._producer_thread.join(timeout=30)
        if self._poller is not None:
            self._poller.close()
        self.stop_stream()
        if self._runs_thread is not None:
            self._runs_thread.join(timeout=5)
        if self._runs is not None:
            self._runs.stop()
        if self._own_spark is not None:
            self._own_spark.stop()
        if self._replay is not None:
            self._replay.stop()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> LocalPipeline:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _newest_tick(layout: LocalLayout) -> datetime | None:
    """The newest ``last_updated`` in the local warehouse, or None before it has one."""
    from jobs.loaders.duckdb import open_reader

    if not layout.warehouse.exists():
        return None
    with open_reader(layout.warehouse) as con:
        (newest,) = con.execute(f"SELECT max(last_updated) FROM {TICKS_TABLE}").fetchone()
    return newest
