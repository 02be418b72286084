"""The bucket: protections, lifecycle per prefix, prod kept and dev tear-down-able."""

from __future__ import annotations

from config import load_environments

CONFIGS = {cfg.name: cfg for cfg in load_environments()}


def test_bucket_is_private_uniform_and_versioned(stack):
    bucket = stack.one("google_storage_bucket")
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
        for rule in stack.one("google_storage_bucket")["lifecycle_rule"]
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
    bucket = stacks["prod"].one("google_storage_bucket")
    assert bucket["force_destroy"] is False
    assert bucket["lifecycle"] == {"prevent_destroy": True}


def test_dev_bucket_is_destroyed_with_its_objects(stacks):
    bucket = stacks["dev"].one("google_storage_bucket")
    assert bucket["force_destroy"] is True
    assert bucket["lifecycle"] == {"prevent_destroy": False}


def test_no_customer_key_unless_configured(stack):
    assert "encryption" not in stack.one("google_storage_bucket")
