"""Per-environment settings: typed, validated, and a bad value names its field."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.environments import ENV_VAR_PREFIX, ConfigError, EnvironmentConfig, environment, load_environments

from ..conftest import isolated_environ

VALID = {"project": "my-project-1", "state_bucket": "my-project-1-tfstate"}


@pytest.fixture(autouse=True)
def environ(monkeypatch):
    """No deployment variable of the shell this runs in; each test sets its own."""
    return isolated_environ(monkeypatch, ENV_VAR_PREFIX)


def test_environments_file_declares_dev_and_prod():
    environments = {cfg.name: cfg for cfg in load_environments()}
    assert sorted(environments) == ["dev", "prod"]
    assert environments["dev"].deletion_protection is False
    assert environments["prod"].deletion_protection is True


def test_every_field_has_a_docstring():
    assert [name for name, spec in EnvironmentConfig.model_fields.items() if not spec.description] == []


def test_environment_variable_overrides_the_file(environ):
    environ({
        "CRYPTOPIPE__DEPLOY__DEV__PROJECT": "other-project-9",
        "CRYPTOPIPE__DEPLOY__DEV__COIN_IDS": "bitcoin, ethereum",
        "CRYPTOPIPE__DEPLOY__DEV__DELETION_PROTECTION": "true",
        "CRYPTOPIPE__DEPLOY__PROD__PARTITION_EXPIRATION_DAYS": "90",
    })
    dev, prod = load_environments()
    assert dev.project == "other-project-9"
    assert dev.coin_ids == ("bitcoin", "ethereum")
    assert dev.deletion_protection is True
    assert prod.partition_expiration_days == 90


def test_empty_environment_variable_clears_an_optional_field(environ):
    environ({"CRYPTOPIPE__DEPLOY__DEV__PARTITION_EXPIRATION_DAYS": ""})
    dev, _ = load_environments()
    assert dev.partition_expiration_days is None


def test_the_file_is_strictly_typed_and_a_list_may_be_comma_separated():
    assert environment("dev", {**VALID, "coin_ids": ["bitcoin", "ethereum"]}).coin_ids == ("bitcoin", "ethereum")
    assert environment("dev", {**VALID, "coin_ids": "bitcoin, ethereum"}).coin_ids == ("bitcoin", "ethereum")
    with pytest.raises(ConfigError, match=r"field 'deletion_protection': 'no' is invalid: expected a valid boolean"):
        environment("dev", {**VALID, "deletion_protection": "no"})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("project", "Not_A_Project"),
        ("region", "europe"),
        ("zone", "europe-west1-b"),  # not in the default region
        ("network_cidr", "8.8.8.0/24"),
        ("cluster_image_version", "3.0-debian12"),
        ("cluster_worker_count", 1),
        ("api_plan", "gold"),
        ("watermark", "6h"),
        ("job_max_failures_per_hour", 11),
        ("top_n", True),
        ("producer_disk_gb", "10"),
        ("kms_key", "projects/my-project-1/locations/europe-west1/keyRings/r/cryptoKeys/k"),
        ("coin_ids", ["Bitcoin!"]),
        ("prefix", "a-very-long-prefix"),
        ("github_repository", "https://github.com/my-org/cryptopipe"),
        ("project_number", 0),
        ("cluster_master_machine_type", "e2-medium"),  # shared-core: Dataproc refuses it
        ("cluster_worker_machine_type", "e2-small"),
        ("cluster_temp_retention_days", 0),
    ],
)
def test_bad_value_fails_naming_the_field(field, value):
    with pytest.raises(ConfigError, match=rf"environment 'dev', field '{field}': .* is invalid: .*\(set it in values "
                                          rf"\[dev\] or CRYPTOPIPE__DEPLOY__DEV__{field.upper()}\)$"):
        environment("dev", {**VALID, field: value})


def test_bad_name_fails_naming_the_table():
    with pytest.raises(ConfigError, match=r"field 'name': 'staging-eu' is invalid: expected a lower-case name of at "
                                          r"most 8 characters like 'dev' \(the table's name in values\)"):
        environment("staging-eu", VALID)


def test_ci_needs_the_repositorys_numeric_ids():
    with pytest.raises(ConfigError, match=r"field 'github_repository_id': None is invalid: required with github_repo"):
        environment("dev", {**VALID, "github_repository": "my-org/cryptopipe", "github_repository_owner_id": 7})
    with pytest.raises(ConfigError, match=r"field 'github_repository_owner_id'"):
        environment("dev", {**VALID, "github_repository": "my-org/cryptopipe", "github_repository_id": 7})
    cfg = environment("dev", {**VALID, "github_repository": "my-org/cryptopipe", "github_repository_id": 7,
                              "github_repository_owner_id": 8})
    assert (cfg.github_repository_id, cfg.github_repository_owner_id) == (7, 8)


def test_bad_environment_variable_names_the_variable(environ):
    environ({"CRYPTOPIPE__DEPLOY__DEV__TOP_N": "many"})
    with pytest.raises(ConfigError, match=r"field 'top_n': 'many' is invalid: .*CRYPTOPIPE__DEPLOY__DEV__TOP_N"):
        load_environments()


def test_unknown_field_is_an_error():
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['machine_size'\]"):
        environment("dev", {**VALID, "machine_size": "big"})
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['name'\]"):  # the table names the environment
        environment("dev", {**VALID, "name": "prod"})


def test_unknown_environment_variable_is_an_error(environ):
    environ({"CRYPTOPIPE__DEPLOY__DEV__PROJCT": "x"})
    with pytest.raises(ConfigError, match="CRYPTOPIPE__DEPLOY__DEV__PROJCT names no field"):
        load_environments()


def test_no_variable_renames_an_environment(environ):
    environ({"CRYPTOPIPE__DEPLOY__DEV__NAME": "qa"})  # the table's name is the environment's
    with pytest.raises(ConfigError, match="CRYPTOPIPE__DEPLOY__DEV__NAME names no field"):
        load_environments()


def test_missing_required_field_is_listed():
    with pytest.raises(ConfigError, match=r"missing field\(s\) \['state_bucket'\]"):
        environment("dev", {"project": "my-project-1"})


def test_names_follow_prefix_env_stage_thing():
    cfg = environment("dev", VALID)
    assert cfg.name_of("processing", "cluster") == "cryptopipe-dev-processing-cluster"
    assert cfg.bucket_name == "cryptopipe-dev-data-my-project-1"
    assert cfg.dataset_id == "cryptopipe_dev"


def test_every_field_is_documented_in_the_deployment_guide():
    guide = (Path(__file__).resolve().parents[2] / "docs" / "DEPLOY.md").read_text()
    fields = [name for name in EnvironmentConfig.model_fields if name != "name"]
    missing = [name for name in fields if f"| `{name}` |" not in guide]
    assert not missing, f"docs/DEPLOY.md's settings table lacks {missing}"


def test_the_trigger_is_held_to_the_floor_of_the_bigquery_write_path():
    base = {"project": "my-project-1", "state_bucket": "my-tfstate-1"}
    assert (environment("qa", base).trigger_seconds, environment("qa", base).bigquery_write) == (10, "storage-write")
    assert environment("qa", {**base, "bigquery_write": "load-jobs", "trigger_seconds": 116}).trigger_seconds == 116
    with pytest.raises(ConfigError, match=r"field 'trigger_seconds': 10 is invalid: shorter than the 115.2 s"):
        environment("qa", {**base, "bigquery_write": "load-jobs"})


def test_a_producer_schedule_that_cannot_last_the_month_is_refused_at_synth_in_one_line():
    """The producer's own check (core/coingecko_plans.py), run on each environment's settings."""
    with pytest.raises(ConfigError) as refused:
        environment("dev", {**VALID, "api_plan": "demo"})  # the default 60 s: Demo's credits last a week
    assert str(refused.value) == (
        "environment 'dev', field 'interval_seconds': 60 is invalid: polling every 60 s, 1 page × 1 currency a "
        "poll, needs 44,640 calls a month (31 days) but plan demo has 10,000 credits: expected an interval of at "
        "least 268 s, fewer pages or currencies, or a plan with more credits (docs/PRODUCER.md, Credits) "
        "(set it in values [dev] or CRYPTOPIPE__DEPLOY__DEV__INTERVAL_SECONDS)"
    )
    assert environment("dev", {**VALID, "api_plan": "demo", "interval_seconds": 268}).api_plan == "demo"
    with pytest.raises(ConfigError, match=r"'interval_seconds': 300 is invalid: polling every 300 s, 4 pages"):
        environment("dev", {**VALID, "api_plan": "demo", "interval_seconds": 300, "top_n": 1000})
    # each quote currency is a request a page: three on Basic every minute need 134,664 of its 100,000
    with pytest.raises(ConfigError, match=r"1 page × 3 currencies a poll, needs 134,664 calls a month .* plan basic"):
        environment("dev", {**VALID, "vs_currencies": "usd,eur,btc"})
    assert environment("dev", {**VALID, "vs_currencies": ["usd", "eur"]}).coingecko_need.calls == 2 * 44_640 + 744
    with pytest.raises(ConfigError, match=r"expected each currency once, got usd more than once"):
        environment("dev", {**VALID, "vs_currencies": "usd,usd"})
    with pytest.raises(ConfigError, match=r"field 'monthly_credits': None is invalid: plan 'enterprise' documents"):
        environment("dev", {**VALID, "api_plan": "enterprise"})
    assert environment("dev", {**VALID, "api_plan": "enterprise", "monthly_credits": 10**6}).monthly_credits == 10**6


def test_the_default_deployment_polls_every_minute_on_the_smallest_plan_that_lasts_it():
    cfg = environment("dev", VALID)
    assert (cfg.interval_seconds, cfg.api_plan) == (60, "basic")
    assert {env.name: env.api_plan for env in load_environments()} == {"dev": "basic", "prod": "basic"}


def test_scheduled_mode_derives_its_alert_thresholds_from_the_schedule():
    base = {"project": "my-project-1", "state_bucket": "my-tfstate-1"}
    hourly = environment("qa", {**base, "processing": "scheduled"}).alert_thresholds
    assert (hourly.schedule_seconds, hourly.stream_silence_seconds) == (3600, 3600 + 15 * 60)
    assert hourly.freshness_seconds == 3600 + 15 * 60 + 3 * 60
    quarter = environment("qa", {**base, "processing": "scheduled", "schedule_minutes": 15,
                                 "alert_freshness_minutes": 40}).alert_thresholds
    assert quarter.freshness_seconds == 2400 and quarter.stream_silence_seconds == 30 * 60
    assert environment("qa", base).alert_thresholds.schedule_seconds is None
    with pytest.raises(ConfigError, match="schedule_minutes.*45 is invalid"):
        environment("qa", {**base, "schedule_minutes": 45})


@pytest.mark.parametrize("coin_ids", ["bitcoin,ethereum", "usd.coin,wrapped_steth", "Bitcoin", "-bitcoin", "btc!"])
def test_an_environment_takes_exactly_the_coin_ids_its_producer_takes(coin_ids, monkeypatch):
    """The environment hands its ``coin_ids`` to the producer on the VM: one check, or a synth
    could refuse ids the producer polls, or pass ids the VM's producer then refuses at boot."""
    from producer import ProducerConfig
    from producer.config import ENV_PREFIX, InvalidSetting

    isolated_environ(monkeypatch, ENV_PREFIX)  # the producer reads no variable of this shell
    try:
        ProducerConfig(coin_ids=coin_ids)
        producer_takes = True
    except InvalidSetting:
        producer_takes = False
    try:
        environment("dev", {**VALID, "coin_ids": coin_ids})
        environment_takes = True
    except ConfigError:
        environment_takes = False
    assert environment_takes == producer_takes
