"""Times as text, the one way cryptopipe writes them: UTC, to the millisecond, with a ``Z``.

Landing lines, the replay's records, the dashboard's answers and poll ids all carry
times; written by one function they cannot drift apart (a microsecond here, an
offset there), and a landing line's text is exactly what the stream's
``timestampFormat`` (:data:`core.schema.TIMESTAMP_FORMAT_SPARK`) reads.
"""

from __future__ import annotations

from datetime import datetime, timezone

#: ISO 8601's basic layout to the second (no separators): names that sort in time order.
BASIC_SECONDS = "%Y%m%dT%H%M%S"
_EXTENDED_SECONDS = "%Y-%m-%dT%H:%M:%S."


def utc_millis(value: datetime, *, basic: bool = False) -> str:
    """``value`` in UTC to the millisecond (truncated), e.g. ``2025-06-01T12:00:03.123Z``.

    ``basic`` writes ISO 8601's basic format, ``20250601T120003123Z``, for names.
    A naive ``value`` is taken as local time, as :meth:`datetime.astimezone` does.
    """
    value = value.astimezone(timezone.utc)
    layout = BASIC_SECONDS if basic else _EXTENDED_SECONDS
    return f"{value.strftime(layout)}{value.microsecond // 1000:03d}Z"


def utc_now() -> datetime:
    """The current time in UTC: the default clock of what takes one, so a test can pass a frozen one."""
    return datetime.now(timezone.utc)
