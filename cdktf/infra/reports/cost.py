"""What an environment costs a day, computed from its settings and Google's list prices.

The deployment guide's cost table once counted one producer disk where the stack makes two,
and 1,440 micro-batches a day where the 120 s trigger makes 720: hand arithmetic
drifts from the stack. Here every line is a formula over :class:`EnvironmentConfig`
(node count and machine types, disk sizes, trigger, retention) and the price list
below; the table is docs/DEPLOY.md's ``cost`` section (scripts/docs.py), and a test
fails when it is stale. Pure Python, no CDKTF import.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.coingecko_plans import PLANS
from infra.artifacts.scheduled_run import POLL_SECONDS
from infra.environments import FLOW_LOG_CONFIG, EnvironmentConfig
from infra.monitoring.conditions import condition_count

HOURS_PER_DAY = 24
DAYS_PER_MONTH = 30.4

#: On-demand list prices in us-central1, USD (cloud.google.com/compute/all-pricing,
#: /dataproc/pricing, /vpc/network-pricing#nat, /storage/pricing; read 2026-11).
MACHINES = {  # machine type -> (vCPUs, $ per hour)
    "e2-small": (2, 0.0168), "e2-medium": (2, 0.0335), "e2-standard-2": (2, 0.0670),
    "e2-standard-4": (4, 0.1340), "e2-standard-8": (8, 0.2681), "n2-standard-4": (4, 0.1942),
}
DATAPROC_FEE_PER_VCPU_HOUR = 0.010
PD_BALANCED_PER_GB_MONTH = 0.10
NAT_GATEWAY_PER_VM_HOUR = 0.0014
NAT_IP_PER_HOUR = 0.005
NAT_DATA_PER_GB = 0.045
GCS_CLASS_A_PER_1000 = 0.005
GCS_STANDARD_PER_GB_MONTH = 0.020
#: BigQuery Storage Write API ingestion, $ per GiB (cloud.google.com/bigquery/pricing,
#: "Data ingestion pricing"; the first 2 TiB a month are free, not counted here).
STORAGE_WRITE_PER_GIB = 0.025
#: Bytes BigQuery counts for a value (its data size calculation): 8 for a number or a
#: timestamp, 2 + the UTF-8 length for a string, taken as this many characters on average.
BIGQUERY_NUMBER_BYTES = 8
BIGQUERY_STRING_OVERHEAD = 2
AVERAGE_STRING_CHARS = 16
#: The rates the Storage Write cost is stated at: the default top 250 a minute, and 15,000.
COINS_PER_MINUTE_STATED = (250, 15_000)

#: One poll of 250 coins: its /coins/markets response and the NDJSON object it lands as
#: (both checked against the bundled replay by tests/cdktf/test_cost.py).
RESPONSE_BYTES_PER_COIN = 850
POLL_BYTES_PER_COIN = 530
#: Class A operations of a micro-batch that loads a file: the archive move (a copy), checkpoint
#: offsets and commits, state-store files of a few shuffle partitions, staging, the ledger.
GCS_OPERATIONS_PER_BATCH = 30
#: Class A operations of every trigger, with or without a file: the landing zone's recursive
#: listing (objects.list is Class A), its root and today's dt=/hour= prefixes. A trigger finds a
#: new file about once per poll (one landing object each), so most triggers only list.
GCS_LISTS_PER_TRIGGER = 3

#: Cloud Monitoring alerting (cloud.google.com/stackdriver/pricing, "Alerting"; examples at
#: cloud.google.com/monitoring/alerts/cost-control; read 2026-12): $1.50 a condition a month, and
#: $0.35 a million time series returned, each condition returning one (reduced across series)
#: every 30 s execution period.
ALERT_CONDITION_PER_MONTH = 1.50
ALERT_SERIES_PER_MILLION = 0.35
ALERT_EXECUTIONS_PER_DAY = 86_400 // 30
#: Cloud Logging: $0.50 a GiB ingested beyond the first 50 GiB of a project a month
#: (cloud.google.com/stackdriver/pricing, "Cloud Logging pricing summary").
LOGGING_PER_GIB = 0.50
LOGGING_FREE_GIB_PER_MONTH = 50
#: Vended network logs (VPC Flow Logs): no free allotment; $0.50 a GiB generated (network telemetry,
#: first 10 TiB, cloud.google.com/vpc/network-pricing#network-telemetry) and $0.25 a GiB stored in
#: Cloud Logging ("Vended network logs storage", cloud.google.com/stackdriver/pricing).
FLOW_LOGS_GENERATED_PER_GIB = 0.50
FLOW_LOGS_STORED_PER_GIB = 0.25
#: Assumed, to be measured in the first week (docs/OPERATIONS.md): distinct connections a VM
#: makes per aggregation interval (Google APIs through Private Google Access, CoinGecko, the
#: cluster's own traffic) and the size of a flow record with all metadata.
FLOWS_PER_VM_PER_INTERVAL = 60
FLOW_RECORD_BYTES = 1_500
#: Assumed log volume, also measured in the first week: Spark's driver output per micro-batch
#: that loads (its progress report and our batch line), the idle line, a Dataproc node's daemon
#: and syslog output a day, the producer's serial console a poll, a Data Access audit entry.
DRIVER_BYTES_PER_BATCH = 3_000
IDLE_LINE_BYTES = 200
NODE_LOG_BYTES_PER_DAY = 30_000_000
SERIAL_BYTES_PER_POLL = 600
AUDIT_ENTRY_BYTES = 1_500

#: Scheduled mode (docs/STREAM.md, "Scheduled mode"): VM time of one run, assumed until measured in
#: the first week: the cluster's start (VMs boot; initialization actions do not run again), a Spark
#: session and its first batch, the interval's files, the stop.
SCHEDULED_RUN_MINUTES = 5
#: Workflows: internal steps of one execution (infra/artifacts/scheduled_run.py): a dozen once (look for active
#: jobs, get, start, submit, look again, stop, report) and three (sleep, get, switch) every poll of the
#: starting cluster or the running job; $0.01 a 1,000 beyond the first 5,000 a month
#: (cloud.google.com/workflows/pricing).
WORKFLOW_STEPS_PER_RUN = 12 + 3 * SCHEDULED_RUN_MINUTES * 60 // POLL_SECONDS
WORKFLOW_STEPS_PER_1000 = 0.01
WORKFLOW_FREE_STEPS_PER_MONTH = 5_000
#: Cloud Scheduler: $0.10 a job a month (cloud.google.com/scheduler/pricing; the 3 free jobs of a
#: billing account are not counted, other projects may use them).
SCHEDULER_JOB_PER_MONTH = 0.10


@dataclass(frozen=True)
class Line:
    """One line of the table: what, how it is computed, and its cost a day."""

    item: str
    formula: str
    dollars: float


@dataclass(frozen=True)
class Free:
    """A resource type that costs nothing of its own, and why."""

    reason: str


_IAM_IS_FREE = Free("IAM and its grants: no charge (cloud.google.com/iam/pricing)")
#: Every resource type the stacks declare: the table's lines it is billed in, or why it is free.
#: tests/cdktf/test_cost.py fails on a type of the synthesized stacks that is in neither.
BILLED_AS: dict[str, tuple[str, ...] | Free] = {
    "google_dataproc_cluster": ("Dataproc nodes", "Dataproc fee, per vCPU-hour", "Dataproc boot disks, pd-balanced"),
    "google_dataproc_job": Free("runs on the cluster: billed as its nodes and fee"),
    "google_workflows_workflow": ("Workflows steps (scheduled runs)",),
    "google_cloud_scheduler_job": ("Cloud Scheduler job",),
    "google_compute_instance": ("producer VM", "producer disks, pd-balanced: boot and spool"),
    "google_compute_disk": ("producer disks, pd-balanced: boot and spool",),
    "google_compute_router_nat": ("Cloud NAT gateway, per VM-hour", "Cloud NAT external IP",
                                  "Cloud NAT data: CoinGecko responses"),
    "google_compute_router": Free("a Cloud Router used by Cloud NAT has no charge of its own "
                                  "(cloud.google.com/network-connectivity/docs/router/pricing)"),
    "google_compute_network": Free("a VPC network has no charge (cloud.google.com/vpc/network-pricing)"),
    "google_compute_subnetwork": ("VPC Flow Logs (vended, no free allotment)",),
    "google_compute_firewall": Free("firewall rules have no charge; their logging, which is billed, is off"),
    "google_storage_bucket": ("Cloud Storage data: the archive at its full size", "Cloud Storage Class A operations"),
    "google_storage_bucket_object": Free("the artifacts, tens of MB: under a cent a month at the data line's price"),
    "google_bigquery_dataset": Free("a dataset has no charge of its own"),
    "google_bigquery_table": ("BigQuery Storage Write API ingestion (no free tier counted)",),
    "google_logging_metric": Free("log-based metrics are Monitoring data, free up to 150 MiB a billing account a "
                                  "month: six metrics of one series, a point a minute, stay far below "
                                  "(cloud.google.com/stackdriver/pricing)"),
    "google_monitoring_alert_policy": ("Cloud Monitoring alert conditions",),
    "google_monitoring_notification_channel": Free("notification channels have no charge"),
    "google_billing_budget": Free("budgets have no charge (cloud.google.com/billing/docs/how-to/budgets)"),
    "google_project_iam_audit_config": ("Cloud Logging: driver, node, serial and audit logs",),
    "google_secret_manager_secret": Free("one active version, read at each producer start: within the free 6 "
                                         "versions and 10,000 accesses a month (cloud.google.com/secret-manager/pricing)"),
    "google_project_service": Free("enabling an API has no charge"),
    "time_sleep": Free("a wait inside Terraform: no Google resource"),
    **dict.fromkeys(("google_project_iam_member", "google_storage_bucket_iam_member", "google_bigquery_dataset_iam_member",
                     "google_bigquery_table_iam_member", "google_secret_manager_secret_iam_member",
                     "google_kms_crypto_key_iam_member", "google_dataproc_cluster_iam_member", "google_service_account_iam_member", "google_service_account",
                     "google_project_iam_custom_role", "google_iam_workload_identity_pool",
                     "google_iam_workload_identity_pool_provider"), _IAM_IS_FREE),
}


def unaccounted(resource_types: set[str], items: set[str]) -> list[str]:
    """What of ``resource_types`` the table (its line ``items``) neither prices nor explains as free."""
    problems = []
    for type_ in sorted(resource_types):
        entry = BILLED_AS.get(type_)
        if entry is None:
            problems.append(f"{type_}: no cost line and no reasoned free entry in cdktf/infra/reports/cost.py BILLED_AS")
        elif isinstance(entry, Free):
            if not entry.reason.strip():
                problems.append(f"{type_}: free without a reason")
        else:
            problems += [f"{type_}: the table has no line {item!r}" for item in entry if item not in items]
    return problems


def _vms(cfg: EnvironmentConfig) -> int:
    return 1 + cfg.cluster_worker_count


def runs_per_day(cfg: EnvironmentConfig) -> int:
    """Scheduled mode's runs a day (0 in stream mode)."""
    return 1440 // cfg.schedule_minutes if cfg.processing == "scheduled" else 0


def cluster_hours_per_day(cfg: EnvironmentConfig) -> float:
    """Hours a day the cluster's VMs run: all day streaming, a run's time per run scheduled."""
    if cfg.processing == "scheduled":
        return runs_per_day(cfg) * SCHEDULED_RUN_MINUTES / 60
    return HOURS_PER_DAY


def _cluster_time(cfg: EnvironmentConfig) -> str:
    if cfg.processing == "scheduled":
        return f"{runs_per_day(cfg)} runs × {SCHEDULED_RUN_MINUTES} min"
    return "24"


def _price(machine_type: str) -> tuple[int, float]:
    if machine_type not in MACHINES:
        raise KeyError(f"no list price for {machine_type!r}: add it to cdktf/infra/reports/cost.py MACHINES")
    return MACHINES[machine_type]


def batches_per_day(cfg: EnvironmentConfig) -> int:
    """Micro-batches a day: at the stream's trigger interval, or a scheduled run's batches (its polls'
    files, ``max_files_per_trigger`` a batch) and the empty trigger that ends it."""
    if cfg.processing == "scheduled":
        return runs_per_day(cfg) * (loading_batches_per_run(cfg) + 1)
    return 86_400 // cfg.trigger_seconds


def loading_batches_per_run(cfg: EnvironmentConfig) -> int:
    """A scheduled run's batches that load files: the interval's polls, ``max_files_per_trigger`` a batch."""
    files = cfg.schedule_minutes * 60 // cfg.interval_seconds
    return -(-files // cfg.max_files_per_trigger)


def polls_per_day(cfg: EnvironmentConfig) -> int:
    return 86_400 // cfg.interval_seconds


def loading_batches_per_day(cfg: EnvironmentConfig) -> int:
    """Micro-batches that find a file: one per poll at most, one per trigger at most."""
    if cfg.processing == "scheduled":
        return runs_per_day(cfg) * loading_batches_per_run(cfg)
    return min(batches_per_day(cfg), polls_per_day(cfg))


def gcs_class_a_per_day(cfg: EnvironmentConfig) -> int:
    """The stream's listings every trigger and writes every loading batch, and the producer's landings."""
    return (batches_per_day(cfg) * GCS_LISTS_PER_TRIGGER + loading_batches_per_day(cfg) * GCS_OPERATIONS_PER_BATCH
            + polls_per_day(cfg))


def flow_log_gib_per_day(cfg: EnvironmentConfig) -> float:
    """VPC Flow Logs' records a day: every VM's flows each interval, sampled."""
    interval_seconds = {"INTERVAL_5_SEC": 5, "INTERVAL_30_SEC": 30, "INTERVAL_1_MIN": 60, "INTERVAL_5_MIN": 300,
                        "INTERVAL_10_MIN": 600, "INTERVAL_15_MIN": 900}[FLOW_LOG_CONFIG["aggregation_interval"]]
    vms = 1 + _vms(cfg) * cluster_hours_per_day(cfg) / HOURS_PER_DAY  # the producer all day, the cluster as it runs
    records = vms * FLOWS_PER_VM_PER_INTERVAL * 86_400 / interval_seconds * FLOW_LOG_CONFIG["flow_sampling"]
    return records * FLOW_RECORD_BYTES / 2**30


def logging_gib_per_day(cfg: EnvironmentConfig) -> float:
    """What the environment sends to Cloud Logging a day, vended network logs aside."""
    idle_lines = 86_400 // 60 if cfg.processing == "stream" else 0  # core/health.py IDLE_LINE_SECONDS at most
    data_writes = loading_batches_per_day(cfg) * GCS_OPERATIONS_PER_BATCH + polls_per_day(cfg)  # DATA_WRITE audited
    total = (loading_batches_per_day(cfg) * DRIVER_BYTES_PER_BATCH + idle_lines * IDLE_LINE_BYTES
             + _vms(cfg) * NODE_LOG_BYTES_PER_DAY * cluster_hours_per_day(cfg) / HOURS_PER_DAY
             + polls_per_day(cfg) * SERIAL_BYTES_PER_POLL
             + data_writes * AUDIT_ENTRY_BYTES)
    return total / 2**30


def tick_row_bytes() -> int:
    """What BigQuery counts for one market_ticks row, from the table's columns (core/tables.py)."""
    from core.tables import LOAD_ID, TICK_FIELDS

    load_id_chars = 36 + 1 + 6  # '<query uuid>/<batch id>'
    return sum(
        BIGQUERY_NUMBER_BYTES if spec.type != "string"
        else BIGQUERY_STRING_OVERHEAD + (load_id_chars if spec.name == LOAD_ID else AVERAGE_STRING_CHARS)
        for spec in TICK_FIELDS
    )


def storage_write_per_day(coins_per_minute: int) -> tuple[float, float]:
    """(GiB, $) a day the Storage Write API ingests when every coin of every poll is a new tick."""
    gib = coins_per_minute * 60 * HOURS_PER_DAY * tick_row_bytes() / 2**30
    return gib, gib * STORAGE_WRITE_PER_GIB


def lines(cfg: EnvironmentConfig) -> list[Line]:
    """The day's cost of ``cfg``'s environment, item by item."""
    nodes = _vms(cfg)
    master_cpus, master_hourly = _price(cfg.cluster_master_machine_type)
    worker_cpus, worker_hourly = _price(cfg.cluster_worker_machine_type)
    producer_cpus, producer_hourly = _price(cfg.producer_machine_type)
    workers = cfg.cluster_worker_count
    cluster_hourly = master_hourly + workers * worker_hourly
    cluster_cpus = master_cpus + workers * worker_cpus
    coins = len(cfg.coin_ids) or cfg.top_n
    landed_gb_day = polls_per_day(cfg) * coins * POLL_BYTES_PER_COIN / 1e9
    fetched_gb_day = polls_per_day(cfg) * coins * RESPONSE_BYTES_PER_COIN / 1e9
    producer_disk_gb = cfg.producer_disk_gb + cfg.producer_spool_disk_gb
    operations = gcs_class_a_per_day(cfg)
    kept_gb = landed_gb_day * cfg.archive_retention_days
    conditions = condition_count(cfg.alert_thresholds)
    logged = logging_gib_per_day(cfg)
    logged_billed = max(0.0, logged * DAYS_PER_MONTH - LOGGING_FREE_GIB_PER_MONTH) / DAYS_PER_MONTH
    flows = flow_log_gib_per_day(cfg)
    hours, when = cluster_hours_per_day(cfg), _cluster_time(cfg)
    runs = runs_per_day(cfg)
    steps_billed = max(0.0, runs * WORKFLOW_STEPS_PER_RUN * DAYS_PER_MONTH - WORKFLOW_FREE_STEPS_PER_MONTH)
    return [
        Line(
            "Dataproc nodes",
            f"{cfg.cluster_master_machine_type}"
            + (f" + {workers} × {cfg.cluster_worker_machine_type}" if workers else "")
            + f": {cluster_hourly:.4f} $/h × {when}",
            cluster_hourly * hours,
        ),
        Line(
            "Dataproc fee, per vCPU-hour",
            f"{cluster_cpus} vCPU × {DATAPROC_FEE_PER_VCPU_HOUR} × {when}",
            cluster_cpus * DATAPROC_FEE_PER_VCPU_HOUR * hours,
        ),
        Line(
            "Dataproc boot disks, pd-balanced",
            f"{nodes} × {cfg.cluster_disk_gb} GB × {PD_BALANCED_PER_GB_MONTH} / 30.4",
            nodes * cfg.cluster_disk_gb * PD_BALANCED_PER_GB_MONTH / DAYS_PER_MONTH,
        ),
        Line(
            "producer VM", f"{cfg.producer_machine_type}: {producer_hourly} $/h × 24", producer_hourly * HOURS_PER_DAY
        ),
        Line(
            "producer disks, pd-balanced: boot and spool",
            f"({cfg.producer_disk_gb} + {cfg.producer_spool_disk_gb}) GB × {PD_BALANCED_PER_GB_MONTH} / 30.4",
            producer_disk_gb * PD_BALANCED_PER_GB_MONTH / DAYS_PER_MONTH,
        ),
        Line(
            "Cloud NAT gateway, per VM-hour",
            f"{nodes + 1} VMs × {NAT_GATEWAY_PER_VM_HOUR} × 24" if cfg.processing == "stream" else
            f"(1 VM × 24 + {nodes} × {when}) × {NAT_GATEWAY_PER_VM_HOUR}",
            (HOURS_PER_DAY + nodes * hours) * NAT_GATEWAY_PER_VM_HOUR,
        ),
        Line("Cloud NAT external IP", f"{NAT_IP_PER_HOUR} $/h × 24", NAT_IP_PER_HOUR * HOURS_PER_DAY),
        Line(
            "Cloud NAT data: CoinGecko responses",
            f"{fetched_gb_day:.2f} GB × {NAT_DATA_PER_GB}",
            fetched_gb_day * NAT_DATA_PER_GB,
        ),
        Line(
            "Cloud Storage Class A operations",
            f"({batches_per_day(cfg):,} {'triggers' if cfg.processing == 'stream' else 'run batches'} × "
            f"{GCS_LISTS_PER_TRIGGER} lists + "
            f"{loading_batches_per_day(cfg):,} loading batches × {GCS_OPERATIONS_PER_BATCH} + "
            f"{polls_per_day(cfg):,} landings) × {GCS_CLASS_A_PER_1000} / 1,000",
            operations * GCS_CLASS_A_PER_1000 / 1000,
        ),
        Line(
            "Cloud Monitoring alert conditions",
            f"{conditions} × ({ALERT_CONDITION_PER_MONTH} / 30.4 + {ALERT_EXECUTIONS_PER_DAY:,} series × "
            f"{ALERT_SERIES_PER_MILLION} / 1M)",
            conditions * (ALERT_CONDITION_PER_MONTH / DAYS_PER_MONTH
                          + ALERT_EXECUTIONS_PER_DAY * ALERT_SERIES_PER_MILLION / 1e6),
        ),
        Line(
            "VPC Flow Logs (vended, no free allotment)",
            f"{flows:.3f} GiB × ({FLOW_LOGS_GENERATED_PER_GIB} + {FLOW_LOGS_STORED_PER_GIB})",
            flows * (FLOW_LOGS_GENERATED_PER_GIB + FLOW_LOGS_STORED_PER_GIB),
        ),
        Line(
            "Cloud Logging: driver, node, serial and audit logs",
            f"{logged:.2f} GiB/day, {LOGGING_FREE_GIB_PER_MONTH} GiB a month free, then × {LOGGING_PER_GIB}",
            logged_billed * LOGGING_PER_GIB,
        ),
        Line(
            "BigQuery Storage Write API ingestion (no free tier counted)",
            f"{polls_per_day(cfg) * coins:,} rows × {tick_row_bytes()} B = "
            f"{storage_write_per_day(coins * 60 // cfg.interval_seconds)[0]:.2f} GiB × {STORAGE_WRITE_PER_GIB}",
            storage_write_per_day(coins * 60 // cfg.interval_seconds)[1],
        ) if cfg.bigquery_write == "storage-write" else Line(
            "BigQuery Storage Write API ingestion (no free tier counted)", "load jobs instead: free", 0.0
        ),
        Line(
            "Cloud Storage data: the archive at its full size",
            f"{landed_gb_day:.2f} GB/day × {cfg.archive_retention_days} days × {GCS_STANDARD_PER_GB_MONTH} / 30.4",
            kept_gb * GCS_STANDARD_PER_GB_MONTH / DAYS_PER_MONTH,
        ),
        Line(
            "Workflows steps (scheduled runs)",
            f"{runs} runs × {WORKFLOW_STEPS_PER_RUN} steps × 30.4, {WORKFLOW_FREE_STEPS_PER_MONTH:,} a month free, "
            f"then × {WORKFLOW_STEPS_PER_1000} / 1,000" if runs else "stream mode: none",
            steps_billed * WORKFLOW_STEPS_PER_1000 / 1000 / DAYS_PER_MONTH,
        ),
        Line(
            "Cloud Scheduler job",
            f"{SCHEDULER_JOB_PER_MONTH} / 30.4" if runs else "stream mode: none",
            SCHEDULER_JOB_PER_MONTH / DAYS_PER_MONTH if runs else 0.0,
        ),
    ]


def table(configs: list[EnvironmentConfig]) -> str:
    """The deployment guide's table: one column per environment, a total per environment a day and a month."""
    by_env = {cfg.name: lines(cfg) for cfg in configs}
    first = by_env[configs[0].name]
    head = "| item | " + " | ".join(f"{cfg.name}: how | {cfg.name} $/day" for cfg in configs) + " |"
    rows = [head, "|---" * (1 + 2 * len(configs)) + "|"]
    for i, line in enumerate(first):
        cells = []
        for cfg in configs:
            own = by_env[cfg.name][i]
            cells += [own.formula, _dollars(own.dollars)]
        rows.append(f"| {line.item} | " + " | ".join(cells) + " |")
    totals = [f"**{_dollars(sum(line.dollars for line in by_env[cfg.name]))}**" for cfg in configs]
    months = [f"≈ ${sum(line.dollars for line in by_env[cfg.name]) * DAYS_PER_MONTH:,.0f} a month" for cfg in configs]
    rows.append(
        "| **total** | " + " | ".join(f"{month} | {total}" for month, total in zip(months, totals, strict=True)) + " |"
    )
    return "\n".join(rows)


def summary_table(configs: list[EnvironmentConfig]) -> str:
    """The README's cost in brief: per environment, Google Cloud a day and a month (this module's
    lines), and the CoinGecko plan its polls need, with the month's calls and the plan's price."""
    rows = ["| environment | processing | Google Cloud a day | ≈ a month | CoinGecko plan | calls a month (31 days) "
            "| plan's credits | plan's price a month (billed yearly) |", "|---|---|---:|---:|---|---:|---:|---:|"]
    for cfg in configs:
        day = sum(line.dollars for line in lines(cfg))
        need, plan = cfg.coingecko_need, PLANS[cfg.api_plan]
        credits = "no cap" if need.credits is None else f"{need.credits:,}"
        price = ("free" if plan.usd_a_month == 0 or plan.key_header is None
                 else "quoted" if plan.usd_a_month is None else f"${plan.usd_a_month}")
        rows.append(f"| {cfg.name} | {cfg.processing} | {_dollars(day)} | ${day * DAYS_PER_MONTH:,.0f} | "
                    f"`{cfg.api_plan}` | {need.calls:,} | {credits} | {price} |")
    return "\n".join(rows)


def _dollars(amount: float) -> str:
    return "<$0.01" if amount < 0.005 else f"${amount:,.2f}"


def storage_write_table() -> str:
    """Storage Write ingestion a day at :data:`COINS_PER_MINUTE_STATED` (docs/DEPLOY.md and docs/STREAM.md)."""
    rows = ["| coins a minute | rows a day | GiB a day | $ a day (list price) |", "|---|---|---|---|"]
    for coins in COINS_PER_MINUTE_STATED:
        gib, dollars = storage_write_per_day(coins)
        rows.append(f"| {coins:,} | {coins * 60 * HOURS_PER_DAY:,} | {gib:.2f} | {_dollars(dollars)} |")
    return "\n".join(rows)
