"""The local pipeline's signals, read from its files and warehouse, judged against the alerts' thresholds.

The thresholds and the verdicts are core/health.py's; only where the signals come
from differs from the cloud (see :mod:`cryptopipe.health`).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from core.health import (
    CREDITS_SHORT,
    QUARANTINE_WINDOW_SECONDS,
    Observation,
    Thresholds,
    Verdict,
    describe_threshold,
    judge,
)
from core.tables import BACKFILL, ORIGIN, TICKS_TABLE
from cryptopipe.health.state import GONE_AFTER_SECONDS, HOUR_SECONDS, read_json
from core.layout import LocalLayout
from cryptopipe.settings import default_interval_seconds, default_trigger_seconds


def observe(layout: LocalLayout, now: float | None = None) -> tuple[Observation, Thresholds | None]:
    """What the files under the layout and its warehouse say now; the run's thresholds if it wrote any."""
    now = time.time() if now is None else now
    stream = read_json(layout.stream_state)
    heartbeat = read_json(layout.producer_heartbeat)
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
    thresholds = Thresholds(**stream["thresholds"]) if stream else None
    runs = (stream or {}).get("runs", {})
    if thresholds is not None and thresholds.schedule_seconds is not None:
        # Scheduled mode: silence is the time since a run last ended well (or since the runs began).
        last_running = runs.get("last_ok_at") or runs.get("since")
    seen = Observation(
        data_age_seconds=_data_age(layout.warehouse, now),
        producer_heartbeat_age_seconds=None if beat is None else max(now - beat, 0.0),
        stream_running=running,
        stream_silence_seconds=None if last_running is None else max(now - last_running, 0.0),
        driver_starts_last_hour=len([t for t in (stream or {}).get("starts", []) if t >= now - HOUR_SECONDS]),
        lines_last_window=lines,
        quarantined_last_window=quarantined,
        last_run_failed=bool(runs.get("last_failed")),
    )
    return seen, thresholds


def credits_verdict(heartbeat: dict | None, thresholds: Thresholds) -> Verdict | None:
    """The credits' verdict from the producer's heartbeat; None when its plan has no monthly cap
    (or no producer wrote one)."""
    credits = (heartbeat or {}).get("credits")
    if not credits or credits["credits"] is None:
        return None
    left = f"{credits['remaining']:,} of {credits['credits']:,} left"
    if credits["short"]:
        configured, stretched = credits["configured_interval_seconds"], credits["interval_seconds"]
        value = (f"{left}, out at {credits['runs_out_at']} polling every {configured:g} s: "
                 f"polls every {stretched:.0f} s, back-fill waits")
    else:
        value = f"{left}, {credits['needed_to_month_end']:,} needed to {credits['month_ends_at'][:10]}"
    return Verdict(CREDITS_SHORT, not credits["short"], value, describe_threshold(CREDITS_SHORT, thresholds))


def pipeline_health(layout: LocalLayout, now: float | None = None) -> list[Verdict]:
    """Each alert's verdict for the local pipeline on ``layout``, with the thresholds its run
    wrote (a live run's defaults when none did), and the credits' when the plan has a monthly cap."""
    seen, thresholds = observe(layout, now)
    thresholds = thresholds or live_thresholds()
    credits = credits_verdict(read_json(layout.producer_heartbeat), thresholds)
    return judge(seen, thresholds) + ([credits] if credits else [])


def live_thresholds() -> Thresholds:
    """The cloud's thresholds for a live run's defaults: the producer's interval, the local warehouse's trigger."""
    return Thresholds.from_intervals(default_interval_seconds("live"), default_trigger_seconds())


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
