"""The replay server over real HTTP: CoinGecko's endpoints, frames, faults, request log, rate limit."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from pydantic import ValidationError

from cryptopipe.replay import MISSING, Fault, Market, ReplayServer, frame
from cryptopipe.replay.faults import RATE_LIMIT_MESSAGE
from cryptopipe.replay.market import FIELDS, ORDERS, RATES

from ..conftest import landed
from ..signals import other_threads, signal_thread, started_ignoring_ctrl_c

USD = {"vs_currency": "usd"}


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def server():
    with ReplayServer(auto_advance=False) as server:
        yield server


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=5) as client:
        yield client


def _markets(client: httpx.Client, **params) -> httpx.Response:
    return client.get("/coins/markets", params={**USD, **params})


def _healthz(server: ReplayServer) -> str:
    return server.url.removesuffix("/api/v3") + "/healthz"


# -- endpoints ---------------------------------------------------------------


def test_markets_returns_the_first_100_records_of_the_frame_by_default(client):
    response = _markets(client)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    records = response.json()
    assert records == frame(0)[:100]
    assert all(tuple(record) == FIELDS for record in records)


def test_markets_pages_through_every_coin_when_per_page_is_250(client):
    pages = [_markets(client, per_page=250, page=page).json() for page in (1, 2, 3)]
    assert [len(page) for page in pages] == [250, len(Market.bundled().ids) - 250, 0]
    assert [record["id"] for record in pages[0] + pages[1]] == [record["id"] for record in frame(0)]


@pytest.mark.parametrize("per_page", ["0", "251", "ten"])
def test_markets_rejects_per_page_outside_1_to_250(client, per_page):
    response = _markets(client, per_page=per_page)
    assert response.status_code == 400
    assert "per_page" in response.json()["error"]


@pytest.mark.parametrize("page", ["0", "-1", "first"])
def test_markets_rejects_page_below_one(client, page):
    response = _markets(client, page=page)
    assert response.status_code == 400
    assert "page" in response.json()["error"]


def test_markets_filters_by_ids_in_market_cap_order(client):
    response = _markets(client, ids="ethereum, bitcoin,not-a-coin,")
    assert [record["id"] for record in response.json()] == ["bitcoin", "ethereum"]


@pytest.mark.parametrize("order", ORDERS)
def test_markets_sorts_by_the_order_parameter(client, order):
    response = _markets(client, order=order, per_page=250)
    assert response.json() == frame(0, order=order)[:250]


def test_markets_orders_are_what_their_names_say(client):
    by_id = [record["id"] for record in _markets(client, order="id_asc", per_page=250).json()]
    assert by_id == sorted(by_id)
    volumes = [record["total_volume"] for record in _markets(client, order="volume_desc").json()]
    assert volumes == sorted(volumes, reverse=True)
    descending = frame(0)
    assert _markets(client, order="market_cap_asc", per_page=5).json() == descending[::-1][:5]


def test_markets_rejects_an_unknown_order(client):
    response = _markets(client, order="price_desc")
    assert response.status_code == 400
    assert "invalid order" in response.json()["error"]


def test_markets_converts_prices_when_vs_currency_is_eur(client):
    response = client.get("/coins/markets", params={"vs_currency": "EUR", "ids": "bitcoin"})
    assert response.json() == [frame(0, "eur")[0]]


@pytest.mark.parametrize(
    ("params", "error"),
    [({"vs_currency": "xyz"}, "invalid vs_currency"), ({}, "Missing parameter vs_currency")],
)
def test_markets_rejects_a_missing_or_unknown_vs_currency(client, params, error):
    response = client.get("/coins/markets", params=params)
    assert response.status_code == 400
    assert response.json() == {"error": error}


def test_supported_vs_currencies_lists_every_code_markets_and_charts_accept_and_only_those(client):
    codes = client.get("/simple/supported_vs_currencies").json()
    assert codes == sorted(codes) and {"usd", "eur", "btc"} <= set(codes)
    for code in (*codes, "xyz"):
        markets = client.get("/coins/markets", params={"vs_currency": code, "ids": "bitcoin"})
        chart = client.get("/coins/bitcoin/market_chart/range", params={"vs_currency": code, "from": 0, "to": 1})
        assert (markets.status_code, chart.status_code) == ((200, 200) if code in codes else (400, 400)), code


def test_markets_in_btc_keep_the_fractions_of_small_coins_caps(client):
    usd = {r["id"]: r for r in frame(0)}
    btc = {r["id"]: r for r in frame(0, "btc")}
    smallest = min((r for r in usd.values() if r["market_cap"]), key=lambda r: r["market_cap"])
    assert 0 < btc[smallest["id"]]["market_cap"] < 1e4 and btc[smallest["id"]]["market_cap"] != round(
        btc[smallest["id"]]["market_cap"])
    assert btc["bitcoin"]["current_price"] == pytest.approx(usd["bitcoin"]["current_price"] * RATES["btc"], rel=1e-5)


def test_ping_says_to_the_moon(client):
    assert client.get("/ping").json() == {"gecko_says": "(V3) To the Moon!"}


def test_a_small_answer_leaves_in_one_write_so_keep_alive_requests_wait_for_no_ack(server):
    # Headers and body written apart, the body waited for the client's delayed ACK of the
    # headers under Nagle's algorithm: about 40 ms a keep-alive request (216 a poll at
    # scale). One write puts the whole answer in the first recv.
    host, port = server.address
    with socket.create_connection((host, port), timeout=5) as connection:
        for _ in range(2):  # the second request reuses the connection, as a pooled client does
            connection.sendall(b"GET /api/v3/ping HTTP/1.1\r\nHost: x\r\n\r\n")
            first = connection.recv(65536)
            head, _, body = first.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            assert json.loads(body) == {"gecko_says": "(V3) To the Moon!"}


def test_healthz_reports_the_frame(server):
    server.frame = 4
    assert httpx.get(_healthz(server)).json() == {"status": "ok", "frame": 4}


def test_unknown_path_is_a_json_404(client):
    response = client.get("/coins/list")
    assert response.status_code == 404
    assert "error" in response.json()


def test_url_needs_a_started_server():
    with pytest.raises(RuntimeError, match="not started"):
        ReplayServer().url


# -- frames and time ---------------------------------------------------------


def test_responses_repeat_byte_for_byte_within_a_frame(client):
    assert _markets(client).content == _markets(client).content


def test_advance_moves_live_prices_but_not_thin_coins(server, client):
    before = {record["id"]: record for record in _markets(client, per_page=250, page=2).json()}
    assert server.advance() == 1
    after = {record["id"]: record for record in _markets(client, per_page=250, page=2).json()}
    thin = set(Market.bundled().frozen_ids) & set(before) & set(after)
    assert thin
    for coin_id in thin:
        assert after[coin_id]["last_updated"] == before[coin_id]["last_updated"]
    live = (set(before) & set(after)) - thin
    assert all(after[i]["last_updated"] > before[i]["last_updated"] for i in live)
    assert sum(after[i]["current_price"] != before[i]["current_price"] for i in live) > 0.9 * len(live)


def test_frame_setter_serves_exactly_that_frame(server, client):
    server.frame = 42
    assert _markets(client, per_page=250).json() == frame(42)[:250]


def test_frame_seconds_spaces_event_time():
    with ReplayServer(auto_advance=False, frame_seconds=5) as server:
        server.frame = 3
        records = httpx.get(f"{server.url}/coins/markets", params=USD).json()
    assert records == frame(3, frame_seconds=5)[:100]


def test_auto_advance_follows_the_clock():
    clock = FakeClock()
    with ReplayServer(frame_seconds=60, clock=clock) as server:
        clock.tick(59.9)
        assert server.frame == 0
        clock.tick(0.1)
        assert server.frame == 1
        assert server.advance(2) == 3  # manual steps add to the clock's
        clock.tick(120)
        response = httpx.get(f"{server.url}/coins/markets", params={**USD, "ids": "bitcoin"})
    assert server.requests[-1].frame == 5
    assert response.json() == [frame(5)[0]]


def test_rebase_makes_frame_zero_now():
    started = datetime.now(timezone.utc)
    with ReplayServer(auto_advance=False, rebase=True) as server:
        records = httpx.get(f"{server.url}/coins/markets", params={**USD, "per_page": 250, "page": 2}).json()
    frame_zero = Market.bundled().as_of + server.shift
    assert started - timedelta(milliseconds=1) <= frame_zero <= datetime.now(timezone.utc)
    assert records == frame(0, shift=server.shift)[250:]
    newest = max(datetime.fromisoformat(record["last_updated"]) for record in records)
    assert started - timedelta(minutes=1) <= newest <= datetime.now(timezone.utc)


# -- faults ------------------------------------------------------------------


@pytest.mark.parametrize("retry_after", ["2", "Wed, 21 Oct 2015 07:28:00 GMT"])
def test_status_fault_answers_429_with_coingecko_body_and_retry_after(server, client, retry_after):
    server.inject(Fault.status(429, retry_after=retry_after))
    response = _markets(client)
    assert response.status_code == 429
    assert response.headers["retry-after"] == retry_after
    assert response.json() == {"status": {"error_code": 429, "error_message": RATE_LIMIT_MESSAGE}}


def test_status_fault_without_retry_after_sends_no_header(server, client):
    server.inject(Fault.status(503))
    response = _markets(client)
    assert response.status_code == 503
    assert "retry-after" not in response.headers
    assert response.json()["status"]["error_code"] == 503


def test_delay_fault_trips_a_client_read_timeout(server, client):
    server.inject(Fault.delay(5.0))
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.get("/coins/markets", params=USD, timeout=0.2)
    assert time.monotonic() - started < 1
    assert _markets(client).status_code == 200


def test_delay_fault_answers_normally_after_the_pause(server, client):
    server.inject(Fault.delay(0.2))
    started = time.monotonic()
    response = _markets(client)
    assert time.monotonic() - started >= 0.2
    assert response.json() == frame(0)[:100]


def test_reset_fault_resets_the_connection_without_a_response(server, client):
    server.inject(Fault.reset())
    with pytest.raises(httpx.ReadError):
        _markets(client)
    assert server.requests[-1].status is None
    assert _markets(client).status_code == 200


def test_html_fault_sends_a_cdn_error_page(server, client):
    server.inject(Fault.html(502))
    response = _markets(client)
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>502 Bad Gateway</title>" in response.text


def test_truncated_json_fault_sends_half_the_body_with_status_200(server, client):
    normal = _markets(client).content
    server.inject(Fault.truncated_json())
    response = _markets(client)
    assert response.status_code == 200
    assert response.content == normal[: len(normal) // 2]
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_error_object_fault_sends_an_object_where_a_list_is_expected(server, client):
    server.inject(Fault.error_object(429))
    response = _markets(client)
    assert response.status_code == 200
    assert response.json()["status"]["error_code"] == 429


def test_empty_list_fault_sends_an_empty_list(server, client):
    server.inject(Fault.empty_list())
    response = _markets(client)
    assert (response.status_code, response.json()) == (200, [])


def _rejected_positions(records: list[dict]) -> set[int]:
    """Positions of the records the producer's schema validation rejects."""
    rejected = set()
    for position, record in enumerate(records):
        try:
            landed(record)
        except ValidationError:
            rejected.add(position)
    return rejected


def test_bad_records_fault_breaks_validation_of_exactly_the_default_positions(server, client):
    server.inject(Fault.bad_records())
    records = _markets(client, per_page=20).json()
    assert _rejected_positions(records) == {0, 1, 2, 3}
    assert "id" not in records[1]
    assert records[4:] == frame(0)[4:20]


def test_bad_records_fault_applies_given_corruptions(server, client):
    corruptions = {5: {"current_price": "1.0"}, 7: {"symbol": MISSING, "name": 7}, 99: {"id": 1}}
    server.inject(Fault.bad_records(corruptions))
    records = _markets(client, per_page=10).json()
    assert _rejected_positions(records) == {5, 7}
    assert records[5]["current_price"] == "1.0"
    assert "symbol" not in records[7]


def test_faults_are_taken_one_per_api_request_in_order(server, client):
    server.inject(Fault.status(500), Fault.empty_list())
    assert httpx.get(_healthz(server)).status_code == 200  # health checks take no fault
    assert client.get("/ping").status_code == 500
    assert server.pending_faults == (Fault.empty_list(),)
    assert _markets(client).json() == []
    assert len(_markets(client).json()) == 100
    assert server.pending_faults == ()


def test_server_stops_promptly_while_a_delayed_request_is_pending():
    server = ReplayServer(auto_advance=False).start()
    server.inject(Fault.delay(30))
    errors = []
    worker = threading.Thread(target=lambda: errors.append(_try_get(f"{server.url}/ping")))
    worker.start()
    while not server.requests:
        time.sleep(0.01)
    started = time.monotonic()
    server.stop()
    worker.join(timeout=5)
    assert time.monotonic() - started < 2
    assert not worker.is_alive()


def _try_get(url: str) -> Exception | None:
    try:
        httpx.get(url, timeout=10)
    except httpx.HTTPError as exc:
        return exc
    return None


# -- request log and rate limit ----------------------------------------------


def test_requests_log_time_path_params_headers_frame_and_status():
    clock = FakeClock()
    with ReplayServer(auto_advance=False, clock=clock) as server:
        server.advance(3)
        clock.tick(1.5)
        headers = {"x-cg-demo-api-key": "k"}
        httpx.get(f"{server.url}/coins/markets", params={**USD, "page": "2"}, headers=headers)
        httpx.get(f"{server.url}/coins/markets")
    first, second = server.requests
    assert (first.at, first.method, first.path) == (1_001.5, "GET", "/api/v3/coins/markets")
    assert (first.frame, first.status) == (3, 200)
    assert first.params == {"vs_currency": "usd", "page": "2"}
    assert first.headers["x-cg-demo-api-key"] == "k"
    assert (second.params, second.status) == ({}, 400)


def test_rate_limit_refuses_requests_over_the_budget_until_the_window_slides():
    clock = FakeClock()
    with ReplayServer(auto_advance=False, rate_limit_per_minute=3, clock=clock) as server:
        with httpx.Client(base_url=server.url) as client:
            statuses = []
            for _ in range(3):
                statuses.append(client.get("/ping").status_code)
                clock.tick(10)
            refused = client.get("/ping")
            assert refused.status_code == 429
            assert refused.headers["retry-after"] == "30"
            assert refused.json()["status"]["error_code"] == 429
            clock.tick(29)
            assert client.get("/ping").headers["retry-after"] == "1"
            clock.tick(1)
            statuses.append(client.get("/ping").status_code)
    assert statuses == [200, 200, 200, 200]
    assert [request.status for request in server.requests] == [200, 200, 200, 429, 429, 200]


def test_playing_a_plan_takes_its_documented_rate_and_credits_unless_told_otherwise():
    analyst = ReplayServer.playing("analyst", auto_advance=False)
    assert (analyst.rate_limit_per_minute, analyst.monthly_credits, analyst.plan) == (500, 500_000, "Analyst")
    custom = ReplayServer.playing("analyst", monthly_credits=10_000_000)
    assert (custom.rate_limit_per_minute, custom.monthly_credits) == (500, 10_000_000)
    assert ReplayServer.playing("none").rate_limit_per_minute is None  # keyless documents no figure


def test_rate_limited_requests_take_no_fault_and_health_checks_no_budget():
    clock = FakeClock()
    with ReplayServer(auto_advance=False, rate_limit_per_minute=1, clock=clock) as server:
        server.inject(Fault.empty_list())
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/ping").json() == []
            assert client.get("/ping").status_code == 429
            assert httpx.get(_healthz(server)).status_code == 200
    assert server.pending_faults == ()


def test_key_reports_the_accounts_credits_and_every_request_spends_one_429s_included():
    clock = FakeClock()
    pro = {"x-cg-pro-api-key": "k"}
    with ReplayServer(auto_advance=False, rate_limit_per_minute=2, monthly_credits=6, clock=clock) as server:
        with httpx.Client(base_url=server.url, headers=pro) as client:
            assert client.get("/ping").status_code == 200
            assert client.get("/ping").status_code == 200
            assert client.get("/ping").status_code == 429  # over the rate limit: billed all the same
            clock.tick(60)
            server.spend_credits(1)  # another client of the key
            usage = client.get("/key").json()  # the fourth of ours, and it counts itself
            assert usage == {"plan": "Analyst", "rate_limit_request_per_minute": 2, "monthly_call_credit": 6,
                             "current_total_monthly_calls": 5, "current_remaining_monthly_calls": 1}
            assert client.get("/ping").status_code == 200  # the last credit
            spent = client.get("/ping")  # none left: refused until the month turns
            assert spent.status_code == 429 and spent.json()["status"]["error_code"] == 429
            assert client.get("/key").status_code == 429  # /key too: whether CoinGecko exempts it is not documented
            assert httpx.get(_healthz(server)).status_code == 200  # not the API: never billed
    assert server.credits_used == 8


def test_key_needs_a_pro_key_and_an_account():
    with ReplayServer(auto_advance=False, monthly_credits=10) as server:
        assert httpx.get(f"{server.url}/key", headers={"x-cg-demo-api-key": "k"}).json()["status"]["error_code"] \
            == 10002
    with ReplayServer(auto_advance=False) as server:
        assert httpx.get(f"{server.url}/key", headers={"x-cg-pro-api-key": "k"}).status_code == 404
        assert server.credits_used == 0  # no account, nothing counted


# -- command line ------------------------------------------------------------


def test_module_runs_a_standalone_server_until_interrupted():
    process = subprocess.Popen(
        [sys.executable, "-m", "cryptopipe.replay", "--port", "0", "--frame-seconds", "5", "--coins", "600",
         "--plan", "analyst"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        banner = process.stdout.readline()
        assert "Replaying 600 coins" in banner and "500 calls a minute, 500,000 credits" in banner
        url = banner.split(" at ")[1].split()[0]
        assert httpx.get(f"{url}/ping").json() == {"gecko_says": "(V3) To the Moon!"}
        records = httpx.get(f"{url}/coins/markets", params={**USD, "ids": "bitcoin"}).json()
        age = datetime.now(timezone.utc) - datetime.fromisoformat(records[0]["last_updated"])
        assert age < timedelta(seconds=10)  # rebased to now by default
        last = httpx.get(f"{url}/coins/markets", params={**USD, "per_page": "250", "page": "3"}).json()
        assert len(last) == 100 and {r["id"] for r in last} <= set(Market.synthetic(600).ids)  # a short last page
        usage = httpx.get(f"{url}/key", headers={"x-cg-pro-api-key": "k"}).json()
        assert (usage["plan"], usage["monthly_call_credit"], usage["rate_limit_request_per_minute"]) == (
            "Analyst", 500_000, 500)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


def test_the_standalone_server_stops_on_ctrl_c_whichever_of_its_threads_the_kernel_hands_it():
    """Its main thread only waits: one long wait would never wake for a SIGINT the kernel handed to
    the serving thread (CPython runs handlers in the main thread, between bytecodes), and the
    server ran on; a suite beside another on two cores once saw it not stop in 10 s. Started
    with SIGINT ignored, as a script's background job is, it stops all the same."""
    process = subprocess.Popen([sys.executable, "-m", "cryptopipe.replay", "--port", "0"], stdout=subprocess.PIPE,
                               text=True, preexec_fn=started_ignoring_ctrl_c)
    try:
        assert "Replaying" in process.stdout.readline()
        signal_thread(process.pid, other_threads(process.pid)[-1], signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# -- market_chart/range ------------------------------------------------------


def _chart(client: httpx.Client, coin_id: str, start: datetime, end: datetime, **params) -> httpx.Response:
    bounds = {"from": str(int(start.timestamp())), "to": str(int(end.timestamp()))}
    return client.get(f"/coins/{coin_id}/market_chart/range", params={**USD, **bounds, **params})


@pytest.mark.parametrize(
    ("span", "step", "points"),
    [
        (timedelta(hours=3), timedelta(minutes=5), 37),  # within a day: 5-minutely
        (timedelta(days=30), timedelta(hours=1), 721),  # 2-90 days: hourly
        (timedelta(days=120), timedelta(days=1), 120),  # beyond: daily, at 00:00 UTC
    ],
)
def test_chart_granularity_follows_the_range_length(server, client, span, step, points):
    end = server.market.as_of  # frame 0: nothing later exists yet
    body = _chart(client, "bitcoin", end - span, end).json()
    stamps = [ms for ms, _ in body["prices"]]
    assert len(stamps) == points
    assert {b - a for a, b in zip(stamps, stamps[1:])} == {step // timedelta(milliseconds=1)}
    assert [ms for ms, _ in body["market_caps"]] == [ms for ms, _ in body["total_volumes"]] == stamps
    step_ms = step // timedelta(milliseconds=1)
    assert stamps[-1] == end.timestamp() * 1000 // step_ms * step_ms  # the last step boundary not after the end


def test_chart_points_are_the_frames_current_at_their_time_and_never_in_the_future(server, client):
    server.frame = 30  # 30 minutes after the snapshot at 60 s a frame
    start = server.market.as_of
    body = _chart(client, "bitcoin", start, start + timedelta(hours=2)).json()
    assert [ms for ms, _ in body["prices"]] == [start.timestamp() * 1000 + i * 300_000 for i in range(7)]
    for i, (_, price) in enumerate(body["prices"]):
        (record,) = [r for r in server.market.frame(5 * i) if r["id"] == "bitcoin"]
        assert price == record["current_price"]
        assert body["market_caps"][i][1] == record["market_cap"]


def test_chart_converts_the_currency_and_keeps_thin_coins_flat(server, client):
    start = server.market.as_of - timedelta(hours=1)
    usd = _chart(client, "bitcoin", start, server.market.as_of).json()["prices"]
    eur = _chart(client, "bitcoin", start, server.market.as_of, vs_currency="eur").json()["prices"]
    assert [p for _, p in eur] == [pytest.approx(p * 0.88, rel=1e-5) for _, p in usd]
    thin = server.market.frozen_ids[0]
    prices = {p for _, p in _chart(client, thin, start, server.market.as_of).json()["prices"]}
    assert len(prices) <= 1


@pytest.mark.parametrize(
    ("path", "params", "status", "error"),
    [
        ("/coins/no-such-coin/market_chart/range", {**USD, "from": "0", "to": "1"}, 404, "coin not found"),
        ("/coins/bitcoin/market_chart/range", {"from": "0", "to": "1"}, 400, "Missing parameter vs_currency"),
        ("/coins/bitcoin/market_chart/range", {**USD, "to": "1"}, 400, "Missing or invalid parameter from"),
        ("/coins/bitcoin/market_chart/range", {**USD, "from": "0", "to": "soon"}, 400, "invalid parameter to"),
    ],
)
def test_chart_refuses_unknown_coins_and_bad_parameters(client, path, params, status, error):
    response = client.get(path, params=params)
    assert response.status_code == status
    assert error in response.json()["error"]


def test_chart_takes_injected_faults_like_every_api_path(server, client):
    server.inject(Fault.status(429, retry_after="3"), Fault.html(502), Fault.truncated_json())
    end = server.market.as_of
    first, second, third = (_chart(client, "bitcoin", end - timedelta(hours=1), end) for _ in range(3))
    assert (first.status_code, first.headers["retry-after"]) == (429, "3")
    assert second.status_code == 502 and "html" in second.headers["content-type"]
    assert third.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        third.json()
    assert _chart(client, "bitcoin", end - timedelta(hours=1), end).json()["prices"]
