"""Upload the versioned producer and job artifacts (see archive.py) into the bucket.

Each object's name carries its content hash, and the VM and the Dataproc job refer
to exactly that name: a code change is a new object plus a changed reference in
the plan (a rollout), and nothing else changes.
"""

from __future__ import annotations

from pathlib import Path

from cdktf import AssetType, TerraformAsset
from cdktf_cdktf_provider_google.storage_bucket_object import StorageBucketObject
from constructs import Construct

from archive import Artifacts
from storage import JOB_ARTIFACTS, PRODUCER_ARTIFACTS, Storage


class Upload(Construct):
    """One file as a bucket object named ``name`` (known at synth, so references are plain strings)."""

    def __init__(self, scope: Construct, id_: str, storage: Storage, path: Path, content_hash: str, name: str) -> None:
        super().__init__(scope, id_)
        self.name = name
        self.uri = storage.uri(name)
        asset = TerraformAsset(self, "asset", path=str(path), type=AssetType.FILE, asset_hash=content_hash)
        self.object = StorageBucketObject(
            self, "object", bucket=storage.bucket.name, name=name, source=asset.path,
            content_type="application/zip" if name.endswith(".zip") else "text/x-python",
        )


class ArtifactUploads(Construct):
    """The producer distribution, the job's Python zip and its entry file."""

    def __init__(self, scope: Construct, id_: str, storage: Storage, artifacts: Artifacts) -> None:
        super().__init__(scope, id_)
        producer, job, entry = artifacts.producer, artifacts.job, artifacts.job_entry
        self.producer_hash = producer.short_hash
        self.job_hash = job.short_hash
        self.producer = Upload(self, "producer", storage, producer.path, producer.sha256,
                               f"{PRODUCER_ARTIFACTS}{producer.path.name}")
        self.job_zip = Upload(self, "job-zip", storage, job.path, job.sha256, f"{JOB_ARTIFACTS}{job.path.name}")
        self.job_entry = Upload(self, "job-entry", storage, entry, job.sha256,
                                f"{JOB_ARTIFACTS}{entry.stem}-{job.short_hash}{entry.suffix}")
