"""The dashboard in headless Chromium while the warehouse is being written, as in `cryptopipe up`.

Debian's ``chromium`` driven by playwright, which is told to use it (it never
downloads a browser). The test command installs it:
``apt-get install -y --no-install-recommends chromium fonts-liberation``.

``CRYPTOPIPE_UPDATE_SCREENSHOT=1`` also saves the screenshot the README shows
(docs/img/dashboard.png); otherwise it goes to the test's temp dir only.
"""

from __future__ import annotations

import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cryptopipe.dashboard import DashboardServer, DuckDBBackend

from .conftest import MarketWriter

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"
# The stylesheet's --stale colour.
RED = "rgb(229, 72, 77)"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium (scripts/test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _is_decade(value: float) -> bool:
    return abs(math.log10(value) - round(math.log10(value))) < 1e-9


def test_dashboard_while_stream_writes_draws_log_chart_fills_table_refreshes_and_turns_red(
    warehouse, browser, tmp_path
):
    # Locator assertions, not wait_for_function: they need no eval, which the page's
    # Content-Security-Policy forbids, and the test keeps that policy on.
    from playwright.sync_api import expect

    writer = MarketWriter(warehouse, top=12, every=0.4)
    writer.start()
    server = DashboardServer(DuckDBBackend(warehouse.path), port=0, refresh_seconds=1, stale_after_seconds=4).start()
    page = browser.new_page(viewport={"width": 1280, "height": 600})
    api_statuses: list[int] = []
    page_errors: list[str] = []
    page.on("response", lambda response: "/api/" in response.url and api_statuses.append(response.status))
    page.on("pageerror", lambda error: page_errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and page_errors.append(message.text))
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

        # The table: every coin the stream loaded, by market-cap rank.
        expect(page.locator("#latest tbody tr")).to_have_count(12)
        expect(page.locator("#latest tbody tr").first).to_have_attribute("data-coin", "bitcoin")
        expect(page.locator('#latest tr[data-coin="bitcoin"] td.price')).to_have_text(re.compile(r"^\$[\d,]+(\.\d+)?$"))
        expect(page.locator("#freshness")).to_have_class("fresh")

        # Refresh: newer ticks reach the table and the chart without a reload.
        row = page.locator('#latest tr[data-coin="bitcoin"]')
        line = page.locator('#chart path[data-coin="bitcoin"]')
        before, line_before = row.get_attribute("data-last-updated"), line.get_attribute("d")
        expect(row).not_to_have_attribute("data-last-updated", before, timeout=10_000)
        expect(line).not_to_have_attribute("d", line_before, timeout=10_000)
        assert row.get_attribute("data-last-updated") > before
        screenshot = tmp_path / "dashboard.png"
        page.screenshot(path=screenshot)
        if os.environ.get("CRYPTOPIPE_UPDATE_SCREENSHOT") == "1":
            shutil.copyfile(screenshot, README_SCREENSHOT)

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
