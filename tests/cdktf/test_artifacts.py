"""A code change is a rollout of exactly what runs that code, and nothing else."""

from __future__ import annotations

import json
import re
import tarfile
import zipfile

import pytest

from infra.environments import environment, load_environments


def _synth_dev(source_root, outdir):
    import main

    (dev,) = [cfg for cfg in load_environments() if cfg.name == "dev"]
    directory = main.synth(outdir=str(outdir), environments=[dev], source_root=source_root) / "stacks" / "dev"
    return json.loads((directory / "cdk.tf.json").read_text()), directory


def _changed(before, after):
    """Construct paths (``dev/producer/vm``) of the resources whose configuration differs."""

    def by_path(stack_json):
        return {
            body["//"]["metadata"]["path"]: {key: value for key, value in body.items() if key != "//"}
            for bodies in stack_json["resource"].values()
            for body in bodies.values()
        }

    old, new = by_path(before), by_path(after)
    assert old.keys() == new.keys()
    return {path for path in old if old[path] != new[path]}


def test_synth_twice_is_identical(source_copy, tmp_path):
    first, first_dir = _synth_dev(source_copy, tmp_path / "a")
    second, second_dir = _synth_dev(source_copy, tmp_path / "b")
    assert first == second
    assets = sorted(p.relative_to(first_dir) for p in (first_dir / "assets").rglob("*") if p.is_file())
    assert assets == sorted(p.relative_to(second_dir) for p in (second_dir / "assets").rglob("*") if p.is_file())
    for asset in assets:
        assert (first_dir / asset).read_bytes() == (second_dir / asset).read_bytes()


PRODUCER_ROLLOUT = {"dev/artifacts/producer/object", "dev/producer/vm"}
#: The job's objects, and what runs them: the stream's job, or scheduled mode's workflow (dev's mode).
JOB_ROLLOUT = {"dev/artifacts/job-zip/object", "dev/artifacts/job-entry/object",
               {"stream": "dev/processing/stream", "scheduled": "dev/schedule/workflow"}[
                   {cfg.name: cfg for cfg in load_environments()}["dev"].processing]}


@pytest.mark.parametrize(
    ("changed_file", "rolled_out"),
    [
        ("producer/__init__.py", PRODUCER_ROLLOUT),
        ("jobs/__init__.py", JOB_ROLLOUT),
        ("core/schema.py", PRODUCER_ROLLOUT | JOB_ROLLOUT),
    ],
)
def test_code_change_rolls_out_only_its_workload(source_copy, tmp_path, changed_file, rolled_out):
    before, _ = _synth_dev(source_copy, tmp_path / "before")
    with (source_copy / changed_file).open("a") as file:
        file.write("\n# a code change\n")
    after, _ = _synth_dev(source_copy, tmp_path / "after")
    assert _changed(before, after) == rolled_out


def test_uploaded_object_is_the_built_archive(stacks):
    stack = stacks["dev"]
    for obj in stack.resources("google_storage_bucket_object").values():
        if "content" in obj:  # the cluster's init action, generated per environment (test_processing.py)
            assert obj["name"].startswith("artifacts/job/cluster-init-")
            continue
        source = stack.directory / obj["source"]
        assert source.is_file(), obj["source"]
        assert obj["source"].endswith(obj["name"].rsplit("/", 1)[1]) or obj["name"].endswith(".py")
        if source.suffix == ".zip":
            with zipfile.ZipFile(source) as zipped:
                assert zipped.testzip() is None
        elif source.suffix == ".tar":
            with tarfile.open(source) as bundle:
                assert "requirements.txt" in bundle.getnames()


def test_a_dependency_change_replaces_the_cluster_not_the_job_code(source_copy, tmp_path):
    before, _ = _synth_dev(source_copy, tmp_path / "before")
    lock = source_copy / "locks" / "cluster.txt"  # one wheel less (the job needs it: this is only a diff)
    lock.write_text(re.sub(r"\nsix==.*?(?=\n[a-z])", "", lock.read_text(), flags=re.DOTALL))
    after, _ = _synth_dev(source_copy, tmp_path / "after")
    # The job follows the cluster through its replace_triggered_by (test_processing.py).
    assert _changed(before, after) == {"dev/artifacts/job-dependencies/object", "dev/artifacts/cluster-init/object",
                                       "dev/processing/cluster"}


def test_kms_key_encrypts_bucket_dataset_and_disks(source_copy, tmp_path):
    import main

    key = "projects/my-keys-1/locations/us-central1/keyRings/cryptopipe/cryptoKeys/data"
    cfg = environment("dev", {"project": "my-project-1", "state_bucket": "my-tfstate-1", "kms_key": key})
    directory = main.synth(outdir=str(tmp_path), environments=[cfg], source_root=source_copy) / "stacks" / "dev"
    stack = json.loads((directory / "cdk.tf.json").read_text())
    resources = stack["resource"]
    buckets = resources["google_storage_bucket"].values()
    (dataset,) = resources["google_bigquery_dataset"].values()
    (cluster,) = resources["google_dataproc_cluster"].values()
    (vm,) = resources["google_compute_instance"].values()
    assert [bucket["encryption"] for bucket in buckets] == [{"default_kms_key_name": key}] * 2  # data, temp
    assert dataset["default_encryption_configuration"] == {"kms_key_name": key}
    for table in resources["google_bigquery_table"].values():
        if "view" not in table:  # a view stores nothing
            assert table["encryption_configuration"] == {"kms_key_name": key}
    assert cluster["cluster_config"]["encryption_config"] == {"kms_key_name": key}
    assert vm["boot_disk"]["kms_key_self_link"] == key
    (spool,) = resources["google_compute_disk"].values()
    assert spool["disk_encryption_key"] == {"kms_key_self_link": key}
    key_grants = resources["google_kms_crypto_key_iam_member"]
    assert {(g["crypto_key_id"], g["role"]) for g in key_grants.values()} == {
        (key, "roles/cloudkms.cryptoKeyEncrypterDecrypter")}
    (project,) = stack["data"]["google_project"].values()
    number = "${data.google_project." + project["//"]["metadata"]["uniqueId"] + ".number}"
    members = {g["member"] for g in key_grants.values()}
    # the Cloud Storage, BigQuery, Compute Engine (disks) and Dataproc service agents
    assert len(members) == 4
    assert {f"serviceAccount:service-{number}@compute-system.iam.gserviceaccount.com",
            f"serviceAccount:service-{number}@dataproc-accounts.iam.gserviceaccount.com"} <= members
    # the disks and the cluster wait until the agents' use of the key has propagated (infra/stacks/waits.py)
    disk_grants = {f"google_kms_crypto_key_iam_member.{name}" for name, g in key_grants.items()
                   if "compute-system" in g["member"] or "dataproc-accounts" in g["member"]}
    for waiting in (cluster, vm, spool):
        (wait,) = [d for d in waiting["depends_on"] if d.startswith("time_sleep.")]
        assert disk_grants <= set(resources["time_sleep"][wait.split(".", 1)[1]]["depends_on"])
