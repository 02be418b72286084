"""The pipeline's health signals, defined once: the log vocabulary, the thresholds and the alerts.

Three readers share this module, so they cannot drift apart:

- the workloads write the lines the cloud alerts count: the producer's ``poll``
  event (``producer/poller.py``) and the stream's ``stream_started``, per-batch and
  idle lines (``jobs/metrics.py``), built from the constants here;
- the CDKTF app (``cdktf/infra/stacks/alerts.py``) builds its log-based metric filters and alert
  policies from the same constants and :class:`Thresholds`;
- ``cryptopipe status`` and the dashboard's health endpoint judge a local
  pipeline with :func:`judge`, against the same thresholds.

Why data age is the symptom, and which causes get their own alert:
docs/OPERATIONS.md, docs/ARCHITECTURE.md §7.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

# --- the log vocabulary -------------------------------------------------------

#: The producer's JSON lines name their kind in this field (producer/logs.py).
EVENT_FIELD = "event"
#: The producer's event for one poll: its absence means the producer is down or stuck.
POLL_EVENT = "poll"
#: The producer's event on where the month's CoinGecko credits stand (producer/credits.py):
#: at start, after each check of the account's count, and whenever the projection turns.
CREDITS_EVENT = "credits"
#: Its field that is true while the credits, at the configured interval, run out before the
#: month ends (polls are stretched and back-fill waits meanwhile).
CREDITS_SHORT_FIELD = "short"

#: First word of the stream's line when a driver starts (one per driver restart).
STREAM_STARTED = "stream_started"
#: First word of the stream's fields on each loaded micro-batch.
STREAM_BATCH = "stream_batch"
#: First word of the stream's line while it runs with nothing new to read.
STREAM_IDLE = "stream_idle"
#: First word of the line a ``--available-now`` run writes when it has drained what had landed
#: and ends well: in scheduled mode its absence means a run was missed or failed.
RUN_FINISHED = "run_finished"
#: Per-batch fields, ``name=value``: records read, lines quarantined, and the age in
#: seconds of the newest tick the batch loaded (absent when it loaded none).
RECORDS_FIELD = "records_in"
QUARANTINED_FIELD = "quarantined"
DATA_AGE_FIELD = "data_age_seconds"


def event_marker(event: str) -> str:
    """The text every producer JSON line of ``event`` contains, e.g. ``"event":"poll"``: the
    formatter writes compact JSON, and the closing quote keeps ``poll_overran`` out."""
    return json.dumps({EVENT_FIELD: event}, separators=(",", ":"))[1:-1]


def stream_mark(word: str) -> str:
    """How a stream line of kind ``word`` begins its machine-read part, e.g. ``stream_idle:``:
    the writers put it there and the cloud filters look for it."""
    return f"{word}:"


def batch_fields(records_in: int, quarantined: int, data_age_seconds: float | None) -> str:
    """The machine-read part of the stream's per-batch line."""
    fields = f"{stream_mark(STREAM_BATCH)} {RECORDS_FIELD}={records_in} {QUARANTINED_FIELD}={quarantined}"
    if data_age_seconds is not None:
        fields += f" {DATA_AGE_FIELD}={max(data_age_seconds, 0.0):.1f}"
    return fields


def field_pattern(field: str) -> str:
    """RE2 (and Python) pattern whose one group is the number after ``field=``."""
    return rf"\b{field}=([0-9]+(?:\.[0-9]+)?)"


def read_field(line: str, field: str) -> float | None:
    """The value of ``field`` in ``line``, as the log-based metric's extractor reads it."""
    found = re.search(field_pattern(field), line)
    return float(found.group(1)) if found else None


# --- thresholds --------------------------------------------------------------

#: Cloud Monitoring's smallest absence duration, and its step.
MIN_ABSENCE_SECONDS = 120
#: The window the quarantine rate is measured over.
QUARANTINE_WINDOW_SECONDS = 900
#: The stream writes its idle line at most this often, so a quiet but healthy stream
#: still shows it runs.
IDLE_LINE_SECONDS = 60


def whole_minutes(seconds: float, floor: int = 60) -> int:
    """``seconds`` rounded up to whole minutes (alert durations are), at least ``floor``."""
    return max(floor, 60 * math.ceil(seconds / 60))


@dataclass(frozen=True)
class Thresholds:
    """When a signal turns red. Defaults follow from the poll interval and the trigger."""

    freshness_seconds: int
    """The newest loaded tick may be this old: three polls plus two triggers by default
    (one poll may fail, CoinGecko caches a minute, a file waits up to a trigger and loads in one)."""
    producer_silence_seconds: int
    """No ``poll`` event for this long: the producer is down (three intervals by default)."""
    stream_silence_seconds: int
    """No batch and no idle line from the stream for this long: it is not running."""
    max_driver_restarts_per_hour: int = 3
    """More driver starts than this in an hour: the stream is crash-looping."""
    quarantine_percent: float = 5.0
    """More than this share of the last 15 minutes' lines quarantined: the source's format changed."""
    schedule_seconds: int | None = None
    """Scheduled mode's interval between runs; None: stream mode. In scheduled mode
    ``stream_silence_seconds`` is how long may pass without a run that ended well."""

    @classmethod
    def from_intervals(cls, interval_seconds: float, trigger_seconds: float, **overrides: float) -> Thresholds:
        """The defaults for a producer polling every ``interval_seconds`` and a stream triggering
        every ``trigger_seconds``; ``overrides`` (None values ignored) replace any of them."""
        defaults = {
            "freshness_seconds": whole_minutes(3 * interval_seconds + 2 * trigger_seconds, MIN_ABSENCE_SECONDS),
            "producer_silence_seconds": whole_minutes(3 * interval_seconds, MIN_ABSENCE_SECONDS),
            "stream_silence_seconds": whole_minutes(2 * trigger_seconds + IDLE_LINE_SECONDS, MIN_ABSENCE_SECONDS),
        }
        return cls(**{**defaults, **{key: value for key, value in overrides.items() if value is not None}})

    @classmethod
    def for_schedule(cls, interval_seconds: float, schedule_seconds: float, run_seconds: float,
                     **overrides: float) -> Thresholds:
        """The defaults for scheduled mode: a run every ``schedule_seconds`` that may take up to
        ``run_seconds``. Data age reaches the interval between runs plus a run's time (the ticks
        that landed just after a run wait for the next one to end), plus the polls' slack of
        stream mode; a run that ends well must come within the interval plus a run's time."""
        defaults = {
            "freshness_seconds": whole_minutes(schedule_seconds + run_seconds + 3 * interval_seconds,
                                               MIN_ABSENCE_SECONDS),
            "producer_silence_seconds": whole_minutes(3 * interval_seconds, MIN_ABSENCE_SECONDS),
            "stream_silence_seconds": whole_minutes(schedule_seconds + run_seconds, MIN_ABSENCE_SECONDS),
            "schedule_seconds": int(schedule_seconds),
        }
        return cls(**{**defaults, **{key: value for key, value in overrides.items() if value is not None}})



# --- the alerts ----------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    """One alert: its key (policy name suffix, runbook anchor, status row) and what it means."""

    key: str
    title: str
    threshold: str
    """The :class:`Thresholds` field that decides it."""
    meaning: str
    fires_when: str


ALERTS: tuple[Alert, ...] = (
    Alert("data-freshness", "Data freshness", "freshness_seconds",
          "The symptom users see: the newest tick in the warehouse is too old.",
          "no batch loaded a tick for the threshold, or the batches load only ticks older than it"),
    Alert("producer-down", "Producer down", "producer_silence_seconds",
          "The producer has not finished a poll: the VM, the service or CoinGecko access is down.",
          "no poll event for the threshold"),
    Alert("stream-not-running", "Stream not running", "stream_silence_seconds",
          "The Spark job is not running, or its driver keeps restarting.",
          "the cluster runs no job, or no batch or idle line comes, for the threshold, or more driver starts "
          "in an hour than allowed"),
    Alert("quarantine-rate", "Quarantine rate", "quarantine_percent",
          "Many lines fail validation: CoinGecko's format or our schema changed.",
          "the quarantined share of the last 15 minutes' lines is above the threshold"),
)
#: Scheduled mode's cause alert in place of "Stream not running": nothing runs between runs.
RUN_MISSED = Alert("run-missed", "Scheduled run missed or failed", "stream_silence_seconds",
                   "No scheduled run of the job has ended well for longer than the schedule allows: runs do "
                   "not start, fail, or one hangs.",
                   "no run ended well for the threshold (the interval between runs plus a run's time), or the "
                   "last run failed")
ALERTS_BY_KEY: Mapping[str, Alert] = {alert.key: alert for alert in (*ALERTS, RUN_MISSED)}


def alerts_for(thresholds: Thresholds) -> tuple[Alert, ...]:
    """The alerts of a pipeline with ``thresholds``: :data:`ALERTS`, with :data:`RUN_MISSED` in place
    of "Stream not running" in scheduled mode."""
    if thresholds.schedule_seconds is None:
        return ALERTS
    return tuple(RUN_MISSED if alert.key == "stream-not-running" else alert for alert in ALERTS)


def describe_threshold(alert: Alert, thresholds: Thresholds) -> str:
    """The threshold as a person reads it, e.g. ``7 min`` or ``5 %``."""
    value = getattr(thresholds, alert.threshold)
    if alert.threshold == "quarantine_percent":
        return f"{value:g} %"
    if alert.key == RUN_MISSED.key:
        return f"{_duration(value)} without a good run"
    if alert.threshold == "stream_silence_seconds":
        return f"{_duration(value)} silent, or {thresholds.max_driver_restarts_per_hour} starts/h"
    return _duration(value)


def _duration(seconds: float) -> str:
    return f"{seconds / 60:g} min" if seconds >= 120 and seconds % 60 == 0 else f"{seconds:g} s"


# --- judging a pipeline ---------------------------------------------------------

@dataclass(frozen=True)
class Observation:
    """What someone looking at a pipeline sees now, each None when unknown."""

    data_age_seconds: float | None
    """Age of the newest tick in the warehouse (None: no tick yet)."""
    producer_heartbeat_age_seconds: float | None
    """Time since the producer last finished a poll (None: never)."""
    stream_running: bool
    stream_silence_seconds: float | None
    """Time since the stream last reported (a batch or idle); None: it never has."""
    driver_starts_last_hour: int
    lines_last_window: int
    """Lines read in the last :data:`QUARANTINE_WINDOW_SECONDS`."""
    quarantined_last_window: int
    last_run_failed: bool = False
    """Scheduled mode: the last run that ended did not end well (``stream_silence_seconds`` is then
    the time since the last one that did)."""


@dataclass(frozen=True)
class Verdict:
    """One alert's state now: ``ok`` false is red."""

    alert: Alert
    ok: bool
    value: str
    threshold: str


def judge(seen: Observation, thresholds: Thresholds) -> list[Verdict]:
    """Each alert of :data:`ALERTS` against ``seen``: the local twin of the cloud's conditions."""
    def age(seconds: float | None) -> str:
        return "never" if seconds is None else f"{seconds:.0f} s"

    def within(seconds: float | None, limit: float) -> bool:
        return seconds is not None and seconds <= limit

    share = 100 * seen.quarantined_last_window / seen.lines_last_window if seen.lines_last_window else 0.0
    stream_ok = (seen.stream_running and within(seen.stream_silence_seconds, thresholds.stream_silence_seconds)
                 and seen.driver_starts_last_hour <= thresholds.max_driver_restarts_per_hour)
    run_ok = not seen.last_run_failed and within(seen.stream_silence_seconds, thresholds.stream_silence_seconds)
    states = {
        "run-missed": (run_ok, f"{'running' if seen.stream_running else 'idle'}, last good run "
                       f"{age(seen.stream_silence_seconds)} ago" + (", the last run failed" if seen.last_run_failed
                                                                    else "")),
        "data-freshness": (within(seen.data_age_seconds, thresholds.freshness_seconds), age(seen.data_age_seconds)),
        "producer-down": (within(seen.producer_heartbeat_age_seconds, thresholds.producer_silence_seconds),
                          age(seen.producer_heartbeat_age_seconds)),
        "stream-not-running": (stream_ok, f"{'running' if seen.stream_running else 'stopped'}, last report "
                               f"{age(seen.stream_silence_seconds)} ago, {seen.driver_starts_last_hour} starts/h"),
        "quarantine-rate": (share <= thresholds.quarantine_percent,
                            f"{share:.1f} % of {seen.lines_last_window} lines"),
    }
    return [Verdict(alert, *states[alert.key], describe_threshold(alert, thresholds))
            for alert in alerts_for(thresholds)]
