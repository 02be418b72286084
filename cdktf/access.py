"""One service account per workload, and the only project-level roles they hold.

Resource-level grants (bucket, dataset, secret) live beside their resources in the
stage modules; the README lists them all.
"""

from __future__ import annotations

from typing import Any

from cdktf_cdktf_provider_google.project_iam_member import ProjectIamMember
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from constructs import Construct

from config import EnvironmentConfig
from iam import grant

#: The only project-level roles the stack grants. The CI deployer's Project IAM Admin
#: role is conditioned on them (bootstrap.py): it can grant these and nothing else.
PROJECT_ROLES = ("roles/bigquery.jobUser", "roles/dataproc.worker")


class Access(Construct):
    """The producer's and the processing cluster's identities (no keys: both run on Google's metadata server)."""

    def __init__(self, scope: Construct, id_: str, cfg: EnvironmentConfig, after: list[Any]) -> None:
        super().__init__(scope, id_)
        descriptions = {
            "producer": "Producer VM: polls CoinGecko, creates landing objects.",
            "processing": "Dataproc cluster and streaming job: landing -> BigQuery.",
        }
        self.accounts = {
            stage: ServiceAccount(
                self, stage, account_id=account_id, project=cfg.project,
                display_name=cfg.name_of(stage, "sa"), description=descriptions[stage], depends_on=after,
            )
            for stage, account_id in cfg.service_account_ids.items()
        }
        self.members = {stage: account.member for stage, account in self.accounts.items()}
        self.emails = {stage: account.email for stage, account in self.accounts.items()}

        project_roles = {
            # Dataproc requires it of a cluster's service account (agent heartbeat, logs, metrics).
            "roles/dataproc.worker": {"processing": self.members["processing"]},
            # Run the per-batch BigQuery load jobs; table access is granted on the dataset.
            "roles/bigquery.jobUser": {"processing": self.members["processing"]},
        }
        assert set(project_roles) == set(PROJECT_ROLES), "update PROJECT_ROLES: the deployer may grant only these"
        self.project_grants = grant(self, ProjectIamMember, project_roles, project=cfg.project)
