"""validate: bodies that are not pages fail the attempt; bad records are rejected alone."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from core.schema import MAX_CLOCK_SKEW
from cryptopipe.replay import frame
from producer import BadPayload, RateLimited, parse_page, validate_records
from producer.validate import to_ndjson

STAMPS = dict(vs_currency="usd", ingested_at=datetime(2025, 6, 1, 12, 0, 5, tzinfo=timezone.utc), poll_id="p1")


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body><h1>502 Bad Gateway</h1></body></html>",
        b'[{"id":"bitcoin","symbol":"btc","na',
        b'{"status":{"error_code":500,"error_message":"Internal"}}',
        b'{"error":"coin not found"}',
        b"[]",
        b'"a string"',
    ],
    ids=["html", "truncated", "error-object", "error-string", "empty-list", "not-a-list"],
)
def test_parse_page_raises_bad_payload_when_body_is_not_a_page(body):
    with pytest.raises(BadPayload):
        parse_page(body)


def test_parse_page_raises_rate_limited_when_error_object_says_429():
    with pytest.raises(RateLimited, match="429"):
        parse_page(b'{"status":{"error_code":429,"error_message":"You\'ve exceeded the Rate Limit."}}')


def test_validate_records_rejects_bad_records_with_reasons_and_keeps_the_rest():
    records = frame(0)[:5]
    records[1] = {**records[1], "current_price": "64000.5"}
    records[3] = {k: v for k, v in records[3].items() if k != "last_updated"}
    records.append(42)

    result = validate_records(records, **STAMPS)

    assert [r["coin_id"] for r in result.accepted] == [records[i]["id"] for i in (0, 2, 4)]
    assert [(r.index, r.coin_id) for r in result.rejected] == [(1, records[1]["id"]), (3, records[3]["id"]), (5, None)]
    assert "current_price: Input should be a valid number (got '64000.5')" in result.rejected[0].reason
    assert result.rejected[1].reason == "last_updated: Field required"
    assert result.reasons() == {"current_price: float_type": 1, "last_updated: missing": 1, "not_an_object": 1}


def test_validate_records_accepts_nulls_and_tiny_prices_when_schema_allows():
    record = {**frame(0)[0], "current_price": 1.2e-08, "max_supply": None, "market_cap_rank": None, "roi": None}
    result = validate_records([record], **STAMPS)
    assert not result.rejected
    tick = result.accepted[0]
    assert tick["price"] == 1.2e-08 and tick["max_supply"] is None and tick["market_cap_rank"] is None
    assert tick["ingested_at"] == "2025-06-01T12:00:05.000Z" and tick["poll_id"] == "p1"


def test_to_ndjson_writes_one_object_per_line_when_records_accepted():
    result = validate_records(frame(0)[:3], **STAMPS)
    data = to_ndjson(result.accepted)
    assert data.endswith(b"\n")
    assert [json.loads(line) for line in data.splitlines()] == result.accepted


def test_the_clock_skew_limit_is_exactly_where_the_constant_puts_it():
    now = datetime.now(timezone.utc)
    stamps = [(now + MAX_CLOCK_SKEW + offset).strftime("%Y-%m-%dT%H:%M:%S.000Z")
              for offset in (-timedelta(minutes=2), timedelta(minutes=2))]
    records = [{**frame(0)[0], "last_updated": stamp} for stamp in stamps]
    result = validate_records(records, **STAMPS)
    assert [r["last_updated"] for r in result.accepted] == [stamps[0]]
    assert [r.index for r in result.rejected] == [1]
    assert "in the future" in result.rejected[0].reason
