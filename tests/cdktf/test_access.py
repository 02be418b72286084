"""How grants are declared: additive, on this environment's resources, to accounts the bootstrap made.

What the grants *allow* is computed in test_effective_access.py; these are the
properties of the declarations themselves.
"""

from __future__ import annotations

from infra.environments import load_environments

CONFIGS = {cfg.name: cfg for cfg in load_environments()}


def test_the_pipeline_makes_no_service_account(stack, bootstrap_stacks):
    """The workloads' accounts come from the bootstrap, so the deployer needs no account admin."""
    env = stack.directory.name
    assert "google_service_account" not in stack.json["resource"]
    made = {body["account_id"] for body in bootstrap_stacks[env].resources("google_service_account").values()}
    assert set(CONFIGS[env].service_account_ids.values()) <= made


def test_grants_name_the_bootstrapped_accounts_by_email(stack):
    cfg = CONFIGS[stack.directory.name]
    # the scheduler holds grants in scheduled mode only (it starts the runs)
    workloads = {f"serviceAccount:{cfg.service_account_email(i)}" for who, i in cfg.service_account_ids.items()
                 if who != "scheduler" or cfg.processing == "scheduled"}
    planner = f"serviceAccount:{cfg.service_account_email(cfg.ci_service_account_ids['planner'])}"
    members = {body["member"] for type_, bodies in stack.json["resource"].items() if type_.endswith("_iam_member")
               for body in bodies.values()}
    assert members == workloads | {planner}


def test_grants_are_additive_and_no_keys_exist(stack):
    for type_ in stack.json["resource"]:
        assert not type_.endswith(("_iam_policy", "_iam_binding")), type_
        assert type_ != "google_service_account_key"


def test_grants_target_this_environments_resources(stack):
    buckets = {stack.ref("google_storage_bucket", stack.bucket(kind), "name") for kind in ("data", "temp")}
    for grant in stack.resources("google_storage_bucket_iam_member").values():
        assert grant["bucket"] in buckets
    (dataset_grant,) = stack.resources("google_bigquery_dataset_iam_member").values()
    assert dataset_grant["dataset_id"] == stack.ref_one("google_bigquery_dataset", "dataset_id")
    (secret_grant,) = stack.resources("google_secret_manager_secret_iam_member").values()
    assert secret_grant["secret_id"] == f"cryptopipe-{stack.directory.name}-producer-api-key"  # infra/stacks/bootstrap.py's
    cfg = CONFIGS[stack.directory.name]
    assert {g["project"] for g in stack.resources("google_project_iam_member").values()} == {cfg.project}
