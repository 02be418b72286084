"""core/health.py: the words the workloads write and the cloud reads, and the default thresholds."""

from __future__ import annotations

import logging

from core.health import (
    DATA_AGE_FIELD,
    POLL_EVENT,
    QUARANTINED_FIELD,
    RECORDS_FIELD,
    Thresholds,
    batch_fields,
    event_marker,
    read_field,
)
from producer.logs import JsonFormatter, log_event


def test_the_poll_marker_is_in_the_producers_poll_line_and_not_in_its_neighbours(caplog):
    logger = logging.getLogger("test.health")
    with caplog.at_level(logging.INFO, logger="test.health"):
        for event in (POLL_EVENT, "poll_overran", "producer_started"):
            log_event(logger, logging.INFO, event, accepted=250)
    lines = {record.cryptopipe_event["event"]: JsonFormatter().format(record) for record in caplog.records}
    assert [event for event, line in lines.items() if event_marker(POLL_EVENT) in line] == [POLL_EVENT]


def test_batch_fields_read_back_as_the_metrics_extract_them():
    line = f"batch 3: 12 records in …; {batch_fields(12, 2, 83.24)}"
    assert (read_field(line, RECORDS_FIELD), read_field(line, QUARANTINED_FIELD), read_field(line, DATA_AGE_FIELD)) \
        == (12.0, 2.0, 83.2)
    assert read_field(batch_fields(5, 5, None), DATA_AGE_FIELD) is None  # nothing loaded: no age


def test_default_thresholds_follow_the_intervals_in_whole_minutes_with_monitorings_floor():
    t = Thresholds.from_intervals(60, 120)
    assert (t.freshness_seconds, t.producer_silence_seconds, t.stream_silence_seconds) == (420, 180, 300)
    fast = Thresholds.from_intervals(10, 1)
    assert (fast.freshness_seconds, fast.producer_silence_seconds) == (120, 120)  # absence needs 2 min
    assert Thresholds.from_intervals(60, 120, freshness_seconds=900, quarantine_percent=None).freshness_seconds == 900
