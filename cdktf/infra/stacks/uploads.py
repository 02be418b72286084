"""Upload the versioned producer and job artifacts (see infra/artifacts/archive.py) into the bucket.

Each object's name carries its content hash, and the VM and the Dataproc job refer
to exactly that name: a code change is a new object plus a changed reference in
the plan (a rollout), and nothing else changes. The cluster's initialization action
(infra/artifacts/cluster_init.py) is generated per environment, so it is uploaded as text, named by
its own hash.
"""

from __future__ import annotations

from pathlib import Path

from constructs import Construct

from infra.artifacts.archive import Artifacts
from infra.artifacts.cluster_init import cluster_init_script, script_name
from infra.cdk import AssetType, TerraformAsset, google
from infra.stacks.storage import JOB_ARTIFACTS, PRODUCER_ARTIFACTS, Storage

_CONTENT_TYPES = {".tar": "application/x-tar", ".zip": "application/zip", ".py": "text/x-python",
                  ".sh": "text/x-shellscript"}


class Upload(Construct):
    """One object named ``name`` (known at synth, so references are plain strings): the
    file at ``path`` (its ``content_hash`` the asset's), or ``content``."""

    def __init__(
        self, scope: Construct, id_: str, storage: Storage, name: str, *,
        path: Path | None = None, content_hash: str | None = None, content: str | None = None,
    ) -> None:
        super().__init__(scope, id_)
        self.name = name
        self.uri = storage.uri(name)
        if path is not None:
            asset = TerraformAsset(self, "asset", path=str(path), type=AssetType.FILE, asset_hash=content_hash)
            source = {"source": asset.path}
        else:
            source = {"content": content}
        self.object = google.storage_bucket_object.StorageBucketObject(
            self, "object", bucket=storage.bucket.name, name=name, content_type=_CONTENT_TYPES[Path(name).suffix],
            **source,
        )


class ArtifactUploads(Construct):
    """The producer's bundle, the job's Python zip, its entry file and dependency bundle, the cluster's init action."""

    def __init__(self, scope: Construct, id_: str, storage: Storage, artifacts: Artifacts) -> None:
        super().__init__(scope, id_)
        producer, job, entry, deps = artifacts.producer, artifacts.job, artifacts.job_entry, artifacts.job_dependencies
        self.producer_hash = producer.short_hash
        self.producer_sha256 = producer.file_sha256
        self.job_hash = job.short_hash
        self.producer = Upload(self, "producer", storage, f"{PRODUCER_ARTIFACTS}{producer.path.name}",
                               path=producer.path, content_hash=producer.sha256)
        self.job_zip = Upload(self, "job-zip", storage, f"{JOB_ARTIFACTS}{job.path.name}",
                              path=job.path, content_hash=job.sha256)
        entry_name = f"{JOB_ARTIFACTS}{entry.stem}-{job.short_hash}{entry.suffix}"
        self.job_entry = Upload(self, "job-entry", storage, entry_name, path=entry, content_hash=job.sha256)
        self.job_dependencies = Upload(self, "job-dependencies", storage, f"{JOB_ARTIFACTS}{deps.path.name}",
                                       path=deps.path, content_hash=deps.sha256)
        init = cluster_init_script(self.job_dependencies.uri, deps.file_sha256)
        self.cluster_init = Upload(self, "cluster-init", storage, f"{JOB_ARTIFACTS}{script_name(init)}", content=init)
