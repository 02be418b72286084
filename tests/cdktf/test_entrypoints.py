"""`python cdktf/main.py` and `cdktf synth` (the CLI) both synthesize offline, identically."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


CLI = ROOT / ".tools" / "cdktf-cli" / "node_modules" / ".bin" / "cdktf"


def _assert_same_stacks(outdir, stacks):
    for env, stack in stacks.items():
        assert json.loads((outdir / "stacks" / env / "cdk.tf.json").read_text()) == stack.json


def test_main_script_synthesizes_both_stacks(tmp_path, stacks, secret_sentinel):
    sentinel, variables = secret_sentinel
    env = {**os.environ, "CDKTF_OUTDIR": str(tmp_path / "out"), **dict.fromkeys(variables, sentinel)}
    result = subprocess.run([sys.executable, "cdktf/main.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "synthesized dev, prod and bootstrap-dev, bootstrap-prod" in result.stderr
    assert sentinel not in result.stdout + result.stderr  # no secret in the synth's log
    _assert_same_stacks(tmp_path / "out", stacks)


def test_main_script_reports_a_bad_setting_by_name(tmp_path):
    env = {**os.environ, "CDKTF_OUTDIR": str(tmp_path / "out"), "CRYPTOPIPE__DEPLOY__PROD__TOP_N": "0"}
    # reported before the slow provider import, so this test costs well under a second
    result = subprocess.run([sys.executable, "cdktf/main.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 1
    assert "environment 'prod', field 'top_n'" in result.stderr


@pytest.mark.skipif(not CLI.exists(), reason="cdktf-cli not installed: scripts/cdktf.sh --version installs it")
def test_cli_synth_works_offline(tmp_path, stacks):
    env = {**os.environ, "CHECKPOINT_DISABLE": "1", "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    result = subprocess.run([str(CLI), "synth", "--output", str(tmp_path / "out")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    _assert_same_stacks(tmp_path / "out", stacks)
