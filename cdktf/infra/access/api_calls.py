"""Every call the deployed code makes against Google APIs, and the permission each needs.

The other half of the effective-permission model (model.py computes
what each identity *holds*): what each identity *does*, per code path, as IAM
sees it: a permission on a resource. The tests check both directions on the
synthesized stacks: every call here is allowed, and nothing an identity holds
goes beyond its calls and the reasoned :data:`ALLOWANCE`.

Each permission is the one Google's API reference gives for the method (e.g. the
JSON API's ``objects.insert`` needs ``storage.objects.create``, and
``storage.objects.delete`` too unless ``ifGenerationMatch=0`` makes it
create-only). A rename in the GCS connector is a copy and a delete; a BigQuery load
job reads its source objects as the identity that creates it.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.access.model import (
    Resource,
    bucket,
    dataproc_cluster,
    dataset,
    project,
    secret,
    secret_version,
    service_account,
    storage_object,
    table,
)
from infra.environments import EnvironmentConfig

#: A poll's landing object, as producer/landing.py names it.
LANDING_OBJECT = "landing/dt=2026-11-30/hour=16/20261130T160501123Z-1f2e3d4c5b6a.ndjson"
#: A back-fill's marker (it landed once), as producer/backfill.py names it.
BACKFILL_MARKER = "landing/_backfilled/20261130T130000000Z-bf0123456789ab.done"
ARCHIVED_OBJECT = "archive/dt=2026-11-30/hour=16/20261130T160501123Z-1f2e3d4c5b6a.ndjson"
CHECKPOINT_OBJECT = "checkpoints/market_ticks/offsets/42"
STAGED_OBJECT = "staging/batch_id=42/market_ticks/part-00000-a.parquet"
#: A batch's stream record on the Storage Write path (jobs/loaders/bigquery_storage.py),
#: beside the checkpoint, where no lifecycle rule deletes it; the drivers' markers are beside it.
STREAM_RECORD_OBJECT = f"{CHECKPOINT_OBJECT.rsplit('/', 2)[0]}/_write_streams/0123456789abcdef0123/batch_42.json"
PRODUCER_ARTIFACT = "artifacts/producer/cryptopipe-producer-0123456789abcdef.tar"
JOB_ARTIFACT = "artifacts/job/cryptopipe-job-0123456789abcdef.zip"
#: What Dataproc writes into its staging bucket (cluster metadata, driver output).
DATAPROC_STAGING_OBJECT = "google-cloud-dataproc-metainfo/0c1d/jobs/stream/driveroutput.000000000"
DATAPROC_TEMP_OBJECT = "0c1d/spark-job-history/application_1_0001.inprogress"


@dataclass(frozen=True)
class Call:
    """One call of one identity: what it does, where in the code, the permission it needs and on what."""

    identity: str
    code: str
    what: str
    permission: str
    resource: Resource
    modified_roles: tuple[str, ...] = ()
    """For ``setIamPolicy`` on the project: the roles the call grants (IAM's ``modifiedGrantsByRole``)."""


class Targets:
    """The environment's resources, named as the synthesized stacks name them."""

    def __init__(self, cfg: EnvironmentConfig) -> None:
        self.cfg = cfg
        self.project = project(cfg.project)
        self.data_bucket = bucket(cfg.project, cfg.bucket_name)
        self.temp_bucket = bucket(cfg.project, cfg.temp_bucket_name)
        self.state_bucket = bucket(cfg.project, cfg.state_bucket)
        self.dataset = dataset(cfg.project, cfg.dataset_id)
        self.tables = {name: table(cfg.project, cfg.dataset_id, name) for name in ("market_ticks", "quarantine")}
        self.api_key = secret_version(cfg.project, cfg.name_of("producer", "api-key"))
        self.cluster = dataproc_cluster(cfg.project, cfg.region, cfg.cluster_name)

    def data(self, name: str) -> Resource:
        return storage_object(self.cfg.project, self.cfg.bucket_name, name)

    def temp(self, name: str) -> Resource:
        return storage_object(self.cfg.project, self.cfg.temp_bucket_name, name)

    def state(self, name: str = "cryptopipe/dev/default.tfstate") -> Resource:
        return storage_object(self.cfg.project, self.cfg.state_bucket, name)

    def account(self, account_id: str) -> Resource:
        return service_account(self.cfg.project, self.cfg.service_account_email(account_id))


def workload_calls(targets: Targets) -> list[Call]:
    """What the producer and the processing cluster call, by code path."""
    t = targets
    producer = [
        Call("producer", "producer/landing.py GcsLandingZone.put", "create a landing object (ifGenerationMatch=0)",
             "storage.objects.create", t.data(LANDING_OBJECT)),
        Call("producer", "producer/landing.py GcsLandingZone.put",
             "read the object back after a 412 (an earlier attempt, or a conflict?)",
             "storage.objects.get", t.data(LANDING_OBJECT)),
        Call("producer", "producer/backfill.py Backfiller.drain", "create a back-fill's marker (ifGenerationMatch=0)",
             "storage.objects.create", t.data(BACKFILL_MARKER)),
        Call("producer", "producer/backfill.py Backfiller.done", "look for a back-fill's marker",
             "storage.objects.get", t.data(BACKFILL_MARKER)),
        Call("producer", "cdktf/infra/artifacts/producer_startup.sh download_artifact", "download its artifact at boot",
             "storage.objects.get", t.data(PRODUCER_ARTIFACT)),
        Call("producer", "producer/apikey.py", "read the CoinGecko key at start",
             "secretmanager.versions.access", t.api_key),
    ]
    stream = "jobs/stream.py (Spark file source, GCS connector)"
    processing = [
        Call("processing", stream, "list the landing zone every trigger", "storage.objects.list", t.data_bucket),
        Call("processing", stream, "read new landing files", "storage.objects.get", t.data(LANDING_OBJECT)),
        *(Call("processing", stream, "archive a processed file (cleanSource: copy, then delete)", permission, resource)
          for permission, resource in (("storage.objects.get", t.data(LANDING_OBJECT)),
                                       ("storage.objects.create", t.data(ARCHIVED_OBJECT)),
                                       ("storage.objects.delete", t.data(LANDING_OBJECT)))),
        *(Call("processing", "jobs/stream.py checkpoint", f"checkpoint and state store: {verb}",
               f"storage.objects.{verb}", t.data(CHECKPOINT_OBJECT)) for verb in ("create", "get", "delete")),
        Call("processing", "jobs/batch_files.py", "read the checkpoint's source log", "storage.objects.get",
             t.data(CHECKPOINT_OBJECT)),
        *(Call("processing", "jobs/staging.py", f"stage a batch as Parquet: {verb}", f"storage.objects.{verb}",
               t.data(STAGED_OBJECT)) for verb in ("create", "get", "delete")),
        *(Call("processing", "GCS connector", "read bucket metadata", "storage.buckets.get", b)
          for b in (t.data_bucket, t.temp_bucket)),
        Call("processing", "jobs/loaders/bigquery.py load_batch", "start a load job", "bigquery.jobs.create",
             t.project),
        *(Call("processing", "jobs/loaders/bigquery.py setup", f"check {name}'s schema and layout",
               "bigquery.tables.get", resource) for name, resource in t.tables.items()),
        *(Call("processing", "jobs/loaders/bigquery.py load_batch", f"append a batch to {name}",
               "bigquery.tables.updateData", resource) for name, resource in t.tables.items()),
        Call("processing", "jobs/loaders/bigquery.py load_batch", "the load job reads the staged Parquet",
             "storage.objects.get", t.data(STAGED_OBJECT)),
        *(Call("processing", "jobs/loaders/bigquery_storage.py load_batch",
               f"create, append to, finalize, get and commit a PENDING write stream of {name}",
               "bigquery.tables.updateData", resource) for name, resource in t.tables.items()),
        *(Call("processing", "jobs/loaders/bigquery_storage.py load_batch",
               f"a replay whose commit was refused counts the batch's rows in {name}", "bigquery.tables.getData",
               resource) for name, resource in t.tables.items()),
        Call("processing", "jobs/loaders/bigquery_storage.py load_batch", "run that count as a query job",
             "bigquery.jobs.create", t.project),
        Call("processing", "jobs/loaders/bigquery_storage.py load_batch",
             "a run's first batch looks up the load jobs the load-jobs path may have run for it (jobs.get: "
             "BigQuery grants a job's creator bigquery.jobs.get on that job, so creating them is what it needs)",
             "bigquery.jobs.create", t.project),
        *(Call("processing", "jobs/loaders/bigquery_storage.py load_batch",
               f"the batch's stream record and the drivers' markers (create-only write, read, forget): {verb}", f"storage.objects.{verb}",
               t.data(STREAM_RECORD_OBJECT)) for verb in ("create", "get", "delete")),
        Call("processing", "jobs/loaders/bigquery_storage.py load_batch", "list the earlier batches' records",
             "storage.objects.list", t.data_bucket),
        Call("processing", "Dataproc job (pyspark_config)", "fetch the job's code and dependencies",
             "storage.objects.get", t.data(JOB_ARTIFACT)),
        *(Call("processing", "Dataproc agent on every node", "register, lease and report tasks; logs; metrics",
               permission, t.project)
          for permission in ("dataproc.agents.create", "dataproc.agents.update", "dataproc.tasks.lease",
                             "dataproc.tasks.reportStatus", "logging.logEntries.create",
                             "monitoring.timeSeries.create")),
        *(Call("processing", "Dataproc (staging bucket)", f"cluster metadata and driver output: {verb}",
               f"storage.objects.{verb}", t.data(DATAPROC_STAGING_OBJECT)) for verb in ("create", "get", "delete")),
        *(Call("processing", "Dataproc (temp bucket)", f"Spark event logs, YARN logs: {verb}",
               f"storage.objects.{verb}", resource)
          for verb, resource in (("create", t.temp(DATAPROC_TEMP_OBJECT)), ("get", t.temp(DATAPROC_TEMP_OBJECT)),
                                 ("delete", t.temp(DATAPROC_TEMP_OBJECT)), ("list", t.temp_bucket))),
    ]
    return producer + processing + (scheduler_calls(t) if t.cfg.processing == "scheduled" else [])


#: Scheduled mode's workflow (infra/artifacts/scheduled_run.py): each method of Workflows' Dataproc connector it
#: calls, what for, and the permissions Dataproc checks, on the ``cluster`` or the ``project``: the REST
#: reference's "Authorization requires the following IAM permission" of each method, and for a job's
#: submission ``dataproc.clusters.use`` on its cluster
#: (https://cloud.google.com/dataproc/docs/concepts/iam/granular-iam).
#: tests/cdktf/test_schedule.py checks these are the methods the workflow calls.
WORKFLOW_CONNECTOR = "googleapis.dataproc.v1.projects.regions"
WORKFLOW_CALLS: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = {
    "jobs.list": ("list the cluster's ACTIVE jobs: skip the slot while one runs; stop the cluster only when none",
                  (("dataproc.jobs.list", "project"),)),
    "clusters.get": ("see whether the cluster is STOPPED, then RUNNING", (("dataproc.clusters.get", "cluster"),)),
    "clusters.start": ("start the stopped cluster", (("dataproc.clusters.start", "cluster"),)),
    "jobs.submit": ("submit the run (--available-now) under the slot's job id and requestId, to this cluster",
                    (("dataproc.jobs.create", "project"), ("dataproc.clusters.use", "cluster"))),
    "jobs.get": ("poll the run until it ends", (("dataproc.jobs.get", "project"),)),
    "clusters.stop": ("stop the cluster after the run", (("dataproc.clusters.stop", "cluster"),)),
}


def scheduler_calls(targets: Targets) -> list[Call]:
    """Scheduled mode's starter: Cloud Scheduler's call as the scheduler account, then the workflow's, which
    runs as the same account (infra/stacks/schedule.py)."""
    where = {"project": targets.project, "cluster": targets.cluster}
    calls = [Call("scheduler", "Cloud Scheduler job (infra/stacks/schedule.py)",
                  "create an execution of the workflow every schedule_minutes, with the account's OAuth token",
                  "workflows.executions.create", targets.project)]
    calls += [Call("scheduler", f"infra/artifacts/scheduled_run.py ({WORKFLOW_CONNECTOR}.{method})", what,
                   permission, where[target])
              for method, (what, needs) in WORKFLOW_CALLS.items() for permission, target in needs]
    return calls


def refused_calls(targets: Targets) -> list[Call]:
    """Calls the code makes that IAM refuses on purpose, each harmless when refused."""
    return [
        Call("producer", "google-cloud-storage 3.17 (_bucket_metadata_cache)",
             "look the bucket up in the background for the client's telemetry; on a 403 it caches a "
             "fallback and never asks again (tests/cdktf/test_landing_under_iam.py)",
             "storage.buckets.get", targets.data_bucket),
    ]


@dataclass(frozen=True)
class Allowance:
    """Permissions an identity holds beyond its calls, on purpose: they come with the narrowest role
    that carries a needed one, and the reason says why they do no harm."""

    identity: str
    permissions: tuple[str, ...]
    """fnmatch patterns of permission names."""
    where: str
    """fnmatch pattern of the resource names it applies to."""
    reason: str


#: Which permissions IAM checks on which kind of resource (the rest on the project).
_CHECKED_ON = {
    "storage.googleapis.com/Object": lambda p: p.startswith("storage.objects.") and p != "storage.objects.list",
    "storage.googleapis.com/Bucket": lambda p: p == "storage.objects.list" or p.startswith(
        ("storage.buckets.", "storage.folders.", "storage.managedFolders.", "storage.multipartUploads.")),
    "bigquery.googleapis.com/Table": lambda p: p.startswith("bigquery.tables.") and p not in _DATASET_LEVEL,
    "bigquery.googleapis.com/Dataset": lambda p: p.startswith(("bigquery.datasets.", "bigquery.models.",
                                                               "bigquery.routines.", "bigquery.propertyGraphs."))
    or p in _DATASET_LEVEL,
    "secretmanager.googleapis.com/SecretVersion": lambda p: p.startswith("secretmanager.versions."),
    "secretmanager.googleapis.com/Secret": lambda p: p.startswith("secretmanager.secrets."),
    "iam.googleapis.com/ServiceAccount": lambda p: p.startswith(("iam.serviceAccounts.", "iam.serviceAccountKeys.")),
    "dataproc.googleapis.com/Cluster":
        lambda p: p.startswith("dataproc.clusters.") and p not in _PROJECT_LEVEL_CLUSTERS,
}
#: Made or listed in a region of the project, not on a cluster.
_PROJECT_LEVEL_CLUSTERS = {"dataproc.clusters.create", "dataproc.clusters.list"}
_DATASET_LEVEL = {"bigquery.tables.create", "bigquery.tables.list"}


def checked_on(permission: str, resource: Resource) -> bool:
    """Whether IAM checks ``permission`` on a resource of ``resource``'s kind."""
    if resource.type in _CHECKED_ON:
        return _CHECKED_ON[resource.type](permission)
    return not any(check(permission) for check in _CHECKED_ON.values())


#: What Terraform calls for each resource type of the pipeline stack: as the deployer
#: to create, update and delete it, as the planner to read it (a plan refreshes every
#: resource). Keyed by type, so a new resource type fails the tests until it is here.
#: ``where`` names a :class:`Targets` attribute or method argument.
TERRAFORM_CALLS: dict[str, dict[str, tuple[tuple[str, str], ...]]] = {
    "google_project_service": {
        "deployer": (("serviceusage.services.enable", "project"), ("serviceusage.services.get", "project")),
        "planner": (("serviceusage.services.get", "project"),),
    },
    "google_project_iam_member": {
        "deployer": (("resourcemanager.projects.getIamPolicy", "project"),
                     ("resourcemanager.projects.setIamPolicy", "project")),
        "planner": (("resourcemanager.projects.getIamPolicy", "project"),),
    },
    "google_project_iam_audit_config": {
        "deployer": (("resourcemanager.projects.getIamPolicy", "project"),
                     ("resourcemanager.projects.setIamPolicy", "project")),
        "planner": (("resourcemanager.projects.getIamPolicy", "project"),),
    },
    "google_compute_network": {
        "deployer": (("compute.networks.create", "project"), ("compute.networks.delete", "project")),
        "planner": (("compute.networks.get", "project"),),
    },
    "google_compute_subnetwork": {
        "deployer": (("compute.subnetworks.create", "project"), ("compute.subnetworks.use", "project")),
        "planner": (("compute.subnetworks.get", "project"),),
    },
    "google_compute_router": {
        "deployer": (("compute.routers.create", "project"), ("compute.routers.update", "project")),
        "planner": (("compute.routers.get", "project"),),
    },
    "google_compute_router_nat": {
        "deployer": (("compute.routers.update", "project"),),
        "planner": (("compute.routers.get", "project"),),
    },
    "google_compute_firewall": {
        "deployer": (("compute.firewalls.create", "project"), ("compute.firewalls.delete", "project")),
        "planner": (("compute.firewalls.get", "project"),),
    },
    "google_compute_disk": {
        "deployer": (("compute.disks.create", "project"), ("compute.disks.use", "project")),
        "planner": (("compute.disks.get", "project"),),
    },
    "google_compute_instance": {
        "deployer": (("compute.instances.create", "project"), ("compute.instances.setMetadata", "project"),
                     ("compute.instances.setServiceAccount", "project"), ("compute.instances.attachDisk", "project"),
                     ("iam.serviceAccounts.actAs", "producer_account")),
        "planner": (("compute.instances.get", "project"),),
    },
    "google_storage_bucket": {
        "deployer": (("storage.buckets.create", "project"), ("storage.buckets.update", "data_bucket"),
                     ("storage.buckets.delete", "temp_bucket")),
        "planner": (("storage.buckets.get", "data_bucket"), ("storage.buckets.get", "temp_bucket")),
    },
    "google_storage_bucket_iam_member": {
        "deployer": (("storage.buckets.setIamPolicy", "data_bucket"), ("storage.buckets.setIamPolicy", "temp_bucket")),
        "planner": (("storage.buckets.getIamPolicy", "data_bucket"),),
    },
    "google_storage_bucket_object": {
        "deployer": (("storage.objects.create", "artifact"), ("storage.objects.delete", "artifact")),
        "planner": (("storage.objects.get", "artifact"),),
    },
    "google_bigquery_dataset": {
        "deployer": (("bigquery.datasets.create", "project"), ("bigquery.datasets.update", "dataset")),
        "planner": (("bigquery.datasets.get", "dataset"),),
    },
    "google_bigquery_dataset_iam_member": {
        "deployer": (("bigquery.datasets.setIamPolicy", "dataset"),),
        "planner": (("bigquery.datasets.getIamPolicy", "dataset"),),
    },
    "google_bigquery_table_iam_member": {  # the planner's read of market_ticks (infra/stacks/warehouse.py)
        "deployer": (("bigquery.tables.getIamPolicy", "ticks_table"), ("bigquery.tables.setIamPolicy", "ticks_table")),
        "planner": (("bigquery.tables.getIamPolicy", "ticks_table"),),
    },
    "google_bigquery_table": {
        "deployer": (("bigquery.tables.create", "dataset"), ("bigquery.tables.update", "ticks_table"),
                     ("bigquery.tables.delete", "ticks_table")),
        "planner": (("bigquery.tables.get", "ticks_table"),),
    },
    # The secret itself is the bootstrap's (infra/stacks/bootstrap.py): the pipeline grants on it.
    "google_secret_manager_secret_iam_member": {
        "deployer": (("secretmanager.secrets.setIamPolicy", "secret"),),
        "planner": (("secretmanager.secrets.getIamPolicy", "secret"),),
    },
    "google_dataproc_cluster": {
        "deployer": (("dataproc.clusters.create", "project"), ("dataproc.clusters.update", "project"),
                     ("dataproc.clusters.delete", "project"), ("iam.serviceAccounts.actAs", "processing_account")),
        "planner": (("dataproc.clusters.get", "project"),),
    },
    "google_dataproc_job": {
        "deployer": (("dataproc.jobs.create", "project"), ("dataproc.jobs.cancel", "project"),
                     ("dataproc.jobs.delete", "project")),
        "planner": (("dataproc.jobs.get", "project"),),
    },
    # Scheduled mode (infra/stacks/schedule.py): the scheduler's grant on the cluster, the workflow and its
    # schedule, both running as the scheduler account, which takes actAs on it to set.
    "google_dataproc_cluster_iam_member": {
        "deployer": (("dataproc.clusters.getIamPolicy", "cluster"), ("dataproc.clusters.setIamPolicy", "cluster")),
        "planner": (("dataproc.clusters.getIamPolicy", "cluster"),),
    },
    "google_workflows_workflow": {
        "deployer": (("workflows.workflows.create", "project"), ("workflows.workflows.update", "project"),
                     ("workflows.workflows.delete", "project"), ("workflows.workflows.get", "project"),
                     ("iam.serviceAccounts.actAs", "scheduler_account")),
        "planner": (("workflows.workflows.get", "project"),),
    },
    "google_cloud_scheduler_job": {
        "deployer": (("cloudscheduler.jobs.create", "project"), ("cloudscheduler.jobs.update", "project"),
                     ("cloudscheduler.jobs.delete", "project"), ("iam.serviceAccounts.actAs", "scheduler_account")),
        "planner": (("cloudscheduler.jobs.get", "project"),),
    },
    "google_kms_crypto_key_iam_member": {},  # on the environment's key: granted outside the stack (docs/DEPLOY.md)
    "google_logging_metric": {
        "deployer": (("logging.logMetrics.create", "project"), ("logging.logMetrics.update", "project"),
                     ("logging.logMetrics.delete", "project")),
        "planner": (("logging.logMetrics.get", "project"),),
    },
    "google_monitoring_notification_channel": {
        "deployer": (("monitoring.notificationChannels.create", "project"),
                     ("monitoring.notificationChannels.update", "project"),
                     ("monitoring.notificationChannels.delete", "project")),
        "planner": (("monitoring.notificationChannels.get", "project"),),
    },
    "google_monitoring_alert_policy": {
        "deployer": (("monitoring.alertPolicies.create", "project"), ("monitoring.alertPolicies.update", "project"),
                     ("monitoring.alertPolicies.delete", "project")),
        "planner": (("monitoring.alertPolicies.get", "project"),),
    },
    # On the billing account, outside the project and the stacks: BILLING_ACCOUNT_GRANTS.
    "google_billing_budget": {},
    "time_sleep": {},  # hashicorp/time: waits, no Google call (infra/stacks/waits.py)
}

#: What the CI identities need on the billing account for the optional budget
#: (``billing_account`` in the environment's config). A billing account is not in the
#: project, and our stacks do not grant on it: a billing account administrator grants
#: these roles by hand (docs/OPERATIONS.md, "Cost"). Each role is the narrowest
#: predefined one holding the permissions (tests/cdktf/test_alerts.py checks the role data).
BILLING_ACCOUNT_GRANTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "deployer": ("roles/billing.costsManager", ("billing.budgets.create", "billing.budgets.get",
                                                "billing.budgets.update", "billing.budgets.delete")),
    "planner": ("roles/billing.viewer", ("billing.budgets.get",)),
}
_GRANTING_PROJECT_ROLES = ("google_project_iam_member", "resourcemanager.projects.setIamPolicy")
#: Terraform's own calls, whatever the resources: the state, read by plans and written by applies.
STATE_CALLS = {
    "deployer": ("storage.objects.get", "storage.objects.create", "storage.objects.delete"),
    "planner": ("storage.objects.get",),
}


def terraform_calls(targets: Targets, project_roles: tuple[str, ...]) -> list[Call]:
    """The deployer's and the planner's calls for the resource types of the pipeline stack, which
    grants ``project_roles`` on the project."""
    t = targets
    where = {
        "project": t.project, "data_bucket": t.data_bucket, "temp_bucket": t.temp_bucket,
        "artifact": t.data(PRODUCER_ARTIFACT), "dataset": t.dataset, "ticks_table": t.tables["market_ticks"],
        "secret": secret(t.cfg.project, t.cfg.name_of("producer", "api-key")),
        "producer_account": t.account(t.cfg.service_account_ids["producer"]),
        "processing_account": t.account(t.cfg.service_account_ids["processing"]),
        "scheduler_account": t.account(t.cfg.service_account_ids["scheduler"]),
        "cluster": t.cluster,
    }
    calls = [Call(identity, f"terraform: {type_}", f"manage {type_}" if identity == "deployer" else f"read {type_}",
                  permission, where[target],
                  project_roles if (type_, permission) == _GRANTING_PROJECT_ROLES else ())
             for type_, by_identity in TERRAFORM_CALLS.items()
             for identity, needs in by_identity.items()
             for permission, target in needs]
    calls += [Call(identity, "terraform: GCS backend", "the stack's state", permission, t.state())
              for identity, permissions in STATE_CALLS.items() for permission in permissions]
    # The smoke check runs as the read-only planner (.github/workflows/deploy.yml).
    calls.append(Call("planner", "scripts/check-stream.sh", "after apply: is the stream RUNNING?",
                      "dataproc.jobs.get", t.project))
    # ... and asks market_ticks for its newest live row: one query job, which reads the table's data.
    calls.append(Call("planner", "scripts/check-stream.sh", "after apply: query the newest live tick's age",
                      "bigquery.jobs.create", t.project))
    calls.append(Call("planner", "scripts/check-stream.sh", "the query reads market_ticks (2 columns of at most 2 partitions)",
                      "bigquery.tables.getData", t.tables["market_ticks"]))
    # Scheduled mode: ... and looks at the workflow's newest execution (did the last run end well?).
    calls.append(Call("planner", "scripts/check-stream.sh", "scheduled mode: the newest run's state",
                      "workflows.executions.list", t.project))
    return calls


def allowance(targets: Targets) -> list[Allowance]:
    """What the workloads, and the planner beyond its project roles, hold beyond their calls, with the
    reason it is acceptable."""
    data, temp = targets.data_bucket.name, targets.temp_bucket.name
    dataset_ = targets.dataset.name
    return [
        Allowance("producer", ("storage.objects.createContext",), f"{data}/objects/landing/*",
                  "comes with objectCreator: key-value contexts on the objects it creates, nothing more"),
        Allowance("processing", ("cloudprofiler.*", "datalineage.*", "dataproc.agents.*", "dataproc.batches.*",
                                 "dataproc.sessions.*", "dataproc.tasks.*", "dataprocrm.*", "logging.logEntries.route",
                                 "monitoring.*"), targets.project.name,
                  "the rest of roles/dataproc.worker without storage: what Dataproc requires of a cluster's "
                  "account for its own agent, which Google does not document call by call"),
        Allowance("processing", ("bigquery.config.get", "dataform.*", "resourcemanager.projects.get",
                                 "resourcemanager.projects.list"), targets.project.name,
                  "comes with bigquery.jobUser: read BigQuery settings, see the project, make a Dataform "
                  "repository (nothing runs from one without grants it lacks)"),
        Allowance("processing", ("storage.folders.*", "storage.managedFolders.*", "storage.multipartUploads.*"),
                  f"{data}", "comes with objectUser: the bucket has no hierarchical namespace or managed "
                  "folders; multipart uploads are one way to write the objects it may write anyway"),
        Allowance("processing", ("storage.folders.*", "storage.managedFolders.*", "storage.multipartUploads.*"),
                  f"{temp}", "as on the data bucket"),
        Allowance("processing", ("storage.objects.*",), f"{data}/objects/*",
                  "objectUser on everything but artifacts/: Dataproc names its own folders in its staging "
                  "bucket; updating, moving or restoring what it may write anyway adds no power"),
        Allowance("processing", ("storage.objects.*",), f"{temp}/objects/*", "the cluster's own temp bucket"),
        Allowance("processing", ("bigquery.datasets.create", "bigquery.datasets.get", "bigquery.datasets.getIamPolicy",
                                 "bigquery.datasets.updateTag", "bigquery.models.*", "bigquery.routines.*",
                                 "bigquery.propertyGraphs.*", "bigquery.tables.create", "bigquery.tables.list"),
                  dataset_, "comes with bigquery.dataEditor, the narrowest predefined role that appends to a "
                  "table; the job loads with CREATE_NEVER and makes no models, routines or graphs"),
        Allowance("processing", ("bigquery.tables.*",), f"{dataset_}/tables/*",
                  "comes with bigquery.dataEditor: the stream already writes every row of these tables, so "
                  "altering or deleting them is damage it could do anyway; the dataset grant reaches no "
                  "other dataset"),
        Allowance("planner", ("bigquery.tables.createSnapshot", "bigquery.tables.export",
                              "bigquery.tables.replicateData"), targets.tables["market_ticks"].name,
                  "comes with bigquery.dataViewer on market_ticks, the predefined role Google documents for "
                  "querying a table: a snapshot or a replica needs a dataset to create tables in, an export a "
                  "bucket to write to, and the planner has neither"),
        Allowance("planner", ("storage.objects.get",), f"{data}/objects/artifacts/*",
                  "a plan refreshes every artifact object (the calls name the producer's): code, no data"),
        Allowance("planner", ("storage.folders.get", "storage.managedFolders.get"), targets.state_bucket.name,
                  "comes with objectViewer on the state bucket, which has no folders"),
    ] + ([
        Allowance("scheduler", ("workflows.executions.*", "workflows.callbacks.*", "workflows.stepEntries.*"),
                  targets.project.name, "comes with workflows.invoker, the narrowest predefined role that creates "
                  "executions: see, cancel and call back executions of the project's workflows, whose code and "
                  "identity it cannot change"),
        Allowance("scheduler", ("resourcemanager.projects.get", "resourcemanager.projects.list"),
                  targets.project.name, "comes with workflows.invoker: see the project"),
    ] if targets.cfg.processing == "scheduled" else [])


#: Project-level roles, by identity, and why each is acceptable on the whole project. A
#: project-level grant reaches every resource of the project, so each one is here on purpose.
PROJECT_ROLE_ALLOWANCE: dict[str, dict[str, str]] = {
    "scheduler": {
        "roles/workflows.invoker": "creates executions of the project's workflows; which code they run and as "
                                   "whom is the deployer's to set",
        "{scheduler_jobs_role}": "creates, gets and lists Dataproc jobs; a job runs only on a cluster the account "
                                 "may use, ours alone (infra/stacks/schedule.py), as that cluster's account",
    },
    "processing": {
        "{dataproc_agent_role}": "roles/dataproc.worker without storage (infra/stacks/bootstrap.py): no data access",
        "roles/bigquery.jobUser": "runs jobs; which tables they touch is decided by the dataset grant",
    },
    "deployer": {
        "roles/serviceusage.serviceUsageAdmin": "enables APIs; cannot disable what the stack does not declare "
                                                "without showing in the plan",
        "roles/resourcemanager.projectIamAdmin": "conditioned: grants and revokes only the pipeline's project roles",
        "roles/compute.networkAdmin": "the network it declares; no service account use",
        "roles/compute.securityAdmin": "firewall rules; no service account use",
        "roles/compute.instanceAdmin.v1": "the producer VM; attaching an account needs actAs, held on the two "
                                          "workload accounts only",
        "roles/storage.admin": "buckets, their IAM, the artifacts and the Terraform state: the deployer writes "
                               "all of them by design",
        "roles/bigquery.dataOwner": "the dataset, its tables, views and IAM",
        "roles/dataproc.editor": "the cluster and the job; the cluster's account needs actAs, as above",
        "{cluster_iam_role}": "the cluster's IAM policy (scheduled mode's grant on it); a cluster policy grants "
                              "only Dataproc permissions on that cluster",
        "roles/workflows.editor": "scheduled mode's workflow; running it as the scheduler needs actAs, held on "
                                  "the workload accounts only",
        "roles/cloudscheduler.admin": "scheduled mode's Cloud Scheduler job; its token's account needs actAs, as "
                                      "above",
        "{secret_deployer_role}": "secrets and their IAM, never a value (infra/stacks/bootstrap.py)",
        "roles/logging.configWriter": "the alerts' log-based metrics; also sinks, buckets and views of logs, "
                                      "which no stack declares (a plan would show them)",
        "roles/monitoring.alertPolicyEditor": "the alert policies",
        "roles/monitoring.notificationChannelEditor": "the alerts' notification channels",
    },
    "planner": {
        "roles/serviceusage.serviceUsageViewer": "read-only",
        "roles/iam.serviceAccountViewer": "read-only",
        "roles/iam.securityReviewer": "reads IAM policies, no data",
        "roles/compute.viewer": "read-only",
        "roles/storage.bucketViewer": "bucket settings, no object",
        "roles/bigquery.metadataViewer": "dataset and table settings, no rows",
        "roles/bigquery.jobUser": "runs the smoke check's query; the only rows it may read are market_ticks' "
                                  "(a grant on that table, infra/stacks/warehouse.py); it could also make an empty Dataform "
                                  "repository, from which nothing runs without grants it lacks",
        "roles/dataproc.viewer": "read-only",
        "roles/workflows.viewer": "read-only: the workflow, and its executions' states and results (a run's job "
                                  "id and state, no data)",
        "roles/cloudscheduler.viewer": "read-only",
        "roles/secretmanager.viewer": "the secret's settings, never its value",
        "roles/logging.viewer": "log-based metrics, and logs that are not private (no data access audit logs)",
        "roles/monitoring.alertPolicyViewer": "read-only",
        "roles/monitoring.notificationChannelViewer": "read-only",
    },
}


def project_role_allowance(cfg: EnvironmentConfig) -> dict[str, dict[str, str]]:
    """:data:`PROJECT_ROLE_ALLOWANCE` with the environment's custom role names filled in."""
    names = {"dataproc_agent_role": cfg.dataproc_agent_role,
             "secret_deployer_role": cfg.custom_role(cfg.secret_deployer_role_id),
             "scheduler_jobs_role": cfg.custom_role(cfg.scheduler_jobs_role_id),
             "cluster_iam_role": cfg.custom_role(cfg.cluster_iam_role_id)}
    return {identity: {role.format(**names): reason for role, reason in roles.items()}
            for identity, roles in PROJECT_ROLE_ALLOWANCE.items()}
