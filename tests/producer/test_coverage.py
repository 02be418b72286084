"""The span arithmetic that clips overlapping back-fills, checked against sets of milliseconds."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from producer.coverage import merged, moment, span_of, uncovered


def _points(spans) -> set[int]:
    return {ms for first, last in spans for ms in range(first, last + 1)}


def test_uncovered_pieces_are_exactly_the_span_less_the_covered_points_in_order_and_apart():
    rng = random.Random(15)
    for _ in range(500):
        covered = merged(
            [(a, a + rng.randrange(0, 8)) for a in (rng.randrange(0, 60) for _ in range(rng.randrange(0, 5)))]
        )
        first = rng.randrange(0, 60)
        span = (first, first + rng.randrange(0, 30))

        pieces = uncovered(span, covered)

        assert _points(pieces) == _points([span]) - _points(covered), (span, covered, pieces)
        assert pieces == merged(pieces) and all(a <= b for a, b in pieces)  # sorted, disjoint, not touching
        assert _points(merged([*covered, *pieces])) == _points(covered) | _points([span])


def test_merged_joins_overlapping_and_touching_spans_only():
    assert merged([(10, 20), (0, 5), (21, 30), (6, 8), (40, 41), (29, 35)]) == [(0, 8), (10, 35), (40, 41)]


def test_a_span_holds_the_whole_milliseconds_from_start_to_end():
    start = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
    first, last = span_of(start + timedelta(microseconds=1500), start + timedelta(minutes=5, microseconds=999))
    assert (moment(first), moment(last)) == (start + timedelta(milliseconds=2), start + timedelta(minutes=5))
