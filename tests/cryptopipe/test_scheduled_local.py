"""Scheduled mode locally: runs on a timer, one killed half-way, a switch to stream mode and back.

The job runs as on a cluster, a process of its own per run (cryptopipe/scheduled.py), on one
checkpoint and one DuckDB warehouse throughout. The landing zone gets files between runs:
valid ticks whose keys repeat between files (as CoinGecko's cache makes them), a bad line in
some and an empty file. Then, on a stepped clock:

1. a run starts; inside its slot no second one does; at the next slot, with the run still
   going, the slot is skipped; the run is killed with SIGKILL (driver and JVM) after its first
   batch, files of the run still unread;
2. the next slot's run replays from the checkpoint and drains the rest;
3. the stream mode's job (no ``--available-now``) runs on the same checkpoint until it has
   loaded new files, and is stopped;
4. back in scheduled mode, a run loads what landed since.

Every distinct valid tick is in ``market_ticks`` once, every bad line in ``quarantine`` once.
Four JVM starts: the cost of the test is Spark's start-up, so files are few and small.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta

import pytest

from core.joboptions import job_argv
from core.timefmt import utc_millis
from cryptopipe.scheduled import ScheduledRuns
from jobs.loaders.duckdb import open_reader

from ..conftest import wait_until
from ..jobs.conftest import T0, Pipeline, line

pytestmark = pytest.mark.slow

EVERY = 60.0
#: Two files a batch: the first run (seven files) is still reading when it is killed after its
#: first batch, and the later runs drain in half the batches one file a batch would take.
FILES_PER_BATCH = 2
FIRST_RUN_FILES = 7
COINS = ("bitcoin", "ethereum", "solana")
DEADLINE = 300.0


class Landing:
    """Lands polls and remembers what the warehouse must end up holding."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.keys: set[tuple[str, str, object]] = set()
        self.bad: Counter[str] = Counter()
        self.polls = 0

    def poll(self, *, bad: bool = False, empty: bool = False) -> None:
        self.polls += 1
        if empty:
            self.pipeline.land([])
            self.bad[""] += 1
            return
        updated = T0 + timedelta(minutes=self.polls // 2)  # consecutive polls repeat their ticks
        lines = []
        for n, coin in enumerate(COINS):
            at = updated + timedelta(seconds=n)
            lines.append(line(coin, last_updated=utc_millis(at), poll_id=f"poll-{self.polls}"))
            self.keys.add((coin, "usd", at))
        if bad:
            raw = f"<html>502 Bad Gateway (poll {self.polls})</html>"
            lines.append(raw)
            self.bad[raw] += 1
        self.pipeline.land(lines)

    def polls_of(self, count: int) -> None:
        for _ in range(count):
            self.poll(bad=self.polls % 3 == 0)


def _contents(pipeline: Pipeline) -> tuple[Counter, Counter]:
    with open_reader(pipeline.warehouse) as con:
        keys = Counter(con.execute("SELECT coin_id, vs_currency, last_updated FROM market_ticks").fetchall())
        bad = Counter(raw for (raw,) in con.execute("SELECT raw_line FROM quarantine").fetchall())
    return keys, bad


def _loaded(pipeline: Pipeline) -> int:
    if not pipeline.warehouse.exists():
        return 0
    with open_reader(pipeline.warehouse) as con:
        return con.execute("SELECT count(*) FROM market_ticks").fetchone()[0]


def test_scheduled_runs_a_kill_and_a_switch_to_stream_and_back_land_every_row_once(tmp_path):
    pipeline = Pipeline(tmp_path)
    landing = Landing(pipeline)
    now = [0.0]
    runs = ScheduledRuns(pipeline, EVERY, job_options={"max_files_per_trigger": FILES_PER_BATCH},
                         clock=lambda: now[0])

    # 1. A run, killed after its first batch; no second run meanwhile.
    landing.polls_of(FIRST_RUN_FILES - 1)
    landing.poll(empty=True)
    assert runs.tick() == "started"
    assert runs.tick() == "waiting"  # one run a slot
    first_log = runs.log_of(0)
    wait_until(lambda: "stream_batch:" in first_log.read_text(errors="replace"), "the first run's first batch",
               DEADLINE)
    now[0] += EVERY
    assert runs.tick() == "skipped"  # the run of the slot before is still going
    runs.signal(signal.SIGKILL)
    killed = runs.wait(DEADLINE)
    assert killed is not None and killed.returncode == -signal.SIGKILL, first_log.read_text()[-3000:]
    assert 1 <= killed.batches < -(-FIRST_RUN_FILES // FILES_PER_BATCH), "the kill should land inside the run"

    # 2. The next slot's run replays from the checkpoint and drains the rest.
    landing.polls_of(2)
    now[0] += EVERY
    assert runs.tick() == "started"
    replay = runs.wait(DEADLINE)
    assert replay is not None and replay.ok, runs.log_of(replay.slot if replay else 2).read_text()[-3000:]
    assert "run_finished:" in runs.log_of(replay.slot).read_text()
    assert _contents(pipeline) == (Counter(dict.fromkeys(landing.keys, 1)), landing.bad)

    # 3. Stream mode on the same checkpoint, until it has loaded what landed since; then stopped.
    landing.polls_of(2)
    argv = [sys.executable, "-m", "jobs.stream",
            *job_argv({**pipeline.job_places(), "trigger_seconds": 0.5, "max_files_per_trigger": FILES_PER_BATCH})]
    with (tmp_path / "stream.log").open("w") as output:
        stream = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
                                  env={**os.environ, "TMPDIR": str(pipeline.spark_scratch)})
    try:
        wait_until(lambda: _loaded(pipeline) == len(landing.keys), "stream mode to load the new files", DEADLINE)
    finally:
        os.killpg(stream.pid, signal.SIGINT)
        stream.wait(DEADLINE)

    # 4. Back to scheduled mode.
    landing.polls_of(3)
    now[0] += EVERY
    assert runs.tick() == "started"
    last = runs.wait(DEADLINE)
    assert last is not None and last.ok, runs.log_of(last.slot if last else 3).read_text()[-3000:]

    keys, bad = _contents(pipeline)
    assert [key for key, count in keys.items() if count > 1] == []
    assert set(keys) == landing.keys
    assert bad == landing.bad
    # Spark archives a batch's files when the next batch starts: a run's (or a stop's) last one stays.
    assert len(pipeline.files(pipeline.landing)) <= len(runs.results) + 1
    assert [result.ok for result in runs.results] == [False, True, True]
