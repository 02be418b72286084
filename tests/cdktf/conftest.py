"""Synthesize the CDKTF app once per session and read the stacks' JSON.

Importing the google provider bindings costs 12-13 s, synth itself well under a
second: every test reads the one synth (`stacks`), and the few that need another
source tree (artifact rollouts) reuse the already imported bindings.

The environments run in different processing modes (cdktf/environments.toml: dev
scheduled, prod stream), so the session's synth has one of each. The other mode of each,
``flipped``, is one more synth per family, shared by every test that needs an
environment in a given mode (`stacks_in_mode`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDKTF_DIR = ROOT / "cdktf"
# The app's package, cdktf/infra, and its entry points (main, ci), found the way
# `python cdktf/main.py` finds them: cdktf/ on the path.
if str(CDKTF_DIR) not in sys.path:
    sys.path.insert(0, str(CDKTF_DIR))

from infra.environments import PROCESSING_MODES as MODES  # noqa: E402, F401  (the tests of both modes import it)

ENVIRONMENTS = ("dev", "prod")
BOOTSTRAP_STACKS = tuple(f"bootstrap-{env}" for env in ENVIRONMENTS)

#: Set, during the session's synth, in every variable a CoinGecko key or a Google
#: credential could be read from; no synthesized file may contain it (test_security.py).
SECRET_SENTINEL = "sentinel-7c0ffee5-a-secret-value-that-must-never-be-synthesized"
SECRET_VARIABLES = (
    "CRYPTOPIPE__PRODUCER__API_KEY",  # what the producer reads its key from
    "COINGECKO_KEY",  # what the README pipes into Secret Manager
    "COINGECKO_API_KEY",
    "CG_API_KEY",
    "GOOGLE_CREDENTIALS",  # the google provider's credential variables
    "GOOGLE_OAUTH_ACCESS_TOKEN",
)


class Stack:
    """One synthesized stack: its JSON and lookups by resource type."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.json: dict[str, Any] = json.loads((directory / "cdk.tf.json").read_text())

    def resources(self, type_: str) -> dict[str, dict[str, Any]]:
        return self.json.get("resource", {}).get(type_, {})

    def one(self, type_: str) -> dict[str, Any]:
        found = self.resources(type_)
        assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
        return next(iter(found.values()))

    def address(self, type_: str, body: dict[str, Any]) -> str:
        """``type.logical_id`` of ``body``, as depends_on and interpolations name it."""
        return f"{type_}.{body['//']['metadata']['uniqueId']}"

    def addresses(self, type_: str) -> set[str]:
        return {self.address(type_, body) for body in self.resources(type_).values()}

    def ref(self, type_: str, body: dict[str, Any], attribute: str) -> str:
        """The interpolation another resource uses to read ``attribute`` of ``body``."""
        return "${" + self.address(type_, body) + "." + attribute + "}"

    def ref_one(self, type_: str, attribute: str) -> str:
        """:meth:`ref` of the stack's only resource of ``type_``."""
        return self.ref(type_, self.one(type_), attribute)

    def bucket(self, kind: str = "data") -> dict[str, Any]:
        """The pipeline's ``data`` bucket or the cluster's ``temp`` bucket."""
        marker = {"data": "-data-", "temp": "-processing-temp-"}[kind]
        return self.named("google_storage_bucket", "name", lambda name: marker in name)

    def named(self, type_: str, key: str, predicate) -> dict[str, Any]:
        """The one resource of ``type_`` whose ``key`` satisfies ``predicate``."""
        (body,) = [b for b in self.resources(type_).values() if predicate(b[key])]
        return body

    def counts(self) -> dict[str, int]:
        return {type_: len(bodies) for type_, bodies in self.json.get("resource", {}).items()}

    def workflow(self) -> dict[str, Any]:
        """Scheduled mode's workflow definition, as Workflows reads it: Terraform's ``$${`` is ``${``."""
        source = self.one("google_workflows_workflow")["source_contents"]
        return json.loads(source.replace("$${", "${").replace("%%{", "%{"))

    def workflow_step(self, name: str) -> dict[str, Any]:
        (step,) = [step[name] for step in self.workflow()["main"]["steps"] if name in step]
        return step

    def pyspark(self) -> dict[str, Any]:
        """The job's PySpark config in the provider's field names: the stream's ``google_dataproc_job``, or
        what scheduled mode's workflow submits each run."""
        jobs = self.resources("google_dataproc_job")
        if jobs:
            (job,) = jobs.values()
            return job["pyspark_config"]
        submitted = self.workflow_step("submit")["try"]["args"]["body"]["job"]["pysparkJob"]
        return {re.sub(r"[A-Z]", lambda m: "_" + m[0].lower(), key): value for key, value in submitted.items()}


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's app, synthesized once like `python cdktf/main.py` does, with a
    sentinel in every secret variable (restored afterwards: other suites read them)."""
    import main

    with pytest.MonkeyPatch.context() as patch:
        for name in SECRET_VARIABLES:
            patch.setenv(name, SECRET_SENTINEL)
        return main.synth(outdir=str(tmp_path_factory.mktemp("cdktf.out")))


# Both CDK Terrain synths in one process: one process takes one family, and the bindings' import
# (12-13 s) is most of a synth's cost.
_CDKTN_SYNTHS = """
import sys

import main
from infra.environments import load_environments

main.synth(outdir=sys.argv[1])
main.synth(outdir=sys.argv[2], environments=[cfg.other_mode() for cfg in load_environments()])
"""


@pytest.fixture(scope="session")
def cdktn_synth_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The app synthesized with the other CDK family, CDK Terrain (cdktf/infra/cdk.py), as configured and
    with every environment in its other processing mode, in a process of its own, a sentinel in every
    secret variable."""
    outdirs = (tmp_path_factory.mktemp("cdktn.out"), tmp_path_factory.mktemp("cdktn-flipped.out"))
    env = {**os.environ, "CRYPTOPIPE__DEPLOY__CDK_FAMILY": "cdktn", **dict.fromkeys(SECRET_VARIABLES, SECRET_SENTINEL)}
    result = subprocess.run([sys.executable, "-c", _CDKTN_SYNTHS, *map(str, outdirs)], cwd=CDKTF_DIR, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return outdirs


@pytest.fixture(scope="session")
def cdktn_synth_dir(cdktn_synth_dirs: tuple[Path, Path]) -> Path:
    """The app synthesized with CDK Terrain."""
    return cdktn_synth_dirs[0]


@pytest.fixture(scope="session")
def stacks(synth_dir: Path) -> dict[str, Stack]:
    return {env: Stack(synth_dir / "stacks" / env) for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def flipped_synth_dir(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every environment in its other processing mode: one more synth, in the session's process (after
    `synth_dir`, so the bindings are imported once)."""
    import main

    from infra.environments import load_environments

    return main.synth(outdir=str(tmp_path_factory.mktemp("cdktf-flipped.out")),
                      environments=[cfg.other_mode() for cfg in load_environments()])


@pytest.fixture(scope="session")
def cdktn_flipped_synth_dir(cdktn_synth_dirs: tuple[Path, Path]) -> Path:
    """The same with CDK Terrain."""
    return cdktn_synth_dirs[1]


@pytest.fixture(scope="session")
def flipped_stacks(flipped_synth_dir: Path) -> dict[str, Stack]:
    """Pipeline and bootstrap stacks of every environment in its other mode, by stack name."""
    return {name: Stack(flipped_synth_dir / "stacks" / name)
            for name in (*ENVIRONMENTS, *BOOTSTRAP_STACKS)}


@pytest.fixture(scope="session")
def stacks_in_mode(stacks: dict[str, Stack], flipped_stacks: dict[str, Stack]):
    """``(env, mode) -> (pipeline stack, bootstrap stack, config)``: each environment in each mode, from the
    session's synth or the flipped one."""
    from infra.environments import load_environments

    found = {}
    for cfg in load_environments():
        bootstrap = f"bootstrap-{cfg.name}"
        found[cfg.name, cfg.processing] = (stacks[cfg.name], Stack(stacks[cfg.name].directory.parent / bootstrap),
                                           cfg)
        other = cfg.other_mode()
        found[cfg.name, other.processing] = (flipped_stacks[cfg.name], flipped_stacks[bootstrap], other)
    return found


@pytest.fixture(scope="session")
def bootstrap_stacks(synth_dir: Path) -> dict[str, Stack]:
    """``env -> bootstrap-<env>`` stack."""
    return {env: Stack(synth_dir / "stacks" / f"bootstrap-{env}") for env in ENVIRONMENTS}


@pytest.fixture(scope="session")
def all_stacks(stacks: dict[str, Stack], bootstrap_stacks: dict[str, Stack]) -> dict[str, Stack]:
    """Every synthesized stack by its name: the pipelines and their bootstraps."""
    return {**stacks, **{f"bootstrap-{env}": stack for env, stack in bootstrap_stacks.items()}}


@pytest.fixture(scope="session", params=ENVIRONMENTS)
def stack(request: pytest.FixtureRequest, stacks: dict[str, Stack]) -> Stack:
    """Each environment's stack in turn, for properties every environment must have."""
    return stacks[request.param]


@pytest.fixture
def source_copy(tmp_path: Path) -> Iterator[Path]:
    """A copy of the top-level folders and files the artifacts take from, to change and re-synthesize."""
    from infra.artifacts.archive import SOURCES

    for member in sorted({member.split("/")[0] for member in SOURCES}):
        source = ROOT / member
        if source.is_dir():
            shutil.copytree(source, tmp_path / member, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, tmp_path / member)
    yield tmp_path


@pytest.fixture(scope="session")
def secret_sentinel() -> tuple[str, tuple[str, ...]]:
    """(the sentinel, the variables it was set in during the session's synth)."""
    return SECRET_SENTINEL, SECRET_VARIABLES


@pytest.fixture
def shellcheck() -> str:
    """The shellcheck binary (``scripts/test`` installs it); the test is skipped without one."""
    path = shutil.which("shellcheck")
    if path is None:
        pytest.skip("shellcheck not installed (Debian: apt install shellcheck)")
    return path
