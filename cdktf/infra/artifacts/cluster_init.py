"""The Dataproc nodes' initialization action: the job's dependencies, as synthesized.

Dataproc runs it on every node (master and workers) when the node is created. It
downloads the job's dependency artifact (the wheels of locks/cluster.txt, under
``artifacts/job/``, which the processing account may read), checks its sha256 and
installs it with install_artifact.sh, the producer VM's install step, into a venv
of its own on the image's Python 3.11 (``--system-site-packages``: the image's
packages stay as they are and visible). The job's Spark properties run its driver
and executors on that venv. A change of the dependencies is a new artifact, so a
new script and a new cluster; a change of the job's code is not (python_file_uris).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from infra.artifacts.boot import boot_script

BODY = Path(__file__).with_name("cluster_init.sh")
#: Dataproc 2.2's Python (Miniconda's default environment), which runs Spark's Python.
IMAGE_PYTHON = "/opt/conda/default/bin/python"
VENV = "/opt/cryptopipe/venv"
#: What ``spark.pyspark.python`` and ``spark.pyspark.driver.python`` name.
VENV_PYTHON = f"{VENV}/bin/python"


def cluster_init_script(artifact_uri: str, artifact_sha256: str) -> str:
    """The initialization action that installs the artifact at ``artifact_uri`` if its sha256 is ``artifact_sha256``."""
    return boot_script("infra/artifacts/cluster_init.py", BODY, {
        "ARTIFACT_URI": artifact_uri,
        "ARTIFACT_SHA256": artifact_sha256,
        "VENV": VENV,
        "IMAGE_PYTHON": IMAGE_PYTHON,
    })


def script_name(script: str) -> str:
    """The object name's last part: the script's own hash, so a new script is a new object."""
    return f"cluster-init-{hashlib.sha256(script.encode()).hexdigest()[:16]}.sh"
