"""The bucket: protections, lifecycle per prefix, prod kept and dev tear-down-able."""

from __future__ import annotations

from infra.environments import load_environments

CONFIGS = {cfg.name: cfg for cfg in load_environments()}


def test_bucket_is_private_uniform_and_versioned(stack):
    bucket = stack.bucket()
    env = stack.directory.name
    assert bucket["name"] == f"cryptopipe-{env}-data-my-cryptopipe-{env}"
    assert bucket["location"] == "US-CENTRAL1"
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["public_access_prevention"] == "enforced"
    assert bucket["versioning"] == {"enabled": True}


def test_lifecycle_rules_per_prefix(stack):
    cfg = CONFIGS[stack.directory.name]
    rules = {
        (rule["condition"].get("matches_prefix", ["*"])[0], rule["condition"].get("with_state", "LIVE")):
            rule["condition"].get("age", rule["condition"].get("days_since_noncurrent_time"))
        for rule in stack.bucket()["lifecycle_rule"]
        if rule["action"] == {"type": "Delete"}
    }
    assert rules == {
        ("landing/", "LIVE"): cfg.landing_retention_days,
        ("archive/", "LIVE"): cfg.archive_retention_days,
        ("staging/", "LIVE"): 1,
        # checkpoints/ and artifacts/ keep live objects; old versions everywhere go:
        ("*", "ARCHIVED"): cfg.noncurrent_retention_days,
    }


def test_prod_bucket_survives_destroy(stacks):
    bucket = stacks["prod"].bucket()
    assert bucket["force_destroy"] is False
    assert bucket["lifecycle"] == {"prevent_destroy": True}


def test_dev_bucket_is_destroyed_with_its_objects(stacks):
    bucket = stacks["dev"].bucket()
    assert bucket["force_destroy"] is True
    assert bucket["lifecycle"] == {"prevent_destroy": False}


def test_no_customer_key_unless_configured(stack):
    assert "encryption" not in stack.bucket()


def test_the_temp_bucket_keeps_no_copies_and_ages_out(stack):
    cfg = CONFIGS[stack.directory.name]
    temp = stack.bucket("temp")
    assert temp["name"] == f"cryptopipe-{cfg.name}-processing-temp-{cfg.project}"
    assert temp["uniform_bucket_level_access"] is True and temp["public_access_prevention"] == "enforced"
    assert temp["versioning"] == {"enabled": False}
    assert temp["soft_delete_policy"] == {"retention_duration_seconds": 0}
    assert temp["lifecycle_rule"] == [{"action": {"type": "Delete"},
                                       "condition": {"age": cfg.cluster_temp_retention_days}}]
    assert temp["force_destroy"] is True  # nothing in it is worth keeping
    config = stack.one("google_dataproc_cluster")["cluster_config"]
    assert config["temp_bucket"] == temp["name"]
    assert config["staging_bucket"] == stack.bucket()["name"]


def test_the_data_buckets_lifecycle_covers_every_prefix_the_code_writes(stack):
    """Every prefix a call of the deployed code writes (cdktf/infra/access/api_calls.py) has a delete rule or a reason to keep."""
    from infra.access.api_calls import Targets, terraform_calls, workload_calls
    from infra.stacks.storage import KEPT_PREFIXES

    targets = Targets(CONFIGS[stack.directory.name])
    objects = f"{targets.data_bucket.name}/objects/"
    written = {call.resource.name.removeprefix(objects).split("/")[0] + "/"
               for call in workload_calls(targets) + terraform_calls(targets, ())
               if call.resource.name.startswith(objects) and call.permission == "storage.objects.create"}
    ruled = {prefix for rule in stack.bucket()["lifecycle_rule"] for prefix in rule["condition"].get("matches_prefix", [])}
    assert written - ruled - set(KEPT_PREFIXES) == set()
    assert written >= set(KEPT_PREFIXES)  # no reason kept for a prefix nothing writes


def test_no_lifecycle_rule_deletes_the_stream_records(stack):
    """A replay after a long outage must find the batch's stream record, or it commits the batch twice."""
    from infra.access.api_calls import STREAM_RECORD_OBJECT
    from infra.stacks.storage import KEPT_PREFIXES

    deleting = [rule for rule in stack.bucket()["lifecycle_rule"]
                if rule["condition"].get("with_state", "LIVE") != "ARCHIVED"
                and any(STREAM_RECORD_OBJECT.startswith(p) for p in rule["condition"].get("matches_prefix", [""]))]
    assert deleting == []
    assert any(STREAM_RECORD_OBJECT.startswith(prefix) for prefix in KEPT_PREFIXES)
