"""cryptopipe's own dashboard: live prices on a log scale, from the warehouse's views.

A static page (``static/``: an SVG chart drawn by ``chart.js``, no third-party
code, nothing fetched from the internet) polls a small JSON API
(:mod:`cryptopipe.dashboard.server`) whose answers (:mod:`cryptopipe.dashboard.service`)
come from the ``latest_prices`` and ``candles_1m`` views through a query backend
(:mod:`cryptopipe.dashboard.backends`): the local DuckDB file by default, BigQuery
by option. Start it with ``cryptopipe dashboard``, or in-process::

    server = DashboardServer(Path("data/warehouse.duckdb"), port=8050).start()
    print(server.url)   # http://127.0.0.1:8050/
    server.stop()
"""

from cryptopipe.dashboard.backends import BigQueryBackend, DuckDBBackend, QueryBackend, backend_from_uri
from cryptopipe.dashboard.errors import BackendBusy, BackendUnavailable, BadRequest, BadWarehouse, DashboardError
from cryptopipe.dashboard.server import DEFAULT_HOST, DEFAULT_PORT, DashboardServer
from cryptopipe.dashboard.service import DashboardService

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "BackendBusy",
    "BackendUnavailable",
    "BadRequest",
    "BadWarehouse",
    "BigQueryBackend",
    "DashboardError",
    "DashboardServer",
    "DashboardService",
    "DuckDBBackend",
    "QueryBackend",
    "backend_from_uri",
]
