"""The benchmarks' seed emulation runs the job's own ``start_stream`` with the seed's settings.

It must behave as the seed did where the benchmarks compare the two: at-least-once
appends (a repeated poll loads twice), a landing folder never cleaned, one file a batch.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from bench.data import count_files, write_polls
from bench.seed import start_seed_stream
from core.joboptions import job_argv
from core.layout import LocalLayout
from jobs import open_reader, parse_args, start_stream

START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=10)


def _config(root: Path):
    layout = LocalLayout(root)
    for _ in range(2):  # the same three polls landed twice: CoinGecko's cache repeats rows
        write_polls(layout.landing, 3, 4, start=START, step=timedelta(minutes=1))
    return parse_args(job_argv({**layout.job_places(), "available_now": True}))


def _ticks(config) -> tuple[int, int]:
    with open_reader(config.warehouse) as con:
        return con.execute("SELECT count(*), count(DISTINCT (coin_id, last_updated)) FROM market_ticks").fetchone()


@pytest.mark.spark
def test_the_seed_appends_repeats_keeps_landing_and_takes_a_file_a_batch(spark, tmp_path):
    config = _config(tmp_path)
    with start_seed_stream(spark, config, dedup=False) as handle:
        handle.await_termination()
        batches = handle.status().batches
    assert _ticks(config) == (24, 12)  # every repeat loaded
    assert count_files(tmp_path / "landing") == 6  # nothing archived
    assert batches == 6  # one landing file per micro-batch


@pytest.mark.spark
def test_the_job_itself_loads_each_tick_once_and_archives(spark, tmp_path):
    config = _config(tmp_path)
    with start_stream(spark, config) as handle:
        handle.await_termination()
    assert _ticks(config) == (12, 12)
