"""Properties every synthesized stack must have: no basic role, no key, no secret, hardened nodes, audit logs."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

BASIC_ROLES = re.compile(r"roles/(owner|editor|viewer)\b")
IAM_TYPES = re.compile(r"^google_\w+_iam_(member|binding|policy)$")


def _iam_grants(stack):
    """(resource type, role, member) of every IAM grant of ``stack``."""
    return [
        (type_, body["role"], body["member"])
        for type_, bodies in stack.json.get("resource", {}).items() if IAM_TYPES.match(type_)
        for body in bodies.values()
    ]


def test_no_basic_role_anywhere(all_stacks):
    for name, stack in all_stacks.items():
        # anywhere: grants, conditions, custom roles, outputs
        text = (stack.directory / "cdk.tf.json").read_text()
        assert not BASIC_ROLES.search(text), (name, BASIC_ROLES.search(text).group(0))
        for type_, role, _ in _iam_grants(stack):
            assert not BASIC_ROLES.fullmatch(role), (name, type_, role)


def test_no_service_account_key_and_no_authoritative_iam(all_stacks):
    for name, stack in all_stacks.items():
        types = set(stack.json.get("resource", {})) | set(stack.json.get("data", {}))
        assert not {t for t in types if "service_account_key" in t or "hmac_key" in t}, name
        assert not {t for t in types if t.endswith(("_iam_policy", "_iam_binding"))}, name
        # the provider authenticates from the environment (ADC, or the CI's federated token)
        for provider in stack.json["provider"]["google"]:
            assert not {"credentials", "access_token"} & set(provider), name


def test_no_secret_value_in_any_synthesized_file(synth_dir, secret_sentinel):
    """The session's synth ran with a sentinel in every key and credential variable."""
    sentinel, _ = secret_sentinel
    checked = 0
    for path in sorted(Path(synth_dir).rglob("*")):
        if not path.is_file():
            continue
        assert sentinel.encode() not in path.read_bytes(), path
        if path.suffix == ".zip":  # compressed: look inside
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    assert sentinel.encode() not in archive.read(member), f"{path}!{member}"
        checked += 1
    assert checked >= 8  # four stacks' JSON, manifest, the artifacts


def test_no_secret_value_can_enter_state(all_stacks):
    for name, stack in all_stacks.items():
        # a version resource holds the value; a version data source reads it into state
        assert "google_secret_manager_secret_version" not in stack.json.get("resource", {}), name
        assert "google_secret_manager_secret_version" not in stack.json.get("data", {}), name
        assert "google_secret_manager_secret_version_access" not in stack.json.get("data", {}), name


def test_cluster_nodes_block_project_ssh_keys(stack):
    # private and shielded: test_processing.py; the VM's hardening: test_producer_vm.py
    gce = stack.one("google_dataproc_cluster")["cluster_config"]["gce_cluster_config"]
    assert gce["metadata"] == {"block-project-ssh-keys": "true"}


def test_data_access_is_audited(stack):
    env = stack.directory.name
    processing = f"serviceAccount:cryptopipe-{env}-processing@my-cryptopipe-{env}.iam.gserviceaccount.com"
    configs = {body["service"]: body["audit_log_config"] for body in
               stack.resources("google_project_iam_audit_config").values()}
    assert configs == {
        "storage.googleapis.com": [
            {"log_type": "ADMIN_READ"},
            # the stream's own reads are the pipeline working (and most of the volume)
            {"log_type": "DATA_READ", "exempted_members": [processing]},
            {"log_type": "DATA_WRITE"},
        ],
        "secretmanager.googleapis.com": [{"log_type": "ADMIN_READ"}, {"log_type": "DATA_READ"}],
    }

