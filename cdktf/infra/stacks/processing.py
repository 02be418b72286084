"""Dataproc: the cluster and the job running on it.

Stream mode: the job is a ``google_dataproc_job``: Terraform creates it once it is RUNNING,
Dataproc restarts a failed driver (``scheduling``), and ``force_delete`` cancels
the running job when a new version replaces it or the stack is destroyed. Every
field of a job forces a new one, so a new job artifact or argument is a restart on
the same checkpoint: the old run is cancelled before the new one starts (never two
streams on one checkpoint).

Scheduled mode: no ``google_dataproc_job``; the same job, with ``--available-now``, is
submitted by scheduled mode's workflow (infra/stacks/schedule.py) on each run: :attr:`Processing.run_job`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from constructs import Construct

from core.joboptions import job_argv
from infra.artifacts.cluster_init import VENV_PYTHON
from infra.cdk import TerraformResourceLifecycle, google
from infra.environments import EnvironmentConfig
from infra.stacks.network import Network
from infra.stacks.storage import ARCHIVE, CHECKPOINTS, LANDING, STAGING, Storage
from infra.stacks.uploads import ArtifactUploads
from infra.stacks.warehouse import Warehouse

#: Size of one part of the stream's rolled Spark event log.
EVENT_LOG_PART = "128m"


class Processing(Construct):
    """The cluster (internal IPs, own service account, pinned image, locked Python packages) and, in stream mode,
    the job; in scheduled mode :attr:`run_job` is what each run submits."""

    def __init__(
        self, scope: Construct, id_: str, cfg: EnvironmentConfig, *, network: Network, storage: Storage,
        uploads: ArtifactUploads, warehouse: Warehouse, service_account: str, after: list[Any],
    ) -> None:
        super().__init__(scope, id_)
        node_disk = {"boot_disk_type": "pd-balanced", "boot_disk_size_gb": cfg.cluster_disk_gb}
        properties = {
            # Driver output in Cloud Logging, so the job can be watched without SSH.
            "dataproc:dataproc.logging.stackdriver.job.driver.enable": "true",
        }
        if cfg.cluster_worker_count == 0:
            properties["dataproc:dataproc.allow.zero.workers"] = "true"

        self.cluster = google.dataproc_cluster.DataprocCluster(
            self, "cluster", name=cfg.cluster_name, project=cfg.project, region=cfg.region,
            cluster_config={
                "staging_bucket": storage.name,
                "temp_bucket": storage.temp_name,
                "gce_cluster_config": {
                    "zone": cfg.zone,
                    "subnetwork": network.subnet.id,
                    "internal_ip_only": True,
                    "service_account": service_account,
                    "service_account_scopes": ["cloud-platform"],  # IAM, not scopes, limits the account
                    "tags": [network.processing_tag],
                    "shielded_instance_config": {
                        "enable_secure_boot": True, "enable_vtpm": True, "enable_integrity_monitoring": True,
                    },
                    "metadata": {"block-project-ssh-keys": "true"},
                },
                "master_config": {
                    "num_instances": 1, "machine_type": cfg.cluster_master_machine_type, "disk_config": node_disk,
                },
                "worker_config": {
                    "num_instances": cfg.cluster_worker_count, "machine_type": cfg.cluster_worker_machine_type,
                    "disk_config": node_disk,
                } if cfg.cluster_worker_count else None,
                "software_config": {"image_version": cfg.cluster_image_version, "override_properties": properties},
                "endpoint_config": {"enable_http_port_access": True},  # Spark UI through the Component Gateway
                # Every node installs the job's locked dependencies, as synthesized, into the
                # venv the job runs on (infra/artifacts/cluster_init.py); a new dependency set is a new cluster.
                "initialization_action": [{"script": uploads.cluster_init.uri}],
                # CMEK for every node's disks when kms_key is set (encryption.py grants the agents).
                "encryption_config": {"kms_key_name": cfg.kms_key} if cfg.kms_key else None,
            },
            depends_on=[*after, uploads.job_dependencies.object, uploads.cluster_init.object],
        )

        checkpoint = f"{CHECKPOINTS}market_ticks"
        places = {
            "landing": storage.uri(LANDING),
            "archive": storage.uri(ARCHIVE),
            "checkpoint": storage.uri(checkpoint),
            "staging": storage.uri(STAGING),
            "warehouse": warehouse.uri,
            "trigger_seconds": cfg.trigger_seconds,
            "bigquery_write": cfg.bigquery_write,
            "max_files_per_trigger": cfg.max_files_per_trigger,
            "watermark": cfg.watermark,
        }
        scheduled = cfg.processing == "scheduled"
        if scheduled:  # a run drains what has landed as fast as it can: no trigger (the job refuses both)
            del places["trigger_seconds"]
        pyspark = pyspark_config(uploads, job_argv({**places, "available_now": scheduled}))
        self.job_labels = {"stage": "processing", "artifact": uploads.job_hash}
        #: Scheduled mode: the job each run submits, as Dataproc's REST API names its fields.
        self.run_job = rest_fields(pyspark) if scheduled else None
        self.job = None if scheduled else google.dataproc_job.DataprocJob(
            self, "stream", project=cfg.project, region=cfg.region,
            placement={"cluster_name": self.cluster.name},
            pyspark_config=pyspark,
            scheduling={
                "max_failures_per_hour": cfg.job_max_failures_per_hour,
                "max_failures_total": cfg.job_max_failures_total,
            },
            labels=self.job_labels,
            force_delete=True,
            # A replaced cluster takes the running job with it: start a new one. The
            # trigger is the cluster's id, not the cluster: Terraform replaces the job when
            # the referenced value changes or becomes unknown, which a replacement does
            # (a new id is known only after apply) and an in-place update (worker count,
            # labels) does not; naming the whole resource would restart the stream on
            # every update. A plain address, because cdktf renders a reference here as
            # "${…}", which Terraform rejects (terraform-cdk#3196).
            lifecycle=TerraformResourceLifecycle(replace_triggered_by=[
                f"{self.cluster.terraform_resource_type}.{self.cluster.friendly_unique_id}.id",
            ]),
            depends_on=[uploads.job_zip.object, uploads.job_entry.object, *warehouse.grants,
                        warehouse.ticks, warehouse.quarantine],
        )


def pyspark_config(uploads: ArtifactUploads, args: list[str]) -> dict[str, Any]:
    """The job's ``pyspark_config``, the same in both modes but for its args."""
    return {
        "main_python_file_uri": uploads.job_entry.uri,
        "python_file_uris": [uploads.job_zip.uri],
        "args": args,
        # The venv of the init action: the image's Python and packages plus the locked ones.
        "properties": {
            "spark.pyspark.python": VENV_PYTHON, "spark.pyspark.driver.python": VENV_PYTHON,
            # A stream never ends, so its event log (in the temp bucket) would be one
            # ever-growing file; rolled, the old parts are objects the bucket's age
            # rule can delete.
            "spark.eventLog.rolling.enabled": "true",
            "spark.eventLog.rolling.maxFileSize": EVENT_LOG_PART,
        },
    }


def rest_fields(config: Mapping[str, Any]) -> dict[str, Any]:
    """A ``pyspark_config`` as Dataproc's REST ``PySparkJob`` spells its fields (``mainPythonFileUri``)."""
    def camel(name: str) -> str:
        head, *rest = name.split("_")
        return head + "".join(word.title() for word in rest)

    return {camel(key): value for key, value in config.items()}
