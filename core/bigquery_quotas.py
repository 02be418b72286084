"""BigQuery's quotas that bound the stream's trigger, and the floors derived from them.

One place for the arithmetic the job enforces (``--trigger-seconds``, jobs/config.py) and
the deployment checks (cdktf/infra/environments.py) and prices (cdktf/infra/reports/cost.py). The figures and where
they come from: docs/STREAM.md, "Load-job quota" and "Storage Write API".
"""

from __future__ import annotations

SECONDS_PER_DAY = 86_400
SECONDS_PER_HOUR = 3_600

#: Load jobs per table per day (failed jobs count too).
LOAD_JOBS_PER_TABLE_PER_DAY = 1_500
#: Load jobs a batch may start: ticks and quarantine, budgeted against one allowance.
LOAD_JOBS_PER_BATCH = 2
#: Storage Write API: CreateWriteStream calls per project and region per hour.
CREATE_WRITE_STREAMS_PER_HOUR = 10_000
#: PENDING streams a batch creates: ticks and quarantine, as if every batch had bad lines.
STREAMS_PER_BATCH = 2

#: The shortest trigger each BigQuery write path (``--bigquery-write``) sustains all day.
MIN_TRIGGER_SECONDS = {
    "storage-write": SECONDS_PER_HOUR * STREAMS_PER_BATCH / CREATE_WRITE_STREAMS_PER_HOUR,  # 0.72 s
    "load-jobs": SECONDS_PER_DAY * LOAD_JOBS_PER_BATCH / LOAD_JOBS_PER_TABLE_PER_DAY,  # 115.2 s
}
#: The trigger each path runs at unless told otherwise. Storage Write: the cost of a batch
#: (about 30 Cloud Storage operations, cdktf/infra/reports/cost.py) and Dataproc's seconds of work per
#: batch, not the quota, set it; load jobs: the floor plus room for failed attempts.
DEFAULT_TRIGGER_SECONDS = {"storage-write": 10.0, "load-jobs": 120.0}
