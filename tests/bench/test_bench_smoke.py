"""Smoke test of the benchmark scripts' plumbing (no Spark, no timing: a second or two).

The benchmarks themselves are scripts (``python -m bench``), never run by the suite.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench import common, report
from bench.data import PollWriter, count_files, write_polls


def test_generated_polls_are_valid_distinct_and_named_like_the_producers(tmp_path: Path) -> None:
    paths = write_polls(tmp_path, 3, 5, step=timedelta(minutes=1))
    assert count_files(tmp_path) == 3
    assert all(p.relative_to(tmp_path).parts[0].startswith("dt=") for p in paths)
    rows = [json.loads(line) for p in paths for line in p.read_text().splitlines()]
    assert len(rows) == 15
    assert len({(r["coin_id"], r["vs_currency"], r["last_updated"]) for r in rows}) == 15
    assert {r["poll_id"] for r in rows} == {p.stem for p in paths}
    assert not list(tmp_path.rglob(".*"))  # no temp file left for Spark to trip on
    PollWriter(2).write(tmp_path, datetime.now(timezone.utc))
    assert count_files(tmp_path) == 4


def test_percentile_interpolates() -> None:
    assert common.percentile([1, 2, 3, 4], 0.5) == 2.5
    assert common.percentile([5], 0.95) == 5


def test_memory_sampler_reads_this_process() -> None:
    sampler = common.MemorySampler()
    sampler.sample()
    assert sampler.peaks["python_driver"] > 0


def test_report_renders_missing_results_as_not_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(report, "RESULTS", tmp_path)
    monkeypatch.setattr(report, "DOC", tmp_path / "BENCHMARKS.md")
    text = report.write().read_text()
    assert text.count("Not run yet") == 5
