"""The first deploy, rehearsed (rehearsal.py) on the session's synth of both CDK families: it passes
for every environment, and each defect the rules exist for makes it fail.

Each mutation takes today's JSON and undoes one fix: the wait before the alert policies, the
age of a grant, the key's step before the first apply, a condition's handling of no data.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from .conftest import ENVIRONMENTS, ROOT
from .rehearsal import (
    FIRST_DEPLOY,
    GRANT_PROPAGATION_SECONDS,
    METRIC_VISIBLE_SECONDS,
    RULES,
    AddKey,
    StackApply,
    rehearse,
)

STACKS = (*ENVIRONMENTS, *(f"bootstrap-{env}" for env in ENVIRONMENTS))


def _documents(directory: Path) -> dict[str, dict]:
    return {name: json.loads((directory / "stacks" / name / "cdk.tf.json").read_text()) for name in STACKS}


@pytest.fixture(scope="module")
def cdktf_documents(synth_dir):
    return _documents(synth_dir)


@pytest.fixture(params=["cdktf", "cdktn", "cdktf-flipped", "cdktn-flipped"])
def documents(request):
    """Each family's synth, and the same with every environment in its other processing mode."""
    fixture = {"cdktf": "synth_dir", "cdktn": "cdktn_synth_dir", "cdktf-flipped": "flipped_synth_dir",
               "cdktn-flipped": "cdktn_flipped_synth_dir"}[request.param]
    return _documents(request.getfixturevalue(fixture))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_first_deploy_of_each_environment_breaks_no_rule(documents, env):
    assert [str(finding) for finding in rehearse(documents, env)] == []


def _mutated(documents: dict[str, dict]) -> dict[str, dict]:
    return copy.deepcopy(documents)


def _resources(document: dict, type_: str) -> dict[str, dict]:
    return document["resource"][type_]


def _rules(findings) -> set[str]:
    return {finding.rule for finding in findings}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_1_alert_policies_made_right_after_their_metrics_fail(cdktf_documents, env):
    documents = _mutated(cdktf_documents)
    pipeline = documents[env]
    (wait,) = [name for name, body in _resources(pipeline, "time_sleep").items()
               if any(d.startswith("google_logging_metric.") for d in body["depends_on"])]
    del _resources(pipeline, "time_sleep")[wait]
    for policy in _resources(pipeline, "google_monitoring_alert_policy").values():
        policy["depends_on"].remove(f"time_sleep.{wait}")
    findings = rehearse(documents, env)
    assert _rules(findings) == {"metric-visible"}
    assert {f.address for f in findings} == {f"google_monitoring_alert_policy.{name}"
                                             for name in _resources(pipeline, "google_monitoring_alert_policy")}


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("workload", ["google_dataproc_cluster", "google_compute_instance"])
def test_2_a_workload_starting_while_its_grants_are_young_fails(cdktf_documents, env, workload):
    """The workload's wait cut to a minute: its account's grants are a minute old when it starts."""
    documents = _mutated(cdktf_documents)
    pipeline = documents[env]
    (body,) = _resources(pipeline, workload).values()
    wait = next(d for d in body["depends_on"] if d.startswith("time_sleep.")).split(".", 1)[1]
    _resources(pipeline, "time_sleep")[wait]["create_duration"] = "60s"
    findings = rehearse(documents, env)
    assert _rules(findings) == {"grants-propagated"}
    assert {f.address.split(".")[0] for f in findings} == {workload}
    assert all(f.message.endswith("is 60 s old") for f in findings)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_3_a_first_apply_before_the_key_step_fails(cdktf_documents, env):
    without_key = tuple(step for step in FIRST_DEPLOY if not isinstance(step, AddKey))
    findings = rehearse(cdktf_documents, env, without_key)
    assert _rules(findings) == {"key-version"}
    assert [f.address.split(".")[0] for f in findings] == ["google_compute_instance"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_4_a_liveness_condition_without_missing_data_handling_fails(cdktf_documents, env):
    """The stream's cluster gauge, or scheduled mode's runs that ended well (dev runs scheduled)."""
    documents = _mutated(cdktf_documents)
    liveness = "no run ended well" if "google_workflows_workflow" in documents[env]["resource"] else "job not RUNNING"
    for policy in _resources(documents[env], "google_monitoring_alert_policy").values():
        for condition in policy["conditions"]:
            if condition["display_name"] == liveness:
                del condition["condition_threshold"]["evaluation_missing_data"]
    findings = rehearse(documents, env)
    assert [(f.rule, f.message) for f in findings] == [
        ("fires-on-no-data", f"'{liveness}' does not fire when its signal never reported")]


def _scheduled(cdktf_documents, flipped_documents, env) -> dict[str, dict]:
    """The stacks with ``env`` in scheduled mode."""
    source = cdktf_documents if "google_workflows_workflow" in cdktf_documents[env]["resource"] else flipped_documents
    return _mutated(source)


@pytest.fixture(scope="module")
def flipped_documents(flipped_synth_dir):
    return _documents(flipped_synth_dir)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_5_a_schedule_that_fires_before_the_schedulers_grants_propagate_fails(cdktf_documents, flipped_documents,
                                                                              env):
    """Scheduled mode's first deploy: without its wait, the first trigger runs the workflow as an account whose
    grants (invoke, the jobs role, the role on the cluster) are seconds old."""
    documents = _scheduled(cdktf_documents, flipped_documents, env)
    pipeline = documents[env]
    (schedule,) = _resources(pipeline, "google_cloud_scheduler_job").values()
    (wait,) = [d for d in schedule["depends_on"] if d.startswith("time_sleep.")]
    schedule["depends_on"].remove(wait)
    del _resources(pipeline, "time_sleep")[wait.split(".", 1)[1]]
    findings = rehearse(documents, env)
    assert _rules(findings) == {"grants-propagated"}
    assert {f.address.split(".")[0] for f in findings} == {"google_cloud_scheduler_job"}
    assert len(findings) == 3  # workflows.invoker, the jobs role, the role on the cluster


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_6_a_schedule_made_before_its_workflow_fails(cdktf_documents, flipped_documents, env):
    documents = _scheduled(cdktf_documents, flipped_documents, env)
    pipeline = documents[env]
    (schedule,) = _resources(pipeline, "google_cloud_scheduler_job").values()
    (workflow_address,) = [d for d in schedule["depends_on"] if d.startswith("google_workflows_workflow.")]
    (workflow,) = _resources(pipeline, "google_workflows_workflow").values()
    schedule["depends_on"].remove(workflow_address)
    schedule["http_target"]["uri"] = schedule["http_target"]["uri"].replace(
        "${" + workflow_address + ".name}", workflow["name"])
    findings = rehearse(documents, env)
    assert [(f.rule, f.address.split(".")[0]) for f in findings] == [("target-exists", "google_cloud_scheduler_job")]


def test_an_absence_condition_fails_as_it_never_fires_for_a_producer_that_never_logged(cdktf_documents):
    documents = _mutated(cdktf_documents)
    for policy in _resources(documents["dev"], "google_monitoring_alert_policy").values():
        for condition in policy["conditions"]:
            if condition["display_name"] == "no poll":
                body = condition.pop("condition_threshold")
                condition["condition_absent"] = {"filter": body["filter"], "duration": body["duration"]}
    assert [f.message for f in rehearse(documents, "dev")] == ["'no poll' is an absence condition"]


def test_a_resource_that_does_not_wait_for_its_api_and_a_name_too_long_fail(cdktf_documents):
    documents = _mutated(cdktf_documents)
    (disk,) = _resources(documents["dev"], "google_compute_disk").values()
    disk["depends_on"] = []
    disk["name"] = "x" * 64
    assert sorted((f.rule, f.address.split(".")[0]) for f in rehearse(documents, "dev")) == [
        ("api-enabled", "google_compute_disk"), ("name-limits", "google_compute_disk")]


def test_time_advances_along_the_dependency_path_by_each_wait():
    """Two waits in a row add up; a resource beside them starts at once."""
    document = {"resource": {
        "time_sleep": {"a": {"create_duration": "120s"},
                       "b": {"create_duration": "5m", "triggers": {"after": "${time_sleep.a.id}"}}},
        "google_compute_network": {"n": {"name": "n", "depends_on": ["time_sleep.b"]},
                                   "m": {"name": "m"}},
    }}
    run = StackApply(document)
    assert run.start["google_compute_network.n"] == 420
    assert run.start["google_compute_network.m"] == 0
    assert run.ancestors("google_compute_network.n") == {"time_sleep.a", "time_sleep.b"}


def test_the_rules_match_googles_documented_delays_and_each_names_its_source():
    assert METRIC_VISIBLE_SECONDS == 10 * 60 and GRANT_PROPAGATION_SECONDS == 7 * 60
    assert all(rule.source for rule in RULES.values())


def test_the_deployment_guide_deploys_in_the_rehearsed_order():
    """Bootstrap (which makes the key's secret), then the key, then the pipeline's first deploy."""
    readme = (ROOT / "docs" / "DEPLOY.md").read_text()
    bootstrap = readme.index("scripts/cdktf.sh deploy bootstrap-dev")
    key = readme.index("gcloud secrets versions add cryptopipe-dev-producer-api-key")
    deploy = readme.index("scripts/cdktf.sh deploy dev ")
    assert bootstrap < key < deploy
