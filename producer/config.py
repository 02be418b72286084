"""The producer's settings: one frozen dataclass, defaults < environment < overrides.

Every field can be set with ``CRYPTOPIPE__PRODUCER__<FIELD>`` (upper case), e.g.
``CRYPTOPIPE__PRODUCER__TOP_N=100``. An unknown variable with that prefix is an error,
so a typo cannot silently leave a default in force. The README lists every
option; a test keeps it in step with this file.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, get_type_hints
from urllib.parse import urlsplit

from producer.errors import ConfigError

ENV_PREFIX = "CRYPTOPIPE__PRODUCER__"

PUBLIC_API_URL = "https://api.coingecko.com/api/v3"
PRO_API_URL = "https://pro-api.coingecko.com/api/v3"
PUBLIC_HOST = urlsplit(PUBLIC_API_URL).hostname
PRO_HOST = urlsplit(PRO_API_URL).hostname

#: The header each plan's key travels in; keyless requests send none.
PLAN_HEADERS = {"demo": "x-cg-demo-api-key", "pro": "x-cg-pro-api-key"}
API_PLANS = ("none", *PLAN_HEADERS)

#: CoinGecko's largest ``per_page``.
MAX_PER_PAGE = 250


@dataclass(frozen=True)
class ProducerConfig:
    """Everything the producer needs to know; validated on construction."""

    base_url: str = ""
    """CoinGecko API root. Empty: the plan's host (``https://pro-api.coingecko.com/api/v3``
    for ``pro``, ``https://api.coingecko.com/api/v3`` otherwise). Point it at the replay
    server for offline runs."""

    api_plan: str = "none"
    """``none`` (keyless), ``demo`` (key in ``x-cg-demo-api-key``, public host) or ``pro``
    (key in ``x-cg-pro-api-key``, pro host)."""

    api_key: str = field(default="", repr=False)
    """The demo or pro key. Never logged; prefer ``api_key_secret`` on GCP."""

    api_key_secret: str = ""
    """Secret Manager version holding the key, e.g.
    ``projects/P/secrets/coingecko-api-key/versions/latest``; read at start-up when set."""

    vs_currency: str = "usd"
    """Quote currency of every price."""

    top_n: int = 250
    """How many coins to fetch, by market cap; ignored when ``coin_ids`` is set."""

    coin_ids: tuple[str, ...] = ()
    """Explicit CoinGecko coin ids (comma-separated in the environment)."""

    interval_seconds: float = 60.0
    """Time between poll starts. CoinGecko caches ``/coins/markets`` for 45-60 s, so
    polling faster mostly fetches repeats."""

    requests_per_minute: int = 10
    """Request budget over any 60 s window, retries included. 10 is safe keyless;
    demo keys allow 30, pro plans more."""

    connect_timeout_seconds: float = 5.0
    """Time allowed to open a connection to the API."""

    read_timeout_seconds: float = 10.0
    """Time allowed between bytes of a response."""

    max_attempts: int = 4
    """Attempts per page within one poll, the first one included."""

    backoff_base_seconds: float = 1.0
    """First retry waits up to this long (full jitter); each further retry doubles it."""

    backoff_cap_seconds: float = 30.0
    """Longest wait between two attempts unless the server's ``Retry-After`` says more."""

    landing_uri: str = "data/landing"
    """Where polls land: a local directory or ``gs://bucket/prefix``."""

    spool_dir: str = "data/producer-spool"
    """Local directory where each finished poll is made durable before it is landed;
    polls wait here while the landing zone is unreachable."""

    spool_max_polls: int = 4320
    """Most polls the spool holds (three days at one poll a minute, about 0.6 GB for
    250 coins); a poll finished while it is full is dropped and logged as an error."""

    gcs_timeout_seconds: float = 10.0
    """Time allowed for one HTTP request to GCS."""

    gcs_retry_seconds: float = 10.0
    """Total time the GCS client retries a transient failure before the poll is left
    in the spool for the next cycle. Keep it well inside the interval: an outage
    costs this much of every cycle."""

    health_file: str = ""
    """Heartbeat file rewritten after every poll (JSON: time, counters, spool depth);
    empty: none. A watchdog compares its age with the interval."""

    shutdown_grace_seconds: float = 8.0
    """After SIGTERM/SIGINT, how long the poll in flight may take before the process
    exits anyway (a finished poll is already in the spool by then)."""

    def __post_init__(self) -> None:
        if not self.base_url:
            object.__setattr__(self, "base_url", PRO_API_URL if self.api_plan == "pro" else PUBLIC_API_URL)
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        object.__setattr__(self, "coin_ids", tuple(self.coin_ids))
        self._validate()

    def _validate(self) -> None:
        if self.api_plan not in API_PLANS:
            raise _invalid("api_plan", self.api_plan, f"one of {', '.join(API_PLANS)}")
        url = urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise _invalid("base_url", self.base_url, "an http(s) URL such as " + PUBLIC_API_URL)
        if self.api_plan == "pro" and url.hostname == PUBLIC_HOST:
            raise _invalid("base_url", self.base_url, f"{PRO_API_URL}: pro keys only work on {PRO_HOST}")
        if self.api_plan == "demo" and url.hostname == PRO_HOST:
            raise _invalid("base_url", self.base_url, f"{PUBLIC_API_URL}: demo keys only work on {PUBLIC_HOST}")
        if self.api_plan == "none" and (self.api_key or self.api_key_secret):
            raise ConfigError(
                f"a key is configured but {_env('api_plan')} is 'none': set it to 'demo' or 'pro' "
                "so the key is sent in the right header"
            )
        if not re.fullmatch(r"[a-z0-9]+", self.vs_currency):
            raise _invalid("vs_currency", self.vs_currency, "a lower-case CoinGecko currency code such as usd")
        for name in ("top_n", "requests_per_minute", "max_attempts", "spool_max_polls"):
            if getattr(self, name) < 1:
                raise _invalid(name, getattr(self, name), "an integer of at least 1")
        for name in (
            "interval_seconds",
            "connect_timeout_seconds",
            "read_timeout_seconds",
            "backoff_cap_seconds",
            "gcs_timeout_seconds",
            "gcs_retry_seconds",
            "shutdown_grace_seconds",
        ):
            if not getattr(self, name) > 0:
                raise _invalid(name, getattr(self, name), "a number of seconds above 0")
        if not 0 <= self.backoff_base_seconds <= self.backoff_cap_seconds:
            raise _invalid("backoff_base_seconds", self.backoff_base_seconds, "between 0 and backoff_cap_seconds")
        if any(not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", coin) for coin in self.coin_ids):
            raise _invalid(
                "coin_ids", ",".join(self.coin_ids), "comma-separated CoinGecko ids such as bitcoin,ethereum"
            )
        if not self.landing_uri or self.landing_uri.rstrip("/") == "gs:":
            raise _invalid("landing_uri", self.landing_uri, "a directory or gs://bucket/prefix")
        allowed = self.requests_per_minute * self.interval_seconds / 60
        if self.requests_per_poll > allowed:
            raise ConfigError(
                f"one poll needs {self.requests_per_poll} requests but {_env('requests_per_minute')}="
                f"{self.requests_per_minute} allows only {allowed:g} per {self.interval_seconds:g} s interval: "
                "fetch fewer coins, poll less often or raise the budget your plan allows"
            )

    @property
    def requests_per_poll(self) -> int:
        """Pages one poll fetches when nothing fails."""
        wanted = len(self.coin_ids) or self.top_n
        return math.ceil(wanted / MAX_PER_PAGE)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ProducerConfig:
        """Build the config from ``CRYPTOPIPE__PRODUCER__*`` variables, then ``overrides``.

        >>> ProducerConfig.from_env({"CRYPTOPIPE__PRODUCER__TOP_N": "100"}).top_n
        100
        """
        environ = os.environ if environ is None else environ
        hints = get_type_hints(cls)
        names = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, raw in environ.items():
            if not key.startswith(ENV_PREFIX):
                continue
            name = key[len(ENV_PREFIX) :].lower()
            if name not in names:
                raise ConfigError(
                    f"unknown setting {key}; the producer reads {', '.join(sorted(_env(n) for n in names))}"
                )
            values[name] = _parse(name, hints[name], raw)
        unknown = set(overrides) - names
        if unknown:
            raise ConfigError(f"unknown producer settings {sorted(unknown)}; known: {sorted(names)}")
        values.update(overrides)
        return cls(**values)

    def masked(self) -> dict[str, Any]:
        """The settings as a dict that is safe to log: the key is replaced by its state."""
        values = asdict(self)
        values["api_key"] = "***" if self.api_key else "(unset)"
        values["coin_ids"] = list(self.coin_ids)
        return values

    def with_api_key(self, key: str) -> ProducerConfig:
        """A copy carrying ``key`` (read from Secret Manager at start-up)."""
        return replace(self, api_key=key)


def _env(name: str) -> str:
    return ENV_PREFIX + name.upper()


def _invalid(name: str, value: Any, expected: str) -> ConfigError:
    return ConfigError(f"{_env(name)}={value!r} is invalid: expected {expected}")


def _parse(name: str, kind: Any, raw: str) -> Any:
    raw = raw.strip()
    if kind is str:
        return raw
    if kind == tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    try:
        return kind(raw)
    except ValueError:
        expected = "an integer" if kind is int else "a number"
        raise _invalid(name, raw, expected) from None
