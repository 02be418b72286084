"""core/coingecko_plans.py: the plans' documented figures, the month a schedule must last, and the docs' copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.coingecko_plans import MONTH_SECONDS, PLANS, MonthlyNeed, calls_needed, plans_table

PRODUCER_DOC = Path(__file__).resolve().parents[2] / "docs" / "PRODUCER.md"


def test_the_plans_are_coingeckos_documented_figures():
    figures = {name: (plan.calls_per_minute, plan.monthly_credits) for name, plan in PLANS.items()}
    assert figures == {"none": (None, None), "demo": (30, 10_000), "basic": (250, 100_000),
                       "analyst": (500, 500_000), "lite": (500, 2_000_000), "enterprise": (None, None),
                       "pro": (250, 100_000)}  # fmt: skip
    assert [name for name, plan in PLANS.items() if plan.reports_usage] == ["basic", "analyst", "lite",
                                                                             "enterprise", "pro"]


@pytest.mark.parametrize(("credits", "pages", "checks", "shortest"), [
    (10_000, 1, False, 268),  # Demo, 250 coins: 2,678,400 s / 10,000 = 267.84 s
    (10_000, 4, False, 1_072),  # Demo, 1,000 coins
    (100_000, 1, True, 27),  # Basic: 744 hourly checks set aside
    (500_000, 72, True, 387),  # Analyst, every coin (72 pages): 6,933 polls
])  # fmt: skip
def test_the_shortest_interval_lasts_the_longest_month_and_a_second_less_does_not(credits, pages, checks, shortest):
    def need(interval: float) -> MonthlyNeed:
        return MonthlyNeed("p", credits, interval, pages, 1, usage_checks=checks)

    assert need(1).shortest_interval() == shortest
    assert need(shortest).fits and not need(shortest - 1).fits
    assert need(shortest).refusal() is None and f"at least {shortest} s" in need(shortest - 1).refusal()


def test_a_poll_and_a_check_fall_at_the_start_of_the_time_counted():
    assert calls_needed(MONTH_SECONDS, interval_seconds=60, calls_per_poll=1, usage_checks=False) == 44_640
    assert calls_needed(61, interval_seconds=60, calls_per_poll=2, usage_checks=True) == 2 * 2 + 1
    assert MonthlyNeed("none", None, 0.1, 100, 3, usage_checks=False).fits  # no cap: anything lasts


def test_no_interval_fits_when_the_checks_alone_spend_the_credits():
    need = MonthlyNeed("enterprise", 700, 3600, 1, 1, usage_checks=True)
    assert need.shortest_interval() is None and "no interval fits" in need.refusal()


def test_the_docs_show_the_plans_table_the_code_reads():
    assert plans_table() in PRODUCER_DOC.read_text(), "copy core.coingecko_plans.plans_table() into docs/PRODUCER.md"
