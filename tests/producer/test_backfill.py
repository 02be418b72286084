"""The producer's back-fill: found after a gap, worked off between polls inside the spare
budget, landed once behind its marker, riding out a GCS outage in its spool."""

from __future__ import annotations

import json
import math
import re
import shutil
import threading
import time
from datetime import timedelta
from pathlib import Path

from core.timefmt import utc_millis
from producer import CoinGeckoClient, LandingUnavailable, LandingZone, LocalLandingZone, Poller, RequestBudget
from producer.backfill import (
    Backfiller,
    BackfillReport,
    BackfillTask,
    backfill_poll_id,
    marker_name,
    run_backfill,
    spare_requests_per_minute,
)
from producer.coverage import moment, span_of
from producer.landing import object_name

COINS = ("bitcoin", "ethereum")


def _backfilled_objects(landing: Path) -> list[Path]:
    """Landed back-fill objects: ``<start>-bf`` and 12 hex digits (a live poll's id has 12 after the
    dash, which may start with ``bf`` too)."""
    pattern = re.compile(r"\d{8}T\d{9}Z-bf[0-9a-f]{12}")
    return sorted(path for path in landing.rglob("*.ndjson") if pattern.fullmatch(path.stem))


def test_poll_ids_are_a_pure_function_of_coin_currency_and_range(replay):
    start = replay.market.as_of
    one = backfill_poll_id("bitcoin", "usd", start, start + timedelta(hours=1))
    assert one == backfill_poll_id("bitcoin", "usd", start, start + timedelta(hours=1))
    assert one.startswith("20250601T120000000Z-bf")
    others = {
        backfill_poll_id("ethereum", "usd", start, start + timedelta(hours=1)),
        backfill_poll_id("bitcoin", "eur", start, start + timedelta(hours=1)),
        backfill_poll_id("bitcoin", "usd", start, start + timedelta(hours=2)),
    }
    assert one not in others and len(others) == 3


def test_run_finds_the_gap_and_fills_it_between_two_polls(make_config, replay, tmp_path):
    # One poll a second (60 a minute) leaves 10 of 70 requests a minute to back-fill.
    config = make_config(coin_ids=COINS, interval_seconds=1, requests_per_minute=70, backfill_after_intervals=100)
    with Poller.from_config(config) as poller:
        poller.poll_once()
        replay.frame = 10  # ten minutes of market time later: a gap beyond 100 intervals
        poller.run(threading.Event(), max_polls=2)
        backfiller = poller.backfiller

    paths = [r.path.removeprefix("/api/v3") for r in replay.requests]
    charts = sorted(f"/coins/{coin}/market_chart/range" for coin in COINS)
    assert paths[:2] == ["/coins/markets", "/coins/markets"] and sorted(paths[2:4]) == charts
    assert paths[4:] == ["/coins/markets"]  # the next poll, after the back-fill
    assert backfiller.budget.max_requests == 10 and backfiller.pending() == []
    objects = _backfilled_objects(tmp_path / "landing")
    rows = [json.loads(line) for path in objects for line in path.read_text().splitlines()]
    assert len(objects) == 2 and {row["coin_id"] for row in rows} == set(COINS)
    assert {row["origin"] for row in rows} == {"backfill"} and len(rows) == 2 * 2  # 5-minutely over ~10 min
    assert all((tmp_path / "landing" / marker_name(path.stem)).exists() for path in objects)


def test_a_gap_shorter_than_the_setting_plans_nothing(make_config, replay):
    config = make_config(coin_ids=COINS, interval_seconds=60, backfill_after_intervals=3)
    with Poller.from_config(config) as poller:
        poller.poll_once()
        # Two minutes on: with CoinGecko's lag of up to a minute, at most three intervals.
        replay.frame = 2
        poller.poll_once()
        assert poller.backfiller.pending() == []


def test_gcs_outage_leaves_backfill_in_its_spool_and_it_lands_once_when_gcs_is_back(make_config, replay, gcs):
    config = make_config(coin_ids=COINS, landing_uri=f"gs://{gcs.bucket}/landing", requests_per_minute=20)
    replay.frame = 120
    with Poller.from_config(config, gcs_client=gcs.client()) as poller:
        backfiller: Backfiller = poller.backfiller
        start = replay.market.as_of + timedelta(minutes=30)
        task = BackfillTask("bitcoin", "btc", "Bitcoin", start, start + timedelta(minutes=30), "usd")
        backfiller.plan([task])
        gcs.stop()
        # Down before the task starts: whether it landed before cannot be told, so it waits, unfetched.
        backfiller.step(threading.Event(), deadline=time.monotonic() + 20)
        assert backfiller.pending() == [task] and replay.requests == []
        # Down between fetching and landing (as a step does it): the object waits in the spool.
        gcs.start()
        assert not backfiller.done(task)
        gcs.stop()
        report = BackfillReport()
        assert backfiller.run_task(task, report, deadline=time.monotonic() + 20, stop=threading.Event())
        assert not backfiller.drain(report) and report.spooled == 1
        gcs.start()
        up = backfiller.step(threading.Event(), deadline=time.monotonic() + 20)
        assert up is not None and (up.landed_objects, up.landed_rows, up.spooled, up.already_done) == (1, 7, 0, 1)
        backfiller.plan([task])  # the same back-fill again
        again = backfiller.step(threading.Event(), deadline=time.monotonic() + 20)

    assert (again.already_done, again.landed_objects, again.requests) == (1, 0, 0)
    poll_id = task.poll_id
    assert sorted(blob.name for blob in gcs.objects()) == sorted(
        [f"landing/{marker_name(poll_id)}", f"landing/dt={start:%Y-%m-%d}/hour={start:%H}/{poll_id}.ndjson"]
    )
    assert len([r for r in replay.requests if "market_chart" in r.path]) == 1


def test_a_gap_fill_fetches_only_what_an_earlier_on_demand_backfill_left_uncovered(make_config, replay, tmp_path):
    config = make_config(coin_ids=COINS, interval_seconds=60, backfill_after_intervals=3)
    base = replay.market.as_of
    covered = (base + timedelta(minutes=10), base + timedelta(minutes=30))
    with Poller.from_config(config) as poller:
        poller.poll_once()
        replay.frame = 60  # an hour of market time without polls
        run_backfill(config, *covered, client=poller.client, landing=poller.landing, now=base + timedelta(hours=1))
        seen = len(replay.requests)
        poller.poll_once()  # finds the gap: it contains the range back-filled on demand
        (gap, _) = poller.backfiller.pending()
        report = poller.backfiller.step(threading.Event(), deadline=time.monotonic() + 20)

    assert (report.clipped, report.landed_objects, report.already_done, poller.backfiller.pending()) == (2, 4, 0, [])
    # Only the pieces before and after the covered range are asked for, each up to (from) its edge.
    charts = {(r.path.split("/")[-3], int(r.params["from"]), int(r.params["to"]))
              for r in replay.requests[seen:] if "market_chart" in r.path}  # fmt: skip
    edges = [int(moment.timestamp()) for moment in covered]
    assert charts == {
        (coin, *piece)
        for coin in COINS
        for piece in ((int(gap.start.timestamp()), edges[0]), (edges[1], math.ceil(gap.end.timestamp())))
    }
    five = 5 * 60_000
    for coin in COINS:
        stamps = sorted(
            row["last_updated"]
            for path in _backfilled_objects(tmp_path / "landing")
            for row in map(json.loads, path.read_text().splitlines())
            if row["coin_id"] == coin
        )
        first = -(-span_of(gap.start, gap.end)[0] // five) * five
        want = range(first, span_of(gap.start, gap.end)[1] + 1, five)
        assert stamps == [utc_millis(moment(ms)) for ms in want]  # every point of the gap, each once


def test_a_crash_between_noting_a_piece_and_spooling_it_is_settled_by_what_reached_the_spool(make_config, replay):
    config = make_config(coin_ids=COINS)
    with Poller.from_config(config) as poller:
        backfiller: Backfiller = poller.backfiller
        start = replay.market.as_of
        spooled = BackfillTask("bitcoin", "btc", "Bitcoin", start, start + timedelta(minutes=30), "usd")
        lost = BackfillTask("ethereum", "eth", "Ethereum", start, start + timedelta(minutes=30), "usd")
        for task in (spooled, lost):  # both noted, then the process died: only bitcoin's object was spooled
            backfiller.coverage.begin(task.poll_id, task.coin_id, "usd", span_of(task.start, task.end))
        backfiller.spool.add(spooled.poll_id, b"")

        backfiller.settle()

        assert backfiller.coverage.covered("bitcoin", "usd") == [span_of(spooled.start, spooled.end)]
        assert backfiller.coverage.covered("ethereum", "usd") == []  # fetched again by the next back-fill
        assert backfiller.to_fetch(lost, BackfillReport()) == [lost]


class RecordingLanding:
    """A real landing zone that records the name of every ``put`` in order and fails the
    ones numbered in ``failing`` (1-based) as an unreachable landing zone does: with
    :class:`LandingUnavailable`, nothing written."""

    def __init__(self, inner: LandingZone, *, failing: set[int]) -> None:
        self.inner = inner
        self.uri = inner.uri
        self.failing = failing
        self.puts: list[str] = []

    def put(self, name: str, data: bytes) -> None:
        self.puts.append(name)
        if len(self.puts) in self.failing:
            raise LandingUnavailable(f"put number {len(self.puts)} ({name}) failed, as the test asked")
        self.inner.put(name, data)

    def exists(self, name: str) -> bool:
        return self.inner.exists(name)


def archive_processed(landing: Path, archive: Path) -> None:
    """What the stream's file source does with the files of a committed batch
    (``cleanSource=archive``, jobs/stream.py): every ``*.ndjson`` under the landing root,
    at any depth, moves to the same path under the archive, so its landing name is free
    again. Spark's guide, file source options: "the path of the source file will be
    retained" under ``sourceArchiveDir``
    (https://spark.apache.org/docs/latest/structured-streaming-programming-guide.html#input-sources).
    """
    for path in sorted(landing.rglob("*.ndjson")):
        target = archive / path.relative_to(landing)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(path, target)


def test_a_drain_cut_off_between_marker_and_data_lands_the_piece_once_although_the_stream_archived_meanwhile(
    make_config, replay, tmp_path
):
    config = make_config(coin_ids=COINS)
    landed, archived = tmp_path / "landing", tmp_path / "archive"
    landing = RecordingLanding(LocalLandingZone(landed), failing={2})
    end = replay.market.as_of
    task = BackfillTask("bitcoin", "btc", "Bitcoin", end - timedelta(minutes=30), end, "usd")
    poll_id = task.poll_id
    with CoinGeckoClient(config) as client:
        backfiller = Backfiller(config, client=client, landing=landing)
        report = BackfillReport()
        assert backfiller.run_task(task, report, deadline=time.monotonic() + 20, stop=threading.Event())
        assert not backfiller.drain(report)  # the piece's second put failed: its spool entry stays
        archive_processed(landed, archived)  # the stream's next batch takes whatever of it landed
        assert backfiller.drain(report) and backfiller.done(task)

    copies = [path for root in (landed, archived) for path in root.rglob(f"{poll_id}.ndjson")]
    assert copies == [landed / object_name(poll_id)]  # once, counting what the stream read already
    # The marker first, so the put that failed was the data's, and nothing of the piece was there to archive.
    assert landing.puts == [marker_name(poll_id), object_name(poll_id)] * 2
    rows = [json.loads(line) for line in copies[0].read_text().splitlines()]
    assert len(rows) == report.landed_rows > 0 and {row["poll_id"] for row in rows} == {poll_id}


class SteppedClock:
    """A monotonic clock that moves only when the test sets ``now``."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_backfill_never_takes_more_than_the_spare_requests_so_live_polls_keep_theirs_in_every_minute(
    make_config, replay, tmp_path
):
    # Two polls a minute of one request each leave 2 of 4 requests a minute to back-fill.
    config = make_config(coin_ids=COINS, interval_seconds=30, requests_per_minute=4)
    spare, minutes, step = spare_requests_per_minute(config), 4, 10.0
    end = replay.market.as_of
    half_hour = timedelta(minutes=30)
    tasks = [  # more than the spare budget can take in the time: back-fill always wants a request
        BackfillTask("bitcoin", "btc", "Bitcoin", end - (k + 1) * half_hour, end - k * half_hour, "usd")
        for k in range(spare * minutes * 2)
    ]
    clock, stop = SteppedClock(), threading.Event()
    backfill_at: list[float] = []
    with CoinGeckoClient(config, budget=RequestBudget(config.requests_per_minute, 60.0, clock=clock)) as client:
        backfiller = Backfiller(config, client=client, landing=LocalLandingZone(tmp_path / "landing"))
        while clock.now < minutes * 60:
            # Every step back-fill asks for its next chart, then a live poll when one is due. Neither
            # may wait (the deadline is before the next step): a request goes now or not at all.
            deadline = clock.now + step / 2
            if backfiller.run_task(tasks[len(backfill_at)], BackfillReport(), deadline=deadline, stop=stop):
                backfill_at.append(clock.now)
            if clock.now % config.interval_seconds == 0:
                for request in client.page_requests("usd"):
                    page = client.fetch_page(request, deadline=deadline, stop=stop)
                    assert page.records is not None, f"the live poll at {clock.now:g} s found no request slot"
            clock.now += step

    # Back-fill used the spare requests of every minute, and never more in any 60 s.
    assert len(backfill_at) == spare * minutes
    assert max(sum(1 for other in backfill_at if at <= other < at + 60) for at in backfill_at) == spare
    charts = [r for r in replay.requests if "market_chart" in r.path]
    assert len(charts) == len(backfill_at)  # a back-fill that found no slot sent nothing
