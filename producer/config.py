"""The producer's settings: one frozen pydantic-settings model, defaults < environment < keywords.

Every field can be set with ``CRYPTOPIPE__PRODUCER__<FIELD>`` (any case), e.g.
``CRYPTOPIPE__PRODUCER__TOP_N=100``; lists are comma-separated. An unknown variable
with that prefix is an error, so a typo cannot silently leave a default in force.
A refused value raises :class:`InvalidSetting`, naming the variable, the value and
what is expected. docs/PRODUCER.md lists every setting in a table generated from the
fields' docstrings (:func:`variables_table`; scripts/docs.py). The machinery shared with the deployment's settings is :mod:`core.settings`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from core.coingecko_plans import ALL, ALL_COINS_BOUND, PLAN_NAMES, PLANS, MonthlyNeed, Plan, pages_for
from core.gcp import PROJECT_ID
from core.settings import CoinIds, CurrencyCodes, Problem, Refused, StrictSettings, matching, problems
from producer.errors import ConfigError

ENV_PREFIX = "CRYPTOPIPE__PRODUCER__"

PUBLIC_API_URL = "https://api.coingecko.com/api/v3"
PRO_API_URL = "https://pro-api.coingecko.com/api/v3"
PUBLIC_HOST = urlsplit(PUBLIC_API_URL).hostname
PRO_HOST = urlsplit(PRO_API_URL).hostname

_Count = Annotated[int, Field(ge=1)]
_Seconds = Annotated[float, Field(gt=0)]
_SECRET_VERSION = rf"(projects/({PROJECT_ID}|[0-9]+)/secrets/[A-Za-z0-9_-]+/versions/([0-9]+|latest))?"


def _top_n(value: Any) -> Any:
    """A number of coins or the word ``all``; anything else refused with both named."""
    if not isinstance(value, str):
        return value
    if value.strip() != ALL and not value.strip().isdigit():
        raise ValueError(f"expected a number of coins from 1, or {ALL!r} for every listed coin")
    return value.strip()


def variable(field: str) -> str:
    """The environment variable of ``field``: ``top_n`` -> ``CRYPTOPIPE__PRODUCER__TOP_N``."""
    return ENV_PREFIX + field.upper()


class InvalidSetting(ConfigError):
    """A setting was refused. The message names its variable, the value and what is expected;
    the parts are attributes too, for callers that name the setting their own way (the
    ``cryptopipe up`` option that set it)."""

    def __init__(self, problem: Problem) -> None:
        self.field, self.value, self.reason = problem.field, problem.value, problem.reason
        if problem.kind == "unknown":
            known = ", ".join(sorted(variable(name) for name in ProducerConfig.model_fields))
            super().__init__(f"unknown setting {problem.field}; the producer reads {known}")
        else:
            super().__init__(f"{variable(problem.field)}={problem.value!r} is invalid: {problem.reason}")


class ProducerConfig(StrictSettings):
    """Everything the producer needs to know; validated on construction.

    ``ProducerConfig(**values)`` reads the environment too, ``values`` winning; so does
    :meth:`from_env`, whose name says so.
    """

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="forbid", frozen=True, validate_default=True, str_strip_whitespace=True,
        use_attribute_docstrings=True,
    )

    api_plan: Literal[PLAN_NAMES] = "none"
    """The CoinGecko plan: ``none`` (keyless), ``demo`` (key sent in ``x-cg-demo-api-key``), or a paid plan, ``basic``,
    ``analyst``, ``lite`` or ``enterprise`` (key sent in ``x-cg-pro-api-key``); ``pro``, any paid plan, is
    planned as ``basic``. It sets the monthly call credits the schedule must last on: start-up fails, in one
    line, if polling every ``INTERVAL_SECONDS`` would spend them before a 31-day month ends, naming the interval
    that fits (docs/PRODUCER.md, "Credits")."""

    monthly_credits: Annotated[int, Field(ge=1)] | None = None
    """Call credits a month, instead of the plan's documented figure (``enterprise`` needs it; keyless has no monthly
    cap)."""

    base_url: str = ""
    """CoinGecko API root; unset, the plan's host (``https://api.coingecko.com/api/v3``, or
    ``https://pro-api.coingecko.com/api/v3`` for the paid plans). Point it at the replay server (``python -m cryptopipe.replay``) for offline runs. A demo key
    on the pro host, or a pro key on the public host, is refused."""

    api_key: str = Field("", repr=False)
    """The demo or pro key. Never logged. Wins over ``API_KEY_SECRET``."""

    api_key_secret: Annotated[str, matching(_SECRET_VERSION, "a Secret Manager version like "
                                            "projects/P/secrets/coingecko-api-key/versions/latest")] = ""
    """Secret Manager version holding the key, e.g. ``projects/P/secrets/coingecko-api-key/versions/latest`` (``P`` the
    project's id or number); read once at start-up with the VM's service account
    (``roles/secretmanager.secretAccessor``). Needs ``google-cloud-secret-manager``."""

    vs_currencies: CurrencyCodes = ("usd",)
    """Quote currencies, comma-separated (``usd,eur,btc``): a poll asks for every page in each, one request a page and
    currency, and lands them all as one object; back-fill fills each currency's gaps (docs/PRODUCER.md, "Quote
    currencies")."""

    top_n: Annotated[_Count | Literal[ALL], BeforeValidator(_top_n)] = Field(250, description=(
        "How many coins, by market cap: at most ``ceil(N / 250)`` requests per poll, fewer when the listing ends "
        f"first (a short or empty page); ``{ALL}``: every coin CoinGecko lists, paging until the listing ends, "
        f"planned (credits, request budget) as {ALL_COINS_BOUND:,} coins, {pages_for(ALL)} pages. Ignored when "
        "``COIN_IDS`` is set (docs/PRODUCER.md, \"Every coin\")."))

    coin_ids: CoinIds = ()
    """Explicit coin ids, comma-separated (``bitcoin,ethereum``): one request per 250 ids."""

    interval_seconds: _Seconds = 60.0
    """Time between poll starts. CoinGecko caches ``/coins/markets`` for 45-60 s, so faster polling mostly repeats rows
    (the stream de-duplicates them)."""

    requests_per_minute: _Count = 10
    """Request budget in any 60 s window, retries included. ``10`` is safe keyless; keep it at or under the plan's rate
    (Demo about 30, Basic 250, Analyst and Lite 500 a minute). Start-up fails if one poll needs more requests
    than an interval's share, naming the shortest interval that fits."""

    connect_timeout_seconds: _Seconds = 5.0
    """Time allowed to connect to the API."""

    read_timeout_seconds: _Seconds = 10.0
    """Time allowed between bytes of a response."""

    max_attempts: _Count = 4
    """Attempts per page within one poll, the first included."""

    backoff_base_seconds: Annotated[float, Field(ge=0)] = 1.0
    """The first retry waits a random time up to this (full jitter); each further retry doubles the bound."""

    backoff_cap_seconds: _Seconds = 30.0
    """Upper bound of a backoff wait (a server's ``Retry-After`` is honoured even when longer)."""

    landing_uri: Annotated[str, matching(r"(?!gs:/*$).+", "a directory or gs://bucket/prefix")] = "data/landing"
    """A local directory, or ``gs://bucket/prefix``."""

    spool_dir: str = "data/producer-spool"
    """Local directory where each finished poll is made durable before it is landed; on the VM, a persistent path such
    as ``/var/lib/cryptopipe/spool``."""

    spool_max_polls: _Count = 4320
    """Most polls the spool holds: three days at one poll a minute, about 0.6 GB for 250 coins."""

    gcs_timeout_seconds: _Seconds = 10.0
    """Time allowed for one HTTP request to GCS."""

    gcs_retry_seconds: _Seconds = 10.0
    """How long the GCS client retries transient failures of one upload before the poll is left in the spool for the
    next cycle. Keep it well inside the interval: during an outage every cycle spends this long."""

    backfill_after_intervals: Annotated[float, Field(ge=0)] = 3.0
    """Back-fill a gap in the data longer than this many intervals (between the newest event times of two landed polls,
    across restarts) from CoinGecko's market charts, with the requests live polls leave over; ``0``: never
    automatically (docs/PRODUCER.md, "Back-fill")."""

    health_file: str = ""
    """Heartbeat file, rewritten after every poll (JSON: time, pid, the counters below, spool depth, and where the
    month's CoinGecko credits stand)."""

    shutdown_grace_seconds: _Seconds = 8.0
    """After SIGTERM/SIGINT, how long the poll in flight may take before the process exits anyway. Keep it below
    systemd's ``TimeoutStopSec``."""

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except (ValidationError, Refused) as error:
            raise InvalidSetting(problems(error)[0]) from None

    @field_validator("base_url")
    @classmethod
    def _plan_host(cls, url: str, info: ValidationInfo) -> str:
        plan = PLANS.get(info.data.get("api_plan", "none"), PLANS["none"])
        url = (url or (PRO_API_URL if plan.pro_host else PUBLIC_API_URL)).rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s) URL such as {PUBLIC_API_URL}")
        if plan.pro_host and parts.hostname == PUBLIC_HOST:
            raise ValueError(f"expected {PRO_API_URL}: pro keys only work on {PRO_HOST}")
        if plan.name == "demo" and parts.hostname == PRO_HOST:
            raise ValueError(f"expected {PUBLIC_API_URL}: demo keys only work on {PUBLIC_HOST}")
        return url

    @model_validator(mode="after")
    def _fits_together(self) -> ProducerConfig:
        if self.api_plan == "none" and (self.api_key or self.api_key_secret):
            raise Refused("api_plan", self.api_plan, "a key is configured: expected 'demo' or a paid plan "
                          "('basic', 'analyst', 'lite', 'enterprise', 'pro'), so the key is sent in the right header")
        if self.monthly_credit_limit is None and self.api_plan != "none":
            raise Refused("monthly_credits", None, f"plan {self.api_plan!r} documents no credits: expected the "
                          "contract's call credits a month")
        if self.backoff_base_seconds > self.backoff_cap_seconds:
            raise Refused("backoff_base_seconds", self.backoff_base_seconds,
                          f"expected at most backoff_cap_seconds ({self.backoff_cap_seconds:g})")
        needed, budget = self.requests_per_poll, self.requests_per_minute
        if needed > budget * self.interval_seconds / 60:
            raise Refused(
                "interval_seconds", self.interval_seconds,
                f"one poll needs {needed} request{'s' if needed > 1 else ''} but {budget} a minute allow only "
                f"{budget * self.interval_seconds / 60:g} per {self.interval_seconds:g} s: expected at least "
                f"{needed * 60 / budget:g} s, fewer coins, or a larger {variable('requests_per_minute')} "
                "if your plan allows it",
            )
        refusal = self.monthly_need.refusal()
        if refusal:
            raise Refused("interval_seconds", self.interval_seconds, refusal)
        return self

    @property
    def plan(self) -> Plan:
        """The plan ``api_plan`` names, with its documented figures."""
        return PLANS[self.api_plan]

    @property
    def monthly_credit_limit(self) -> int | None:
        """Credits a month: ``monthly_credits``, else the plan's; None: no monthly cap."""
        return self.monthly_credits if self.monthly_credits is not None else self.plan.monthly_credits

    @property
    def currencies(self) -> int:
        """Quote currencies each poll asks for, one request a page and currency."""
        return len(self.vs_currencies)

    @property
    def monthly_need(self) -> MonthlyNeed:
        """What this schedule needs in the longest month, against the plan's credits."""
        return MonthlyNeed.of(self.api_plan, self.monthly_credits, interval_seconds=self.interval_seconds,
                              coins=len(self.coin_ids) or self.top_n, currencies=self.currencies)

    @property
    def pages_per_poll(self) -> int:
        """Pages of one currency a poll fetches at most (a listing that ends first takes fewer)."""
        return pages_for(len(self.coin_ids) or self.top_n)

    @property
    def requests_per_poll(self) -> int:
        """Requests one poll makes when nothing fails: its pages for each currency."""
        return self.pages_per_poll * self.currencies

    @classmethod
    def from_env(cls, **overrides: Any) -> ProducerConfig:
        """The settings: defaults, then ``CRYPTOPIPE__PRODUCER__*`` variables, then ``overrides``.

        With ``CRYPTOPIPE__PRODUCER__TOP_N=100`` set, ``from_env().top_n`` is 100 and
        ``from_env(top_n=50).top_n`` is 50.
        """
        return cls(**overrides)

    def masked(self) -> dict[str, Any]:
        """The settings as a dict that is safe to log: the key is replaced by its state."""
        values = self.model_dump()
        values["api_key"] = "***" if self.api_key else "(unset)"
        values["coin_ids"] = list(self.coin_ids)
        values["vs_currencies"] = list(self.vs_currencies)
        return values

    def with_api_key(self, key: str) -> ProducerConfig:
        """A copy carrying ``key`` (read from Secret Manager at start-up)."""
        return self.model_copy(update={"api_key": key})


def variables_table() -> str:
    """Every setting as docs/PRODUCER.md lists it: variable, default, what it does (the field's docstring)."""
    from core.docsections import markdown_table

    def shown(default: Any) -> str:
        if default in ("", (), None):
            return "(unset)"
        if isinstance(default, tuple):
            return f"`{','.join(default)}`"
        return f"`{default:g}`" if isinstance(default, float) else f"`{default}`"

    rows = [(f"`{variable(name)}`", shown(field.default), " ".join(field.description.replace("``", "`").split()))
            for name, field in ProducerConfig.model_fields.items()]
    return markdown_table(("variable", "default", "what it does"), rows)
