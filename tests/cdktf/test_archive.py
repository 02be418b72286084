"""Artifact archives: deterministic, and their hash moves with their code only."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from archive import DISTRIBUTION_README, JOB_ENTRY, build_artifacts


def _hashes(source: Path, out: Path) -> tuple[str, str]:
    artifacts = build_artifacts(source, out)
    return artifacts.producer.sha256, artifacts.job.sha256


def _touch(path: Path, text: str = "\n# changed\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as file:
        file.write(text)


def test_two_builds_give_identical_archives(source_copy, tmp_path):
    first = build_artifacts(source_copy, tmp_path / "a")
    second = build_artifacts(source_copy, tmp_path / "b")
    assert first.producer.path.read_bytes() == second.producer.path.read_bytes()
    assert first.job.path.read_bytes() == second.job.path.read_bytes()
    assert first.producer.path.name == f"cryptopipe-producer-{first.producer.sha256[:16]}.zip"


def test_hash_ignores_timestamps_caches_and_readme(source_copy, tmp_path):
    before = _hashes(source_copy, tmp_path / "before")
    for file in source_copy.rglob("*.py"):
        os.utime(file, (0, 0))
    (source_copy / "producer" / "__pycache__").mkdir(exist_ok=True)
    (source_copy / "producer" / "__pycache__" / "poller.cpython-311.pyc").write_bytes(b"\0")
    (source_copy / "jobs" / ".pytest_cache").mkdir(exist_ok=True)
    (source_copy / "README.md").write_text("a new README\n")
    assert _hashes(source_copy, tmp_path / "after") == before


@pytest.mark.parametrize(
    ("changed", "producer_moves", "job_moves"),
    [
        ("producer/__init__.py", True, False),
        ("jobs/__init__.py", False, True),
        (JOB_ENTRY, False, True),
        ("cryptopipe/schema.py", True, True),
        ("cryptopipe/schemas/market_tick.json", True, True),
        ("cryptopipe/totals.py", True, True),
        ("cryptopipe/views/latest_prices.sql", False, True),
        ("cryptopipe/dashboard/server.py", False, False),
        ("cryptopipe/replay/data/coins.json", False, False),
        ("cryptopipe/cli.py", False, False),
        ("pyproject.toml", True, False),
        ("tests/test_anything.py", False, False),
    ],
)
def test_hash_changes_when_and_only_when_its_code_does(source_copy, tmp_path, changed, producer_moves, job_moves):
    producer_before, job_before = _hashes(source_copy, tmp_path / "before")
    _touch(source_copy / changed, "\n" if changed.endswith(".json") else "\n# changed\n")
    producer_after, job_after = _hashes(source_copy, tmp_path / "after")
    assert (producer_after != producer_before) is producer_moves
    assert (job_after != job_before) is job_moves


def test_producer_archive_is_an_installable_distribution(source_copy, tmp_path):
    archive = build_artifacts(source_copy, tmp_path).producer
    with zipfile.ZipFile(archive.path) as zipped:
        names = zipped.namelist()
        assert zipped.read("README.md").decode() == DISTRIBUTION_README
        assert {info.date_time for info in zipped.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert names == sorted(names)
    assert {"pyproject.toml", "producer/__init__.py", "cryptopipe/schema.py",
            "cryptopipe/schemas/market_tick.json"} <= set(names)
    assert not [n for n in names if n.startswith("jobs/") or "__pycache__" in n or n.endswith(".pyc")]


def test_job_archive_holds_the_job_and_the_core(source_copy, tmp_path):
    artifacts = build_artifacts(source_copy, tmp_path)
    with zipfile.ZipFile(artifacts.job.path) as zipped:
        names = set(zipped.namelist())
    assert {JOB_ENTRY, "jobs/__init__.py", "cryptopipe/schema.py", "cryptopipe/schemas/market_tick.json"} <= names
    assert not [n for n in names if n.startswith("producer/") or n == "pyproject.toml"]
    assert artifacts.job_entry == source_copy / JOB_ENTRY


@pytest.mark.parametrize(
    ("workload", "modules"),
    [
        ("producer", ["producer.__main__", "producer.poller"]),
        ("job", ["jobs.stream", "jobs.loaders.bigquery", "jobs.loaders.duckdb"]),
    ],
)
def test_archive_imports_its_entry_points_with_nothing_else_of_the_repository(
    source_copy, tmp_path, workload, modules
):
    archive = getattr(build_artifacts(source_copy, tmp_path), workload).path
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
