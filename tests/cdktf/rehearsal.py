"""A first deploy, rehearsed on the synthesized JSON: what each Google API needs before it accepts a resource.

No ``terraform apply`` can run here, and every synth test passes while the first real
deploy fails partway or leaves an alert that can never fire. This walks the stacks the
way the README deploys them (:data:`FIRST_DEPLOY`) and Terraform applies each one: in
dependency order (``depends_on`` and every reference an expression makes), each resource
starting when the last of its dependencies is done. Time is modelled the conservative way:
a call takes no time at all, only a ``time_sleep`` advances the clock (by its
``create_duration``), and whatever an earlier step made is old. Then, for each resource,
the rules below check what Google needs in place before it; each names its source.

The rules (:data:`RULES`):

- an alert policy is made at least :data:`METRIC_VISIBLE_SECONDS` after every log-based
  metric it reads;
- a workload (a Dataproc cluster, a VM, scheduled mode's Cloud Scheduler job, whose first
  trigger runs the workflow as its account) starts at least :data:`GRANT_PROPAGATION_SECONDS`
  after every grant its service account holds in the same step;
- a Cloud Scheduler job that starts a workflow comes after the workflow;
- every resource comes after the API that serves it is enabled: in an earlier step, or in
  the same one and among its dependencies;
- the producer's VM starts with a key: the secret its start-up reads has a version;
- every condition that watches for life fires when its signal never reported;
- names are within the limits Google documents.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from typing import Any

#: A new log-based metric "could take up to 10 minutes to become available" to alert policies
#: (the 404 Monitoring answers before that: hashicorp/terraform-provider-google#11102).
METRIC_VISIBLE_SECONDS = 600
#: "Changes to allow or deny policies typically propagate in 2 minutes, but could potentially
#: take 7 minutes or longer" (https://cloud.google.com/iam/docs/access-change-propagation).
GRANT_PROPAGATION_SECONDS = 420


@dataclass(frozen=True)
class Rule:
    key: str
    says: str
    source: str


RULES = {rule.key: rule for rule in (
    Rule("metric-visible", f"an alert policy comes {METRIC_VISIBLE_SECONDS} s after each metric it reads",
         "Monitoring's 404 'Cannot find metric(s) ... could take up to 10 minutes to become available', "
         "hashicorp/terraform-provider-google#11102"),
    Rule("grants-propagated", f"a workload starts {GRANT_PROPAGATION_SECONDS} s after its account's new grants",
         "https://cloud.google.com/iam/docs/access-change-propagation (typically 2, potentially 7 minutes or "
         "longer); a Dataproc node fetches its initialization action once"),
    Rule("target-exists", "a Cloud Scheduler job comes after the workflow it starts",
         "a trigger whose workflow does not exist yet fails with NOT_FOUND "
         "(https://cloud.google.com/workflows/docs/reference/executions/rest/v1/projects.locations.workflows.executions/create)"),
    Rule("api-enabled", "a resource comes after the API that serves it is enabled",
         "https://cloud.google.com/service-usage/docs/enable-disable (calls to a disabled API fail with "
         "SERVICE_DISABLED)"),
    Rule("key-version", "the producer's VM starts when its key's secret has a version",
         "producer/__main__.py exits at start without a key; Secret Manager 'versions/latest' of a secret "
         "without versions is NOT_FOUND (https://cloud.google.com/secret-manager/docs/access-secret-version)"),
    Rule("fires-on-no-data", "a condition watching for life fires when its signal never reported",
         "https://cloud.google.com/monitoring/alerts/metric-absence (an absence condition needs one data point "
         "after the policy exists); EVALUATION_MISSING_DATA_ACTIVE: 'If there is no data to evaluate the "
         "condition, then evaluate the condition as true' (projects.alertPolicies reference)"),
    Rule("name-limits", "names are within Google's limits", "each limit's source is beside it in NAME_LIMITS"),
)}


# --- the procedure -------------------------------------------------------------------


@dataclass(frozen=True)
class Apply:
    """``scripts/cdktf.sh deploy <stack>`` (or CI's apply of it)."""

    stack: str


@dataclass(frozen=True)
class AddKey:
    """A person adds the CoinGecko key's first version (the README: ``gcloud secrets versions add``)."""


#: The README's order, "One-time bootstrap" then "Deploy": ``{env}`` is the environment.
FIRST_DEPLOY = (Apply("bootstrap-{env}"), AddKey(), Apply("{env}"))


# --- what the rules know about Google ------------------------------------------------

#: The API that serves a resource type, by the type's prefix (none: no Google API, or not ours to enable).
_API_BY_PREFIX = (
    ("google_compute_", "compute.googleapis.com"),
    ("google_storage_", "storage.googleapis.com"),
    ("google_bigquery_", "bigquery.googleapis.com"),
    ("google_dataproc_", "dataproc.googleapis.com"),
    ("google_logging_", "logging.googleapis.com"),
    ("google_monitoring_", "monitoring.googleapis.com"),
    ("google_secret_manager_", "secretmanager.googleapis.com"),
    ("google_billing_budget", "billingbudgets.googleapis.com"),
    ("google_project_iam_custom_role", "iam.googleapis.com"),
    ("google_project_iam_", "cloudresourcemanager.googleapis.com"),
    ("google_service_account", "iam.googleapis.com"),
    ("google_iam_workload_identity_pool", "iam.googleapis.com"),
    ("google_workflows_", "workflows.googleapis.com"),
    ("google_cloud_scheduler_", "cloudscheduler.googleapis.com"),
)

RFC1035 = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
#: type -> (attribute, pattern the whole value must match, source).
NAME_LIMITS: dict[str, tuple[str, str, str]] = {
    "google_storage_bucket": ("name", r"[a-z0-9][-a-z0-9_.]{1,61}[a-z0-9]",
                              "https://cloud.google.com/storage/docs/buckets#naming"),
    "google_dataproc_cluster": ("name", r"[a-z]([-a-z0-9]{0,49}[a-z0-9])?",
                                "Dataproc Cluster.cluster_name: a lowercase letter, up to 51 lowercase letters, "
                                "numbers, hyphens, not ending with a hyphen"),
    "google_service_account": ("account_id", r"[a-z]([-a-z0-9]{4,28}[a-z0-9])",
                               "https://cloud.google.com/iam/docs/service-accounts-create (6-30 characters)"),
    "google_logging_metric": ("name", r"[A-Za-z0-9_\-.,+!*'()%/]{1,100}",
                              "LogMetric.name: up to 100 characters of A-Z a-z 0-9 _-.,+!*',()%/"),
    "google_secret_manager_secret": ("secret_id", r"[A-Za-z0-9_-]{1,255}",
                                     "Secret Manager secret_id: up to 255 letters, digits, _ and -"),
    "google_bigquery_dataset": ("dataset_id", r"[A-Za-z0-9_]{1,1024}",
                                "https://cloud.google.com/bigquery/docs/datasets#dataset-naming"),
    "google_iam_workload_identity_pool": ("workload_identity_pool_id", r"(?!gcp-)[a-z0-9-]{4,32}",
                                          "WorkloadIdentityPool id: 4-32 of a-z 0-9 -, not gcp-"),
    "google_project_iam_custom_role": ("role_id", r"[a-zA-Z0-9_.]{3,64}",
                                       "https://cloud.google.com/iam/docs/creating-custom-roles (role_id)"),
    **{type_: ("name", RFC1035, "https://cloud.google.com/compute/docs/naming-resources") for type_ in (
        "google_compute_instance", "google_compute_disk", "google_compute_network", "google_compute_subnetwork",
        "google_compute_router", "google_compute_firewall")},
}
#: Signals whose silence means the pipeline is down or stale: by the log-based metric's key
#: (core/health.py's signals), and Dataproc's running-jobs gauge.
SILENCE_IS_FAILURE = ("-health-polls", "-health-stream-reports", "-health-data-age", "-health-runs-finished",
                      "dataproc.googleapis.com/cluster/job/running_count")
_KEY_SECRET = re.compile(r"CRYPTOPIPE__PRODUCER__API_KEY_SECRET=projects/[^/\s]+/secrets/([^/\s]+)/versions/")
_REFERENCE = re.compile(r"\b((?:data\.)?[a-z][a-z0-9_]*\.[A-Za-z0-9_-]+)\b")


@dataclass(frozen=True)
class Finding:
    rule: str
    step: str
    address: str
    message: str

    def __str__(self) -> str:
        rule = RULES[self.rule]
        return f"[{self.rule}] {self.step}: {self.address}: {self.message} ({rule.says}; {rule.source})"


# --- the walk ------------------------------------------------------------------------


@dataclass
class _Applied:
    """What earlier steps left: old resources, enabled APIs, secrets and which have a version."""

    apis: set[str] = field(default_factory=set)
    secrets: set[str] = field(default_factory=set)
    versioned: set[str] = field(default_factory=set)


def _walk(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key != "//":
                yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)
    elif isinstance(value, str):
        yield value


class StackApply:
    """One ``terraform apply`` of a stack's JSON: each resource's dependencies, start and end."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.resources = {f"{type_}.{name}": (type_, body)
                          for type_, bodies in document.get("resource", {}).items() for name, body in bodies.items()}
        data = {f"data.{type_}.{name}": (type_, body)
                for type_, bodies in document.get("data", {}).items() for name, body in bodies.items()}
        known = {*self.resources, *data}
        #: Made before the stack and adopted (an import block): the state bucket, by ``gcloud`` (the README).
        self.adopted = {block["to"] for block in document.get("import", [])}
        self.depends = {}
        for address, (_, body) in {**self.resources, **data}.items():
            found = set(body.get("depends_on", []))
            for text in _walk({k: v for k, v in body.items() if k != "depends_on"}):
                if "${" in text:
                    found |= {ref for ref in _REFERENCE.findall(text) if ref in known}
            self.depends[address] = found - {address}
        self.start: dict[str, float] = {}
        self.end: dict[str, float] = {}
        for address in TopologicalSorter(self.depends).static_order():
            self.start[address] = max((self.end[d] for d in self.depends[address]), default=0.0)
            body = {**self.resources, **data}[address][1]
            self.end[address] = self.start[address] + _duration(body) if address.startswith("time_sleep.") \
                else self.start[address]

    def ancestors(self, address: str) -> set[str]:
        seen: set[str] = set()
        todo = [address]
        while todo:
            for dependency in self.depends[todo.pop()]:
                if dependency not in seen:
                    seen.add(dependency)
                    todo.append(dependency)
        return seen

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {address: body for address, (t, body) in self.resources.items() if t == type_}


def _duration(body: dict[str, Any]) -> float:
    found = re.fullmatch(r"(\d+)([smh])", body.get("create_duration", "0s"))
    assert found, f"unmodelled create_duration {body.get('create_duration')!r}"
    return int(found[1]) * {"s": 1, "m": 60, "h": 3600}[found[2]]


def _api_of(type_: str) -> str | None:
    return next((api for prefix, api in _API_BY_PREFIX if type_.startswith(prefix)), None)


def rehearse(documents: dict[str, dict[str, Any]], env: str, procedure=FIRST_DEPLOY) -> list[Finding]:
    """Every rule broken by deploying ``env`` with ``procedure`` from the stacks' JSON (name -> document)."""
    findings: list[Finding] = []
    applied = _Applied()
    for step in procedure:
        if isinstance(step, AddKey):
            if not applied.secrets:
                findings.append(Finding("key-version", "add the key", "-",
                                        "no secret exists yet to add the key's version to"))
            applied.versioned |= applied.secrets
            continue
        name = step.stack.format(env=env)
        run = StackApply(documents[name])
        findings += [Finding(f.rule, f"apply {name}", f.address, f.message) for f in _check(run, applied)]
        applied.apis |= {body["service"] for body in run.of_type("google_project_service").values()}
        applied.secrets |= {body["secret_id"] for body in run.of_type("google_secret_manager_secret").values()}
    return findings


def _check(run: StackApply, applied: _Applied) -> Iterator[Finding]:
    yield from _metrics_visible(run)
    yield from _grants_propagated(run)
    yield from _schedule_after_its_workflow(run)
    yield from _apis_enabled(run, applied)
    yield from _key_has_a_version(run, applied)
    yield from _fires_on_no_data(run)
    yield from _names_within_limits(run)


def _metrics_visible(run: StackApply) -> Iterator[Finding]:
    metrics = run.of_type("google_logging_metric")
    by_name = {body["name"]: address for address, body in metrics.items()}
    for address, policy in run.of_type("google_monitoring_alert_policy").items():
        read = set()
        for text in _walk(policy.get("conditions", [])):
            for metric_type in re.findall(r'metric\.type="logging\.googleapis\.com/user/([^"]+)"', text):
                ref = re.fullmatch(r"\$\{(google_logging_metric\.[^.]+)\.name\}", metric_type)
                read.add(ref[1] if ref else by_name.get(metric_type))
        for metric in sorted(read - {None}):  # None: made by an earlier step, old
            age = run.start[address] - run.end[metric]
            if age < METRIC_VISIBLE_SECONDS:
                yield Finding("metric-visible", "", address, f"reads {metric}, {age:.0f} s old")


def _members_of(body: dict[str, Any]) -> set[str]:
    return {body[key] for key in ("member",) if key in body}


def _grants_propagated(run: StackApply) -> Iterator[Finding]:
    grants = {address: body for address, (type_, body) in run.resources.items() if type_.endswith("_iam_member")}
    workloads = {
        **{a: b["cluster_config"]["gce_cluster_config"]["service_account"]
           for a, b in run.of_type("google_dataproc_cluster").items()},
        **{a: b["service_account"]["email"] for a, b in run.of_type("google_compute_instance").items()},
        **{a: b["http_target"]["oauth_token"]["service_account_email"]
           for a, b in run.of_type("google_cloud_scheduler_job").items()},
    }
    for address, email in workloads.items():
        for grant, body in grants.items():
            if f"serviceAccount:{email}" in _members_of(body):
                age = run.start[address] - run.end[grant]
                if age < GRANT_PROPAGATION_SECONDS:
                    yield Finding("grants-propagated", "", address, f"runs as {email}; {grant} is {age:.0f} s old")


def _schedule_after_its_workflow(run: StackApply) -> Iterator[Finding]:
    workflows = run.of_type("google_workflows_workflow")
    for address, body in run.of_type("google_cloud_scheduler_job").items():
        uri = body.get("http_target", {}).get("uri", "")
        if "workflowexecutions.googleapis.com" not in uri:
            continue
        named = uri.split("/workflows/", 1)[1].split("/", 1)[0]
        started = {w for w, workflow in workflows.items() if named in (workflow["name"], "${" + w + ".name}")}
        if not started:
            yield Finding("target-exists", "", address, f"starts workflow {named!r}, which no step makes")
        elif not started <= run.ancestors(address):
            yield Finding("target-exists", "", address, f"does not wait for {sorted(started)[0]}")


def _apis_enabled(run: StackApply, applied: _Applied) -> Iterator[Finding]:
    enabling = {body["service"]: address for address, body in run.of_type("google_project_service").items()}
    for address, (type_, body) in run.resources.items():
        api = _api_of(type_)
        if api is None or api in applied.apis or address in run.adopted:
            continue
        if api not in enabling:
            yield Finding("api-enabled", "", address, f"{api} is enabled by no step before it")
        elif enabling[api] not in run.ancestors(address):
            yield Finding("api-enabled", "", address, f"does not wait for {enabling[api]}")


def _key_has_a_version(run: StackApply, applied: _Applied) -> Iterator[Finding]:
    for address, body in run.of_type("google_compute_instance").items():
        for secret in _KEY_SECRET.findall(body.get("metadata_startup_script", "")):
            if secret not in applied.versioned:
                yield Finding("key-version", "", address, f"starts reading {secret}, which has no version yet")


def _fires_on_no_data(run: StackApply) -> Iterator[Finding]:
    metrics = {address: body["name"] for address, body in run.of_type("google_logging_metric").items()}
    for address, policy in run.of_type("google_monitoring_alert_policy").items():
        for condition in policy.get("conditions", []):
            if "condition_absent" in condition:
                yield Finding("fires-on-no-data", "", address,
                              f"{condition['display_name']!r} is an absence condition")
                continue
            body = condition.get("condition_threshold", {})
            watched = body.get("filter", "")
            for metric, name in metrics.items():
                watched = watched.replace("${" + metric + ".name}", name)
            if any(signal in watched for signal in SILENCE_IS_FAILURE) and \
                    body.get("evaluation_missing_data") != "EVALUATION_MISSING_DATA_ACTIVE":
                yield Finding("fires-on-no-data", "", address,
                              f"{condition['display_name']!r} does not fire when its signal never reported")


def _names_within_limits(run: StackApply) -> Iterator[Finding]:
    for type_, (attribute, pattern, source) in NAME_LIMITS.items():
        for address, body in run.of_type(type_).items():
            value = str(body.get(attribute, ""))
            if "${" not in value and not re.fullmatch(pattern, value):
                yield Finding("name-limits", "", address, f"{attribute} {value!r} breaks {pattern} ({source})")
