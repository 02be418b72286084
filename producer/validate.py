"""From a ``/coins/markets`` (or ``market_chart/range``) response body to landing lines and rejections.

Two levels, two outcomes. A body that is not a non-empty JSON list (an HTML page, a
truncated body, an error object, ``[]``) says nothing about any record: it is a failed
attempt (:func:`parse_page` raises a retryable error). A list is a page: each of its
records is checked against the one schema (``core.schema.record_model``) on its
own, so one bad record is rejected with its reason while the rest of the page lands.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from core.schema import record_model
from producer.errors import BadPayload, RateLimited


@dataclass(frozen=True)
class Rejection:
    """One record that failed validation."""

    index: int
    """Position of the record in its page."""
    coin_id: str | None
    """The record's ``id`` when it had a readable one."""
    reason: str
    """What is wrong, e.g. ``current_price: Input should be a valid number (got '12.5')``."""
    kind: str
    """Short form of the reason for counting, e.g. ``current_price: float_type``."""


@dataclass
class Validation:
    """Accepted landing records and rejections of one or more pages."""

    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[Rejection] = field(default_factory=list)
    newest_last_updated: datetime | None = None

    def extend(self, other: Validation) -> None:
        self.accepted.extend(other.accepted)
        self.rejected.extend(other.rejected)
        if other.newest_last_updated and (
            self.newest_last_updated is None or other.newest_last_updated > self.newest_last_updated
        ):
            self.newest_last_updated = other.newest_last_updated

    def keep_one_per_coin(self) -> int:
        """Keep one accepted record per coin and currency, the one with the newest
        ``last_updated`` (the first seen on a tie), where the first copy stood; returns how many
        copies were dropped.

        A coin that moves down the listing between two page requests of one poll is on
        both pages: one poll is one reading of the market, a row per coin, and the newer
        copy is the later reading. (``last_updated`` is compared as the landing's fixed-width
        ISO-8601 UTC text, which sorts as time does.)
        """
        kept: list[dict[str, Any]] = []
        where: dict[tuple[str, str], int] = {}
        for record in self.accepted:
            key = (record["coin_id"], record["vs_currency"])
            index = where.get(key)
            if index is None:
                where[key] = len(kept)
                kept.append(record)
            elif record["last_updated"] > kept[index]["last_updated"]:
                kept[index] = record
        dropped = len(self.accepted) - len(kept)
        self.accepted = kept
        return dropped

    def reasons(self) -> dict[str, int]:
        """Rejections counted by kind, most frequent first."""
        return dict(Counter(r.kind for r in self.rejected).most_common())


def parse_page(body: bytes, *, may_be_empty: bool = False) -> list[Any]:
    """Decode one response body into its list of raw records.

    Raises :class:`RateLimited` for an error object carrying code 429 and
    :class:`BadPayload` for anything else that is not a non-empty list (an empty one
    too, unless ``may_be_empty``).
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadPayload(f"body is not JSON (an HTML error page or a truncated response?): {_excerpt(body)}") from None
    if isinstance(payload, dict):
        status = payload.get("status") if isinstance(payload.get("status"), dict) else payload
        code = status.get("error_code")
        message = status.get("error_message") or status.get("error") or payload
        if code == 429:
            raise RateLimited(f"error object with code 429: {message}")
        raise BadPayload(f"error object instead of a list of coins (code {code}): {message}")
    if not isinstance(payload, list):
        raise BadPayload(f"body is a JSON {type(payload).__name__}, expected a list of coins: {_excerpt(body)}")
    if not payload and not may_be_empty:
        raise BadPayload("body is an empty list: the page had no coins")
    return payload


def parse_listing_page(body: bytes) -> list[Any]:
    """:func:`parse_page` for a page after the first of the listing, where ``[]`` is the
    listing's end (CoinGecko answers ``[]`` for a page past its last coin), not a fault."""
    return parse_page(body, may_be_empty=True)


@dataclass(frozen=True)
class ChartPoint:
    """One point of a market chart: the price, market cap and volume at one moment."""

    at_ms: int
    """Unix time in milliseconds."""
    price: Any
    market_cap: Any
    total_volume: Any


def parse_chart(body: bytes) -> list[ChartPoint]:
    """Decode a ``market_chart/range`` body into its points, in time order.

    The body is ``{"prices": [[ms, value], ...], "market_caps": [...], "total_volumes": [...]}``;
    the three series are joined on the timestamp (a point missing from the caps or volumes
    gets null there). Raises :class:`RateLimited` for an error object with code 429 and
    :class:`BadPayload` for anything else that is not such an object: values are checked
    later, point by point, by the one schema. An empty ``prices`` list is a valid answer
    (nothing in the range).
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise BadPayload(f"body is not JSON (an HTML error page or a truncated response?): {_excerpt(body)}") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("prices"), list):
        if isinstance(payload, dict) and ("status" in payload or "error" in payload):
            status = payload.get("status") if isinstance(payload.get("status"), dict) else payload
            if status.get("error_code") == 429:
                raise RateLimited(f"error object with code 429: {status.get('error_message') or payload}")
            raise BadPayload(f"error object instead of a market chart: {_excerpt(body)}")
        raise BadPayload(f"body is not a market chart with a prices list: {_excerpt(body)}")
    series: dict[str, dict[int, Any]] = {}
    for name in ("prices", "market_caps", "total_volumes"):
        entries = payload.get(name, [])
        if not isinstance(entries, list) or not all(_is_pair(entry) for entry in entries):
            raise BadPayload(f"{name} is not a list of [timestamp ms, value] pairs: {_excerpt(body)}")
        series[name] = {int(at): value for at, value in entries}
    return [
        ChartPoint(at, price, series["market_caps"].get(at), series["total_volumes"].get(at))
        for at, price in sorted(series["prices"].items())
    ]


def _is_pair(entry: Any) -> bool:
    return (
        isinstance(entry, list)
        and len(entry) == 2
        and isinstance(entry[0], int | float)
        and not isinstance(entry[0], bool)
        and math.isfinite(entry[0])
    )


def validate_records(
    records: list[Any], *, vs_currency: str, ingested_at: datetime, poll_id: str, origin: str = "poll"
) -> Validation:
    """Check every record of a page; stamp accepted ones with currency, time, poll id and origin."""
    model = record_model()
    result = Validation()
    for index, raw in enumerate(records):
        if not isinstance(raw, dict):
            result.rejected.append(
                Rejection(index, None, f"record is a JSON {type(raw).__name__}, expected an object", "not_an_object")
            )
            continue
        coin_id = raw.get("id") if isinstance(raw.get("id"), str) else None
        try:
            tick = model.model_validate(
                {**raw, "vs_currency": vs_currency, "ingested_at": ingested_at, "poll_id": poll_id, "origin": origin}
            )
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            reason = "; ".join(_describe(e) for e in errors)
            kind = ", ".join(sorted({f"{_loc(e)}: {e['type']}" for e in errors}))
            result.rejected.append(Rejection(index, coin_id, reason, kind))
            continue
        result.accepted.append(tick.model_dump(mode="json"))
        last_updated = tick.last_updated
        if result.newest_last_updated is None or last_updated > result.newest_last_updated:
            result.newest_last_updated = last_updated
    return result


def to_ndjson(records: list[dict[str, Any]]) -> bytes:
    """One compact JSON object per line, each line ending in a newline."""
    return "".join(json.dumps(r, separators=(",", ":"), ensure_ascii=False) + "\n" for r in records).encode()


def _loc(error: Any) -> str:
    return ".".join(str(part) for part in error["loc"]) or "record"


def _describe(error: Any) -> str:
    if error["type"] == "missing":  # the input is the whole record: not worth repeating
        return f"{_loc(error)}: {error['msg']}"
    text = repr(error.get("input"))
    return f"{_loc(error)}: {error['msg']} (got {text if len(text) <= 40 else text[:37] + '...'})"


def _excerpt(body: bytes) -> str:
    text = body[:80].decode("utf-8", "replace").replace("\n", " ")
    return repr(text + ("..." if len(body) > 80 else ""))
