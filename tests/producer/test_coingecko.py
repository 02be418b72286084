"""CoinGeckoClient over real HTTP against the replay server: paging, keys, faults, Retry-After."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from cryptopipe.replay import Fault
from producer import CoinGeckoClient, parse_retry_after

NO_STOP = threading.Event()

FAULTS = {
    "429": Fault.status(429),
    "429-retry-after": Fault.status(429, retry_after="0"),
    "500": Fault.status(500),
    "503": Fault.status(503),
    "html-502": Fault.html(502),
    "html-200": Fault.html(200),
    "truncated-json": Fault.truncated_json(),
    "error-object": Fault.error_object(500),
    "error-object-429": Fault.error_object(429),
    "empty-list": Fault.empty_list(),
    "reset": Fault.reset(),
    "read-timeout": Fault.delay(1.5),  # read_timeout_seconds is 0.5
}


def fetch_first_page(client: CoinGeckoClient, deadline_seconds: float = 10.0):
    request = client.page_requests("usd")[0]
    return client.fetch_page(request, deadline=time.monotonic() + deadline_seconds, stop=NO_STOP)


def test_page_requests_cover_top_n_in_pages_of_250(make_config):
    with CoinGeckoClient(make_config(top_n=600, requests_per_minute=6000)) as client:
        requests = client.page_requests("usd")
    assert [(r.params["page"], r.params["per_page"], r.limit) for r in requests] == [
        ("1", "250", 250),
        ("2", "250", 250),
        ("3", "250", 100),
    ]


def test_page_requests_ask_for_fewer_when_top_n_is_below_250(make_config):
    with CoinGeckoClient(make_config(top_n=20)) as client:
        [request] = client.page_requests("usd")
    assert (request.params["per_page"], request.limit) == ("20", 20)


def test_page_requests_chunk_ids_by_250_when_coin_ids_are_set(make_config):
    ids = tuple(f"coin-{i}" for i in range(300))
    with CoinGeckoClient(make_config(coin_ids=ids)) as client:
        requests = client.page_requests("usd")
    assert [r.params["ids"].split(",") for r in requests] == [list(ids[:250]), list(ids[250:])]


def test_fetch_page_returns_the_replayed_records_when_api_is_healthy(make_config, replay):
    with CoinGeckoClient(make_config(coin_ids=("bitcoin", "ethereum"))) as client:
        page = fetch_first_page(client)
    assert [r["id"] for r in page.records] == ["bitcoin", "ethereum"]
    assert page.records == [r for r in replay.market.frame(0) if r["id"] in ("bitcoin", "ethereum")]
    assert (page.attempts, page.error) == (1, None)
    [request] = replay.requests
    assert request.params == {
        "vs_currency": "usd",
        "order": "market_cap_desc",
        "ids": "bitcoin,ethereum",
        "per_page": "250",
        "page": "1",
    }


@pytest.mark.parametrize(("plan", "header"), [
    ("demo", "x-cg-demo-api-key"), ("basic", "x-cg-pro-api-key"), ("enterprise", "x-cg-pro-api-key"),
    ("pro", "x-cg-pro-api-key"),
])  # fmt: skip
def test_fetch_page_sends_key_in_the_plan_header_when_plan_has_key(make_config, replay, plan, header):
    # The fast test interval would spend any plan's credits in days: these credits last the month.
    config = make_config(api_plan=plan, api_key="CG-test-key", top_n=5, monthly_credits=10**7)
    with CoinGeckoClient(config) as client:
        fetch_first_page(client)
    headers = replay.requests[0].headers
    assert headers[header] == "CG-test-key"
    assert not {"x-cg-demo-api-key", "x-cg-pro-api-key"} - {header} & set(headers)


def test_fetch_page_sends_no_key_header_when_keyless(make_config, replay):
    with CoinGeckoClient(make_config(top_n=5)) as client:
        fetch_first_page(client)
    assert not {"x-cg-demo-api-key", "x-cg-pro-api-key"} & set(replay.requests[0].headers)


@pytest.mark.parametrize("fault", FAULTS.values(), ids=FAULTS.keys())
def test_fetch_page_retries_until_success_when_an_attempt_faults(make_config, replay, fault):
    replay.inject(fault, fault)
    with CoinGeckoClient(make_config(top_n=250)) as client:
        page = fetch_first_page(client)
    assert page.error is None
    assert page.attempts == 3
    assert page.records == replay.market.frame(0)[:250]


def test_fetch_page_returns_error_without_raising_when_every_attempt_fails(make_config, replay):
    replay.inject(Fault.status(500), Fault.reset(), Fault.html(503), Fault.truncated_json())
    with CoinGeckoClient(make_config(top_n=5, max_attempts=4)) as client:
        page = fetch_first_page(client)
    assert page.records is None
    assert page.attempts == 4
    assert "BadPayload" in page.error and "not JSON" in page.error
    assert len(replay.requests) == 4


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_fetch_page_does_not_retry_when_api_rejects_the_request(make_config, replay, status):
    replay.inject(Fault.status(status))
    with CoinGeckoClient(make_config(top_n=5)) as client:
        page = fetch_first_page(client)
    assert page.records is None and page.attempts == 1
    assert f"HTTP {status}" in page.error and "check" in page.error


def test_fetch_page_waits_retry_after_seconds_when_rate_limited(make_config, replay):
    replay.inject(Fault.status(429, retry_after="1"))
    with CoinGeckoClient(make_config(top_n=5)) as client:
        page = fetch_first_page(client)
    assert page.error is None
    first, second = replay.requests
    assert second.at - first.at >= 1.0


def test_fetch_page_waits_retry_after_date_when_rate_limited(make_config, replay):
    # An HTTP date has whole seconds: 3 s ahead leaves more than 1 s of waiting, even on a loaded machine.
    moment = datetime.now(timezone.utc) + timedelta(seconds=3)
    replay.inject(Fault.status(503, retry_after=format_datetime(moment, usegmt=True)))
    with CoinGeckoClient(make_config(top_n=5)) as client:
        page = fetch_first_page(client)
    assert page.error is None
    first, second = replay.requests
    assert second.at - first.at >= 1.0


def test_fetch_page_gives_up_at_once_when_retry_after_passes_the_deadline(make_config, replay):
    replay.inject(Fault.status(429, retry_after="3600"))
    with CoinGeckoClient(make_config(top_n=5)) as client:
        page = fetch_first_page(client, deadline_seconds=5)
        assert page.records is None and page.attempts == 1
        assert "Retry-After 3600" in page.error
        # The next poll does not knock either: the budget holds every request back.
        assert fetch_first_page(client, deadline_seconds=5).attempts == 0
    assert len(replay.requests) == 1


def test_fetch_page_stops_retrying_when_stop_is_set(make_config, replay):
    """Stop comes once the first attempt has reached CoinGecko (a condition, not a timer: under
    load a 0.3 s timer could fire before the first attempt started, which then never starts)."""
    replay.inject(*[Fault.status(500)] * 4)
    stop = threading.Event()

    def stop_once_asked() -> None:
        deadline = time.monotonic() + 30
        while not replay.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()

    with CoinGeckoClient(make_config(top_n=5, backoff_base_seconds=30, backoff_cap_seconds=30)) as client:
        request = client.page_requests("usd")[0]
        threading.Thread(target=stop_once_asked, daemon=True).start()
        page = client.fetch_page(request, deadline=time.monotonic() + 100, stop=stop)
    assert page.records is None and page.attempts == 1  # the 30 s back-off ended at stop; no retry


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7.0),
        ("0", 0.0),
        ("Wed, 21 Oct 2015 07:29:00 GMT", 120.0),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0.0),
        ("soon", None),
        (None, None),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(header, expected):
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=timezone.utc)
    assert parse_retry_after(header, now) == expected
