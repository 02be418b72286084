"""The dashboard in headless Chromium while the warehouse is being written, as in `cryptopipe up`.

Debian's ``chromium`` driven by playwright, which is told to use it (it never
downloads a browser). The test command installs it:
``apt-get install -y --no-install-recommends chromium fonts-liberation``.

Layout is asserted from the page itself (element boxes, scroll widths, computed
styles), at a desktop, a laptop and a phone size. ``CRYPTOPIPE_UPDATE_SCREENSHOT=1``
also saves the screenshots the docs show (docs/img/dashboard-*.png), taken from a
warehouse at ``data/warehouse.duckdb`` under the working directory, as
``scripts/run-local`` makes it; otherwise they go to the test's temp dir only.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from cryptopipe.dashboard import DashboardServer, DuckDBBackend

from ..conftest import load, make_warehouse
from .conftest import MarketWriter, frozen_now, market_ticks

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"
# The stylesheet's --stale colour.
RED = "rgb(229, 72, 77)"
DESKTOP, LAPTOP, PHONE = (1920, 1080), (1280, 800), (390, 844)
MONEY = re.compile(r"^\$([\d,]+(\.\d+)?|0\.0[₀-₉]+\d+)$")


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (scripts/test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _open(browser, size: tuple[int, int]) -> tuple:
    """A page of ``size``, the statuses of its API answers and the errors it logs."""
    width, height = size
    page = browser.new_page(viewport={"width": width, "height": height})
    api_statuses: list[int] = []
    page_errors: list[str] = []
    page.on("response", lambda response: "/api/" in response.url and api_statuses.append(response.status))
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and page_errors.append(message.text))
    return page, api_statuses, page_errors


def _is_decade(value: float) -> bool:
    return abs(math.log10(value) - round(math.log10(value))) < 1e-9


def test_dashboard_while_stream_writes_draws_log_chart_fills_table_refreshes_and_turns_red(warehouse, browser):
    # Locator assertions, not wait_for_function: they need no eval, which the page's
    # Content-Security-Policy forbids, and the test keeps that policy on.
    from playwright.sync_api import expect

    writer = MarketWriter(warehouse, top=12, every=0.4)
    writer.start()
    server = DashboardServer(DuckDBBackend(warehouse.path), port=0, refresh_seconds=1, stale_after_seconds=4).start()
    page, api_statuses, page_errors = _open(browser, (1280, 600))
    try:
        page.goto(server.url)

        # The chart: the default top 8 coins, on a log axis (decades equally spaced).
        expect(page.locator("#chart path.series")).to_have_count(8)
        assert page.get_attribute("#chart", "data-scale") == "log"
        ticks = page.eval_on_selector_all(
            "#chart g.tick.y", "ticks => ticks.map(t => [Number(t.dataset.value), Number(t.dataset.y)])"
        )
        decades = [(value, y) for value, y in ticks if _is_decade(value)]
        assert len(decades) >= 4, ticks
        assert [b / a for (a, _), (b, _) in zip(decades, decades[1:])] == pytest.approx([10.0] * (len(decades) - 1))
        gaps = [y0 - y1 for (_, y0), (_, y1) in zip(decades, decades[1:])]
        assert gaps[0] > 20 and gaps == pytest.approx([gaps[0]] * len(gaps), abs=0.02)
        paths = page.eval_on_selector_all("#chart path.series", "ps => ps.map(p => p.getAttribute('d'))")
        assert all(d.count("L") >= 30 for d in paths)  # an hour of history, one point a minute
        expect(page.locator("#chart-note")).to_be_hidden()  # the hour fills the 1 h window: nothing to say

        # The table: every coin the stream loaded, by market-cap rank.
        expect(page.locator("#latest tbody tr")).to_have_count(12)
        expect(page.locator("#latest tbody tr").first).to_have_attribute("data-coin", "bitcoin")
        expect(page.locator('#latest tr[data-coin="bitcoin"] td.price')).to_have_text(re.compile(r"^\$[\d,]+(\.\d+)?$"))
        expect(page.locator("#freshness")).to_have_class("fresh")

        # Refresh: newer ticks reach the table and the chart without a reload.
        row = page.locator('#latest tr[data-coin="bitcoin"]')
        line = page.locator('#chart path[data-coin="bitcoin"]')
        before, line_before = row.get_attribute("data-last-updated"), line.get_attribute("d")
        row.evaluate("tr => { tr.keptAcrossRefreshes = true; }")
        expect(row).not_to_have_attribute("data-last-updated", before, timeout=10_000)
        expect(line).not_to_have_attribute("d", line_before, timeout=10_000)
        assert row.get_attribute("data-last-updated") > before
        # The same element, updated in place: a refresh never pulls a row from under the pointer.
        assert row.evaluate("tr => tr.keptAcrossRefreshes === true")

        # Stale: once the writes stop, the indicator turns red within the threshold and a refresh.
        writer.stop()
        freshness = page.locator("#freshness")
        expect(freshness).to_have_class("stale", timeout=15_000)
        expect(freshness).to_have_css("color", RED)
        expect(freshness).to_have_text(re.compile(r"^Stale · newest tick \d+ s old \(stale after 4 s\)$"))
    finally:
        page.close()
        server.stop()
        writer.stop()

    assert writer.batches >= 3
    assert api_statuses and set(api_statuses) == {200}
    assert page_errors == []


# Measured in the page: overflow of the document and of the table's scroll box, each header's
# box against that scroll box, number cells cut short, and the theme the scrollbars take.
TABLE_LAYOUT = """() => {
  const scroll = document.getElementById("table-scroll");
  const box = scroll.getBoundingClientRect();
  const doc = document.documentElement;
  const shown = (el) => getComputedStyle(el).display !== "none" && el.getBoundingClientRect().width > 0;
  return {
    document: [doc.scrollWidth, doc.clientWidth],
    table: [scroll.scrollWidth, scroll.clientWidth],
    headers: [...document.querySelectorAll("#latest thead th")].map((th) => {
      const r = th.getBoundingClientRect();
      return {text: th.textContent.trim(), shown: shown(th), clipped: th.scrollWidth > th.clientWidth,
              inside: r.left >= box.left - 0.5 && r.right <= box.right + 0.5 && r.right <= innerWidth};
    }),
    clipped: [...document.querySelectorAll("#latest tbody tr")].slice(0, 60).flatMap((tr) =>
      [...tr.querySelectorAll("td.num")].filter((td) => shown(td) && td.scrollWidth > td.clientWidth)
        .map((td) => `${tr.dataset.coin} ${td.className}: ${td.textContent}`)),
    colorScheme: getComputedStyle(doc).colorScheme,
    scrollbarColors: [doc, scroll].map((el) => getComputedStyle(el).scrollbarColor),
  };
}"""
# A phone's rows: which lines name, price and 24 h change sit on, and whether they fit the screen.
PHONE_ROWS = """() => [...document.querySelectorAll("#latest tbody tr")].slice(0, 8).map((tr) => {
  const cells = ["coin", "price", "change"].map((c) => tr.querySelector("td." + c).getBoundingClientRect());
  return {lines: cells.map((r) => Math.round(r.top)), right: Math.max(...cells.map((r) => r.right)),
          width: innerWidth, clipped: tr.querySelector("td.price").scrollWidth > tr.querySelector("td.price").clientWidth};
})"""
# The chart's tick labels, as boxes, and the chart's own box.
CHART_LABELS = """(svg) => {
  const boxes = (sel) => [...svg.querySelectorAll(sel)].map((t) => {
    const r = t.getBoundingClientRect();
    return [r.left, r.top, r.right, r.bottom];
  });
  const r = svg.getBoundingClientRect();
  return {x: boxes("g.tick.x text"), y: boxes("g.tick.y text"), svg: [r.left, r.top, r.right, r.bottom],
          width: innerWidth};
}"""


# The plot's left and right edges (where the price grid lines run) and the leftmost point
# of data: a line's first vertex or a candle's wick.
PLOT_AND_FIRST_POINT = """(svg) => {
  const grid = svg.querySelector("g.tick.y line");
  const xs = [...svg.querySelectorAll("path.series, g.candle line")].map((p) => p.getBBox().x);
  return {left: Number(grid.getAttribute("x1")), right: Number(grid.getAttribute("x2")), first: Math.min(...xs)};
}"""


def _assert_chart_readable(page, selector: str) -> None:
    """Tick labels neither overlap nor leave the chart, and the chart fits the screen."""
    labels = page.eval_on_selector(selector, CHART_LABELS)
    left, top, right, bottom = labels["svg"]
    assert 0 <= left and right <= labels["width"], labels["svg"]
    assert len(labels["x"]) >= 2 and len(labels["y"]) >= 2, labels
    for axis, (start, end) in (("x", (0, 2)), ("y", (1, 3))):
        boxes = sorted(labels[axis], key=lambda b: b[start])
        assert all(a[end] <= b[start] + 0.5 for a, b in zip(boxes, boxes[1:])), (axis, boxes)
        assert all(left - 0.5 <= b[0] and b[2] <= right + 0.5 and top - 0.5 <= b[1] and b[3] <= bottom + 0.5
                   for b in boxes), (axis, boxes, labels["svg"])  # fmt: skip


def _assert_table_fits(page, size: tuple[int, int]) -> None:
    layout = page.evaluate(TABLE_LAYOUT)
    scroll_width, client_width = layout["document"]
    assert scroll_width <= client_width, f"the page scrolls sideways at {size}: {layout['document']}"
    assert layout["colorScheme"] == "dark"
    assert "auto" not in layout["scrollbarColors"], layout["scrollbarColors"]  # themed, not the native white
    if size == PHONE:
        rows = page.evaluate(PHONE_ROWS)
        for row in rows:  # two lines: name and price on the first, 24 h change under the price
            coin, price, change = row["lines"]
            assert coin == price < change, row
            assert row["right"] <= row["width"] and not row["clipped"], row
        return
    assert layout["table"][0] <= layout["table"][1], f"the table scrolls sideways at {size}: {layout['table']}"
    assert [h["text"] for h in layout["headers"]] == ["#", "Coin", "Price", "24 h", "Market cap", "Updated"]
    assert [h for h in layout["headers"] if not (h["shown"] and h["inside"] and not h["clipped"])] == []
    assert layout["clipped"] == []


def _column(page, cls: str) -> list[float | None]:
    values = page.eval_on_selector_all(f"#latest tbody td.{cls}", "tds => tds.map(td => td.dataset.value)")
    return [float(v) if v else None for v in values]


def _scroll_position(page) -> list[float]:
    return page.evaluate("() => [document.getElementById('table-scroll').scrollTop, scrollY]")


def _save(page, tmp_path: Path, name: str) -> None:
    """A screenshot in the test's temp dir, and in docs/img with CRYPTOPIPE_UPDATE_SCREENSHOT=1."""
    path = tmp_path / name
    page.screenshot(path=path)
    if os.environ.get("CRYPTOPIPE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(path, DOCS_IMG / name)


@pytest.mark.parametrize("size", [DESKTOP, LAPTOP, PHONE], ids=lambda s: f"{s[0]}x{s[1]}")
def test_250_coins_fit_and_can_be_searched_sorted_and_drilled_into(browser, tmp_path, monkeypatch, size):
    from playwright.sync_api import expect

    # Where scripts/run-local puts it: the footer reads data/warehouse.duckdb, not a temp path.
    monkeypatch.chdir(tmp_path)
    warehouse = make_warehouse(tmp_path / "data" / "warehouse.duckdb")
    writer = MarketWriter(warehouse, top=250, every=2.0)
    writer.start()
    server = DashboardServer(DuckDBBackend(warehouse.path), port=0, refresh_seconds=2).start()
    page, api_statuses, page_errors = _open(browser, size)
    rows = page.locator("#latest tbody tr")
    table = page.locator("#latest")
    name = f"dashboard-{size[0]}x{size[1]}.png"
    try:
        page.goto(server.url)
        expect(rows).to_have_count(250)
        expect(page.locator("#chart path.series")).to_have_count(8)
        expect(page.locator("#warehouse")).to_have_text("data/warehouse.duckdb")
        # Live: the writer's first batch after the hour of history is in the table.
        expect(page.locator("#freshness")).to_have_text(re.compile(r"^Live · newest tick \d s old$"), timeout=15_000)
        _assert_table_fits(page, size)
        _assert_chart_readable(page, "#chart")
        _save(page, tmp_path, name)

        # Search: name or symbol, Ethereum first, kept in the address.
        page.locator("#search").fill("eth")
        expect(table).to_have_attribute("data-q", "eth")
        expect(rows.first).to_have_attribute("data-coin", "ethereum")
        texts = rows.locator("td.coin a").all_text_contents()
        assert 3 <= len(texts) < 250 and all("eth" in text.lower() for text in texts), texts
        assert page.url.endswith("/?q=eth")

        # Sort by 24 h change: biggest first, then smallest first on a second click.
        page.locator("#search").fill("")
        page.locator('#latest th[data-sort="change_24h"] button').click()
        expect(table).to_have_attribute("data-sort", "change_24h")
        expect(table).to_have_attribute("data-q", "")
        expect(rows).to_have_count(250)
        changes = _column(page, "change")
        assert changes == sorted(changes, key=lambda v: (v is None, -(v or 0)))
        page.locator('#latest th[data-sort="change_24h"] button').click()
        expect(table).to_have_attribute("data-order", "asc")
        changes = _column(page, "change")
        assert changes == sorted(changes, key=lambda v: (v is None, v or 0))
        assert page.url.endswith("/?sort=change_24h&order=asc")
        _assert_table_fits(page, size)

        # Drill into Bitcoin: its candles and 24 h volume over the hour, its figures and data age.
        bitcoin = page.locator('#latest tr[data-coin="bitcoin"] td.coin a')
        bitcoin.scroll_into_view_if_needed()
        before = _scroll_position(page)
        bitcoin.click()
        expect(page).to_have_url(server.url + "coin/bitcoin")
        expect(page.locator("#coin-name")).to_have_text("Bitcoin")
        candles = page.locator("#coin-chart g.candle")
        expect(candles.nth(29)).to_be_attached()  # an hour of history, one candle a minute
        expect(page.locator("#coin-price")).to_have_text(MONEY)
        expect(page.locator("#coin-age")).to_have_text(re.compile(r"^\d+ s ago$"))
        assert page.get_attribute("#coin-chart", "data-scale") == "log"
        assert page.locator("#coin-chart path.volume-line").get_attribute("d").count("L") >= 30
        expect(page.locator("#list-view")).to_be_hidden()
        _assert_chart_readable(page, "#coin-chart")
        page.locator('#scale button[data-scale="linear"]').click()
        expect(page.locator("#coin-chart")).to_have_attribute("data-scale", "linear")
        assert page.url.endswith("/coin/bitcoin?scale=linear")
        _assert_chart_readable(page, "#coin-chart")
        if size == LAPTOP:
            _save(page, tmp_path, "dashboard-coin-1280x800.png")

        # Back: the list as it was, sorted the same and scrolled to the same place.
        page.locator("#back").click()
        expect(page).to_have_url(server.url + "?sort=change_24h&order=asc")
        expect(page.locator("#latest th.change")).to_have_attribute("aria-sort", "ascending")
        expect(rows).to_have_count(250)
        assert _scroll_position(page) == before
        expect(page.locator("#coin-view")).to_be_hidden()
    finally:
        page.close()
        server.stop()
        writer.stop()

    assert api_statuses and set(api_statuses) == {200}
    assert page_errors == []


def test_a_fresh_start_fits_the_window_to_the_data_and_says_so(warehouse, browser):
    """Two minutes and twenty seconds of data, as after a start, on a frozen clock.

    The geometry depends on where "now" falls within its minute (candles sit mid-minute,
    the axis ends at now or at the last candle's end), so the dashboard's clock is frozen
    20 s into a minute and the data placed at fixed offsets from it: the same picture on
    every run, whatever the wall clock says.
    """
    from playwright.sync_api import expect

    now = frozen_now(second=20)
    for frame, minutes_ago in enumerate((2, 1, 0)):
        load(warehouse, market_ticks(frame, now - timedelta(minutes=minutes_ago), top=12))
    server = DashboardServer(DuckDBBackend(warehouse.path), port=0, refresh_seconds=1, clock=lambda: now).start()
    page, api_statuses, page_errors = _open(browser, LAPTOP)
    try:
        # The overview's axis runs from the first minute to now (2 min 20 s); the coin's
        # to the end of the last candle's minute (3 min), its first candle mid-way through
        # the first minute: a sixth of the plot.
        for path, chart, note, minutes, first_at in (
            ("", "#chart", "#chart-note", 2, 0.0),
            ("coin/bitcoin", "#coin-chart", "#coin-note", 3, 1 / 6),
        ):
            page.goto(server.url + path)
            expect(page.locator(note)).to_have_text(
                f"Only {minutes} min of data so far: the axis shows all of it rather than the 1h window."
            )
            plot = page.eval_on_selector(chart, PLOT_AND_FIRST_POINT)
            left, right, first = plot["left"], plot["right"], plot["first"]
            assert (first - left) / (right - left) == pytest.approx(first_at, abs=0.01), plot
            _assert_chart_readable(page, chart)

        # A coin the warehouse does not know: said in the view; the data is still live.
        page.goto(server.url + "coin/no-such-coin")
        expect(page.locator("#coin-error")).to_have_text("no coin 'no-such-coin' among the latest usd prices")
        expect(page.locator("#coin-body")).to_be_hidden()
        expect(page.locator("#freshness")).to_have_class("fresh")
    finally:
        page.close()
        server.stop()

    assert api_statuses and set(api_statuses) == {200, 404}
    # The browser logs the 404 itself; the page logs nothing.
    assert page_errors == ["Failed to load resource: the server responded with a status of 404 (Not Found)"]


def test_backfilled_stretches_are_drawn_dashed_in_the_overview_and_faint_on_the_coin_page(warehouse, browser):
    """An outage from 40 to 10 minutes ago filled with 5-minutely points of the market charts,
    on a frozen clock (all 55 minutes inside the 1 h window, the last live tick not ahead of now)."""
    from playwright.sync_api import expect

    from ..conftest import warehouse_row

    now = frozen_now(second=30)
    minute = now.replace(second=0)
    live = [*range(55, 40, -1), *range(9, -1, -1)]  # minutes ago
    backfilled = range(40, 9, -5)  # 40, 35, ..., 10
    load(warehouse, [warehouse_row("bitcoin", 100.0 + m, minute - timedelta(minutes=m, seconds=-20)) for m in live])
    load(warehouse, [warehouse_row("bitcoin", 100.0 + m, minute - timedelta(minutes=m), origin="backfill") for m in backfilled])
    server = DashboardServer(DuckDBBackend(warehouse.path), port=0, refresh_seconds=60, clock=lambda: now).start()
    page, api_statuses, page_errors = _open(browser, LAPTOP)
    try:
        page.goto(server.url)
        dashed = page.locator('#chart path.backfill[data-coin="bitcoin"]')
        expect(dashed).to_have_count(1)
        expect(dashed).to_have_css("stroke-dasharray", "5px, 4px")
        expect(page.locator('#chart path.series[data-coin="bitcoin"]')).to_have_css("stroke-dasharray", "none")
        # The stretch joins the live line at both ends: the live point before it, 7 points, the one after.
        assert dashed.get_attribute("d").count("L") == 8
        # The live line itself breaks over the stretch: two runs.
        assert page.get_attribute('#chart path.series[data-coin="bitcoin"]', "d").count("M") == 2

        page.goto(server.url + "coin/bitcoin")
        expect(page.locator("#coin-chart g.candle")).to_have_count(len(live) + len(backfilled))
        faint = page.locator("#coin-chart g.candle.backfilled")
        expect(faint).to_have_count(len(backfilled))
        expect(faint.first).to_have_css("opacity", "0.5")
        coarse = page.locator("#coin-chart path.close-line.backfill")
        expect(coarse).to_have_css("stroke-dasharray", "5px, 4px")
        assert coarse.get_attribute("d").count("L") == 8  # from the candle before to the candle after
        expect(page.locator("#coin-chart g.candle:not(.backfilled)").first).to_have_css("opacity", "1")
        _assert_chart_readable(page, "#coin-chart")
    finally:
        page.close()
        server.stop()

    assert api_statuses and set(api_statuses) == {200}
    assert page_errors == []


def _amount(v: float) -> str:
    """A price's digits as format.js writes them at and above 0.001 (whole from 1,000, cents
    from 1, four significant digits below)."""
    if v >= 1000:
        return f"{v:,.0f}"
    return f"{v:,.2f}" if v >= 1 else repr(float(format(v, ".4g")))


def test_the_currency_switch_shows_each_currencys_prices_in_its_own_format_and_keeps_it_in_the_address(
    warehouse, browser
):
    """usd and btc prices of the same market (btc at the replay's fixed rate), on a frozen clock."""
    from playwright.sync_api import expect

    now = frozen_now(second=20)
    latest = {}
    for currency in ("usd", "btc"):
        for frame, minutes_ago in enumerate((2, 1, 0)):
            ticks = market_ticks(frame, now - timedelta(minutes=minutes_ago), top=12, vs_currency=currency)
            load(warehouse, ticks)
        latest[currency] = {tick["coin_id"]: tick for tick in ticks}
    server = DashboardServer(DuckDBBackend(warehouse.path), port=0, refresh_seconds=60, clock=lambda: now,
                             vs_currencies=("usd", "btc")).start()  # fmt: skip
    page, api_statuses, page_errors = _open(browser, LAPTOP)
    # What the page must show for bitcoin and ether in each currency: $ before, BTC after.
    usd_btc, usd_eth = (f"${_amount(latest['usd'][c]['price'])}" for c in ("bitcoin", "ethereum"))
    btc_btc, btc_eth = (f"{_amount(latest['btc'][c]['price'])} BTC" for c in ("bitcoin", "ethereum"))
    price = page.locator('#latest tr[data-coin="bitcoin"] td.price')
    ether = page.locator('#latest tr[data-coin="ethereum"] td.price')
    buttons = page.locator("#currency button")
    try:
        page.goto(server.url)
        expect(buttons).to_have_text(["usd", "btc"])
        expect(page.locator('#currency button[aria-pressed="true"]')).to_have_text("usd")
        expect(price).to_have_text(usd_btc)
        expect(ether).to_have_text(usd_eth)
        expect(page.locator('#latest tr[data-coin="bitcoin"] td.mcap')).to_have_text(re.compile(r"^\$[\d.]+[KMBT]$"))

        page.click('#currency button[data-currency="btc"]')
        expect(page.locator("#latest")).to_have_attribute("data-currency", "btc")
        expect(price).to_have_text(btc_btc)
        expect(ether).to_have_text(btc_eth)
        expect(page.locator('#latest tr[data-coin="bitcoin"] td.mcap')).to_have_text(re.compile(r"^[\d.]+[KMBT]? BTC$"))
        expect(page.locator('#legend li[data-coin="bitcoin"] .price')).to_have_text(btc_btc)
        assert page.url == server.url + "?currency=btc"

        # The coin's page keeps the currency; switching there switches its figures.
        page.click('#latest tr[data-coin="bitcoin"] a')
        expect(page.locator("#coin-price")).to_have_text(btc_btc)
        assert page.url == server.url + "coin/bitcoin?currency=btc"
        expect(page.locator("#coin-readout")).to_contain_text(" BTC")
        page.click('#currency button[data-currency="usd"]')
        expect(page.locator("#coin-price")).to_have_text(usd_btc)
        assert page.url == server.url + "coin/bitcoin"

        # The address alone picks it; one the producer does not poll falls back to the first.
        page.goto(server.url + "?currency=btc")
        expect(price).to_have_text(btc_btc)
        page.goto(server.url + "?currency=eur")
        expect(price).to_have_text(usd_btc)
        assert page.url == server.url
    finally:
        page.close()
        server.stop()

    assert api_statuses and set(api_statuses) == {200}
    assert page_errors == []
