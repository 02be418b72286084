"""A local pipeline's health: the cloud alerts' signals, read on one machine and judged alike.

The thresholds and the verdicts are core/health.py's, the same the CDKTF app turns
into Cloud Monitoring policies; only where the signals come from differs:

| signal | cloud (cdktf/alerts.py) | here |
|---|---|---|
| data age | the batch lines' ``data_age_seconds`` | ``max(last_updated)`` in the DuckDB warehouse |
| producer heartbeat | ``poll`` events in Cloud Logging | the producer's heartbeat file, written every poll |
| stream state | batch and idle lines; ``stream_started`` lines | :class:`StreamWatch`'s file, written every second by ``cryptopipe up`` |
| quarantine rate | quarantined over read lines, 15 min | the same, from the stream's running totals |

``cryptopipe status`` (another process than ``cryptopipe up``) reads the files and
the warehouse: :func:`pipeline_health`.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import deque
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from rich.table import Table

from core.health import QUARANTINE_WINDOW_SECONDS, Observation, Thresholds, Verdict, judge
from core.tables import BACKFILL, ORIGIN, TICKS_TABLE
from cryptopipe.local import LIVE_INTERVAL_SECONDS

#: How often ``cryptopipe up`` writes its stream's state; a file older than a few of
#: these means the run is gone.
WRITE_SECONDS = 1.0
GONE_AFTER_SECONDS = 5 * WRITE_SECONDS
_HOUR = 3600.0
#: The files under the data directory (cryptopipe/local.py LocalLayout names them).
STREAM_FILE = "stream-health.json"
PRODUCER_HEARTBEAT_FILE = "producer-heartbeat.json"


def _write_json(path: Path, content: dict) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(content))
    os.replace(temp, path)  # a reader sees the old file or the new one, never half of one


class StreamWatch:
    """What the local runner knows of its stream, kept in a file for ``cryptopipe status``."""

    def __init__(self, path: Path, thresholds: Thresholds) -> None:
        self.path = path
        self.thresholds = thresholds
        self._starts: deque[float] = deque()
        self._samples: deque[tuple[float, int, int]] = deque()  # (time, lines, quarantined), cumulative
        self._lines = self._quarantined = 0
        self._last_totals = (0, 0)
        self._last_running_at: float | None = None
        self._before_window = (0.0, 0, 0)  # the totals as the window began
        self._lock = threading.Lock()  # the watch thread and a stop both record

    def started(self, now: float | None = None) -> None:
        """A stream (a driver, in the cloud) started: counts towards the restarts per hour."""
        self._starts.append(time.time() if now is None else now)
        self._last_totals = (0, 0)  # a new stream counts from zero

    def record(self, running: bool, lines: int, quarantined: int, now: float | None = None) -> None:
        """The stream's state and its running totals now; writes the file."""
        with self._lock:
            self._record(running, lines, quarantined, time.time() if now is None else now)

    def _record(self, running: bool, lines: int, quarantined: int, now: float) -> None:
        self._lines += max(lines - self._last_totals[0], 0)
        self._quarantined += max(quarantined - self._last_totals[1], 0)
        self._last_totals = (lines, quarantined)
        if running:
            self._last_running_at = now
        self._samples.append((now, self._lines, self._quarantined))
        while self._samples and self._samples[0][0] < now - QUARANTINE_WINDOW_SECONDS:
            self._before_window = self._samples.popleft()
        while self._starts and self._starts[0] < now - _HOUR:
            self._starts.popleft()
        _write_json(self.path, {
            "written_at": now, "running": running, "last_running_at": self._last_running_at,
            "starts": list(self._starts), "window": [self._before_window, *self._samples], "thresholds": asdict(self.thresholds),
        })


def default_thresholds(interval_seconds: float, trigger_seconds: float) -> Thresholds:
    """The cloud's defaults for these intervals (a local run may pass smaller ones)."""
    return Thresholds.from_intervals(interval_seconds, trigger_seconds)


def observe(root: Path, warehouse: Path, now: float | None = None) -> tuple[Observation, Thresholds | None]:
    """What the files under ``root`` and the warehouse say now; the run's thresholds if it wrote any."""
    now = time.time() if now is None else now
    stream = _read_json(root / STREAM_FILE)
    heartbeat = _read_json(root / PRODUCER_HEARTBEAT_FILE)
    beat = datetime.fromisoformat(heartbeat["time"]).timestamp() if heartbeat else None
    running = bool(stream) and stream["running"] and now - stream["written_at"] <= GONE_AFTER_SECONDS
    # The window's lines: the newest totals less those before the window (the file's first sample).
    samples = (stream or {}).get("window", [])
    inside = [sample for sample in samples[1:] if sample[0] >= now - QUARANTINE_WINDOW_SECONDS]
    before = [sample for sample in samples if sample[0] < now - QUARANTINE_WINDOW_SECONDS]
    start = before[-1] if before else samples[0] if samples else None
    lines = inside[-1][1] - start[1] if inside and start else 0
    quarantined = inside[-1][2] - start[2] if inside and start else 0
    last_running = (stream or {}).get("last_running_at")
    seen = Observation(
        data_age_seconds=_data_age(warehouse, now),
        producer_heartbeat_age_seconds=None if beat is None else max(now - beat, 0.0),
        stream_running=running,
        stream_silence_seconds=None if last_running is None else max(now - last_running, 0.0),
        driver_starts_last_hour=len([t for t in (stream or {}).get("starts", []) if t >= now - _HOUR]),
        lines_last_window=lines,
        quarantined_last_window=quarantined,
    )
    return seen, Thresholds(**stream["thresholds"]) if stream else None


def pipeline_health(root: Path, warehouse: Path, now: float | None = None) -> list[Verdict]:
    """Each alert's verdict for the local pipeline under ``root``, with the thresholds its run
    wrote (a live run's defaults when none did)."""
    seen, thresholds = observe(root, warehouse, now)
    return judge(seen, thresholds or default_thresholds(LIVE_INTERVAL_SECONDS, 1.0))


def status_table(verdicts: list[Verdict]) -> Table:
    """The verdicts as ``cryptopipe status`` prints them."""
    table = Table("alert", "state", "now", "red when over", "runbook")
    for verdict in verdicts:
        state = "[green]ok[/]" if verdict.ok else "[bold red]RED[/]"
        table.add_row(verdict.alert.title, state, verdict.value, verdict.threshold,
                      f"docs/OPERATIONS.md, {verdict.alert.title}")
    return table


def as_json(verdicts: list[Verdict]) -> list[dict]:
    """The verdicts as the dashboard's health endpoint answers them."""
    return [{"alert": v.alert.key, "title": v.alert.title, "ok": v.ok, "value": v.value, "threshold": v.threshold}
            for v in verdicts]



def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _data_age(warehouse: Path, now: float) -> float | None:
    """Seconds since the newest live tick's ``last_updated``; None without a warehouse or a tick.
    Back-filled rows fill the past and never make the data fresh (as the job's batch line)."""
    from jobs.loaders.duckdb import open_reader

    if not warehouse.exists():
        return None
    with open_reader(warehouse) as con:
        (newest,) = con.execute(
            f"SELECT epoch(max(last_updated)) FROM {TICKS_TABLE} WHERE {ORIGIN} IS DISTINCT FROM ?", [BACKFILL]
        ).fetchone()
    return None if newest is None else max(now - newest, 0.0)
