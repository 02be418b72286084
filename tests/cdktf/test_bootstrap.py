"""The bootstrap-<env> stacks: state bucket, a Workload Identity provider for this repository only,
and CI identities holding exactly the roles deployment (or planning) needs."""

from __future__ import annotations

import json
import re

import pytest

from infra.access.model import predefined_roles
from infra.environments import environment, load_environments

CONFIGS = {cfg.name: cfg for cfg in load_environments()}
REPOSITORY = "my-org/cryptopipe"  # cdktf/environments.toml

DEPLOYER_ROLES = {
    "roles/serviceusage.serviceUsageAdmin",
    "roles/compute.networkAdmin",
    "roles/compute.securityAdmin",
    "roles/compute.instanceAdmin.v1",
    "roles/storage.admin",
    "roles/bigquery.dataOwner",
    "roles/dataproc.editor",
    "roles/workflows.editor",  # scheduled mode's workflow
    "roles/cloudscheduler.admin",  # ... and its schedule
    "roles/logging.configWriter",  # the alerts' log-based metrics
    "roles/monitoring.alertPolicyEditor",
    "roles/monitoring.notificationChannelEditor",
}
PLANNER_ROLES = {
    "roles/serviceusage.serviceUsageViewer",
    "roles/iam.serviceAccountViewer",
    "roles/iam.securityReviewer",
    "roles/compute.viewer",
    "roles/storage.bucketViewer",
    "roles/bigquery.metadataViewer",
    "roles/bigquery.jobUser",  # the smoke check's query (scripts/check-stream.sh)
    "roles/dataproc.viewer",
    "roles/workflows.viewer",
    "roles/cloudscheduler.viewer",
    "roles/secretmanager.viewer",
    "roles/logging.viewer",
    "roles/monitoring.alertPolicyViewer",
    "roles/monitoring.notificationChannelViewer",
}


@pytest.fixture(params=sorted(CONFIGS))
def env(request):
    return request.param


def _account(stack, role):
    return stack.named("google_service_account", "account_id", lambda account_id: account_id.endswith(f"-{role}"))


def _project_roles(stack, role):
    """role (or custom role reference) -> condition expression, of one CI account's project grants."""
    member = stack.ref("google_service_account", _account(stack, role), "member")
    return {
        body["role"]: body.get("condition", {}).get("expression")
        for body in stack.resources("google_project_iam_member").values() if body["member"] == member
    }


def test_bootstrap_stack_keeps_its_state_apart_in_the_environments_bucket(bootstrap_stacks, env):
    stack = bootstrap_stacks[env]
    assert stack.json["terraform"]["backend"] == {
        "gcs": {"bucket": CONFIGS[env].state_bucket, "prefix": f"cryptopipe/bootstrap-{env}"}}
    (provider,) = stack.json["provider"]["google"]
    assert provider["project"] == CONFIGS[env].project


def test_state_bucket_is_adopted_versioned_private_and_kept(bootstrap_stacks, env):
    stack = bootstrap_stacks[env]
    bucket = stack.one("google_storage_bucket")
    cfg = CONFIGS[env]
    assert bucket["name"] == cfg.state_bucket
    assert bucket["versioning"] == {"enabled": True}
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["force_destroy"] is False
    assert bucket["lifecycle"] == {"prevent_destroy": True}
    (rule,) = bucket["lifecycle_rule"]
    assert rule["condition"]["with_state"] == "ARCHIVED"  # only old state versions are ever deleted
    assert stack.json["import"] == [{"id": f"{cfg.project}/{cfg.state_bucket}",
                                     "to": stack.address("google_storage_bucket", bucket)}]


def test_identity_provider_admits_only_this_repositorys_ci_jobs(bootstrap_stacks, env):
    stack = bootstrap_stacks[env]
    pool = stack.one("google_iam_workload_identity_pool")
    provider = stack.one("google_iam_workload_identity_pool_provider")
    assert pool["workload_identity_pool_id"] == f"cryptopipe-{env}-ci"
    assert provider["workload_identity_pool_provider_id"] == "github"
    assert provider["oidc"] == {"issuer_uri": "https://token.actions.githubusercontent.com"}
    assert provider["attribute_mapping"] == {
        "google.subject": "assertion.sub", "attribute.repository_id": "assertion.repository_id"}
    repo = f"repo:{REPOSITORY}"
    cfg = CONFIGS[env]
    # numeric ids: a deleted repository's or owner's name can be registered again by anyone
    assert provider["attribute_condition"] == (
        f"assertion.repository_id == '{cfg.github_repository_id}' && "
        f"assertion.repository_owner_id == '{cfg.github_repository_owner_id}' && ("
        f"assertion.sub == '{repo}:environment:{env}' || assertion.sub == '{repo}:pull_request' || "
        f"assertion.sub == '{repo}:ref:refs/heads/main')")


def test_only_jobs_in_the_github_environment_may_impersonate_the_deployer(bootstrap_stacks, env):
    stack = bootstrap_stacks[env]
    principals = "iam.googleapis.com/" + stack.ref_one("google_iam_workload_identity_pool", "name")
    bindings = {
        (body["service_account_id"], body["role"], body["member"])
        for body in stack.resources("google_service_account_iam_member").values()
    }
    deployer = stack.ref("google_service_account", _account(stack, "deployer"), "member")
    assert bindings == {
        (stack.ref("google_service_account", _account(stack, "deployer"), "name"), "roles/iam.workloadIdentityUser",
         f"principal://{principals}/subject/repo:{REPOSITORY}:environment:{env}"),
        (stack.ref("google_service_account", _account(stack, "planner"), "name"), "roles/iam.workloadIdentityUser",
         f"principalSet://{principals}/attribute.repository_id/{CONFIGS[env].github_repository_id}"),
        # the deployer attaches the three workload accounts (the VM, the cluster, scheduled mode's workflow and
        # schedule), and no other
        *((stack.ref("google_service_account", _account(stack, who), "name"), "roles/iam.serviceAccountUser",
           deployer) for who in ("producer", "processing", "scheduler")),
    }


def _custom_role(stack, role_id):
    return stack.named("google_project_iam_custom_role", "role_id", lambda found: found == role_id)


def test_deployer_has_exactly_the_roles_deployment_needs(bootstrap_stacks, stacks_in_mode, env):
    stack = bootstrap_stacks[env]
    cfg = CONFIGS[env]
    custom = [stack.ref("google_project_iam_custom_role", _custom_role(stack, role_id), "name")
              for role_id in (cfg.secret_deployer_role_id, cfg.cluster_iam_role_id)]
    roles = _project_roles(stack, "deployer")
    iam_admin = roles.pop("roles/resourcemanager.projectIamAdmin")
    assert roles == {**dict.fromkeys(DEPLOYER_ROLES), **dict.fromkeys(custom)}
    # Project IAM Admin only for the roles the pipeline stack grants at project level, in either mode: a
    # switch of modes needs no new bootstrap
    granted = {mode: sorted({g["role"] for g in stacks_in_mode[env, mode][0].resources(
        "google_project_iam_member").values()}) for mode in ("stream", "scheduled")}
    both = sorted({*granted["stream"], *granted["scheduled"]})
    assert iam_admin == ("api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', [])"
                         f".hasOnly([{', '.join(repr(role) for role in both)}])")
    assert granted["stream"] == [cfg.dataproc_agent_role, "roles/bigquery.jobUser"]
    assert granted["scheduled"] == sorted([*granted["stream"], cfg.custom_role(cfg.scheduler_jobs_role_id),
                                           "roles/workflows.invoker"])


def test_the_clusters_project_role_is_dataproc_worker_without_storage(bootstrap_stacks, env):
    """Made here, by the owner: the deployer can grant it but not widen it."""
    from infra.access.model import predefined_roles

    custom = _custom_role(bootstrap_stacks[env], CONFIGS[env].dataproc_agent_role_id)
    worker = predefined_roles()["roles/dataproc.worker"]
    assert set(custom["permissions"]) == {p for p in worker if not p.startswith("storage.")}


def test_the_workload_accounts_are_made_here(bootstrap_stacks, env):
    made = {body["account_id"] for body in bootstrap_stacks[env].resources("google_service_account").values()}
    cfg = CONFIGS[env]
    assert made == {*cfg.service_account_ids.values(), *cfg.ci_service_account_ids.values()}


def test_deployer_manages_who_reads_the_key_but_never_the_secret_or_its_value(bootstrap_stacks, env):
    custom = _custom_role(bootstrap_stacks[env], CONFIGS[env].secret_deployer_role_id)
    assert custom["role_id"] == f"cryptopipe_{env}_secret_deployer"
    assert sorted(custom["permissions"]) == ["secretmanager.secrets.get", "secretmanager.secrets.getIamPolicy",
                                             "secretmanager.secrets.setIamPolicy"]


def test_the_keys_secret_is_made_here_so_its_version_precedes_the_first_deploy(bootstrap_stacks, stacks, env):
    stack = bootstrap_stacks[env]
    secret = stack.one("google_secret_manager_secret")
    assert secret["secret_id"] == f"cryptopipe-{env}-producer-api-key"
    assert stack.addresses("google_project_service") <= set(secret["depends_on"])
    assert "secretmanager.googleapis.com" in {s["service"] for s in stack.resources("google_project_service").values()}
    assert stack.json["output"]["api_key_secret"]["value"] == stack.ref_one("google_secret_manager_secret",
                                                                            "secret_id")
    assert not stacks[env].resources("google_secret_manager_secret")


def test_planner_only_reads(bootstrap_stacks, env):
    roles = _project_roles(bootstrap_stacks[env], "planner")
    assert roles == dict.fromkeys(PLANNER_ROLES)
    writers = [role for role in roles if re.search(r"(?i)admin|editor|owner|user|creator|writer", role)]
    assert writers == ["roles/bigquery.jobUser"]
    # whose only writes are query jobs (and Dataform repositories, empty: nothing runs from one without grants)
    writes = {p for p in predefined_roles()["roles/bigquery.jobUser"]
              if not re.search(r"\.(get|list)$", p)}
    assert writes == {"bigquery.jobs.create", "dataform.folders.create", "dataform.repositories.create"}


def test_ci_accounts_have_no_other_grant(bootstrap_stacks, env):
    stack = bootstrap_stacks[env]
    members = {stack.ref("google_service_account", _account(stack, r), "member") for r in ("deployer", "planner")}
    iam_types = [t for t in stack.json["resource"] if t.endswith("_iam_member") and t != "google_project_iam_member"]
    # the impersonation bindings above, and the planner's read of the state
    assert sorted(iam_types) == ["google_service_account_iam_member", "google_storage_bucket_iam_member"]
    (state_read,) = stack.resources("google_storage_bucket_iam_member").values()
    assert (state_read["bucket"], state_read["role"], state_read["member"]) == (
        stack.ref("google_storage_bucket", stack.one("google_storage_bucket"), "name"), "roles/storage.objectViewer",
        stack.ref("google_service_account", _account(stack, "planner"), "member"))
    assert {b["member"] for b in stack.resources("google_project_iam_member").values()} == members


def test_workflows_authenticate_as_the_bootstrapped_identities(bootstrap_stacks, env):
    """cdktf/ci.py (what the workflows run) names exactly what the bootstrap stack creates."""
    from ci import identity

    stack = bootstrap_stacks[env]
    cfg = CONFIGS[env]
    pool = stack.one("google_iam_workload_identity_pool")["workload_identity_pool_id"]
    provider = stack.one("google_iam_workload_identity_pool_provider")["workload_identity_pool_provider_id"]
    for role in ("deployer", "planner"):
        assert identity(env, role) == {
            "workload_identity_provider":
                f"projects/{cfg.project_number}/locations/global/workloadIdentityPools/{pool}/providers/{provider}",
            "service_account": f"{_account(stack, role)['account_id']}@{cfg.project}.iam.gserviceaccount.com",
        }
    outputs = stack.json["output"]
    assert outputs["workload_identity_provider"]["value"] == stack.ref_one(
        "google_iam_workload_identity_pool_provider", "name")
    assert {"deployer_service_account", "planner_service_account", "state_bucket"} <= set(outputs)


def test_without_a_repository_the_bootstrap_has_no_ci_identities(tmp_path):
    from infra.cdk import App
    from infra.stacks.bootstrap import BootstrapStack

    app = App(outdir=str(tmp_path))
    BootstrapStack(app, environment("qa", {"project": "my-project-1", "state_bucket": "my-tfstate-1"}))
    app.synth()
    resources = json.loads((tmp_path / "stacks" / "bootstrap-qa" / "cdk.tf.json").read_text())["resource"]
    assert set(resources) == {"google_project_service", "google_storage_bucket", "google_service_account",
                              "google_project_iam_custom_role", "google_secret_manager_secret"}  # the demo plan's key
    assert {body["account_id"] for body in resources["google_service_account"].values()} == {
        "cryptopipe-qa-producer", "cryptopipe-qa-processing", "cryptopipe-qa-scheduler"}


def test_ci_identity_fails_naming_what_is_missing(monkeypatch):
    import ci

    from infra.environments import ConfigError

    monkeypatch.setenv("CRYPTOPIPE__DEPLOY__DEV__PROJECT_NUMBER", "")
    with pytest.raises(ConfigError, match=r"environment 'dev' has no CI identities: set \['project_number'\]"):
        ci.identity("dev", "deployer")
    with pytest.raises(ConfigError, match="no CI identity 'owner'"):
        ci.identity("prod", "owner")
