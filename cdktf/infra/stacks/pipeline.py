"""One environment's stack: the stages wired together, its backend and its outputs."""

from __future__ import annotations

from typing import Any

from constructs import Construct

from core.views import looker_studio_url
from infra.artifacts.archive import Artifacts
from infra.cdk import GcsBackend, TerraformOutput, TerraformStack, google, time
from infra.environments import EnvironmentConfig
from infra.stacks.alerts import Alerts
from infra.stacks.audit import AuditLogs
from infra.stacks.encryption import DiskEncryption
from infra.stacks.grants import Access
from infra.stacks.network import Network
from infra.stacks.processing import Processing
from infra.stacks.producer_vm import ProducerVm
from infra.stacks.project_services import ProjectServices
from infra.stacks.schedule import ScheduledRuns
from infra.stacks.storage import Storage
from infra.stacks.uploads import ArtifactUploads
from infra.stacks.waits import after_grants
from infra.stacks.warehouse import Warehouse


def providers(scope: Construct, cfg: EnvironmentConfig) -> Any:
    """The stack's providers; returns the one the budget goes through (None without a budget).

    The Budget API takes a quota project: called with a workstation's user credentials it answers
    403 "The billingbudgets.googleapis.com API requires a quota project, which is not set by default"
    (GoogleCloudPlatform/cloud-foundation-fabric#3360, terraform-example-foundation#194). The
    budget's provider names the project as its quota project (``user_project_override`` and
    ``billing_project``, registry.terraform.io/providers/hashicorp/google/latest/docs/guides/provider_reference);
    naming it takes ``serviceusage.services.use`` there (bootstrap.py QUOTA_PROJECT_ROLE). Only the
    budget goes through it: every other call keeps the resource's project.
    """
    labels = {"app": cfg.prefix, "env": cfg.name}
    google.provider.GoogleProvider(
        scope, "google", project=cfg.project, region=cfg.region, zone=cfg.zone, default_labels=labels,
    )
    time.provider.TimeProvider(scope, "time")  # the waits (waits.py)
    if not cfg.billing_account:
        return None
    return google.provider.GoogleProvider(
        scope, "google-billing", alias="billing", project=cfg.project, region=cfg.region, default_labels=labels,
        user_project_override=True, billing_project=cfg.project,
    )


class PipelineStack(TerraformStack):
    """Everything one environment runs: ``cdktf deploy <env>`` / ``cdktf destroy <env>``."""

    def __init__(self, scope: Construct, cfg: EnvironmentConfig, artifacts: Artifacts) -> None:
        super().__init__(scope, cfg.name)
        billing = providers(self, cfg)
        GcsBackend(self, bucket=cfg.state_bucket, prefix=f"{cfg.prefix}/{cfg.name}")

        apis = ProjectServices(self, "services", cfg).enabled
        access = Access(self, "access", cfg, after=apis)
        AuditLogs(self, "audit", cfg, access.members, after=apis)
        disks = DiskEncryption(self, "encryption", cfg, after=apis)
        network = Network(self, "network", cfg, after=apis)
        storage = Storage(self, "storage", cfg, {**access.members, **access.ci_members}, after=apis)
        uploads = ArtifactUploads(self, "artifacts", storage, artifacts)
        warehouse = Warehouse(self, "warehouse", cfg, {**access.members, **access.ci_members}, after=apis)
        # The cluster starts once every grant its nodes and its job use has propagated (waits.py).
        processing_grants = after_grants(self, [*access.project_grants_of["processing"], *storage.grants,
                                                *disks.grants, *warehouse.grants])
        processing = Processing(
            self, "processing", cfg, network=network, storage=storage, uploads=uploads, warehouse=warehouse,
            service_account=access.emails["processing"], after=[*network.ready, processing_grants],
        )
        if processing.run_job is not None:
            ScheduledRuns(
                self, "schedule", cfg, cluster=processing.cluster, run_job=processing.run_job,
                labels=processing.job_labels, scheduler_email=access.emails["scheduler"],
                project_grants=access.project_grants_of["scheduler"], after=apis,
            )
        producer = ProducerVm(
            self, "producer", cfg, network=network, storage=storage, uploads=uploads,
            service_account=access.emails["producer"], member=access.members["producer"], after=apis,
            grants=[*storage.grants, *disks.grants],
        )

        Alerts(self, "alerts", cfg, after=apis, billing_provider=billing)

        outputs = {
            "bucket": (storage.bucket.name, "The data bucket (landing, archive, staging, checkpoints, artifacts)."),
            "table_id": (warehouse.ticks_table_id, "BigQuery table of market ticks."),
            "quarantine_table_id": (warehouse.quarantine_table_id, "BigQuery table of rejected lines."),
            "cluster": (processing.cluster.name, "Dataproc cluster running the job."),
            "processing_mode": (cfg.processing, "stream or scheduled (scripts/check-stream.sh checks each its way)."),
            "project": (cfg.project, "Project of the environment (scripts/check-stream.sh)."),
            "region": (cfg.region, "Region of the cluster and the job (scripts/check-stream.sh)."),
            "freshness_threshold_seconds": (cfg.alert_thresholds.freshness_seconds,
                                            "Age the newest tick may reach (scripts/check-stream.sh, the alerts)."),
            "producer_vm": (producer.instance.name, "Compute Engine instance running the producer."),
            "looker_studio_url": (looker_studio_url(cfg.project, cfg.dataset_id),
                                  "Opens a new Looker Studio report on the views (docs/DASHBOARD.md)."),
        }
        if processing.job is not None:
            outputs["job_id"] = (processing.job.reference.job_id, "Dataproc job id of the running stream.")
        else:
            outputs["workflow"] = (f"projects/{cfg.project}/locations/{cfg.region}/workflows/"
                                   f"{cfg.name_of('processing', 'run')}", "Scheduled mode's workflow: its "
                                   "executions are the runs (scripts/check-stream.sh).")
            outputs["run_alert_seconds"] = (cfg.alert_thresholds.stream_silence_seconds,
                                            "Time a good run may take to come (the interval plus a run's time).")
        if producer.secret_version:
            outputs["api_key_secret"] = (producer.secret_id,
                                         "Secret Manager secret for the CoinGecko key (made by bootstrap-<env>).")
        for name, (value, description) in outputs.items():
            TerraformOutput(self, name, value=value, description=description)
