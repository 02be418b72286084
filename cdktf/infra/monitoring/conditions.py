"""The alert policies' conditions as plain data, built from core/health.py's thresholds.

Apart from infra/stacks/alerts.py so that the cost table (infra/reports/cost.py: Monitoring bills each condition) and the
tests can read them without importing the provider bindings. infra/stacks/alerts.py turns them into the
bindings' structs.

Every condition that watches for a pipeline being alive fires on *no data* too. A
metric-absence condition cannot: it "requires at least one successful measurement ... within
the maximum duration window after the policy was installed or modified", so a producer that
never logged (no key, serial-port logging blocked by an organization policy, a wrong filter)
never opens an incident (https://cloud.google.com/monitoring/alerts/metric-absence). These are
threshold conditions with ``evaluation_missing_data = EVALUATION_MISSING_DATA_ACTIVE``: "If there
is no data to evaluate the condition, then evaluate the condition as true"
(https://cloud.google.com/monitoring/api/ref_v3/rest/v3/projects.alertPolicies#evaluationmissingdata).
The conditions that count bad events (driver restarts, quarantined lines) say INACTIVE: no
line is good news there.

Each condition reduces across time series: a redeploy starts a new job (a new ``job_id``
label) and a replaced VM a new instance, and the old series going quiet must not matter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.health import QUARANTINE_WINDOW_SECONDS, Thresholds, whole_minutes

#: Dataproc's gauge of the jobs running on a cluster (GA, per cluster, label job_type).
RUNNING_JOBS_METRIC = "dataproc.googleapis.com/cluster/job/running_count"
#: How each condition treats a window with no data (the API's EvaluationMissingData).
FIRES_ON_NO_DATA = "EVALUATION_MISSING_DATA_ACTIVE"
QUIET_ON_NO_DATA = "EVALUATION_MISSING_DATA_INACTIVE"
#: Liveness is judged minute by minute: the condition holds when every minute of its
#: duration had no sign of life (or no data at all).
MINUTE = "60s"
JOB, VM = "cloud_dataproc_job", "gce_instance"


def _seconds(value: int) -> str:
    return f"{value}s"


def conditions(t: Thresholds, cluster_name: str, metric_type: Callable[[str], str]) -> dict[str, list[dict[str, Any]]]:
    """Each alert's conditions, by alert key (core/health.py ALERTS). ``metric_type(key)`` names the
    log-based metric of ``key`` (log_metrics.log_filters); ``cluster_name`` is the Dataproc cluster's."""
    def metric(key: str, resource: str) -> str:
        return f'metric.type="{metric_type(key)}" AND resource.type="{resource}"'

    count = {"per_series_aligner": "ALIGN_DELTA", "cross_series_reducer": "REDUCE_SUM"}
    # The freshest batch of each minute: the 5th percentile of the loaded ticks' ages.
    freshest = {"per_series_aligner": "ALIGN_PERCENTILE_05", "cross_series_reducer": "REDUCE_MIN"}

    def silent(key: str, resource: str, seconds: int) -> dict[str, Any]:
        """No line counted by ``key`` in any minute for ``seconds``, or none ever."""
        return {"filter": metric(key, resource), "comparison": "COMPARISON_LT", "threshold_value": 1,
                "duration": _seconds(whole_minutes(seconds, 120)), "evaluation_missing_data": FIRES_ON_NO_DATA,
                "aggregations": [{"alignment_period": MINUTE, **count}]}

    scheduled = t.schedule_seconds is not None
    causes = {
        # Scheduled mode: the cluster is stopped between runs and a run starts one driver, so neither
        # the running-jobs gauge nor the idle lines nor driver starts say anything; a run that ended
        # well does, and none for the interval plus a run's time (or none ever) is the alert.
        "run-missed": [
            {"display_name": "no run ended well",
             "condition_threshold": silent("runs-finished", JOB, t.stream_silence_seconds)},
        ],
    } if scheduled else {
        "stream-not-running": [
            # Dataproc's own gauge of the cluster's running jobs (sampled every 60 s, visible up to
            # 120 s later): the one signal that does not need the driver to write. A cluster that is
            # gone reports nothing, which counts as no running job.
            {"display_name": "job not RUNNING", "condition_threshold": {
                "filter": f'metric.type="{RUNNING_JOBS_METRIC}" AND resource.type="cloud_dataproc_cluster" '
                          f'AND resource.label.cluster_name="{cluster_name}"',
                "comparison": "COMPARISON_LT", "threshold_value": 1,
                "duration": _seconds(whole_minutes(t.stream_silence_seconds, 120)),
                "evaluation_missing_data": FIRES_ON_NO_DATA,
                "aggregations": [{"alignment_period": MINUTE, "per_series_aligner": "ALIGN_MAX",
                                  "cross_series_reducer": "REDUCE_SUM"}]}},
            {"display_name": "no batch or idle line",
             "condition_threshold": silent("stream-reports", JOB, t.stream_silence_seconds)},
            {"display_name": "driver restarts", "condition_threshold": {
                "filter": metric("stream-starts", JOB), "comparison": "COMPARISON_GT",
                "threshold_value": t.max_driver_restarts_per_hour, "duration": "0s",
                "evaluation_missing_data": QUIET_ON_NO_DATA,
                "aggregations": [{"alignment_period": "3600s", **count}]}},
        ],
    }
    return {
        "data-freshness": [
            # Fires when every minute of the threshold loaded only ticks older than it, or loaded nothing.
            {"display_name": "no tick younger than the threshold loaded", "condition_threshold": {
                "filter": metric("data-age", JOB), "comparison": "COMPARISON_GT",
                "threshold_value": t.freshness_seconds, "duration": _seconds(t.freshness_seconds),
                "evaluation_missing_data": FIRES_ON_NO_DATA,
                "aggregations": [{"alignment_period": MINUTE, **freshest}]}},
        ],
        "producer-down": [
            {"display_name": "no poll", "condition_threshold": silent("polls", VM, t.producer_silence_seconds)},
        ],
        **causes,
        # Both metrics come from the same batch lines, so mean(quarantined) / mean(records) over
        # a window is sum / sum: the share of the window's lines.
        "quarantine-rate": [
            {"display_name": "quarantined share of lines", "condition_threshold": {
                "filter": metric("quarantined", JOB), "denominator_filter": metric("records", JOB),
                "comparison": "COMPARISON_GT", "threshold_value": t.quarantine_percent / 100, "duration": "0s",
                "evaluation_missing_data": QUIET_ON_NO_DATA,
                "aggregations": [{"alignment_period": _seconds(QUARANTINE_WINDOW_SECONDS),
                                  "per_series_aligner": "ALIGN_MEAN"}],
                "denominator_aggregations": [{"alignment_period": _seconds(QUARANTINE_WINDOW_SECONDS),
                                              "per_series_aligner": "ALIGN_MEAN"}]}},
        ],
    }


def condition_count(t: Thresholds) -> int:
    """How many conditions an environment's policies have: Monitoring bills each one (infra/reports/cost.py)."""
    return sum(len(each) for each in conditions(t, "cluster", str).values())
