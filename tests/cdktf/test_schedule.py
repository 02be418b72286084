"""Scheduled mode's starter as synthesized: the workflow's steps, its schedule and its identity
(infra/stacks/schedule.py, infra/artifacts/scheduled_run.py; docs/STREAM.md, "Scheduled mode").

No Workflows runtime runs here: what is checked is the definition Workflows receives, read back from
the synthesized JSON (Terraform's ``$${`` unescaped), step by step.
"""

from __future__ import annotations

import base64
import json

import pytest

from infra.access.api_calls import WORKFLOW_CALLS, WORKFLOW_CONNECTOR
from infra.artifacts.scheduled_run import CONNECTOR, ENDED, connector_methods, cron, workflow

from .conftest import ENVIRONMENTS


@pytest.fixture(params=ENVIRONMENTS)
def scheduled(request, stacks_in_mode):
    stack, _, cfg = stacks_in_mode[request.param, "scheduled"]
    return stack, cfg


def _steps(stack) -> list[str]:
    return [name for step in stack.workflow()["main"]["steps"] for name in step]


def test_the_workflow_calls_exactly_the_connector_methods_the_permission_model_lists(scheduled):
    stack, _ = scheduled
    assert CONNECTOR == WORKFLOW_CONNECTOR
    assert connector_methods(stack.workflow()) == set(WORKFLOW_CALLS)


def test_a_slot_skips_while_a_job_is_active_and_only_then_touches_the_cluster(scheduled):
    stack, cfg = scheduled
    steps = _steps(stack)
    assert steps[:3] == ["init", "look_for_active_jobs", "skip_while_a_job_is_active"]
    listed = stack.workflow_step("look_for_active_jobs")
    assert listed["call"].endswith(".jobs.list")
    assert listed["args"] == {"projectId": "${project}", "region": "${region}", "clusterName": "${cluster}",
                              "jobStateMatcher": "ACTIVE"}
    (skip,) = stack.workflow_step("skip_while_a_job_is_active")["switch"]
    assert skip["return"]["state"] == "skipped" and "> 0" in skip["condition"]
    init = {key: value for item in stack.workflow_step("init")["assign"] for key, value in item.items()}
    assert (init["project"], init["region"], init["cluster"]) == (cfg.project, cfg.region, cfg.cluster_name)
    assert init["cluster"] == stack.one("google_dataproc_cluster")["name"]


def test_each_run_is_submitted_under_its_slots_job_id_and_request_id(scheduled):
    stack, cfg = scheduled
    init = {key: value for item in stack.workflow_step("init")["assign"] for key, value in item.items()}
    n = cfg.schedule_minutes
    assert init["slot"] == f"${{int(sys.now()) // 60 // {n} * {n}}}"  # minutes since the epoch, floored
    assert init["run"] == f'${{"{cfg.run_id_prefix}-" + string(slot)}}'
    submit = stack.workflow_step("submit")
    body = submit["try"]["args"]["body"]
    assert body["requestId"] == body["job"]["reference"]["jobId"] == "${run}"
    assert body["job"]["placement"] == {"clusterName": "${cluster}"}
    # a retried trigger whose job id exists starts nothing: the slot already ran
    (already,) = submit["except"]["steps"][0]["slot_already_ran"]["switch"]
    assert already["condition"] == "${error.code == 409}" and already["return"]["state"] == "skipped"
    assert len(f"{cfg.run_id_prefix}-29999999-start") <= 40  # Dataproc's requestId limit


def test_the_cluster_starts_when_stopped_and_stops_only_when_no_job_is_left(scheduled):
    stack, _ = scheduled
    steps = _steps(stack)
    assert steps.index("start_cluster") > steps.index("get_cluster")
    assert steps.index("submit") < steps.index("get_job") < steps.index("look_for_jobs_left") \
        < steps.index("stop_cluster")
    for name in ("start_cluster", "stop_cluster"):  # no operation polling: no dataproc.operations.get
        assert stack.workflow_step(name)["args"]["connector_params"] == {"skip_polling": True}
    (idle,) = stack.workflow_step("stop_when_idle")["switch"]
    assert idle["condition"].endswith("== 0}") and idle["next"] == "stop_cluster"
    assert stack.workflow_step("stop_when_idle")["next"] == "report"
    (ended,) = stack.workflow_step("until_the_job_ends")["switch"]
    assert json.dumps(list(ENDED)) in ended["condition"]
    # a run that did not end DONE fails the execution (what the alert and the smoke check read)
    assert stack.workflow_step("run_failed")["raise"]["state"] == "${job.status.state}"


def test_the_schedule_starts_the_workflow_as_the_scheduler_every_interval(scheduled):
    stack, cfg = scheduled
    job = stack.one("google_cloud_scheduler_job")
    workflow_ = stack.one("google_workflows_workflow")
    scheduler = cfg.service_account_email(cfg.service_account_ids["scheduler"])
    assert workflow_["service_account"] == scheduler
    assert (job["schedule"], job["time_zone"]) == (cron(cfg.schedule_minutes), "Etc/UTC")
    target = job["http_target"]
    assert target["uri"] == ("https://workflowexecutions.googleapis.com/v1/projects/"
                             f"{cfg.project}/locations/{cfg.region}/workflows/"
                             f"{stack.ref_one('google_workflows_workflow', 'name')}/executions")
    assert target["http_method"] == "POST"
    assert json.loads(base64.b64decode(target["body"])) == {"argument": "{}"}
    assert target["oauth_token"] == {"service_account_email": scheduler,
                                     "scope": "https://www.googleapis.com/auth/cloud-platform"}
    grant = stack.one("google_dataproc_cluster_iam_member")
    assert grant["cluster"] == stack.ref_one("google_dataproc_cluster", "name")
    assert grant["role"] == cfg.custom_role(cfg.scheduler_cluster_role_id)
    assert grant["member"] == f"serviceAccount:{scheduler}"


@pytest.mark.parametrize("minutes, expected", [(15, "*/15 * * * *"), (30, "*/30 * * * *"), (60, "0 * * * *"),
                                               (120, "0 */2 * * *"), (720, "0 */12 * * *"), (1440, "0 0 * * *")])
def test_the_cron_slots_are_the_workflows_floors(minutes, expected):
    assert cron(minutes) == expected


def test_a_prefix_too_long_for_a_request_id_is_refused():
    with pytest.raises(ValueError, match="over Dataproc's 40 for a requestId"):
        workflow(project="p", region="r", cluster="c", run_id_prefix="x" * 30, schedule_minutes=60,
                 start_deadline_seconds=900, pyspark_job={}, labels={})
