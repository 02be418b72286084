"""ProducerConfig: environment variables, validation, masking, the Secret Manager key."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

import producer
from producer import ConfigError, ProducerConfig
from producer.apikey import resolve_api_key
from producer.config import ENV_PREFIX, PRO_API_URL, PUBLIC_API_URL, InvalidSetting

from ..conftest import isolated_environ

DOCS = Path(__file__).resolve().parents[2] / "docs" / "PRODUCER.md"
SECRET = "projects/my-project/secrets/coingecko/versions/latest"


@pytest.fixture(autouse=True)
def environ(monkeypatch):
    """No producer variable of the shell this runs in; each test sets its own."""
    return isolated_environ(monkeypatch, ENV_PREFIX)


def test_from_env_overrides_defaults_when_variables_are_set(environ):
    environ(
        {
            "CRYPTOPIPE__PRODUCER__TOP_N": "100",
            "CRYPTOPIPE__PRODUCER__COIN_IDS": "bitcoin, ethereum,",
            "CRYPTOPIPE__PRODUCER__INTERVAL_SECONDS": "30",
            "CRYPTOPIPE__PRODUCER__LANDING_URI": "gs://bucket/landing",
            "UNRELATED": "ignored",
        }
    )
    config = ProducerConfig.from_env()
    assert config.top_n == 100
    assert config.coin_ids == ("bitcoin", "ethereum")
    assert config.interval_seconds == 30.0
    assert config.landing_uri == "gs://bucket/landing"
    assert config.vs_currencies == ("usd",)  # untouched default


def test_from_env_keyword_overrides_beat_environment(environ):
    environ({"CRYPTOPIPE__PRODUCER__TOP_N": "100"})
    assert ProducerConfig.from_env(top_n=50).top_n == 50
    assert ProducerConfig.from_env().top_n == 100


def test_from_env_rejects_unknown_variable_naming_the_valid_ones(environ):
    environ({"CRYPTOPIPE__PRODUCER__TOPN": "100"})
    with pytest.raises(ConfigError, match="unknown setting CRYPTOPIPE__PRODUCER__TOPN.*CRYPTOPIPE__PRODUCER__TOP_N"):
        ProducerConfig.from_env()


def test_from_env_rejects_unknown_keyword():
    with pytest.raises(ConfigError, match="unknown setting topn; the producer reads .*CRYPTOPIPE__PRODUCER__TOP_N"):
        ProducerConfig.from_env(topn=100)


def test_from_env_rejects_non_number_naming_variable_and_value(environ):
    environ({"CRYPTOPIPE__PRODUCER__TOP_N": "lots"})
    with pytest.raises(ConfigError, match=r"CRYPTOPIPE__PRODUCER__TOP_N='lots' is invalid: expected a number of "
                                          r"coins from 1, or 'all'"):
        ProducerConfig.from_env()
    environ({"CRYPTOPIPE__PRODUCER__TOP_N": "all", "CRYPTOPIPE__PRODUCER__REQUESTS_PER_MINUTE": "80"})
    assert ProducerConfig.from_env().top_n == "all"


def test_invalid_setting_carries_field_value_and_reason_for_other_wordings():
    with pytest.raises(InvalidSetting) as refused:
        ProducerConfig(vs_currencies="usd,EUR")
    assert (refused.value.field, refused.value.value) == ("vs_currencies", "usd,EUR")
    assert refused.value.reason == "expected comma-separated lower-case CoinGecko currency codes such as usd,eur,btc"


def test_config_uses_pro_host_when_plan_is_paid():
    assert ProducerConfig(api_plan="pro", api_key="k").base_url == PRO_API_URL
    assert ProducerConfig(api_plan="analyst", api_key="k").base_url == PRO_API_URL
    assert ProducerConfig(api_plan="demo", api_key="k", interval_seconds=300).base_url == PUBLIC_API_URL
    assert ProducerConfig().base_url == PUBLIC_API_URL


@pytest.mark.parametrize(
    ("plan", "url"), [("pro", PUBLIC_API_URL), ("demo", PRO_API_URL)], ids=["pro-on-public", "demo-on-pro"]
)
def test_config_rejects_key_sent_to_the_wrong_host(plan, url):
    with pytest.raises(ConfigError, match="BASE_URL.*keys only work on"):
        ProducerConfig(api_plan=plan, api_key="k", base_url=url)


def test_config_rejects_key_when_plan_is_none():
    with pytest.raises(ConfigError, match="API_PLAN='none' is invalid: a key is configured: expected 'demo' or a paid"):
        ProducerConfig(api_key="k")
    with pytest.raises(ConfigError, match="API_PLAN='none' is invalid: a key is configured"):
        ProducerConfig(api_key_secret=SECRET)
    assert "CG-secret" not in str(pytest.raises(ConfigError, ProducerConfig, api_key="CG-secret").value)


def test_config_rejects_budget_below_one_poll_when_too_many_pages():
    with pytest.raises(ConfigError, match=r"INTERVAL_SECONDS=60.0 is invalid: one poll needs 4 requests but 3 a "
                                          r"minute allow only 3 per 60 s: expected at least 80 s, fewer coins, or a "
                                          r"larger CRYPTOPIPE__PRODUCER__REQUESTS_PER_MINUTE"):
        ProducerConfig(top_n=1000, requests_per_minute=3)
    assert ProducerConfig(top_n=1000, requests_per_minute=3, interval_seconds=80).requests_per_poll == 4


def test_demo_at_the_default_60_s_is_refused_with_one_line_naming_what_it_needs_and_what_fits():
    with pytest.raises(InvalidSetting) as refused:
        ProducerConfig(api_plan="demo", api_key="k")
    assert str(refused.value) == (
        "CRYPTOPIPE__PRODUCER__INTERVAL_SECONDS=60.0 is invalid: polling every 60 s, 1 page × 1 currency a poll, "
        "needs 44,640 calls a month (31 days) but plan demo has 10,000 credits: expected an interval of at least "
        "268 s, fewer pages or currencies, or a plan with more credits (docs/PRODUCER.md, Credits)"
    )
    assert "\n" not in str(refused.value)
    # 2,678,400 s in 31 days / 10,000 credits = 267.84 s: 268 s lasts the longest month, 267 s does not
    assert ProducerConfig(api_plan="demo", api_key="k", interval_seconds=268).monthly_need.calls == 9_995
    with pytest.raises(InvalidSetting, match="needs 10,032 calls a month"):
        ProducerConfig(api_plan="demo", api_key="k", interval_seconds=267)


def test_the_monthly_check_counts_pages_and_the_paid_plans_hourly_usage_checks():
    # 1,000 coins are 4 pages: Demo needs four times the interval
    with pytest.raises(InvalidSetting, match=r"polling every 600 s, 4 pages × 1 currency a poll, needs 17,856 calls "
                                             r"a month .* at least 1072 s"):
        ProducerConfig(api_plan="demo", api_key="k", top_n=1000, interval_seconds=600)
    # Basic: 100,000 credits less 744 hourly /key checks leave 99,256 polls: every 26.98 s, so 27 s
    assert ProducerConfig(api_plan="basic", api_key="k", interval_seconds=27).monthly_need.calls == 99_944
    with pytest.raises(InvalidSetting, match=r"needs 103,760 calls a month \(31 days, 744 of them hourly /key "
                                             r"checks\) but plan basic has 100,000 credits: expected an interval of "
                                             r"at least 27 s"):
        ProducerConfig(api_plan="basic", api_key="k", interval_seconds=26)


def test_every_coin_is_the_word_all_planned_at_its_bound_before_any_poll():
    # The listing's length is not known before a poll; its cost must be: "all" is 20,000 coins, 80 pages.
    config = ProducerConfig(top_n="all", requests_per_minute=500)
    assert (config.top_n, config.pages_per_poll, config.requests_per_poll) == ("all", 80, 80)
    with pytest.raises(InvalidSetting, match=r"INTERVAL_SECONDS=60.0 is invalid: one poll needs 80 requests but "
                                             r"10 a minute allow only 10 per 60 s: expected at least 480 s"):
        ProducerConfig(top_n="all")
    # Analyst: 80 pages a poll; (500,000 - 744 checks) // 80 = 6,240 polls in 31 days: one every 429.2 s
    with pytest.raises(InvalidSetting, match=r"polling every 60 s, 80 pages × 1 currency a poll, needs 3,571,944 "
                                             r"calls a month .* plan analyst has 500,000 credits: expected an "
                                             r"interval of at least 430 s"):
        ProducerConfig(api_plan="analyst", api_key="k", top_n="all", requests_per_minute=500)
    assert ProducerConfig(top_n="18000", requests_per_minute=500).pages_per_poll == 72
    with pytest.raises(InvalidSetting, match=r"TOP_N='many' is invalid: expected a number of coins from 1, "
                                             r"or 'all' for every listed coin"):
        ProducerConfig(top_n="many")


def test_plans_carry_their_documented_credits_overridable_by_monthly_credits():
    assert ProducerConfig(api_plan="pro", api_key="k").monthly_credit_limit == 100_000  # any paid plan: as Basic
    lite = ProducerConfig(api_plan="lite", api_key="k", interval_seconds=2, requests_per_minute=30)
    assert lite.monthly_credit_limit == 2_000_000
    assert ProducerConfig(api_plan="demo", api_key="k", monthly_credits=50_000).interval_seconds == 60
    assert ProducerConfig(interval_seconds=6).monthly_credit_limit is None  # keyless: no monthly cap to last
    with pytest.raises(InvalidSetting, match=r"MONTHLY_CREDITS=None is invalid: plan 'enterprise' documents no "
                                             r"credits: expected the contract's"):
        ProducerConfig(api_plan="enterprise", api_key="k")
    assert ProducerConfig(api_plan="enterprise", api_key="k", monthly_credits=10**6).plan.pro_host


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("interval_seconds", 0),
        ("monthly_credits", 0),
        ("max_attempts", 0),
        ("vs_currencies", "US D"),
        ("vs_currencies", "usd,eur,usd"),
        ("vs_currencies", " , "),
        ("api_plan", "gold"),
        ("base_url", "ftp://x"),
        ("coin_ids", "bitcoin,Ethereum!"),
        ("backoff_base_seconds", 60.0),
        ("landing_uri", "gs://"),
        ("api_key_secret", "coingecko-api-key"),
        ("api_key_secret", "projects/p/secrets/coingecko/versions/latest"),  # p is no project id
    ],
)
def test_config_rejects_invalid_value_naming_its_variable(field, value):
    with pytest.raises(ConfigError, match=rf"{ENV_PREFIX + field.upper()}={re.escape(repr(value))} is invalid: "):
        ProducerConfig(**{field: value})


@pytest.mark.parametrize("name", [SECRET, "projects/123456789/secrets/coingecko-api-key/versions/3"])
def test_config_takes_secret_versions_by_project_id_or_number(name):
    assert ProducerConfig(api_plan="basic", api_key_secret=name).api_key_secret == name


def test_every_field_has_a_docstring():
    assert [name for name, spec in ProducerConfig.model_fields.items() if not spec.description] == []


def test_masked_hides_api_key_when_set():
    config = ProducerConfig(api_plan="basic", api_key="CG-secret-value")
    assert config.masked()["api_key"] == "***"
    assert "CG-secret-value" not in repr(config)
    assert "CG-secret-value" not in str(config.masked())


def test_resolve_api_key_reads_secret_when_secret_is_set():
    class SecretManager:
        def access_secret_version(self, name):
            assert name == SECRET
            return SimpleNamespace(payload=SimpleNamespace(data=b"CG-from-secret\n"))

    config = ProducerConfig(api_plan="basic", api_key_secret=SECRET)
    assert resolve_api_key(config, client=SecretManager()).api_key == "CG-from-secret"


def test_resolve_api_key_fails_clearly_when_secret_is_unreadable():
    class SecretManager:
        def access_secret_version(self, name):
            raise PermissionError("403 Permission denied on resource")

    config = ProducerConfig(api_plan="basic", api_key_secret=SECRET)
    with pytest.raises(ConfigError, match="cannot read CRYPTOPIPE__PRODUCER__API_KEY_SECRET.*403"):
        resolve_api_key(config, client=SecretManager())


def test_docs_list_every_option_with_its_variable_and_default():
    rows = {
        m.group(1): m.group(2)
        for m in re.finditer(r"^\| `(CRYPTOPIPE__PRODUCER__\w+)` \| ([^|]*) \|", DOCS.read_text(), re.MULTILINE)
    }
    for name, spec in ProducerConfig.model_fields.items():
        variable = ENV_PREFIX + name.upper()
        assert variable in rows, f"{variable} is missing from {DOCS}"
        default = spec.default
        shown = (
            ",".join(default)
            if isinstance(default, tuple)
            else f"{default:g}"
            if isinstance(default, float)
            else "" if default is None
            else str(default)
        )
        if shown:
            assert f"`{shown}`" in rows[variable], f"{variable}: the docs should show the default {shown!r}"


def test_package_exports_exactly_its_public_names():
    public = {name for name in vars(producer) if not name.startswith("_")}
    modules = {
        "apikey",
        "backfill",
        "budget",
        "coingecko",
        "coverage",
        "config",
        "credits",
        "errors",
        "files",
        "landing",
        "logs",
        "poller",
        "spool",
        "validate",
    }
    assert public - modules == set(producer.__all__)
