"""The producer: a small VM with no public IP that runs ``python -m producer`` under systemd.

Its startup script carries the exact artifact URL and sha256 (checked before anything
is installed) and the producer's configuration (``CRYPTOPIPE__PRODUCER__*``); the
instance takes it as ``metadata_startup_script``, which forces a new VM when it
changes. So a deploy that changes what the producer runs, or how it is configured,
replaces the VM and the plan says so. Polls waiting in the producer's spool (GCS
unreachable) must survive that, so the spool is on a persistent disk of its own,
which outlives the VM and is attached to the next one; the old VM's shutdown stops
the producer (SIGTERM: it finishes its poll) first. The CoinGecko key never enters
metadata or state: the producer reads it from Secret Manager, from the secret the
``bootstrap-<env>`` stack makes, whose first version a person adds before the first deploy
(docs/DEPLOY.md): the VM never starts without a key. It starts once the grants its account uses
have propagated (waits.py).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from constructs import Construct

from infra.artifacts.boot import PRODUCER_STARTUP, boot_script
from infra.cdk import google
from infra.environments import EnvironmentConfig
from infra.stacks.iam import grant
from infra.stacks.network import Network
from infra.stacks.storage import LANDING, Storage
from infra.stacks.uploads import ArtifactUploads
from infra.stacks.waits import after_grants

#: The producer service's state directory: the spool disk is mounted here.
STATE_DIR = "/var/lib/cryptopipe"
SPOOL_DIR = f"{STATE_DIR}/spool"
#: The spool disk's device name: the VM sees it as /dev/disk/by-id/google-<name>.
SPOOL_DEVICE = "cryptopipe-spool"
BOOT_IMAGE = "debian-cloud/debian-12"


class ProducerVm(Construct):
    """The producer's read of the API key's secret (when the plan has a key) and the producer VM."""

    def __init__(
        self, scope: Construct, id_: str, cfg: EnvironmentConfig, *, network: Network, storage: Storage,
        uploads: ArtifactUploads, service_account: str, member: str, after: list[Any], grants: list[Any],
    ) -> None:
        super().__init__(scope, id_)
        self.secret_version: str | None = None
        self.secret_id = api_key_secret_id(cfg)
        secret_grants: list[Any] = []
        if cfg.api_plan != "none":
            # The secret is the bootstrap's (bootstrap.py); its value is added out of band (docs/DEPLOY.md).
            self.secret_version = f"projects/{cfg.project}/secrets/{self.secret_id}/versions/latest"
            secret_roles = {"roles/secretmanager.secretAccessor": {"producer": member}}
            secret_grants = grant(
                self,
                google.secret_manager_secret_iam_member.SecretManagerSecretIamMember,
                secret_roles,
                secret_id=self.secret_id,
                project=cfg.project,
                depends_on=after,
            )
        self.grants_propagated = after_grants(self, [*grants, *secret_grants])

        script = startup_script(
            artifact_url=_object_media_url(storage.name, uploads.producer.name),
            artifact_file=uploads.producer.name.rsplit("/", 1)[-1],
            artifact_sha256=uploads.producer_sha256,
            environment=producer_environment(cfg, storage.uri(LANDING), self.secret_version),
        )
        self.spool_disk = google.compute_disk.ComputeDisk(
            self,
            "spool-disk",
            name=cfg.name_of("producer", "spool"),
            project=cfg.project,
            zone=cfg.zone,
            type="pd-balanced",
            size=cfg.producer_spool_disk_gb,
            labels={"stage": "producer"},
            **({"disk_encryption_key": {"kms_key_self_link": cfg.kms_key}} if cfg.kms_key else {}),
            depends_on=[*after, self.grants_propagated],  # with CMEK: Compute's agent uses the key at creation
        )
        self.instance = google.compute_instance.ComputeInstance(
            self,
            "vm",
            name=cfg.name_of("producer", "vm"),
            project=cfg.project,
            zone=cfg.zone,
            machine_type=cfg.producer_machine_type,
            boot_disk={
                "initialize_params": {"image": BOOT_IMAGE, "size": cfg.producer_disk_gb, "type": "pd-balanced"},
                "kms_key_self_link": cfg.kms_key,  # CMEK when set (encryption.py grants the agent)
            },
            attached_disk=[
                google.compute_instance.ComputeInstanceAttachedDisk(source=self.spool_disk.id, device_name=SPOOL_DEVICE)
            ],
            # No access_config: no public IP.
            network_interface=[google.compute_instance.ComputeInstanceNetworkInterface(subnetwork=network.subnet.id)],
            service_account={"email": service_account, "scopes": ["cloud-platform"]},
            shielded_instance_config={
                "enable_secure_boot": True,
                "enable_vtpm": True,
                "enable_integrity_monitoring": True,
            },
            # SSH only as an IAM identity (OS Login, roles/compute.osLogin), never with
            # project-wide keys; the serial port stays closed (the default).
            # The service's output reaches Cloud Logging through the serial console log, where
            # the producer-down alert counts its poll lines (alerts.py); the port itself stays closed.
            metadata={"enable-oslogin": "TRUE", "block-project-ssh-keys": "TRUE", "serial-port-logging-enable": "TRUE"},
            metadata_startup_script=script,
            tags=[network.producer_tag],
            labels={"stage": "producer", "artifact": uploads.producer_hash},
            allow_stopping_for_update=True,
            # First boot needs egress, its artifact and its grants in effect.
            depends_on=[*network.ready, uploads.producer.object, self.grants_propagated, *after],
        )


def api_key_secret_id(cfg: EnvironmentConfig) -> str:
    """The CoinGecko key's secret, as bootstrap.py makes it."""
    return cfg.name_of("producer", "api-key")


def producer_environment(cfg: EnvironmentConfig, landing_uri: str, secret_version: str | None) -> dict[str, str]:
    """The producer's configuration, as the ``CRYPTOPIPE__PRODUCER__*`` variables it reads.

    No BASE_URL: the producer picks CoinGecko's host for the plan itself.
    """
    settings = {
        "API_PLAN": cfg.api_plan,
        "VS_CURRENCY": cfg.vs_currency,
        "TOP_N": str(cfg.top_n),
        "COIN_IDS": ",".join(cfg.coin_ids) or None,
        "INTERVAL_SECONDS": str(cfg.interval_seconds),
        "REQUESTS_PER_MINUTE": str(cfg.requests_per_minute),
        "MONTHLY_CREDITS": None if cfg.monthly_credits is None else str(cfg.monthly_credits),
        "LANDING_URI": landing_uri,
        "SPOOL_DIR": SPOOL_DIR,
        "API_KEY_SECRET": secret_version,
    }
    return {f"CRYPTOPIPE__PRODUCER__{key}": value for key, value in settings.items() if value is not None}


def startup_script(*, artifact_url: str, artifact_file: str, artifact_sha256: str, environment: dict[str, str]) -> str:
    """The VM's startup script: the values as shell assignments, then the fixed body (infra/artifacts/boot.py)."""
    return boot_script(
        "infra/stacks/producer_vm.py",
        PRODUCER_STARTUP,
        {
            "STATE_DIR": STATE_DIR,
            "SPOOL_DEVICE": f"/dev/disk/by-id/google-{SPOOL_DEVICE}",
            "ARTIFACT_URL": artifact_url,
            "ARTIFACT_FILE": artifact_file,
            "ARTIFACT_SHA256": artifact_sha256,
            "PRODUCER_ENV": "\n".join(f"{key}={value}" for key, value in environment.items()),
        },
    )


def _object_media_url(bucket: str, name: str) -> str:
    """JSON API download URL: needs only storage.objects.get, which the conditional grant gives."""
    return f"https://storage.googleapis.com/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"
