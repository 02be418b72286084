"""Both environments synthesize, with every resource, one backend each, and the outputs."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from core.views import looker_studio_url
from infra.environments import load_environments

from .conftest import ENVIRONMENTS, MODES

EXPECTED_COUNTS = {
    "google_project_service": 13,  # workflows and cloudscheduler too: a switch to scheduled mode needs no wait
    "google_project_iam_member": 2,
    "google_project_iam_audit_config": 2,  # Data Access logs: Cloud Storage, Secret Manager
    "google_compute_network": 1,
    "google_compute_subnetwork": 1,
    "google_compute_router": 1,
    "google_compute_router_nat": 1,
    "google_compute_firewall": 2,
    "google_storage_bucket": 2,  # data, and the cluster's temp bucket
    "google_storage_bucket_iam_member": 8,
    "google_storage_bucket_object": 5,  # producer; job zip, entry and dependencies; the cluster's init action
    "google_bigquery_dataset": 1,
    "google_bigquery_dataset_iam_member": 1,
    "google_bigquery_table_iam_member": 1,  # the planner reads market_ticks (scripts/check-stream.sh)
    "google_bigquery_table": 4,  # market_ticks, quarantine, and the two views
    "google_dataproc_cluster": 1,
    "google_dataproc_job": 1,
    "google_secret_manager_secret_iam_member": 1,  # on the bootstrap's secret
    "google_compute_instance": 1,
    "google_compute_disk": 1,  # the producer's spool
    "google_logging_metric": 7,  # core/health.py's signals and the credits' (cdktf/infra/stacks/alerts.py)
    "google_monitoring_alert_policy": 5,  # one per alert, the credits' too; channels and a budget only when configured
    "time_sleep": 3,  # metrics visible to Monitoring; the cluster's and the VM's grants propagated (infra/stacks/waits.py)
}
#: Scheduled mode (infra/stacks/schedule.py) in place of the stream's job and its signals.
SCHEDULED_COUNTS = {
    **{type_: count for type_, count in EXPECTED_COUNTS.items() if type_ != "google_dataproc_job"},
    "google_project_iam_member": 4,  # + the scheduler's: workflows.invoker, its jobs role
    "google_dataproc_cluster_iam_member": 1,  # the scheduler's role on the cluster alone
    "google_workflows_workflow": 1,
    "google_cloud_scheduler_job": 1,
    "google_logging_metric": 6,  # runs-finished in place of the stream's reports and starts
    "time_sleep": 4,  # + the schedule's wait for the scheduler's grants
}


def test_both_environments_are_synthesized_with_their_bootstraps(synth_dir):
    # `cdktf deploy dev` selects the stack named exactly dev: never bootstrap-dev
    assert sorted(p.name for p in (synth_dir / "stacks").iterdir()) == [
        "bootstrap-dev", "bootstrap-prod", "dev", "prod"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("mode", MODES)
def test_every_resource_is_declared_and_nothing_else(stacks_in_mode, env, mode):
    stack, _, _ = stacks_in_mode[env, mode]
    assert stack.counts() == (SCHEDULED_COUNTS if mode == "scheduled" else EXPECTED_COUNTS)


def test_one_gcs_backend_per_environment(stacks):
    backends = {env: stack.json["terraform"]["backend"] for env, stack in stacks.items()}
    configs = {cfg.name: cfg for cfg in load_environments()}
    for env, backend in backends.items():
        assert backend == {"gcs": {"bucket": configs[env].state_bucket, "prefix": f"cryptopipe/{env}"}}
    assert len({b["gcs"]["prefix"] for b in backends.values()}) == 2


def test_provider_is_pinned_to_the_environment(stack):
    env = stack.directory.name
    cfg = {c.name: c for c in load_environments()}[env]
    (provider,) = stack.json["provider"]["google"]
    assert provider["project"] == cfg.project
    assert provider["region"] == cfg.region
    assert provider["default_labels"] == {"app": "cryptopipe", "env": env}
    assert stack.json["terraform"]["required_providers"]["google"]["version"] == "6.50.0"


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("mode", MODES)
def test_outputs_name_what_was_deployed(stacks_in_mode, env, mode):
    stack, _, cfg = stacks_in_mode[env, mode]
    outputs = {name: body["value"] for name, body in stack.json["output"].items()}
    project = f"my-cryptopipe-{env}"
    assert outputs["bucket"] == stack.ref("google_storage_bucket", stack.bucket(), "name")
    assert outputs["table_id"] == f"{project}.cryptopipe_{env}.market_ticks"
    assert outputs["quarantine_table_id"] == f"{project}.cryptopipe_{env}.quarantine"
    assert outputs["cluster"] == stack.ref_one("google_dataproc_cluster", "name")
    assert outputs["processing_mode"] == mode  # scripts/check-stream.sh checks each mode its way
    if mode == "stream":
        assert outputs["job_id"] == stack.ref_one("google_dataproc_job", "reference[0].job_id")
        assert "workflow" not in outputs
    else:
        assert "job_id" not in outputs
        assert outputs["workflow"] == f"projects/{project}/locations/us-central1/workflows/" \
                                      f"{stack.one('google_workflows_workflow')['name']}"
        assert outputs["run_alert_seconds"] == cfg.alert_thresholds.stream_silence_seconds
    assert outputs["producer_vm"] == stack.ref_one("google_compute_instance", "name")
    assert (outputs["project"], outputs["region"]) == (project, "us-central1")  # scripts/check-stream.sh
    assert "api_key_secret" in outputs
    assert outputs["looker_studio_url"] == looker_studio_url(project, f"cryptopipe_{env}")


def test_looker_studio_url_opens_the_deployed_views(stack):
    url = urlsplit(stack.json["output"]["looker_studio_url"]["value"])
    query = parse_qs(url.query)
    env = stack.directory.name
    assert (url.netloc, url.path) == ("lookerstudio.google.com", "/reporting/create")
    sources = {query[f"ds.{ds}.tableId"][0]: ds for ds in ("ds0", "ds1")}
    assert set(sources) == {"candles_1m", "latest_prices"}
    for ds in sources.values():
        assert query[f"ds.{ds}.connector"] == ["bigQuery"]
        assert query[f"ds.{ds}.projectId"] == [f"my-cryptopipe-{env}"]
        assert query[f"ds.{ds}.datasetId"] == [f"cryptopipe_{env}"]
    declared = {body["table_id"] for body in stack.resources("google_bigquery_table").values() if "view" in body}
    assert set(sources) <= declared


@pytest.mark.parametrize("type_", sorted({**EXPECTED_COUNTS, **SCHEDULED_COUNTS}))
def test_named_resources_follow_prefix_env_stage_thing(stacks, type_):
    for env, stack in stacks.items():
        for body in stack.resources(type_).values():
            for key in ("name", "account_id", "secret_id"):
                if key in body and not str(body[key]).startswith(("artifacts/", "${")):
                    assert str(body[key]).startswith(f"cryptopipe-{env}-"), (type_, body[key])


def test_every_root_resource_waits_for_the_apis(stack):
    services = stack.addresses("google_project_service")
    for type_ in ("google_service_account", "google_compute_network", "google_storage_bucket",
                  "google_bigquery_dataset", "google_project_iam_audit_config"):
        for body in stack.resources(type_).values():
            assert services <= set(body["depends_on"]), type_
    for body in stack.resources("google_project_service").values():
        assert body["disable_on_destroy"] is False
