"""kill -9 the streaming job at random moments while a producer writes: the warehouse still ends exact.

The job runs as it does in production, a process of its own (``python jobs/stream.py``,
local Spark), started on one checkpoint again and again, into each warehouse: DuckDB,
and BigQuery's Storage Write path against bqemulator (scripts/bigquery_emulator.py). A
producer thread lands files through the producer's own create-only
:class:`~producer.landing.LocalLandingZone` the whole time: valid ticks whose keys
repeat between consecutive polls (as CoinGecko's cache makes them), bad lines of
every kind, and empty files. The stream's process group (Python driver and JVM) is
killed with SIGKILL three times, in an order and with delays a seeded RNG picks:
after some batches (between or inside batches), while a batch is being staged or
loaded, and right after a batch's load committed but before Spark's own commit
(the replay must find it loaded). A last run with ``--available-now`` drains the
landing zone, in batches as large as it likes (an operator may change the cap between runs;
the batch a killed run planned is replayed as planned). The warehouse must hold each distinct valid key exactly once and each
bad line exactly once.

Set ``CRYPTOPIPE_CRASH_SEED`` to replay a run's kill plan (the seed is printed);
the moments are also printed, and shown with the streams' logs when the test fails.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from core.timefmt import utc_millis
from jobs.loaders.duckdb import open_reader
from producer.landing import LocalLandingZone, new_poll_id, object_name

from ..conftest import COSTLY_SESSION_FIXTURES
from .conftest import T0, line

pytestmark = pytest.mark.slow

STREAM = Path(__file__).resolve().parents[2] / "jobs" / "stream.py"
COINS = [f"coin-{n:02d}" for n in range(12)]
BACKLOG_FILES = 12
MAX_FILES_PER_TRIGGER = 6
# The producer lands a file a second until the last kill, up to a cap that bounds
# the final drain (a batch costs seconds here, whatever its size) on a slow machine.
PRODUCER_INTERVAL = 1.0
MAX_PRODUCED_FILES = 60
KILL_PLAN = ("after batches", "while staging", "after a load")
WAIT_SECONDS = 300


class Producer:
    """Lands polls like the producer: one NDJSON file each, create-only, atomic."""

    def __init__(self, landing: Path) -> None:
        self.zone = LocalLandingZone(landing)
        self.valid_keys: set[tuple[str, str, datetime]] = set()
        self.bad_lines: Counter[str] = Counter()
        self.files = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="producer", daemon=True)

    def land(self) -> None:
        """Land the next poll: 12 ticks, every 5th poll a bad line too, every 9th poll an empty file."""
        poll = self.files
        poll_id = new_poll_id(datetime.now(timezone.utc))
        self.files += 1
        if poll % 9 == 8:
            self.zone.put(object_name(poll_id), b"")
            self.bad_lines[""] += 1  # a file without records: one quarantine row, raw line empty
            return
        # Consecutive polls pairwise share last_updated, as CoinGecko's cache repeats rows.
        updated = T0 + timedelta(minutes=poll // 2)
        lines = []
        for n, coin in enumerate(COINS):
            at = updated + timedelta(seconds=n)
            lines.append(line(coin, current_price=100.0 + poll, last_updated=utc_millis(at), poll_id=poll_id))
            self.valid_keys.add((coin, "usd", at))
        bad = _bad_line(poll, poll_id) if poll % 5 == 0 else None
        if bad is not None:
            lines.append(bad)
            self.bad_lines[bad] += 1
        # A half-written line can only be a file's last: it has no newline.
        ending = "" if bad is not None and bad.startswith('{"coin_id": "cut') else "\n"
        self.zone.put(object_name(poll_id), ("\n".join(lines) + ending).encode())

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(PRODUCER_INTERVAL) and self.files < MAX_PRODUCED_FILES:
            self.land()


def _bad_line(poll: int, poll_id: str) -> str:
    """A bad line of one of five kinds, in turn; unique, so each can be found in the quarantine."""
    valid = line("bitcoin", poll_id=poll_id)
    kinds = [
        f"<html><body>502 Bad Gateway (poll {poll})</body></html>",
        line(f"cut-{poll}")[:40],
        valid.replace('"price": 64000.5', '"price": "64000.5"'),
        valid.replace('"price": 64000.5', '"price": -1.0'),
        valid.replace('"coin_id": "bitcoin", ', ""),
    ]
    return kinds[(poll // 5) % len(kinds)]


class DuckDBTarget:
    """The local warehouse file."""

    def __init__(self, root: Path) -> None:
        self.path = root / "warehouse.duckdb"
        self.uri = f"duckdb://{self.path}"
        self.trigger = "0.5"
        self.environment: dict[str, str] = {}

    def contents(self) -> tuple[Counter, Counter, int]:
        """Tick keys and quarantined raw lines, each with its count, and the loads recorded."""
        with open_reader(self.path) as con:
            keys = Counter(con.execute("SELECT coin_id, vs_currency, last_updated FROM market_ticks").fetchall())
            quarantined = Counter(raw for (raw,) in con.execute("SELECT raw_line FROM quarantine").fetchall())
            loads = con.execute("SELECT count(*) FROM _loads").fetchone()[0]
        return keys, quarantined, loads


class BigQueryTarget:
    """A fresh dataset on the emulator, written through the Storage Write path."""

    PROJECT = "crash-test"

    def __init__(self, emulator, root: Path) -> None:
        self.emulator = emulator
        self.dataset = f"crash_{root.name.replace('-', '_')}"
        emulator.create_tables(self.PROJECT, self.dataset)
        self.uri = f"bigquery://{self.PROJECT}.{self.dataset}"
        self.trigger = "1"  # above the path's floor of 0.72 s (its stream quota)
        self.environment = emulator.environment

    def contents(self) -> tuple[Counter, Counter, int]:
        client = self.emulator.client(self.PROJECT)
        table = f"`{self.PROJECT}.{self.dataset}"
        try:
            keys = Counter((r[0], r[1], r[2]) for r in client.query(
                f"SELECT coin_id, vs_currency, last_updated FROM {table}.market_ticks`").result())
            quarantined = Counter(r[0] for r in client.query(f"SELECT raw_line FROM {table}.quarantine`").result())
            loads = len({r[0] for r in client.query(f"SELECT _load_id FROM {table}.market_ticks`").result()})
        finally:
            client.close()
        return keys, quarantined, loads


class StreamProcess:
    """``python jobs/stream.py`` in a process group of its own, so one SIGKILL takes driver and JVM."""

    def __init__(self, root: Path, target, run: int, *extra: str) -> None:
        self.log = root / f"stream-{run}.log"
        self.started = time.time()
        scratch = root / "tmp"  # Spark's and the JVM's temp files: jobs.session puts them under TMPDIR
        scratch.mkdir(exist_ok=True)
        args = [
            "--landing", root / "landing", "--archive", root / "archive", "--checkpoint", root / "checkpoint",
            "--staging", root / "staging", "--warehouse", target.uri, *extra,
        ]  # fmt: skip
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                [sys.executable, str(STREAM), *map(str, args)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **target.environment, "TMPDIR": str(scratch)},
                start_new_session=True,
            )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        _wait_for(lambda: not _group_alive(self.process.pid), "the killed stream's JVM to exit", self)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def _group_alive(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (zombies awaiting a reaper do not count)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def _wait_for(condition, what: str, stream: StreamProcess, *, poll: float = 0.02) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if stream.process.poll() is not None and stream.process.returncode != -signal.SIGKILL:
            raise AssertionError(f"stream exited ({stream.process.returncode}) waiting for {what}:\n{stream.tail()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}:\n{stream.tail()}")
        time.sleep(poll)


def _committed(root: Path) -> int:
    commits = root / "checkpoint" / "commits"
    return sum(1 for path in commits.iterdir() if path.name.isdigit()) if commits.exists() else 0


def _staged_batch(root: Path, since: float) -> Path | None:
    """The folder of a batch staged after ``since``, if one is there now."""
    for path in (root / "staging").glob("batch_id=*/*/*.parquet"):
        try:
            if path.stat().st_mtime > since:
                return path.parents[1]
        except FileNotFoundError:  # its batch was loaded and discarded meanwhile
            continue
    return None


def _await_kill_moment(how: str, root: Path, stream: StreamProcess, rng: random.Random) -> float:
    """Wait for a moment of kind ``how``; return the extra delay (drawn by ``rng``) to kill after."""
    if how == "after batches":
        # Then up to 1 s more: between batches, or inside one.
        batches = _committed(root) + rng.randint(1, 3)
        _wait_for(lambda: _committed(root) >= batches, f"batch {batches} committed", stream)
        return rng.uniform(0, 1.0)
    staged: list[Path] = []

    def batch_staged() -> bool:
        folder = _staged_batch(root, stream.started)
        staged.extend([folder] if folder else [])
        return folder is not None

    _wait_for(batch_staged, "a batch staged", stream)
    if how == "while staging":
        return rng.uniform(0, 0.3)  # writing its Parquet, or loading it
    # The staged folder is deleted once the warehouse committed the batch, just
    # before Spark writes its commit log: killed now, the replay finds it loaded.
    _wait_for(lambda: not staged[0].exists(), "the staged batch loaded", stream, poll=0.002)
    return 0.0


# The emulator is asked for at run time: the mark keeps this case on the emulator's worker.
ON_THE_EMULATORS_WORKER = pytest.mark.xdist_group(COSTLY_SESSION_FIXTURES["bq_emulator"])


@pytest.fixture(params=["duckdb", pytest.param("bigquery-storage-write", marks=ON_THE_EMULATORS_WORKER)])
def target(request, tmp_path):
    if request.param == "duckdb":
        return DuckDBTarget(tmp_path)
    return BigQueryTarget(request.getfixturevalue("bq_emulator"), tmp_path)


def test_sigkilled_stream_restarted_on_its_checkpoint_loads_every_row_exactly_once(tmp_path, target):
    seed = int(os.environ.get("CRYPTOPIPE_CRASH_SEED", random.randrange(2**32)))
    rng = random.Random(seed)
    plan = list(KILL_PLAN)
    rng.shuffle(plan)
    events = [f"seed {seed} (CRYPTOPIPE_CRASH_SEED={seed} replays this plan)"]
    print(events[0])
    producer = Producer(tmp_path / "landing")
    for _ in range(BACKLOG_FILES):
        producer.land()
    producer.start()
    streams: list[StreamProcess] = []
    try:
        for run, how in enumerate(plan):
            before = _committed(tmp_path)
            stream = StreamProcess(tmp_path, target, run, "--trigger-seconds", target.trigger,
                                   "--max-files-per-trigger", str(MAX_FILES_PER_TRIGGER))
            streams.append(stream)
            delay = _await_kill_moment(how, tmp_path, stream, rng)
            time.sleep(delay)
            stream.kill()
            events.append(
                f"run {run}: SIGKILL {how} + {delay:.2f} s, {time.time() - stream.started:.1f} s after start; "
                f"batches committed {before} -> {_committed(tmp_path)}; {producer.files} files landed"
            )
            print(events[-1])
        producer.stop()
        final = StreamProcess(tmp_path, target, len(plan), "--available-now",
                              "--max-files-per-trigger", str(MAX_PRODUCED_FILES + BACKLOG_FILES))
        streams.append(final)
        assert final.process.wait(timeout=WAIT_SECONDS) == 0, final.tail()
    finally:
        producer.stop()
        for stream in streams:
            if stream.process.poll() is None:
                stream.kill()

    keys, quarantined, loads = target.contents()
    report = "\n".join([*events, *(f"--- {s.log.name}\n{s.tail(15)}" for s in streams)])
    duplicates = {key: count for key, count in keys.items() if count > 1}
    lost = producer.valid_keys - keys.keys()
    assert not duplicates, f"{len(duplicates)} keys loaded more than once\n{report}"
    assert not lost, f"{len(lost)} valid keys never loaded, e.g. {sorted(lost)[:3]}\n{report}"
    assert keys.keys() == producer.valid_keys, report
    assert quarantined == producer.bad_lines, report
    assert not list((tmp_path / "staging").glob("batch_id=*")), "every staged batch is cleaned up"
    # Each kill may strand the files of one committed batch in the landing path, and the drain
    # leaves its last batch's: Spark archives a batch's files when the next batch of the same run starts.
    left = list((tmp_path / "landing").rglob("*.ndjson"))
    drains_last = [0, *map(int, re.findall(r"\((\d+) files\)", final.log.read_text()))][-1]  # 0: no batch
    assert len(left) <= len(plan) * MAX_FILES_PER_TRIGGER + drains_last, f"{len(left)} files never archived\n{report}"
    print(
        f"{producer.files} files, {len(keys)} distinct ticks, {sum(quarantined.values())} quarantined, "
        f"{loads} loads, {sum('already loaded by an earlier run' in s.log.read_text() for s in streams)} "
        f"runs met an already loaded batch, {len(left)} files left in landing"
    )
