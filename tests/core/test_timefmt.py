"""Times as text: UTC, milliseconds (truncated), a Z; the basic layout for names."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from core.timefmt import utc_millis

AT = datetime(2025, 6, 1, 14, 0, 3, 123987, tzinfo=timezone(timedelta(hours=2)))


def test_utc_millis_converts_to_utc_and_truncates_to_the_millisecond():
    assert utc_millis(AT) == "2025-06-01T12:00:03.123Z"


def test_utc_millis_basic_layout_has_no_separators_and_sorts_in_time_order():
    assert utc_millis(AT, basic=True) == "20250601T120003123Z"
    assert utc_millis(AT, basic=True) < utc_millis(AT + timedelta(milliseconds=1), basic=True)


def test_utc_millis_pads_small_milliseconds():
    assert utc_millis(datetime(2025, 1, 2, 3, 4, 5, 7000, tzinfo=timezone.utc)) == "2025-01-02T03:04:05.007Z"
