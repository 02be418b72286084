"""One environment's bootstrap stack, ``bootstrap-<env>``: what must exist before CI can deploy it.

Applied once, and after changes to this file, by a project owner from a workstation
(``scripts/cdktf.sh deploy bootstrap-dev``; the README). It is a separate stack
with its own state, so ``cdktf deploy dev`` never touches it, and CI has no way to
change it: the deployer cannot widen its own permissions.

- the Terraform state bucket (created by one ``gcloud`` command first, because the
  backend lives in it, then imported here: versioning, lifecycle, no public access);
- with ``github_repository`` set: a Workload Identity pool whose one provider accepts
  GitHub Actions tokens of that repository's CI jobs only (``attribute_condition`` on
  the repository and the job subjects of :func:`ci_subjects`), and two service
  accounts CI impersonates through it, so no key exists anywhere:

  - ``deployer``: applies the ``<env>`` stack. Only jobs running in the GitHub
    environment named like the stack can impersonate it (the token's subject
    ``repo:OWNER/NAME:environment:<env>``); protection rules on that environment
    (prod: required reviewers, main only) gate it. Its roles are what the stack's
    resources need and no more: no basic role, Project IAM Admin only for the
    stack's own project roles (an IAM condition), Secret Manager through a custom
    role that cannot read a secret's value.
  - ``planner``: reads everything the stack declares, to plan on pull requests
    (``terraform plan -lock=false``); no write permission, no secret value.
"""

from __future__ import annotations

from cdktf import GcsBackend, TerraformOutput, TerraformResourceLifecycle, TerraformStack
from cdktf_cdktf_provider_google.iam_workload_identity_pool import IamWorkloadIdentityPool
from cdktf_cdktf_provider_google.iam_workload_identity_pool_provider import IamWorkloadIdentityPoolProvider
from cdktf_cdktf_provider_google.project_iam_custom_role import ProjectIamCustomRole
from cdktf_cdktf_provider_google.project_iam_member import ProjectIamMember
from cdktf_cdktf_provider_google.project_service import ProjectService
from cdktf_cdktf_provider_google.provider import GoogleProvider
from cdktf_cdktf_provider_google.service_account import ServiceAccount
from cdktf_cdktf_provider_google.service_account_iam_member import ServiceAccountIamMember
from cdktf_cdktf_provider_google.storage_bucket import (
    StorageBucket,
    StorageBucketLifecycleRule,
    StorageBucketLifecycleRuleAction,
    StorageBucketLifecycleRuleCondition,
)
from constructs import Construct

from access import PROJECT_ROLES
from config import CI_PROVIDER_ID, EnvironmentConfig
from iam import grant

GITHUB_ISSUER = "https://token.actions.githubusercontent.com"

#: APIs the bootstrap needs before the pipeline stack enables its own (never disabled
#: on destroy, so both stacks declaring some of them is harmless).
SERVICES = (
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",  # impersonation: federated token -> service account token
    "serviceusage.googleapis.com",
    "storage.googleapis.com",
    "sts.googleapis.com",  # Security Token Service: GitHub token -> federated token
)

#: Old state versions kept: every apply writes one.
STATE_VERSIONS_KEPT = 30

#: What the deployer may do with secrets: manage the secret and who reads it, never
#: read or add its value (secretmanager.admin would allow both).
SECRET_DEPLOYER_PERMISSIONS = (
    "secretmanager.secrets.create",
    "secretmanager.secrets.delete",
    "secretmanager.secrets.get",
    "secretmanager.secrets.getIamPolicy",
    "secretmanager.secrets.list",
    "secretmanager.secrets.setIamPolicy",
    "secretmanager.secrets.update",
)

#: Project roles of the deployer, each for the resources of the pipeline stack it
#: manages. Custom roles (``{custom}``) and the conditional grant are added below.
DEPLOYER_ROLES = {
    "roles/serviceusage.serviceUsageAdmin": "enable the stack's APIs",
    "roles/iam.serviceAccountAdmin": "create the producer and processing service accounts",
    "roles/iam.serviceAccountUser": "attach them to the VM and the cluster (actAs)",
    "roles/compute.networkAdmin": "VPC, subnet, router, NAT",
    "roles/compute.securityAdmin": "firewall rules",
    "roles/compute.instanceAdmin.v1": "the producer VM and its spool disk",
    "roles/storage.admin": "the data bucket, its IAM and objects; the Terraform state",
    "roles/bigquery.dataOwner": "dataset, tables, views and the dataset's IAM",
    "roles/dataproc.editor": "the cluster and the streaming job",
}

#: Project roles of the planner: read-only views of the same resources.
PLANNER_ROLES = {
    "roles/serviceusage.serviceUsageViewer": "enabled APIs",
    "roles/iam.serviceAccountViewer": "service accounts",
    "roles/iam.securityReviewer": "IAM policies of the project, bucket, dataset, secret, accounts",
    "roles/compute.viewer": "network, firewall, VM, disk",
    "roles/storage.bucketViewer": "bucket settings",
    "roles/storage.objectViewer": "the Terraform state and the artifacts",
    "roles/bigquery.metadataViewer": "dataset, tables, views",
    "roles/dataproc.viewer": "cluster and job",
    "roles/secretmanager.viewer": "the secret's settings, never its value",
}


def project_iam_admin_condition() -> dict[str, str]:
    """Project IAM Admin limited to granting (and revoking) the pipeline stack's own project roles."""
    roles = ", ".join(f"'{role}'" for role in sorted(PROJECT_ROLES))
    return {
        "title": "only the pipeline's project roles",
        "description": "The deployer may grant and revoke only the roles cdktf/access.py grants.",
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
    """Only this repository's tokens, and of those only the jobs of :func:`ci_subjects`."""
    subjects = " || ".join(f"assertion.sub == '{subject}'" for subject in ci_subjects(cfg).values())
    return f"assertion.repository == '{cfg.github_repository}' && ({subjects})"


def bootstrap_stack_name(env: str) -> str:
    """``bootstrap-dev``: never matched by ``cdktf deploy dev``."""
    return f"bootstrap-{env}"


class BootstrapStack(TerraformStack):
    """State bucket and CI identities of one environment: ``cdktf deploy bootstrap-<env>``."""

    def __init__(self, scope: Construct, cfg: EnvironmentConfig) -> None:
        super().__init__(scope, bootstrap_stack_name(cfg.name))
        GoogleProvider(
            self, "google", project=cfg.project, region=cfg.region,
            default_labels={"app": cfg.prefix, "env": cfg.name},
        )
        GcsBackend(self, bucket=cfg.state_bucket, prefix=f"{cfg.prefix}/{bootstrap_stack_name(cfg.name)}")

        apis = [
            ProjectService(self, service.split(".")[0], project=cfg.project, service=service, disable_on_destroy=False)
            for service in SERVICES
        ]

        self.state_bucket = StorageBucket(
            self, "state", name=cfg.state_bucket, project=cfg.project, location=cfg.region.upper(),
            storage_class="STANDARD",
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning={"enabled": True},
            lifecycle_rule=[StorageBucketLifecycleRule(
                action=StorageBucketLifecycleRuleAction(type="Delete"),
                condition=StorageBucketLifecycleRuleCondition(with_state="ARCHIVED",
                                                              num_newer_versions=STATE_VERSIONS_KEPT),
            )],
            force_destroy=False,
            lifecycle=TerraformResourceLifecycle(prevent_destroy=True),
        )
        # The bucket exists before the first apply (the backend is in it): adopt it.
        self.state_bucket.import_from(f"{cfg.project}/{cfg.state_bucket}")
        TerraformOutput(self, "state_bucket", value=self.state_bucket.name,
                        description="Terraform state of this environment's stacks.")

        if cfg.github_repository:
            self._ci_identities(cfg, apis)

    def _ci_identities(self, cfg: EnvironmentConfig, apis: list[ProjectService]) -> None:
        repository = cfg.github_repository
        pool = IamWorkloadIdentityPool(
            self, "ci-pool", project=cfg.project, workload_identity_pool_id=cfg.ci_pool_id,
            display_name=f"{cfg.prefix} {cfg.name} CI", description=f"GitHub Actions of {repository}",
            depends_on=apis,
        )
        self.provider = IamWorkloadIdentityPoolProvider(
            self, "ci-provider", project=cfg.project, workload_identity_pool_id=pool.workload_identity_pool_id,
            workload_identity_pool_provider_id=CI_PROVIDER_ID, display_name="GitHub Actions",
            description=f"OIDC tokens of {repository}'s workflows, and no other repository's",
            oidc={"issuer_uri": GITHUB_ISSUER},
            attribute_mapping={"google.subject": "assertion.sub", "attribute.repository": "assertion.repository"},
            attribute_condition=attribute_condition(cfg),
        )
        ids = cfg.ci_service_account_ids
        descriptions = {
            "deployer": f"CI: applies the {cfg.name} stack (GitHub environment {cfg.name} of {repository}).",
            "planner": f"CI: plans the {cfg.name} stack, read-only (pull requests of {repository}).",
        }
        accounts = {
            role: ServiceAccount(
                self, role, project=cfg.project, account_id=ids[role], display_name=cfg.name_of("ci", role),
                description=descriptions[role], depends_on=apis,
            )
            for role in ids
        }
        members = {role: account.member for role, account in accounts.items()}

        principals = f"iam.googleapis.com/{pool.name}"
        impersonation = {"roles/iam.workloadIdentityUser": {
            # Exactly the jobs that run in the GitHub environment of this stack's name.
            "deployer": (accounts["deployer"], f"principal://{principals}/subject/{ci_subjects(cfg)['deploy']}"),
            # Any job the provider admits (pull requests of forks get no token at all).
            "planner": (accounts["planner"], f"principalSet://{principals}/attribute.repository/{repository}"),
        }}
        for role, grants in impersonation.items():
            for who, (account, member) in grants.items():
                ServiceAccountIamMember(self, f"{role.rsplit('/', 1)[-1]}-{who}", service_account_id=account.name,
                                        role=role, member=member)

        secret_deployer = ProjectIamCustomRole(
            self, "secret-deployer", project=cfg.project,
            role_id=f"{cfg.prefix}_{cfg.name}_secret_deployer".replace("-", "_"),
            title=f"{cfg.prefix} {cfg.name} secret deployer",
            description="Manage secrets and who may read them; never read or add a secret's value.",
            permissions=list(SECRET_DEPLOYER_PERMISSIONS),
        )
        project_roles = {
            **{role: {"deployer": members["deployer"]} for role in DEPLOYER_ROLES},
            **{role: {"planner": members["planner"]} for role in PLANNER_ROLES},
        }
        grant(self, ProjectIamMember, project_roles, project=cfg.project)
        ProjectIamMember(self, "secret-deployer-deployer", project=cfg.project, role=secret_deployer.name,
                         member=members["deployer"])
        ProjectIamMember(self, "projectIamAdmin-deployer", project=cfg.project,
                         role="roles/resourcemanager.projectIamAdmin", member=members["deployer"],
                         condition=project_iam_admin_condition())

        outputs = {
            "workload_identity_provider": (self.provider.name, "What google-github-actions/auth authenticates through."),
            "deployer_service_account": (accounts["deployer"].email, "Service account the deploy jobs impersonate."),
            "planner_service_account": (accounts["planner"].email, "Service account the plan jobs impersonate."),
        }
        for name, (value, description) in outputs.items():
            TerraformOutput(self, name, value=value, description=description)
