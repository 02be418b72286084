"""A CoinGecko-compatible HTTP server on loopback that replays the bundled market.

It stands in for ``api.coingecko.com`` in local runs and tests: the same paths,
parameters, record shape and error bodies, with market data that moves
deterministically (:mod:`cryptopipe.replay.market`), scripted faults
(:mod:`cryptopipe.replay.faults`), an optional per-minute rate limit and a log of
every request.

Usage::

    with ReplayServer(auto_advance=False) as server:
        httpx.get(f"{server.url}/coins/markets", params={"vs_currency": "usd"})
        server.advance()                       # the next frame: prices move
        server.inject(Fault.status(429, retry_after="2"), Fault.reset())
        assert server.requests[0].params == {"vs_currency": "usd"}

Endpoints (JSON; anything else is a 404 with a JSON error):

- ``GET /api/v3/coins/markets``: ``vs_currency`` (required), ``order``, ``per_page``
  (1-250, default 100), ``page`` (from 1; past the end gives ``[]``), ``ids``
  (comma-separated). Other CoinGecko parameters are accepted and ignored.
- ``GET /api/v3/coins/{id}/market_chart/range``: ``vs_currency``, ``from`` and ``to``
  (unix seconds, required): ``{"prices": [[ms, value], ...], "market_caps": [...],
  "total_volumes": [...]}`` at CoinGecko's granularity (:meth:`Market.chart`), never
  past the current frame's time; an unknown id is a 404 like CoinGecko's.
- ``GET /api/v3/key`` (with ``monthly_credits``): the account's usage as the pro API's
  ``/key`` answers it (https://docs.coingecko.com/reference/api-usage): ``plan``,
  ``rate_limit_request_per_minute``, ``monthly_call_credit``,
  ``current_total_monthly_calls``, ``current_remaining_monthly_calls``; a 401 without an
  ``x-cg-pro-api-key`` header (only paid keys may ask), a 404 when the replay plays no account.
- ``GET /api/v3/simple/supported_vs_currencies``: the quote currencies the replay converts
  to (:data:`~cryptopipe.replay.market.RATES`), as CoinGecko lists its own
  (https://docs.coingecko.com/reference/simple-supported-currencies); any other
  ``vs_currency`` is a 400 ``{"error": "invalid vs_currency"}``, as CoinGecko answers it.
- ``GET /api/v3/ping``: ``{"gecko_says": "(V3) To the Moon!"}``.
- ``GET /healthz``: ``{"status": "ok", "frame": k}``; never faulted nor rate limited.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from core.coingecko_plans import PLANS

from ..httpserve import LOOPBACK, BackgroundServer
from .faults import Fault, Reply, error_object
from .market import ORDERS, RATES, Market
from .ratelimit import SlidingWindow

logger = logging.getLogger(__name__)

API_PREFIX: Final = "/api/v3"
MAX_PER_PAGE: Final = 250
DEFAULT_PER_PAGE: Final = 100


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it."""

    at: float
    """Arrival time on the server's clock (``time.monotonic`` unless one was injected)."""
    method: str
    path: str
    params: dict[str, str]
    """Query parameters; a repeated parameter keeps its last value."""
    headers: dict[str, str]
    """Request headers, names in lower case."""
    frame: int
    """The frame current when the request arrived."""
    status: int | None
    """The status answered; None while the answer is pending or when the connection was reset."""


def _error(status: int, message: str) -> Reply:
    return Reply.json(status, {"error": message})


def _int_param(params: Mapping[str, str], name: str, default: int) -> int | None:
    try:
        return int(params.get(name, default))
    except ValueError:
        return None


class ReplayServer(BackgroundServer):
    """Serves the bundled market over HTTP on a background thread.

    - ``host``, ``port``: where to listen; port 0 (the default) picks a free port.
    - ``frame_seconds``: event time between frames, and, with ``auto_advance``, real
      time between them too. Within a frame every answer is identical, like
      CoinGecko's cache: consecutive polls repeat rows with the same ``last_updated``.
    - ``auto_advance``: the frame is ``int((clock() - started) // frame_seconds)``
      plus whatever :meth:`advance` added. Off, the frame moves only by
      :meth:`advance` or by setting :attr:`frame`: what deterministic tests want.
    - ``rebase``: shift every timestamp so frame 0 is the wall-clock time at
      :meth:`start` (to the millisecond), for live local runs; off, the snapshot's
      fixed epoch is kept, so tests can compute exact records with
      ``market.frame(k, frame_seconds=...)``.
    - ``rate_limit_per_minute``: answer 429 with ``Retry-After`` to the request that
      would exceed this many ``/api/v3`` requests in a sliding 60 s window; None
      for no limit. The budget is shared by all clients.
    - ``monthly_credits``: play an account with this many call credits: every
      ``/api/v3`` request spends one, whatever its answer (a 429, a fault, ``/key``
      itself: the strict reading of CoinGecko's "each request counts as a call"), and
      once they are spent every request, ``/key`` included, is answered 429 until
      :attr:`credits_used` is set back. :meth:`spend_credits` plays another client on the same key. None: no
      account, no ``/key``.
    - ``plan``: the plan name ``/key`` reports.
    - ``clock``: monotonic seconds, for frames, the rate limit and the request log;
      tests inject a fake one.
    - ``market``: the data to serve; the bundled market by default.

    :attr:`shift` is what was added to every timestamp served (zero unless
    rebasing), so ``market.frame(k, frame_seconds=..., shift=server.shift)`` is
    exactly what the server sends at frame ``k``.
    """

    thread_name = "replay-server"
    poll_interval = 0.05

    def __init__(
        self,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        frame_seconds: float = 60.0,
        auto_advance: bool = True,
        rebase: bool = False,
        rate_limit_per_minute: int | None = None,
        monthly_credits: int | None = None,
        plan: str = "Analyst",
        clock: Callable[[], float] = time.monotonic,
        market: Market | None = None,
    ) -> None:
        if frame_seconds < 0.001:
            raise ValueError(f"frame_seconds must be at least 0.001, got {frame_seconds}")
        super().__init__(host=host, port=port)
        self.market = market or Market.bundled()
        self.frame_seconds = frame_seconds
        self.auto_advance = auto_advance
        self.rebase = rebase
        self.shift = timedelta(0)
        self._clock = clock
        self._limiter = None if rate_limit_per_minute is None else SlidingWindow(rate_limit_per_minute)
        self.rate_limit_per_minute = rate_limit_per_minute
        self.monthly_credits = monthly_credits
        self.plan = plan
        self.credits_used = 0  # credits spent this month, by every client of the key; settable
        self._lock = threading.Lock()
        self._offset = 0
        self._started_at: float | None = None
        self._faults: deque[Fault] = deque()
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()

    @classmethod
    def playing(cls, plan: str, **settings: Any) -> ReplayServer:
        """A replay at the documented rate limit and monthly credits of CoinGecko plan ``plan``
        (``core/coingecko_plans.py``; a figure the plan does not document is no limit);
        ``settings`` as for the constructor, winning over the plan's."""
        figures = PLANS[plan]
        return cls(**{"rate_limit_per_minute": figures.calls_per_minute, "monthly_credits": figures.monthly_credits,
                      "plan": plan.title(), **settings})

    # -- lifecycle -----------------------------------------------------------

    def _bind(self, address: tuple[str, int]) -> _HTTPServer:
        return _HTTPServer(address, self)

    def _serving(self) -> None:
        self._stopping.clear()
        with self._lock:
            self._started_at = self._clock()
        if self.rebase:
            now = datetime.now(timezone.utc)
            self.shift = now.replace(microsecond=now.microsecond // 1000 * 1000) - self.market.as_of
        logger.info("replay server listening on %s", self.url)

    def _unblock(self, httpd: _HTTPServer) -> None:
        """Wake pending delays and cut open (keep-alive) connections, so every handler thread ends."""
        self._stopping.set()
        httpd.close_connections()

    @property
    def url(self) -> str:
        """The API base, e.g. ``http://127.0.0.1:PORT/api/v3``."""
        if not self.started:
            raise RuntimeError("the replay server is not started: call start() or use it in a with block")
        host, port = self.address
        return f"http://{host}:{port}{API_PREFIX}"

    # -- frames --------------------------------------------------------------

    def _elapsed_frames(self, now: float) -> int:
        if not self.auto_advance or self._started_at is None:
            return 0
        return int((now - self._started_at) // self.frame_seconds)

    @property
    def frame(self) -> int:
        """The frame served now; settable (to any frame >= 0) in either mode."""
        with self._lock:
            return self._offset + self._elapsed_frames(self._clock())

    @frame.setter
    def frame(self, value: int) -> None:
        if value < 0:
            raise ValueError(f"frame must be >= 0, got {value}")
        with self._lock:
            self._offset = value - self._elapsed_frames(self._clock())

    def advance(self, n: int = 1) -> int:
        """Move ``n`` frames ahead (on top of any auto-advance); returns the new frame."""
        if n < 0:
            raise ValueError(f"frames only move forward; got n={n}")
        with self._lock:
            self._offset += n
            return self._offset + self._elapsed_frames(self._clock())

    # -- faults and the request log -------------------------------------------

    def inject(self, *faults: Fault) -> None:
        """Queue faults; each following ``/api/v3`` request takes the next one."""
        with self._lock:
            self._faults.extend(faults)

    @property
    def pending_faults(self) -> tuple[Fault, ...]:
        """Injected faults no request has taken yet."""
        with self._lock:
            return tuple(self._faults)

    def spend_credits(self, calls: int) -> None:
        """Spend ``calls`` credits as another client of the same key would."""
        with self._lock:
            self.credits_used += calls

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in arrival order (a copy)."""
        with self._lock:
            return list(self._requests)

    # -- answering -----------------------------------------------------------

    def _handle(self, method: str, target: str, headers: Mapping[str, str]) -> Reply | None:
        """Answer one request: the reply to send, or None to reset the connection.

        Order: log the request; for ``/api/v3`` paths, refuse it if over the rate
        limit (a refused request takes no fault), else take the next fault; then
        compute the normal answer and let the fault replace it.
        """
        url = urlsplit(target)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        is_api = url.path.startswith(API_PREFIX + "/")
        with self._lock:
            now = self._clock()
            frame = self._offset + self._elapsed_frames(now)
            record = RecordedRequest(now, method, url.path, params, dict(headers), frame, None)
            index = len(self._requests)
            self._requests.append(record)
            wait = self._limiter.admit(now) if is_api and self._limiter is not None else None
            spent = is_api and self.monthly_credits is not None and self.credits_used >= self.monthly_credits
            if is_api and self.monthly_credits is not None:
                self.credits_used += 1
            usage = self._usage()
            fault = self._faults.popleft() if is_api and wait is None and not spent and self._faults else None
        reply: Reply | None
        if wait is not None:
            reply = Reply.json(429, error_object(429), {"Retry-After": str(max(1, math.ceil(wait)))})
        elif spent:
            reply = Reply.json(429, error_object(429))
        elif url.path == f"{API_PREFIX}/key":
            reply = self._key(headers, usage)
        else:
            reply = self._route(url.path, params, frame)
            if fault is not None:
                reply = fault.apply(reply, self._stopping.wait)
        with self._lock:
            self._requests[index] = replace(record, status=None if reply is None else reply.status)
        return reply

    def _usage(self) -> dict[str, Any] | None:
        """``/key``'s answer now (under the lock); None without an account."""
        if self.monthly_credits is None:
            return None
        usage = {
            "plan": self.plan,
            "monthly_call_credit": self.monthly_credits,
            "current_total_monthly_calls": self.credits_used,
            "current_remaining_monthly_calls": max(self.monthly_credits - self.credits_used, 0),
        }
        if self.rate_limit_per_minute is not None:  # CoinGecko always says; a replay without a limit cannot
            usage["rate_limit_request_per_minute"] = self.rate_limit_per_minute
        return usage

    @staticmethod
    def _key(headers: Mapping[str, str], usage: dict[str, Any] | None) -> Reply:
        if usage is None:
            return _error(404, "the replay plays no account: start it with monthly_credits")
        if not headers.get("x-cg-pro-api-key"):
            return Reply.json(401, {"status": {"error_code": 10002, "error_message": "API key missing: the "
                                               "usage endpoint needs a pro key in x-cg-pro-api-key"}})
        return Reply.json(200, usage)

    def _route(self, path: str, params: Mapping[str, str], frame: int) -> Reply:
        if path == "/healthz":
            return Reply.json(200, {"status": "ok", "frame": frame})
        if path == f"{API_PREFIX}/ping":
            return Reply.json(200, {"gecko_says": "(V3) To the Moon!"})
        if path == f"{API_PREFIX}/simple/supported_vs_currencies":
            return Reply.json(200, sorted(RATES))
        if path == f"{API_PREFIX}/coins/markets":
            return self._markets(params, frame)
        chart = _CHART_PATH.fullmatch(path)
        if chart:
            return self._chart(chart["id"], params, frame)
        return _error(404, "Incorrect path. Please check https://www.coingecko.com/api/")

    def _markets(self, params: Mapping[str, str], frame: int) -> Reply:
        vs_currency = params.get("vs_currency", "").lower()
        if not vs_currency:
            return _error(400, "Missing parameter vs_currency")
        if vs_currency not in RATES:
            return _error(400, "invalid vs_currency")
        order = params.get("order", ORDERS[0])
        if order not in ORDERS:
            return _error(400, f"invalid order: expected one of {', '.join(ORDERS)}")
        per_page = _int_param(params, "per_page", DEFAULT_PER_PAGE)
        if per_page is None or not 1 <= per_page <= MAX_PER_PAGE:
            return _error(400, f"invalid per_page: expected an integer from 1 to {MAX_PER_PAGE}")
        page = _int_param(params, "page", 1)
        if page is None or page < 1:
            return _error(400, "invalid page: expected an integer from 1")
        start = (page - 1) * per_page
        window = {"order": order, "frame_seconds": self.frame_seconds, "shift": self.shift}
        ids = {coin_id.strip().lower() for coin_id in params.get("ids", "").split(",") if coin_id.strip()}
        if ids:
            records = [record for record in self.market.frame(frame, vs_currency, **window) if record["id"] in ids]
            return Reply.json(200, records[start : start + per_page])
        # Only the page's records are copied: at 18,000 coins a whole frame is 72 pages.
        return Reply.json(200, self.market.frame(frame, vs_currency, **window, start=start, stop=start + per_page))


    def _chart(self, coin_id: str, params: Mapping[str, str], frame: int) -> Reply:
        vs_currency = params.get("vs_currency", "").lower()
        if not vs_currency:
            return _error(400, "Missing parameter vs_currency")
        if vs_currency not in RATES:
            return _error(400, "invalid vs_currency")
        bounds = []
        for name in ("from", "to"):
            try:
                bounds.append(datetime.fromtimestamp(float(params[name]), timezone.utc))
            except (KeyError, ValueError, OverflowError, OSError):
                return _error(400, f"Missing or invalid parameter {name}: expected a UNIX timestamp in seconds")
        frame_ms = round(self.frame_seconds * 1000)
        now = self.market.as_of + self.shift + timedelta(milliseconds=(frame + 1) * frame_ms - 1)
        chart = self.market.chart(
            coin_id, vs_currency, bounds[0], bounds[1], now=now, frame_seconds=self.frame_seconds, shift=self.shift
        )
        if chart is None:
            return _error(404, "coin not found")
        return Reply.json(200, chart)


_CHART_PATH: Final = re.compile(rf"{API_PREFIX}/coins/(?P<id>[^/]+)/market_chart/range")


class _HTTPServer(ThreadingHTTPServer):
    """The stdlib server, tracking open connections so :meth:`ReplayServer.stop` can cut them.

    Handler threads are joined on close (not daemons): a stopped server leaves no
    thread behind, since cutting the connections unblocks every one of them.
    """

    daemon_threads = False

    def __init__(self, address: tuple[str, int], replay: ReplayServer) -> None:
        self.replay = replay
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler


class _Handler(BaseHTTPRequestHandler):
    # Keep-alive, as the real API allows: clients reuse pooled connections.
    protocol_version = "HTTP/1.1"
    # Headers and a small body leave in one write (a buffered wfile, flushed per answer),
    # with Nagle's algorithm off. The stdlib writes headers and body apart, unbuffered:
    # with Nagle on, the body then waited for the client's delayed ACK of the headers,
    # about 40 ms on Linux, on every keep-alive answer (a /ping took 45 ms, now 1-2 ms).
    disable_nagle_algorithm = True
    wbufsize = -1
    server: _HTTPServer

    def do_GET(self) -> None:
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.replay._handle("GET", self.path, headers)
        if reply is None:
            self._reset()
            return
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (its read timeout during a delay fault).
            self.close_connection = True

    def _reset(self) -> None:
        # Linger 0 makes close() send RST instead of FIN: the client sees a connection
        # reset, not a clean end of stream. Closing here, before the server's own
        # shutdown(SHUT_WR), keeps that FIN from going out first.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)
