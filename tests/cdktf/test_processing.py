"""Dataproc: private cluster on a pinned image, and the job running the uploaded artifacts."""

from __future__ import annotations

import tomllib
from pathlib import Path

from config import load_environments

ROOT = Path(__file__).resolve().parents[2]

CONFIGS = {cfg.name: cfg for cfg in load_environments()}


def _object_uri(stack, prefix):
    name = stack.named("google_storage_bucket_object", "name", lambda name: name.startswith(prefix))["name"]
    return f"gs://{stack.one('google_storage_bucket')['name']}/{name}"


def test_cluster_has_no_public_ip_and_its_own_account(stack):
    gce = stack.one("google_dataproc_cluster")["cluster_config"]["gce_cluster_config"]
    account = stack.named("google_service_account", "account_id", lambda account_id: account_id.endswith("-processing"))
    assert gce["internal_ip_only"] is True
    assert gce["service_account"] == stack.ref("google_service_account", account, "email")
    assert gce["subnetwork"] == stack.ref_one("google_compute_subnetwork", "id")
    assert gce["shielded_instance_config"] == {
        "enable_integrity_monitoring": True, "enable_secure_boot": True, "enable_vtpm": True}


def test_cluster_image_is_pinned_to_spark_3_5(stack):
    software = stack.one("google_dataproc_cluster")["cluster_config"]["software_config"]
    assert software["image_version"] in ("2.2-debian12", "2.3-debian12")


def test_cluster_installs_the_pinned_core_dependencies(stack):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    expected = [*project["dependencies"], *project.get("optional-dependencies", {}).get("dataproc", [])]
    properties = stack.one("google_dataproc_cluster")["cluster_config"]["software_config"]["override_properties"]
    packages = properties["dataproc:pip.packages"].split(",")
    assert packages == [p.replace(" ", "") for p in expected]
    assert all("==" in p for p in packages)
    assert any(p.startswith("pydantic==") for p in packages)
    # The image has Spark and the connectors, not the client the BigQuery loader imports.
    assert any(p.startswith("google-cloud-bigquery==") for p in packages)


def test_dev_is_single_node_and_prod_has_workers(stacks):
    dev = stacks["dev"].one("google_dataproc_cluster")["cluster_config"]
    prod = stacks["prod"].one("google_dataproc_cluster")["cluster_config"]
    assert dev["software_config"]["override_properties"]["dataproc:dataproc.allow.zero.workers"] == "true"
    assert "worker_config" not in dev
    assert prod["worker_config"]["num_instances"] == CONFIGS["prod"].cluster_worker_count >= 2


def test_cluster_stages_into_the_environments_bucket(stack):
    config = stack.one("google_dataproc_cluster")["cluster_config"]
    bucket = stack.one("google_storage_bucket")["name"]
    assert config["staging_bucket"] == config["temp_bucket"] == bucket


def test_job_runs_the_uploaded_job_artifacts(stack):
    pyspark = stack.one("google_dataproc_job")["pyspark_config"]
    assert pyspark["main_python_file_uri"] == _object_uri(stack, "artifacts/job/stream-")
    assert pyspark["python_file_uris"] == [_object_uri(stack, "artifacts/job/cryptopipe-job-")]


def test_job_arguments_carry_the_bucket_and_table(stack):
    env = stack.directory.name
    cfg = CONFIGS[env]
    bucket = f"gs://{stack.one('google_storage_bucket')['name']}"
    args = stack.one("google_dataproc_job")["pyspark_config"]["args"]
    assert dict(zip(args[::2], args[1::2], strict=True)) == {
        "--landing": f"{bucket}/landing",
        "--archive": f"{bucket}/archive",
        "--checkpoint": f"{bucket}/checkpoints/market_ticks",
        "--staging": f"{bucket}/staging",
        "--warehouse": f"bigquery://{cfg.project}.cryptopipe_{env}",
        "--trigger-seconds": str(cfg.trigger_seconds),
        "--max-files-per-trigger": str(cfg.max_files_per_trigger),
        "--watermark": cfg.watermark,
    }


def test_job_restarts_its_driver_and_is_cancelled_on_replace(stack):
    job = stack.one("google_dataproc_job")
    cluster = stack.one("google_dataproc_cluster")
    assert job["force_delete"] is True
    assert job["scheduling"]["max_failures_per_hour"] >= 1
    assert job["placement"] == {"cluster_name": stack.ref_one("google_dataproc_cluster", "name")}
    # a bare address: "${...}" here is invalid Terraform (terraform-cdk#3196)
    assert job["lifecycle"]["replace_triggered_by"] == [stack.address("google_dataproc_cluster", cluster)]


def test_cluster_waits_for_egress_firewall_and_grants(stack):
    depends_on = set(stack.one("google_dataproc_cluster")["depends_on"])
    needed = {*stack.addresses("google_compute_router_nat"), *stack.addresses("google_compute_firewall"),
              *stack.addresses("google_project_iam_member")}
    assert needed <= depends_on  # pip.packages needs NAT at creation
