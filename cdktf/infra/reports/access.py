"""The access tables of docs/DEPLOY.md and SECURITY.md, computed from the effective-permission model.

Both documents once said the processing account "can change no code" while a
project-wide role let it overwrite every artifact. Now what they say about who may
do what is computed from the synthesized stacks (infra/access/model.py) and written into
their ``<!-- access:… -->`` sections by scripts/docs.py, which a test runs on the
test session's synth.
"""

from __future__ import annotations

from infra.access.api_calls import JOB_ARTIFACT, LANDING_OBJECT, PRODUCER_ARTIFACT, Targets
from infra.access.model import AccessModel, Binding, Resource, service_account
from infra.environments import EnvironmentConfig

IDENTITIES = ("producer", "processing", "scheduler", "deployer", "planner")
_VERBS = (("storage.objects.get", "read"), ("storage.objects.create", "create"), ("storage.objects.delete", "delete"))


class Report:
    """The tables of one environment, with its names replaced by ``<env>`` placeholders."""

    def __init__(self, cfg: EnvironmentConfig, model: AccessModel) -> None:
        self.cfg, self.model, self.targets = cfg, model, Targets(cfg)
        ids = {**cfg.service_account_ids, **cfg.ci_service_account_ids}
        self.members = {who: f"serviceAccount:{cfg.service_account_email(i)}" for who, i in ids.items()}

    def grants(self) -> str:
        """Every grant of the stacks: who, which role, on what, under which condition."""
        rows = sorted({(self._who(b.member), self._role(b.role), self._on(b)) for b in self.model.bindings},
                      key=lambda row: (self._order(row[0]), row))
        lines = ["| identity | role | on |", "|---|---|---|"]
        lines += [f"| {who} | {role} | {on} |" for who, role, on in rows]
        return self._generic("\n".join(lines))

    def capabilities(self) -> str:
        """What each identity can do to what matters, computed permission by permission."""
        t = self.targets
        columns = {
            "`landing/`": lambda m: self._verbs(m, t.data(LANDING_OBJECT)),
            "`archive/` `checkpoints/` `staging/`": lambda m: self._verbs(m, t.data("archive/x"), t.data(
                "checkpoints/x"), t.data("staging/x")),
            "`artifacts/producer/`": lambda m: self._verbs(m, t.data(PRODUCER_ARTIFACT)),
            "`artifacts/job/`": lambda m: self._verbs(m, t.data(JOB_ARTIFACT)),
            "Terraform state": lambda m: self._verbs(m, t.state()),
            "API key value": lambda m: self._yes(m, "secretmanager.versions.access", t.api_key),
            "rows of the tables": lambda m: self._rows(m),
            "acts as": lambda m: ", ".join(
                who for who, account in self._accounts().items()
                if self.model.allows(m, "iam.serviceAccounts.actAs", account)) or "no one",
            "grants project roles": lambda m: self._project_grants(m),
            "the cluster": lambda m: self._cluster(m),
        }
        lines = ["| identity | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for who in IDENTITIES:
            member = self.members[who]
            lines.append(f"| `{self.cfg.prefix}-<env>-{who}` | " + " | ".join(f(member) for f in columns.values())
                         + " |")
        return self._generic("\n".join(lines))

    def _verbs(self, member: str, *resources) -> str:
        held = [verb for permission, verb in _VERBS
                if all(self.model.allows(member, permission, resource) for resource in resources)]
        return ", ".join(held) or "no"

    def _rows(self, member: str) -> str:
        """What ``member`` may do to the rows of both tables, or of the one it may (``read market_ticks``)."""
        verbs = []
        for permission, verb in (("bigquery.tables.getData", "read"), ("bigquery.tables.updateData", "append")):
            tables = [name for name, table in self.targets.tables.items()
                      if self.model.allows(member, permission, table)]
            if tables:
                verbs.append(verb if len(tables) == len(self.targets.tables) else f"{verb} `{'`, `'.join(tables)}`")
        return ", ".join(verbs) or "no"

    def _cluster(self, member: str) -> str:
        """What ``member`` may do with the pipeline's cluster: start it, stop it, run jobs on it."""
        cluster, project = self.targets.cluster, self.targets.project
        verbs = [verb for verb, needs in (("start", ("dataproc.clusters.start",)), ("stop", ("dataproc.clusters.stop",)),
                                          ("run jobs", ("dataproc.clusters.use", "dataproc.jobs.create")))
                 if all(self.model.allows(member, permission, project if permission.startswith("dataproc.jobs.")
                                          else cluster) for permission in needs)]
        return ", ".join(verbs) or "no"

    def _yes(self, member: str, permission: str, resource) -> str:
        return "yes" if self.model.allows(member, permission, resource) else "no"

    def _project_grants(self, member: str) -> str:
        roles = sorted({b.role for b in self.model.bindings if b.stack == self.cfg.name and b.policy.count("/") == 1})
        project = self.targets.project
        if self.model.allows(member, "resourcemanager.projects.setIamPolicy", project, ("roles/owner",)):
            return "any"
        if self.model.allows(member, "resourcemanager.projects.setIamPolicy", project, roles):
            return "only " + ", ".join(self._role(role) for role in roles)
        return "no"

    def _accounts(self) -> dict[str, Resource]:
        """The stacks' accounts, the Compute Engine default account and any other of the project."""
        ids = {**self.cfg.service_account_ids, **self.cfg.ci_service_account_ids}
        found = {who: self.targets.account(ids[who]) for who in IDENTITIES}
        found["the Compute Engine default account"] = service_account(
            self.cfg.project, f"{self.cfg.project_number}-compute@developer.gserviceaccount.com")
        found["any other account"] = self.targets.account("any-other-account")
        return found

    def _who(self, member: str) -> str:
        for who, known in self.members.items():
            if member == known:
                return f"`{self.cfg.prefix}-<env>-{who}`"
        if member.startswith("principal"):
            return "GitHub Actions jobs (" + ("the deploy job" if "/subject/" in member else "any admitted job") + ")"
        return f"service agent `{member.split('@')[1].split('.')[0]}`"

    def _role(self, role: str) -> str:
        if role.startswith("projects/"):
            return f"custom `{role.rsplit('/', 1)[1].replace(self.cfg.name, '<env>')}`"
        return f"`{role}`"

    def _on(self, binding: Binding) -> str:
        cfg, policy = self.cfg, binding.policy
        names = {f"projects/{cfg.project}": "project", f"projects/_/buckets/{cfg.bucket_name}": "data bucket",
                 f"projects/_/buckets/{cfg.temp_bucket_name}": "temp bucket",
                 f"projects/_/buckets/{cfg.state_bucket}": "state bucket",
                 f"projects/{cfg.project}/datasets/{cfg.dataset_id}": "dataset",
                 **{table.name: f"table `{name}`" for name, table in self.targets.tables.items()},
                 f"projects/{cfg.project}/secrets/{cfg.name_of('producer', 'api-key')}": "API key secret",
                 self.targets.cluster.name: "the cluster",
                 cfg.kms_key: "`kms_key`"}
        on = names.get(policy) or (f"account `{policy.rsplit('/', 1)[1].split('@')[0]}`"
                                   if "/serviceAccounts/" in policy else policy)
        if binding.condition_title:
            on += f", {binding.condition_title}"
        return on

    def _order(self, who: str) -> int:
        return next((i for i, name in enumerate(IDENTITIES) if f"-{name}`" in who), len(IDENTITIES))

    def _generic(self, text: str) -> str:
        """Environment-specific names as placeholders: the tables hold for every environment."""
        cfg = self.cfg
        return (text.replace(cfg.project, "<project>").replace(f"_{cfg.name}_", "_<env>_")
                .replace(f"-{cfg.name}-", "-<env>-"))


def report(stacks: dict[str, dict], cfg: EnvironmentConfig) -> Report:
    """The report of ``cfg``'s environment from its synthesized ``{stack name: json}``."""
    return Report(cfg, AccessModel.from_stacks(stacks, cfg.project_number or 0))
