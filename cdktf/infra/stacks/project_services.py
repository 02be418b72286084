"""The Google APIs the stack uses, enabled by the stack itself."""

from __future__ import annotations

from constructs import Construct

from infra.cdk import google
from infra.environments import EnvironmentConfig

SERVICES = (
    "bigquery.googleapis.com",
    "billingbudgets.googleapis.com",  # the optional budget (alerts.py)
    "cloudresourcemanager.googleapis.com",  # project IAM grants
    "cloudscheduler.googleapis.com",  # scheduled mode's schedule (schedule.py); enabled in either mode
    "compute.googleapis.com",
    "dataproc.googleapis.com",
    "iam.googleapis.com",
    "iap.googleapis.com",  # SSH to the producer VM through IAP, no public IP
    "logging.googleapis.com",
    "monitoring.googleapis.com",  # alert policies and channels (alerts.py)
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
    "workflows.googleapis.com",  # scheduled mode's run (schedule.py); enabled in either mode
)


class ProjectServices(Construct):
    """Enables :data:`SERVICES`; every other resource depends on ``self.enabled``."""

    def __init__(self, scope: Construct, id_: str, cfg: EnvironmentConfig) -> None:
        super().__init__(scope, id_)
        # disable_on_destroy=False: other workloads in the project may use the same
        # APIs, and disabling an API while its resources are being deleted fails.
        self.enabled = [
            google.project_service.ProjectService(
                self, service.split(".")[0], project=cfg.project, service=service, disable_on_destroy=False
            )
            for service in SERVICES
        ]
