"""Query backends: the BigQuery one against a fake client, and choosing one by URI."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from google.api_core.exceptions import NotFound
from google.cloud import bigquery

from cryptopipe.dashboard import BackendUnavailable, BadWarehouse, BigQueryBackend, DashboardService, DuckDBBackend, backend_from_uri
from cryptopipe.dashboard.queries import CANDLES, LATEST

SINCE = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
LATEST_ROW = {
    "coin_id": "bitcoin", "symbol": "btc", "name": "Bitcoin", "price": 1.5, "price_change_percentage_24h": 0.5,
    "market_cap": 1e9, "market_cap_rank": 1, "last_updated": SINCE,
}  # fmt: skip


class FakeJob:
    def __init__(self, rows: list[dict[str, Any]], error: Exception | None) -> None:
        self.rows = rows
        self.error = error

    def result(self, timeout: float) -> list[bigquery.Row]:
        if self.error is not None:
            raise self.error
        names = list(self.rows[0]) if self.rows else []
        return [bigquery.Row(tuple(row.values()), {name: i for i, name in enumerate(names)}) for row in self.rows]


class FakeClient:
    """Records each query and its job config; answers with canned rows (or an error)."""

    def __init__(self, rows: list[dict[str, Any]] | None = None, error: Exception | None = None) -> None:
        self.rows = rows or []
        self.error = error
        self.queries: list[tuple[str, bigquery.QueryJobConfig]] = []

    def query(self, sql: str, job_config: bigquery.QueryJobConfig) -> FakeJob:
        self.queries.append((sql, job_config))
        return FakeJob(self.rows, self.error)


def test_bigquery_backend_sends_candles_sql_on_the_dataset_with_typed_parameters():
    client = FakeClient(rows=[{"coin_id": "bitcoin", "close": 1.5}])
    backend = BigQueryBackend("my-project", "cryptopipe_dev", client=client)

    rows = backend.fetch(CANDLES, {"vs_currency": "usd", "coins": ["bitcoin", "ethereum"], "since": SINCE})

    assert rows == [{"coin_id": "bitcoin", "close": 1.5}]
    [(sql, config)] = client.queries
    assert sql == (
        "SELECT\n  coin_id,\n  minute,\n  open,\n  high,\n  low,\n  close,\n  total_volume,\n  samples,\n  backfilled\n"
        "FROM `my-project`.`cryptopipe_dev`.candles_1m\n"
        "WHERE\n  vs_currency = @vs_currency AND coin_id IN UNNEST(@coins) AND minute >= @since\n"
        "ORDER BY\n  coin_id,\n  minute"
    )
    assert [p.to_api_repr() for p in config.query_parameters] == [
        bigquery.ScalarQueryParameter("vs_currency", "STRING", "usd").to_api_repr(),
        bigquery.ArrayQueryParameter("coins", "STRING", ["bitcoin", "ethereum"]).to_api_repr(),
        bigquery.ScalarQueryParameter("since", "TIMESTAMP", SINCE).to_api_repr(),
    ]


def test_bigquery_backend_sends_latest_sql_reading_latest_prices_view():
    client = FakeClient()
    BigQueryBackend("my-project", "cryptopipe_dev", client=client).fetch(LATEST, {"vs_currency": "eur"})

    [(sql, config)] = client.queries
    assert sql.startswith("SELECT\n  coin_id,\n  symbol,\n")
    assert "FROM `my-project`.`cryptopipe_dev`.latest_prices\nWHERE\n  vs_currency = @vs_currency\n" in sql
    assert sql.endswith("ORDER BY\n  market_cap_rank ASC NULLS LAST,\n  coin_id\nLIMIT 250")
    assert [(p.name, p.type_, p.value) for p in config.query_parameters] == [("vs_currency", "STRING", "eur")]


def test_bigquery_backend_failure_names_the_dataset_and_the_cause():
    client = FakeClient(error=NotFound("Table my-project:cryptopipe_dev.latest_prices was not found"))
    backend = BigQueryBackend("my-project", "cryptopipe_dev", client=client)

    with pytest.raises(BackendUnavailable, match=r"bigquery://my-project\.cryptopipe_dev failed: .*was not found"):
        backend.fetch(LATEST, {"vs_currency": "usd"})


def test_bigquery_answers_are_reused_for_30_seconds_whatever_the_search_and_sort():
    client = FakeClient(rows=[LATEST_ROW])
    service = DashboardService(BigQueryBackend("my-project", "cryptopipe_dev", client=client))

    service.latest()
    service.latest(q="bit", sort="price", order="asc")  # searched and sorted from the same answer
    service.health()

    assert len(client.queries) == 1


def test_backend_from_bigquery_uri_makes_a_client_for_the_project(monkeypatch):
    made: list[str] = []
    monkeypatch.setattr(bigquery, "Client", lambda project: made.append(project) or FakeClient())

    backend = backend_from_uri("bigquery://my-project.cryptopipe_dev")

    assert isinstance(backend, BigQueryBackend)
    assert (backend.uri, made) == ("bigquery://my-project.cryptopipe_dev", ["my-project"])


def test_bigquery_backend_without_credentials_says_how_to_log_in(monkeypatch, tmp_path: Path):
    # A missing key file fails before google-auth would look for a metadata server.
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")

    with pytest.raises(BackendUnavailable, match="no Google credentials.*gcloud auth application-default login"):
        BigQueryBackend("my-project", "cryptopipe_dev")


def test_backend_from_duckdb_uri_reads_the_file(tmp_path: Path):
    backend = backend_from_uri(f"duckdb://{tmp_path}/warehouse.duckdb")
    assert isinstance(backend, DuckDBBackend)
    assert backend.path == tmp_path / "warehouse.duckdb"


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("postgres://db/x", "is not a warehouse URI (unsupported scheme 'postgres'); "
                            "expected duckdb:///absolute/path/warehouse.duckdb or bigquery://project.dataset"),
        ("bigquery://just-a-project", "is not a BigQuery dataset URI; expected bigquery://project.dataset"),
        ("bigquery://Bad_Project.ds", "project id 'Bad_Project' is not valid"),
        ("duckdb://relative.duckdb", "does not name an absolute file path"),
    ],
)
def test_backend_from_bad_uri_says_what_is_expected(uri, message):
    with pytest.raises(BadWarehouse, match=re.escape(message)):
        backend_from_uri(uri)
