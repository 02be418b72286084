"""One way to make a bucket of this app: private, uniform access, in the environment's region.

The data bucket, the cluster's temp bucket (storage.py) and the Terraform state
bucket (bootstrap.py) differ in versioning, lifecycle and protection, never in
these: every bucket is reachable through IAM alone (uniform bucket-level access, no
ACLs) and can never be made public (public access prevention).
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from infra.cdk import google
from infra.environments import EnvironmentConfig


def private_bucket(
    scope: Construct, id_: str, cfg: EnvironmentConfig, name: str, **settings: Any
) -> google.storage_bucket.StorageBucket:
    """A ``StorageBucket`` named ``name`` with the hardening every bucket has, plus ``settings``."""
    return google.storage_bucket.StorageBucket(
        scope,
        id_,
        name=name,
        project=cfg.project,
        location=cfg.region.upper(),
        storage_class="STANDARD",
        uniform_bucket_level_access=True,
        public_access_prevention="enforced",
        **settings,
    )


def delete_when(**condition: Any) -> google.storage_bucket.StorageBucketLifecycleRule:
    """A lifecycle rule deleting the objects that match ``condition``."""
    return google.storage_bucket.StorageBucketLifecycleRule(
        action=google.storage_bucket.StorageBucketLifecycleRuleAction(type="Delete"),
        condition=google.storage_bucket.StorageBucketLifecycleRuleCondition(**condition),
    )
