"""Structured logs: one JSON object per line, so a per-poll line can be read as data
(``jq``, the tests).

On the producer VM the lines reach Cloud Logging through the serial console, as each
entry's ``textPayload``: plain text, without a severity and without any field indexed
(no Ops Agent parses them). The cloud's log-based metrics match their text, e.g.
``"event":"poll"`` (cdktf/infra/monitoring/log_metrics.py).

``log_event`` works with any handler: the message stays readable text, and the
fields ride on the record for :class:`JsonFormatter`, which ``python -m producer``
installs.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone
from typing import Any

from core.health import EVENT_FIELD

_FIELDS = "cryptopipe_event"


def log_event(logger: logging.Logger, level: int, event: str, **fields: Any) -> None:
    """Log ``event`` with ``fields``, e.g. ``log_event(log, INFO, "poll", accepted=250)``."""
    if not logger.isEnabledFor(level):
        return
    text = " ".join(f"{key}={value}" for key, value in fields.items())
    logger.log(level, "%s %s", event, text, extra={_FIELDS: {EVENT_FIELD: event, **fields}})


class JsonFormatter(logging.Formatter):
    """Render every record as one JSON line: time, level, logger, then the event's
    fields (or the plain message), and the traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "severity": record.levelname,
            "logger": record.name,
        }
        entry.update(getattr(record, _FIELDS, None) or {"message": record.getMessage()})
        if record.exc_info:
            entry["traceback"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, separators=(",", ":"))
