"""Cloud Monitoring: the alerts of core/health.py as log-based metrics, policies and channels.

Every signal is a line our own code writes (core/health.py names the words), counted
or measured by a log-based metric: the producer's ``poll`` event arrives through the
VM's serial console (systemd writes the service's output there), the stream's lines
as Dataproc driver output (``dataproc.job.driver``, on because processing.py sets
``dataproc.logging.stackdriver.job.driver.enable``). A line we write is the one
signal that is the same in the cloud and on a laptop, and the tests check each
filter against lines the code really emits (tests/test_health_lines.py).

Each condition reduces across time series: a redeploy starts a new job (a new
``job_id`` label) and a replaced VM a new instance, and the old series going quiet
must not count as absence. docs/OPERATIONS.md is the runbook of each policy.
"""

from __future__ import annotations

from typing import Any

from cdk import google
from constructs import Construct

from core.health import ALERTS_BY_KEY, QUARANTINE_WINDOW_SECONDS, Thresholds, whole_minutes

from config import EnvironmentConfig
from log_metrics import VALUE_FIELDS, log_filters, value_extractor

#: Budget e-mails at these shares of the monthly amount.
BUDGET_THRESHOLDS = (0.5, 0.9, 1.0)
#: Dataproc's gauge of the jobs running on a cluster (GA, per cluster, label job_type).
RUNNING_JOBS_METRIC = "dataproc.googleapis.com/cluster/job/running_count"
#: An open incident closes by itself this long after its condition stops holding.
AUTO_CLOSE = "1800s"
RUNBOOK = "docs/OPERATIONS.md"


def _seconds(value: int) -> str:
    return f"{value}s"


class Alerts(Construct):
    """The metrics, the notification channels, one policy per alert and the optional budget."""

    def __init__(self, scope: Construct, id_: str, cfg: EnvironmentConfig, after: list[Any]) -> None:
        super().__init__(scope, id_)
        self.thresholds = cfg.alert_thresholds
        self.cluster_name = cfg.name_of("processing", "cluster")  # as processing.py names it
        self.metrics = {key: self._metric(cfg, key, filter_, after) for key, filter_ in log_filters().items()}
        self.channels = [
            google.monitoring_notification_channel.MonitoringNotificationChannel(
                self, f"email-{index}", project=cfg.project, type="email", display_name=f"{cfg.name}: {address}",
                labels={"email_address": address}, depends_on=after,
            ) for index, address in enumerate(cfg.alert_emails)
        ]
        if cfg.alert_webhook_url:
            self.channels.append(google.monitoring_notification_channel.MonitoringNotificationChannel(
                self, "webhook", project=cfg.project, type="webhook_tokenauth", display_name=f"{cfg.name}: webhook",
                labels={"url": cfg.alert_webhook_url}, depends_on=after,
            ))
        self.policies = {key: self._policy(cfg, key, conditions)
                         for key, conditions in self._conditions(self.thresholds).items()}
        self.budget = self._budget(cfg, after) if cfg.billing_account else None

    def metric_type(self, key: str) -> str:
        return f"logging.googleapis.com/user/{self.metrics[key].name}"

    def _metric(self, cfg: EnvironmentConfig, key: str, filter_: str, after: list[Any]) -> Any:
        distribution = key in VALUE_FIELDS
        return google.logging_metric.LoggingMetric(
            self, key, project=cfg.project, name=cfg.name_of("health", key), filter=filter_,
            description=f"cryptopipe {cfg.name}: {key} (cdktf/alerts.py, core/health.py)",
            metric_descriptor={"metric_kind": "DELTA", "value_type": "DISTRIBUTION" if distribution else "INT64",
                               "unit": "s" if key == "data-age" else "1"},
            value_extractor=value_extractor(VALUE_FIELDS[key]) if distribution else None,
            bucket_options={"exponential_buckets": {"num_finite_buckets": 24, "growth_factor": 2, "scale": 1}}
            if distribution else None,
            depends_on=after,
        )

    def _filter(self, key: str, resource: str) -> str:
        return f'metric.type="{self.metric_type(key)}" AND resource.type="{resource}"'

    def _conditions(self, t: Thresholds) -> dict[str, list[dict[str, Any]]]:
        job, vm = "cloud_dataproc_job", "gce_instance"
        count = {"per_series_aligner": "ALIGN_DELTA", "cross_series_reducer": "REDUCE_SUM"}
        # The freshest batch of each window: the 5th percentile of the loaded ticks' ages.
        freshest = {"per_series_aligner": "ALIGN_PERCENTILE_05", "cross_series_reducer": "REDUCE_MIN"}
        return {
            "data-freshness": [
                {"display_name": "loads carry only old ticks", "condition_threshold": {
                    "filter": self._filter("data-age", job), "comparison": "COMPARISON_GT",
                    "threshold_value": t.freshness_seconds, "duration": "0s",
                    "aggregations": [{"alignment_period": "300s", **freshest}]}},
                {"display_name": "no load of ticks", "condition_absent": {
                    "filter": self._filter("data-age", job),
                    "duration": _seconds(whole_minutes(t.freshness_seconds, 120)),
                    "aggregations": [{"alignment_period": "60s", **freshest}]}},
            ],
            "producer-down": [
                {"display_name": "no poll", "condition_absent": {
                    "filter": self._filter("polls", vm),
                    "duration": _seconds(whole_minutes(t.producer_silence_seconds, 120)),
                    "aggregations": [{"alignment_period": "60s", **count}]}},
            ],
            "stream-not-running": [
                # Dataproc's own gauge of the cluster's running jobs (sampled every 60 s, visible
                # up to 120 s later): the one signal that does not need the driver to write.
                {"display_name": "job not RUNNING", "condition_threshold": {
                    "filter": f'metric.type="{RUNNING_JOBS_METRIC}" AND resource.type="cloud_dataproc_cluster" '
                              f'AND resource.label.cluster_name="{self.cluster_name}"',
                    "comparison": "COMPARISON_LT", "threshold_value": 1,
                    "duration": _seconds(whole_minutes(t.stream_silence_seconds, 120)),
                    "aggregations": [{"alignment_period": "60s", "per_series_aligner": "ALIGN_MAX",
                                      "cross_series_reducer": "REDUCE_SUM"}]}},
                {"display_name": "no batch or idle line", "condition_absent": {
                    "filter": self._filter("stream-reports", job),
                    "duration": _seconds(whole_minutes(t.stream_silence_seconds, 120)),
                    "aggregations": [{"alignment_period": "60s", **count}]}},
                {"display_name": "driver restarts", "condition_threshold": {
                    "filter": self._filter("stream-starts", job), "comparison": "COMPARISON_GT",
                    "threshold_value": t.max_driver_restarts_per_hour, "duration": "0s",
                    "aggregations": [{"alignment_period": "3600s", **count}]}},
            ],
            # Both metrics come from the same batch lines, so mean(quarantined) / mean(records) over
            # a window is sum / sum: the share of the window's lines.
            "quarantine-rate": [
                {"display_name": "quarantined share of lines", "condition_threshold": {
                    "filter": self._filter("quarantined", job), "denominator_filter": self._filter("records", job),
                    "comparison": "COMPARISON_GT", "threshold_value": t.quarantine_percent / 100, "duration": "0s",
                    "aggregations": [{"alignment_period": _seconds(QUARANTINE_WINDOW_SECONDS),
                                      "per_series_aligner": "ALIGN_MEAN"}],
                    "denominator_aggregations": [{"alignment_period": _seconds(QUARANTINE_WINDOW_SECONDS),
                                                  "per_series_aligner": "ALIGN_MEAN"}]}},
            ],
        }

    def _policy(self, cfg: EnvironmentConfig, key: str, conditions: list[dict[str, Any]]) -> Any:
        alert = ALERTS_BY_KEY[key]
        return google.monitoring_alert_policy.MonitoringAlertPolicy(
            self, key, project=cfg.project, display_name=f"{cfg.prefix} {cfg.name}: {alert.title}",
            combiner="OR", conditions=[_condition(condition) for condition in conditions], severity="ERROR" if key == "data-freshness" else "WARNING",
            notification_channels=[channel.id for channel in self.channels],
            alert_strategy={"auto_close": AUTO_CLOSE},
            documentation={"mime_type": "text/markdown", "subject": f"cryptopipe {cfg.name}: {alert.title}",
                           "content": f"{alert.meaning} Fires when {alert.fires_when}. "
                                      f"Runbook: {RUNBOOK}, section \"{alert.title}\"."},
            user_labels={"app": cfg.prefix, "env": cfg.name},
            depends_on=list(self.metrics.values()),
        )

    def _budget(self, cfg: EnvironmentConfig, after: list[Any]) -> Any:
        return google.billing_budget.BillingBudget(
            self, "budget", billing_account=cfg.billing_account, display_name=f"{cfg.prefix} {cfg.name}",
            budget_filter={"projects": [f"projects/{cfg.project_number}"], "calendar_period": "MONTH"},
            amount={"specified_amount": {"units": str(cfg.budget_amount)}},
            threshold_rules=[google.billing_budget.BillingBudgetThresholdRules(threshold_percent=share)
                             for share in BUDGET_THRESHOLDS],
            all_updates_rule={"monitoring_notification_channels": [channel.id for channel in self.channels][:5],
                              "disable_default_iam_recipients": False} if self.channels else None,
            depends_on=after,  # the Budget API, enabled by the stack
        )


def _condition(condition: dict[str, Any]) -> Any:
    """A condition written as plain dicts, as the bindings' classes: jsii converts a dict to a
    struct, but not the dicts inside a list."""
    policy = google.monitoring_alert_policy
    kind = "condition_threshold" if "condition_threshold" in condition else "condition_absent"
    body = dict(condition[kind])
    if kind == "condition_threshold":
        body["aggregations"] = [policy.MonitoringAlertPolicyConditionsConditionThresholdAggregations(**a)
                                for a in body["aggregations"]]
        if "denominator_aggregations" in body:
            body["denominator_aggregations"] = [
                policy.MonitoringAlertPolicyConditionsConditionThresholdDenominatorAggregations(**a)
                for a in body["denominator_aggregations"]]
        typed = policy.MonitoringAlertPolicyConditionsConditionThreshold(**body)
    else:
        body["aggregations"] = [policy.MonitoringAlertPolicyConditionsConditionAbsentAggregations(**a)
                                for a in body["aggregations"]]
        typed = policy.MonitoringAlertPolicyConditionsConditionAbsent(**body)
    return policy.MonitoringAlertPolicyConditions(display_name=condition["display_name"], **{kind: typed})
