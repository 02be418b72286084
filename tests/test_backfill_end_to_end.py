"""A producer outage filled from the market charts: replay over HTTP -> producer (stopped for
three hours of replay time, restarted) -> landing -> Spark -> DuckDB, each point loaded once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from core.timefmt import utc_millis
from core.joboptions import job_argv
from core.layout import LocalLayout
from cryptopipe.replay.server import ReplayServer
from jobs.loaders.duckdb import open_reader
from jobs.stream import parse_args, run
from producer import Poller, ProducerConfig

pytestmark = pytest.mark.spark

COINS = ("bitcoin", "ethereum", "solana")
FRAME_SECONDS = 300.0  # five minutes of market time between frames, and between polls
REQUESTS_PER_MINUTE = 12
LIVE_FRAMES = (0, 1, 2, 39, 40)  # frames 3-38 (three hours) pass while the producer is down
FIVE_MINUTES_MS = 300_000


def _stream_once(spark, layout: LocalLayout) -> None:
    run(spark, parse_args(job_argv({**layout.job_places(), "available_now": True})))


def _rows(layout: LocalLayout, sql: str) -> list[tuple]:
    with open_reader(layout.warehouse) as con:
        return con.execute(sql).fetchall()


def _landed_objects(layout: LocalLayout) -> set[str]:
    return {p.name for folder in (layout.landing, layout.archive) for p in Path(folder).rglob("*.ndjson")}


@pytest.fixture(scope="module")
def outage(spark, tmp_path_factory):
    layout = LocalLayout(tmp_path_factory.mktemp("outage"))
    config = ProducerConfig(
        coin_ids=COINS, interval_seconds=FRAME_SECONDS, requests_per_minute=REQUESTS_PER_MINUTE,
        landing_uri=str(layout.landing), spool_dir=str(layout.spool), backfill_after_intervals=3,
    )  # fmt: skip
    with ReplayServer(frame_seconds=FRAME_SECONDS, auto_advance=False,
                      rate_limit_per_minute=REQUESTS_PER_MINUTE) as server:  # fmt: skip
        config = config.model_copy(update={"base_url": server.url})
        poller = Poller.from_config(config)
        for frame in LIVE_FRAMES[:3]:
            server.frame = frame
            poller.poll_once()
        poller.close()  # the producer stops

        server.frame = LIVE_FRAMES[3]
        poller = Poller.from_config(config)  # a new process: it knows its last poll from its state
        poller.poll_once()
        plan = poller.backfiller.pending()
        steps = []
        while poller.backfiller.pending():  # what Poller.run does between polls
            steps.append(poller.backfiller.step(threading.Event(), deadline=time.monotonic() + 60))
        server.frame = LIVE_FRAMES[4]
        poller.poll_once()
        requests = server.requests
        _stream_once(spark, layout)
        yield layout, server, poller, plan, steps, requests
        poller.close()


def test_restart_plans_the_gap_between_the_last_landed_poll_and_the_first_new_one(outage):
    _layout, server, _poller, plan, _steps, _requests = outage
    newest = {
        frame: max(r["last_updated"] for r in server.market.frame(frame, frame_seconds=FRAME_SECONDS)
                   if r["id"] in COINS)  # fmt: skip
        for frame in (2, 39)
    }
    assert sorted(task.coin_id for task in plan) == sorted(COINS)
    assert {(utc_millis(task.start), utc_millis(task.end)) for task in plan} == {(newest[2], newest[39])}


def test_the_stretch_is_filled_with_backfilled_rows_every_five_minutes_loaded_once(outage):
    layout, _server, _poller, plan, _steps, _requests = outage
    start, end = plan[0].start, plan[0].end
    for coin in COINS:
        rows = _rows(layout, f"""SELECT epoch_ms(last_updated), poll_id FROM market_ticks
                                 WHERE coin_id = '{coin}' AND origin = 'backfill' ORDER BY 1""")  # fmt: skip
        stamps = [ms for ms, _ in rows]
        first = -(-int(start.timestamp() * 1000) // FIVE_MINUTES_MS) * FIVE_MINUTES_MS
        assert stamps == list(range(first, int(end.timestamp() * 1000) + 1, FIVE_MINUTES_MS))
        assert len({poll for _, poll in rows}) == 1  # one landing object per coin and range
    live = _rows(layout, "SELECT coin_id, count(*) FROM market_ticks WHERE origin = 'poll' GROUP BY 1 ORDER BY 1")
    assert live == [(coin, len(LIVE_FRAMES)) for coin in sorted(COINS)]


def test_backfill_requests_kept_inside_the_budget_with_live_polls_first(outage):
    _layout, _server, poller, _plan, steps, requests = outage
    api = [r for r in requests if r.path.startswith("/api/v3/")]
    assert all(r.status == 200 for r in api), [r.status for r in api]  # the server's limit never answered 429
    for r in api:
        assert sum(1 for other in api if r.at <= other.at < r.at + 60) <= REQUESTS_PER_MINUTE
    assert sum(1 for r in api if "market_chart" in r.path) == len(COINS)
    # Back-fill takes what one poll per interval leaves over: 12 - 1 a minute.
    assert poller.backfiller.budget.max_requests == REQUESTS_PER_MINUTE - 1
    assert sum(step.landed_objects for step in steps) == len(COINS)


def test_backfilling_the_same_gap_again_adds_no_rows(spark, outage):
    layout, _server, poller, plan, _steps, _requests = outage
    before = _rows(layout, "SELECT count(*) FROM market_ticks")
    objects = _landed_objects(layout)

    poller.backfiller.plan(plan)
    report = poller.backfiller.step(threading.Event(), deadline=time.monotonic() + 60)
    _stream_once(spark, layout)

    assert (report.already_done, report.landed_objects, report.requests) == (len(COINS), 0, 0)
    assert _landed_objects(layout) == objects
    assert _rows(layout, "SELECT count(*) FROM market_ticks") == before
