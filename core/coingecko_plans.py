"""CoinGecko's plans, their monthly call credits, and whether a polling schedule lasts the month.

CoinGecko bills **monthly call credits**: one credit a call, whatever the endpoint.
Its older reference says every request counts; its newer Demo page says each
successful (HTTP 200) request does, and third-party summaries say non-2xx answers,
429s included, count too. cryptopipe plans on the safe side: every HTTP attempt
(retries, 429s and the ``/key`` usage check included) is a credit spent, and the
account's own count, where ``/key`` can be asked, corrects the ledger (the producer's
``producer/credits.py``). The month is the calendar month, UTC.

One table, read by the producer (``producer/config.py``: the plan's host, key header
and credits, and the refusal of a schedule that cannot last the month), the CDKTF app
(``cdktf/infra/environments.py``: the same refusal at synth, per environment) and the docs
(docs/PRODUCER.md, "Credits"). Sources, read 2026:

- plans, credits and rates: https://www.coingecko.com/en/api/pricing
- "each request made to any endpoint counts as a single call (1 call = 1 credit)":
  https://docs.coingecko.com/v3.0.1/reference/authentication
- keyless limits are by IP and shared, with no figure:
  https://docs.coingecko.com/docs/errors-and-rate-limits
- the usage endpoint, ``GET /key`` on the pro host (``monthly_call_credit``,
  ``current_total_monthly_calls``, ``current_remaining_monthly_calls``,
  ``rate_limit_request_per_minute``): https://docs.coingecko.com/reference/api-usage

**The month a schedule must last is the longest, 31 days** (2,678,400 s), so a
configuration that passes lasts every month. Demo's 10,000 credits at one call a poll
then allow a poll every 267.84 s, rounded up to **268 s**. (The average month,
365.2425 / 12 = 30.44 days, gives 262.97 s, the 263 s of issue #27; at 263 s a
31-day month needs 10,184 calls and runs dry about 11 hours early.)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

PRICING_URL = "https://www.coingecko.com/en/api/pricing"
USAGE_URL = "https://docs.coingecko.com/reference/api-usage"

#: The longest calendar month: a schedule that fits it fits every month.
MONTH_DAYS = 31
MONTH_SECONDS = MONTH_DAYS * 86_400
#: How often the producer asks ``/key`` for the account's count, on plans that have it.
USAGE_CHECK_SECONDS = 3_600

#: CoinGecko's largest ``per_page`` of ``/coins/markets``: a poll asks one page per 250 coins.
MAX_PER_PAGE = 250

#: What ``top_n`` says for every coin CoinGecko lists: pages until the listing ends.
ALL = "all"
#: The most coins ``top_n = "all"`` pages through, 80 pages, and so what the monthly and
#: per-minute checks plan for: the number of coins listed is not known before the poll,
#: but a schedule's cost must be. CoinGecko listed about 17,000-18,000 coins (68-72 pages)
#: in 2025-2026 (issue #27); 20,000 leaves room for years of listings. A listing that
#: outgrows it is logged at every poll (``listing_beyond_all``): set ``top_n`` to a number.
ALL_COINS_BOUND = 20_000

DEMO_HEADER = "x-cg-demo-api-key"
PRO_HEADER = "x-cg-pro-api-key"


@dataclass(frozen=True)
class Plan:
    """One CoinGecko plan as documented; None where CoinGecko documents no figure."""

    name: str
    """What ``api_plan`` says: ``none``, ``demo``, ``basic``, ``analyst``, ``lite``, ``enterprise``, ``pro``."""
    key_header: str | None
    """The header the key travels in; None: keyless."""
    pro_host: bool
    """Served by pro-api.coingecko.com (the paid plans), which also answers ``/key``."""
    calls_per_minute: int | None
    """The documented rate limit; ``requests_per_minute`` should stay at or under it."""
    monthly_credits: int | None
    """Credits a month; None: no monthly cap (keyless) or a contract's own (``monthly_credits`` says)."""
    usd_a_month: int | None
    """List price a month, billed yearly, as the pricing page shows it; None: free or quoted."""
    note: str = ""

    @property
    def reports_usage(self) -> bool:
        """Whether the account's count can be read from ``GET /key`` (the pro host's)."""
        return self.pro_host


_PAID = {"key_header": PRO_HEADER, "pro_host": True}
_BASIC = Plan("basic", **_PAID, calls_per_minute=250, monthly_credits=100_000, usd_a_month=35)

#: Every plan ``api_plan`` may name, in the order of the docs' table.
PLANS: Mapping[str, Plan] = {plan.name: plan for plan in (
    Plan("none", None, False, None, None, None,
         "keyless: limited by IP, shared with everyone behind it; no monthly cap or rate is documented"),
    Plan("demo", DEMO_HEADER, False, 30, 10_000, 0, "free; the rate is 'about 30' and varies with traffic"),
    _BASIC,
    Plan("analyst", **_PAID, calls_per_minute=500, monthly_credits=500_000, usd_a_month=129),
    Plan("lite", **_PAID, calls_per_minute=500, monthly_credits=2_000_000, usd_a_month=499),
    Plan("enterprise", **_PAID, calls_per_minute=None, monthly_credits=None, usd_a_month=None,
         note="custom: set monthly_credits (and requests_per_minute) to the contract's figures"),
    Plan("pro", **_PAID, calls_per_minute=_BASIC.calls_per_minute, monthly_credits=_BASIC.monthly_credits,
         usd_a_month=None, note="any paid plan, as api_plan said before plans were named: planned as Basic, "
                                "the smallest, unless monthly_credits says more"),
)}
PLAN_NAMES = tuple(PLANS)


def pages_for(coins: int | str) -> int:
    """Pages of ``/coins/markets`` one currency of a poll of ``coins`` coins takes at most
    (``"all"``: :data:`ALL_COINS_BOUND`'s)."""
    return math.ceil(coins_bound(coins) / MAX_PER_PAGE)


def coins_bound(coins: int | str) -> int:
    """The most coins a poll of ``top_n = coins`` fetches: the number, or :data:`ALL_COINS_BOUND` for ``"all"``."""
    return ALL_COINS_BOUND if coins == ALL else int(coins)


def calls_needed(seconds: float, *, interval_seconds: float, calls_per_poll: int, usage_checks: bool) -> int:
    """Calls that polling every ``interval_seconds`` (plus an hourly ``/key`` check when
    ``usage_checks``) makes in ``seconds``: a poll, and a check, at its start."""
    polls = math.ceil(seconds / interval_seconds)
    checks = math.ceil(seconds / USAGE_CHECK_SECONDS) if usage_checks else 0
    return polls * calls_per_poll + checks


@dataclass(frozen=True)
class MonthlyNeed:
    """What a polling schedule needs in the longest month, against a plan's credits."""

    plan: str
    credits: int | None
    """The credits a month it has; None: no cap, every schedule fits."""
    interval_seconds: float
    pages: int
    currencies: int
    usage_checks: bool
    """Whether the producer asks ``/key`` hourly (paid plans): 744 calls in 31 days."""

    @classmethod
    def of(cls, plan: str, monthly_credits: int | None, *, interval_seconds: float, coins: int | str,
           currencies: int) -> MonthlyNeed:
        """The need of a producer configured so (the producer's settings and each environment's
        at synth both ask this): ``monthly_credits`` None takes the plan's; ``coins`` a number
        or ``"all"``, planned at its bound (:func:`pages_for`)."""
        credits = PLANS[plan].monthly_credits if monthly_credits is None else monthly_credits
        return cls(plan, credits, interval_seconds, pages_for(coins), currencies,
                   usage_checks=PLANS[plan].reports_usage)

    @property
    def calls_per_poll(self) -> int:
        return self.pages * self.currencies

    @property
    def checks(self) -> int:
        """The month's hourly ``/key`` checks (none without them)."""
        return math.ceil(MONTH_SECONDS / USAGE_CHECK_SECONDS) if self.usage_checks else 0

    @property
    def calls(self) -> int:
        """Calls a 31-day month needs: every poll's pages and currencies, and the usage checks."""
        return calls_needed(MONTH_SECONDS, interval_seconds=self.interval_seconds,
                            calls_per_poll=self.calls_per_poll, usage_checks=self.usage_checks)

    @property
    def fits(self) -> bool:
        return self.credits is None or self.calls <= self.credits

    def shortest_interval(self) -> int | None:
        """The shortest whole-second interval whose month fits the credits; None if none does
        (the checks alone use them up) or there is no cap."""
        if self.credits is None:
            return None
        polls = (self.credits - self.checks) // self.calls_per_poll
        return math.ceil(MONTH_SECONDS / polls) if polls >= 1 else None

    def refusal(self) -> str | None:
        """One line saying why the schedule cannot last the month and what would; None when it fits."""
        if self.fits:
            return None
        checks = f", {self.checks:,} of them hourly /key checks" if self.usage_checks else ""
        shortest = self.shortest_interval()
        fix = (f"expected an interval of at least {shortest} s, fewer pages or currencies" if shortest
               else "no interval fits")
        plural = "s" if self.pages > 1 else ""
        currencies = "currency" if self.currencies == 1 else "currencies"
        return (f"polling every {self.interval_seconds:g} s, {self.pages} page{plural} × {self.currencies} "
                f"{currencies} a poll, needs {self.calls:,} calls a month ({MONTH_DAYS} days{checks}) but plan "
                f"{self.plan} has {self.credits:,} credits: {fix}, or a plan with more credits "
                f"(docs/PRODUCER.md, Credits)")


def plans_table() -> str:
    """The plans as docs/PRODUCER.md shows them (a test keeps the two in step)."""
    def figure(value: int | None, unit: str = "") -> str:
        return "—" if value is None else f"{unit}{value:,}"

    rows = ["| `api_plan` | calls a minute | credits a month | $ a month (billed yearly) | host, key header | note |",
            "|---|---|---|---|---|---|"]
    for plan in PLANS.values():
        host = ("pro-api" if plan.pro_host else "api") + ".coingecko.com"
        key = f"`{plan.key_header}`" if plan.key_header else "no key"
        rows.append(f"| `{plan.name}` | {figure(plan.calls_per_minute)} | {figure(plan.monthly_credits)} | "
                    f"{figure(plan.usd_a_month, '$')} | {host}, {key} | {plan.note} |")
    return "\n".join(rows)
