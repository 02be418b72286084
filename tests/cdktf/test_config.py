"""Per-environment settings: typed, validated, and a bad value names its field."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from config import ConfigError, EnvironmentConfig, environment, load_environments

VALID = {"project": "my-project-1", "state_bucket": "my-project-1-tfstate"}


def test_environments_file_declares_dev_and_prod():
    environments = {cfg.name: cfg for cfg in load_environments(environ={})}
    assert sorted(environments) == ["dev", "prod"]
    assert environments["dev"].deletion_protection is False
    assert environments["prod"].deletion_protection is True


def test_every_field_has_a_docstring():
    body = ast.parse(inspect.getsource(EnvironmentConfig)).body[0].body
    documented = {
        node.target.id
        for node, following in zip(body, body[1:], strict=False)
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr)
        and isinstance(following.value, ast.Constant) and isinstance(following.value.value, str)
    }
    assert set(EnvironmentConfig.__dataclass_fields__) == documented


def test_environment_variable_overrides_the_file():
    environ = {
        "CRYPTOPIPE__DEPLOY__DEV__PROJECT": "other-project-9",
        "CRYPTOPIPE__DEPLOY__DEV__COIN_IDS": "bitcoin, ethereum",
        "CRYPTOPIPE__DEPLOY__DEV__DELETION_PROTECTION": "true",
        "CRYPTOPIPE__DEPLOY__PROD__PARTITION_EXPIRATION_DAYS": "90",
    }
    dev, prod = load_environments(environ=environ)
    assert dev.project == "other-project-9"
    assert dev.coin_ids == ("bitcoin", "ethereum")
    assert dev.deletion_protection is True
    assert prod.partition_expiration_days == 90


def test_empty_environment_variable_clears_an_optional_field():
    dev, _ = load_environments(environ={"CRYPTOPIPE__DEPLOY__DEV__PARTITION_EXPIRATION_DAYS": ""})
    assert dev.partition_expiration_days is None


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("project", "Not_A_Project"),
        ("region", "europe"),
        ("zone", "europe-west1-b"),  # not in the default region
        ("network_cidr", "8.8.8.0/24"),
        ("cluster_image_version", "3.0-debian12"),
        ("cluster_worker_count", 1),
        ("api_plan", "enterprise"),
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
    with pytest.raises(ConfigError, match=rf"environment 'dev', field '{field}'"):
        environment("dev", {**VALID, field: value})


def test_ci_needs_the_repositorys_numeric_ids():
    with pytest.raises(ConfigError, match=r"field 'github_repository_id': is required with github_repository"):
        environment("dev", {**VALID, "github_repository": "my-org/cryptopipe", "github_repository_owner_id": 7})
    with pytest.raises(ConfigError, match=r"field 'github_repository_owner_id'"):
        environment("dev", {**VALID, "github_repository": "my-org/cryptopipe", "github_repository_id": 7})
    cfg = environment("dev", {**VALID, "github_repository": "my-org/cryptopipe", "github_repository_id": 7,
                              "github_repository_owner_id": 8})
    assert (cfg.github_repository_id, cfg.github_repository_owner_id) == (7, 8)


def test_bad_environment_variable_names_the_variable():
    with pytest.raises(ConfigError, match="CRYPTOPIPE__DEPLOY__DEV__TOP_N"):
        load_environments(environ={"CRYPTOPIPE__DEPLOY__DEV__TOP_N": "many"})


def test_unknown_field_is_an_error():
    with pytest.raises(ConfigError, match=r"unknown field\(s\) \['machine_size'\]"):
        environment("dev", {**VALID, "machine_size": "big"})


def test_unknown_environment_variable_is_an_error():
    with pytest.raises(ConfigError, match="CRYPTOPIPE__DEPLOY__DEV__PROJCT names no field"):
        load_environments(environ={"CRYPTOPIPE__DEPLOY__DEV__PROJCT": "x"})


def test_missing_required_field_is_listed():
    with pytest.raises(ConfigError, match=r"missing field\(s\) \['state_bucket'\]"):
        environment("dev", {"project": "my-project-1"})


def test_names_follow_prefix_env_stage_thing():
    cfg = environment("dev", VALID)
    assert cfg.name_of("processing", "cluster") == "cryptopipe-dev-processing-cluster"
    assert cfg.bucket_name == "cryptopipe-dev-data-my-project-1"
    assert cfg.dataset_id == "cryptopipe_dev"


def test_every_field_is_documented_in_the_deployment_guide():
    guide = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    fields = [name for name in EnvironmentConfig.__dataclass_fields__ if name != "name"]
    missing = [name for name in fields if f"| `{name}` |" not in guide]
    assert not missing, f"the README's configuration table lacks {missing}"
