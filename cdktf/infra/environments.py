"""Per-environment settings of the CDKTF app: typed, documented, validated at synth.

Each environment (``dev``, ``prod``) is one :class:`EnvironmentConfig`, a
pydantic-settings model like the producer's settings (:mod:`core.settings` holds what
the two share). Values come from, highest first:

1. environment variables ``CRYPTOPIPE__DEPLOY__<ENV>__<FIELD>``, e.g.
   ``CRYPTOPIPE__DEPLOY__DEV__PROJECT=my-project`` (lists comma-separated, booleans
   ``true``/``false``, an empty value clears an optional field); one that names no
   field is an error;
2. ``cdktf/environments.toml``, one table per environment;
3. the defaults below (safe ones: deletion protection on).

Types are strict: ``"10"`` in the file is not a number (in a variable, text is all
there is, and it is parsed). A bad value stops the synth with a :class:`ConfigError`
naming the environment, the field, the value, what was expected and where values are
read from.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, Field, ValidationError, model_validator
from pydantic_settings import InitSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from core.bigquery_quotas import DEFAULT_TRIGGER_SECONDS, MIN_TRIGGER_SECONDS
from core.coingecko_plans import PLAN_NAMES, MonthlyNeed
from core.gcp import PROJECT_ID
from core.health import Thresholds
from core.settings import (
    CoinIds,
    CommaSeparated,
    CurrencyCodes,
    Problem,
    Refused,
    StrictEnvSource,
    StrictSettings,
    matching,
    problems,
)

#: How an environment's job runs (docs/STREAM.md, "Scheduled mode").
Processing = Literal["stream", "scheduled"]
PROCESSING_MODES: tuple[str, ...] = get_args(Processing)
#: Beside the app's entry point, where a user edits it (cdktf/environments.toml).
ENVIRONMENTS_FILE = Path(__file__).resolve().parents[1] / "environments.toml"
#: The subnet's VPC Flow Logs (infra/stacks/network.py): 10-minute records of half the flows, with all metadata;
#: infra/reports/cost.py prices their volume.
FLOW_LOG_CONFIG = {"aggregation_interval": "INTERVAL_10_MIN", "flow_sampling": 0.5, "metadata": "INCLUDE_ALL_METADATA"}
ENV_VAR_PREFIX = "CRYPTOPIPE__DEPLOY__"

_KMS_KEY = re.compile(
    rf"projects/{PROJECT_ID}/locations/(?P<location>[a-z0-9-]+)/keyRings/[A-Za-z0-9_-]+/cryptoKeys/[A-Za-z0-9_-]+"
)
_GITHUB_REPOSITORY = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}"

#: The one provider of each CI pool: GitHub Actions' OIDC tokens.
CI_PROVIDER_ID = "github"


class ConfigError(ValueError):
    """A setting is missing, unknown or invalid; the message names it and says how to fix it."""


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError as exc:
        raise ValueError(f"expected an IPv4 CIDR range like 10.20.0.0/24 ({exc})") from None
    if not network.is_private or network.prefixlen > 28:
        raise ValueError("expected a private range of /28 or larger")
    return value


def _workers(value: int) -> int:
    if value == 0 or 2 <= value <= 100:
        return value
    raise ValueError("expected 0 (a single-node cluster) or 2..100 workers, as Dataproc takes")


def _not_shared_core(value: str) -> str:
    if re.fullmatch(r"e2-(micro|small|medium)|f1-micro|g1-small", value):
        raise ValueError("expected a machine type that is not shared-core (Dataproc refuses them), like e2-standard-4")
    return value


_NAME = r"[a-z][a-z0-9]*(-[a-z0-9]+)*"
_Project = Annotated[str, matching(PROJECT_ID, "a Google Cloud project id (6-30 lower-case letters, digits, hyphens)")]
_Bucket = Annotated[str, matching(r"[a-z0-9][a-z0-9_.-]{1,61}[a-z0-9]", "a GCS bucket name")]
_Region = Annotated[str, matching(r"[a-z]+-[a-z]+[0-9]+", "a region like 'us-central1'")]
_MachineType = Annotated[str, matching(r"[a-z][a-z0-9]*-[a-z0-9-]+", "a machine type like 'e2-standard-4'")]
_DataprocMachineType = Annotated[_MachineType, AfterValidator(_not_shared_core)]


class EnvironmentConfig(StrictSettings):
    """Everything that differs between two deployments of the pipeline."""

    model_config = SettingsConfigDict(
        extra="forbid", frozen=True, strict=True, validate_default=True, env_parse_none_str="",
        use_attribute_docstrings=True,
    )

    name: Annotated[str, matching(rf"(?=.{{1,8}}$){_NAME}", "a lower-case name of at most 8 characters like 'dev'")]
    """Environment name and CDKTF stack name: ``cdktf deploy <name>``."""
    project: _Project
    """Google Cloud project id the environment deploys into."""
    state_bucket: _Bucket
    """Existing GCS bucket for the Terraform state (made once, before the bootstrap stack: docs/DEPLOY.md)."""
    region: _Region = "us-central1"
    """Region of the bucket, dataset, cluster, network and secret replica."""
    zone: str = "us-central1-a"
    """Zone of the producer VM and the Dataproc cluster; must lie in ``region``."""
    prefix: Annotated[str, matching(_NAME, "a lower-case name like 'cryptopipe'")] = "cryptopipe"
    """First part of every resource name: ``{prefix}-{env}-{stage}-{thing}``."""
    deletion_protection: bool = True
    """Keep data on ``cdktf destroy`` (tables, dataset contents, bucket); off: destroy removes everything."""
    kms_key: Annotated[
        str | None, matching(_KMS_KEY.pattern, "a key like projects/P/locations/REGION/keyRings/R/cryptoKeys/K")
    ] = None
    """Cloud KMS key (``projects/…/locations/<region>/keyRings/…/cryptoKeys/…``) in ``region`` encrypting the bucket, the dataset and its tables, the cluster's and the VM's disks
    (CMEK); unset: Google-managed keys."""
    network_cidr: Annotated[str, AfterValidator(_cidr)] = "10.20.0.0/24"
    """IPv4 range of the subnet the VM and the cluster share."""
    producer_machine_type: _MachineType = "e2-small"
    """Machine type of the producer VM."""
    producer_disk_gb: int = Field(10, ge=10, le=200)
    """Producer boot disk, GB (OS and venv; the spool has a disk of its own)."""
    producer_spool_disk_gb: int = Field(10, ge=10, le=200)
    """The producer's spool disk, GB: polls waiting for GCS, kept across VM replacements (10 GB holds weeks of an
    outage)."""
    cluster_image_version: Annotated[str, matching(
        r"2\.[23](\.[0-9]+)?-debian12", "a Dataproc 2.2/2.3 Debian 12 image like '2.2-debian12' (Spark 3.5, as tested)"
    )] = "2.2-debian12"
    """Dataproc image, major.minor pinned (2.2 or 2.3: Spark 3.5)."""
    cluster_master_machine_type: _DataprocMachineType = "e2-standard-4"
    """Dataproc master (runs the driver; the only node without workers); no shared-core types (e2-micro/small/medium,
    f1-micro, g1-small), which Dataproc refuses."""
    cluster_worker_count: Annotated[int, AfterValidator(_workers)] = 0
    """Primary workers: 0 is a single-node cluster, else at least 2."""
    cluster_worker_machine_type: _DataprocMachineType = "e2-standard-4"
    """Machine type of each worker; no shared-core types."""
    cluster_disk_gb: int = Field(50, ge=30, le=1000)
    """Boot disk of each Dataproc node, GB."""
    cluster_temp_retention_days: int = Field(30, ge=1, le=3650)
    """Delete objects of the cluster's temp bucket (Spark event logs, YARN logs) after."""
    vs_currencies: CurrencyCodes = ("usd",)
    """Quote currencies, comma-separated (``usd,eur,btc``): one request a page and currency each poll, so each
    multiplies the CoinGecko credits a month."""
    top_n: int = Field(250, ge=1, le=1000)
    """Coins polled, by market cap (unless ``coin_ids``)."""
    coin_ids: CoinIds = ()
    """Explicit coin ids instead of the top N."""
    interval_seconds: int = Field(60, ge=10, le=3600)
    """Seconds between polls."""
    requests_per_minute: int = Field(10, ge=1, le=500)
    """The producer's CoinGecko request budget."""
    api_plan: Literal[PLAN_NAMES] = "basic"
    """The CoinGecko plan: ``none``, ``demo``, ``basic``, ``analyst``, ``lite``, ``enterprise`` or ``pro`` (any paid
    plan, planned as Basic); a keyed plan reads the key from the stack's secret. The synth refuses a schedule
    whose polls cannot last a 31-day month on the plan's credits, naming the interval that would: Basic lasts
    polls every 60 s, Demo every 268 s ([docs/PRODUCER.md](PRODUCER.md#credits))."""
    monthly_credits: int | None = Field(None, ge=1)
    """CoinGecko call credits a month instead of the plan's (``enterprise`` needs it)."""
    trigger_seconds: int = Field(int(DEFAULT_TRIGGER_SECONDS["storage-write"]), ge=1, le=3600)
    """Stream trigger interval, at least the floor of ``bigquery_write``: 1 s (0.72 s: the Storage Write API's 10,000
    streams an hour, two per batch) or 116 s (1,500 load jobs per table a day, two per batch)."""
    bigquery_write: Literal["storage-write", "load-jobs"] = "storage-write"
    """``storage-write`` (PENDING write streams, seconds-fresh) or ``load-jobs`` (large backfills, a trigger of
    minutes)."""
    max_files_per_trigger: int = Field(200, ge=1, le=10000)
    """Landing files per micro-batch at most."""
    watermark: Annotated[
        str, matching(r"[1-9][0-9]* (seconds|minutes|hours|days)", "a duration like '6 hours'")
    ] = "6 hours"
    """De-duplication watermark."""
    processing: Processing = "stream"
    """How the job runs (docs/STREAM.md, "Scheduled mode"): ``stream``, always on the cluster; or
    ``scheduled``, with ``--available-now`` every ``schedule_minutes`` on the same checkpoint, the
    cluster stopped between runs."""
    schedule_minutes: Literal[15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440] = 60
    """Scheduled mode: minutes between runs (a divisor of an hour or a day, so the slots are a cron
    schedule's)."""
    scheduled_run_minutes: int = Field(15, ge=5, le=240)
    """Scheduled mode: how long a run may take, cluster start to stop; the alerts allow the interval
    plus this before a run counts as missed."""
    job_max_failures_per_hour: int = Field(5, ge=1, le=10)
    """Driver restarts per hour before Dataproc gives up (1-10)."""
    job_max_failures_total: int = Field(50, ge=1, le=240)
    """Driver restarts over the job's life (1-240)."""
    landing_retention_days: int = Field(7, ge=1, le=3650)
    """Delete unprocessed landing objects after (safety net)."""
    archive_retention_days: int = Field(30, ge=1, le=3650)
    """Delete processed landing objects after."""
    noncurrent_retention_days: int = Field(7, ge=1, le=3650)
    """Delete old object versions after."""
    partition_expiration_days: int | None = Field(None, ge=1, le=3650)
    """Drop ``market_ticks`` partitions after; unset keeps them."""
    quarantine_expiration_days: int = Field(30, ge=1, le=3650)
    """Drop ``quarantine`` partitions after."""
    github_repository: Annotated[
        str | None, matching(_GITHUB_REPOSITORY, "a GitHub repository like 'my-org/cryptopipe'")
    ] = None
    """GitHub repository (``owner/name``, exact case) whose workflows deploy the environment: the ``bootstrap-<env>``
    stack trusts its OIDC tokens; unset: no CI identities."""
    github_repository_id: int | None = Field(None, ge=1, le=2**63 - 1)
    """Numeric id of that repository (``gh api repos/OWNER/NAME --jq .id``): the provider trusts ids, which a re-
    registered name cannot take over; required with ``github_repository``."""
    github_repository_owner_id: int | None = Field(None, ge=1, le=2**63 - 1)
    """Numeric id of its owner (``gh api repos/OWNER/NAME --jq .owner.id``); required with ``github_repository``."""
    project_number: int | None = Field(None, ge=1, le=999_999_999_999_999)
    """The project's number (``gcloud projects describe``): names the Workload Identity provider the workflows
    authenticate through (``cdktf/ci.py``)."""
    alert_freshness_minutes: int | None = Field(None, ge=2, le=1440)
    """Alert when the newest loaded tick is older than this; unset: 3 poll intervals + 2 triggers, rounded up (4 min at
    the 60 s interval and 10 s trigger)."""
    alert_producer_silence_minutes: int | None = Field(None, ge=2, le=1440)
    """Alert when the producer logs no poll for this long; unset: 3 intervals (at least 2 min)."""
    alert_stream_silence_minutes: int | None = Field(None, ge=2, le=1440)
    """Alert when the stream logs no batch and no idle line for this long; unset: 2 triggers + 1 min. Scheduled
    mode: when no run ends well for this long; unset: ``schedule_minutes`` plus ``scheduled_run_minutes``."""
    alert_max_driver_restarts_per_hour: int = Field(3, ge=1, le=10)
    """Alert when the job's driver starts more often in an hour."""
    alert_quarantine_percent: float = Field(5.0, gt=0, le=100)
    """Alert when more of the last 15 minutes' lines are quarantined."""
    alert_emails: Annotated[CommaSeparated, matching(r"[^@\s]+@[^@\s]+\.[^@\s]+", "e-mail addresses")] = ()
    """E-mail addresses the alerts notify (comma-separated); none: the policies exist and notify nobody."""
    alert_webhook_url: Annotated[str | None, matching(r"https://\S+", "an https:// URL")] = None
    """An ``https://`` webhook the alerts also post to."""
    billing_account: Annotated[
        str | None, matching(r"[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}", "a billing account id like 012345-6789AB-CDEF01")
    ] = None
    """Billing account of the project: with ``budget_amount``, a monthly budget e-mailing at 50/90/100 %; the deployer
    needs ``roles/billing.costsManager`` on it from a billing admin."""
    budget_amount: int | None = Field(None, ge=1, le=10_000_000)
    """The monthly budget, in the billing account's currency; needs ``billing_account`` and ``project_number``."""

    @classmethod
    def ordered_sources(
        cls, init_settings: PydanticBaseSettingsSource, env_settings: StrictEnvSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file's values come as keywords, so the environment goes first; the name, which
        # chose the variables' prefix (environment() passes it), goes before both.
        name = InitSettingsSource(cls, {"name": init_settings.init_kwargs.get("name")})
        return name, env_settings, init_settings

    def in_mode(self, processing: Processing) -> EnvironmentConfig:
        """This environment in processing mode ``processing`` (with its own schedule)."""
        return self.model_copy(update={"processing": processing})

    def other_mode(self) -> EnvironmentConfig:
        """This environment in the processing mode it does not run in."""
        return self.in_mode("stream" if self.processing == "scheduled" else "scheduled")

    @property
    def coingecko_need(self) -> MonthlyNeed:
        """What the producer's polls need of the CoinGecko plan in the longest month."""
        return MonthlyNeed.of(self.api_plan, self.monthly_credits, interval_seconds=self.interval_seconds,
                              coins=len(self.coin_ids) or self.top_n, currencies=len(self.vs_currencies))

    @model_validator(mode="after")
    def _fits_together(self) -> EnvironmentConfig:
        need = self.coingecko_need
        if need.credits is None and self.api_plan != "none":
            raise Refused("monthly_credits", None, f"plan {self.api_plan!r} documents no credits: expected the "
                          "contract's call credits a month")
        if refusal := need.refusal():  # the producer refuses it at start-up alike (producer/config.py)
            raise Refused("interval_seconds", self.interval_seconds, refusal)
        if self.trigger_seconds < MIN_TRIGGER_SECONDS[self.bigquery_write]:
            raise Refused("trigger_seconds", self.trigger_seconds, f"shorter than the "
                          f"{MIN_TRIGGER_SECONDS[self.bigquery_write]:g} s BigQuery's quota allows {self.bigquery_write} "
                          "all day (core/bigquery_quotas.py)")
        if not self.zone.startswith(f"{self.region}-"):
            raise Refused("zone", self.zone, f"expected a zone of region {self.region!r}, like {self.region}-a")
        if self.kms_key and (location := _KMS_KEY.fullmatch(self.kms_key)["location"]) != self.region:
            raise Refused("kms_key", self.kms_key, f"the key's location {location!r} is not region {self.region!r}; "
                          "the bucket, dataset and disks need a key in their own region")
        for bucket_name in (self.bucket_name, self.temp_bucket_name):
            if len(bucket_name) > 63:
                raise Refused("prefix", self.prefix, f"bucket name {bucket_name!r} is over GCS's 63 characters; "
                              "shorten the prefix")
        for stage, account_id in {**self.service_account_ids, **self.ci_service_account_ids}.items():
            if not 6 <= len(account_id) <= 30:
                raise Refused("prefix", self.prefix, f"service account id {account_id!r} ({stage}) must be 6-30 "
                              "characters; shorten the prefix")
        if not 4 <= len(self.ci_pool_id) <= 32:
            raise Refused("prefix", self.prefix, f"Workload Identity pool id {self.ci_pool_id!r} must be 4-32 "
                          "characters; shorten the prefix")
        if (self.billing_account is None) != (self.budget_amount is None):
            raise Refused("budget_amount", self.budget_amount, "set billing_account and budget_amount together")
        if self.budget_amount is not None and self.project_number is None:
            raise Refused("project_number", None, "required with a budget: a budget names its project by number")
        for name in ("github_repository_id", "github_repository_owner_id"):
            if self.github_repository and getattr(self, name) is None:
                raise Refused(name, None, f"required with github_repository ({self.github_repository!r}): the "
                              "Workload Identity provider trusts numeric ids, which a re-registered name cannot "
                              "take over")
        return self

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
    def scheduler_cluster_role_id(self) -> str:
        """Scheduled mode: custom role of the scheduler account on the cluster (get, start, stop, submit to it),
        granted on the cluster alone (made by the bootstrap stack, like every custom role)."""
        return f"{self.prefix}_{self.name}_scheduler_cluster".replace("-", "_")

    @property
    def scheduler_jobs_role_id(self) -> str:
        """Scheduled mode: custom role of the scheduler account on the project: create, get and list Dataproc
        jobs (a job runs on a cluster it may ``use``: only ours)."""
        return f"{self.prefix}_{self.name}_scheduler_jobs".replace("-", "_")

    @property
    def cluster_iam_role_id(self) -> str:
        """Custom role of the CI deployer: read and set the cluster's IAM policy (the scheduler's grant on it),
        which ``roles/dataproc.editor`` lacks."""
        return f"{self.prefix}_{self.name}_cluster_iam".replace("-", "_")

    def custom_role(self, role_id: str) -> str:
        """The full name of a custom role of the project."""
        return f"projects/{self.project}/roles/{role_id}"

    @property
    def cluster_name(self) -> str:
        """The Dataproc cluster's name: the job, the workflow and the alerts name it."""
        return self.name_of("processing", "cluster")

    @property
    def run_id_prefix(self) -> str:
        """Scheduled mode: a run's Dataproc job id is this plus the slot (``-<minutes since the epoch>``); unique
        in the project's region even beside another environment."""
        return f"{self.prefix}-{self.name}-run"

    @property
    def dataset_id(self) -> str:
        """BigQuery ids take underscores."""
        return f"{self.prefix}_{self.name}".replace("-", "_")

    @property
    def service_account_ids(self) -> dict[str, str]:
        """Account id (the part before ``@``) of each workload's service account, by stage: ``scheduler`` starts
        scheduled mode's runs (made in either mode, so a switch is one deploy)."""
        return {stage: f"{self.prefix}-{self.name}-{stage}" for stage in ("producer", "processing", "scheduler")}

    @property
    def ci_service_account_ids(self) -> dict[str, str]:
        """Account ids of CI's identities (made by the bootstrap stack): ``deployer`` applies the
        stack, ``planner`` only reads it to show plans on pull requests."""
        return {role: f"{self.prefix}-{self.name}-{role}" for role in ("deployer", "planner")}

    def service_account_email(self, account_id: str) -> str:
        """Email of a service account of this environment's project."""
        return f"{account_id}@{self.project}.iam.gserviceaccount.com"

    @property
    def alert_thresholds(self) -> Thresholds:
        """The alerts' thresholds: the ``alert_*`` fields, or defaults from the interval and the trigger."""
        minutes = {"freshness_seconds": self.alert_freshness_minutes,
                   "producer_silence_seconds": self.alert_producer_silence_minutes,
                   "stream_silence_seconds": self.alert_stream_silence_minutes}
        given = {key: value * 60 for key, value in minutes.items() if value is not None}
        if self.processing == "scheduled":
            return Thresholds.for_schedule(
                self.interval_seconds, self.schedule_minutes * 60, self.scheduled_run_minutes * 60, **given,
                quarantine_percent=self.alert_quarantine_percent,
            )
        return Thresholds.from_intervals(
            self.interval_seconds, self.trigger_seconds, **given,
            max_driver_restarts_per_hour=self.alert_max_driver_restarts_per_hour,
            quarantine_percent=self.alert_quarantine_percent,
        )

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


def load_environments(path: Path = ENVIRONMENTS_FILE) -> list[EnvironmentConfig]:
    """Read every environment of ``path``, environment variables overriding the file."""
    try:
        tables = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the environments file {path}: {exc}") from exc
    if not tables:
        raise ConfigError(f"{path} declares no environment; expected tables like [dev] and [prod]")
    return [environment(name, values, source=path.name) for name, values in tables.items()]


def environment(name: str, values: Mapping[str, object], source: str = "values") -> EnvironmentConfig:
    """Build and validate one environment: ``values`` (a table of ``source``), then the
    ``CRYPTOPIPE__DEPLOY__<NAME>__*`` variables over them."""
    prefix = f"{ENV_VAR_PREFIX}{name.upper()}__"
    if "name" in values:  # the table's name is the environment's: no field renames it
        raise _error(name, prefix, source, [Problem("unknown", "name", values["name"], "")])
    if f"{prefix}NAME" in os.environ:  # nor does a variable
        raise _error(name, prefix, source, [Problem("unknown", f"{prefix}NAME", os.environ[f"{prefix}NAME"], "")])
    try:
        return EnvironmentConfig(_env_prefix=prefix, **{**values, "name": name})
    except (ValidationError, Refused) as error:
        raise _error(name, prefix, source, problems(error)) from None


def _error(env: str, prefix: str, source: str, found: list[Problem]) -> ConfigError:
    """The first of ``found``, named for someone editing ``source`` or setting variables."""
    known = sorted(name for name in EnvironmentConfig.model_fields if name != "name")
    unknown = [problem.field for problem in found if problem.kind == "unknown"]
    variables = [field for field in unknown if field.startswith(prefix)]
    if variables:
        return ConfigError(f"environment {env!r}: {variables[0]} names no field; known fields are {known}")
    if unknown:
        return ConfigError(f"environment {env!r}: unknown field(s) {unknown} in {source}; known fields are {known}")
    missing = [problem.field for problem in found if problem.kind == "missing"]
    if missing:
        return ConfigError(f"environment {env!r}: missing field(s) {missing}; set them in {source} [{env}] "
                           f"or as {prefix}<FIELD>")
    problem = found[0]
    where = (f"the table's name in {source}" if problem.field == "name"
             else f"set it in {source} [{env}] or {prefix}{problem.field.upper()}")
    return ConfigError(f"environment {env!r}, field {problem.field!r}: {problem.value!r} is invalid: {problem.reason} "
                       f"({where})")


def settings_table(environments: Sequence[EnvironmentConfig]) -> str:
    """Every field as docs/DEPLOY.md lists it: what it sets (its docstring), its default, and
    each environment's value where environments.toml sets another."""
    from pydantic_core import PydanticUndefined

    from core.docsections import markdown_table

    def shown(value: object) -> str:
        if value is PydanticUndefined:
            return "required"
        if value in (None, ()):
            return "unset"
        if isinstance(value, bool):
            return f"`{str(value).lower()}`"
        return f"`{','.join(value) if isinstance(value, tuple) else value}`"

    rows = []
    for name, field in EnvironmentConfig.model_fields.items():
        if name == "name":
            continue
        values = [getattr(cfg, name) for cfg in environments]
        own = ["" if field.default is not PydanticUndefined and value == field.default else shown(value)
               for value in values]
        rows.append((f"`{name}`", " ".join(field.description.replace("``", "`").split()), shown(field.default), *own))
    return markdown_table(("field", "what it sets", "default", *(cfg.name for cfg in environments)), rows)
