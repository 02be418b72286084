"""The boots' install step, run here as they run it: offline, from the session's synthesized artifacts.

The install script is taken out of the synthesized boot scripts (``INSTALL_ARTIFACT_SH``)
and run the way their bodies run it, ``bash -c "$INSTALL_ARTIFACT_SH" install_artifact.sh
ARTIFACT SHA256 VENV PYTHON``, with the sha256 the boot script carries, into a new venv,
with the package index unreachable (and pip's own configuration ignored by the script).
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.artifacts.boot import INSTALL_SCRIPT
from infra.artifacts.wheelhouse import CLUSTER_LOCK, PRODUCER_LOCK, read_lock

ROOT = Path(__file__).resolve().parents[2]
#: Nothing listens there: an install that tried the index would fail.
UNREACHABLE_INDEX = "http://127.0.0.1:9/"


def _values(script: str) -> dict[str, str]:
    """The values a synthesized boot script carries before its body, as the shell reads them."""
    words = shlex.split(script.split("\n# Body of", 1)[0], comments=True)
    return dict(word.split("=", 1) for word in words)


def _object(stack, prefix: str) -> dict:
    return stack.named("google_storage_bucket_object", "name", lambda name: name.startswith(prefix))


def _boot(stacks, workload: str) -> tuple[Path, dict[str, str]]:
    """(the synthesized artifact, the values of the boot script that installs it) of ``workload``."""
    stack = stacks["dev"]
    if workload == "producer":
        artifact = _object(stack, "artifacts/producer/")
        script = stack.one("google_compute_instance")["metadata_startup_script"]
    else:
        artifact = _object(stack, "artifacts/job/dependencies-")
        script = _object(stack, "artifacts/job/cluster-init-")["content"]
    return stack.directory / artifact["source"], _values(script)


def _install(values: dict[str, str], artifact: Path, venv: Path, *venv_options: str, tmp: Path):
    """Run the install step as the boot does, offline."""
    tmp.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp), "TMPDIR": str(tmp), "PIP_INDEX_URL": UNREACHABLE_INDEX}
    return subprocess.run(
        ["bash", "-c", values["INSTALL_ARTIFACT_SH"], "install_artifact.sh",
         str(artifact), values["ARTIFACT_SHA256"], str(venv), sys.executable, *venv_options],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def _run(venv: Path, code: str, cwd: Path, pythonpath: str = "") -> subprocess.CompletedProcess:
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": pythonpath}
    return subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


_VENV_DISTRIBUTIONS = """
import importlib.metadata, json, sysconfig
print(json.dumps(sorted(f"{d.metadata['Name'].lower().replace('_', '-')}=={d.version}"
                        for d in importlib.metadata.distributions(path=[sysconfig.get_paths()["purelib"]]))))
"""


def _installed(venv: Path, cwd: Path) -> set[str]:
    """``name==version`` of what the venv itself holds, less the pip and setuptools venv puts in every venv."""
    distributions = json.loads(_run(venv, _VENV_DISTRIBUTIONS, cwd=cwd).stdout)
    return {d for d in distributions if not d.startswith(("pip==", "setuptools=="))}


def test_boot_scripts_carry_the_install_script_verbatim_and_the_artifacts_sha256(stacks):
    for workload in ("producer", "cluster"):
        artifact, values = _boot(stacks, workload)
        assert values["INSTALL_ARTIFACT_SH"] == INSTALL_SCRIPT.read_text()
        assert values["ARTIFACT_SHA256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()


@pytest.mark.slow
def test_vm_install_step_runs_offline_from_the_synthesized_artifact(stacks, tmp_path):
    synthesized, values = _boot(stacks, "producer")
    artifact = shutil.copy(synthesized, tmp_path / synthesized.name)
    venv = tmp_path / "venv"

    result = _install(values, artifact, venv, tmp=tmp_path / "tmp")
    assert result.returncode == 0, result.stderr

    imported = _run(venv, "import producer.__main__; print(producer.__main__.__file__)", cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(str(venv))
    locked = {str(pin) for pin in read_lock(ROOT / PRODUCER_LOCK.path)}
    assert _installed(venv, tmp_path) == locked | {"cryptopipe==0.1.0"}


@pytest.mark.slow
def test_cluster_install_step_runs_offline_beside_the_images_packages(stacks, tmp_path):
    synthesized, values = _boot(stacks, "cluster")
    artifact = shutil.copy(synthesized, tmp_path / synthesized.name)
    venv = tmp_path / "venv"

    result = _install(values, artifact, venv, "--system-site-packages", tmp=tmp_path / "tmp")
    assert result.returncode == 0, result.stderr

    # The job's own code comes from its zip (python_file_uris), its dependencies from the venv.
    job_zip = stacks["dev"].directory / _object(stacks["dev"], "artifacts/job/cryptopipe-job-")["source"]
    code = "import core.schema, google.cloud.bigquery, pydantic; print(google.cloud.bigquery.__file__)"
    imported = _run(venv, code, cwd=tmp_path, pythonpath=str(job_zip))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(str(venv))
    assert _installed(venv, tmp_path) == {str(pin) for pin in read_lock(ROOT / CLUSTER_LOCK.path)}


@pytest.mark.parametrize("workload", ["producer", "cluster"])
def test_a_tampered_artifact_is_refused_before_anything_is_installed(stacks, tmp_path, workload):
    synthesized, values = _boot(stacks, workload)
    artifact = tmp_path / synthesized.name
    artifact.write_bytes(synthesized.read_bytes() + b"\0")
    venv, tmp = tmp_path / "venv", tmp_path / "tmp"

    result = _install(values, artifact, venv, tmp=tmp)
    assert result.returncode == 1
    assert f"refusing {artifact}" in result.stderr
    assert not venv.exists()
    assert not list(tmp.iterdir())  # not even unpacked


def test_install_script_passes_shellcheck(shellcheck):
    result = subprocess.run([shellcheck, "--severity=style", str(INSTALL_SCRIPT)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
