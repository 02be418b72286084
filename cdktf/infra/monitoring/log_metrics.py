"""The log-based metrics' filters and extractors, built from core/health.py's words.

Apart from infra/stacks/alerts.py so that tests can check them against real log lines without
importing the provider bindings (12-13 s). Where each workload's lines arrive in
Cloud Logging: the producer's through the VM's serial console (systemd writes the
service's output there; infra/stacks/producer_vm.py turns on serial port logging), as
``textPayload``; the stream's as Dataproc driver output (``dataproc.job.driver``,
on because infra/stacks/processing.py sets ``dataproc.logging.stackdriver.job.driver.enable``),
a line per entry in ``jsonPayload.message``.

No pattern or filter here carries a backslash. Terraform's JSON doubles each one, and
whether Logging unescapes what is left is documented neither way (configurations in the
wild do both); a pattern that never needs an escape leaves no question. The data age's
bucket bounds include each threshold exactly (:func:`data_age_bounds`).
"""

from __future__ import annotations

import json
import re

from core.health import (
    DATA_AGE_FIELD,
    POLL_EVENT,
    QUARANTINED_FIELD,
    RECORDS_FIELD,
    RUN_FINISHED,
    STREAM_BATCH,
    STREAM_IDLE,
    STREAM_STARTED,
    event_marker,
    field_pattern,
    stream_mark,
)

#: Bucket bounds of the data-age distribution, in seconds, to which each threshold is added.
DATA_AGE_BOUNDS = (1, 2, 5, 10, 15, 30, 60, 90, 120, 180, 300, 600, 900, 1800, 3600, 7200, 21600, 86400)

#: Where each workload's lines arrive in Cloud Logging.
PRODUCER_LOG = 'resource.type="gce_instance" AND log_id("serialconsole.googleapis.com/serial_port_1_output")'
PRODUCER_TEXT = "textPayload"
STREAM_LOG = 'resource.type="cloud_dataproc_job" AND log_id("dataproc.job.driver")'
STREAM_TEXT = "jsonPayload.message"


def has(field: str, text: str) -> str:
    """The filter clause ``field:"text"`` (substring match), quoted as Logging quotes."""
    return f"{field}:{json.dumps(text)}"


def log_filters(scheduled: bool = False) -> dict[str, str]:
    """Each log-based metric's filter, by metric key: built from core/health.py's words. Scheduled
    mode's runs write no idle lines and a driver start each: it counts the runs that ended well."""
    batch = f"{STREAM_LOG} AND {has(STREAM_TEXT, stream_mark(STREAM_BATCH))}"
    filters = {
        "polls": f"{PRODUCER_LOG} AND {has(PRODUCER_TEXT, event_marker(POLL_EVENT))}",
        "data-age": f"{batch} AND {has(STREAM_TEXT, DATA_AGE_FIELD + '=')}",
        "records": batch,
        "quarantined": batch,
        "stream-reports": f"{STREAM_LOG} AND ({has(STREAM_TEXT, stream_mark(STREAM_BATCH))} OR "
                          f"{has(STREAM_TEXT, stream_mark(STREAM_IDLE))})",
        "stream-starts": f"{STREAM_LOG} AND {has(STREAM_TEXT, stream_mark(STREAM_STARTED))}",
    }
    if scheduled:
        del filters["stream-reports"], filters["stream-starts"]
        filters["runs-finished"] = f"{STREAM_LOG} AND {has(STREAM_TEXT, stream_mark(RUN_FINISHED))}"
    return filters


#: Distribution metrics: the field of the per-batch line each one reads.
VALUE_FIELDS = {"data-age": DATA_AGE_FIELD, "records": RECORDS_FIELD, "quarantined": QUARANTINED_FIELD}


def extractor_pattern(field: str) -> str:
    """core/health.py's pattern of ``field`` without a backslash (RE2, as Logging runs it): the
    word boundary becomes the line's start or the space before the field, the escaped dot a class."""
    pattern = field_pattern(field).replace(r"\b", "(?:^|[ ])").replace(r"\.", "[.]")
    if "\\" in pattern:
        raise ValueError(f"extractor pattern of {field!r} still has a backslash: {pattern}")
    re.compile(pattern)
    return pattern


def value_extractor(field: str) -> str:
    """The metric's value: the number after ``field=`` in the line."""
    return f"REGEXP_EXTRACT({STREAM_TEXT}, {json.dumps(extractor_pattern(field))})"


def data_age_bounds(*thresholds: float) -> list[float]:
    """Explicit bucket bounds for the data age with a bound at each of ``thresholds``.

    A percentile of a distribution metric is interpolated inside the bucket it falls in, so a
    condition "5th percentile > T" is exact only where T is a bound: with exponential buckets of
    growth 2 a 240 s threshold trips near 256 s, a 10-minute one near 1,024 s.
    """
    return sorted({*map(float, DATA_AGE_BOUNDS), *map(float, thresholds)})
