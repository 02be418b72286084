"""Several quote currencies in one producer: one request a page and currency, every currency
of a poll in its one landing object, each request a credit, gaps found and back-filled per
currency. The replay converts its US-dollar market at a fixed rate per currency and answers
an unknown currency as CoinGecko does (400, ``invalid vs_currency``)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cryptopipe.replay import Fault
from cryptopipe.replay.market import RATES
from producer import ConfigError, Poller, ProducerConfig
from producer.backfill import Backfiller, BackfillTask, run_backfill

from .conftest import ALL_COINS

COINS = ("bitcoin", "ethereum")


def _rows(landing: Path) -> dict[str, list[dict]]:
    """Every landed object's rows, by file stem (the poll id)."""
    return {path.stem: [json.loads(line) for line in path.read_text().splitlines()]
            for path in sorted(landing.rglob("*.ndjson"))}  # fmt: skip


def test_a_poll_asks_each_currency_for_every_page_and_lands_them_in_one_object_each_coin_once_per_currency(
    make_config, replay, tmp_path, expected
):
    config = make_config(top_n=ALL_COINS, vs_currencies="usd,eur,btc")
    with Poller.from_config(config) as poller:
        report = poller.poll_once()
        used = poller.client.credits.ledger.read().used

    asked = [(r.params["vs_currency"], r.params["page"]) for r in replay.requests]
    assert asked == [(c, p) for c in ("usd", "eur", "btc") for p in ("1", "2")]
    assert (report.status, report.pages, used) == ("ok", 6, 6)  # a credit a page and currency
    [(poll_id, rows)] = _rows(tmp_path / "landing").items()
    assert poll_id == report.poll_id
    keys = Counter((row["coin_id"], row["vs_currency"]) for row in rows)
    usd = expected(0)
    assert set(keys.values()) == {1} and set(keys) == {(coin, c) for coin in usd for c in ("usd", "eur", "btc")}
    # One market in three currencies: each price is the dollar price at the currency's fixed rate.
    prices = {(row["coin_id"], row["vs_currency"]): row["price"] for row in rows}
    for coin in ("bitcoin", "tether", "shiba-inu"):
        for currency in ("eur", "btc"):
            assert prices[coin, currency] == pytest.approx(prices[coin, "usd"] * RATES[currency], rel=1e-5)
    assert prices["bitcoin", "btc"] == pytest.approx(1.0, rel=0.01)  # the rate is the snapshot's bitcoin price


def test_a_currency_coingecko_does_not_know_fails_its_pages_alone_and_the_others_land(make_config, replay, tmp_path):
    with Poller.from_config(make_config(coin_ids=COINS, vs_currencies="usd,xyz,eur")) as poller:
        report = poller.poll_once()

    assert [r.params["vs_currency"] for r in replay.requests] == ["usd", "xyz", "eur"]  # a 400 is not retried
    assert (report.status, report.pages, report.pages_failed) == ("partial", 3, 1)
    [error] = report.errors
    assert error.startswith("xyz ids bitcoin,ethereum: ApiRejected: ") and "invalid vs_currency" in error
    assert "check vs_currencies (GET /simple/supported_vs_currencies lists CoinGecko's)" in error
    [rows] = _rows(tmp_path / "landing").values()
    assert sorted((row["coin_id"], row["vs_currency"]) for row in rows) == [
        ("bitcoin", "eur"), ("bitcoin", "usd"), ("ethereum", "eur"), ("ethereum", "usd")
    ]


def test_the_monthly_plan_counts_every_currency_and_names_them_when_it_refuses():
    three = {"api_plan": "demo", "api_key": "k", "vs_currencies": "usd,eur,btc"}
    assert ProducerConfig(**three, interval_seconds=804).requests_per_poll == 3
    with pytest.raises(ConfigError) as refused:
        ProducerConfig(**three, interval_seconds=268)  # 9,995 polls a month: lasts with one currency, not three
    assert "polling every 268 s, 1 page × 3 currencies a poll, needs 29,985 calls a month" in str(refused.value)
    assert "expected an interval of at least 804 s" in str(refused.value)


def test_a_gap_in_one_currency_is_found_and_back_filled_in_that_currency_only(make_config, replay, tmp_path):
    # Polls a minute of market time apart; eur's request fails for nine of them: a gap in eur
    # (ten minutes) beyond three intervals, none in usd.
    config = make_config(coin_ids=COINS, vs_currencies="usd,eur", interval_seconds=60, backfill_after_intervals=3,
                         max_attempts=1)  # fmt: skip
    with Poller.from_config(config) as poller:
        first = poller.poll_once()
        for frame in range(1, 10):
            replay.frame = frame
            replay.inject(Fault.delay(0), Fault.status(500))  # usd answers, eur does not
            assert poller.poll_once().status == "partial"
        replay.frame = 10
        poller.poll_once()
        backfiller: Backfiller = poller.backfiller
        planned = backfiller.pending()
        seen = len(replay.requests)
        report = backfiller.step(threading.Event(), deadline=time.monotonic() + 20)

    rows = _rows(tmp_path / "landing")
    eur_first = max(datetime.fromisoformat(r["last_updated"]) for r in rows[first.poll_id] if r["vs_currency"] == "eur")
    assert {(task.coin_id, task.vs_currency) for task in planned} == {(coin, "eur") for coin in COINS}
    assert {task.start for task in planned} == {eur_first}
    assert backfiller.last_poll("eur") == backfiller.last_poll("usd")  # both saw frame 10
    charts = [(r.path.split("/")[-3], r.params["vs_currency"]) for r in replay.requests[seen:]]
    assert sorted(charts) == [("bitcoin", "eur"), ("ethereum", "eur")]
    assert report.landed_objects == 2 and backfiller.pending() == []
    backfilled = [row for poll in rows.values() for row in poll if row["origin"] == "backfill"]
    assert backfilled and {row["vs_currency"] for row in backfilled} == {"eur"}


def test_on_demand_back_fill_fetches_a_chart_a_coin_and_currency_counts_each_and_lands_each_once(
    make_config, replay, tmp_path
):
    config = make_config(coin_ids=COINS, vs_currencies="usd,eur")
    base = replay.market.as_of
    replay.frame = 60
    with Poller.from_config(config) as poller:
        window = (base + timedelta(minutes=10), base + timedelta(minutes=30))
        now = base + timedelta(hours=1)
        report = run_backfill(config, *window, client=poller.client, landing=poller.landing, now=now)
        again = run_backfill(config, *window, client=poller.client, landing=poller.landing, now=now)
        used = poller.client.credits.ledger.read().used

    charts = [(r.path.split("/")[-3], r.params["vs_currency"]) for r in replay.requests if "market_chart" in r.path]
    assert sorted(charts) == sorted((coin, c) for coin in COINS for c in ("usd", "eur"))  # the rerun asked nothing
    assert (report.tasks, report.landed_objects, report.failed) == (4, 4, {})
    assert (again.already_done, again.landed_objects) == (4, 0)
    assert used == 2 + 4  # each run read the coin set once (one currency names the coins), then four charts
    rows = [row for poll in _rows(tmp_path / "landing").values() for row in poll]
    keys = Counter((row["coin_id"], row["vs_currency"], row["last_updated"]) for row in rows)
    assert set(keys.values()) == {1} and {(coin, c) for coin, c, _ in keys} == set(charts)


def test_a_failed_chart_is_reported_per_coin_and_currency(make_config, replay):
    config = make_config(coin_ids=("bitcoin",), vs_currencies="usd,eur", max_attempts=1)
    base = replay.market.as_of
    replay.frame = 60
    replay.inject(Fault.delay(0), Fault.delay(0), Fault.status(500))  # the coin set, usd's chart; eur's fails
    with Poller.from_config(config) as poller:
        report = run_backfill(config, base, base + timedelta(minutes=30), client=poller.client,
                              landing=poller.landing, now=base + timedelta(hours=1))  # fmt: skip

    assert list(report.failed) == ["bitcoin (eur)"] and report.landed_objects == 1


def test_state_written_before_currencies_stands_for_every_currency(make_config, replay):
    """A gap planned and a last poll noted by a producer that polled one currency: after the
    upgrade they count for each currency polled, so a gap across the upgrade is still filled."""
    config = make_config(coin_ids=COINS, vs_currencies="usd,eur")
    with Poller.from_config(config) as poller:
        backfiller = poller.backfiller
        start = replay.market.as_of
        backfiller.folder.mkdir(parents=True, exist_ok=True)
        (backfiller.folder / "last_poll.json").write_text(json.dumps({"newest_last_updated": start.isoformat()}))
        old_task = {"coin_id": "bitcoin", "symbol": "btc", "name": "Bitcoin",
                    "start": start.isoformat(), "end": (start + timedelta(minutes=30)).isoformat()}  # fmt: skip
        (backfiller.folder / "plan.json").write_text(json.dumps([old_task]))

        assert backfiller.last_poll("usd") == backfiller.last_poll("eur") == start
        assert backfiller.pending() == [
            BackfillTask("bitcoin", "btc", "Bitcoin", start, start + timedelta(minutes=30), currency)
            for currency in ("usd", "eur")
        ]
        backfiller.saw_poll("eur", start + timedelta(minutes=1))
        assert (backfiller.last_poll("usd"), backfiller.last_poll("eur")) == (start, start + timedelta(minutes=1))

