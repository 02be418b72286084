"""One environment's bootstrap stack, ``bootstrap-<env>``: what must exist before CI can deploy it.

Applied once, and after changes to this file, by a project owner from a workstation
(``scripts/cdktf.sh deploy bootstrap-dev``; docs/DEPLOY.md). It is a separate stack
with its own state, so ``cdktf deploy dev`` never touches it, and CI has no way to
change it: the deployer cannot widen its own permissions.

- the Terraform state bucket (created by one ``gcloud`` command first, because the
  backend lives in it, then imported here: versioning, lifecycle, no public access);
- the workloads' service accounts (``producer``, ``processing``, and ``scheduler``, which
  starts scheduled mode's runs; made in either mode, so a switch is one pipeline deploy) and
  the custom roles they hold: the cluster's account's on the project (``roles/dataproc.worker``
  without its storage permissions), the scheduler's on the cluster and on the project. Made here, by the owner, so the deployer needs neither
  Service Account Admin nor the right to create or change roles: either would let it
  act as, or widen, any identity of the project;
- with a CoinGecko plan that has a key (``api_plan`` demo or pro): the key's secret. The
  owner adds its first version right after this stack (docs/DEPLOY.md), so the producer VM,
  made by the pipeline's first apply, never starts without a key; the deployer cannot add
  one (it holds no ``secretmanager.versions.*``);
- with ``github_repository`` set: a Workload Identity pool whose one provider accepts
  GitHub Actions tokens of that repository's CI jobs only (``attribute_condition`` on
  the repository's and its owner's numeric ids and the job subjects of
  :func:`ci_subjects`), and two service accounts CI impersonates through it, so no
  key exists anywhere:

  - ``deployer``: applies the ``<env>`` stack. Only jobs running in the GitHub
    environment named like the stack can impersonate it (the token's subject
    ``repo:OWNER/NAME:environment:<env>``); protection rules on that environment
    (prod: required reviewers, main only) gate it. Its roles are what the stack's
    resources need and no more: no basic role, Project IAM Admin only for the
    stack's own project roles (an IAM condition), Service Account User on the three
    workload accounts only (to attach them to the VM, the cluster, the workflow and its
    schedule), Secret Manager through a custom role that cannot read a secret's value,
    the cluster's IAM through one that can do nothing else.
  - ``planner``: reads the settings of everything the stack declares and the
    Terraform state, to plan on pull requests (``terraform plan -lock=false``); no
    write permission, no secret value, no object of the data bucket but the artifacts.
"""

from __future__ import annotations

from typing import Any

from constructs import Construct

from infra.cdk import GcsBackend, TerraformOutput, TerraformResourceLifecycle, TerraformStack, google
from infra.environments import CI_PROVIDER_ID, EnvironmentConfig
from infra.stacks.buckets import delete_when, private_bucket
from infra.stacks.grants import grantable_project_roles
from infra.stacks.iam import grant
from infra.stacks.producer_vm import api_key_secret_id

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

#: APIs the bootstrap needs before the pipeline stack enables its own (never disabled
#: on destroy, so both stacks declaring some of them is harmless).
SERVICES = (
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",  # impersonation: federated token -> service account token
    "secretmanager.googleapis.com",  # the CoinGecko key's secret
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",  # Security Token Service: GitHub token -> federated token
)

WORKLOAD_DESCRIPTIONS = {
    "producer": "Producer VM: polls CoinGecko, creates landing objects.",
    "processing": "Dataproc cluster and streaming job: landing -> BigQuery.",
    "scheduler": "Scheduled mode: starts the workflow that runs the job on the cluster, then stops it.",
}

#: Old state versions kept: every apply writes one.
STATE_VERSIONS_KEPT = 30

#: What the deployer may do with the key's secret (made here): manage who reads it, never
#: read or add its value (secretmanager.admin would allow both), nor make or delete it.
SECRET_DEPLOYER_PERMISSIONS = (
    "secretmanager.secrets.get",
    "secretmanager.secrets.getIamPolicy",
    "secretmanager.secrets.setIamPolicy",
)

#: ``roles/dataproc.worker`` without its storage permissions: what the cluster's
#: service account needs on the project (Dataproc's agent: heartbeat, task leases,
#: node pools, logs, metrics). Its buckets are granted bucket by bucket (storage.py).
DATAPROC_AGENT_PERMISSIONS = (
    "cloudprofiler.profiles.create",
    "cloudprofiler.profiles.update",
    "datalineage.locations.processOpenLineageMessage",
    "dataproc.agents.create",
    "dataproc.agents.delete",
    "dataproc.agents.get",
    "dataproc.agents.list",
    "dataproc.agents.update",
    "dataproc.batches.computeTuningConfig",
    "dataproc.batches.sparkApplicationWrite",
    "dataproc.sessions.sparkApplicationWrite",
    "dataproc.tasks.lease",
    "dataproc.tasks.listInvalidatedLeases",
    "dataproc.tasks.reportStatus",
    "dataprocrm.nodePools.create",
    "dataprocrm.nodePools.delete",
    "dataprocrm.nodePools.deleteNodes",
    "dataprocrm.nodePools.get",
    "dataprocrm.nodePools.list",
    "dataprocrm.nodePools.resize",
    "dataprocrm.nodes.get",
    "dataprocrm.nodes.heartbeat",
    "dataprocrm.nodes.list",
    "dataprocrm.nodes.mintOAuthToken",
    "dataprocrm.operations.get",
    "logging.logEntries.create",
    "logging.logEntries.route",
    "monitoring.metricDescriptors.create",
    "monitoring.metricDescriptors.get",
    "monitoring.metricDescriptors.list",
    "monitoring.monitoredResourceDescriptors.get",
    "monitoring.monitoredResourceDescriptors.list",
    "monitoring.timeSeries.create",
)

#: Scheduled mode's scheduler account on the cluster alone (infra/stacks/schedule.py grants it there): see
#: it, start and stop it, and submit jobs to it (with :data:`SCHEDULER_JOBS_PERMISSIONS`); docs/STREAM.md.
SCHEDULER_CLUSTER_PERMISSIONS = (
    "dataproc.clusters.get",
    "dataproc.clusters.start",
    "dataproc.clusters.stop",
    "dataproc.clusters.use",
)
#: ... and on the project: Dataproc checks a job's creation there and ``use`` on the cluster it names
#: (https://cloud.google.com/dataproc/docs/concepts/iam/granular-iam).
SCHEDULER_JOBS_PERMISSIONS = (
    "dataproc.jobs.create",
    "dataproc.jobs.get",
    "dataproc.jobs.list",
)
#: The deployer grants the scheduler its role on the cluster: ``roles/dataproc.editor`` cannot set a
#: cluster's IAM policy, and ``roles/dataproc.admin`` could do much more.
CLUSTER_IAM_PERMISSIONS = (
    "dataproc.clusters.getIamPolicy",
    "dataproc.clusters.setIamPolicy",
)

#: Project roles of the deployer, each for the resources of the pipeline stack it
#: manages. Custom roles, the conditional grant and the grants on the workload
#: accounts are added below.
DEPLOYER_ROLES = {
    "roles/serviceusage.serviceUsageAdmin": "enable the stack's APIs",
    "roles/compute.networkAdmin": "VPC, subnet, router, NAT",
    "roles/compute.securityAdmin": "firewall rules",
    "roles/compute.instanceAdmin.v1": "the producer VM and its spool disk",
    "roles/storage.admin": "the data bucket, its IAM and objects; the Terraform state",
    "roles/bigquery.dataOwner": "dataset, tables, views and the dataset's IAM",
    "roles/dataproc.editor": "the cluster and the streaming job",
    "roles/workflows.editor": "scheduled mode's workflow",
    "roles/cloudscheduler.admin": "scheduled mode's Cloud Scheduler job",
    "roles/logging.configWriter": "the alerts' log-based metrics",
    "roles/monitoring.alertPolicyEditor": "the alert policies",
    "roles/monitoring.notificationChannelEditor": "the alerts' notification channels",
}

#: Project roles of the planner: read-only views of the same resources.
PLANNER_ROLES = {
    "roles/serviceusage.serviceUsageViewer": "enabled APIs",
    "roles/iam.serviceAccountViewer": "service accounts",
    "roles/iam.securityReviewer": "IAM policies of the project, bucket, dataset, secret, accounts",
    "roles/compute.viewer": "network, firewall, VM, disk",
    "roles/storage.bucketViewer": "bucket settings",
    "roles/bigquery.metadataViewer": "dataset, tables, views",
    "roles/bigquery.jobUser": "the smoke check's query (scripts/check-stream.sh); rows: market_ticks only",
    "roles/dataproc.viewer": "cluster and job",
    "roles/workflows.viewer": "scheduled mode's workflow, and its executions' states (scripts/check-stream.sh)",
    "roles/cloudscheduler.viewer": "scheduled mode's Cloud Scheduler job",
    "roles/secretmanager.viewer": "the secret's settings, never its value",
    "roles/logging.viewer": "log-based metrics",
    "roles/monitoring.alertPolicyViewer": "alert policies",
    "roles/monitoring.notificationChannelViewer": "notification channels",
}


#: What a caller needs to name the project as its quota project (the budget's provider, pipeline.py).
QUOTA_PROJECT_ROLE = "roles/serviceusage.serviceUsageConsumer"


def project_iam_admin_condition(cfg: EnvironmentConfig) -> dict[str, str]:
    """Project IAM Admin limited to granting (and revoking) the pipeline stack's own project roles."""
    roles = ", ".join(f"'{role}'" for role in grantable_project_roles(cfg))
    return {
        "title": "only the pipeline's project roles",
        "description": "The deployer may grant and revoke only the roles cdktf/infra/stacks/grants.py grants.",
        "expression": f"api.getAttribute('iam.googleapis.com/modifiedGrantsByRole', []).hasOnly([{roles}])",
    }


def ci_subjects(cfg: EnvironmentConfig) -> dict[str, str]:
    """The OIDC subjects (``sub`` claim) of the GitHub jobs that may authenticate, by what they do.

    GitHub's default subject names the repository and either the job's environment,
    ``pull_request``, or the pushed ref (.github/workflows/*.yml run exactly these jobs).
    """
    repo = f"repo:{cfg.github_repository}"
    return {
        "deploy": f"{repo}:environment:{cfg.name}",  # the deploy job, in the GitHub environment <env>
        "pull request plan": f"{repo}:pull_request",
        "main plan": f"{repo}:ref:refs/heads/main",  # the plan shown before the prod approval
    }


def attribute_condition(cfg: EnvironmentConfig) -> str:
    """Only this repository's tokens, and of those only the jobs of :func:`ci_subjects`.

    The repository and its owner are matched by numeric id (the claims ``repository_id``
    and ``repository_owner_id``, strings in the token): a deleted repository's or
    organization's name can be registered again by someone else, an id never.
    """
    subjects = " || ".join(f"assertion.sub == '{subject}'" for subject in ci_subjects(cfg).values())
    return (f"assertion.repository_id == '{cfg.github_repository_id}' && "
            f"assertion.repository_owner_id == '{cfg.github_repository_owner_id}' && ({subjects})")


def bootstrap_stack_name(env: str) -> str:
    """``bootstrap-dev``: never matched by ``cdktf deploy dev``."""
    return f"bootstrap-{env}"


class BootstrapStack(TerraformStack):
    """State bucket and CI identities of one environment: ``cdktf deploy bootstrap-<env>``."""

    def __init__(self, scope: Construct, cfg: EnvironmentConfig) -> None:
        super().__init__(scope, bootstrap_stack_name(cfg.name))
        google.provider.GoogleProvider(
            self, "google", project=cfg.project, region=cfg.region,
            default_labels={"app": cfg.prefix, "env": cfg.name},
        )
        GcsBackend(self, bucket=cfg.state_bucket, prefix=f"{cfg.prefix}/{bootstrap_stack_name(cfg.name)}")

        apis = [
            google.project_service.ProjectService(
                self, service.split(".")[0], project=cfg.project, service=service, disable_on_destroy=False
            )
            for service in SERVICES
        ]

        self.state_bucket = private_bucket(
            self,
            "state",
            cfg,
            cfg.state_bucket,
            versioning={"enabled": True},
            lifecycle_rule=[delete_when(with_state="ARCHIVED", num_newer_versions=STATE_VERSIONS_KEPT)],
            force_destroy=False,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True),
        )
        # The bucket exists before the first apply (the backend is in it): adopt it.
        self.state_bucket.import_from(f"{cfg.project}/{cfg.state_bucket}")
        TerraformOutput(
            self,
            "state_bucket",
            value=self.state_bucket.name,
            description="Terraform state of this environment's stacks.",
        )

        self.workload_accounts = {
            stage: google.service_account.ServiceAccount(
                self,
                stage,
                account_id=account_id,
                project=cfg.project,
                display_name=cfg.name_of(stage, "sa"),
                description=WORKLOAD_DESCRIPTIONS[stage],
                depends_on=apis,
            )
            for stage, account_id in cfg.service_account_ids.items()
        }
        self._custom_role(
            cfg, "dataproc-agent", cfg.dataproc_agent_role_id, "Dataproc agent", DATAPROC_AGENT_PERMISSIONS,
            "roles/dataproc.worker without storage permissions: its buckets are granted bucket by bucket.", apis,
        )
        self._custom_role(
            cfg, "scheduler-cluster", cfg.scheduler_cluster_role_id, "scheduler on the cluster",
            SCHEDULER_CLUSTER_PERMISSIONS, "Scheduled mode: get, start, stop and submit to the pipeline's cluster; "
            "granted on that cluster alone.", apis,
        )
        self._custom_role(
            cfg, "scheduler-jobs", cfg.scheduler_jobs_role_id, "scheduler's jobs", SCHEDULER_JOBS_PERMISSIONS,
            "Scheduled mode: create, get and list Dataproc jobs; they run only on a cluster it may use.", apis,
        )
        if cfg.api_plan != "none":
            self._api_key_secret(cfg, apis)
        if cfg.github_repository:
            self._ci_identities(cfg, apis)

    def _api_key_secret(self, cfg: EnvironmentConfig, apis: list[Any]) -> None:
        """The CoinGecko key's secret, in the region; its versions are added by a person (docs/DEPLOY.md)."""
        secret = google.secret_manager_secret.SecretManagerSecret(
            self, "api-key", secret_id=api_key_secret_id(cfg), project=cfg.project,
            replication={"user_managed": {"replicas": [
                google.secret_manager_secret.SecretManagerSecretReplicationUserManagedReplicas(location=cfg.region)]}},
            depends_on=apis,
        )
        TerraformOutput(self, "api_key_secret", value=secret.secret_id,
                        description="Add the CoinGecko key's first version here before the first deploy.")

    def _ci_identities(self, cfg: EnvironmentConfig, apis: list[google.project_service.ProjectService]) -> None:
        repository = cfg.github_repository
        pool = google.iam_workload_identity_pool.IamWorkloadIdentityPool(
            self,
            "ci-pool",
            project=cfg.project,
            workload_identity_pool_id=cfg.ci_pool_id,
            display_name=f"{cfg.prefix} {cfg.name} CI",
            description=f"GitHub Actions of {repository}",
            depends_on=apis,
        )
        self.provider = google.iam_workload_identity_pool_provider.IamWorkloadIdentityPoolProvider(
            self,
            "ci-provider",
            project=cfg.project,
            workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=CI_PROVIDER_ID,
            display_name="GitHub Actions",
            description=f"OIDC tokens of {repository}'s workflows, and no other repository's",
            oidc={"issuer_uri": GITHUB_ISSUER},
            attribute_mapping={"google.subject": "assertion.sub", "attribute.repository_id": "assertion.repository_id"},
            attribute_condition=attribute_condition(cfg),
        )
        ids = cfg.ci_service_account_ids
        descriptions = {
            "deployer": f"CI: applies the {cfg.name} stack (GitHub environment {cfg.name} of {repository}).",
            "planner": f"CI: plans the {cfg.name} stack, read-only (pull requests of {repository}).",
        }
        accounts = {
            role: google.service_account.ServiceAccount(
                self,
                role,
                project=cfg.project,
                account_id=ids[role],
                display_name=cfg.name_of("ci", role),
                description=descriptions[role],
                depends_on=apis,
            )
            for role in ids
        }
        members = {role: account.member for role, account in accounts.items()}

        principals = f"iam.googleapis.com/{pool.name}"
        impersonation = {
            "roles/iam.workloadIdentityUser": {
                # Exactly the jobs that run in the GitHub environment of this stack's name.
                "deployer": (accounts["deployer"], f"principal://{principals}/subject/{ci_subjects(cfg)['deploy']}"),
                # Any job the provider admits (pull requests of forks get no token at all).
                "planner": (
                    accounts["planner"],
                    f"principalSet://{principals}/attribute.repository_id/{cfg.github_repository_id}",
                ),
            }
        }
        for role, grants in impersonation.items():
            for who, (account, member) in grants.items():
                google.service_account_iam_member.ServiceAccountIamMember(
                    self, f"{role.rsplit('/', 1)[-1]}-{who}", service_account_id=account.name, role=role, member=member
                )
        # The deployer attaches the workload accounts to the VM, the cluster, the workflow and
        # its Cloud Scheduler job (actAs), and may act as no other account of the project.
        for stage, account in self.workload_accounts.items():
            google.service_account_iam_member.ServiceAccountIamMember(
                self,
                f"serviceAccountUser-deployer-{stage}",
                service_account_id=account.name,
                role="roles/iam.serviceAccountUser",
                member=members["deployer"],
            )
        # Plans read the state; the data bucket's artifacts are granted there (storage.py).
        google.storage_bucket_iam_member.StorageBucketIamMember(
            self,
            "objectViewer-planner",
            bucket=self.state_bucket.name,
            role="roles/storage.objectViewer",
            member=members["planner"],
        )

        secret_deployer = self._custom_role(
            cfg, "secret-deployer", cfg.secret_deployer_role_id, "secret deployer", SECRET_DEPLOYER_PERMISSIONS,
            "Manage who may read the key's secret; never read or add its value.", apis,
        )
        cluster_iam = self._custom_role(
            cfg, "cluster-iam", cfg.cluster_iam_role_id, "cluster IAM", CLUSTER_IAM_PERMISSIONS,
            "Grant on the pipeline's Dataproc cluster (scheduled mode's scheduler).", apis,
        )
        project_roles = {
            **{role: {"deployer": members["deployer"]} for role in DEPLOYER_ROLES},
            **{role: {"planner": members["planner"]} for role in PLANNER_ROLES},
        }
        if cfg.billing_account:
            # The budget's provider names the project as quota project (pipeline.py), which takes
            # serviceusage.services.use; the deployer's serviceUsageAdmin holds it, the planner's viewer not.
            project_roles[QUOTA_PROJECT_ROLE] = {"planner": members["planner"]}
        grant(self, google.project_iam_member.ProjectIamMember, project_roles, project=cfg.project)
        for id_, role in (("secret-deployer-deployer", secret_deployer), ("cluster-iam-deployer", cluster_iam)):
            google.project_iam_member.ProjectIamMember(
                self, id_, project=cfg.project, role=role.name, member=members["deployer"]
            )
        google.project_iam_member.ProjectIamMember(
            self,
            "projectIamAdmin-deployer",
            project=cfg.project,
            role="roles/resourcemanager.projectIamAdmin",
            member=members["deployer"],
            condition=project_iam_admin_condition(cfg),
        )

        outputs = {
            "workload_identity_provider": (
                self.provider.name,
                "What google-github-actions/auth authenticates through.",
            ),
            "deployer_service_account": (accounts["deployer"].email, "Service account the deploy jobs impersonate."),
            "planner_service_account": (accounts["planner"].email, "Service account the plan jobs impersonate."),
        }
        for name, (value, description) in outputs.items():
            TerraformOutput(self, name, value=value, description=description)

    def _custom_role(
        self, cfg: EnvironmentConfig, id_: str, role_id: str, title: str, permissions: tuple[str, ...],
        description: str, apis: list[Any],
    ) -> Any:
        """A project custom role, made here so that only the owner can change what it contains."""
        return google.project_iam_custom_role.ProjectIamCustomRole(
            self, id_, project=cfg.project, role_id=role_id, title=f"{cfg.prefix} {cfg.name} {title}",
            description=description, permissions=list(permissions), depends_on=apis,
        )
