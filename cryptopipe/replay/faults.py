"""Scripted faults: what the replay server sends instead of its normal answer.

A test queues faults with ``ReplayServer.inject``; each ``/api/v3`` request takes the
next one. Each kind is something the real API, or the CDN in front of it, does, so
a client's retry and validation paths can each be driven on purpose:

=========================  =================================================================
``Fault.status(code)``     that status with CoinGecko's JSON error body, optionally with
                           ``Retry-After`` (seconds or an HTTP date, sent as given)
``Fault.delay(seconds)``   the normal answer, after a pause (client read timeouts)
``Fault.reset()``          the connection is reset (RST) without any response
``Fault.html(code)``       a CDN's HTML error page with that status
``Fault.truncated_json()`` status 200, the normal JSON body cut in half
``Fault.error_object()``   status 200 with ``{"status": {...}}`` where a list is expected
``Fault.empty_list()``     status 200 with ``[]``
``Fault.bad_records()``    the normal page with some records corrupted (wrong types,
                           missing keys, impossible values) so validation rejects them
=========================  =================================================================
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Final, Literal

JSON_TYPE: Final = "application/json; charset=utf-8"
HTML_TYPE: Final = "text/html; charset=utf-8"

#: The message CoinGecko's 429 answers carry.
RATE_LIMIT_MESSAGE: Final = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing "
    "to subscribe to our API plans for higher rate limits."
)

FaultKind = Literal[
    "status", "delay", "reset", "html", "truncated_json", "error_object", "empty_list", "bad_records"
]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: In ``Fault.bad_records`` corruptions, removes the field from the record.
MISSING: Final = _Missing()

#: What ``Fault.bad_records()`` does by default, by position in the page: each record
#: breaks one rule the market tick schema enforces.
DEFAULT_CORRUPTIONS: Final[Mapping[int, Mapping[str, Any]]] = {
    0: {"current_price": "104512.5"},  # a number sent as a string
    1: {"id": MISSING},  # the key field is absent
    2: {"last_updated": "yesterday"},  # not a timestamp
    3: {"market_cap": -1},  # below the field's minimum
}


@dataclass(frozen=True)
class Reply:
    """An HTTP response the server is about to send."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: Mapping[str, str] = field(default_factory=dict)
    payload: Any = None
    """The JSON value ``body`` encodes, for faults that alter records; None otherwise."""

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        body = json.dumps(payload, separators=(",", ":"), allow_nan=False).encode()
        return cls(status, body, JSON_TYPE, headers or {}, payload)


def error_object(code: int) -> dict[str, Any]:
    """CoinGecko's error body: ``{"status": {"error_code": ..., "error_message": ...}}``."""
    message = RATE_LIMIT_MESSAGE if code == 429 else HTTPStatus(code).phrase
    return {"status": {"error_code": code, "error_message": message}}


def _html_page(code: int) -> bytes:
    title = f"{code} {HTTPStatus(code).phrase}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>cloudflare</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def _corrupt(records: list[Any], corruptions: Mapping[int, Mapping[str, Any]]) -> list[Any]:
    out = list(records)
    for position, overrides in corruptions.items():
        if position < len(out):
            record = {**out[position], **overrides}
            out[position] = {key: value for key, value in record.items() if value is not MISSING}
    return out


@dataclass(frozen=True)
class Fault:
    """One scripted misbehaviour for one request; build it with the constructors below."""

    kind: FaultKind
    code: int = 200
    """The HTTP status sent (``status``, ``html``) or reported in the body (``error_object``)."""
    retry_after: str | None = None
    """The ``Retry-After`` header of a ``status`` fault, sent verbatim; None sends none."""
    seconds: float = 0.0
    """How long a ``delay`` fault waits before answering."""
    corruptions: Mapping[int, Mapping[str, Any]] = field(default_factory=dict)
    """For ``bad_records``: position in the page -> fields to override (``MISSING`` removes one)."""

    @classmethod
    def status(cls, code: int, *, retry_after: str | None = None) -> Fault:
        """Answer ``code`` with CoinGecko's JSON error body (and ``Retry-After`` if given)."""
        HTTPStatus(code)  # fails early, in the test, on a code that is not HTTP
        return cls("status", code=code, retry_after=retry_after)

    @classmethod
    def delay(cls, seconds: float) -> Fault:
        """Answer normally after ``seconds`` (cut short when the server stops)."""
        return cls("delay", seconds=seconds)

    @classmethod
    def reset(cls) -> Fault:
        """Reset the connection without answering."""
        return cls("reset")

    @classmethod
    def html(cls, code: int = 502) -> Fault:
        """Answer ``code`` with an HTML error page, as a CDN in front of the API does."""
        HTTPStatus(code)
        return cls("html", code=code)

    @classmethod
    def truncated_json(cls) -> Fault:
        """Answer 200 with the first half of the normal JSON body."""
        return cls("truncated_json")

    @classmethod
    def error_object(cls, code: int = 429) -> Fault:
        """Answer 200 with CoinGecko's error object for ``code`` instead of a list."""
        HTTPStatus(code)
        return cls("error_object", code=code)

    @classmethod
    def empty_list(cls) -> Fault:
        """Answer 200 with ``[]``."""
        return cls("empty_list")

    @classmethod
    def bad_records(cls, corruptions: Mapping[int, Mapping[str, Any]] | None = None) -> Fault:
        """Answer the normal page with the records at the given positions altered.

        ``corruptions`` maps a position in the page to field overrides; positions past
        the page's end are ignored. The default is :data:`DEFAULT_CORRUPTIONS`.
        """
        return cls("bad_records", corruptions=DEFAULT_CORRUPTIONS if corruptions is None else corruptions)

    def apply(self, normal: Reply, pause: Callable[[float], object]) -> Reply | None:
        """What to send instead of ``normal``; None means reset the connection.

        ``pause(seconds)`` waits for a ``delay``; the server passes one that returns
        early when it stops, so a delayed request never holds up shutdown.
        """
        match self.kind:
            case "status":
                headers = {} if self.retry_after is None else {"Retry-After": self.retry_after}
                return Reply.json(self.code, error_object(self.code), headers)
            case "delay":
                pause(self.seconds)
                return normal
            case "reset":
                return None
            case "html":
                return Reply(self.code, _html_page(self.code), HTML_TYPE)
            case "truncated_json":
                return Reply(200, normal.body[: len(normal.body) // 2])
            case "error_object":
                return Reply.json(200, error_object(self.code))
            case "empty_list":
                return Reply.json(200, [])
            case "bad_records" if isinstance(normal.payload, list):
                return Reply.json(normal.status, _corrupt(normal.payload, self.corruptions))
        return normal
