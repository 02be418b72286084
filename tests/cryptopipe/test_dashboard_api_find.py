"""Finding coins and drilling into one, over real HTTP: search, sort, one coin's candles, bad input."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from ..conftest import load, minute_ago, warehouse_row
from .conftest import get

# coin id -> (symbol, name, rank, price, 24 h change, market cap, seconds after t0 of its newest tick)
COINS = {
    "bitcoin": ("btc", "Bitcoin", 1, 60000.0, 1.5, 1.2e12, 70),
    "ethereum": ("eth", "Ethereum", 2, 3000.0, -2.0, 3.6e11, 65),
    "tether": ("usdt", "Tether", 3, 1.0, 0.01, 1.5e11, 60),
    "lido-staked-ether": ("steth", "Lido Staked Ether", 4, 2990.0, None, 2.5e10, 75),
    "pepe": ("pepe", "Pepe", None, 0.00001234, 9.5, None, 30),
}


@pytest.fixture
def market(warehouse) -> datetime:
    """The coins of :data:`COINS`, and two earlier minutes of bitcoin; returns t0, 4 minutes ago."""
    t0 = minute_ago(4)
    rows = [
        warehouse_row(coin, price, t0 + timedelta(seconds=at), symbol=symbol, name=name, market_cap_rank=rank,
             price_change_percentage_24h=change, market_cap=cap)
        for coin, (symbol, name, rank, price, change, cap, at) in COINS.items()
    ]  # fmt: skip
    rows += [
        warehouse_row("bitcoin", 59000.0, t0 - timedelta(minutes=2), symbol="btc", name="Bitcoin", total_volume=2e9),
        warehouse_row("bitcoin", 59500.0, t0 - timedelta(seconds=50), symbol="btc", name="Bitcoin", total_volume=3e9),
    ]
    load(warehouse, rows)
    return t0


def _ids(body) -> list[str]:
    return [row["coin_id"] for row in body["rows"]]


def test_latest_by_default_is_by_rank_with_unranked_last(market, serve):
    body = get(serve(), "/api/latest").json()

    assert _ids(body) == ["bitcoin", "ethereum", "tether", "lido-staked-ether", "pepe"]
    assert (body["q"], body["sort"], body["order"], body["total"]) == ("", "rank", "asc", 5)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("eth", ["ethereum", "tether", "lido-staked-ether"]),  # by name (Tether too) or symbol, in rank order
        ("ETH", ["ethereum", "tether", "lido-staked-ether"]),  # case does not matter
        ("  usdt ", ["tether"]),  # by symbol, spaces trimmed
        ("staked e", ["lido-staked-ether"]),  # anywhere in the name
        ("doge", []),
    ],
)
def test_latest_search_matches_name_or_symbol_ignoring_case(market, serve, q, expected):
    body = get(serve(), f"/api/latest?q={q}").json()

    assert _ids(body) == expected
    assert (body["q"], body["total"]) == (q.strip(), 5)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Without an order, each column sorts its natural way: rank up, the others biggest or newest first.
        ("sort=price", ["bitcoin", "ethereum", "lido-staked-ether", "tether", "pepe"]),
        ("sort=change_24h", ["pepe", "bitcoin", "tether", "ethereum", "lido-staked-ether"]),
        ("sort=market_cap", ["bitcoin", "ethereum", "tether", "lido-staked-ether", "pepe"]),
        ("sort=updated", ["lido-staked-ether", "bitcoin", "ethereum", "tether", "pepe"]),
        ("sort=rank&order=desc", ["lido-staked-ether", "tether", "ethereum", "bitcoin", "pepe"]),
        # Coins without a value (steth's 24 h change, pepe's rank and market cap) come last both ways.
        ("sort=change_24h&order=asc", ["ethereum", "tether", "bitcoin", "pepe", "lido-staked-ether"]),
        ("sort=market_cap&order=asc", ["lido-staked-ether", "tether", "ethereum", "bitcoin", "pepe"]),
        ("sort=price&order=asc&q=eth", ["tether", "lido-staked-ether", "ethereum"]),
    ],
)
def test_latest_sorts_by_each_column_with_missing_values_last(market, serve, query, expected):
    body = get(serve(), f"/api/latest?{query}").json()

    assert _ids(body) == expected


def test_latest_sort_ties_keep_rank_order(warehouse, serve):
    at = minute_ago(1)
    load(warehouse, [warehouse_row(coin, 1.0, at, market_cap_rank=rank) for coin, rank in [("c", 3), ("a", 1), ("b", 2)]])

    assert _ids(get(serve(), "/api/latest?sort=price").json()) == ["a", "b", "c"]
    assert _ids(get(serve(), "/api/latest?sort=price&order=asc").json()) == ["a", "b", "c"]


def test_coin_gives_its_latest_figures_age_and_candles_over_the_window(market, serve):
    ms = int(market.timestamp() * 1000)

    body = get(serve(stale_after_seconds=600), "/api/coin?id=bitcoin&window=15m").json()

    assert (body["window"], body["cached"], body["stale_after_seconds"]) == ("15m", False, 600)
    coin = body["coin"]
    assert (coin["coin_id"], coin["symbol"], coin["name"], coin["price"], coin["market_cap_rank"]) == (
        "bitcoin", "btc", "Bitcoin", 60000.0, 1,
    )  # fmt: skip
    assert 240 - 70 <= coin["age_seconds"] < 300 - 70  # the newest tick is 70 s after t0
    assert body["candles"] == {
        "t": [ms - 120_000, ms - 60_000, ms + 60_000],
        "open": [59000.0, 59500.0, 60000.0], "high": [59000.0, 59500.0, 60000.0],
        "low": [59000.0, 59500.0, 60000.0], "close": [59000.0, 59500.0, 60000.0],
        "total_volume": [2e9, 3e9, 1e9], "samples": [1, 1, 1], "backfilled": [False, False, False],
    }  # fmt: skip


def test_coin_without_candles_in_the_window_has_empty_columns(warehouse, serve):
    load(warehouse, [warehouse_row("bitcoin", 1.0, minute_ago(20))])

    body = get(serve(), "/api/coin?id=bitcoin&window=15m").json()

    assert body["coin"]["price"] == 1.0
    assert body["candles"] == {name: [] for name in ("t", "open", "high", "low", "close", "total_volume", "samples",
                                                       "backfilled")}


def test_coin_not_among_latest_prices_is_404_naming_it(market, serve):
    response = get(serve(), "/api/coin?id=dogecoin")

    assert response.status_code == 404
    assert response.json() == {"error": "no coin 'dogecoin' among the latest usd prices"}


@pytest.mark.parametrize("path", ["/", "/coin/bitcoin", "/coin/no-such-coin"])
def test_page_addresses_serve_the_page(warehouse, serve, path):
    response = get(serve(), path)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<title>cryptopipe" in response.text


ID_CHARS = "(lower-case letters, digits, '.', '_' and '-', at most 100)"


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/latest?sort=name", "sort 'name' is not one of rank, price, change_24h, market_cap, updated"),
        ("/api/latest?order=up", "order 'up' is not one of asc, desc"),
        ("/api/latest?sort=price&order=DESC", "order 'DESC' is not one of asc, desc"),
        ("/api/latest?q=" + "x" * 65, "q is 65 characters long; search with at most 64"),
        ("/api/latest?srot=price", "unknown parameter 'srot' for /api/latest; it takes q, sort, order, currency"),
        ("/api/health?x=1&a=2", "unknown parameter 'a', 'x' for /api/health; it takes currency"),
        ("/api/coin", "id: name a coin by its CoinGecko id, e.g. bitcoin"),
        ("/api/coin?id=Bitcoin", f"id: 'Bitcoin' is not a CoinGecko coin id {ID_CHARS}"),
        ("/api/coin?id=bit%20coin", f"id: 'bit coin' is not a CoinGecko coin id {ID_CHARS}"),
        ("/api/coin?id=" + "a" * 101, f"id: '{'a' * 101}' is not a CoinGecko coin id {ID_CHARS}"),
        ("/api/coin?id=bitcoin&window=1d", "window '1d' is not one of 15m, 1h, 6h, 24h"),
        ("/api/coin?coin=bitcoin", "unknown parameter 'coin' for /api/coin; it takes id, window, currency"),
            ("/api/latest?currency=eur", "currency 'eur' is not one of usd (the quote currencies the producer polls)"),
            ("/api/candles?currency=USD", "currency 'USD' is not one of usd (the quote currencies the producer polls)"),
            ("/api/coin?id=bitcoin&currency=btc",
             "currency 'btc' is not one of usd (the quote currencies the producer polls)"),
            ("/api/health?currency=xyz", "currency 'xyz' is not one of usd (the quote currencies the producer polls)"),
        ("/api/candles?coins=bitcoin,BTC", f"coins: 'BTC' is not a CoinGecko coin id {ID_CHARS}"),
        ("/api/candles?coins=,,", "coins: name 1 to 20 coin ids, got 0"),
    ],
)
def test_bad_parameter_is_400_saying_what_is_accepted(market, serve, path, message):
    response = get(serve(), path)

    assert response.status_code == 400
    assert response.json() == {"error": message}


ODD_QUERIES = [
    "", "q=%00", "q=%ff%fe", "q=%F0%9F%92%A9", "sort=", "sort=%00", "order=%0a", "q=a&q=b&sort=price&sort=rank",
    "id=%00", "id=..", "id=-", "window=%ff", "top=1e3", "top=-1", "top=99999999999999999999", "coins=%2C",
    "coins=a%00b", "id=bitcoin&window=&coins=", "%=%", "&&&", "q",
]  # fmt: skip


def test_no_query_string_is_answered_with_a_500(market, serve):
    server = serve()

    answers = {
        (route, query): get(server, f"{route}?{query}")
        for route in ("/api/latest", "/api/candles", "/api/coin", "/api/health")
        for query in ODD_QUERIES
    }

    assert {key: r.status_code for key, r in answers.items() if r.status_code not in {200, 400, 404}} == {}
    assert all("error" in r.json() for r in answers.values() if r.status_code != 200)
