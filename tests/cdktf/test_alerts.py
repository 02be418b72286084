"""The alerts as synthesized: each policy per environment, its metric, threshold, duration,
absence handling and channels; the channels and the budget when configured.

The expected values come from core/health.py and the environment's config, not from
copies of them: a threshold or a log word changed in one place shows here as the
synthesized policy following it.
"""

from __future__ import annotations

import gzip
import json
import re

import pytest

from alerts import BUDGET_THRESHOLDS, RUNNING_JOBS_METRIC, Alerts
from api_calls import BILLING_ACCOUNT_GRANTS
from config import ConfigError, environment, load_environments
from core.health import ALERTS, DATA_AGE_FIELD, QUARANTINED_FIELD, RECORDS_FIELD
from effective_access import ROLE_DATA
from log_metrics import log_filters, value_extractor

CONFIGS = {cfg.name: cfg for cfg in load_environments()}


def _metric_of(stack, filter_: str) -> dict:
    """The log-based metric a condition's filter names, by its interpolated name."""
    (address,) = re.findall(r"\$\{(google_logging_metric\.[^.]+)\.name\}", filter_)
    (body,) = [b for b in stack.resources("google_logging_metric").values()
               if stack.address("google_logging_metric", b) == address]
    return body


def _policies(stack) -> dict[str, dict]:
    return {body["display_name"].split(": ", 1)[1]: body
            for body in stack.resources("google_monitoring_alert_policy").values()}


def _conditions(policy: dict) -> dict[str, dict]:
    return {c["display_name"]: c for c in policy["conditions"]}


def test_one_policy_per_alert_with_its_runbook(stack):
    policies = _policies(stack)
    assert set(policies) == {alert.title for alert in ALERTS}
    for alert in ALERTS:
        policy = policies[alert.title]
        assert policy["combiner"] == "OR"
        assert f'section "{alert.title}"' in policy["documentation"]["content"]
        assert "docs/OPERATIONS.md" in policy["documentation"]["content"]


def test_every_condition_reads_a_log_metric_built_from_the_shared_words(stack):
    """...but the one on Dataproc's own running-jobs gauge (stream not running)."""
    filters = log_filters()
    for policy in _policies(stack).values():
        for condition in policy["conditions"]:
            body = condition.get("condition_threshold") or condition["condition_absent"]
            if RUNNING_JOBS_METRIC in body["filter"]:
                assert condition["display_name"] == "job not RUNNING"
                assert body["aggregations"][0]["cross_series_reducer"] == "REDUCE_SUM"
                continue
            metric = _metric_of(stack, body["filter"])
            key = metric["name"].rsplit("-health-", 1)[1]
            assert metric["filter"] == filters[key]
            # every series of the environment reduced to one, so a replaced job's old series is no absence
            assert "cross_series_reducer" in body["aggregations"][0] or "denominator_filter" in body


def test_data_freshness_fires_on_old_ticks_and_on_no_loads(stack):
    t = CONFIGS[stack.directory.name].alert_thresholds
    conditions = _conditions(_policies(stack)["Data freshness"])
    old = conditions["loads carry only old ticks"]["condition_threshold"]
    assert (old["comparison"], old["threshold_value"], old["duration"]) == ("COMPARISON_GT", t.freshness_seconds, "0s")
    absent = conditions["no load of ticks"]["condition_absent"]
    assert absent["duration"] == f"{t.freshness_seconds}s"
    metric = _metric_of(stack, absent["filter"])
    assert metric["value_extractor"] == value_extractor(DATA_AGE_FIELD)
    assert metric["metric_descriptor"]["value_type"] == "DISTRIBUTION"


def test_the_default_freshness_is_three_polls_and_two_triggers_in_whole_minutes():
    cfg = CONFIGS["dev"]
    assert cfg.alert_freshness_minutes is None
    expected = 3 * cfg.interval_seconds + 2 * cfg.trigger_seconds
    assert cfg.alert_thresholds.freshness_seconds == -(-expected // 60) * 60
    assert environment("dev", {"project": "my-project-1", "state_bucket": "my-tfstate-1",
                               "alert_freshness_minutes": 30}).alert_thresholds.freshness_seconds == 1800


def test_producer_down_and_stream_not_running_fire_on_absence_and_restarts(stack):
    t = CONFIGS[stack.directory.name].alert_thresholds
    policies = _policies(stack)
    (producer,) = policies["Producer down"]["conditions"]
    assert producer["condition_absent"]["duration"] == f"{t.producer_silence_seconds}s"
    assert "gce_instance" in producer["condition_absent"]["filter"]
    stream = _conditions(policies["Stream not running"])
    assert stream["no batch or idle line"]["condition_absent"]["duration"] == f"{t.stream_silence_seconds}s"
    not_running = stream["job not RUNNING"]["condition_threshold"]
    assert f'metric.type="{RUNNING_JOBS_METRIC}"' in not_running["filter"]
    cluster = next(iter(stack.resources("google_dataproc_cluster").values()))["name"]
    assert f'resource.label.cluster_name="{cluster}"' in not_running["filter"]
    assert (not_running["comparison"], not_running["threshold_value"]) == ("COMPARISON_LT", 1)
    assert not_running["duration"] == f"{t.stream_silence_seconds}s"
    restarts = stream["driver restarts"]["condition_threshold"]
    assert restarts["threshold_value"] == t.max_driver_restarts_per_hour
    assert restarts["aggregations"][0]["alignment_period"] == "3600s"


def test_quarantine_rate_is_quarantined_over_read_lines_of_15_minutes(stack):
    t = CONFIGS[stack.directory.name].alert_thresholds
    (condition,) = _policies(stack)["Quarantine rate"]["conditions"]
    rate = condition["condition_threshold"]
    assert rate["threshold_value"] == pytest.approx(t.quarantine_percent / 100)
    assert _metric_of(stack, rate["filter"])["value_extractor"] == value_extractor(QUARANTINED_FIELD)
    assert _metric_of(stack, rate["denominator_filter"])["value_extractor"] == value_extractor(RECORDS_FIELD)
    for aggregations in (rate["aggregations"], rate["denominator_aggregations"]):
        assert aggregations == [{"alignment_period": "900s", "per_series_aligner": "ALIGN_MEAN"}]


def test_without_channels_the_policies_still_exist_and_notify_nobody(stacks):
    dev = stacks["dev"]
    assert CONFIGS["dev"].alert_emails == ()
    assert not dev.resources("google_monitoring_notification_channel")
    assert all(p.get("notification_channels", []) == [] for p in _policies(dev).values())
    assert not dev.resources("google_billing_budget")


def _synth_alerts(tmp_path, **values) -> dict:
    """Only the Alerts construct of an environment with ``values``, synthesized (no artifacts needed)."""
    from cdk import App, TerraformStack, google

    cfg = environment("dev", {"project": "my-project-1", "state_bucket": "my-tfstate-1",
                              "project_number": 123456789012, **values})
    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "alerts")
    google.provider.GoogleProvider(stack, "google", project=cfg.project)
    Alerts(stack, "alerts", cfg, after=[])
    app.synth()
    return json.loads((tmp_path / "stacks" / "alerts" / "cdk.tf.json").read_text())["resource"]


def test_channels_and_budget_from_the_config(tmp_path):
    resources = _synth_alerts(tmp_path, alert_emails="oncall@example.com,data@example.com",
                              alert_webhook_url="https://hooks.example.com/cryptopipe",
                              billing_account="012345-6789AB-CDEF01", budget_amount=150)
    channels = resources["google_monitoring_notification_channel"]
    assert sorted((c["type"], tuple(c["labels"].items())) for c in channels.values()) == [
        ("email", (("email_address", "data@example.com"),)), ("email", (("email_address", "oncall@example.com"),)),
        ("webhook_tokenauth", (("url", "https://hooks.example.com/cryptopipe"),))]
    channel_ids = sorted(f"${{google_monitoring_notification_channel.{key}.id}}" for key in channels)
    for policy in resources["google_monitoring_alert_policy"].values():
        assert sorted(policy["notification_channels"]) == channel_ids
    (budget,) = resources["google_billing_budget"].values()
    assert budget["billing_account"] == "012345-6789AB-CDEF01"
    assert budget["budget_filter"]["projects"] == ["projects/123456789012"]
    assert budget["amount"] == {"specified_amount": {"units": "150"}}
    assert [rule["threshold_percent"] for rule in budget["threshold_rules"]] == [0.5, 0.9, 1.0]
    assert list(BUDGET_THRESHOLDS) == [0.5, 0.9, 1.0]
    assert sorted(budget["all_updates_rule"]["monitoring_notification_channels"]) == channel_ids


@pytest.mark.parametrize("values, message", [
    ({"billing_account": "012345-6789AB-CDEF01"}, "set billing_account and budget_amount together"),
    ({"budget_amount": 100}, "set billing_account and budget_amount together"),
    ({"alert_emails": "not-an-address"}, "expected e-mail addresses"),
    ({"alert_webhook_url": "http://plain.example.com"}, "expected an https:// URL"),
])
def test_bad_alert_settings_are_refused(values, message):
    with pytest.raises(ConfigError, match=message):
        environment("dev", {"project": "my-project-1", "state_bucket": "my-tfstate-1", **values})


def test_a_budget_needs_the_project_number():
    with pytest.raises(ConfigError, match="project_number"):
        environment("dev", {"project": "my-project-1", "state_bucket": "my-tfstate-1",
                            "billing_account": "012345-6789AB-CDEF01", "budget_amount": 100})


def test_billing_account_roles_hold_the_budget_calls_the_deployers_narrowest_the_planners_read_only():
    data = json.loads(gzip.decompress(ROLE_DATA.read_bytes()))
    roles = {role: set(body["permissions"]) for role, body in data.items()}
    for role, permissions in BILLING_ACCOUNT_GRANTS.values():
        assert set(permissions) <= roles[role]
    role, permissions = BILLING_ACCOUNT_GRANTS["deployer"]
    assert len(roles[role]) == min(len(held) for held in roles.values() if set(permissions) <= held)
    role, _ = BILLING_ACCOUNT_GRANTS["planner"]
    assert not [p for p in roles[role] if re.search(r"\.(create|update|delete|set[A-Z]\w*)$", p)]
