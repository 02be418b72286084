"""Artifacts: deterministic, their hash moves with what ships only, and they hold a complete hashed install."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from infra.artifacts.archive import BUNDLE_REQUIREMENTS, BUNDLE_WHEELS, DISTRIBUTION_README, JOB_ENTRY, build_artifacts
from infra.artifacts.wheelhouse import CLUSTER_LOCK, PRODUCER_LOCK, read_lock

ROOT = Path(__file__).resolve().parents[2]


def _hashes(source: Path, out: Path) -> tuple[str, str, str]:
    artifacts = build_artifacts(source, out)
    return artifacts.producer.sha256, artifacts.job.sha256, artifacts.job_dependencies.sha256


def _touch(path: Path, text: str = "\n# changed\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.write(text)


def _bundle(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as bundle:
        return {member.name: bundle.extractfile(member).read() for member in bundle.getmembers()}


def _requirements(bundle: dict[str, bytes]) -> dict[str, str]:
    """requirement -> hash, of the bundle's requirements.txt."""
    lines = [line for line in bundle[BUNDLE_REQUIREMENTS].decode().splitlines() if not line.startswith("#")]
    return dict(line.split(" --hash=sha256:") for line in lines)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str, str]:
    """The hashes of the repository's artifacts as they are (the tests' copies start equal)."""
    return _hashes(ROOT, tmp_path_factory.mktemp("baseline"))


def test_two_builds_give_identical_artifacts(source_copy, tmp_path):
    first = build_artifacts(source_copy, tmp_path / "a")
    second = build_artifacts(source_copy, tmp_path / "b")
    for artifact in ("producer", "job", "job_dependencies"):
        assert getattr(first, artifact).path.read_bytes() == getattr(second, artifact).path.read_bytes(), artifact
    assert first.producer.path.name == f"cryptopipe-producer-{first.producer.sha256[:16]}.tar"
    assert first.producer.file_sha256 == hashlib.sha256(first.producer.path.read_bytes()).hexdigest()


def test_hash_ignores_timestamps_modes_caches_comments_and_readme(source_copy, tmp_path, baseline):
    for file in source_copy.rglob("*.py"):
        os.utime(file, (0, 0))
    (source_copy / "producer" / "poller.py").chmod(0o755)
    (source_copy / "producer" / "__pycache__").mkdir(exist_ok=True)
    (source_copy / "producer" / "__pycache__" / "poller.cpython-311.pyc").write_bytes(b"\0")
    (source_copy / "jobs" / ".pytest_cache").mkdir(exist_ok=True)
    (source_copy / "README.md").write_text("a new README\n")
    _touch(source_copy / "pyproject.toml")  # a comment: the wheel's metadata is the same
    _touch(source_copy / CLUSTER_LOCK.path)
    assert _hashes(source_copy, tmp_path) == baseline


@pytest.mark.parametrize(
    ("changed", "producer_moves", "job_moves"),
    [
        ("producer/__init__.py", True, False),
        ("jobs/__init__.py", False, True),
        (JOB_ENTRY, False, True),
        ("core/schema.py", True, True),
        ("core/schemas/market_tick.json", True, True),
        ("core/totals.py", True, True),
        ("core/views/latest_prices.sql", True, True),  # the core ships whole beside each workload
        ("cryptopipe/dashboard/server.py", False, False),
        ("cryptopipe/replay/data/coins.json", False, False),
        ("cryptopipe/cli.py", False, False),
        ("tests/test_anything.py", False, False),
    ],
)
def test_hash_changes_when_and_only_when_its_code_does(
    source_copy, tmp_path, baseline, changed, producer_moves, job_moves
):
    _touch(source_copy / changed, "\n" if changed.endswith(".json") else "\n# changed\n")
    producer, job, dependencies = _hashes(source_copy, tmp_path)
    assert (producer != baseline[0]) is producer_moves
    assert (job != baseline[1]) is job_moves
    assert dependencies == baseline[2]  # the cluster's dependencies move with locks/cluster.txt only


def test_the_producers_metadata_moves_the_producer_only(source_copy, tmp_path, baseline):
    pyproject = source_copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "0.1.1"', 1))
    producer, job, dependencies = _hashes(source_copy, tmp_path)
    assert producer != baseline[0]
    assert (job, dependencies) == baseline[1:]


def test_producer_artifact_is_our_wheel_and_every_locked_wheel_each_hashed(source_copy, tmp_path):
    artifact = build_artifacts(source_copy, tmp_path).producer.path
    bundle = _bundle(artifact)
    with tarfile.open(artifact) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.mode, m.uid, m.gid, m.uname, m.gname) for m in members} == {(0, 0o644, 0, 0, "", "")}

    requirements = _requirements(bundle)
    wheels = {name: data for name, data in bundle.items() if name.startswith(BUNDLE_WHEELS)}
    assert sorted(requirements.values()) == sorted(hashlib.sha256(data).hexdigest() for data in wheels.values())
    own = {name: data for name, data in wheels.items() if name.startswith(f"{BUNDLE_WHEELS}cryptopipe-")}
    (own_name,) = own
    assert requirements["cryptopipe[producer]==0.1.0"] == hashlib.sha256(own[own_name]).hexdigest()
    locked = {str(pin) for pin in read_lock(source_copy / PRODUCER_LOCK.path)}
    assert set(requirements) == locked | {"cryptopipe[producer]==0.1.0"}

    wheel = tmp_path / "own.whl"
    wheel.write_bytes(own[own_name])
    with zipfile.ZipFile(wheel) as zipped:
        names = zipped.namelist()
        metadata = zipped.read("cryptopipe-0.1.0.dist-info/METADATA").decode()
    assert {"producer/__init__.py", "producer/__main__.py", "core/schema.py",
            "core/schemas/market_tick.json"} <= set(names)
    assert not [n for n in names if n.startswith("jobs/") or "__pycache__" in n or n.endswith(".pyc")]
    # a folder each: the core and the producer, nothing of the local app
    assert {n.split("/")[0] for n in names} == {"core", "producer", "cryptopipe-0.1.0.dist-info"}
    # and no `cryptopipe` command, whose module (the local app) it does not ship
    assert "cryptopipe-0.1.0.dist-info/entry_points.txt" not in names
    assert DISTRIBUTION_README in metadata
    assert "License-Expression: Apache-2.0" in metadata


def test_job_dependencies_are_the_cluster_lock_each_hashed(source_copy, tmp_path):
    bundle = _bundle(build_artifacts(source_copy, tmp_path).job_dependencies.path)
    requirements = _requirements(bundle)
    assert set(requirements) == {str(pin) for pin in read_lock(source_copy / CLUSTER_LOCK.path)}
    wheels = [data for name, data in bundle.items() if name.startswith(BUNDLE_WHEELS)]
    assert sorted(requirements.values()) == sorted(hashlib.sha256(data).hexdigest() for data in wheels)
    assert "google-cloud-bigquery==3.47.0" in requirements  # what the BigQuery loader imports
    assert not [name for name in bundle if name.startswith(f"{BUNDLE_WHEELS}cryptopipe-")]  # the job's code is not here


def test_job_archive_holds_the_job_and_the_core(source_copy, tmp_path):
    artifacts = build_artifacts(source_copy, tmp_path)
    with zipfile.ZipFile(artifacts.job.path) as zipped:
        names = set(zipped.namelist())
    assert {JOB_ENTRY, "jobs/__init__.py", "core/schema.py", "core/schemas/market_tick.json"} <= names
    assert {n.split("/")[0] for n in names} == {"core", "jobs"}  # a folder each
    assert artifacts.job_entry == source_copy / JOB_ENTRY


@pytest.mark.parametrize(
    ("workload", "modules"),
    [
        ("producer", ["producer.__main__", "producer.poller"]),
        ("job", ["jobs.stream", "jobs.loaders.bigquery", "jobs.loaders.duckdb"]),
    ],
)
def test_artifact_imports_its_entry_points_with_nothing_else_of_the_repository(
    source_copy, tmp_path, workload, modules
):
    archive = getattr(build_artifacts(source_copy, tmp_path / "build"), workload).path
    if workload == "producer":  # our wheel, out of the bundle (a wheel is a zip Python imports from)
        (wheel,) = [data for name, data in _bundle(archive).items() if name.startswith(f"{BUNDLE_WHEELS}cryptopipe-")]
        archive = tmp_path / "cryptopipe.whl"
        archive.write_bytes(wheel)
    # The archive first on the path, run from elsewhere: every module must come from it.
    check = f"""
import importlib, sys
sys.path.insert(0, {str(archive)!r})
for name in {modules!r}:
    module = importlib.import_module(name)
    assert module.__file__.startswith({str(archive)!r}), (name, module.__file__)
for name in [n for n in sys.modules if n.split(".")[0] in ("cryptopipe", "producer", "jobs")]:
    assert (sys.modules[name].__file__ or "").startswith({str(archive)!r}), name
"""
    result = subprocess.run(
        [sys.executable, "-c", check], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_missing_job_entry_is_named(source_copy, tmp_path):
    (source_copy / JOB_ENTRY).unlink()
    with pytest.raises(FileNotFoundError, match="jobs/stream.py is missing"):
        build_artifacts(source_copy, tmp_path)
