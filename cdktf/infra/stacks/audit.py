"""Data Access audit logs: who read or wrote the pipeline's data, and who read the API key.

Admin Activity logs (every IAM, bucket, VM or cluster change) are always on in
Google Cloud; Data Access logs are off by default. This turns them on for the two
services that hold something worth stealing, and is the stack's answer to
bucket access logging (checkov CKV_GCP_62, see checkov-skips.toml): the audit
entry names the authenticated identity, which usage logs do not, and needs no
second bucket.

- Cloud Storage: every object write and delete by anyone; every read and list by
  anyone except the processing account, whose reads (a listing and the new
  files every trigger) are the pipeline working and would be most of the volume.
- Secret Manager: every access to the CoinGecko key's value.

A ``google_project_iam_audit_config`` owns its service's audit settings in the
project: a project shared with other workloads would have them replaced.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from infra.cdk import google
from infra.environments import EnvironmentConfig


class AuditLogs(Construct):
    """Data Access logs for Cloud Storage and Secret Manager."""

    def __init__(
        self, scope: Construct, id_: str, cfg: EnvironmentConfig, members: dict[str, str], after: list[Any]
    ) -> None:
        super().__init__(scope, id_)
        log = google.project_iam_audit_config.ProjectIamAuditConfigAuditLogConfig
        services = {
            "storage.googleapis.com": [
                log(log_type="ADMIN_READ"),
                log(log_type="DATA_READ", exempted_members=[members["processing"]]),
                log(log_type="DATA_WRITE"),
            ],
            "secretmanager.googleapis.com": [
                log(log_type="ADMIN_READ"),
                log(log_type="DATA_READ"),
            ],
        }
        self.configs = [
            google.project_iam_audit_config.ProjectIamAuditConfig(
                self, service.split(".")[0], project=cfg.project, service=service, audit_log_config=log_configs,
                depends_on=after,
            )
            for service, log_configs in services.items()
        ]
