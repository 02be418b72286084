"""Deterministic artifacts of the producer and the Spark job.

An artifact's name carries the hash of what it contains, so a deployment references
exactly one version of the code, and ``cdktf deploy`` shows a code change as a
rollout. For that the hash must change when, and only when, what ships does:

- it is computed from the members' paths and bytes, never from timestamps, file
  modes, directory order or the compressor's output;
- ``__pycache__``, compiled and hidden files are left out;
- the archive itself is built the same way every time (sorted members, fixed date,
  owner and mode), so two synths on one machine produce identical files.

What ships, and how each boot installs only what was synthesized:

- the producer: one tar of our wheel (built here from the producer's sources, the
  same bytes every time), the wheels of ``locks/producer.txt`` and a requirements.txt
  with the hash of every one of them. The VM checks the tar's sha256, then installs
  it with ``--no-index --require-hashes`` (install_artifact.sh).
- the job: a zip on the driver's Python path and its entry file (a code change
  replaces the job only), and a tar of the wheels of ``locks/cluster.txt`` with their
  requirements.txt, which every cluster node installs the same way when it is created.

Pure Python, no CDKTF import: the tests call it on temporary trees.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename

from infra.artifacts.wheelhouse import (
    CACHE,
    CLUSTER_LOCK,
    PRODUCER_LOCK,
    Wheel,
    WheelhouseError,
    check_lock,
    locked_wheels,
)

#: Fixed member timestamp (zip's epoch): archives do not depend on checkout times.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_SOURCE_DATE_EPOCH = "315532800"  # the same instant, for the wheel build
_SKIPPED_DIRS = {"__pycache__", "node_modules"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}

#: pyproject.toml names README.md as the long description, so the distribution
#: cannot build without one; a fixed stub keeps README edits out of the hash.
DISTRIBUTION_README = "cryptopipe: the market data pipeline's producer distribution; see the repository README.\n"
#: Inside a bundle (the producer's and the job dependencies' tar): what install_artifact.sh reads.
BUNDLE_REQUIREMENTS = "requirements.txt"
BUNDLE_WHEELS = "wheels/"


@dataclass(frozen=True)
class Archive:
    """A built archive: where it is, the hash of its contents (its name) and of its bytes (what a boot checks)."""

    path: Path
    sha256: str
    file_sha256: str

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


def source_entries(root: Path, members: Sequence[str], extra: Mapping[str, str] | None = None) -> dict[str, bytes]:
    """Archive path -> bytes of every shipped file under ``members``, plus ``extra`` generated files."""
    entries = {name: file.read_bytes() for name, file in source_files(root, members)}
    entries.update({name: text.encode() for name, text in (extra or {}).items()})
    return entries


def write_archive(entries: Mapping[str, bytes], destination: Path) -> Archive:
    """Write ``entries`` as a zip or an uncompressed tar (by ``destination``'s suffix).

    ``destination``'s name gets the content hash appended before the suffix:
    ``write_archive(entries, out / "job.zip")`` writes ``out/job-<hash16>.zip``.
    """
    sha256 = content_hash(entries)
    path = destination.with_name(f"{destination.stem}-{sha256[:16]}{destination.suffix}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if destination.suffix == ".zip":
        with zipfile.ZipFile(path, "w") as archive:
            for name in sorted(entries):
                info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
                info.external_attr = 0o644 << 16
                info.create_system = 3  # unix, whatever builds it
                archive.writestr(info, entries[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    elif destination.suffix == ".tar":  # wheels are compressed already
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
            for name in sorted(entries):
                info = tarfile.TarInfo(name)  # mtime 0, mode 0644, owned by 0:0 with no names
                info.size = len(entries[name])
                archive.addfile(info, io.BytesIO(entries[name]))
    else:
        raise ValueError(f"{destination}: an artifact is a .zip or a .tar")
    with path.open("rb") as file:
        return Archive(path=path, sha256=sha256, file_sha256=hashlib.file_digest(file, "sha256").hexdigest())


def content_hash(entries: Mapping[str, bytes]) -> str:
    """SHA-256 over the sorted (path, SHA-256 of bytes) pairs: independent of how the archive compresses."""
    manifest = "".join(f"{name}\0{hashlib.sha256(data).hexdigest()}\n" for name, data in sorted(entries.items()))
    return hashlib.sha256(manifest.encode()).hexdigest()


def build_wheel(entries: Mapping[str, bytes], build_dir: Path) -> Path:
    """Build the wheel of a source tree given as ``entries`` (with its pyproject.toml) into ``build_dir``.

    pyproject.toml's backend, setuptools, builds it in this interpreter's environment
    (no isolated build environment to download; the deploy extra pins it) from a copy
    with fixed file modes, its members dated ``SOURCE_DATE_EPOCH``: the same entries
    give the same bytes.
    """
    source, out = build_dir / "wheel-source", build_dir / "wheel"
    for name, data in entries.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o644)
    hook = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
    result = subprocess.run(
        [sys.executable, "-I", "-c", hook, str(out)], cwd=source, capture_output=True, text=True,
        env={**os.environ, "SOURCE_DATE_EPOCH": _SOURCE_DATE_EPOCH},
    )  # fmt: skip
    if result.returncode != 0:
        raise WheelhouseError(
            f"building the producer's wheel failed (is .venv current? scripts/bootstrap.sh deploy):\n{result.stderr}"
        )
    (wheel,) = out.glob("*.whl")
    return wheel


def bundle_entries(wheels: Iterable[Path], requirements: Iterable[str]) -> dict[str, bytes]:
    """A bundle's members: ``wheels`` under wheels/ and a requirements.txt of ``requirements``."""
    text = "".join(
        ["# Generated at synth (cdktf/infra/artifacts/archive.py): the complete install, every file of wheels/ hashed.\n",
         *(f"{line}\n" for line in requirements)]
    )  # fmt: skip
    return {BUNDLE_REQUIREMENTS: text.encode(), **{f"{BUNDLE_WHEELS}{w.name}": w.read_bytes() for w in wheels}}


def _pinned(wheels: Iterable[Wheel]) -> list[str]:
    return [f"{wheel.pin} --hash=sha256:{wheel.sha256}" for wheel in wheels]


def _skipped(relative: Path) -> bool:
    return (
        any(part in _SKIPPED_DIRS or part.startswith(".") or part.endswith(".egg-info") for part in relative.parts)
        or relative.suffix in _SKIPPED_SUFFIXES
    )


#: The shared core (schema, table contracts, views' SQL, totals): a folder, shipped
#: whole beside each workload. Not the local app (replay, dashboard, CLI): editing it
#: must not roll out the producer VM or the Dataproc job.
CORE = "core"
#: What each workload runs, as folders of the repository. The producer ships as a wheel
#: built from its members (so it takes pyproject.toml: a change of the wheel's metadata
#: is a rollout, a comment is not); the job ships as a zip on the driver's Python path.
PRODUCER_MEMBERS = ("pyproject.toml", CORE, "producer")
JOB_MEMBERS = (CORE, "jobs")
#: The Spark job's entry file, uploaded beside the zip as the main Python file.
JOB_ENTRY = "jobs/stream.py"
#: Everything of the repository the artifacts are built from.
SOURCES = (*PRODUCER_MEMBERS, *JOB_MEMBERS, PRODUCER_LOCK.path, CLUSTER_LOCK.path)


@dataclass(frozen=True)
class Artifacts:
    """The built artifacts of one source tree, shared by every environment's stack."""

    producer: Archive
    job: Archive
    job_entry: Path
    job_dependencies: Archive


#: The ``[project.scripts]`` table of pyproject.toml, up to the next table.
_SCRIPTS_TABLE = re.compile(rb"^\[project\.scripts\]\n(?:(?!\[).*\n)*", re.M)


def without_scripts(pyproject: bytes) -> bytes:
    """pyproject.toml without its console scripts: the producer's wheel ships no local app, so the
    ``cryptopipe`` command it would declare could not run on the VM."""
    return _SCRIPTS_TABLE.sub(b"", pyproject)


def build_artifacts(source_root: Path, build_dir: Path, cache: Path = CACHE) -> Artifacts:
    """Build the producer's and the job's artifacts of ``source_root`` into ``build_dir``, the
    locked wheels taken from ``cache`` (downloaded into it when missing)."""
    entry = source_root / JOB_ENTRY
    if not entry.is_file():
        raise FileNotFoundError(f"{entry} is missing: the Spark job's entry file (the Dataproc job's main file)")
    for lock in (PRODUCER_LOCK, CLUSTER_LOCK):
        check_lock(source_root, lock)
    producer_deps = locked_wheels(source_root / PRODUCER_LOCK.path, cache)
    cluster_deps = locked_wheels(source_root / CLUSTER_LOCK.path, cache)

    producer_sources = source_entries(source_root, PRODUCER_MEMBERS, {"README.md": DISTRIBUTION_README})
    producer_sources["pyproject.toml"] = without_scripts(producer_sources["pyproject.toml"])
    wheel = build_wheel(producer_sources, build_dir)
    name, version, _, _ = parse_wheel_filename(wheel.name)
    own = f"{name}[{PRODUCER_LOCK.extra}]=={version} --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}"
    return Artifacts(
        producer=write_archive(
            bundle_entries([wheel, *(w.path for w in producer_deps)], [own, *_pinned(producer_deps)]),
            build_dir / "cryptopipe-producer.tar",
        ),
        job=write_archive(source_entries(source_root, JOB_MEMBERS), build_dir / "cryptopipe-job.zip"),
        job_entry=entry,
        job_dependencies=write_archive(
            bundle_entries((w.path for w in cluster_deps), _pinned(cluster_deps)), build_dir / "dependencies.tar"
        ),
    )
