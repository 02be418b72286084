"""Deterministic source archives of the producer and the Spark job.

An archive's name carries the hash of what it contains, so a deployment references
exactly one version of the code, and ``cdktf deploy`` shows a code change as a
rollout. For that the hash must change when, and only when, the shipped code does:

- it is computed from the members' paths and bytes, never from timestamps, file
  modes, directory order or the compressor's output;
- ``__pycache__``, compiled and hidden files are left out;
- the zip itself is built the same way every time (sorted members, fixed date and
  mode), so two synths on one machine produce identical files.

Pure Python, no CDKTF import: the tests call it on temporary trees.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Fixed member timestamp (zip's epoch): archives do not depend on checkout times.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIPPED_DIRS = {"__pycache__", "node_modules"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}

#: pyproject.toml names README.md as the long description, so the distribution
#: cannot build without one; a fixed stub keeps README edits out of the hash.
DISTRIBUTION_README = "cryptopipe: the market data pipeline's producer distribution; see the repository README.\n"


@dataclass(frozen=True)
class Archive:
    """A built archive: where it is and the hash of its contents."""

    path: Path
    sha256: str

    @property
    def short_hash(self) -> str:
        """The part of the hash that goes into object names (64 bits: collisions are not a concern)."""
        return self.sha256[:16]


def source_files(root: Path, members: Sequence[str]) -> Iterator[tuple[str, Path]]:
    """(archive path, file) for every shipped file under ``members`` (files or folders of ``root``)."""
    for member in members:
        path = root / member
        if path.is_file():
            yield member, path
        elif path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(root)
                if file.is_file() and not _skipped(relative):
                    yield relative.as_posix(), file
        else:
            raise FileNotFoundError(f"{path} is missing: it is part of the deployed code ({members})")


def build_archive(
    root: Path, members: Sequence[str], destination: Path, extra: Mapping[str, str] | None = None
) -> Archive:
    """Zip ``members`` of ``root`` (plus ``extra`` generated files) into ``destination``.

    ``destination``'s name gets the content hash appended before the suffix:
    ``build_archive(repo, ["jobs"], out / "job.zip")`` writes ``out/job-<hash16>.zip``.
    """
    entries = {name: file.read_bytes() for name, file in source_files(root, members)}
    for name, text in (extra or {}).items():
        entries[name] = text.encode()
    sha256 = content_hash(entries)
    path = destination.with_name(f"{destination.stem}-{sha256[:16]}{destination.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.create_system = 3  # unix, whatever builds it
            archive.writestr(info, entries[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return Archive(path=path, sha256=sha256)


def content_hash(entries: Mapping[str, bytes]) -> str:
    """SHA-256 over the sorted (path, SHA-256 of bytes) pairs: independent of how the zip compresses."""
    manifest = "".join(f"{name}\0{hashlib.sha256(data).hexdigest()}\n" for name, data in sorted(entries.items()))
    return hashlib.sha256(manifest.encode()).hexdigest()


def _skipped(relative: Path) -> bool:
    return (
        any(part in _SKIPPED_DIRS or part.startswith(".") or part.endswith(".egg-info") for part in relative.parts)
        or relative.suffix in _SKIPPED_SUFFIXES
    )


#: The parts of the ``cryptopipe`` package both workloads import: the one schema and
#: the live totals. Not the local tools (replay, dashboard, CLI): editing those must
#: not roll out the producer VM or the Dataproc job.
CORE_MEMBERS = ("cryptopipe/__init__.py", "cryptopipe/schema.py", "cryptopipe/schemas", "cryptopipe/totals.py")
#: What each workload runs, as paths of the repository. The producer ships as an
#: installable source distribution (``pip install '<zip>[producer]'`` on the VM), so
#: it takes pyproject.toml; the job ships as a zip on the driver's Python path. The
#: job's DuckDB loader creates the views, so the job takes them too.
PRODUCER_MEMBERS = ("pyproject.toml", *CORE_MEMBERS, "producer")
JOB_MEMBERS = (*CORE_MEMBERS, "cryptopipe/views", "jobs")
#: The Spark job's entry file, uploaded beside the zip as the main Python file.
JOB_ENTRY = "jobs/stream.py"


@dataclass(frozen=True)
class Artifacts:
    """The built artifacts of one source tree, shared by every environment's stack."""

    producer: Archive
    job: Archive
    job_entry: Path


def build_artifacts(source_root: Path, build_dir: Path) -> Artifacts:
    """Build the producer and job archives of ``source_root`` into ``build_dir``."""
    entry = source_root / JOB_ENTRY
    if not entry.is_file():
        raise FileNotFoundError(f"{entry} is missing: the Spark job's entry file (the Dataproc job's main file)")
    return Artifacts(
        producer=build_archive(source_root, PRODUCER_MEMBERS, build_dir / "cryptopipe-producer.zip",
                               extra={"README.md": DISTRIBUTION_README}),
        job=build_archive(source_root, JOB_MEMBERS, build_dir / "cryptopipe-job.zip"),
        job_entry=entry,
    )
