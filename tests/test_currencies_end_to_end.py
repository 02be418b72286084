"""Two quote currencies through the whole local pipeline on real parts: replay server over
HTTP -> producer polling usd and eur -> landing directory -> Spark (availableNow) -> DuckDB
and its views, each (coin, currency, event time) once."""

from __future__ import annotations

from collections import Counter

import pytest

from core.joboptions import job_argv
from core.layout import LocalLayout
from cryptopipe.replay.market import RATES
from cryptopipe.replay.server import ReplayServer
from jobs.loaders.duckdb import open_reader
from jobs.stream import parse_args, run
from producer import Poller, ProducerConfig

from .conftest import landed

pytestmark = pytest.mark.spark

TOP_N = 40  # one page a currency
FRAME_SECONDS = 60.0
CURRENCIES = ("usd", "eur")


def test_a_run_polling_usd_and_eur_loads_each_currency_once_and_the_views_keep_them_apart(spark, tmp_path):
    layout = LocalLayout(tmp_path)
    # Rebased to now: latest_prices looks at the last day only.
    with ReplayServer(frame_seconds=FRAME_SECONDS, auto_advance=False, rebase=True) as server:
        config = ProducerConfig(base_url=server.url, top_n=TOP_N, vs_currencies=",".join(CURRENCIES),
                                requests_per_minute=600, landing_uri=str(layout.landing), spool_dir=str(layout.spool))
        with Poller.from_config(config) as poller:
            reports = [poller.poll_once(), poller.poll_once()]  # the same frame twice, as CoinGecko's cache does
            server.advance()
            reports.append(poller.poll_once())
        market, shift = server.market, server.shift
    run(spark, parse_args(job_argv({**layout.job_places(), "available_now": True})))

    assert [(r.status, r.pages) for r in reports] == [("ok", 2)] * 3
    with open_reader(layout.warehouse) as con:
        ticks = con.execute(
            "SELECT coin_id, vs_currency, strftime(last_updated, '%Y-%m-%dT%H:%M:%S.%gZ'), price FROM market_ticks"
        ).fetchall()
        latest = con.execute("SELECT coin_id, vs_currency, price FROM latest_prices").fetchall()
        candles = con.execute("SELECT vs_currency, count(DISTINCT coin_id) FROM candles_1m GROUP BY ALL").fetchall()

    expected = {}
    for frame in (0, 1):
        for currency in CURRENCIES:
            for record in market.frame(frame, currency, frame_seconds=FRAME_SECONDS, shift=shift)[:TOP_N]:
                if record["current_price"] is not None:
                    line = landed(record, vs_currency=currency)
                    expected[line["coin_id"], currency, line["last_updated"]] = line["price"]
    keys = Counter((coin, currency, updated) for coin, currency, updated, _ in ticks)
    assert set(keys.values()) == {1}, "a (coin, currency, last_updated) key was loaded twice"
    assert {(coin, currency, updated): price for coin, currency, updated, price in ticks} == expected

    # The views: one latest price per coin and currency (frame 1's), candles per currency.
    by_time = sorted(expected.items(), key=lambda item: item[0][2])
    newest = {(coin, currency): price for (coin, currency, _), price in by_time}
    assert Counter((coin, currency) for coin, currency, _ in latest) == Counter(list(newest))
    by_key = {(coin, currency): price for coin, currency, price in latest}
    assert by_key == newest
    assert all(by_key[coin, "eur"] == pytest.approx(by_key[coin, "usd"] * RATES["eur"], rel=1e-5)
               for coin, _ in by_key)  # fmt: skip
    coins = len({coin for coin, _ in newest})
    assert sorted(candles) == [("eur", coins), ("usd", coins)]
