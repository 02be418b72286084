"""The dashboard's HTTP server: one static page and a small JSON API, on loopback.

Routes (GET only):

- ``/`` and ``/coin/<id>``: the page (``static/index.html``), which loads ``/static/*``,
  polls the API and shows the list or the coin the address names;
- ``/api/latest?q=eth&sort=change_24h&order=desc``: the latest-prices table
  (:meth:`DashboardService.latest`);
- ``/api/candles?window=1h&coins=bitcoin,ethereum`` (or ``&top=8``): the chart's series;
- ``/api/coin?id=bitcoin&window=1h``: one coin's figures and candles;
- ``/api/health``: the freshness indicator and the page's settings.

Each takes ``currency=eur``, one of the quote currencies the producer polls (the
service's ``vs_currencies``; the first when left out).

Errors are JSON ``{"error": "..."}``: 400 for a bad or unknown parameter, 404 for an
unknown path or coin, 503 when the warehouse cannot answer and there is no earlier
answer to serve.
Everything is served from the package: no CDN, no internet needed.

:class:`DashboardServer` runs it on a background thread, so ``cryptopipe up`` can
serve it beside the producer and the stream, and ``cryptopipe dashboard`` on its own::

    with DashboardServer(Path("data/warehouse.duckdb"), port=0) as server:
        print(server.url)
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptopipe.dashboard.backends import DuckDBBackend, QueryBackend, backend_from_uri
from cryptopipe.dashboard.errors import BackendUnavailable, BadRequest, DashboardError, NotFound
from cryptopipe.dashboard.service import DashboardService
from cryptopipe.httpserve import LOOPBACK, BackgroundServer

log = logging.getLogger(__name__)

DEFAULT_HOST = LOOPBACK
DEFAULT_PORT = 8050

_PAGE = ("index.html", "text/html; charset=utf-8")
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
# Named, not looked up in the folder: nothing but these files can ever be served.
_STATIC = {
    f"/static/{name}": (name, _TYPES[Path(name).suffix])
    for name in ("app.css", "app.js", "format.js", "axes.js", "chart.js", "candles.js", "list.js", "coin.js")
}
# The page's own addresses; app.js reads the coin from it.
_COIN_PAGE = re.compile(r"/coin/[^/]+")
# API path -> the parameters it takes, and what answers it.
_Answer = Callable[[DashboardService, dict[str, str]], dict[str, Any]]
_ROUTES: dict[str, tuple[tuple[str, ...], _Answer]] = {
    "/api/latest": (("q", "sort", "order", "currency"), lambda service, params: service.latest(**params)),
    "/api/candles": (("window", "coins", "top", "currency"), lambda service, params: service.candles(**params)),
    "/api/coin": (("id", "window", "currency"),
                  lambda service, params: service.coin(params.get("id"), params.get("window"), params.get("currency"))),
    "/api/health": (("currency",), lambda service, params: service.health(**params)),
}
# The page loads nothing from elsewhere; say so, so a browser refuses if it ever tried.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class DashboardServer(BackgroundServer):
    """The dashboard on ``http://host:port/``, served from a background thread.

    ``warehouse`` is the DuckDB file's path, a ``--warehouse`` URI
    (``duckdb:///abs/path.duckdb``, ``bigquery://project.dataset``) or a ready
    :class:`QueryBackend`. ``port=0`` picks a free port (see :attr:`url`). ``settings``
    are :class:`DashboardService`'s (``vs_currencies``, ``stale_after_seconds``,
    ``refresh_seconds``, ``alerts``, ``clock``), its defaults when left out.
    :meth:`stop` waits for requests in flight (at most one warehouse read each).
    """

    thread_name = "dashboard"

    def __init__(
        self,
        warehouse: str | Path | QueryBackend,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        **settings: Any,
    ) -> None:
        super().__init__(host=host, port=port)
        self.service = DashboardService(_backend(warehouse), **settings)

    def _bind(self, address: tuple[str, int]) -> _HTTPServer:
        """Raises :class:`DashboardError` if the port is taken."""
        try:
            return _HTTPServer(address, self.service)
        except OSError as error:
            host, port = address
            raise DashboardError(
                f"cannot serve the dashboard on {host}:{port} ({error.strerror}): pick another port"
            ) from None

    def _serving(self) -> None:
        log.info("dashboard on %s over %s", self.url, self.service.backend.uri)

    @property
    def url(self) -> str:
        """``http://host:port/``, with the bound port once started."""
        host, port = self.address
        return f"http://{host}:{port}/"


def _backend(warehouse: str | Path | QueryBackend) -> QueryBackend:
    if isinstance(warehouse, QueryBackend):
        return warehouse
    if isinstance(warehouse, str) and "://" in warehouse:
        return backend_from_uri(warehouse)
    return DuckDBBackend(Path(warehouse))


class _HTTPServer(ThreadingHTTPServer):
    # Handler threads are joined on close: a stopped dashboard leaves none behind.
    # Each answers one request (HTTP/1.0) and reads the warehouse at most once, so
    # the join is short.
    daemon_threads = False

    def __init__(self, address: tuple[str, int], service: DashboardService) -> None:
        self.service = service
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/" or _COIN_PAGE.fullmatch(parts.path):
            self._send(200, _static(_PAGE[0]), _PAGE[1])
            return
        if parts.path in _STATIC:
            name, content_type = _STATIC[parts.path]
            self._send(200, _static(name), content_type)
            return
        route = _ROUTES.get(parts.path)
        if route is None:
            self._json(404, {"error": f"no such page: {parts.path}"})
            return
        try:
            accepted, answer = route
            self._json(200, answer(self.server.service, _parameters(parts.query, parts.path, accepted)))
        except BadRequest as error:
            self._json(400, {"error": str(error)})
        except NotFound as error:
            self._json(404, {"error": str(error)})
        except BackendUnavailable as error:
            self._json(503, {"error": str(error)})
        except Exception:
            log.exception("dashboard request %s failed", self.path)
            self._json(500, {"error": "internal error: see the dashboard's log"})

    def _json(self, status: int, body: dict[str, Any]) -> None:
        self._send(status, json.dumps(body, allow_nan=False).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            for name, value in _SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser navigated away mid-answer

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


def _parameters(query: str, path: str, accepted: tuple[str, ...]) -> dict[str, str]:
    """The query string's parameters (the last of repeated ones; blank ones as absent).

    A parameter the route does not take is a :class:`BadRequest`: a misspelt ``sort``
    would otherwise be ignored and answered with the default, which looks like a bug.
    """
    given = {name: values[-1] for name, values in parse_qs(query).items()}
    unknown = sorted(set(given) - set(accepted))
    if unknown:
        takes = f"it takes {', '.join(accepted)}"
        raise BadRequest(f"unknown parameter {', '.join(map(repr, unknown))} for {path}; {takes}")
    return given


@functools.cache
def _static(name: str) -> bytes:
    return resources.files("cryptopipe.dashboard").joinpath("static", name).read_bytes()
