"""The alerts as synthesized: each policy per environment, its metric, threshold, duration,
what no data means and channels; the channels and the budget when configured.

The expected values come from core/health.py and the environment's config, not from
copies of them: a threshold or a log word changed in one place shows here as the
synthesized policy following it.
"""

from __future__ import annotations

import gzip
import json
import re

import pytest

from core.health import (
    CREDITS_REPORT_SECONDS,
    CREDITS_SHORT,
    DATA_AGE_FIELD,
    QUARANTINED_FIELD,
    RECORDS_FIELD,
    RUN_MISSED,
    Thresholds,
    batch_fields,
    policies_for,
    read_field,
)
from infra.access.api_calls import BILLING_ACCOUNT_GRANTS
from infra.access.model import ROLE_DATA
from infra.environments import ConfigError, environment, load_environments
from infra.monitoring.conditions import FIRES_ON_NO_DATA, QUIET_ON_NO_DATA, RUNNING_JOBS_METRIC
from infra.monitoring.log_metrics import data_age_bounds, log_filters, value_extractor
from infra.stacks.alerts import BUDGET_THRESHOLDS, Alerts

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
    alerts = policies_for(CONFIGS[stack.directory.name].alert_thresholds)
    policies = _policies(stack)
    assert set(policies) == {alert.title for alert in alerts}
    for alert in alerts:
        policy = policies[alert.title]
        assert policy["combiner"] == "OR"
        assert f'section "{alert.title}"' in policy["documentation"]["content"]
        assert "docs/OPERATIONS.md" in policy["documentation"]["content"]


def test_every_condition_reads_a_log_metric_built_from_the_shared_words(stack):
    """...but the one on Dataproc's own running-jobs gauge (stream not running)."""
    filters = log_filters(scheduled=CONFIGS[stack.directory.name].processing == "scheduled")
    for policy in _policies(stack).values():
        for condition in policy["conditions"]:
            body = condition["condition_threshold"]
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
    (condition,) = _policies(stack)["Data freshness"]["conditions"]
    fresh = condition["condition_threshold"]
    assert (fresh["comparison"], fresh["threshold_value"], fresh["duration"]) == (
        "COMPARISON_GT", t.freshness_seconds, f"{t.freshness_seconds}s")
    assert fresh["evaluation_missing_data"] == FIRES_ON_NO_DATA  # no load at all is stale data too
    metric = _metric_of(stack, fresh["filter"])
    assert metric["value_extractor"] == value_extractor(DATA_AGE_FIELD)
    assert metric["metric_descriptor"]["value_type"] == "DISTRIBUTION"


def test_the_freshness_threshold_is_a_bucket_boundary_of_the_data_age(stack):
    """A percentile is interpolated inside its bucket: only a bound at the threshold makes
    "5th percentile > threshold" exact (exponential buckets of growth 2 tripped 240 s near 256 s)."""
    t = CONFIGS[stack.directory.name].alert_thresholds
    (condition,) = _policies(stack)["Data freshness"]["conditions"]
    metric = _metric_of(stack, condition["condition_threshold"]["filter"])
    bounds = metric["bucket_options"]["explicit_buckets"]["bounds"]
    assert t.freshness_seconds in bounds and condition["condition_threshold"]["threshold_value"] in bounds
    assert bounds == sorted(set(bounds)) and "exponential_buckets" not in metric["bucket_options"]
    assert 1800 in data_age_bounds(1800) and 270 in data_age_bounds(270)  # any threshold: whole minutes or not


def test_no_extractor_carries_a_backslash(stack):
    """Terraform's JSON doubles a backslash, and whether Logging unescapes it is undocumented."""
    extractors = [m["value_extractor"] for m in stack.resources("google_logging_metric").values()
                  if "value_extractor" in m]
    assert len(extractors) == 3
    for extractor in extractors:
        assert "\\" not in extractor, extractor
    for key, field in {"data-age": DATA_AGE_FIELD, "records": RECORDS_FIELD, "quarantined": QUARANTINED_FIELD}.items():
        assert "\\" not in value_extractor(field), key


@pytest.mark.parametrize("records, quarantined, age", [(250, 0, 41.5), (12, 3, None), (0, 0, 0.0), (7, 7, 86399.9)])
def test_the_backslash_free_extractors_read_what_the_shared_pattern_reads(records, quarantined, age):
    """...on the stream's per-batch line as Dataproc logs it (a message with a prefix before our fields)."""
    from tests.logging_filter import extract

    line = f"26/11/30 16:05:01 INFO cryptopipe.stream: {batch_fields(records, quarantined, age)}"
    entry = {"jsonPayload": {"message": line}}
    for field in (RECORDS_FIELD, QUARANTINED_FIELD, DATA_AGE_FIELD):
        value = extract(value_extractor(field), entry)
        assert (None if value is None else float(value)) == read_field(line, field), field


def test_the_default_freshness_is_three_polls_and_two_triggers_in_whole_minutes():
    cfg = CONFIGS["prod"]  # streaming
    assert cfg.alert_freshness_minutes is None
    expected = 3 * cfg.interval_seconds + 2 * cfg.trigger_seconds
    assert cfg.alert_thresholds.freshness_seconds == -(-expected // 60) * 60
    assert environment("dev", {"project": "my-project-1", "state_bucket": "my-tfstate-1",
                               "alert_freshness_minutes": 30}).alert_thresholds.freshness_seconds == 1800


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_producer_down_and_stream_not_running_fire_on_absence_and_restarts(stacks_in_mode, env):
    stack, _, cfg = stacks_in_mode[env, "stream"]
    t = cfg.alert_thresholds
    policies = _policies(stack)
    (producer,) = policies["Producer down"]["conditions"]
    polls = producer["condition_threshold"]
    assert (polls["comparison"], polls["threshold_value"]) == ("COMPARISON_LT", 1)
    assert polls["duration"] == f"{t.producer_silence_seconds}s"
    assert "gce_instance" in polls["filter"]
    stream = _conditions(policies["Stream not running"])
    reports = stream["no batch or idle line"]["condition_threshold"]
    assert (reports["comparison"], reports["duration"]) == ("COMPARISON_LT", f"{t.stream_silence_seconds}s")
    # a producer or a stream that never wrote a line, or a cluster that is gone, fires too: an absence
    # condition needs one data point after the policy exists (cloud.google.com/monitoring/alerts/metric-absence)
    for never_reported in (polls, reports, stream["job not RUNNING"]["condition_threshold"]):
        assert never_reported["evaluation_missing_data"] == FIRES_ON_NO_DATA
    for policy in policies.values():
        assert all("condition_absent" not in condition for condition in policy["conditions"])
    not_running = stream["job not RUNNING"]["condition_threshold"]
    assert f'metric.type="{RUNNING_JOBS_METRIC}"' in not_running["filter"]
    cluster = next(iter(stack.resources("google_dataproc_cluster").values()))["name"]
    assert f'resource.label.cluster_name="{cluster}"' in not_running["filter"]
    assert (not_running["comparison"], not_running["threshold_value"]) == ("COMPARISON_LT", 1)
    assert not_running["duration"] == f"{t.stream_silence_seconds}s"
    restarts = stream["driver restarts"]["condition_threshold"]
    assert restarts["threshold_value"] == t.max_driver_restarts_per_hour
    assert restarts["aggregations"][0]["alignment_period"] == "3600s"
    assert restarts["evaluation_missing_data"] == QUIET_ON_NO_DATA  # no start line: no restart


def test_credits_fire_on_a_short_projection_within_a_window_longer_than_the_producers_repeat(stack):
    """The producer repeats a short projection at least every CREDITS_REPORT_SECONDS: a window of
    that long or shorter would let the incident close between two lines while credits stay short."""
    [condition] = _policies(stack)[CREDITS_SHORT.title]["conditions"]
    body = condition["condition_threshold"]
    assert _metric_of(stack, body["filter"])["filter"] == log_filters()["credits-short"]
    assert (body["comparison"], body["threshold_value"], body["duration"]) == ("COMPARISON_GT", 0, "0s")
    assert body["evaluation_missing_data"] == QUIET_ON_NO_DATA  # a silent producer is "Producer down"'s
    [aggregation] = body["aggregations"]
    assert CREDITS_REPORT_SECONDS < int(aggregation["alignment_period"].rstrip("s")) <= 2 * CREDITS_REPORT_SECONDS
    assert aggregation["per_series_aligner"] == "ALIGN_DELTA"


@pytest.mark.parametrize("short", [True, False])
def test_the_credits_metric_counts_the_producers_own_short_lines_only(tmp_path, short):
    """The producer's real ``credits`` line (its state, its JSON formatter) on the serial console,
    as Logging holds it: counted when short, not otherwise, and never the heartbeat's other events."""
    import logging
    from datetime import datetime, timezone

    from producer import Credits, ProducerConfig
    from producer.logs import JsonFormatter, log_event
    from tests.logging_filter import matches

    config = ProducerConfig(api_plan="demo", api_key="k", interval_seconds=300, landing_uri=str(tmp_path / "landing"),
                            spool_dir=str(tmp_path / "spool"))
    credits = Credits(config, clock=lambda: datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
    credits.record(9_990 if short else 10)
    logger, lines = logging.getLogger("producer.poller"), []
    handler = logging.Handler()
    handler.emit = lambda record: lines.append(JsonFormatter().format(record))
    logger.addHandler(handler)
    try:
        log_event(logger, logging.WARNING, "credits", **credits.state().as_json())
        log_event(logger, logging.WARNING, "credits_reconciled", short=True)  # another event, the same field
    finally:
        logger.removeHandler(handler)
    serial = "projects/p/logs/serialconsole.googleapis.com%2Fserial_port_1_output"
    entries = [{"resource": {"type": "gce_instance"}, "logName": serial, "textPayload": line} for line in lines]
    assert [matches(log_filters()["credits-short"], entry) for entry in entries] == [short, False]


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_scheduled_mode_alerts_on_a_run_missed_or_failed_and_ages_data_by_the_schedule(stacks_in_mode, env):
    """As synthesized: no stream policy, the run-missed one firing after the interval plus a run's time
    without a run_finished line (a failed run writes none), also on no data; freshness from the schedule."""
    stack, _, cfg = stacks_in_mode[env, "scheduled"]
    t = cfg.alert_thresholds
    assert t == Thresholds.for_schedule(cfg.interval_seconds, cfg.schedule_minutes * 60,
                                        cfg.scheduled_run_minutes * 60, quarantine_percent=cfg.alert_quarantine_percent)
    policies = _policies(stack)
    assert "Stream not running" not in policies
    (missed,) = policies[RUN_MISSED.title]["conditions"]
    body = missed["condition_threshold"]
    assert (body["comparison"], body["threshold_value"]) == ("COMPARISON_LT", 1)
    assert body["duration"] == f"{(cfg.schedule_minutes + cfg.scheduled_run_minutes) * 60}s"
    assert body["evaluation_missing_data"] == FIRES_ON_NO_DATA
    assert _metric_of(stack, body["filter"])["filter"] == log_filters(scheduled=True)["runs-finished"]
    (fresh,) = policies["Data freshness"]["conditions"]
    assert fresh["condition_threshold"]["threshold_value"] == t.freshness_seconds > cfg.schedule_minutes * 60
    # the stream's mode of the same environment keeps its own
    stream, _, stream_cfg = stacks_in_mode[env, "stream"]
    assert stream_cfg.alert_thresholds.freshness_seconds < t.freshness_seconds
    assert RUN_MISSED.title not in _policies(stream)


def test_quarantine_rate_is_quarantined_over_read_lines_of_15_minutes(stack):
    t = CONFIGS[stack.directory.name].alert_thresholds
    (condition,) = _policies(stack)["Quarantine rate"]["conditions"]
    rate = condition["condition_threshold"]
    assert rate["threshold_value"] == pytest.approx(t.quarantine_percent / 100)
    assert _metric_of(stack, rate["filter"])["value_extractor"] == value_extractor(QUARANTINED_FIELD)
    assert _metric_of(stack, rate["denominator_filter"])["value_extractor"] == value_extractor(RECORDS_FIELD)
    for aggregations in (rate["aggregations"], rate["denominator_aggregations"]):
        assert aggregations == [{"alignment_period": "900s", "per_series_aligner": "ALIGN_MEAN"}]
    assert rate["evaluation_missing_data"] == QUIET_ON_NO_DATA


def test_without_channels_the_policies_still_exist_and_notify_nobody(stacks):
    dev = stacks["dev"]
    assert CONFIGS["dev"].alert_emails == ()
    assert not dev.resources("google_monitoring_notification_channel")
    assert all(p.get("notification_channels", []) == [] for p in _policies(dev).values())
    assert not dev.resources("google_billing_budget")


def _synth_alerts(tmp_path, **values) -> dict:
    """Only the Alerts construct of an environment with ``values``, synthesized (no artifacts needed)."""
    return _synth_alerts_stack(tmp_path, **values)["resource"]


def _synth_alerts_stack(tmp_path, **values) -> dict:
    """The stack of :func:`_synth_alerts`: its providers as the pipeline's (infra/stacks/pipeline.py) and the alerts."""
    from infra.cdk import App, TerraformStack
    from infra.stacks.pipeline import providers

    cfg = environment("dev", {"project": "my-project-1", "state_bucket": "my-tfstate-1",
                              "project_number": 123456789012, **values})
    app = App(outdir=str(tmp_path))
    stack = TerraformStack(app, "alerts")
    Alerts(stack, "alerts", cfg, after=[], billing_provider=providers(stack, cfg))
    app.synth()
    return json.loads((tmp_path / "stacks" / "alerts" / "cdk.tf.json").read_text())


def test_the_budget_goes_through_a_provider_with_the_project_as_quota_project(tmp_path, stack):
    document = _synth_alerts_stack(tmp_path, billing_account="012345-6789AB-CDEF01", budget_amount=150)
    (default, billing) = sorted(document["provider"]["google"], key=lambda p: p.get("alias", ""))
    assert "user_project_override" not in default and "billing_project" not in default
    assert (billing["alias"], billing["user_project_override"], billing["billing_project"]) == (
        "billing", True, "my-project-1")
    (budget,) = document["resource"]["google_billing_budget"].values()
    assert budget["provider"] == "google.billing"
    # without a budget, no quota project anywhere (the environments' stacks)
    assert [set(p) & {"user_project_override", "billing_project"} for p in stack.json["provider"]["google"]] == [set()]


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


def test_scheduled_mode_alerts_on_a_missed_or_failed_run_instead_of_a_stopped_stream():
    """Between runs the cluster is stopped: no running job, no idle line, a driver start per run. The
    cause alert is then 'no run ended well' for the interval plus a run's time, firing on no data."""
    from core.health import RUN_FINISHED, stream_mark
    from infra.monitoring.conditions import FIRES_ON_NO_DATA, condition_count, conditions
    from infra.monitoring.log_metrics import log_filters

    thresholds = Thresholds.for_schedule(60, 3600, 900)
    by_key = conditions(thresholds, "cluster", lambda key: f"user/{key}")
    assert list(by_key) == [alert.key for alert in policies_for(thresholds)] == [
        "data-freshness", "producer-down", "run-missed", "quarantine-rate", "coingecko-credits"]
    (missed,) = by_key["run-missed"]
    body = missed["condition_threshold"]
    assert body["filter"].startswith('metric.type="user/runs-finished"')
    assert body["duration"] == "4500s" and body["evaluation_missing_data"] == FIRES_ON_NO_DATA
    scheduled_metrics = log_filters(scheduled=True)
    assert stream_mark(RUN_FINISHED) in scheduled_metrics["runs-finished"]
    assert {"stream-reports", "stream-starts", "runs-finished"} - set(scheduled_metrics) == {
        "stream-reports", "stream-starts"}  # no idle lines, a driver start per run
    assert "runs-finished" not in log_filters()
    assert condition_count(thresholds) == 5 and condition_count(Thresholds.from_intervals(60, 10)) == 7
    # the job writes the line the metric counts at the end of a run: tests/cryptopipe/test_scheduled_local.py
