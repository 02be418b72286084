"""Dataproc: the cluster and the streaming job running on it.

The job is a ``google_dataproc_job``: Terraform creates it once it is RUNNING,
Dataproc restarts a failed driver (``scheduling``), and ``force_delete`` cancels
the running job when a new version replaces it or the stack is destroyed. Every
field of a job forces a new one, so a new job artifact or argument is a restart on
the same checkpoint: the old run is cancelled before the new one starts (never two
streams on one checkpoint).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from cdktf import TerraformResourceLifecycle
from cdktf_cdktf_provider_google.dataproc_cluster import DataprocCluster
from cdktf_cdktf_provider_google.dataproc_job import DataprocJob
from constructs import Construct

from artifacts import ArtifactUploads
from config import EnvironmentConfig
from network import Network
from storage import ARCHIVE, CHECKPOINTS, LANDING, STAGING, Storage
from warehouse import Warehouse

#: The optional-dependencies extra of pyproject.toml that lists what the cluster
#: needs beyond the core dependencies (Spark itself comes with the image).
CLUSTER_EXTRA = "dataproc"
_PINNED = re.compile(r"^[A-Za-z0-9._-]+(\[[A-Za-z0-9,._-]+\])?==[A-Za-z0-9.+!-]+$")


def cluster_python_packages(pyproject: Path) -> list[str]:
    """The pinned Python packages the job needs on the cluster: the core dependencies
    of ``pyproject`` plus its ``dataproc`` extra, if any."""
    project = tomllib.loads(pyproject.read_text())["project"]
    packages = [*project.get("dependencies", []), *project.get("optional-dependencies", {}).get(CLUSTER_EXTRA, [])]
    unpinned = [p for p in packages if not _PINNED.match(p.replace(" ", ""))]
    if unpinned:
        raise ValueError(f"{pyproject}: {unpinned} are not pinned (name==version); the cluster installs exact versions")
    return [p.replace(" ", "") for p in packages]


class Processing(Construct):
    """The cluster (internal IPs, own service account, pinned image and packages) and the job."""

    def __init__(
        self, scope: Construct, id_: str, cfg: EnvironmentConfig, *, network: Network, storage: Storage,
        uploads: ArtifactUploads, warehouse: Warehouse, service_account: str, packages: list[str], after: list[Any],
    ) -> None:
        super().__init__(scope, id_)
        node_disk = {"boot_disk_type": "pd-balanced", "boot_disk_size_gb": cfg.cluster_disk_gb}
        properties = {
            "dataproc:pip.packages": ",".join(packages),
            # Driver output in Cloud Logging, so the job can be watched without SSH.
            "dataproc:dataproc.logging.stackdriver.job.driver.enable": "true",
        }
        if cfg.cluster_worker_count == 0:
            properties["dataproc:dataproc.allow.zero.workers"] = "true"

        self.cluster = DataprocCluster(
            self, "cluster", name=cfg.name_of("processing", "cluster"), project=cfg.project, region=cfg.region,
            cluster_config={
                "staging_bucket": storage.name,
                "temp_bucket": storage.name,
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
                # CMEK for every node's disks when kms_key is set (encryption.py grants the agents).
                "encryption_config": {"kms_key_name": cfg.kms_key} if cfg.kms_key else None,
            },
            depends_on=after,
        )

        checkpoint = f"{CHECKPOINTS}market_ticks"
        args = [
            "--landing", storage.uri(LANDING),
            "--archive", storage.uri(ARCHIVE),
            "--checkpoint", storage.uri(checkpoint),
            "--staging", storage.uri(STAGING),
            "--warehouse", warehouse.uri,
            "--trigger-seconds", str(cfg.trigger_seconds),
            "--max-files-per-trigger", str(cfg.max_files_per_trigger),
            "--watermark", cfg.watermark,
        ]
        self.job = DataprocJob(
            self, "stream", project=cfg.project, region=cfg.region,
            placement={"cluster_name": self.cluster.name},
            pyspark_config={
                "main_python_file_uri": uploads.job_entry.uri,
                "python_file_uris": [uploads.job_zip.uri],
                "args": args,
            },
            scheduling={
                "max_failures_per_hour": cfg.job_max_failures_per_hour,
                "max_failures_total": cfg.job_max_failures_total,
            },
            labels={"stage": "processing", "artifact": uploads.job_hash},
            force_delete=True,
            # A replaced cluster takes the running job with it: start a new one. A plain
            # address, because cdktf renders a resource here as "${…}", which Terraform
            # rejects (terraform-cdk#3196).
            lifecycle=TerraformResourceLifecycle(replace_triggered_by=[
                f"{self.cluster.terraform_resource_type}.{self.cluster.friendly_unique_id}",
            ]),
            depends_on=[uploads.job_zip.object, uploads.job_entry.object, *warehouse.grants,
                        warehouse.ticks, warehouse.quarantine],
        )
