"""Per-environment settings of the CDKTF app: typed, documented, validated at synth.

Each environment (``dev``, ``prod``) is one :class:`EnvironmentConfig`. Values come
from, highest first:

1. environment variables ``CRYPTOPIPE__DEPLOY__<ENV>__<FIELD>``, e.g.
   ``CRYPTOPIPE__DEPLOY__DEV__PROJECT=my-project`` (lists comma-separated, booleans
   ``true``/``false``, an empty value clears an optional field);
2. ``cdktf/environments.toml``, one table per environment;
3. the defaults below (safe ones: deletion protection on).

A bad value stops the synth with a :class:`ConfigError` naming the environment, the
field, the value, what was expected and where values are read from.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, fields
from pathlib import Path

ENVIRONMENTS_FILE = Path(__file__).with_name("environments.toml")
ENV_VAR_PREFIX = "CRYPTOPIPE__DEPLOY__"

_PROJECT = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+$")
_MACHINE_TYPE = re.compile(r"^[a-z][a-z0-9]*-[a-z0-9-]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]$")
_KMS_KEY = re.compile(
    r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/locations/(?P<location>[a-z0-9-]+)"
    r"/keyRings/[A-Za-z0-9_-]+/cryptoKeys/[A-Za-z0-9_-]+$"
)
_DURATION = re.compile(r"^[1-9][0-9]* (seconds|minutes|hours|days)$")
_COIN_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
_GITHUB_REPOSITORY = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")

#: The one provider of each CI pool: GitHub Actions' OIDC tokens.
CI_PROVIDER_ID = "github"


class ConfigError(ValueError):
    """A setting is missing, unknown or invalid; the message names it and says how to fix it."""


@dataclass(frozen=True)
class EnvironmentConfig:
    """Everything that differs between two deployments of the pipeline."""

    name: str
    """Environment name and CDKTF stack name: ``cdktf deploy <name>``."""
    project: str
    """Google Cloud project id the environment deploys into."""
    state_bucket: str
    """Existing GCS bucket for the Terraform state (made once by the bootstrap in the README)."""
    region: str = "us-central1"
    """Region of the bucket, dataset, cluster, network and secret replica."""
    zone: str = "us-central1-a"
    """Zone of the producer VM and the Dataproc cluster; must lie in ``region``."""
    prefix: str = "cryptopipe"
    """First part of every resource name: ``{prefix}-{env}-{stage}-{thing}``."""
    deletion_protection: bool = True
    """Protect data from ``cdktf destroy``: tables, dataset contents and bucket kept (prod);
    off means destroy removes everything (dev)."""
    kms_key: str | None = None
    """Cloud KMS key (``projects/…/locations/<region>/keyRings/…/cryptoKeys/…``) encrypting the
    bucket, the BigQuery dataset and tables, the Dataproc cluster's disks and the producer VM's
    disk (CMEK); None: Google-managed keys."""
    network_cidr: str = "10.20.0.0/24"
    """IPv4 range of the subnet the VM and the cluster share."""
    producer_machine_type: str = "e2-small"
    """Machine type of the producer VM."""
    producer_disk_gb: int = 10
    """Boot disk of the producer VM, GB (the OS and the venv)."""
    producer_spool_disk_gb: int = 10
    """The producer's spool disk, GB: polls waiting for GCS, kept across VM replacements. 10 GB
    (the smallest pd-balanced disk) holds about 60,000 polls of 250 coins, weeks of an outage."""
    cluster_image_version: str = "2.2-debian12"
    """Dataproc image, pinned to major.minor (Spark 3.5; 2.2 or 2.3 only)."""
    cluster_master_machine_type: str = "e2-standard-4"
    """Machine type of the Dataproc master (runs the driver; the only node when no workers)."""
    cluster_worker_count: int = 0
    """Primary workers: 0 makes a single-node cluster, else at least 2 (Dataproc's rule)."""
    cluster_worker_machine_type: str = "e2-standard-4"
    """Machine type of each Dataproc worker."""
    cluster_disk_gb: int = 50
    """Boot disk of each Dataproc node, GB (Spark scratch and logs)."""
    cluster_temp_retention_days: int = 30
    """Delete objects of the cluster's temp bucket (Spark event logs, YARN logs) after this many days."""
    vs_currency: str = "usd"
    """Quote currency the producer asks CoinGecko for."""
    top_n: int = 250
    """How many coins by market cap to poll (ignored when ``coin_ids`` is set)."""
    coin_ids: tuple[str, ...] = ()
    """Explicit CoinGecko coin ids to poll instead of the top N."""
    interval_seconds: int = 60
    """Seconds between polls (CoinGecko caches /coins/markets for 45-60 s)."""
    requests_per_minute: int = 10
    """The producer's CoinGecko request budget; keep under the plan's limit."""
    api_plan: str = "demo"
    """CoinGecko plan: ``none`` (keyless), ``demo`` or ``pro``; demo and pro read the key
    from the Secret Manager secret this stack creates."""
    trigger_seconds: int = 120
    """Streaming trigger interval of the Spark job. BigQuery allows 1,500 load jobs per
    table a day and a batch may start two (ticks, quarantine): 2 x 86,400 / 1,500 = 115.2 s
    is the floor, which the job itself enforces."""
    max_files_per_trigger: int = 200
    """Landing files the Spark job takes per micro-batch at most."""
    watermark: str = "6 hours"
    """De-duplication watermark of the Spark job (CoinGecko ``last_updated`` can be hours old)."""
    job_max_failures_per_hour: int = 5
    """Driver restarts Dataproc makes per hour before it gives up on the job (1-10)."""
    job_max_failures_total: int = 50
    """Driver restarts Dataproc makes in the job's lifetime (1-240)."""
    landing_retention_days: int = 7
    """Delete landing objects older than this: a safety net, the job archives what it reads."""
    archive_retention_days: int = 30
    """Delete processed (archived) landing objects after this many days."""
    noncurrent_retention_days: int = 7
    """Delete overwritten or deleted object versions (versioning is on) after this many days."""
    partition_expiration_days: int | None = None
    """Drop market_ticks partitions older than this; None keeps them forever."""
    quarantine_expiration_days: int = 30
    """Drop quarantine partitions older than this."""
    github_repository: str | None = None
    """GitHub repository (``owner/name``, exact case) whose workflows deploy this environment
    through Workload Identity Federation (the ``bootstrap-<env>`` stack); None: no CI identities."""
    github_repository_id: int | None = None
    """Numeric id of ``github_repository`` (``gh api repos/OWNER/NAME --jq .id``). The Workload
    Identity provider trusts ids, not names: a deleted repository's name can be registered again
    by anyone, its id never. Required with ``github_repository``."""
    github_repository_owner_id: int | None = None
    """Numeric id of the repository's owner (``gh api repos/OWNER/NAME --jq .owner.id``); required
    with ``github_repository``, for the same reason."""
    project_number: int | None = None
    """Number of ``project`` (``gcloud projects describe P --format 'value(projectNumber)'``): names
    the Workload Identity provider the workflows authenticate through; needed by CI only."""

    def __post_init__(self) -> None:
        for spec in fields(self):
            for check in _CHECKS.get(spec.name, ()):
                problem = check(getattr(self, spec.name))
                if problem:
                    raise self._error(spec.name, problem)
        for field_name, problem in self._cross_field_problems():
            raise self._error(field_name, problem)

    def name_of(self, stage: str, thing: str) -> str:
        """``{prefix}-{env}-{stage}-{thing}``: the name of every resource the stack makes."""
        return f"{self.prefix}-{self.name}-{stage}-{thing}"

    @property
    def bucket_name(self) -> str:
        """The data bucket: globally unique, so it carries the project id instead of a random suffix."""
        return f"{self.prefix}-{self.name}-data-{self.project}"

    @property
    def temp_bucket_name(self) -> str:
        """The Dataproc cluster's temp bucket (Spark history, YARN logs): short-lived data apart from the
        data bucket's versioning and soft delete."""
        return f"{self.prefix}-{self.name}-processing-temp-{self.project}"

    @property
    def dataproc_agent_role_id(self) -> str:
        """Custom role of the cluster's service account: ``roles/dataproc.worker`` without its
        storage permissions (made by the bootstrap stack, so the deployer cannot widen it)."""
        return f"{self.prefix}_{self.name}_dataproc_agent".replace("-", "_")

    @property
    def secret_deployer_role_id(self) -> str:
        """Custom role of the CI deployer for Secret Manager: manage secrets, never read a value."""
        return f"{self.prefix}_{self.name}_secret_deployer".replace("-", "_")

    @property
    def dataproc_agent_role(self) -> str:
        return f"projects/{self.project}/roles/{self.dataproc_agent_role_id}"

    @property
    def dataset_id(self) -> str:
        """BigQuery ids take underscores."""
        return f"{self.prefix}_{self.name}".replace("-", "_")

    @property
    def service_account_ids(self) -> dict[str, str]:
        """Account id (the part before ``@``) of each workload's service account, by stage."""
        return {stage: f"{self.prefix}-{self.name}-{stage}" for stage in ("producer", "processing")}

    @property
    def ci_service_account_ids(self) -> dict[str, str]:
        """Account ids of CI's identities (made by the bootstrap stack): ``deployer`` applies the
        stack, ``planner`` only reads it to show plans on pull requests."""
        return {role: f"{self.prefix}-{self.name}-{role}" for role in ("deployer", "planner")}

    def service_account_email(self, account_id: str) -> str:
        """Email of a service account of this environment's project."""
        return f"{account_id}@{self.project}.iam.gserviceaccount.com"

    @property
    def ci_pool_id(self) -> str:
        """Workload Identity pool of this environment's CI (one provider: GitHub's OIDC issuer)."""
        return f"{self.prefix}-{self.name}-ci"

    @property
    def workload_identity_provider(self) -> str | None:
        """Full name of the GitHub provider, as ``google-github-actions/auth`` takes it; None
        until ``project_number`` is set."""
        if self.project_number is None:
            return None
        return (f"projects/{self.project_number}/locations/global/workloadIdentityPools/{self.ci_pool_id}"
                f"/providers/{CI_PROVIDER_ID}")

    def _cross_field_problems(self) -> list[tuple[str, str]]:
        problems = []
        if not self.zone.startswith(f"{self.region}-"):
            problems.append(("zone", f"{self.zone!r} is not in region {self.region!r}; "
                             f"expected {self.region}-<letter>"))
        if self.kms_key:
            location = _KMS_KEY.match(self.kms_key)["location"]  # format checked above
            if location != self.region:
                problems.append(("kms_key", f"key location {location!r} differs from region {self.region!r}; "
                                 "the bucket, dataset and disks need a key in their own region"))
        for bucket_name in (self.bucket_name, self.temp_bucket_name):
            if len(bucket_name) > 63:
                problems.append(("prefix", f"bucket name {bucket_name!r} is over GCS's 63 characters; "
                                 "shorten the prefix"))
        if self.github_repository:
            problems += [(name, f"is required with github_repository ({self.github_repository!r}): the Workload "
                                "Identity provider trusts numeric ids, which a re-registered name cannot take over")
                         for name in ("github_repository_id", "github_repository_owner_id")
                         if getattr(self, name) is None]
        for stage, account_id in {**self.service_account_ids, **self.ci_service_account_ids}.items():
            if not 6 <= len(account_id) <= 30:
                problems.append(("prefix", f"service account id {account_id!r} ({stage}) must be 6-30 characters; "
                                 "shorten the prefix"))
        if not 4 <= len(self.ci_pool_id) <= 32:
            problems.append(("prefix", f"Workload Identity pool id {self.ci_pool_id!r} must be 4-32 characters; "
                             "shorten the prefix"))
        return problems

    def _error(self, field_name: str, problem: str) -> ConfigError:
        env_var = f"{ENV_VAR_PREFIX}{self.name.upper()}__{field_name.upper()}"
        return ConfigError(
            f"environment {self.name!r}, field {field_name!r}: {problem} "
            f"(set it in {ENVIRONMENTS_FILE.name} [{self.name}] or {env_var})"
        )


def _matches(pattern: re.Pattern[str], expected: str) -> Callable[[object], str | None]:
    def check(value: object) -> str | None:
        if value is None or pattern.match(str(value)):
            return None
        return f"{value!r} is not {expected}"

    return check


def _between(low: int, high: int) -> Callable[[int | None], str | None]:
    def check(value: int | None) -> str | None:
        if value is None or low <= value <= high:
            return None
        return f"{value!r} is out of range; expected {low}..{high}"

    return check


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in choices else f"{value!r} is not one of {list(choices)}"

    return check


def _cidr(value: str) -> str | None:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as exc:
        return f"{value!r} is not an IPv4 CIDR range like 10.20.0.0/24 ({exc})"
    if not network.is_private or network.prefixlen > 28:
        return f"{value!r} must be a private range of /28 or larger"
    return None


def _workers(value: int) -> str | None:
    if value == 0 or 2 <= value <= 100:
        return None
    return f"{value!r} workers: Dataproc takes 0 (single node) or 2..100"


#: Shared-core machine types: Dataproc refuses them for cluster nodes.
_SHARED_CORE = re.compile(r"^(e2-(micro|small|medium)|f1-micro|g1-small)$")


def _dataproc_machine(value: str) -> str | None:
    if _SHARED_CORE.match(value):
        return f"{value!r} is a shared-core machine type, which Dataproc does not accept; use e.g. 'e2-standard-4'"
    return None


def _image(value: str) -> str | None:
    if re.match(r"^2\.[23](\.[0-9]+)?-debian12$", value):
        return None
    return f"{value!r} is not a Dataproc 2.2/2.3 Debian 12 image like '2.2-debian12' (Spark 3.5, as tested)"


def _coins(value: tuple[str, ...]) -> str | None:
    bad = [coin for coin in value if not _COIN_ID.match(coin)]
    return f"{bad} are not CoinGecko coin ids like 'bitcoin'" if bad else None


_CHECKS: dict[str, tuple[Callable[[typing.Any], str | None], ...]] = {
    "name": (_matches(_NAME, "a lower-case name of at most 8 characters like 'dev'"),
             lambda v: None if len(v) <= 8 else f"{v!r} is over 8 characters"),
    "project": (_matches(_PROJECT, "a Google Cloud project id (6-30 lower-case letters, digits, hyphens)"),),
    "state_bucket": (_matches(_BUCKET, "a GCS bucket name"),),
    "region": (_matches(_REGION, "a region like 'us-central1'"),),
    "prefix": (_matches(_NAME, "a lower-case name like 'cryptopipe'"),),
    "kms_key": (_matches(_KMS_KEY, "a key like projects/P/locations/REGION/keyRings/R/cryptoKeys/K"),),
    "network_cidr": (_cidr,),
    "producer_machine_type": (_matches(_MACHINE_TYPE, "a machine type like 'e2-small'"),),
    "producer_disk_gb": (_between(10, 200),),
    "producer_spool_disk_gb": (_between(10, 200),),
    "cluster_image_version": (_image,),
    "cluster_master_machine_type": (_matches(_MACHINE_TYPE, "a machine type like 'e2-standard-4'"), _dataproc_machine),
    "cluster_worker_count": (_workers,),
    "cluster_worker_machine_type": (_matches(_MACHINE_TYPE, "a machine type like 'e2-standard-4'"), _dataproc_machine),
    "cluster_disk_gb": (_between(30, 1000),),
    "cluster_temp_retention_days": (_between(1, 3650),),
    "vs_currency": (_matches(re.compile(r"^[a-z]{2,6}$"), "a currency code like 'usd'"),),
    "top_n": (_between(1, 1000),),
    "coin_ids": (_coins,),
    "interval_seconds": (_between(10, 3600),),
    "requests_per_minute": (_between(1, 500),),
    "api_plan": (_one_of("none", "demo", "pro"),),
    "trigger_seconds": (_between(116, 3600),),
    "max_files_per_trigger": (_between(1, 10000),),
    "watermark": (_matches(_DURATION, "a duration like '6 hours'"),),
    "job_max_failures_per_hour": (_between(1, 10),),
    "job_max_failures_total": (_between(1, 240),),
    "landing_retention_days": (_between(1, 3650),),
    "archive_retention_days": (_between(1, 3650),),
    "noncurrent_retention_days": (_between(1, 3650),),
    "partition_expiration_days": (_between(1, 3650),),
    "quarantine_expiration_days": (_between(1, 3650),),
    "github_repository": (_matches(_GITHUB_REPOSITORY, "a GitHub repository like 'my-org/cryptopipe'"),),
    "project_number": (_between(1, 999_999_999_999_999),),
    "github_repository_id": (_between(1, 2**63 - 1),),
    "github_repository_owner_id": (_between(1, 2**63 - 1),),
}


def load_environments(
    path: Path = ENVIRONMENTS_FILE, environ: Mapping[str, str] = os.environ
) -> list[EnvironmentConfig]:
    """Read every environment of ``path``, environment variables overriding the file."""
    try:
        tables = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the environments file {path}: {exc}") from exc
    if not tables:
        raise ConfigError(f"{path} declares no environment; expected tables like [dev] and [prod]")
    return [environment(name, values, environ, source=path.name) for name, values in tables.items()]


def environment(
    name: str, values: Mapping[str, object], environ: Mapping[str, str] = {}, source: str = "values"
) -> EnvironmentConfig:
    """Build and validate one environment from file values plus environment-variable overrides."""
    hints = typing.get_type_hints(EnvironmentConfig)
    known = {spec.name for spec in fields(EnvironmentConfig)} - {"name"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"environment {name!r}: unknown field(s) {unknown} in {source}; known fields are {sorted(known)}"
        )
    merged = dict(values)
    env_prefix = f"{ENV_VAR_PREFIX}{name.upper()}__"
    for key, raw in environ.items():
        if key.startswith(env_prefix):
            field_name = key[len(env_prefix):].lower()
            if field_name not in known:
                raise ConfigError(f"environment {name!r}: {key} names no field; known fields are {sorted(known)}")
            merged[field_name] = _parse_env(name, field_name, raw, hints[field_name])
    missing = sorted(
        spec.name for spec in fields(EnvironmentConfig)
        if spec.name != "name" and spec.name not in merged and spec.default is MISSING
    )
    if missing:
        raise ConfigError(
            f"environment {name!r}: missing field(s) {missing}; set them in {source} [{name}] "
            f"or as {env_prefix}<FIELD>"
        )
    for field_name, value in merged.items():
        _check_type(name, field_name, value, hints[field_name])
    if "coin_ids" in merged:
        merged["coin_ids"] = tuple(merged["coin_ids"])
    return EnvironmentConfig(name=name, **merged)


def _parse_env(env: str, field_name: str, raw: str, hint: object) -> object:
    kinds = _union_members(hint)
    if type(None) in kinds and raw.strip() in ("", "none", "None"):
        return None
    kind = next(k for k in kinds if k is not type(None))
    if kind is bool:
        lowered = raw.strip().lower()
        if lowered in ("true", "1", "yes"):
            return True
        if lowered in ("false", "0", "no"):
            return False
    elif kind is int:
        try:
            return int(raw)
        except ValueError:
            pass
    elif typing.get_origin(kind) is tuple:
        return tuple(item.strip() for item in raw.split(",") if item.strip())
    else:
        return raw
    raise ConfigError(
        f"environment {env!r}, field {field_name!r}: {raw!r} from {ENV_VAR_PREFIX}{env.upper()}__{field_name.upper()} "
        f"is not a valid {getattr(kind, '__name__', kind)}"
    )


def _check_type(env: str, field_name: str, value: object, hint: object) -> None:
    allowed = _union_members(hint)
    for kind in allowed:
        origin = typing.get_origin(kind)
        if kind is type(None) and value is None:
            return
        if origin is tuple and isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return
        if kind in (str, bool) and type(value) is kind:
            return
    expected = " or ".join(
        "list of strings" if typing.get_origin(k) is tuple else getattr(k, "__name__", str(k)) for k in allowed
    )
    raise ConfigError(
        f"environment {env!r}, field {field_name!r}: {value!r} is a {type(value).__name__}; expected {expected}"
    )


def _union_members(hint: object) -> tuple[object, ...]:
    """``int | None`` -> ``(int, NoneType)``; any other hint -> ``(hint,)``."""
    return typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
