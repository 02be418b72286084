"""Parsing landing lines: exact values for good lines, a reason for every bad one."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import pytest

from core.schema import MAX_CLOCK_SKEW, market_tick
from core.tables import RAW_LINE_CUT, RAW_LINE_KEPT_CHARS
from jobs.validate import NO_RECORDS, NOT_AN_OBJECT, PARTIAL_RESULTS_CONF, RAW_LINE, REASON, SOURCE_FILE, parse_lines

from .conftest import line, landing_record

pytestmark = pytest.mark.spark


def _utc(collected: datetime) -> datetime:
    # collect() hands timestamps over as naive datetimes in this process's local zone.
    return collected.astimezone(timezone.utc)


def _with(**changes: object) -> str:
    record = landing_record()
    for name, value in changes.items():
        if value is _DROP:
            del record[name]
        else:
            record[name] = value
    return json.dumps(record)


_DROP = object()
REQUIRED = [spec.name for spec in market_tick().fields if not spec.nullable]
_SOON = (datetime.now(timezone.utc) + MAX_CLOCK_SKEW / 2).strftime("%Y-%m-%dT%H:%M:%S.000Z")

# Every line is parsed in one Spark job (a job costs about a second here); each
# is filed under a made-up source file naming its case.
GOOD = {
    "tiny price and nulls": line(
        "tiny-coin", current_price=1.2e-08, market_cap_rank=None, fully_diluted_valuation=None, max_supply=None
    ),
    "offset timestamp": _with(last_updated="2025-06-01T14:00:03.123+02:00"),
    "event time within the clock skew": _with(last_updated=_SOON),
}
BAD = {
    "garbage": ("this is not json", NOT_AN_OBJECT),
    "html error page": ("<html><body>502 Bad Gateway</body></html>", NOT_AN_OBJECT),
    "half-written line": ('{"coin_id": "bitcoin", "symbol": "bt', NOT_AN_OBJECT),
    "array": ("[1, 2]", NOT_AN_OBJECT),
    "number": ("42", NOT_AN_OBJECT),
    "price as text": (_with(price="64000.5"), "price: not a number"),
    "price NaN": (_with(price="NaN"), "price: not a number"),
    "price boolean": (_with(price=True), "price: not a number"),
    "price negative": (_with(price=-1.0), "price: -1.0 is below the minimum 0"),
    "price null": (_with(price=None), "price: missing or null"),
    "price overflowing a double": (line().replace('"price": 64000.5', '"price": 1e999'), "price: not a finite number"),
    "market cap negative": (_with(market_cap=-5), "market_cap: -5.0 is below the minimum 0"),
    "rank fractional": (_with(market_cap_rank=1.5), "market_cap_rank: not an integer"),
    "rank zero": (_with(market_cap_rank=0), "market_cap_rank: 0 is below the minimum 1"),
    "coin id missing": (_with(coin_id=_DROP), "coin_id: missing or null"),
    "coin id empty": (_with(coin_id=""), "coin_id: empty"),
    "event time as epoch seconds": (
        _with(last_updated=1748779203),
        "last_updated: '1748779203' is not a timestamp like 2025-06-01T12:00:03.123Z",
    ),
    "event time without milliseconds": (
        _with(last_updated="2025-06-01T12:00:03Z"),
        "last_updated: '2025-06-01T12:00:03Z' is not a timestamp like 2025-06-01T12:00:03.123Z",
    ),
    "event time far in the future": (
        _with(last_updated="2999-01-01T00:00:00.000Z"),
        f"last_updated: 2999-01-01T00:00:00.000Z is more than {MAX_CLOCK_SKEW} in the future",
    ),
    "several problems": (
        _with(price="cheap", market_cap=-1.0, poll_id=None),
        "price: not a number; market_cap: -1.0 is below the minimum 0; poll_id: missing or null",
    ),
    "empty object": ("{}", "; ".join(f"{name}: missing or null" for name in REQUIRED)),
    "file without records": (None, NO_RECORDS),  # the stream's row for an empty landing file
    # A whole /coins/markets answer landed as one line (about 160 KB): quarantined, its raw line cut.
    "a whole markets array": (json.dumps([landing_record(f"coin-{i:03d}", name="é" * 100) for i in range(250)]), NOT_AN_OBJECT),
    "a long line at the limit": ("€" * RAW_LINE_KEPT_CHARS, NOT_AN_OBJECT),
}


@pytest.fixture(scope="module")
def parsed(spark) -> dict[str, dict]:
    session = spark.newSession()
    session.conf.set(PARTIAL_RESULTS_CONF, "true")
    cases = {**GOOD, **{case: text for case, (text, _) in BAD.items()}}
    frame = session.createDataFrame(list(zip(cases.values(), cases.keys())), f"value string, {SOURCE_FILE} string")
    return {row[SOURCE_FILE]: row.asDict() for row in parse_lines(frame).collect()}


def test_valid_line_parses_to_exact_values(parsed):
    row = parsed["tiny price and nulls"]
    assert row[REASON] is None
    assert row["price"] == 1.2e-08
    assert row["market_cap_rank"] is None and row["max_supply"] is None
    assert row["circulating_supply"] == 19.7e6
    assert _utc(row["last_updated"]) == datetime(2025, 6, 1, 12, 0, 3, 123000, tzinfo=timezone.utc)
    assert _utc(row["ingested_at"]) == datetime(2025, 6, 1, 12, 0, 5, 1000, tzinfo=timezone.utc)


def test_offset_timestamp_is_read_as_the_same_instant(parsed):
    row = parsed["offset timestamp"]
    assert row[REASON] is None
    assert _utc(row["last_updated"]) == datetime(2025, 6, 1, 12, 0, 3, 123000, tzinfo=timezone.utc)


def test_event_time_within_the_clock_skew_is_valid(parsed):
    assert parsed["event time within the clock skew"][REASON] is None


@pytest.mark.parametrize("case", BAD)
def test_bad_line_gets_its_reason(parsed, case):
    assert parsed[case][REASON] == BAD[case][1]


def test_wrong_typed_field_leaves_the_rest_of_the_line_parsed(parsed):
    row = parsed["price as text"]
    assert (row["coin_id"], row["market_cap"], row["price"]) == ("bitcoin", 1.26e12, None)


def test_file_without_records_is_quarantined_with_an_empty_raw_line(parsed):
    row = parsed["file without records"]
    assert (row[REASON], row[RAW_LINE]) == (NO_RECORDS, "")


def test_a_long_raw_line_keeps_its_head_its_length_and_its_sha256(parsed):
    raw = BAD["a whole markets array"][0]
    assert len(raw.encode()) > 150_000
    kept = parsed["a whole markets array"][RAW_LINE]
    assert kept == raw[:RAW_LINE_KEPT_CHARS] + RAW_LINE_CUT.format(
        bytes=len(raw.encode()), sha256=hashlib.sha256(raw.encode()).hexdigest())
    assert len(kept.encode()) <= 4 * RAW_LINE_KEPT_CHARS + 200


def test_a_line_at_the_limit_is_kept_whole(parsed):
    assert parsed["a long line at the limit"][RAW_LINE] == "€" * RAW_LINE_KEPT_CHARS


def test_parse_lines_refuses_a_session_without_partial_results(spark):
    session = spark.newSession()
    session.conf.set(PARTIAL_RESULTS_CONF, "false")
    frame = session.createDataFrame([("{}", "x")], f"value string, {SOURCE_FILE} string")
    with pytest.raises(ValueError, match=PARTIAL_RESULTS_CONF):
        parse_lines(frame)


def test_the_clock_skew_limit_is_exactly_where_the_constant_puts_it(spark):
    """Just inside and just past MAX_CLOCK_SKEW ahead of the read: a unit mix-up (hours for
    seconds) would accept event times months ahead, and the far-future case above would
    not notice."""
    session = spark.newSession()
    session.conf.set(PARTIAL_RESULTS_CONF, "true")
    now = datetime.now(timezone.utc)
    stamps = {case: (now + MAX_CLOCK_SKEW + offset).strftime("%Y-%m-%dT%H:%M:%S.000Z")
              for case, offset in (("inside", -timedelta(minutes=2)), ("past", timedelta(minutes=2)))}
    frame = session.createDataFrame([(_with(last_updated=stamp), case) for case, stamp in stamps.items()],
                                    f"value string, {SOURCE_FILE} string")
    reasons = {row[SOURCE_FILE]: row[REASON] for row in parse_lines(frame).collect()}
    assert reasons == {
        "inside": None,
        "past": f"last_updated: {stamps['past']} is more than {MAX_CLOCK_SKEW} in the future",
    }
