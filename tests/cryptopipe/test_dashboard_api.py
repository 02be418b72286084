"""The dashboard's JSON API and page over real HTTP, against a local warehouse."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from cryptopipe.dashboard import DashboardError, DashboardServer

from ..conftest import load, minute_ago, warehouse_row
from .conftest import MarketWriter, get

# Holds the warehouse read-write, as the stream does during a batch, until a line arrives on stdin.
WRITER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
con.close()
"""


def _two_coins(warehouse) -> None:
    t0 = minute_ago(3)
    load(warehouse, [
        warehouse_row("ethereum", 3000.0, t0 + timedelta(seconds=10), symbol="eth", market_cap_rank=2),
        warehouse_row("bitcoin", 60000.0, t0 + timedelta(seconds=5), symbol="btc", market_cap_rank=1),
        warehouse_row("bitcoin", 61000.0, t0 + timedelta(seconds=50), symbol="btc", market_cap_rank=1),
        warehouse_row("bitcoin", 60500.0, t0 + timedelta(seconds=70), symbol="btc", market_cap_rank=1),
        warehouse_row("pepe", 0.00001234, t0 + timedelta(seconds=20), symbol="pepe", market_cap_rank=None),
    ])  # fmt: skip


def test_latest_lists_newest_tick_per_coin_by_market_cap_rank(warehouse, serve):
    _two_coins(warehouse)
    t0 = minute_ago(3)

    body = get(serve(), "/api/latest").json()

    assert body["cached"] is False
    assert body["vs_currency"] == "usd"
    assert [(r["coin_id"], r["price"], r["market_cap_rank"]) for r in body["rows"]] == [
        ("bitcoin", 60500.0, 1),
        ("ethereum", 3000.0, 2),
        ("pepe", 0.00001234, None),
    ]
    assert body["rows"][0]["last_updated"] == (t0 + timedelta(seconds=70)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert set(body["rows"][0]) == {
        "coin_id", "symbol", "name", "price", "price_change_percentage_24h", "market_cap", "market_cap_rank",
        "last_updated",
    }  # fmt: skip


def _two_currencies(warehouse) -> None:
    """Bitcoin and ether in usd and eur, eur's prices 0.9 of usd's; bitcoin's newest eur tick
    is newer than its newest usd tick, so a view or answer that mixed them would show it in usd."""
    t0 = minute_ago(3)
    load(warehouse, [
        warehouse_row("bitcoin", 60000.0, t0 + timedelta(seconds=5), symbol="btc", market_cap_rank=1),
        warehouse_row("bitcoin", 54000.0, t0 + timedelta(seconds=8), symbol="btc", market_cap_rank=1,
                      vs_currency="eur"),
        warehouse_row("ethereum", 3000.0, t0 + timedelta(seconds=10), symbol="eth", market_cap_rank=2),
        warehouse_row("ethereum", 2700.0, t0 + timedelta(seconds=10), symbol="eth", market_cap_rank=2,
                      vs_currency="eur"),
    ])  # fmt: skip


def test_each_answer_is_in_the_currency_asked_for_and_the_first_one_when_none_is(warehouse, serve):
    _two_currencies(warehouse)
    server = serve(vs_currencies=("usd", "eur"))

    for currency, bitcoin, ether in (("usd", 60000.0, 3000.0), ("eur", 54000.0, 2700.0), (None, 60000.0, 3000.0)):
        asked = f"currency={currency}" if currency else ""
        latest = get(server, f"/api/latest?{asked}").json()
        candles = get(server, f"/api/candles?window=15m&top=2&{asked}").json()
        coin = get(server, f"/api/coin?id=bitcoin&window=15m&{asked}").json()
        health = get(server, f"/api/health?{asked}").json()
        answered = currency or "usd"
        assert [latest["vs_currency"], candles["vs_currency"], coin["vs_currency"], health["vs_currency"]] == [
            answered] * 4
        assert [(r["coin_id"], r["price"]) for r in latest["rows"]] == [("bitcoin", bitcoin), ("ethereum", ether)]
        assert [(s["coin_id"], s["close"]) for s in candles["series"]] == [
            ("bitcoin", [bitcoin]), ("ethereum", [ether])
        ]  # fmt: skip
        assert (coin["coin"]["price"], coin["candles"]["close"]) == (bitcoin, [bitcoin])
        assert health["vs_currencies"] == ["usd", "eur"] and health["status"] == "fresh"


def test_a_currency_the_producer_does_not_poll_is_a_400_naming_those_it_does(warehouse, serve):
    _two_currencies(warehouse)
    server = serve(vs_currencies=("usd", "eur"))

    for path in ("/api/latest?currency=btc", "/api/candles?currency=btc", "/api/coin?id=bitcoin&currency=btc",
                 "/api/health?currency=EUR"):  # fmt: skip
        response = get(server, path)
        assert response.status_code == 400, path
        asked = path.rsplit("=", 1)[1]
        assert response.json() == {
            "error": f"currency '{asked}' is not one of usd, eur (the quote currencies the producer polls)"
        }


def test_candles_without_coins_gives_top_coins_in_window(warehouse, serve):
    _two_coins(warehouse)
    t0 = minute_ago(3)
    ms = int(t0.timestamp() * 1000)

    body = get(serve(), "/api/candles?window=15m&top=2").json()

    assert body["window"] == "15m"
    assert body["coins"] == ["bitcoin", "ethereum"]
    assert body["series"] == [
        {"coin_id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "t": [ms, ms + 60_000], "open": [60000.0, 60500.0],
         "high": [61000.0, 60500.0], "low": [60000.0, 60500.0], "close": [61000.0, 60500.0],
         "total_volume": [1e9, 1e9], "samples": [2, 1], "backfilled": [False, False]},
        {"coin_id": "ethereum", "symbol": "eth", "name": "Ethereum", "t": [ms], "open": [3000.0], "high": [3000.0],
         "low": [3000.0], "close": [3000.0], "total_volume": [1e9], "samples": [1], "backfilled": [False]},
    ]  # fmt: skip


def test_candles_with_coins_gives_only_those_coins(warehouse, serve):
    _two_coins(warehouse)

    body = get(serve(), "/api/candles?coins=pepe,ethereum,pepe").json()

    assert body["window"] == "1h"
    assert body["coins"] == ["pepe", "ethereum"]
    assert [s["coin_id"] for s in body["series"]] == ["ethereum", "pepe"]


def test_candles_leave_out_minutes_before_the_window(warehouse, serve):
    load(warehouse, [warehouse_row("bitcoin", 1.0, minute_ago(20)), warehouse_row("bitcoin", 2.0, minute_ago(5))])

    body = get(serve(), "/api/candles?window=15m&coins=bitcoin").json()

    assert body["series"][0]["close"] == [2.0]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("window=2h", "window '2h' is not one of 15m, 1h, 6h, 24h"),
        ("top=0", "top 0 is not between 1 and 20"),
        ("top=many", "top 'many' is not a whole number"),
        ("coins=" + ",".join(f"c{i}" for i in range(21)), "coins: name 1 to 20 coin ids, got 21"),
    ],
)
def test_candles_with_bad_parameter_is_400_saying_what_is_accepted(warehouse, serve, query, message):
    response = get(serve(), f"/api/candles?{query}")

    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_health_with_recent_ticks_is_fresh(warehouse, serve):
    _two_coins(warehouse)

    body = get(serve(stale_after_seconds=600), "/api/health").json()

    assert body["status"] == "fresh"
    # The newest tick is 70 s into the minute that began 3 minutes before this one.
    assert 180 - 70 <= body["age_seconds"] < 240
    assert re.fullmatch(r"newest tick \d+ min old", body["message"])
    assert body["windows"] == ["15m", "1h", "6h", "24h"]
    assert body["warehouse"] == f"duckdb://{warehouse.path.resolve()}"
    assert body["warehouse_name"] == str(warehouse.path.resolve())  # not under the working directory


def test_health_names_a_warehouse_under_the_working_directory_by_its_relative_path(warehouse, serve, monkeypatch):
    monkeypatch.chdir(warehouse.path.parent.parent)

    body = get(serve(), "/api/health").json()

    assert body["warehouse_name"] == f"{warehouse.path.parent.name}/warehouse.duckdb"


def test_health_with_ticks_older_than_threshold_is_stale(warehouse, serve):
    load(warehouse, [warehouse_row("bitcoin", 1.0, minute_ago(10))])

    body = get(serve(stale_after_seconds=300), "/api/health").json()

    assert body["status"] == "stale"
    assert re.fullmatch(r"newest tick (10|11) min old \(stale after 5 min\)", body["message"])


def test_health_without_ticks_is_empty(warehouse, serve):
    body = get(serve(), "/api/health").json()

    assert (body["status"], body["message"]) == ("empty", "no usd ticks in the last day yet")


def test_without_warehouse_health_and_latest_say_the_stream_creates_it(serve, tmp_path):
    server = serve(tmp_path / "missing.duckdb")

    health = get(server, "/api/health").json()
    latest = get(server, "/api/latest")

    assert health["status"] == "unavailable"
    assert "the stream creates it when it starts" in health["message"]
    assert latest.status_code == 503
    assert "the stream creates it when it starts" in latest.json()["error"]


def test_without_views_latest_says_cryptopipe_up_creates_them(serve, tmp_path):
    import duckdb

    bare = tmp_path / "bare.duckdb"
    duckdb.connect(str(bare)).close()

    response = get(serve(bare), "/api/latest")

    assert response.status_code == 503
    assert "no dashboard views yet" in response.json()["error"]
    assert "cryptopipe up" in response.json()["error"]


def _hold(path: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "holding"
    return process


def test_latest_while_another_process_writes_serves_last_good_answer(warehouse, serve):
    _two_coins(warehouse)
    server = serve(lock_timeout=0.3)
    first = get(server, "/api/latest").json()
    writer = _hold(warehouse.path)
    try:
        during = get(server, "/api/latest").json()
        health = get(server, "/api/health").json()
    finally:
        writer.communicate("\n", timeout=30)
    after = get(server, "/api/latest").json()

    assert during["cached"] is True
    assert "locked by another process" in during["problem"]
    assert during["rows"] == first["rows"]
    assert during["queried_at"] == first["queried_at"]
    assert health["status"] == "fresh" and "showing the last good answer" in health["message"]
    assert after["cached"] is False and after["problem"] is None


def test_latest_while_another_process_writes_without_earlier_answer_is_503(warehouse, serve):
    server = serve(lock_timeout=0.3)
    writer = _hold(warehouse.path)
    try:
        response = get(server, "/api/latest")
    finally:
        writer.communicate("\n", timeout=30)

    assert response.status_code == 503
    assert "locked by another process" in response.json()["error"]


def test_api_in_the_writers_process_answers_every_request_fresh(warehouse, serve):
    # As in `cryptopipe up`: the stream's short writer connections and the
    # dashboard's readers take turns on the file within one process.
    server = serve()
    writer = MarketWriter(warehouse, every=0.2)
    writer.start()
    responses = []
    try:
        # Ask until the writer has committed a few batches in between, however fast the answers.
        deadline = time.monotonic() + 60
        while writer.batches < 3 and time.monotonic() < deadline:
            responses += [get(server, path) for path in ("/api/latest", "/api/candles")]
    finally:
        writer.stop()

    assert [r.status_code for r in responses] == [200] * len(responses)
    assert not any(r.json()["cached"] for r in responses)
    assert writer.batches >= 3


def test_page_and_its_files_load_nothing_from_outside(warehouse, serve):
    server = serve()

    page = get(server, "/")
    names = ("app.js", "format.js", "axes.js", "chart.js", "candles.js", "list.js", "coin.js", "app.css")
    files = [get(server, f"/static/{name}") for name in names]

    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/static/app.js"></script>' in page.text
    # Every module the page imports is one of the files served (and checked here).
    imported = {m for f in files for m in re.findall(r'^import .* from "\./([a-z]+\.js)";$', f.text, re.M)}
    assert imported and imported <= set(names)
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for response in (page, *files):
        assert response.status_code == 200
        # No CDN, no remote fonts: the only URL is SVG's namespace name, which is never fetched.
        text = response.text.replace('"http://www.w3.org/2000/svg"', "")
        assert not re.search(r"(https?:)?//[a-z]", text), response.url


def test_unknown_path_is_404_json(warehouse, serve):
    response = get(serve(), "/static/../../etc/passwd")

    assert response.status_code == 404
    assert "no such page" in response.json()["error"]


def test_start_on_a_busy_port_says_pick_another(warehouse, serve):
    busy = serve()
    port = int(busy.url.rsplit(":", 1)[1].strip("/"))

    with pytest.raises(DashboardError, match=f"127.0.0.1:{port}.*pick another port"):
        DashboardServer(warehouse.path, port=port).start()


def test_health_answers_the_local_runs_alert_verdicts(warehouse, serve, tmp_path):
    """The dashboard of a local run shows `cryptopipe status`'s verdicts (cryptopipe/health/)."""
    from core.health import ALERTS, Thresholds
    from core.layout import LocalLayout
    from cryptopipe.health.render import dashboard_alerts
    from cryptopipe.health.state import StreamWatch

    layout = LocalLayout(tmp_path)
    assert layout.warehouse == warehouse.path
    _two_coins(warehouse)  # ticks about three minutes old
    watch = StreamWatch(layout.stream_state, Thresholds(60, 60, 60))
    watch.started()
    watch.record(True, 100, 10)

    body = get(serve(alerts=lambda: dashboard_alerts(layout)), "/api/health").json()
    by_key = {verdict["alert"]: verdict for verdict in body["alerts"]}
    assert list(by_key) == [alert.key for alert in ALERTS]
    assert not by_key["data-freshness"]["ok"]  # older than 60 s
    assert not by_key["producer-down"]["ok"] and by_key["producer-down"]["value"] == "never"
    assert by_key["stream-not-running"]["ok"]
    assert not by_key["quarantine-rate"]["ok"] and by_key["quarantine-rate"]["value"] == "10.0 % of 100 lines"
    assert "alerts" not in get(serve(), "/api/health").json()  # a dashboard of a warehouse alone
