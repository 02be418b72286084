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
    assert text.count("Not run yet") == 6


def test_scale_reads_the_streams_batch_lines(tmp_path: Path) -> None:
    from bench.scale import batch_lines

    log = tmp_path / "stream.log"
    log.write_text(
        "2026-12-07 09:19:22,678 INFO jobs.stream: batch 2: 598 records in (1 files), 589 loaded, 0 quarantined, "
        "3 duplicates, 6 late; newest event 2026-12-07T09:19:08.338000+00:00; 3.57 s (stage 1.88 s, load 0.14 s); "
        "stream_batch: records_in=598 quarantined=0 data_age_seconds=14.3\n"
        "26/12/07 09:19:22 WARN ProcessingTimeExecutor: Current batch is falling behind.\n"
    )
    assert batch_lines(log) == [{"batch": 2, "records": 598, "files": 1, "seconds": 3.57, "stage_seconds": 1.88,
                                 "load_seconds": 0.14}]


def test_scale_runs_one_producer_for_every_currency_on_the_plans_rate(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    from bench.scale import monthly_projection, producer_env
    from core.layout import LocalLayout
    from producer import ProducerConfig

    for name, value in producer_env(LocalLayout(tmp_path), "http://127.0.0.1:1/api/v3", ("usd", "eur", "btc")).items():
        monkeypatch.setenv(name, value)
    config = ProducerConfig.from_env()  # accepted: 80 planned pages x 3 currencies fit 500 calls a minute
    assert (config.top_n, config.vs_currencies, config.requests_per_minute) == ("all", ("usd", "eur", "btc"), 500)
    assert config.requests_per_poll == 240
    # 219 calls a minute for 31 days and the producer's hourly /key check, against Analyst's 500,000
    assert monthly_projection(219) == {"credits_a_month": 9_776_904, "plan": "analyst", "plan_credits": 500_000,
                                       "times_the_plan": 19.6, "largest_documented": 2_000_000}
