"""Cloud Monitoring: the alerts of core/health.py as log-based metrics, policies and channels.

Every signal is a line our own code writes (core/health.py names the words), counted
or measured by a log-based metric: the producer's ``poll`` event arrives through the
VM's serial console (systemd writes the service's output there), the stream's lines
as Dataproc driver output (``dataproc.job.driver``, on because processing.py sets
``dataproc.logging.stackdriver.job.driver.enable``). A line we write is the one
signal that is the same in the cloud and on a laptop, and the tests check each
filter against lines the code really emits (tests/test_health_lines.py).

The conditions are infra/monitoring/conditions.py's; the policies wait for their metrics to become
visible to Monitoring (waits.py). docs/OPERATIONS.md is the runbook of each policy, and its
drills make each one fire on purpose.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from core.health import ALERTS_BY_KEY
from infra.cdk import google
from infra.environments import EnvironmentConfig
from infra.monitoring.conditions import conditions
from infra.monitoring.log_metrics import VALUE_FIELDS, data_age_bounds, log_filters, value_extractor
from infra.stacks.waits import after_metrics

#: Budget e-mails at these shares of the monthly amount.
BUDGET_THRESHOLDS = (0.5, 0.9, 1.0)
#: An open incident closes by itself this long after its condition stops holding.
AUTO_CLOSE = "1800s"
RUNBOOK = "docs/OPERATIONS.md"


class Alerts(Construct):
    """The metrics, the notification channels, one policy per alert and the optional budget."""

    def __init__(self, scope: Construct, id_: str, cfg: EnvironmentConfig, after: list[Any],
                 billing_provider: Any = None) -> None:
        super().__init__(scope, id_)
        self.thresholds = cfg.alert_thresholds
        self.cluster_name = cfg.name_of("processing", "cluster")  # as processing.py names it
        filters = log_filters(scheduled=cfg.processing == "scheduled")
        self.metrics = {key: self._metric(cfg, key, filter_, after) for key, filter_ in filters.items()}
        self.metrics_visible = after_metrics(self, list(self.metrics.values()))
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
        self.policies = {key: self._policy(cfg, key, each)
                         for key, each in conditions(self.thresholds, self.cluster_name, self.metric_type).items()}
        self.budget = self._budget(cfg, after, billing_provider) if cfg.billing_account else None

    def metric_type(self, key: str) -> str:
        return f"logging.googleapis.com/user/{self.metrics[key].name}"

    def _metric(self, cfg: EnvironmentConfig, key: str, filter_: str, after: list[Any]) -> Any:
        distribution = key in VALUE_FIELDS
        # Only the data age is compared with a threshold by percentile: its bounds hold the
        # threshold itself. The counts' conditions use means, which buckets do not change.
        buckets = ({"explicit_buckets": {"bounds": data_age_bounds(self.thresholds.freshness_seconds)}}
                   if key == "data-age" else
                   {"exponential_buckets": {"num_finite_buckets": 24, "growth_factor": 2, "scale": 1}})
        return google.logging_metric.LoggingMetric(
            self, key, project=cfg.project, name=cfg.name_of("health", key), filter=filter_,
            description=f"cryptopipe {cfg.name}: {key} (cdktf/infra/stacks/alerts.py, core/health.py)",
            metric_descriptor={"metric_kind": "DELTA", "value_type": "DISTRIBUTION" if distribution else "INT64",
                               "unit": "s" if key == "data-age" else "1"},
            value_extractor=value_extractor(VALUE_FIELDS[key]) if distribution else None,
            bucket_options=buckets if distribution else None,
            depends_on=after,
        )

    def _policy(self, cfg: EnvironmentConfig, key: str, conditions_: list[dict[str, Any]]) -> Any:
        alert = ALERTS_BY_KEY[key]
        return google.monitoring_alert_policy.MonitoringAlertPolicy(
            self, key, project=cfg.project, display_name=f"{cfg.prefix} {cfg.name}: {alert.title}",
            combiner="OR", conditions=[_condition(condition) for condition in conditions_],
            severity="ERROR" if key == "data-freshness" else "WARNING",
            notification_channels=[channel.id for channel in self.channels],
            alert_strategy={"auto_close": AUTO_CLOSE},
            documentation={"mime_type": "text/markdown", "subject": f"cryptopipe {cfg.name}: {alert.title}",
                           "content": f"{alert.meaning} Fires when {alert.fires_when}. "
                                      f"Runbook: {RUNBOOK}, section \"{alert.title}\"."},
            user_labels={"app": cfg.prefix, "env": cfg.name},
            depends_on=[*self.metrics.values(), self.metrics_visible],
        )

    def _budget(self, cfg: EnvironmentConfig, after: list[Any], provider: Any) -> Any:
        return google.billing_budget.BillingBudget(
            self, "budget", billing_account=cfg.billing_account, display_name=f"{cfg.prefix} {cfg.name}",
            budget_filter={"projects": [f"projects/{cfg.project_number}"], "calendar_period": "MONTH"},
            amount={"specified_amount": {"units": str(cfg.budget_amount)}},
            threshold_rules=[google.billing_budget.BillingBudgetThresholdRules(threshold_percent=share)
                             for share in BUDGET_THRESHOLDS],
            all_updates_rule={"monitoring_notification_channels": [channel.id for channel in self.channels][:5],
                              "disable_default_iam_recipients": False} if self.channels else None,
            provider=provider,  # the one that sends a quota project (pipeline.py)
            depends_on=after,  # the Budget API, enabled by the stack
        )


def _condition(condition: dict[str, Any]) -> Any:
    """A condition written as plain dicts, as the bindings' classes: jsii converts a dict to a
    struct, but not the dicts inside a list."""
    policy = google.monitoring_alert_policy
    body = dict(condition["condition_threshold"])
    body["aggregations"] = [policy.MonitoringAlertPolicyConditionsConditionThresholdAggregations(**a)
                            for a in body["aggregations"]]
    if "denominator_aggregations" in body:
        body["denominator_aggregations"] = [
            policy.MonitoringAlertPolicyConditionsConditionThresholdDenominatorAggregations(**a)
            for a in body["denominator_aggregations"]]
    return policy.MonitoringAlertPolicyConditions(
        display_name=condition["display_name"],
        condition_threshold=policy.MonitoringAlertPolicyConditionsConditionThreshold(**body))
