"""The CoinGecko client: ``/coins/markets`` pages and ``market_chart/range`` history; keys, budget, retries.

Every request, retries included, first takes a slot from the :class:`RequestBudget`
and is counted as a credit spent (:class:`producer.credits.Credits`).
Every fault of one request (timeout, reset, 408/429/5xx, a body that is not a list
of coins) is a failed attempt, retried by tenacity with full-jitter exponential
backoff up to a cap, or after the server's ``Retry-After`` (seconds or an HTTP
date), which also holds back every later request through the budget. A retry that
would land after the poll's deadline is not made. :meth:`CoinGeckoClient.fetch_page`
never raises for any of this: it returns a :class:`PageResult` saying what happened.

The network sits behind httpx's transport, so tests can inject one; the replay
server in ``cryptopipe.replay`` plays CoinGecko (and its faults) on loopback.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_any
from tenacity.wait import wait_random_exponential

from core.coingecko_plans import ALL, MAX_PER_PAGE, pages_for
from producer.budget import RequestBudget
from producer.config import ProducerConfig
from producer.credits import AccountUsage, Credits, parse_usage
from producer.errors import ApiRejected, ApiUnavailable, GaveUp, ProducerError, RateLimited, RetryableError
from producer.logs import log_event
from producer.validate import ChartPoint, parse_chart, parse_listing_page, parse_page

log = logging.getLogger(__name__)

MARKETS_PATH = "/coins/markets"
CHART_PATH = "/coins/{coin_id}/market_chart/range"
#: The account's usage, on the pro host (https://docs.coingecko.com/reference/api-usage).
USAGE_PATH = "/key"
_HINTS = {
    401: "check api_key and api_plan (demo keys go to api.coingecko.com, pro keys to pro-api.coingecko.com)",
    403: "check api_key and api_plan (demo keys go to api.coingecko.com, pro keys to pro-api.coingecko.com)",
    404: "check base_url: it should end in /api/v3",
    400: "check vs_currencies (GET /simple/supported_vs_currencies lists CoinGecko's) and coin_ids",
}
_CHART_HINTS = {
    404: "no such coin: check the coin id against /coins/markets",
    400: "check vs_currencies (GET /simple/supported_vs_currencies lists CoinGecko's) and the range",
}


@dataclass(frozen=True)
class PageRequest:
    """One request of a poll."""

    params: dict[str, str]
    """Its query parameters."""
    limit: int
    """How many of the returned records the poll wants (the last page of a top N
    that is not a multiple of 250 asks for 250 and keeps fewer)."""

    @property
    def listing_page(self) -> int | None:
        """Its page of the market-cap listing; None for a request by ids."""
        return None if "ids" in self.params else int(self.params["page"])

    @property
    def may_be_past_the_end(self) -> bool:
        """A page after the first of the listing: ``[]`` means the listing ended before it,
        not a fault (page 1 always has coins; a request by ids that gets ``[]`` names none
        CoinGecko knows)."""
        return (self.listing_page or 1) > 1

    @property
    def label(self) -> str:
        """Short name for logs: ``usd page 2``, ``eur ids bitcoin,ethereum``."""
        which = f"page {self.params['page']}" if "ids" not in self.params else f"ids {self.params['ids'][:40]}"
        return f"{self.params['vs_currency']} {which}"


@dataclass(frozen=True)
class ChartResult:
    """What fetching one coin's market chart came to."""

    coin_id: str
    points: list[ChartPoint] | None
    """The points in time order, or None when every attempt failed."""
    received_at: datetime | None
    """When the successful response arrived (UTC): the points' ``ingested_at``."""
    attempts: int
    error: str | None
    """The last failure when ``points`` is None."""


@dataclass(frozen=True)
class _Call:
    value: Any
    attempts: int
    error: str | None


@dataclass(frozen=True)
class PageResult:
    """What fetching one page came to."""

    request: PageRequest
    records: list[Any] | None
    """The raw records (at most ``request.limit``), or None when every attempt failed."""
    received_at: datetime | None
    """When the successful response arrived (UTC): the records' ``ingested_at``."""
    attempts: int
    """Requests sent for this page."""
    latency_seconds: float
    """Duration of the successful request; 0 when none succeeded."""
    error: str | None
    """The last failure when ``records`` is None."""
    listing_ended: bool = False
    """A page of the listing that came back short (fewer than ``per_page``, ``[]`` included):
    no coin comes after it, so later pages are not asked for."""


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date.

    >>> parse_retry_after("30")
    30.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", datetime(2015, 10, 21, 7, 27, 0, tzinfo=timezone.utc))
    60.0
    """
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None  # unreadable: fall back to backoff
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        seconds = (moment - (now or datetime.now(timezone.utc))).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


class CoinGeckoClient:
    """Fetches ``/coins/markets`` pages for one config.

    Usage::

        with CoinGeckoClient(config) as client:
            for request in client.page_requests("usd"):
                page = client.fetch_page(request, deadline=time.monotonic() + 45, stop=threading.Event())

    ``budget`` defaults to ``config.requests_per_minute`` per 60 s; ``transport`` to
    real HTTP; ``credits`` to the config's ledger on the wall clock. Deadlines are read
    on the budget's clock (``time.monotonic`` unless a test injects a budget with its
    own), so requests and their budget agree on the time.
    """

    def __init__(
        self,
        config: ProducerConfig,
        *,
        budget: RequestBudget | None = None,
        transport: httpx.BaseTransport | None = None,
        credits: Credits | None = None,
    ) -> None:
        self._config = config
        self.budget = budget or RequestBudget(config.requests_per_minute, 60.0)
        self.clock = self.budget.clock
        self.credits = credits or Credits(config)
        headers = {"accept": "application/json", "user-agent": "cryptopipe-producer"}
        if config.plan.key_header:
            headers[config.plan.key_header] = config.api_key
        self._http = httpx.Client(base_url=config.base_url, headers=headers, transport=transport)
        self._backoff = wait_random_exponential(multiplier=config.backoff_base_seconds, max=config.backoff_cap_seconds)

    def __enter__(self) -> CoinGeckoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def page_requests(self, vs_currency: str) -> list[PageRequest]:
        """Every request one poll makes at most in ``vs_currency`` (a poll makes them for each of its currencies).

        Top N: ``ceil(N / 250)`` pages of 250 by market cap (one smaller page when N
        is below 250; ``all``: the pages of its bound, core/coingecko_plans.py);
        explicit ids: one request per 250 ids, which keeps URLs short.
        """
        cfg = self._config
        common = {"vs_currency": vs_currency, "order": "market_cap_desc"}
        if cfg.coin_ids:
            chunks = [cfg.coin_ids[i : i + MAX_PER_PAGE] for i in range(0, len(cfg.coin_ids), MAX_PER_PAGE)]
            return [
                PageRequest({**common, "ids": ",".join(chunk), "per_page": str(MAX_PER_PAGE), "page": "1"}, len(chunk))
                for chunk in chunks
            ]
        if cfg.top_n == ALL:
            return [PageRequest({**common, "per_page": str(MAX_PER_PAGE), "page": str(page)}, MAX_PER_PAGE)
                    for page in range(1, pages_for(ALL) + 1)]
        per_page = min(cfg.top_n, MAX_PER_PAGE)
        pages = math.ceil(cfg.top_n / per_page)
        return [
            PageRequest(
                {**common, "per_page": str(per_page), "page": str(page)},
                min(per_page, cfg.top_n - (page - 1) * per_page),
            )
            for page in range(1, pages + 1)
        ]

    def fetch_listing(self, vs_currency: str, *, deadline: float, stop: threading.Event) -> Iterator[PageResult]:
        """Fetch the poll's pages in ``vs_currency`` in order (:meth:`fetch_page` each), ending after a page of the
        listing that comes back short: the listing ended there (CoinGecko lists coins without a
        market cap last, and its count changes), so a top N above it, or ``all``, asks no
        further page. A failed page does not end it: the next is asked for.

        With ``top_n = "all"``, a last page that still came back full means the listing goes
        on past the bound: logged (``listing_beyond_all``), the poll keeps what it has.
        """
        last: PageResult | None = None
        for request in self.page_requests(vs_currency):
            last = self.fetch_page(request, deadline=deadline, stop=stop)
            yield last
            if last.listing_ended:
                return
        if self._config.top_n == ALL and not self._config.coin_ids and last is not None and last.records:
            log_event(log, logging.WARNING, "listing_beyond_all", pages=last.request.listing_page,
                      hint="CoinGecko lists more coins than top_n='all' plans for: set TOP_N to a number above them")

    def fetch_page(self, request: PageRequest, *, deadline: float, stop: threading.Event) -> PageResult:
        """Fetch one page with retries; never raises for a fault of the API.

        ``deadline`` is a value of :attr:`clock`: no attempt starts or waits past
        it. Once ``stop`` is set waits end at once and nothing is retried: a page not
        yet tried gets one attempt if a request slot is free right away.
        """
        parse = parse_listing_page if request.may_be_past_the_end else parse_page
        call = self._with_retries(
            request.label, lambda: self._request(request.params, deadline, parse=parse), deadline=deadline, stop=stop
        )
        if call.error is not None:
            return PageResult(request, None, None, call.attempts, 0.0, call.error)
        records, latency, received_at = call.value
        ended = request.listing_page is not None and len(records) < int(request.params["per_page"])
        return PageResult(request, records[: request.limit], received_at, call.attempts, latency, None, ended)

    def fetch_chart(
        self,
        coin_id: str,
        vs_currency: str,
        start: datetime,
        end: datetime,
        *,
        deadline: float,
        stop: threading.Event,
        budget: RequestBudget | None = None,
    ) -> ChartResult:
        """``/coins/{coin_id}/market_chart/range`` in ``vs_currency`` from ``start`` to ``end``, with the
        retries, waits and budget of :meth:`fetch_page`; never raises for a fault of the API.

        ``budget``, when given, is taken before this client's own: the back-fill's
        share, so live polls keep theirs (docs/PRODUCER.md "Back-fill").
        """
        params = {
            "vs_currency": vs_currency,
            "from": str(int(start.timestamp())),
            "to": str(math.ceil(end.timestamp())),  # whole seconds that include ``end``
        }
        path = CHART_PATH.format(coin_id=coin_id)
        label = f"chart {coin_id} {vs_currency}"
        call = self._with_retries(
            label,
            lambda: self._request(params, deadline, path=path, parse=parse_chart, hints=_CHART_HINTS),
            deadline=deadline,
            stop=stop,
            budget=budget,
        )
        if call.error is not None:
            return ChartResult(coin_id, None, None, call.attempts, call.error)
        points, _latency, received_at = call.value
        return ChartResult(coin_id, points, received_at, call.attempts, None)

    def fetch_usage(self, *, deadline: float, stop: threading.Event) -> tuple[AccountUsage | None, str | None]:
        """The account's credits from ``GET /key`` (paid plans), with the retries of
        :meth:`fetch_page`: (the usage, None), or (None, the last failure)."""
        call = self._with_retries(
            "usage", lambda: self._request({}, deadline, path=USAGE_PATH, parse=parse_usage), deadline=deadline,
            stop=stop,
        )
        return (None, call.error) if call.error is not None else (call.value[0], None)

    def _with_retries(
        self,
        label: str,
        send: Callable[[], Any],
        *,
        deadline: float,
        stop: threading.Event,
        budget: RequestBudget | None = None,
    ) -> _Call:
        """Run ``send`` under the budget(s), retrying retryable errors (see :meth:`fetch_page`)."""
        attempts = 0

        def attempt() -> Any:
            nonlocal attempts
            if attempts and stop.is_set():
                raise GaveUp("shutting down: no more retries")
            with contextlib.ExitStack() as slots:
                if budget is not None:
                    slots.enter_context(budget.slot(deadline=deadline, stop=stop))
                slots.enter_context(self.budget.slot(deadline=deadline, stop=stop))
                attempts += 1
                self._spend_credit()
                return send()

        retrying = Retrying(
            retry=retry_if_exception_type(RetryableError),
            wait=self._wait,
            stop=stop_any(
                stop_after_attempt(self._config.max_attempts),
                lambda state: stop.is_set() or self.clock() + state.upcoming_sleep > deadline,
            ),
            sleep=stop.wait,
            before_sleep=lambda state: self._log_retry(label, state),
            reraise=True,
        )
        try:
            return _Call(retrying(attempt), attempts, None)
        except ProducerError as exc:
            return _Call(None, attempts, f"{type(exc).__name__}: {exc}")

    def _spend_credit(self) -> None:
        """Count the attempt about to be sent; a ledger that cannot be written is logged, never fatal
        (the next reconcile with the account's count mends it)."""
        try:
            self.credits.record()
        except (OSError, ValueError, TypeError) as exc:
            log_event(log, logging.WARNING, "credits_ledger_failed", path=str(self.credits.ledger.path),
                      error=f"{type(exc).__name__}: {exc}")

    def _request(
        self,
        params: dict[str, str],
        deadline: float,
        *,
        path: str = MARKETS_PATH,
        parse: Callable[[bytes], Any] = parse_page,
        hints: Mapping[int, str] | None = None,
    ) -> tuple[Any, float, datetime]:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise GaveUp("the poll's deadline passed")
        cfg = self._config
        connect = min(cfg.connect_timeout_seconds, remaining)
        read = min(cfg.read_timeout_seconds, remaining)
        started = time.monotonic()  # latency is real time, whatever the clock of deadlines
        try:
            response = self._http.get(
                path, params=params, timeout=httpx.Timeout(read, connect=connect, pool=connect)
            )
        except httpx.TimeoutException as exc:
            raise ApiUnavailable(f"{type(exc).__name__} after {time.monotonic() - started:.1f} s") from exc
        except httpx.HTTPError as exc:  # resets, refused connections, broken chunked bodies
            raise ApiUnavailable(f"{type(exc).__name__}: {exc}") from exc
        latency = time.monotonic() - started
        received_at = datetime.now(timezone.utc)
        status = response.status_code
        if status == 429 or status == 408 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                self.budget.block_until(self.clock() + retry_after)
            kind = RateLimited if status == 429 else ApiUnavailable
            raise kind(f"HTTP {status}{_retry_after_note(retry_after)}", retry_after=retry_after)
        if not 200 <= status < 300:
            hint = {**_HINTS, **(hints or {})}.get(
                status, "check base_url" if status < 400 else "the request itself was refused"
            )
            raise ApiRejected(f"HTTP {status} for {response.url}: {response.text[:200]!r}; {hint}")
        return parse(response.content), latency, received_at

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        return retry_after if retry_after is not None else self._backoff(state)

    def _log_retry(self, label: str, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        log_event(
            log,
            logging.WARNING,
            "api_attempt_failed",
            request=label,
            attempt=state.attempt_number,
            error=f"{type(error).__name__}: {error}",
            retry_in_seconds=round(state.upcoming_sleep, 3),
        )


def _retry_after_note(retry_after: float | None) -> str:
    return "" if retry_after is None else f", Retry-After {retry_after:g} s"
