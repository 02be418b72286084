"""Each service account holds exactly its roles, and no identity has a key."""

from __future__ import annotations

IAM_MEMBER_TYPES = (
    "google_project_iam_member",
    "google_storage_bucket_iam_member",
    "google_bigquery_dataset_iam_member",
    "google_secret_manager_secret_iam_member",
    "google_kms_crypto_key_iam_member",
)


def _grants(stack):
    """member reference -> {(resource type, role, condition expression or None)}."""
    grants: dict[str, set] = {}
    for type_ in IAM_MEMBER_TYPES:
        for body in stack.resources(type_).values():
            condition = body.get("condition", {}).get("expression")
            grants.setdefault(body["member"], set()).add((type_, body["role"], condition))
    return grants


def _member(stack, suffix):
    account = stack.named("google_service_account", "account_id", lambda account_id: account_id.endswith(suffix))
    return stack.ref("google_service_account", account, "member")


def test_each_service_account_has_exactly_its_roles(stack):
    bucket = stack.one("google_storage_bucket")["name"]
    only = 'resource.name.startsWith("projects/_/buckets/{}/objects/{}")'.format
    assert _grants(stack) == {
        _member(stack, "-producer"): {
            # create under landing/ only: no read, list, overwrite (needs delete) or delete
            ("google_storage_bucket_iam_member", "roles/storage.objectCreator", only(bucket, "landing/")),
            ("google_storage_bucket_iam_member", "roles/storage.objectViewer", only(bucket, "artifacts/producer/")),
            ("google_secret_manager_secret_iam_member", "roles/secretmanager.secretAccessor", None),
        },
        _member(stack, "-processing"): {
            ("google_project_iam_member", "roles/dataproc.worker", None),
            ("google_project_iam_member", "roles/bigquery.jobUser", None),
            # landing, archive, checkpoints, staging and Dataproc's own folders; never artifacts/
            ("google_storage_bucket_iam_member", "roles/storage.objectUser", "!" + only(bucket, "artifacts/")),
            ("google_storage_bucket_iam_member", "roles/storage.objectViewer", only(bucket, "artifacts/job/")),
            ("google_bigquery_dataset_iam_member", "roles/bigquery.dataEditor", None),
        },
    }


def test_producer_may_only_create_under_landing(stack):
    bucket = stack.one("google_storage_bucket")["name"]
    producer = _member(stack, "-producer")
    grants = [g for g in stack.resources("google_storage_bucket_iam_member").values() if g["member"] == producer]
    (creator,) = [g for g in grants if g["role"] == "roles/storage.objectCreator"]
    assert creator["condition"]["expression"] == (
        f'resource.name.startsWith("projects/_/buckets/{bucket}/objects/landing/")')
    # nothing else it holds on the bucket can write
    assert {g["role"] for g in grants} == {"roles/storage.objectCreator", "roles/storage.objectViewer"}


def test_only_the_stacks_project_roles_are_granted(stack):
    from access import PROJECT_ROLES

    roles = {g["role"] for g in stack.resources("google_project_iam_member").values()}
    assert roles == set(PROJECT_ROLES)  # the CI deployer may grant these and no other (test_bootstrap.py)


def test_grants_are_additive_and_no_keys_exist(stack):
    for type_ in stack.json["resource"]:
        assert not type_.endswith(("_iam_policy", "_iam_binding")), type_
        assert type_ != "google_service_account_key"


def test_grants_target_this_environments_resources(stack):
    bucket = stack.one("google_storage_bucket")
    for grant in stack.resources("google_storage_bucket_iam_member").values():
        assert grant["bucket"] == stack.ref("google_storage_bucket", bucket, "name")
    (dataset_grant,) = stack.resources("google_bigquery_dataset_iam_member").values()
    assert dataset_grant["dataset_id"] == stack.ref_one("google_bigquery_dataset", "dataset_id")
    (secret_grant,) = stack.resources("google_secret_manager_secret_iam_member").values()
    assert secret_grant["secret_id"] == stack.ref_one("google_secret_manager_secret", "secret_id")
