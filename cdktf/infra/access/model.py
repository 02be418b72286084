"""What each identity of the synthesized stacks can actually do, computed from IAM's own data.

A stack declares grants: a role, a member, the resource it is set on, maybe a
condition. What a grant *allows* is another matter: the permissions inside the
role, every resource below the one it is set on (a project grant reaches every
bucket, object, dataset and service account of the project), and the condition
evaluated for the resource a call touches. Reading the bindings alone hid a
project-wide ``roles/dataproc.worker`` that could overwrite any object of the
project, artifacts and Terraform state included. This module evaluates them:

- :func:`predefined_roles`: Google's predefined roles and their permissions
  (``iam_roles/``, vendored with its provenance); custom roles come from the
  stacks' ``google_project_iam_custom_role``;
- :class:`AccessModel`: every ``*_iam_member`` of an environment's stacks (the
  pipeline and its bootstrap), members and targets resolved to real names, and
  :meth:`AccessModel.allows` for a permission on a :class:`Resource`;
- conditions, and the Workload Identity provider's attribute condition, run in a
  CEL interpreter (cel-python), with IAM's two functions (``api.getAttribute``,
  ``hasOnly``) added; an expression it cannot evaluate raises instead of being
  guessed at.

Pure Python over the synth's JSON, no CDKTF import: tests and the access report
(``infra/reports/access.py``) use it.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celpy

ROLE_DATA = Path(__file__).with_name("iam_roles") / "predefined_roles.json.gz"

#: The IAM condition attribute the deployer's Project IAM Admin grant is limited by.
MODIFIED_GRANTS = "iam.googleapis.com/modifiedGrantsByRole"


@functools.cache
def predefined_roles() -> Mapping[str, frozenset[str]]:
    """``roles/…`` -> its permissions, from the vendored role data."""
    data = json.loads(gzip.decompress(ROLE_DATA.read_bytes()))
    return {role: frozenset(body["permissions"]) for role, body in data.items()}


@dataclass(frozen=True)
class Resource:
    """What a call touches: the name IAM conditions see, and whose policies apply, outermost first."""

    name: str
    type: str
    policies: tuple[str, ...]

    def __str__(self) -> str:
        return self.name


def project(project_id: str) -> Resource:
    return Resource(f"projects/{project_id}", "cloudresourcemanager.googleapis.com/Project",
                    (f"projects/{project_id}",))


def bucket(project_id: str, name: str) -> Resource:
    path = f"projects/_/buckets/{name}"
    return Resource(path, "storage.googleapis.com/Bucket", (f"projects/{project_id}", path))


def storage_object(project_id: str, bucket_name: str, object_name: str) -> Resource:
    """An object: under uniform bucket-level access only the project's and the bucket's policies apply."""
    parent = bucket(project_id, bucket_name)
    return Resource(f"{parent.name}/objects/{object_name}", "storage.googleapis.com/Object", parent.policies)


def dataset(project_id: str, dataset_id: str) -> Resource:
    path = f"projects/{project_id}/datasets/{dataset_id}"
    return Resource(path, "bigquery.googleapis.com/Dataset", (f"projects/{project_id}", path))


def table(project_id: str, dataset_id: str, table_id: str) -> Resource:
    parent = dataset(project_id, dataset_id)
    path = f"{parent.name}/tables/{table_id}"
    return Resource(path, "bigquery.googleapis.com/Table", (*parent.policies, path))


def secret(project_id: str, secret_id: str) -> Resource:
    path = f"projects/{project_id}/secrets/{secret_id}"
    return Resource(path, "secretmanager.googleapis.com/Secret", (f"projects/{project_id}", path))


def secret_version(project_id: str, secret_id: str, version: str = "latest") -> Resource:
    parent = secret(project_id, secret_id)
    return Resource(f"{parent.name}/versions/{version}", "secretmanager.googleapis.com/SecretVersion",
                    parent.policies)


def service_account(project_id: str, email: str) -> Resource:
    path = f"projects/{project_id}/serviceAccounts/{email}"
    return Resource(path, "iam.googleapis.com/ServiceAccount", (f"projects/{project_id}", path))


def dataproc_cluster(project_id: str, region: str, name: str) -> Resource:
    """A Dataproc cluster: its own policy (granular IAM) below the project's."""
    path = f"projects/{project_id}/regions/{region}/clusters/{name}"
    return Resource(path, "dataproc.googleapis.com/Cluster", (f"projects/{project_id}", path))


def crypto_key(key_id: str) -> Resource:
    project_id = key_id.split("/")[1]
    return Resource(key_id, "cloudkms.googleapis.com/CryptoKey", (f"projects/{project_id}", key_id))


@dataclass(frozen=True)
class Binding:
    """One ``*_iam_member`` of a synthesized stack, references resolved."""

    stack: str
    address: str
    policy: str
    role: str
    member: str
    condition: str | None
    condition_title: str | None


#: Where each grant resource type sets its binding: the policy's resource name.
_POLICY_OF = {
    "google_project_iam_member": lambda body: f"projects/{body['project']}",
    "google_storage_bucket_iam_member": lambda body: f"projects/_/buckets/{body['bucket']}",
    "google_bigquery_dataset_iam_member": lambda body: f"projects/{body['project']}/datasets/{body['dataset_id']}",
    "google_bigquery_table_iam_member":
        lambda body: f"projects/{body['project']}/datasets/{body['dataset_id']}/tables/{body['table_id']}",
    "google_secret_manager_secret_iam_member": lambda body: f"projects/{body['project']}/secrets/{body['secret_id']}",
    "google_service_account_iam_member": lambda body: body["service_account_id"],
    "google_kms_crypto_key_iam_member": lambda body: body["crypto_key_id"],
    "google_dataproc_cluster_iam_member":
        lambda body: f"projects/{body['project']}/regions/{body['region']}/clusters/{body['cluster']}",
}
_IAM_TYPE = re.compile(r"^google_\w+_iam_(member|binding|policy)$")
_REFERENCE = re.compile(r"\$\{([A-Za-z0-9_.-]+)\}")


class _References:
    """Resolves ``${type.id.attribute}`` interpolations of one stack to the values Google will use."""

    def __init__(self, stack: Mapping[str, Any], project_number: int | str) -> None:
        self._stack = stack
        self._number = str(project_number)

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            return _REFERENCE.sub(lambda match: self._resolve(match.group(1)), value)
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, dict):
            return {key: self(item) for key, item in value.items()}
        return value

    def _resolve(self, reference: str) -> str:
        parts = reference.split(".")
        section, parts = ("data", parts[1:]) if parts[0] == "data" else ("resource", parts)
        type_, logical_id, attribute = parts[0], parts[1], ".".join(parts[2:])
        # Only the top-level settings: an attribute is one of them, and a resource's nested blocks (a
        # cluster's network) may name what the model knows nothing of.
        body = {key: self(value) for key, value in self._stack[section][type_][logical_id].items()
                if isinstance(value, str)}
        kind = f"data.{type_}" if section == "data" else type_
        number = self._number
        if kind == "google_service_account":
            email = f"{body['account_id']}@{body['project']}.iam.gserviceaccount.com"
            values = {"email": email, "member": f"serviceAccount:{email}",
                      "name": f"projects/{body['project']}/serviceAccounts/{email}"}
        elif kind == "google_project_iam_custom_role":
            values = {"name": f"projects/{body['project']}/roles/{body['role_id']}"}
            values["id"] = values["name"]
        elif kind == "google_iam_workload_identity_pool":
            values = {"name": f"projects/{number}/locations/global/workloadIdentityPools/"
                              f"{body['workload_identity_pool_id']}"}
        elif kind == "data.google_storage_project_service_account":
            values = {"member": f"serviceAccount:service-{number}@gs-project-accounts.iam.gserviceaccount.com"}
        elif kind == "data.google_bigquery_default_service_account":
            values = {"member": f"serviceAccount:bq-{number}@bigquery-encryption.iam.gserviceaccount.com"}
        elif kind == "data.google_project":
            values = {"number": number}
        else:
            values = {}
        values = {**body, **values}  # configured attributes too: bucket name, dataset id, secret id
        if attribute not in values:
            raise KeyError(f"cannot resolve ${{{reference}}}: the access model knows no {kind}.{attribute}")
        return str(values[attribute])


class _Cel:
    """IAM conditions in CEL, with the two IAM functions the stacks use."""

    _env = celpy.Environment()

    @staticmethod
    def _get_attribute(api: Any, name: Any, default: Any) -> Any:
        return api.get(name, default)

    @staticmethod
    def _has_only(values: Any, allowed: Any) -> Any:
        return celpy.celtypes.BoolType(all(value in allowed for value in values))

    @classmethod
    @functools.cache
    def program(cls, expression: str) -> Any:
        functions = {"getAttribute": cls._get_attribute, "hasOnly": cls._has_only}
        return cls._env.program(cls._env.compile(expression), functions=functions)

    @classmethod
    def holds(cls, expression: str, variables: Mapping[str, Any]) -> bool:
        result = cls.program(expression).evaluate({name: celpy.json_to_cel(v) for name, v in variables.items()})
        if not isinstance(result, celpy.celtypes.BoolType):
            raise ValueError(f"condition {expression!r} did not evaluate to a boolean: {result!r}")
        return bool(result)


@dataclass(frozen=True)
class IdentityProvider:
    """A Workload Identity provider: which tokens it admits and the principals it makes of them."""

    pool: str
    condition: str
    mapping: Mapping[str, str]

    def principals(self, claims: Mapping[str, Any]) -> frozenset[str]:
        """The member strings a token with ``claims`` is, or nothing when the provider refuses it."""
        if not _Cel.holds(self.condition, {"assertion": claims}):
            return frozenset()
        attributes = {name: _Cel.program(source).evaluate({"assertion": celpy.json_to_cel(claims)})
                      for name, source in self.mapping.items()}
        base = f"iam.googleapis.com/{self.pool}"
        found = {f"principal://{base}/subject/{attributes['google.subject']}"}
        found |= {f"principalSet://{base}/{name}/{value}" for name, value in attributes.items()
                  if name.startswith("attribute.")}
        return frozenset(found)


class AccessModel:
    """Every grant of one environment's stacks, and what they allow."""

    def __init__(self, bindings: Iterable[Binding], custom_roles: Mapping[str, frozenset[str]],
                 providers: Iterable[IdentityProvider] = ()) -> None:
        self.bindings = tuple(bindings)
        self.custom_roles = dict(custom_roles)
        self.providers = tuple(providers)

    @classmethod
    def from_stacks(cls, stacks: Mapping[str, Mapping[str, Any]], project_number: int | str) -> AccessModel:
        """Read the synthesized JSON (``cdk.tf.json``) of ``{stack name: json}``."""
        bindings, custom_roles, providers = [], {}, []
        for stack_name, stack in stacks.items():
            resolve = _References(stack, project_number)
            resources = stack.get("resource", {})
            for type_, bodies in resources.items():
                if _IAM_TYPE.match(type_) and type_ not in _POLICY_OF:
                    raise ValueError(f"{stack_name}: the access model cannot evaluate {type_} grants")
            for type_, policy_of in _POLICY_OF.items():
                for logical_id, raw in resources.get(type_, {}).items():
                    body = resolve(raw)
                    condition = body.get("condition") or {}
                    bindings.append(Binding(
                        stack=stack_name, address=f"{type_}.{logical_id}", policy=policy_of(body),
                        role=body["role"], member=body["member"],
                        condition=condition.get("expression"), condition_title=condition.get("title"),
                    ))
            for raw in resources.get("google_project_iam_custom_role", {}).values():
                body = resolve(raw)
                custom_roles[f"projects/{body['project']}/roles/{body['role_id']}"] = frozenset(body["permissions"])
            for raw in resources.get("google_iam_workload_identity_pool_provider", {}).values():
                body = resolve(raw)
                pool = f"projects/{project_number}/locations/global/workloadIdentityPools/" \
                       f"{body['workload_identity_pool_id']}"
                providers.append(IdentityProvider(pool, body["attribute_condition"], body["attribute_mapping"]))
        return cls(bindings, custom_roles, providers)

    def role_permissions(self, role: str) -> frozenset[str]:
        if role in self.custom_roles:
            return self.custom_roles[role]
        try:
            return predefined_roles()[role]
        except KeyError:
            raise KeyError(f"{role} is neither a predefined role nor a custom role of the stacks") from None

    def members(self) -> set[str]:
        return {binding.member for binding in self.bindings}

    def grants_to(self, *members: str) -> list[Binding]:
        return [binding for binding in self.bindings if binding.member in members]

    def permissions(self, members: str | Iterable[str], resource: Resource,
                    modified_roles: Iterable[str] = ()) -> frozenset[str]:
        """Every permission ``members`` hold on ``resource``.

        ``modified_roles`` is the request's ``modifiedGrantsByRole`` (the roles a
        ``setIamPolicy`` call adds or removes); empty for every other call.
        """
        members = {members} if isinstance(members, str) else set(members)
        variables = {
            "resource": {"name": resource.name, "type": resource.type, "service": resource.type.split("/")[0]},
            "api": {MODIFIED_GRANTS: sorted(modified_roles)},
        }
        held: set[str] = set()
        for binding in self.bindings:
            if binding.member in members and binding.policy in resource.policies and (
                binding.condition is None or _Cel.holds(binding.condition, variables)
            ):
                held |= self.role_permissions(binding.role)
        return frozenset(held)

    def allows(self, members: str | Iterable[str], permission: str, resource: Resource,
               modified_roles: Iterable[str] = ()) -> bool:
        return permission in self.permissions(members, resource, modified_roles)

    def principals(self, claims: Mapping[str, Any]) -> frozenset[str]:
        """What a federated token with ``claims`` is, across every provider of the stacks."""
        return frozenset().union(*(provider.principals(claims) for provider in self.providers))
