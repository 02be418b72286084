"""The environment's one bucket: landing zone, archive, staging, checkpoints, artifacts.

Lifecycle by prefix (versioning is on, so a deletion first leaves a noncurrent version):

- ``landing/``: deleted after ``landing_retention_days``, a safety net (the job archives what it reads);
- ``archive/``: deleted after ``archive_retention_days``;
- ``staging/``: deleted after a day (per-batch Parquet, loaded by then);
- ``checkpoints/``: kept (the stream's state); ``artifacts/``: kept (Terraform owns them);
- noncurrent versions of every object: deleted after ``noncurrent_retention_days``.
"""

from __future__ import annotations

from typing import Any

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_google.data_google_storage_project_service_account import (
    DataGoogleStorageProjectServiceAccount,
)
from cdktf_cdktf_provider_google.kms_crypto_key_iam_member import KmsCryptoKeyIamMember
from cdktf_cdktf_provider_google.storage_bucket import (
    StorageBucket,
    StorageBucketLifecycleRule,
    StorageBucketLifecycleRuleAction,
    StorageBucketLifecycleRuleCondition,
)
from cdktf_cdktf_provider_google.storage_bucket_iam_member import StorageBucketIamMember
from constructs import Construct

from config import EnvironmentConfig
from iam import grant

LANDING = "landing/"
ARCHIVE = "archive/"
STAGING = "staging/"
CHECKPOINTS = "checkpoints/"
ARTIFACTS = "artifacts/"
PRODUCER_ARTIFACTS = f"{ARTIFACTS}producer/"
JOB_ARTIFACTS = f"{ARTIFACTS}job/"
STAGING_RETENTION_DAYS = 1


class Storage(Construct):
    """The bucket, its lifecycle, and who may touch which prefix."""

    def __init__(
        self, scope: Construct, id_: str, cfg: EnvironmentConfig, members: dict[str, str], after: list[Any]
    ) -> None:
        super().__init__(scope, id_)
        self.name = cfg.bucket_name
        key_grants = self._kms_grants(cfg, after) if cfg.kms_key else []

        self.bucket = StorageBucket(
            self, "bucket", name=self.name, project=cfg.project, location=cfg.region.upper(),
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": True},
            lifecycle_rule=[
                _delete({"matches_prefix": [LANDING], "age": cfg.landing_retention_days}),
                _delete({"matches_prefix": [ARCHIVE], "age": cfg.archive_retention_days}),
                _delete({"matches_prefix": [STAGING], "age": STAGING_RETENTION_DAYS}),
                _delete({"with_state": "ARCHIVED", "days_since_noncurrent_time": cfg.noncurrent_retention_days}),
            ],
            encryption={"default_kms_key_name": cfg.kms_key} if cfg.kms_key else None,
            force_destroy=not cfg.deletion_protection,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=cfg.deletion_protection),
            depends_on=[*after, *key_grants],
        )

        # Conditions narrow a role to part of the bucket. The producer may only create
        # landing objects (never read, list, overwrite or delete them) and read its own
        # artifacts. The processing account reads landing, moves it to archive, writes
        # checkpoints and staging, and is the cluster's staging and temp bucket user
        # (Dataproc writes under cluster-id folders it names itself, so that grant is
        # "everything but artifacts/" rather than a list of prefixes); it may only read
        # the job's artifacts, so it can never change code another workload runs.
        # Listing is checked on the bucket itself, which no object-prefix condition
        # matches: the producer cannot list, the processing account can.
        bucket_roles = {
            "roles/storage.objectCreator": {"producer": (members["producer"], self._only(LANDING))},
            "roles/storage.objectViewer": {
                "producer": (members["producer"], self._only(PRODUCER_ARTIFACTS)),
                "processing": (members["processing"], self._only(JOB_ARTIFACTS)),
            },
            "roles/storage.objectUser": {"processing": (members["processing"], self._all_but(ARTIFACTS))},
        }
        self.grants = [
            StorageBucketIamMember(
                self, f"{role.rsplit('/', 1)[-1]}-{who}", bucket=self.bucket.name, role=role, member=member,
                condition=condition,
            )
            for role, grants in bucket_roles.items()
            for who, (member, condition) in grants.items()
        ]

    def uri(self, prefix: str = "") -> str:
        """``gs://bucket/prefix`` without a trailing slash."""
        return f"gs://{self.name}/{prefix}".rstrip("/")

    def _objects_under(self, prefix: str) -> str:
        return f'resource.name.startsWith("projects/_/buckets/{self.name}/objects/{prefix}")'

    def _only(self, prefix: str) -> dict[str, str]:
        return {"title": f"only {prefix}", "expression": self._objects_under(prefix)}

    def _all_but(self, prefix: str) -> dict[str, str]:
        return {"title": f"all but {prefix}", "expression": f"!{self._objects_under(prefix)}"}

    def _kms_grants(self, cfg: EnvironmentConfig, after: list[Any]) -> list[Any]:
        agent = DataGoogleStorageProjectServiceAccount(self, "gcs-agent", project=cfg.project, depends_on=after)
        key_roles = {"roles/cloudkms.cryptoKeyEncrypterDecrypter": {"gcs-agent": agent.member}}
        return grant(self, KmsCryptoKeyIamMember, key_roles, crypto_key_id=cfg.kms_key)


def _delete(condition: dict[str, Any]) -> StorageBucketLifecycleRule:
    return StorageBucketLifecycleRule(
        action=StorageBucketLifecycleRuleAction(type="Delete"),
        condition=StorageBucketLifecycleRuleCondition(**condition),
    )
