"""Customer-managed encryption (CMEK) of the environment's disks, when ``kms_key`` is set.

The bucket and the dataset grant their own service agents use of the key
(storage.py, warehouse.py). Persistent disks, the producer VM's and the Dataproc
nodes', are encrypted by Compute Engine's service agent, and Dataproc's service
agent uses the key when it creates the cluster: both get the role on the key, and
the VM and the cluster wait for the grants.

Google creates a service agent when its API is first enabled; if a grant reports
that the agent does not exist, run ``gcloud beta services identity create
--service=dataproc.googleapis.com --project P`` once and deploy again.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from infra.cdk import google
from infra.environments import EnvironmentConfig
from infra.stacks.iam import grant


class DiskEncryption(Construct):
    """``self.grants``: the service agents' use of ``kms_key`` (none without a key)."""

    def __init__(self, scope: Construct, id_: str, cfg: EnvironmentConfig, after: list[Any]) -> None:
        super().__init__(scope, id_)
        self.kms_key = cfg.kms_key
        self.grants: list[Any] = []
        if cfg.kms_key:
            number = google.data_google_project.DataGoogleProject(
                self, "project", project_id=cfg.project, depends_on=after
            ).number
            key_roles = {
                "roles/cloudkms.cryptoKeyEncrypterDecrypter": {
                    "compute-agent": f"serviceAccount:service-{number}@compute-system.iam.gserviceaccount.com",
                    "dataproc-agent": f"serviceAccount:service-{number}@dataproc-accounts.iam.gserviceaccount.com",
                }
            }
            self.grants = grant(
                self, google.kms_crypto_key_iam_member.KmsCryptoKeyIamMember, key_roles, crypto_key_id=cfg.kms_key
            )
