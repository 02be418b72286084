"""The environment's buckets: the data bucket, and the Dataproc cluster's temp bucket.

The data bucket holds the landing zone, archive, staging, checkpoints, artifacts,
and is the cluster's staging bucket. Lifecycle by prefix (versioning is on, so a
deletion first leaves a noncurrent version):

- ``landing/``: deleted after ``landing_retention_days``, a safety net (the job archives what it reads);
- ``archive/``: deleted after ``archive_retention_days``;
- ``staging/``: deleted after a day (per-batch Parquet, loaded by then);
- :data:`KEPT_PREFIXES`: live objects kept, each for its reason;
- noncurrent versions of every object: deleted after ``noncurrent_retention_days``.

The temp bucket (Spark event logs, YARN logs) keeps no versions and deletes every
object after ``cluster_temp_retention_days``.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from infra.cdk import TerraformResourceLifecycle, google
from infra.environments import EnvironmentConfig
from infra.stacks.buckets import delete_when, private_bucket
from infra.stacks.iam import grant

LANDING = "landing/"
ARCHIVE = "archive/"
STAGING = "staging/"
CHECKPOINTS = "checkpoints/"
ARTIFACTS = "artifacts/"
PRODUCER_ARTIFACTS = f"{ARTIFACTS}producer/"
JOB_ARTIFACTS = f"{ARTIFACTS}job/"
STAGING_RETENTION_DAYS = 1
#: Where Dataproc keeps a cluster's configuration and its jobs' driver output in the staging bucket.
DATAPROC_STAGING = "google-cloud-dataproc-metainfo/"
#: Prefixes whose live objects no lifecycle rule deletes, and why.
KEPT_PREFIXES = {
    CHECKPOINTS: "the stream's state, and beside it the Storage Write path's stream records, which must outlive "
                 "any outage (docs/STREAM.md); Spark and the job delete the files they no longer need themselves",
    ARTIFACTS: "Terraform owns them: a new version's upload replaces the old object",
    DATAPROC_STAGING: "cluster configuration that Google keeps without a TTL while the cluster lives, and the "
                      "stream's driver output (a line per batch); gone with the cluster",
}
#: Bucket metadata (``storage.buckets.get``), which the cluster's GCS connector reads;
#: the role adds only listing, which the account has on these buckets anyway.
BUCKET_METADATA_READER = "roles/storage.legacyBucketReader"


class Storage(Construct):
    """The data bucket, the cluster's temp bucket, their lifecycles, and who may touch which prefix."""

    def __init__(
        self, scope: Construct, id_: str, cfg: EnvironmentConfig, members: dict[str, str], after: list[Any]
    ) -> None:
        super().__init__(scope, id_)
        self.name = cfg.bucket_name
        self.temp_name = cfg.temp_bucket_name
        key_grants = self._kms_grants(cfg, after) if cfg.kms_key else []
        encryption = {"default_kms_key_name": cfg.kms_key} if cfg.kms_key else None

        self.bucket = private_bucket(
            self, "bucket", cfg, self.name,
            versioning={"enabled": True},
            lifecycle_rule=[
                delete_when(matches_prefix=[LANDING], age=cfg.landing_retention_days),
                delete_when(matches_prefix=[ARCHIVE], age=cfg.archive_retention_days),
                delete_when(matches_prefix=[STAGING], age=STAGING_RETENTION_DAYS),
                delete_when(with_state="ARCHIVED", days_since_noncurrent_time=cfg.noncurrent_retention_days),
            ],
            encryption=encryption,
            force_destroy=not cfg.deletion_protection,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=cfg.deletion_protection),
            depends_on=[*after, *key_grants],
        )
        # Dataproc's temp bucket holds Spark event logs and YARN logs of a job that
        # never ends: nothing worth a second copy, so no versioning and no soft-delete
        # retention, and every object goes after cluster_temp_retention_days. (Dataproc
        # applies such a TTL only to temp buckets it creates itself.)
        self.temp_bucket = private_bucket(
            self, "temp-bucket", cfg, self.temp_name,
            versioning={"enabled": False},
            soft_delete_policy={"retention_duration_seconds": 0},
            lifecycle_rule=[delete_when(age=cfg.cluster_temp_retention_days)],
            encryption=encryption,
            force_destroy=True,
            depends_on=[*after, *key_grants],
        )

        # Conditions narrow a role to part of the data bucket. The producer may only
        # create landing objects (never overwrite or delete them), read one back (to
        # tell its own earlier upload from a conflict after a 412) and read its own
        # artifacts. The processing account reads landing, moves it to archive, writes
        # checkpoints and staging, and is the cluster's staging bucket user (Dataproc
        # writes under folders it names itself, so that grant is "everything but
        # artifacts/" rather than a list of prefixes); it may only read the job's
        # artifacts, so it can never change code a workload runs. Listing is checked
        # on the bucket itself, which no object-prefix condition matches: the producer
        # cannot list, the processing account can. The planner reads the artifacts
        # Terraform manages, no data.
        bucket_roles = {
            "roles/storage.objectCreator": {"producer": (members["producer"], self._only(LANDING))},
            "roles/storage.objectViewer": {
                "producer": (members["producer"], self._only(LANDING, PRODUCER_ARTIFACTS)),
                "processing": (members["processing"], self._only(JOB_ARTIFACTS)),
                **({"planner": (members["planner"], self._only(ARTIFACTS))} if "planner" in members else {}),
            },
            "roles/storage.objectUser": {"processing": (members["processing"], self._all_but(ARTIFACTS))},
            BUCKET_METADATA_READER: {"processing": (members["processing"], None)},
        }
        temp_roles = {
            "roles/storage.objectUser": {"processing": members["processing"]},
            BUCKET_METADATA_READER: {"processing": members["processing"]},
        }
        self.grants = [
            google.storage_bucket_iam_member.StorageBucketIamMember(
                self,
                f"{role.rsplit('/', 1)[-1]}-{who}",
                bucket=self.bucket.name,
                role=role,
                member=member,
                condition=condition,
            )
            for role, grants in bucket_roles.items()
            for who, (member, condition) in grants.items()
        ] + [
            google.storage_bucket_iam_member.StorageBucketIamMember(
                self, f"temp-{role.rsplit('/', 1)[-1]}-{who}", bucket=self.temp_bucket.name, role=role, member=member
            )
            for role, grants in temp_roles.items()
            for who, member in grants.items()
        ]

    def uri(self, prefix: str = "") -> str:
        """``gs://bucket/prefix`` without a trailing slash."""
        return f"gs://{self.name}/{prefix}".rstrip("/")

    def _objects_under(self, prefix: str) -> str:
        return f'resource.name.startsWith("projects/_/buckets/{self.name}/objects/{prefix}")'

    def _only(self, *prefixes: str) -> dict[str, str]:
        return {
            "title": f"only {' and '.join(prefixes)}",
            "expression": " || ".join(self._objects_under(prefix) for prefix in prefixes),
        }

    def _all_but(self, prefix: str) -> dict[str, str]:
        return {"title": f"all but {prefix}", "expression": f"!{self._objects_under(prefix)}"}

    def _kms_grants(self, cfg: EnvironmentConfig, after: list[Any]) -> list[Any]:
        agent = google.data_google_storage_project_service_account.DataGoogleStorageProjectServiceAccount(
            self, "gcs-agent", project=cfg.project, depends_on=after
        )
        key_roles = {"roles/cloudkms.cryptoKeyEncrypterDecrypter": {"gcs-agent": agent.member}}
        return grant(self, google.kms_crypto_key_iam_member.KmsCryptoKeyIamMember, key_roles, crypto_key_id=cfg.kms_key)
