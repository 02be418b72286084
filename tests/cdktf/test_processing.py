"""Dataproc: private cluster on a pinned image, and the job running the uploaded artifacts."""

from __future__ import annotations

import hashlib
import shlex
import subprocess

import pytest

from infra.artifacts.boot import INSTALL_SCRIPT
from infra.environments import load_environments

from .conftest import ENVIRONMENTS, MODES

CONFIGS = {cfg.name: cfg for cfg in load_environments()}


@pytest.fixture(params=[(env, mode) for env in ENVIRONMENTS for mode in MODES], ids="-".join)
def each_mode(request, stacks_in_mode):
    """(pipeline stack, config) of each environment in each processing mode: the job is the same in both,
    a ``google_dataproc_job`` streaming or what the workflow submits each run."""
    stack, _, cfg = stacks_in_mode[request.param]
    return stack, cfg


def _object_uri(stack, prefix):
    name = stack.named("google_storage_bucket_object", "name", lambda name: name.startswith(prefix))["name"]
    return f"gs://{stack.bucket()['name']}/{name}"


def test_cluster_has_no_public_ip_and_its_own_account(stack):
    gce = stack.one("google_dataproc_cluster")["cluster_config"]["gce_cluster_config"]
    env = stack.directory.name
    assert gce["internal_ip_only"] is True
    # made by bootstrap-<env> (test_access.py)
    assert gce["service_account"] == f"cryptopipe-{env}-processing@my-cryptopipe-{env}.iam.gserviceaccount.com"
    assert gce["subnetwork"] == stack.ref_one("google_compute_subnetwork", "id")
    assert gce["shielded_instance_config"] == {
        "enable_integrity_monitoring": True, "enable_secure_boot": True, "enable_vtpm": True}


def test_cluster_image_is_pinned_to_spark_3_5(stack):
    software = stack.one("google_dataproc_cluster")["cluster_config"]["software_config"]
    assert software["image_version"] in ("2.2-debian12", "2.3-debian12")


def _object(stack, prefix):
    return stack.named("google_storage_bucket_object", "name", lambda name: name.startswith(prefix))


def _init_action(stack):
    return _object(stack, "artifacts/job/cluster-init-")


def _values(script):
    """The values the init action carries before its body, as the shell reads them."""
    words = shlex.split(script.split("\n# Body of", 1)[0], comments=True)
    return dict(word.split("=", 1) for word in words)


def test_cluster_installs_the_locked_dependencies_as_synthesized(stack):
    cluster = stack.one("google_dataproc_cluster")
    config = cluster["cluster_config"]
    # Nothing from the package index at boot: the image's packages plus the uploaded, hashed wheelhouse.
    assert not [p for p in config["software_config"]["override_properties"] if p.startswith("dataproc:pip.")]
    init = _init_action(stack)
    dependencies = _object(stack, "artifacts/job/dependencies-")
    assert config["initialization_action"] == [{"script": _object_uri(stack, "artifacts/job/cluster-init-")}]
    values = _values(init["content"])
    assert values["ARTIFACT_URI"] == _object_uri(stack, "artifacts/job/dependencies-")
    uploaded = (stack.directory / dependencies["source"]).read_bytes()
    assert values["ARTIFACT_SHA256"] == hashlib.sha256(uploaded).hexdigest()
    assert values["INSTALL_ARTIFACT_SH"] == INSTALL_SCRIPT.read_text()  # the VM's install step too
    assert '\ninstall_artifact "$artifact" "$ARTIFACT_SHA256" "$VENV" "$IMAGE_PYTHON" --system-site-packages\n' \
        in init["content"]
    # Named by its content: new dependencies are a new script, so a new cluster (and so a new job).
    assert init["name"].endswith(f"-{hashlib.sha256(init['content'].encode()).hexdigest()[:16]}.sh")
    assert {stack.address("google_storage_bucket_object", init),
            stack.address("google_storage_bucket_object", dependencies)} <= set(cluster["depends_on"])


def test_job_runs_on_the_venv_of_the_init_action(each_mode):
    stack, _ = each_mode
    venv_python = f"{_values(_init_action(stack)['content'])['VENV']}/bin/python"
    properties = stack.pyspark()["properties"]
    assert {k: v for k, v in properties.items() if k.startswith("spark.pyspark.")} == {
        "spark.pyspark.python": venv_python, "spark.pyspark.driver.python": venv_python}


def test_the_streams_event_log_rolls_so_the_temp_bucket_can_age_it_out(each_mode):
    stack, _ = each_mode
    properties = stack.pyspark()["properties"]
    assert properties["spark.eventLog.rolling.enabled"] == "true"
    assert properties["spark.eventLog.rolling.maxFileSize"] == "128m"


def test_init_action_passes_shellcheck(stack, tmp_path, shellcheck):
    script = tmp_path / "init.sh"
    script.write_text(_init_action(stack)["content"])
    result = subprocess.run([shellcheck, "--severity=style", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_dev_is_single_node_and_prod_has_workers(stacks):
    dev = stacks["dev"].one("google_dataproc_cluster")["cluster_config"]
    prod = stacks["prod"].one("google_dataproc_cluster")["cluster_config"]
    assert dev["software_config"]["override_properties"]["dataproc:dataproc.allow.zero.workers"] == "true"
    assert "worker_config" not in dev
    assert prod["worker_config"]["num_instances"] == CONFIGS["prod"].cluster_worker_count >= 2


def test_cluster_stages_into_the_data_bucket_and_keeps_temp_data_apart(stack):
    config = stack.one("google_dataproc_cluster")["cluster_config"]
    assert config["staging_bucket"] == stack.bucket()["name"]
    assert config["temp_bucket"] == stack.bucket("temp")["name"]  # test_storage.py: no copies, ages out


def test_job_runs_the_uploaded_job_artifacts(each_mode):
    stack, _ = each_mode
    pyspark = stack.pyspark()
    assert pyspark["main_python_file_uri"] == _object_uri(stack, "artifacts/job/stream-")
    assert pyspark["python_file_uris"] == [_object_uri(stack, "artifacts/job/cryptopipe-job-")]


def test_job_arguments_carry_the_bucket_and_table(each_mode):
    stack, cfg = each_mode
    env = cfg.name
    bucket = f"gs://{stack.bucket()['name']}"
    args = stack.pyspark()["args"]
    # scheduled mode: the same job draining what has landed, then ending (docs/STREAM.md, "Scheduled mode")
    assert args[-1:] == (["--available-now"] if cfg.processing == "scheduled" else args[-1:])
    args = [arg for arg in args if arg != "--available-now"]
    assert dict(zip(args[::2], args[1::2], strict=True)) == {
        "--landing": f"{bucket}/landing",
        "--archive": f"{bucket}/archive",
        "--checkpoint": f"{bucket}/checkpoints/market_ticks",
        "--staging": f"{bucket}/staging",
        "--warehouse": f"bigquery://{cfg.project}.cryptopipe_{env}",
        **({} if cfg.processing == "scheduled" else {"--trigger-seconds": str(cfg.trigger_seconds)}),
        "--bigquery-write": "storage-write",
        "--max-files-per-trigger": str(cfg.max_files_per_trigger),
        "--watermark": cfg.watermark,
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_job_restarts_its_driver_and_is_cancelled_on_replace(stacks_in_mode, env):
    stack, _, _ = stacks_in_mode[env, "stream"]
    job = stack.one("google_dataproc_job")
    cluster = stack.one("google_dataproc_cluster")
    assert job["force_delete"] is True
    assert job["scheduling"]["max_failures_per_hour"] >= 1
    assert job["placement"] == {"cluster_name": stack.ref_one("google_dataproc_cluster", "name")}
    # A bare address ("${...}" here is invalid Terraform, terraform-cdk#3196) of the cluster's id:
    # unknown when the cluster is replaced, unchanged by an in-place update (workers, labels), so
    # only a replacement restarts the stream. Naming the resource would restart it on every update.
    assert job["lifecycle"]["replace_triggered_by"] == [f"{stack.address('google_dataproc_cluster', cluster)}.id"]


def test_cluster_waits_for_egress_firewall_and_its_grants_propagation(stack):
    depends_on = set(stack.one("google_dataproc_cluster")["depends_on"])
    assert {*stack.addresses("google_compute_router_nat"), *stack.addresses("google_compute_firewall")} <= depends_on
    # the nodes reach Google APIs and read their init action's artifact at creation, once: after every
    # grant of the processing account has propagated (infra/stacks/waits.py; tests/cdktf/test_first_deploy.py walks it)
    (wait,) = [d for d in depends_on if d.startswith("time_sleep.")]
    waited = stack.resources("time_sleep")[wait.split(".", 1)[1]]
    processing = f"serviceAccount:{stack.one('google_dataproc_cluster')['cluster_config']['gce_cluster_config']['service_account']}"
    grants = {f"{type_}.{name}" for type_, bodies in stack.json["resource"].items() if type_.endswith("_iam_member")
              for name, body in bodies.items() if body["member"] == processing}
    assert grants and grants <= set(waited["depends_on"])
    assert waited["create_duration"] == "420s"


def test_the_dataproc_jobs_arguments_are_what_the_jobs_own_parser_accepts(each_mode):
    """cdktf/ never imports the job: the job's parser reading the synthesized arguments is the contract."""
    from jobs.config import parse_args

    stack, cfg = each_mode
    config = parse_args(stack.pyspark()["args"])
    assert config.available_now is (cfg.processing == "scheduled")
    assert (config.max_files_per_trigger, config.watermark) == (cfg.max_files_per_trigger, cfg.watermark)
    if cfg.processing == "stream":
        assert (config.bigquery_write, config.trigger_seconds) == ("storage-write", 10)
    assert type(config.target).__name__ == "StorageWriteWarehouse"
    assert config.warehouse == f"bigquery://{cfg.project}.{cfg.dataset_id}"
