"""Paging through every coin: a listing that ends (short page, ``[]``), coins without a market
cap or rank in its tail, and coins that move between pages during one poll.

A hand-written fake of ``/coins/markets`` (an httpx transport) serves a listing the test
edits between two page requests, as CoinGecko's ranks move while a poll pages through
them, and records every request, which the tests assert exactly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from core.coingecko_plans import ALL_COINS_BOUND, MAX_PER_PAGE
from cryptopipe.replay import Market
from producer import CoinGeckoClient, Poller

from ..conftest import landed

NO_STOP = threading.Event()


def listing(coins: int) -> list[dict[str, Any]]:
    """``coins`` records of CoinGecko's shape in market-cap order: the replay's snapshot
    repeated under new ids, its tail (null ranks, caps of 0) moved to the end, without the
    dead coin (a null price, rejected: not what these tests are about)."""
    frame = [r for r in Market.bundled().frame(0) if r["current_price"] is not None]
    ranked = [r for r in frame if r["market_cap_rank"] is not None]
    unranked = [r for r in frame if r["market_cap_rank"] is None]
    out = []
    for i in range(coins):
        source = ranked[i % len(ranked)] if i < coins - len(unranked) else unranked[i % len(unranked)]
        out.append({**source, "id": f"{source['id']}-{i}",
                    "market_cap_rank": i + 1 if source["market_cap_rank"] is not None else None})
    return out


class FakeMarkets:
    """``/coins/markets`` over a list of records; ``before_page[n]`` runs before page ``n`` is answered."""

    def __init__(self, coins: list[dict[str, Any]]) -> None:
        self.coins = coins
        self.requests: list[dict[str, str]] = []
        self.before_page: dict[int, Callable[[FakeMarkets], None]] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.url.path.endswith("/coins/markets")
        params = dict(request.url.params)
        self.requests.append(params)
        page, per_page = int(params["page"]), int(params["per_page"])
        if page in self.before_page:
            self.before_page.pop(page)(self)
        return httpx.Response(200, json=self.coins[(page - 1) * per_page : page * per_page])

    def pages_asked(self) -> list[tuple[str, str]]:
        return [(r["page"], r["per_page"]) for r in self.requests]

    def move(self, coin_id: str, to: int) -> None:
        """Move a coin to position ``to`` (0-based) of the listing: its rank changed."""
        [index] = [i for i, r in enumerate(self.coins) if r["id"] == coin_id]
        self.coins.insert(to, self.coins.pop(index))


def poll(make_config, fake: FakeMarkets, **settings: Any):
    config = make_config(**settings)
    with Poller.from_config(config, transport=httpx.MockTransport(fake)) as poller:
        report = poller.poll_once()
    return report


def landed_ids(landing) -> list[str]:
    [records] = landing.polls().values()
    return list(records)


def test_all_pages_until_a_short_page_and_lands_the_tail_with_null_caps_and_ranks(make_config, landing):
    coins = listing(2 * MAX_PER_PAGE + 71)
    fake = FakeMarkets(coins)

    report = poll(make_config, fake, top_n="all")

    assert fake.pages_asked() == [("1", "250"), ("2", "250"), ("3", "250")]
    assert all(r["vs_currency"] == "usd" and r["order"] == "market_cap_desc" for r in fake.requests)
    assert (report.status, report.pages, report.accepted, report.rejected) == ("ok", 3, len(coins), 0)
    [records] = landing.polls().values()
    assert list(records) == [c["id"] for c in coins]
    tail = [r for r in records.values() if r["market_cap_rank"] is None]
    assert tail and all(r["market_cap"] == 0 for r in tail)  # the snapshot's unranked coins report a cap of 0
    assert records[coins[-1]["id"]] == {**landed(coins[-1]), "ingested_at": records[coins[-1]["id"]]["ingested_at"],
                                        "poll_id": report.poll_id}


def test_an_empty_page_after_a_full_one_ends_the_listing_without_a_retry(make_config, landing):
    coins = listing(2 * MAX_PER_PAGE)
    fake = FakeMarkets(coins)

    report = poll(make_config, fake, top_n="all")

    assert fake.pages_asked() == [("1", "250"), ("2", "250"), ("3", "250")]  # page 3 once: [] is the end
    assert (report.status, report.attempts, report.accepted, report.pages_failed) == ("ok", 3, len(coins), 0)


def test_a_top_n_above_the_listing_stops_at_its_short_page(make_config, landing):
    fake = FakeMarkets(listing(MAX_PER_PAGE + 40))

    report = poll(make_config, fake, top_n=1000)

    assert fake.pages_asked() == [("1", "250"), ("2", "250")]
    assert (report.status, report.accepted) == ("ok", MAX_PER_PAGE + 40)


def test_a_coin_that_falls_a_page_during_the_poll_lands_once_as_its_newer_copy(make_config, landing):
    coins = listing(2 * MAX_PER_PAGE + 10)
    falling, lifted = coins[100]["id"], coins[MAX_PER_PAGE]["id"]
    every_id = {c["id"] for c in coins}
    fake = FakeMarkets(coins)

    def falls(markets: FakeMarkets) -> None:  # after page 1 was answered: it now ranks on page 2, updated
        markets.move(falling, MAX_PER_PAGE + 5)
        [record] = [r for r in markets.coins if r["id"] == falling]
        record["last_updated"] = "2025-06-01T12:01:00.000Z"
        record["current_price"] = 0.5

    fake.before_page[2] = falls

    report = poll(make_config, fake, top_n="all")

    ids = landed_ids(landing)
    assert ids.count(falling) == 1
    # Its fall lifted the first coin of page 2 onto page 1, already read: missing this poll.
    assert set(ids) == every_id - {lifted}
    [records] = landing.polls().values()
    assert (records[falling]["last_updated"], records[falling]["price"]) == ("2025-06-01T12:01:00.000Z", 0.5)
    assert ids.index(falling) == 100  # where its first copy stood
    assert (report.status, report.errors, report.duplicates, report.accepted) == ("ok", [], 1, len(coins) - 1)


def test_a_coin_that_climbs_a_page_during_the_poll_is_missing_without_error_and_lands_next_poll(
    make_config, landing
):
    coins = listing(2 * MAX_PER_PAGE + 10)
    climbing = coins[MAX_PER_PAGE + 3]["id"]
    fake = FakeMarkets(coins)
    fake.before_page[2] = lambda markets: markets.move(climbing, 10)  # page 1 was read before it climbed

    config = make_config(top_n="all")
    with Poller.from_config(config, transport=httpx.MockTransport(fake)) as poller:
        first = poller.poll_once()
        second = poller.poll_once()

    first_ids, second_ids = (set(landing.polls()[r.poll_id]) for r in (first, second))
    assert climbing not in first_ids and climbing in second_ids
    # Its climb pushed the last coin of page 1 onto page 2: seen twice, kept once.
    assert (first.status, first.errors, first.duplicates, first.accepted) == ("ok", [], 1, len(coins) - 1)
    assert (second.status, second.accepted) == ("ok", len(coins))
    assert fake.pages_asked() == [("1", "250"), ("2", "250"), ("3", "250")] * 2


def test_all_stops_at_its_bound_and_says_the_listing_goes_on(make_config, caplog):
    caplog.set_level(logging.WARNING)
    record = {"id": "x", "symbol": "x", "name": "X", "current_price": 1.0}
    fake = httpx.MockTransport(lambda request: httpx.Response(200, json=[record] * MAX_PER_PAGE))
    requests = []

    def counting(request: httpx.Request) -> httpx.Response:
        requests.append(request.url.params["page"])
        return fake.handle_request(request)

    with CoinGeckoClient(make_config(top_n="all"), transport=httpx.MockTransport(counting)) as client:
        pages = list(client.fetch_listing("usd", deadline=time.monotonic() + 30, stop=NO_STOP))

    assert requests == [str(page) for page in range(1, ALL_COINS_BOUND // MAX_PER_PAGE + 1)]
    assert len(pages) == ALL_COINS_BOUND // MAX_PER_PAGE
    [warning] = [r.cryptopipe_event for r in caplog.records
                 if getattr(r, "cryptopipe_event", {}).get("event") == "listing_beyond_all"]
    assert warning["pages"] == ALL_COINS_BOUND // MAX_PER_PAGE


@pytest.mark.parametrize("top_n", [5, 250])
def test_an_empty_first_page_is_still_a_fault(make_config, top_n):
    fake = FakeMarkets([])
    config = make_config(top_n=top_n, max_attempts=2)
    with Poller.from_config(config, transport=httpx.MockTransport(fake)) as poller:
        report = poller.poll_once()
    assert (report.status, report.attempts) == ("failed", 2)
    assert "empty list" in report.errors[0]
