"""Monthly call credits: every attempt counted in a ledger that outlives a restart, the account's
own count taken from the replay's ``/key`` over HTTP, polls stretched and back-fill held back
when the month's credits run short. Wall time is an injected clock."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta, timezone

import pytest

from cryptopipe.replay import Fault, ReplayServer
from producer import BackfillTask, CoinGeckoClient, Credits, LocalLandingZone, Poller
from producer.backfill import Backfiller, BackfillReport, CreditsShort
from producer.credits import month_end, stretched_interval

from .test_poller import events

COINS = ("bitcoin", "ethereum")
NOV_30_NOON = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)


class WallClock:
    """A UTC wall clock that moves only when the test moves it."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def account():
    """The replay playing an Analyst account of 1,000 credits a month (the producer's clock is its own)."""
    with ReplayServer(auto_advance=False, monthly_credits=1_000, rate_limit_per_minute=500) as server:
        yield server


def test_every_attempt_is_counted_429s_and_back_fill_included_and_the_count_outlives_a_restart(
    make_config, replay, tmp_path
):
    clock = WallClock(NOV_30_NOON)
    config = make_config(top_n=321)  # two pages a poll
    replay.inject(Fault.status(429), Fault.status(500))  # page 1 takes three attempts
    with Poller.from_config(config, credits=Credits(config, clock=clock)) as poller:
        report = poller.poll_once()
        task = BackfillTask("bitcoin", "btc", "Bitcoin", replay.market.as_of - timedelta(hours=1), replay.market.as_of,
                            "usd")
        assert poller.backfiller.run_task(task, BackfillReport(), deadline=poller.client.clock() + 30,
                                          stop=threading.Event())
    assert report.attempts == 4 and len(replay.requests) == 5  # the poll's four, the chart's one

    restarted = Credits(config, clock=clock)  # a new process on the same spool
    assert restarted.ledger.read().used == 5
    assert json.loads((tmp_path / "spool" / "credits" / "ledger.json").read_text())["month"] == "2026-11"
    clock.now = month_end(NOV_30_NOON)  # December: the credits renew, the count starts again
    assert restarted.state().used == 0
    restarted.record()
    assert (restarted.ledger.read().month, restarted.ledger.read().used) == ("2026-12", 1)


def test_the_state_projects_the_month_and_stretches_the_interval_to_last_it(make_config):
    clock = WallClock(datetime(2026, 11, 30, 23, 0, tzinfo=timezone.utc))  # an hour left
    config = make_config(api_plan="demo", api_key="k", interval_seconds=300)  # lasts any month: 8,928 calls
    credits = Credits(config, clock=clock)
    state = credits.state()
    assert (state.credits, state.remaining, state.needed_to_month_end, state.short) == (10_000, 10_000, 12, False)
    assert state.interval_seconds == 300 and state.spare == 9_988 and not state.backfill_waits

    credits.record(9_994)  # six left for twelve polls: they come every ten minutes instead of five
    state = credits.state()
    assert state.short and state.runs_out_at == "2026-11-30T23:30:00.000Z"
    assert state.interval_seconds == 600 and state.backfill_waits
    credits.record(6)  # none left: the next poll waits for December
    assert credits.state().interval_seconds == 3_601


def test_stretched_interval_sets_the_usage_checks_aside_and_never_shortens():
    assert stretched_interval(400, 43_200, 1, True, 60) == pytest.approx(43_200 / 388)  # 12 checks set aside
    assert stretched_interval(400, 43_200, 2, False, 60) == 216
    assert stretched_interval(10_000, 43_200, 1, False, 60) == 60


def test_a_reconcile_showing_fewer_credits_stretches_polls_and_holds_back_fill(
    make_config, account, tmp_path, caplog
):
    """Another client of the key spent most of the month's credits: the producer's own count knows
    nothing of it; the account's does, and the producer slows down to last the month."""
    caplog.set_level(logging.INFO)
    clock = WallClock(month_end(NOV_30_NOON) - timedelta(seconds=25))  # 25 seconds of November left
    # The configured credits would last the month at this pace; the account's 1,000 will not. The
    # interval leaves the /key check, which must end a quarter interval before the next poll, about
    # 20 times what a poll and the check take idle: under two suites at once, 0.2 s was too tight.
    config = make_config(api_plan="analyst", api_key="k", base_url=account.url, coin_ids=COINS, interval_seconds=0.5,
                         monthly_credits=10**8, health_file=str(tmp_path / "health.json"))  # fmt: skip
    account.spend_credits(1_000 - 25)
    with Poller.from_config(config, credits=Credits(config, clock=clock)) as poller:
        end = account.market.as_of
        poller.backfiller.plan([BackfillTask("bitcoin", "btc", "Bitcoin", end - timedelta(hours=1), end, "usd")])
        poller.run(threading.Event(), max_polls=3)

    # poll, /key (977 used: 23 left, one set aside for the next check), then polls 25 s / 22 apart
    paths = [request.path.rsplit("/", 1)[-1] for request in account.requests]
    assert paths == ["markets", "key", "markets", "markets"]  # no chart: back-fill waited
    starts = [request.at for request in account.requests if request.path.endswith("markets")]
    assert min(later - earlier for earlier, later in zip(starts, starts[1:])) >= 1.0  # 1.14 s, not 0.5
    [reconciled] = events(caplog, "credits_reconciled")
    assert (reconciled["counted"], reconciled["account_used"]) == (2, 977)
    short = [event for event in events(caplog, "credits") if event["short"]]
    assert short[0]["interval_seconds"] == pytest.approx(25 / 22) and short[0]["remaining"] == 23
    assert [r.levelname for r in caplog.records if getattr(r, "cryptopipe_event", {}).get("short")][0] == "WARNING"
    assert "live polls need" in events(caplog, "backfill_waiting")[0]["error"]
    heartbeat = json.loads((tmp_path / "health.json").read_text())["credits"]
    assert heartbeat["short"] and heartbeat["backfill_waits"] and heartbeat["remaining"] == 21
    assert poller.backfiller.pending()  # the plan waits for December


def test_a_usage_check_that_fails_is_logged_and_polling_goes_on(make_config, replay, caplog):
    caplog.set_level(logging.INFO)
    config = make_config(api_plan="basic", api_key="k", top_n=5, interval_seconds=0.2, max_attempts=1,
                         monthly_credits=10**8)  # fmt: skip
    with Poller.from_config(config) as poller:  # the fixture's replay plays no account: /key is a 404
        stats = poller.run(threading.Event(), max_polls=2)
    assert (stats.polls, stats.polls_failed) == (2, 0)
    [failed] = events(caplog, "credits_check_failed")
    assert "HTTP 404" in failed["error"]


def test_on_demand_back_fill_refuses_to_spend_what_live_polls_need(make_config, tmp_path):
    clock = WallClock(NOV_30_NOON)
    config = make_config(api_plan="demo", api_key="k", interval_seconds=300, coin_ids=COINS)
    credits = Credits(config, clock=clock)
    credits.record(9_900)  # 100 left, live polls need 144 until the month ends
    with CoinGeckoClient(config, credits=credits) as client:
        backfiller = Backfiller(config, client=client, landing=LocalLandingZone(tmp_path / "landing"))
        task = BackfillTask("bitcoin", "btc", "Bitcoin", NOV_30_NOON - timedelta(hours=1), NOV_30_NOON, "usd")
        with pytest.raises(CreditsShort, match=r"100 of 10,000 call credits are left this month and live polls "
                                               r"need 144 until it ends \(2026-12-01T00:00:00.000Z\)"):
            backfiller.run_task(task, BackfillReport(), deadline=client.clock() + 5, stop=threading.Event())
    assert credits.ledger.read().used == 9_900  # nothing was sent


def test_the_credits_event_repeats_at_least_hourly_so_the_cloud_alert_stays_open_while_short(
    make_config, replay, caplog
):
    """The cloud's policy counts short=true lines over a window a little longer than
    CREDITS_REPORT_SECONDS: without the repeat, an unchanged short projection would log once and
    the incident close while the credits stay short."""
    caplog.set_level(logging.INFO)
    clock = WallClock(NOV_30_NOON)
    config = make_config(api_plan="demo", api_key="k", top_n=5, interval_seconds=300)
    credits = Credits(config, clock=clock)
    credits.record(9_990)  # ten left for 144 polls: short, and it stays short
    with Poller.from_config(config, credits=credits) as poller:
        stamps = []
        for minutes in (0, 30, 59, 61, 90, 125):
            clock.now = NOV_30_NOON + timedelta(minutes=minutes)
            poller.run(threading.Event(), max_polls=1)
            stamps.append(len(events(caplog, "credits")))
    assert stamps == [1, 1, 1, 2, 2, 3]  # the first look, then again each hour after the last
    assert all(event["short"] for event in events(caplog, "credits"))
