"""The app as users run it: `cdktf synth` (the pinned CLI) runs cdktf.json's app, `python cdktf/main.py`,
offline, and it synthesizes what the session's synth holds, with no secret in its log.

One CLI synth for the module: the app's process imports the provider bindings again (12-13 s),
and the CLI passes the app's stdout and stderr through to its own, so the log it shows is the
app's whole log.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


CLI = ROOT / ".tools" / "cdktf-cli" / "node_modules" / ".bin" / "cdktf"


def _assert_same_stacks(outdir, stacks):
    for env, stack in stacks.items():
        assert json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text()) == stack.json


@pytest.fixture(scope="module")
def cli_synth(tmp_path_factory, secret_sentinel) -> tuple[Path, subprocess.CompletedProcess]:
    """The CLI's output folder and its run, with the sentinel in every secret variable."""
    if not CLI.exists():
        pytest.fail("cdktf-cli not installed: scripts/cdktf.sh --version installs it")
    sentinel, variables = secret_sentinel
    out = tmp_path_factory.mktemp("cli-synth") / "out"
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
           **dict.fromkeys(variables, sentinel)}
    result = subprocess.run([str(CLI), "synth", "--output", str(out)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    return out, result


def test_the_clis_app_is_the_main_script():
    app = shlex.split(json.loads((ROOT / "cdktf.json").read_text())["app"])
    assert app[1:] == ["cdktf/main.py"] and Path(app[0]).name.startswith("python")


def test_main_script_synthesizes_both_stacks(cli_synth, stacks, secret_sentinel):
    out, result = cli_synth
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert f"synthesized dev, prod and bootstrap-dev, bootstrap-prod into {out}" in log
    assert secret_sentinel[0] not in log  # no secret in the synth's log
    _assert_same_stacks(out, stacks)


def test_main_script_reports_a_bad_setting_by_name(tmp_path):
    env = {**os.environ, "CDKTF_OUTDIR": str(tmp_path / "out"), "CRYPTOPIPE__DEPLOY__PROD__TOP_N": "0"}
    # reported before the slow provider import, so this test costs well under a second
    result = subprocess.run([sys.executable, "cdktf/main.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert "environment 'prod', field 'top_n'" in result.stderr


def test_cli_synth_works_offline(cli_synth, stacks):
    out, result = cli_synth
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _assert_same_stacks(out, stacks)
