"""The producer VM: private, shielded, its own account, running exactly the uploaded artifact."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
from urllib.parse import quote

from infra.artifacts.boot import INSTALL_SCRIPT
from infra.environments import load_environments

CONFIGS = {cfg.name: cfg for cfg in load_environments()}


def _producer_object(stack):
    return stack.named("google_storage_bucket_object", "name", lambda name: name.startswith("artifacts/producer/"))


def _header(script):
    """The values infra/stacks/producer_vm.py put before the fixed body, as the shell reads them."""
    words = shlex.split(script.split("\n# Body of", 1)[0], comments=True)
    return dict(word.split("=", 1) for word in words)


def _environment(script):
    return dict(line.split("=", 1) for line in _header(script)["PRODUCER_ENV"].splitlines())


def test_vm_has_no_public_ip_is_shielded_with_os_login_and_no_project_ssh_keys(stack):
    vm = stack.one("google_compute_instance")
    (nic,) = vm["network_interface"]
    assert "access_config" not in nic
    assert nic["subnetwork"] == stack.ref_one("google_compute_subnetwork", "id")
    assert vm["shielded_instance_config"] == {
        "enable_integrity_monitoring": True, "enable_secure_boot": True, "enable_vtpm": True}
    # exactly: no serial-port-enable, no ssh-keys, no key material in metadata; the console's
    # output goes to Cloud Logging (the producer-down alert counts its poll lines there)
    assert vm["metadata"] == {"block-project-ssh-keys": "TRUE", "enable-oslogin": "TRUE",
                              "serial-port-logging-enable": "TRUE"}


def test_vm_runs_as_its_own_account(stack):
    vm = stack.one("google_compute_instance")
    env = stack.directory.name
    # made by bootstrap-<env> (test_access.py)
    assert vm["service_account"]["email"] == f"cryptopipe-{env}-producer@my-cryptopipe-{env}.iam.gserviceaccount.com"


def test_nat_gives_the_private_subnet_egress(stack):
    nat = stack.one("google_compute_router_nat")
    subnet = stack.one("google_compute_subnetwork")
    assert stack.address("google_compute_router_nat", nat) in stack.one("google_compute_instance")["depends_on"]
    assert nat["source_subnetwork_ip_ranges_to_nat"] == "LIST_OF_SUBNETWORKS"
    assert nat["subnetwork"][0]["name"] == stack.ref("google_compute_subnetwork", subnet, "id")
    assert subnet["private_ip_google_access"] is True


def test_startup_script_installs_exactly_the_uploaded_artifact(stack):
    vm = stack.one("google_compute_instance")
    obj = _producer_object(stack)
    bucket = stack.bucket()["name"]
    script = vm["metadata_startup_script"]
    url = f"https://storage.googleapis.com/storage/v1/b/{bucket}/o/{quote(obj['name'], safe='')}?alt=media"
    assert _header(script)["ARTIFACT_URL"] == url
    assert _header(script)["ARTIFACT_FILE"] == obj["name"].rsplit("/", 1)[1]
    # Checked before anything is installed, by the install step the tests run offline (test_install_artifact.py).
    uploaded = (stack.directory / obj["source"]).read_bytes()
    assert _header(script)["ARTIFACT_SHA256"] == hashlib.sha256(uploaded).hexdigest()
    assert _header(script)["INSTALL_ARTIFACT_SH"] == INSTALL_SCRIPT.read_text()
    assert '\n    install_artifact "$home/$ARTIFACT_FILE" "$ARTIFACT_SHA256" "$venv" python3\n' in script
    assert "ExecStart=/opt/cryptopipe/venv/bin/python -m producer" in script
    assert "Restart=always" in script
    assert stack.address("google_storage_bucket_object", obj) in vm["depends_on"]


def test_startup_script_carries_the_producer_configuration(stack):
    env = stack.directory.name
    cfg = CONFIGS[env]
    script = stack.one("google_compute_instance")["metadata_startup_script"]
    bucket = stack.bucket()["name"]
    assert _environment(script) == {
        "CRYPTOPIPE__PRODUCER__API_PLAN": cfg.api_plan,
        "CRYPTOPIPE__PRODUCER__VS_CURRENCY": cfg.vs_currency,
        "CRYPTOPIPE__PRODUCER__TOP_N": str(cfg.top_n),
        "CRYPTOPIPE__PRODUCER__INTERVAL_SECONDS": str(cfg.interval_seconds),
        "CRYPTOPIPE__PRODUCER__REQUESTS_PER_MINUTE": str(cfg.requests_per_minute),
        "CRYPTOPIPE__PRODUCER__LANDING_URI": f"gs://{bucket}/landing",
        "CRYPTOPIPE__PRODUCER__SPOOL_DIR": "/var/lib/cryptopipe/spool",
        "CRYPTOPIPE__PRODUCER__API_KEY_SECRET":
            f"projects/{cfg.project}/secrets/cryptopipe-{env}-producer-api-key/versions/latest",
    }


def test_the_spool_is_on_its_own_disk_that_outlives_the_vm(stack):
    vm = stack.one("google_compute_instance")
    disk = stack.one("google_compute_disk")
    (attached,) = vm["attached_disk"]
    assert attached["source"] == stack.ref_one("google_compute_disk", "id")
    assert (disk["zone"], disk["type"], disk["size"]) == (vm["zone"], "pd-balanced", 10)
    assert "disk_encryption_key" not in disk  # CMEK only with kms_key (test_artifacts.py)
    # The startup script mounts that device where the producer's spool lives, before the service starts.
    script = vm["metadata_startup_script"]
    header = _header(script)
    assert header["SPOOL_DEVICE"] == f"/dev/disk/by-id/google-{attached['device_name']}"
    assert _environment(script)["CRYPTOPIPE__PRODUCER__SPOOL_DIR"].startswith(header["STATE_DIR"] + "/")
    assert script.index("\nmount_spool_disk\n") < script.index("systemctl restart cryptopipe-producer.service")
    assert f"RequiresMountsFor={header['STATE_DIR']}" in script


def test_startup_script_passes_shellcheck(stack, tmp_path, shellcheck):
    script = tmp_path / "startup.sh"
    script.write_text(stack.one("google_compute_instance")["metadata_startup_script"])
    result = subprocess.run([shellcheck, "--severity=style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_the_api_key_is_never_in_the_stack(stack, bootstrap_stacks):
    assert not stack.resources("google_secret_manager_secret_version")
    assert not stack.resources("google_secret_manager_secret")  # the bootstrap's, with a version before any VM
    secret = bootstrap_stacks[stack.directory.name].one("google_secret_manager_secret")
    assert secret["replication"] == {"user_managed": {"replicas": [{"location": CONFIGS[stack.directory.name].region}]}}
    (grant,) = stack.resources("google_secret_manager_secret_iam_member").values()
    assert grant["secret_id"] == secret["secret_id"]
    assert "API_KEY=" not in stack.one("google_compute_instance")["metadata_startup_script"]


def test_ssh_only_through_iap(stack):
    rules = {r["name"]: r for r in stack.resources("google_compute_firewall").values()}
    env = stack.directory.name
    ssh = rules[f"cryptopipe-{env}-network-allow-iap-ssh"]
    assert ssh["source_ranges"] == ["35.235.240.0/20"]
    assert ssh["target_tags"] == stack.one("google_compute_instance")["tags"]
    internal = rules[f"cryptopipe-{env}-network-allow-processing-internal"]
    assert "source_ranges" not in internal
    assert internal["source_tags"] == internal["target_tags"] == [f"cryptopipe-{env}-processing-node"]
