"""What each identity can actually do, computed from the synthesized stacks and IAM's role data.

Both directions, per environment: every call the code makes (cdktf/infra/access/api_calls.py) is
allowed, and no identity holds more than its calls and the reasoned allowance. The
mutation tests at the end show the model catches what a desk review found: a
project-wide role that reaches the artifacts, and a producer without ``get`` on
``landing/`` (the 412 jam).
"""

from __future__ import annotations

import copy
import fnmatch
import json

import pytest

from core.views import VIEWS
from infra.access.api_calls import (
    DATAPROC_STAGING_OBJECT,
    JOB_ARTIFACT,
    LANDING_OBJECT,
    PRODUCER_ARTIFACT,
    TERRAFORM_CALLS,
    Targets,
    allowance,
    checked_on,
    project_role_allowance,
    refused_calls,
    terraform_calls,
    workload_calls,
)
from infra.access.model import ROLE_DATA, AccessModel, dataproc_cluster, predefined_roles, service_account, table
from infra.environments import load_environments

from .conftest import ENVIRONMENTS, MODES

CONFIGS = {cfg.name: cfg for cfg in load_environments()}
WRITES = ("storage.objects.create", "storage.objects.delete", "storage.objects.update", "storage.objects.move",
          "storage.objects.restore", "storage.objects.setIamPolicy", "storage.objects.setRetention")
#: What lets an identity act as a service account (take its identity, or sign as it).
ACT_AS = ("iam.serviceAccounts.actAs", "iam.serviceAccounts.getAccessToken", "iam.serviceAccounts.getOpenIdToken",
          "iam.serviceAccounts.implicitDelegation", "iam.serviceAccounts.signBlob", "iam.serviceAccounts.signJwt",
          "iam.serviceAccounts.setIamPolicy", "iam.serviceAccountKeys.create")


class Env:
    """One environment's model, its targets and its identities' members."""

    def __init__(self, name: str, stacks: dict[str, dict], cfg=None) -> None:
        self.cfg = cfg or CONFIGS[name]
        self.targets = Targets(self.cfg)
        self.stacks = stacks
        self.model = AccessModel.from_stacks(stacks, self.cfg.project_number)
        ids = {**self.cfg.service_account_ids, **self.cfg.ci_service_account_ids}
        self.members = {who: f"serviceAccount:{self.cfg.service_account_email(i)}" for who, i in ids.items()}

    @property
    def accounts(self) -> dict[str, object]:
        """Every service account an identity could try to act as: the stacks' four, the Compute Engine
        default account (Editor in many projects), and any other account of the project."""
        t = self.targets
        found = {who: t.account(i) for who, i in {**self.cfg.service_account_ids,
                                                  **self.cfg.ci_service_account_ids}.items()}
        found["compute-default"] = service_account(
            self.cfg.project, f"{self.cfg.project_number}-compute@developer.gserviceaccount.com")
        found["another"] = t.account("someone-elses-account")
        return found

    def probes(self) -> list:
        """Resources to look at what identities hold: the project, each bucket and dataset, a sample
        object under each prefix, the tables, the key."""
        t = self.targets
        objects = [t.data(name) for name in (LANDING_OBJECT, "archive/x", "checkpoints/market_ticks/offsets/1",
                                             "staging/batch_id=1/x.parquet", PRODUCER_ARTIFACT, JOB_ARTIFACT,
                                             DATAPROC_STAGING_OBJECT, "anything-else")]
        return [t.project, t.data_bucket, t.temp_bucket, t.state_bucket, t.dataset, *t.tables.values(), t.api_key,
                *objects, t.temp("x"), t.state(), *self.accounts.values(), t.cluster, self.other_cluster]

    @property
    def other_cluster(self):
        return dataproc_cluster(self.cfg.project, self.cfg.region, "someone-elses-cluster")


@pytest.fixture(scope="module", params=[(env, mode) for env in ENVIRONMENTS for mode in MODES], ids="-".join)
def env(request, stacks_in_mode) -> Env:
    """Each environment in each processing mode (docs/STREAM.md, "Scheduled mode")."""
    return _env(*stacks_in_mode[request.param])


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def scheduled_env(request, stacks_in_mode) -> Env:
    """Each environment in scheduled mode, the only one with the scheduler's grants on the cluster."""
    return _env(*stacks_in_mode[request.param, "scheduled"])


def _env(pipeline, bootstrap, cfg) -> Env:
    return Env(cfg.name, {cfg.name: pipeline.json, f"bootstrap-{cfg.name}": bootstrap.json}, cfg)


def _denied(env: Env, calls) -> list[str]:
    return [f"{c.identity}: {c.what} ({c.code}) needs {c.permission} on {c.resource}"
            for c in calls
            if not env.model.allows(env.members[c.identity], c.permission, c.resource, c.modified_roles)]


def _project_roles(env: Env) -> tuple[str, ...]:
    return tuple(sorted({b.role for b in env.model.bindings if b.stack == env.cfg.name and b.policy.count("/") == 1}))


def test_role_data_is_vendored_with_its_licence_and_source():
    folder = ROLE_DATA.parent
    assert "MIT License" in (folder / "LICENSE").read_text()
    assert "2073fa52ac008a45477aa0b1b4580cd99135bf60" in (folder / "README.md").read_text()
    roles = predefined_roles()
    assert len(roles) > 2000
    assert "storage.objects.get" not in roles["roles/storage.objectCreator"]


def test_every_permission_named_in_the_call_table_exists():
    env_ = Env("dev", {})
    known = set().union(*predefined_roles().values())
    named = {c.permission for c in workload_calls(env_.targets) + terraform_calls(env_.targets, ())}
    assert named - known == set()


def test_every_workload_call_is_allowed(env):
    assert _denied(env, workload_calls(env.targets)) == []


def test_the_calls_refused_on_purpose_are_refused(env):
    refused = refused_calls(env.targets)
    assert len(_denied(env, refused)) == len(refused)


def test_every_terraform_call_of_the_deployer_and_planner_is_allowed(env):
    assert _denied(env, terraform_calls(env.targets, _project_roles(env))) == []


def test_every_resource_type_of_the_pipeline_has_its_terraform_calls(env):
    declared = set(env.stacks[env.cfg.name]["resource"])
    assert declared - set(TERRAFORM_CALLS) == set()


def test_workloads_hold_nothing_beyond_their_calls_and_the_allowance(env):
    calls = workload_calls(env.targets)
    allowed = allowance(env.targets)
    beyond = []
    for identity in ("producer", "processing", "scheduler"):
        needed = {(c.permission, c.resource.name) for c in calls if c.identity == identity}
        rules = [rule for rule in allowed if rule.identity == identity]
        for resource in env.probes():
            for permission in sorted(env.model.permissions(env.members[identity], resource)):
                if not checked_on(permission, resource) or (permission, resource.name) in needed:
                    continue
                if not any(fnmatch.fnmatchcase(resource.name, rule.where)
                           and any(fnmatch.fnmatchcase(permission, p) for p in rule.permissions) for rule in rules):
                    beyond.append(f"{identity}: {permission} on {resource}")
    assert beyond == []


def test_every_allowance_is_used(env):
    """An allowance nothing needs any more is a hole waiting for a grant: it goes."""
    held = [(identity, permission, resource.name)
            for identity in ("producer", "processing", "scheduler", "planner") for resource in env.probes()
            for permission in env.model.permissions(env.members[identity], resource)]
    unused = [rule for rule in allowance(env.targets)
              if not any(identity == rule.identity and fnmatch.fnmatchcase(name, rule.where)
                         and any(fnmatch.fnmatchcase(permission, p) for p in rule.permissions)
                         for identity, permission, name in held)]
    assert unused == []


def test_the_planner_holds_nothing_beyond_its_calls_and_its_project_roles(env):
    """The planner's project roles are read-only views (checked by the next test); its grants on
    buckets, the dataset and tables reach no further than its calls and the allowance."""
    planner, project = env.members["planner"], env.targets.project
    needed = {(c.permission, c.resource.name) for c in terraform_calls(env.targets, _project_roles(env))
              if c.identity == "planner"}
    rules = [rule for rule in allowance(env.targets) if rule.identity == "planner"]
    from_project = env.model.permissions(planner, project)
    beyond = [f"{permission} on {resource}" for resource in env.probes()
              for permission in sorted(env.model.permissions(planner, resource) - from_project)
              if checked_on(permission, resource) and (permission, resource.name) not in needed
              and not any(fnmatch.fnmatchcase(resource.name, rule.where)
                          and any(fnmatch.fnmatchcase(permission, p) for p in rule.permissions) for rule in rules)]
    assert beyond == [], beyond


def test_the_planner_reads_the_rows_of_market_ticks_and_no_other_table(env):
    """The smoke check's query: data of the ticks table, never of the quarantine (raw landing lines),
    a view, another table of the dataset or of another dataset."""
    t, planner = env.targets, env.members["planner"]
    assert env.model.allows(planner, "bigquery.jobs.create", t.project)
    assert env.model.allows(planner, "bigquery.tables.getData", t.tables["market_ticks"])
    others = [t.tables["quarantine"], table(env.cfg.project, env.cfg.dataset_id, VIEWS[0]),
              table(env.cfg.project, env.cfg.dataset_id, "another_table"),
              table(env.cfg.project, "another_dataset", "market_ticks")]
    assert [str(other) for other in others if env.model.allows(planner, "bigquery.tables.getData", other)] == []
    # nor write to any table
    for resource in (t.tables["market_ticks"], *others):
        assert not env.model.permissions(planner, resource) & {
            "bigquery.tables.updateData", "bigquery.tables.update", "bigquery.tables.delete",
            "bigquery.tables.setIamPolicy"}, resource
    # and has nowhere to put a snapshot, replica or export of it (the allowance's reason)
    assert not env.model.allows(planner, "bigquery.tables.create", t.dataset)
    assert not env.model.allows(planner, "bigquery.datasets.create", t.project)
    for bucket in (t.data(LANDING_OBJECT), t.temp("x"), t.state()):
        assert not env.model.allows(planner, "storage.objects.create", bucket), bucket


def test_project_level_roles_are_all_in_the_allowance(env):
    allowed = project_role_allowance(env.cfg)
    by_member = {member: who for who, member in env.members.items()}
    unlisted = [f"{by_member.get(b.member, b.member)}: {b.role}"
                for b in env.model.bindings if b.policy == env.targets.project.name
                and b.role not in allowed.get(by_member.get(b.member), {})]
    assert unlisted == []


def test_no_identity_but_the_deployer_can_change_artifacts_or_state(env):
    t = env.targets
    protected = [t.data(PRODUCER_ARTIFACT), t.data(JOB_ARTIFACT), t.data("artifacts/anything"), t.state(),
                 t.state("cryptopipe/bootstrap-dev/default.tfstate")]
    deployer = env.members["deployer"]
    writers = [f"{member}: {permission} on {resource}"
               for member in env.model.members() - {deployer} for resource in protected for permission in WRITES
               if env.model.allows(member, permission, resource)]
    assert writers == []
    # and the buckets' IAM, which would let anyone grant themselves the same
    for member in env.model.members() - {deployer}:
        for bucket in (t.data_bucket, t.state_bucket):
            assert not env.model.allows(member, "storage.buckets.setIamPolicy", bucket), (member, bucket)


def test_no_workload_or_planner_can_act_as_any_service_account(env):
    for who in ("producer", "processing", "scheduler", "planner"):
        for name, account in env.accounts.items():
            held = env.model.permissions(env.members[who], account) & set(ACT_AS)
            assert held == set(), (who, name, held)


def test_the_deployer_acts_only_as_the_three_workload_accounts(env):
    acting = {name for name, account in env.accounts.items()
              if env.model.allows(env.members["deployer"], "iam.serviceAccounts.actAs", account)}
    assert acting == {"producer", "processing", "scheduler"}
    for name, account in env.accounts.items():
        # never an administrator of an account: no keys, no tokens, no IAM on it
        for permission in ("iam.serviceAccounts.setIamPolicy", "iam.serviceAccountKeys.create",
                           "iam.serviceAccounts.getAccessToken", "iam.serviceAccounts.create"):
            assert not env.model.allows(env.members["deployer"], permission, account), (name, permission)


def test_the_deployer_grants_only_the_pipelines_project_roles(env):
    deployer, project = env.members["deployer"], env.targets.project
    roles = _project_roles(env)
    assert env.model.allows(deployer, "resourcemanager.projects.setIamPolicy", project, roles)
    assert env.model.allows(deployer, "resourcemanager.projects.setIamPolicy", project, ())  # audit configs
    for role in ("roles/owner", "roles/dataproc.worker", "roles/iam.serviceAccountTokenCreator",
                 "roles/storage.admin"):
        assert not env.model.allows(deployer, "resourcemanager.projects.setIamPolicy", project, (*roles, role))
    # nor change what a custom role it grants contains
    assert not env.model.allows(deployer, "iam.roles.update", project)
    assert not env.model.allows(deployer, "iam.roles.create", project)


def test_the_planner_reads_state_and_artifacts_but_no_data_object_and_no_key(env):
    t, planner = env.targets, env.members["planner"]
    assert env.model.allows(planner, "storage.objects.get", t.state())
    assert env.model.allows(planner, "storage.objects.get", t.data(PRODUCER_ARTIFACT))
    for name in (LANDING_OBJECT, "archive/x", "checkpoints/market_ticks/offsets/1", "staging/batch_id=1/x.parquet"):
        assert not env.model.allows(planner, "storage.objects.get", t.data(name)), name
    assert not env.model.allows(planner, "storage.objects.get", t.temp("x"))
    assert not env.model.allows(planner, "secretmanager.versions.access", t.api_key)


def test_only_the_producer_reads_the_key(env):
    readers = {who for who, member in env.members.items()
               if env.model.allows(member, "secretmanager.versions.access", env.targets.api_key)}
    assert readers == {"producer"}


#: What would let the scheduler run code as some account of its choosing, or change what it runs.
RUNS_ELSEWHERE = ("dataproc.clusters.create", "dataproc.clusters.update", "dataproc.clusters.delete",
                  "dataproc.clusters.setIamPolicy", "dataproc.batches.create", "dataproc.sessions.create",
                  "dataproc.workflowTemplates.instantiate", "dataproc.workflowTemplates.instantiateInline",
                  "workflows.workflows.create", "workflows.workflows.update", "cloudscheduler.jobs.create",
                  "cloudscheduler.jobs.update", "compute.instances.create", "compute.instances.setMetadata")
#: What reading or changing the pipeline's data takes.
DATA_ACCESS = ("storage.objects.get", "storage.objects.list", "storage.objects.create", "storage.objects.delete",
               "bigquery.tables.getData", "bigquery.tables.updateData", "secretmanager.versions.access")


def test_the_scheduler_starts_runs_only_on_this_cluster_which_runs_as_the_processing_account(env):
    """Scheduled mode's starter (infra/stacks/schedule.py): start, stop and submit to our cluster and no other;
    no serverless batch, template or cluster of its own, which would run as an account it names."""
    t, scheduler = env.targets, env.members["scheduler"]
    if env.cfg.processing == "stream":
        assert env.model.grants_to(scheduler) == []
        return
    for permission in ("dataproc.clusters.get", "dataproc.clusters.start", "dataproc.clusters.stop",
                       "dataproc.clusters.use"):
        assert env.model.allows(scheduler, permission, t.cluster), permission
        assert not env.model.allows(scheduler, permission, env.other_cluster), permission
    assert env.model.allows(scheduler, "dataproc.jobs.create", t.project)
    assert env.model.allows(scheduler, "workflows.executions.create", t.project)
    for resource in (t.project, t.cluster, env.other_cluster):
        assert env.model.permissions(scheduler, resource) & set(RUNS_ELSEWHERE) == set(), resource
    # a job on our cluster runs as the cluster's account: the processing account
    gce = next(iter(env.stacks[env.cfg.name]["resource"]["google_dataproc_cluster"].values()))
    assert f"serviceAccount:{gce['cluster_config']['gce_cluster_config']['service_account']}" == \
        env.members["processing"]


def test_the_scheduler_reads_and_writes_no_data(env):
    scheduler = env.members["scheduler"]
    touching = {(str(resource), p) for resource in env.probes()
                for p in env.model.permissions(scheduler, resource) & set(DATA_ACCESS)}
    assert touching == set()


def test_a_scheduler_role_on_the_project_instead_of_the_cluster_would_be_caught(scheduled_env):
    """The cluster grant moved to the project: the scheduler could start and submit to any cluster."""
    env = scheduled_env

    def widen(stacks):
        resources = stacks[env.cfg.name]["resource"]
        (grant,) = resources.pop("google_dataproc_cluster_iam_member").values()
        resources["google_project_iam_member"]["mutant"] = {"project": env.cfg.project, "role": grant["role"],
                                                             "member": grant["member"]}

    mutant = _mutated(env, widen)
    with pytest.raises(AssertionError):
        test_the_scheduler_starts_runs_only_on_this_cluster_which_runs_as_the_processing_account(mutant)
    with pytest.raises(AssertionError):
        test_project_level_roles_are_all_in_the_allowance(mutant)


def _token(env: Env, **claims) -> dict[str, str]:
    cfg = env.cfg
    return {"sub": f"repo:{cfg.github_repository}:environment:{cfg.name}", "repository": cfg.github_repository,
            "repository_id": str(cfg.github_repository_id),
            "repository_owner_id": str(cfg.github_repository_owner_id), **claims}


def _impersonable(env: Env, claims: dict[str, str]) -> set[str]:
    principals = env.model.principals(claims)
    return {name for name, account in env.accounts.items()
            if env.model.allows(principals, "iam.serviceAccounts.getAccessToken", account)}


def test_ci_tokens_reach_exactly_their_service_account(env):
    repo = f"repo:{env.cfg.github_repository}"
    # the planner is open to every job the provider admits, the deploy job's included (it reads less)
    assert _impersonable(env, _token(env)) == {"deployer", "planner"}
    assert _impersonable(env, _token(env, sub=f"{repo}:pull_request")) == {"planner"}
    assert _impersonable(env, _token(env, sub=f"{repo}:ref:refs/heads/main")) == {"planner"}
    other_env = "prod" if env.cfg.name == "dev" else "dev"
    assert _impersonable(env, _token(env, sub=f"{repo}:environment:{other_env}")) == set()
    assert _impersonable(env, _token(env, sub=f"{repo}:ref:refs/heads/feature")) == set()


def test_workload_identity_trusts_ids_not_names(env):
    # A re-registered repository or owner has the same names and new ids: refused.
    assert env.model.principals(_token(env, repository_id="999")) == frozenset()
    assert env.model.principals(_token(env, repository_owner_id="999")) == frozenset()
    # The same ids under another name (a renamed repository) still work.
    assert "deployer" in _impersonable(env, _token(env, repository="renamed/cryptopipe"))


# The model against the two defects of the desk review: each mutation of the synthesized
# stacks must fail the checks above.

def _mutated(env: Env, change) -> Env:
    stacks = copy.deepcopy(env.stacks)
    change(stacks)
    return Env(env.cfg.name, stacks, env.cfg)


def test_a_project_wide_dataproc_worker_would_be_caught(env):
    def grant_dataproc_worker(stacks):
        grants = stacks[env.cfg.name]["resource"]["google_project_iam_member"]
        grants["mutant"] = {"project": env.cfg.project, "role": "roles/dataproc.worker",
                            "member": env.members["processing"]}

    mutant = _mutated(env, grant_dataproc_worker)
    assert mutant.model.allows(mutant.members["processing"], "storage.objects.create",
                               mutant.targets.data(PRODUCER_ARTIFACT))
    with pytest.raises(AssertionError):
        test_no_identity_but_the_deployer_can_change_artifacts_or_state(mutant)
    with pytest.raises(AssertionError):
        test_project_level_roles_are_all_in_the_allowance(mutant)


def test_a_producer_without_get_on_landing_would_be_caught(env):
    def drop_landing_read(stacks):
        for grant in stacks[env.cfg.name]["resource"]["google_storage_bucket_iam_member"].values():
            if grant["member"] == env.members["producer"] and grant["role"] == "roles/storage.objectViewer":
                grant["condition"]["expression"] = grant["condition"]["expression"].split(" || ")[1]

    mutant = _mutated(env, drop_landing_read)
    denied = _denied(mutant, workload_calls(mutant.targets))
    assert len(denied) == 2
    assert "read the object back after a 412" in denied[0] and "look for a back-fill's marker" in denied[1]


def test_unknown_grant_types_and_roles_are_refused(env):
    stacks = copy.deepcopy(env.stacks)
    stacks[env.cfg.name]["resource"]["google_storage_bucket_iam_binding"] = {"x": {}}
    with pytest.raises(ValueError, match="cannot evaluate google_storage_bucket_iam_binding"):
        AccessModel.from_stacks(stacks, env.cfg.project_number)
    with pytest.raises(KeyError, match="neither a predefined role"):
        env.model.role_permissions("roles/no.suchRole")


def test_service_agents_may_only_use_the_key(source_copy, tmp_path):
    """With kms_key set, the four service agents the stack grants to can use the key and nothing else."""
    import main

    from infra.environments import environment

    key = "projects/my-keys-1/locations/us-central1/keyRings/cryptopipe/cryptoKeys/data"
    cfg = environment("dev", {"project": "my-project-1", "state_bucket": "my-tfstate-1", "kms_key": key,
                              "project_number": 123456789012})
    out = main.synth(outdir=str(tmp_path), environments=[cfg], source_root=source_copy) / "stacks"
    stacks = {name: json.loads((out / name / "cdk.tf.json").read_text()) for name in ("dev", "bootstrap-dev")}
    model = AccessModel.from_stacks(stacks, cfg.project_number)
    agents = {b.member for b in model.bindings if b.role == "roles/cloudkms.cryptoKeyEncrypterDecrypter"}
    assert {a.split("@")[1] for a in agents} == {
        "gs-project-accounts.iam.gserviceaccount.com", "bigquery-encryption.iam.gserviceaccount.com",
        "compute-system.iam.gserviceaccount.com", "dataproc-accounts.iam.gserviceaccount.com"}
    assert {b.policy for b in model.grants_to(*agents)} == {key}
    assert {b.role for b in model.grants_to(*agents)} == {"roles/cloudkms.cryptoKeyEncrypterDecrypter"}
