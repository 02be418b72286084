"""The workloads' identities as the pipeline stack sees them, and their only project-level roles.

The producer's, the processing cluster's and the scheduler's service accounts are made by the
``bootstrap-<env>`` stack (bootstrap.py), which a project owner applies: making
them here would need the CI deployer to hold Service Account Admin on the
project, and with it the power to act as any service account there. The
pipeline stack refers to them by email and grants them what they need.

Resource-level grants (buckets, dataset, secret) live beside their resources in
the stage modules; ``infra/access/model.py`` computes what all of them allow.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from infra.cdk import google
from infra.environments import EnvironmentConfig
from infra.stacks.iam import RoleMap, grant


def workload_emails(cfg: EnvironmentConfig) -> dict[str, str]:
    """``producer`` / ``processing`` / ``scheduler`` -> the email of its service account."""
    return {stage: cfg.service_account_email(account_id) for stage, account_id in cfg.service_account_ids.items()}


def project_roles(cfg: EnvironmentConfig) -> RoleMap:
    """The only project-level roles the pipeline stack grants in ``cfg``'s mode. The CI deployer's
    Project IAM Admin grant is conditioned on those of both modes (:func:`grantable_project_roles`)."""
    emails = workload_emails(cfg)
    processing = f"serviceAccount:{emails['processing']}"
    scheduler = f"serviceAccount:{emails['scheduler']}"
    scheduled = {
        # Scheduled mode's starter (docs/STREAM.md, "Scheduled mode"): Cloud Scheduler creates the
        # workflow's executions as this account, and the workflow creates, gets and lists the runs'
        # jobs; it may get, start, stop and submit to our cluster alone (schedule.py grants that on it).
        "roles/workflows.invoker": {"scheduler": scheduler},
        cfg.custom_role(cfg.scheduler_jobs_role_id): {"scheduler": scheduler},
    } if cfg.processing == "scheduled" else {}
    return {
        # What Dataproc requires of a cluster's service account (agent heartbeat, task
        # leases, logs, metrics): roles/dataproc.worker without its storage permissions,
        # which on the project would reach every bucket: artifacts and Terraform state.
        # Its buckets are granted on the buckets (storage.py).
        cfg.dataproc_agent_role: {"processing": processing},
        # Run the per-batch BigQuery load jobs; table access is granted on the dataset.
        "roles/bigquery.jobUser": {"processing": processing},
        **scheduled,
    }


def grantable_project_roles(cfg: EnvironmentConfig) -> list[str]:
    """Every project role the pipeline stack grants in either mode: a switch of modes is one deploy, with no
    change to the deployer's grants (bootstrap.py)."""
    return sorted({role for mode in ("stream", "scheduled")
                   for role in project_roles(cfg.model_copy(update={"processing": mode}))})


class Access(Construct):
    """The workloads' members (by email) and their project-level grants."""

    def __init__(self, scope: Construct, id_: str, cfg: EnvironmentConfig, after: list[Any]) -> None:
        super().__init__(scope, id_)
        self.emails = workload_emails(cfg)
        self.members = {stage: f"serviceAccount:{email}" for stage, email in self.emails.items()}
        #: CI's planner (bootstrap.py), when the environment has CI: it reads the artifacts to plan.
        self.ci_members = (
            {"planner": f"serviceAccount:{cfg.service_account_email(cfg.ci_service_account_ids['planner'])}"}
            if cfg.github_repository
            else {}
        )
        roles = project_roles(cfg)
        self.project_grants = grant(
            self, google.project_iam_member.ProjectIamMember, roles, project=cfg.project, depends_on=after
        )
        #: The same grants by whom they are to: what each workload's start waits for (waits.py).
        self.project_grants_of: dict[str, list[Any]] = {}
        holders = [who for members in roles.values() for who in members]
        for who, made in zip(holders, self.project_grants, strict=True):
            self.project_grants_of.setdefault(who, []).append(made)
