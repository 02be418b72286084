"""The views: exact values on DuckDB, valid GoogleSQL for BigQuery, the Looker Studio link."""

from __future__ import annotations

from contextlib import closing
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import sqlglot
from sqlglot import exp

from core.views import (
    VIEWS,
    bigquery_view_sql,
    create_duckdb_views,
    duckdb_view_sql,
    looker_studio_url,
    view_description,
    view_source,
)
from jobs.loaders.duckdb import connect, open_reader

from ..conftest import load, minute_ago, warehouse_row

PROJECT = "my-cryptopipe-dev"
DATASET = "cryptopipe_dev"


def _rows(warehouse, sql: str) -> list[tuple]:
    with open_reader(warehouse.path) as con:
        return con.execute(sql).fetchall()


def test_candles_1m_gives_open_high_low_close_and_samples_per_coin_minute(warehouse):
    t0 = minute_ago(10)

    def at(seconds: int) -> datetime:
        return t0 + timedelta(seconds=seconds)

    # Two batches, the later ticks first: open and close follow event time, not load order.
    load(warehouse, [warehouse_row("bitcoin", 110.0, at(55)), warehouse_row("bitcoin", 90.0, at(40)), warehouse_row("bitcoin", 120.0, at(70))])
    load(warehouse, [warehouse_row("bitcoin", 100.0, at(5)), warehouse_row("bitcoin", 130.0, at(20)), warehouse_row("ethereum", 10.5, at(30))])

    rows = _rows(warehouse, "SELECT * FROM candles_1m ORDER BY coin_id, minute")

    assert rows == [
        ("bitcoin", "usd", t0, 100.0, 130.0, 90.0, 110.0, 1e9, 4, False),
        ("bitcoin", "usd", t0 + timedelta(minutes=1), 120.0, 120.0, 120.0, 120.0, 1e9, 1, False),
        ("ethereum", "usd", t0, 10.5, 10.5, 10.5, 10.5, 1e9, 1, False),
    ]


def test_candles_1m_total_volume_is_the_minutes_highest_24h_volume_skipping_nulls(warehouse):
    t0 = minute_ago(10)
    load(warehouse, [
        warehouse_row("bitcoin", 1.0, t0 + timedelta(seconds=5), total_volume=3e9),
        warehouse_row("bitcoin", 1.0, t0 + timedelta(seconds=30), total_volume=5e9),
        warehouse_row("bitcoin", 1.0, t0 + timedelta(seconds=50), total_volume=None),
        warehouse_row("bitcoin", 1.0, t0 + timedelta(seconds=70), total_volume=None),
    ])  # fmt: skip

    rows = _rows(warehouse, "SELECT total_volume FROM candles_1m ORDER BY minute")

    assert rows == [(5e9,), (None,)]


def test_candles_1m_keeps_quote_currencies_apart(warehouse):
    t0 = minute_ago(3)
    load(warehouse, [
        warehouse_row("bitcoin", 100.0, t0 + timedelta(seconds=1)),
        warehouse_row("bitcoin", 92.0, t0 + timedelta(seconds=2), vs_currency="eur"),
    ])  # fmt: skip

    rows = _rows(warehouse, "SELECT vs_currency, open, samples FROM candles_1m ORDER BY vs_currency")

    assert rows == [("eur", 92.0, 1), ("usd", 100.0, 1)]


def test_candles_1m_take_backfilled_points_and_mark_minutes_that_have_nothing_else(warehouse):
    t0 = minute_ago(30)
    load(warehouse, [
        warehouse_row("bitcoin", 100.0, t0, origin="backfill"),  # a point of the market chart alone in its minute
        warehouse_row("bitcoin", 101.0, t0 + timedelta(minutes=5, seconds=10), origin="poll"),
        warehouse_row("bitcoin", 102.0, t0 + timedelta(minutes=5), origin="backfill"),  # a live tick in the same minute
        warehouse_row("bitcoin", 103.0, t0 + timedelta(minutes=6), origin=None),  # a row from before the column: live
    ])  # fmt: skip

    rows = _rows(warehouse, "SELECT minute, open, close, samples, backfilled FROM candles_1m ORDER BY minute")

    assert rows == [
        (t0, 100.0, 100.0, 1, True),
        (t0 + timedelta(minutes=5), 102.0, 101.0, 2, False),
        (t0 + timedelta(minutes=6), 103.0, 103.0, 1, False),
    ]


def test_latest_prices_leave_backfilled_points_out(warehouse):
    t0 = minute_ago(5)
    load(warehouse, [
        warehouse_row("bitcoin", 100.0, t0, origin="poll"),
        warehouse_row("bitcoin", 90.0, t0 + timedelta(seconds=30), origin="backfill"),  # newer, but history
        warehouse_row("ethereum", 10.0, t0, origin=None),  # before the column existed: a poll
        warehouse_row("solana", 5.0, t0, origin="backfill"),  # only back-filled: no latest price
    ])  # fmt: skip

    assert _rows(warehouse, "SELECT coin_id, price FROM latest_prices ORDER BY coin_id") == [
        ("bitcoin", 100.0), ("ethereum", 10.0)
    ]  # fmt: skip


def test_latest_prices_gives_newest_row_per_coin(warehouse):
    t0 = minute_ago(5)
    load(warehouse, [
        warehouse_row("bitcoin", 100.0, t0, market_cap_rank=1, price_change_percentage_24h=-1.0),
        warehouse_row("bitcoin", 101.5, t0 + timedelta(seconds=90), market_cap_rank=1, price_change_percentage_24h=2.25),
        warehouse_row("ethereum", 10.0, t0 + timedelta(seconds=30), market_cap_rank=2),
    ])  # fmt: skip
    load(warehouse, [warehouse_row("bitcoin", 99.0, t0 + timedelta(seconds=60))])  # older than the newest, loaded later

    rows = _rows(
        warehouse,
        "SELECT coin_id, vs_currency, price, price_change_percentage_24h, market_cap_rank, last_updated "
        "FROM latest_prices ORDER BY coin_id",
    )

    assert rows == [
        ("bitcoin", "usd", 101.5, 2.25, 1, t0 + timedelta(seconds=90)),
        ("ethereum", "usd", 10.0, 1.5, 2, t0 + timedelta(seconds=30)),
    ]


def test_latest_prices_gives_newest_row_per_coin_and_quote_currency(warehouse):
    t0 = minute_ago(5)
    load(warehouse, [
        warehouse_row("bitcoin", 100.0, t0 + timedelta(seconds=10)),
        warehouse_row("bitcoin", 88.0, t0 + timedelta(seconds=40), vs_currency="eur"),  # the newest of the coin
        warehouse_row("bitcoin", 87.0, t0 + timedelta(seconds=20), vs_currency="eur"),
        warehouse_row("bitcoin", 0.00096, t0, vs_currency="btc"),  # the oldest: still btc's latest
    ])  # fmt: skip

    rows = _rows(warehouse, "SELECT coin_id, vs_currency, price FROM latest_prices ORDER BY vs_currency")

    assert rows == [("bitcoin", "btc", 0.00096), ("bitcoin", "eur", 88.0), ("bitcoin", "usd", 100.0)]


def test_latest_prices_reports_freshness_in_seconds_since_event_time(warehouse):
    last_updated = minute_ago(2)
    load(warehouse, [warehouse_row("bitcoin", 100.0, last_updated)])

    with open_reader(warehouse.path) as con:
        freshness, expected = con.execute(
            "SELECT freshness_seconds, epoch(now()) - epoch(last_updated) FROM latest_prices"
        ).fetchone()

    assert 120 <= freshness < 180
    assert freshness == pytest.approx(expected, abs=0.002)  # milliseconds, as of the query


def test_latest_prices_leaves_out_coins_without_ticks_in_the_last_day(warehouse):
    load(warehouse, [
        warehouse_row("bitcoin", 100.0, minute_ago(1)),
        warehouse_row("deadcoin", 0.01, minute_ago(25 * 60)),
    ])  # fmt: skip

    assert _rows(warehouse, "SELECT coin_id FROM latest_prices") == [("bitcoin",)]


def test_create_duckdb_views_twice_keeps_one_definition_each(warehouse):
    with closing(connect(warehouse.path, read_only=False, timeout=5)) as con:
        create_duckdb_views(con)
    names = _rows(warehouse, "SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY view_name")
    assert names == [(view,) for view in sorted(VIEWS)]


@pytest.mark.parametrize("view", VIEWS)
def test_bigquery_view_sql_parses_as_googlesql_reading_the_project_dataset(view):
    sql = bigquery_view_sql(view, PROJECT, DATASET)

    tree = sqlglot.parse_one(sql, read="bigquery")

    tables = [(t.catalog, t.db, t.name) for t in tree.find_all(exp.Table)]
    assert tables == [(PROJECT, DATASET, "market_ticks")]
    assert f"`{PROJECT}`.`{DATASET}`.market_ticks" in sql


@pytest.mark.parametrize("view", VIEWS)
def test_view_translations_select_the_same_columns(view):
    duckdb_columns = sqlglot.parse_one(duckdb_view_sql(view), read="duckdb").named_selects
    bigquery_columns = sqlglot.parse_one(bigquery_view_sql(view, PROJECT, DATASET), read="bigquery").named_selects
    assert duckdb_columns == bigquery_columns
    assert duckdb_columns[0] == "coin_id"


def test_bigquery_view_sql_with_invalid_project_id_names_it():
    with pytest.raises(ValueError, match="'My_Project'"):
        bigquery_view_sql("candles_1m", "My_Project", DATASET)


def test_view_source_of_unknown_view_lists_the_views():
    with pytest.raises(ValueError, match="candles_1m, latest_prices"):
        view_source("candles_5m")


def test_view_description_is_the_header_line():
    assert view_description("candles_1m") == "one-minute candles per coin and quote currency, by event time."


def test_looker_studio_url_opens_each_view_of_the_project_dataset():
    url = looker_studio_url(PROJECT, DATASET)

    parts = urlsplit(url)
    params = {name: values[0] for name, values in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://lookerstudio.google.com/reporting/create"
    assert params["c.mode"] == "edit"
    assert params["r.reportName"] == "cryptopipe prices"
    for index, view in enumerate(VIEWS):
        alias = f"ds.ds{index}"
        assert {k.removeprefix(f"{alias}."): v for k, v in params.items() if k.startswith(f"{alias}.")} == {
            "connector": "bigQuery",
            "type": "TABLE",
            "projectId": PROJECT,
            "datasetId": DATASET,
            "tableId": view,
            "datasourceName": f"{DATASET}.{view}",
        }
    assert "ds.ds2.tableId" not in params


def test_looker_studio_url_for_one_view_names_only_that_view():
    params = parse_qs(urlsplit(looker_studio_url(PROJECT, DATASET, "latest_prices")).query)
    assert params["ds.ds0.tableId"] == ["latest_prices"]
    assert "ds.ds1.tableId" not in params


def test_looker_studio_url_for_unknown_view_lists_the_views():
    with pytest.raises(ValueError, match="'prices'.*candles_1m, latest_prices"):
        looker_studio_url(PROJECT, DATASET, "prices")
