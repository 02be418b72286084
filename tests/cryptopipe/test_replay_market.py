"""The bundled market: CoinGecko's record shape and quirks, and frames that are pure functions of k."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from importlib import resources

import pytest
from pydantic import ValidationError

import cryptopipe.replay
from cryptopipe.replay import Market, frame
from cryptopipe.replay.market import FIELDS, ORDERS, RATES, STALE_AFTER

from ..conftest import landed

ISO_MILLIS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
DATA = resources.files("cryptopipe.replay").joinpath("data/coins.json")
AS_OF = Market.bundled().as_of


def _by_id(records):
    return {record["id"]: record for record in records}


def _time(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def test_public_names_are_exactly_the_documented_surface():
    assert sorted(cryptopipe.replay.__all__) == sorted(
        ["MISSING", "Fault", "Market", "RecordedRequest", "ReplayServer", "frame"]
    )


def test_bundled_snapshot_holds_hundreds_of_unique_coins_in_a_small_file():
    coins = json.loads(DATA.read_text())["coins"]
    assert len(coins) >= 300
    assert len({coin["id"] for coin in coins}) == len(coins)
    assert len(DATA.read_bytes()) < 1_000_000


def test_frame_records_have_coingecko_fields_in_api_order():
    for record in frame(0):
        assert tuple(record) == FIELDS
        assert ISO_MILLIS.match(record["last_updated"]), record["last_updated"]
        roi = record["roi"]
        assert roi is None or set(roi) == {"times", "currency", "percentage"}


def test_frame_keeps_the_quirks_of_the_real_api():
    records = frame(0)
    nullable = ("fully_diluted_valuation", "max_supply", "roi", "market_cap_rank")
    for name in nullable:
        assert any(record[name] is None for record in records), name
    assert any(record["current_price"] and record["current_price"] < 1e-7 for record in records)
    assert any(isinstance(record["current_price"], int) for record in records)  # whole prices are JSON ints
    dead = [record["id"] for record in records if record["current_price"] is None]
    assert dead == ["orbis-legacy"]


def test_frame_orders_by_market_cap_with_unranked_coins_last_by_default():
    ranks = [record["market_cap_rank"] for record in frame(0)]
    ranked = [rank for rank in ranks if rank is not None]
    assert ranked == list(range(1, len(ranked) + 1))
    assert ranks == ranked + [None] * (len(ranks) - len(ranked))
    assert frame(0)[0]["id"] == "bitcoin"


@pytest.mark.parametrize("k", [0, 1, 1_439, 1_440, 250_000])
def test_frame_is_the_same_for_a_fresh_market_with_the_same_snapshot(k):
    fresh = Market(json.loads(DATA.read_text()))
    assert fresh.frame(k) == frame(k)


def test_frame_differs_for_another_seed():
    other = Market(json.loads(DATA.read_text()), seed=1)
    assert other.frame(5)[0]["current_price"] != frame(5)[0]["current_price"]


def test_frame_moves_live_prices_and_freezes_thin_and_dead_coins():
    before, after = _by_id(frame(10)), _by_id(frame(11))
    frozen = set(Market.bundled().frozen_ids)
    assert len(frozen) >= 4 and "orbis-legacy" in frozen
    for coin_id, record in before.items():
        if coin_id in frozen:
            assert {**after[coin_id], "market_cap_rank": None} == {**record, "market_cap_rank": None}
        else:
            assert after[coin_id]["last_updated"] > record["last_updated"]
    moved = [i for i in before if before[i]["current_price"] != after[i]["current_price"]]
    assert len(moved) > 0.9 * (len(before) - len(frozen))


def test_frame_leaves_thin_coins_hours_old():
    records = _by_id(frame(100))
    frame_time = AS_OF + timedelta(minutes=100)
    for coin_id in Market.bundled().frozen_ids:
        assert frame_time - _time(records[coin_id]["last_updated"]) > STALE_AFTER


def test_frame_live_last_updated_trails_the_frame_time_by_under_a_frame():
    frame_time = AS_OF + 7 * timedelta(seconds=30)
    frozen = set(Market.bundled().frozen_ids)
    for record in frame(7, frame_seconds=30):
        if record["id"] not in frozen:
            lag = frame_time - _time(record["last_updated"])
            assert timedelta(0) <= lag < timedelta(seconds=30)


@pytest.mark.parametrize("k", [0, 3, 1_440, 40_000, 3_000_000])
def test_frame_keeps_24h_figures_consistent_with_the_price(k):
    for record in frame(k):
        price = record["current_price"]
        if price is None:
            continue
        assert record["low_24h"] <= price <= record["high_24h"]
        assert record["atl"] <= price <= record["ath"]
        change = 100 * (price / (price - record["price_change_24h"]) - 1)
        assert record["price_change_percentage_24h"] == pytest.approx(change, abs=1e-3, rel=1e-3)


def test_frame_after_a_day_measures_change_from_the_snapshot_price():
    day = 1_440  # frames of 60 s
    start, later = _by_id(frame(0)), _by_id(frame(day))
    for coin_id in ("bitcoin", "ethereum", "pepe"):
        price_24h_ago = later[coin_id]["current_price"] - later[coin_id]["price_change_24h"]
        assert price_24h_ago == pytest.approx(start[coin_id]["current_price"], rel=1e-4)


def test_frame_records_pass_schema_validation_except_the_dead_coin():
    rejected = []
    for record in frame(3):
        try:
            landed(record)
        except ValidationError as exc:
            rejected.append((record["id"], [error["loc"] for error in exc.errors()]))
    assert rejected == [("orbis-legacy", [("current_price",)])]


def test_frame_converts_money_but_not_ratios_when_vs_currency_is_eur():
    usd, eur = _by_id(frame(2)), _by_id(frame(2, "eur"))
    rate = RATES["eur"]
    for coin_id in ("bitcoin", "tether", "shiba-inu"):
        assert eur[coin_id]["current_price"] == pytest.approx(usd[coin_id]["current_price"] * rate, rel=1e-5)
        assert eur[coin_id]["market_cap"] == pytest.approx(usd[coin_id]["market_cap"] * rate, rel=1e-9)
        for name in ("price_change_percentage_24h", "circulating_supply", "market_cap_rank", "last_updated"):
            assert eur[coin_id][name] == usd[coin_id][name]


@pytest.mark.parametrize("order", ORDERS)
def test_frame_returns_every_coin_in_any_order(order):
    assert sorted(record["id"] for record in frame(4, order=order)) == sorted(Market.bundled().ids)


def test_frame_shift_moves_every_timestamp():
    shift = timedelta(days=500, milliseconds=7)
    plain, shifted = frame(6), frame(6, shift=shift)
    for a, b in zip(plain, shifted, strict=True):
        for name in ("ath_date", "atl_date", "last_updated"):
            assert _time(b[name]) - _time(a[name]) == shift


def test_frame_returns_copies_that_callers_may_change():
    first = frame(8)
    first[0]["id"] = "changed"
    next(record for record in first if record["roi"])["roi"]["times"] = -1
    again = frame(8)
    assert again[0]["id"] == "bitcoin"
    assert next(record for record in again if record["roi"])["roi"]["times"] != -1


@pytest.mark.parametrize(
    ("args", "options", "message"),
    [
        ((-1,), {}, "frame must be >= 0"),
        ((0, "xyz"), {}, "vs_currency 'xyz' is not supported"),
        ((0,), {"order": "price_desc"}, "order 'price_desc' is not supported"),
        ((0,), {"frame_seconds": 0}, "frame_seconds must be at least"),
    ],
)
def test_frame_rejects_bad_arguments_with_the_value(args, options, message):
    with pytest.raises(ValueError, match=message):
        frame(*args, **options)


# -- a synthetic market at scale ---------------------------------------------


def test_synthetic_market_has_that_many_unique_coins_of_the_bundled_shape_and_quirks():
    market = Market.synthetic(1_000)
    records = market.frame(0)
    assert len(records) == len({r["id"] for r in records}) == 1_000
    assert all(tuple(r) == FIELDS for r in records)
    bundled = _by_id(frame(0))
    assert {"bitcoin", "ethereum"} <= set(market.ids) and market.frame(0)[0] == bundled["bitcoin"]  # copy 0 kept
    ranks = [r["market_cap_rank"] for r in records]
    ranked = [rank for rank in ranks if rank is not None]
    assert ranked == list(range(1, len(ranked) + 1))
    tail = ranks[len(ranked):]
    assert tail == [None] * len(tail) and round(1_000 * 8 / len(bundled)) == len(tail) > 8  # the same share
    assert all(r["market_cap"] == 0 for r in records[len(ranked):])
    dead = [r["id"] for r in records if r["current_price"] is None]
    assert len(dead) > 1 and all(d.startswith("orbis-legacy") for d in dead)
    assert len(market.frozen_ids) > len(Market.bundled().frozen_ids)
    clone = _by_id(records)["bitcoin-1"]
    assert (clone["symbol"], clone["name"]) == ("btc1", "Bitcoin 1")
    assert clone["current_price"] == bundled["bitcoin"]["current_price"]  # a clone's size scales, not its price
    assert 0 < clone["market_cap"] < bundled["bitcoin"]["market_cap"]
    for record in records:
        if record["current_price"] is not None:
            landed(record)  # every live record is valid for the producer, nulls included


def test_synthetic_market_is_deterministic_in_its_seed_and_moves_coins_between_pages():
    market = Market.synthetic(1_000)
    assert Market.synthetic(1_000).frame(3, "eur") == market.frame(3, "eur")
    assert Market.synthetic(1_000, seed=1).frame(3) != market.frame(3)
    pages = [{r["id"]: i // 250 for i, r in enumerate(market.frame(k, frame_seconds=3_600))} for k in (0, 24)]
    assert any(pages[0][coin] != pages[1][coin] for coin in market.ids)


def test_frame_slices_copy_only_the_page():
    market = Market.synthetic(600)
    assert market.frame(2, start=500, stop=750) == market.frame(2)[500:]
