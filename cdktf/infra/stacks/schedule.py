"""Scheduled mode: the workflow that runs the job on the stopped cluster, its schedule and its grant.

docs/STREAM.md, "Scheduled mode", has the design; infra/artifacts/scheduled_run.py the workflow's
steps. Here:

- the workflow (``google_workflows_workflow``), running as the ``scheduler`` service account;
- the scheduler's custom role on the cluster alone (``google_dataproc_cluster_iam_member``):
  get, start, stop and submit to it; its project roles (create executions, create, get and
  list jobs) are grants.py's;
- the Cloud Scheduler job, every ``schedule_minutes`` in UTC, which POSTs to the workflow's
  executions endpoint with an OAuth token of the scheduler account, as Google documents
  for starting a workflow on a schedule (https://cloud.google.com/workflows/docs/schedule-workflow;
  the token is minted by Cloud Scheduler's service agent, which holds its role from the moment
  the API is enabled: https://cloud.google.com/scheduler/docs/http-target-auth). It waits for
  the workflow and for the scheduler's grants to propagate (waits.py): a run that fires
  before them fails.

Making the workflow and the job, both naming the scheduler account, takes ``actAs`` on it: the
deployer holds it (bootstrap.py); the scheduler holds none.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from constructs import Construct

from infra.artifacts.scheduled_run import cron, source, workflow
from infra.cdk import google
from infra.environments import EnvironmentConfig
from infra.stacks.waits import after_grants

#: Workflows' executions API (https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions/create).
EXECUTIONS_API = "https://workflowexecutions.googleapis.com/v1"
#: The token's scope: the Executions API takes cloud-platform.
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def terraform_literal(text: str) -> str:
    """``text`` with each ``${`` escaped as ``$${``: Terraform reads the rest of a string as a template
    (https://developer.hashicorp.com/terraform/language/expressions/strings#escape-sequences), and the
    workflow's own expressions are ``${…}``."""
    return text.replace("${", "$${").replace("%{", "%%{")


class ScheduledRuns(Construct):
    """The workflow, the scheduler's grant on the cluster and the schedule."""

    def __init__(
        self, scope: Construct, id_: str, cfg: EnvironmentConfig, *, cluster: Any, run_job: dict[str, Any],
        labels: dict[str, str], scheduler_email: str, project_grants: list[Any], after: list[Any],
    ) -> None:
        super().__init__(scope, id_)
        member = f"serviceAccount:{scheduler_email}"
        self.cluster_grant = google.dataproc_cluster_iam_member.DataprocClusterIamMember(
            self, "scheduler-cluster", project=cfg.project, region=cfg.region, cluster=cluster.name,
            role=cfg.custom_role(cfg.scheduler_cluster_role_id), member=member,
        )
        definition = workflow(
            project=cfg.project, region=cfg.region, cluster=cfg.cluster_name, run_id_prefix=cfg.run_id_prefix,
            schedule_minutes=cfg.schedule_minutes, start_deadline_seconds=cfg.scheduled_run_minutes * 60,
            pyspark_job=run_job, labels=labels,
        )
        self.workflow = google.workflows_workflow.WorkflowsWorkflow(
            self, "workflow", name=cfg.name_of("processing", "run"), project=cfg.project, region=cfg.region,
            description="One scheduled run: skip while a job is active, start the cluster, run the job with "
                        "--available-now, stop the cluster (cdktf/infra/artifacts/scheduled_run.py).",
            service_account=scheduler_email, source_contents=terraform_literal(source(definition)),
            # Code, no data: a switch to stream mode deletes it.
            deletion_protection=False, depends_on=after,
        )
        # The schedule fires once the scheduler's grants work and the workflow exists.
        propagated = after_grants(self, [*project_grants, self.cluster_grant])
        executions = (f"{EXECUTIONS_API}/projects/{cfg.project}/locations/{cfg.region}/workflows/"
                      f"{self.workflow.name}/executions")
        self.job = google.cloud_scheduler_job.CloudSchedulerJob(
            self, "schedule", name=cfg.name_of("processing", "schedule"), project=cfg.project, region=cfg.region,
            description=f"Starts {cfg.name_of('processing', 'run')} every {cfg.schedule_minutes} min (UTC slots).",
            schedule=cron(cfg.schedule_minutes), time_zone="Etc/UTC",
            # A missed trigger is retried within its slot at most: a later one is the next slot's.
            attempt_deadline="180s", retry_config={"retry_count": 1, "max_retry_duration": "600s"},
            http_target={
                "uri": executions, "http_method": "POST",
                "body": _base64(json.dumps({"argument": "{}"})),
                "headers": {"Content-Type": "application/json"},
                "oauth_token": {"service_account_email": scheduler_email, "scope": CLOUD_PLATFORM},
            },
            depends_on=[self.workflow, propagated],
        )


def _base64(text: str) -> str:
    """Cloud Scheduler's ``body`` is bytes, base64 in JSON and in the provider's field."""
    return base64.b64encode(text.encode()).decode()
