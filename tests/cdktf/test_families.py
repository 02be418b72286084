"""Both CDK families synthesize the same stacks: CDKTF (default) and CDK Terrain (cdktf/infra/cdk.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from infra.access.model import AccessModel
from infra.cdk import FAMILY_VARIABLE, selected_family

from .conftest import ROOT

STACKS = ("dev", "prod", "bootstrap-dev", "bootstrap-prod")
#: Everything that may differ between the families' JSON: (path, cdktf's value, cdktn's value).
EXPECTED_DIFFERENCES = {
    ("//", "metadata", "version"): ("0.21.0", "0.24.0"),  # the CDK's own version
    ("terraform", "required_providers", "google", "source"): ("google", "hashicorp/google"),
    ("terraform", "required_providers", "google", "version"): ("6.50.0", "8.7.0"),
}
#: ... and in the pipeline stacks, which wait with hashicorp/time (infra/stacks/waits.py):
PIPELINE_DIFFERENCES = {("terraform", "required_providers", "time", "version"): ("0.13.1", "0.14.2")}


def _flat(value, path=()):
    """``{path: leaf}`` of a JSON document."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flat(item, (*path, key)).items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _flat(item, (*path, i)).items()}
    return {path: value}


def _document(directory: Path, stack: str) -> dict:
    return json.loads((directory / "stacks" / stack / "cdk.tf.json").read_text())


@pytest.mark.parametrize("stack", STACKS)
def test_both_families_declare_the_same_resources_with_the_same_settings(synth_dir, cdktn_synth_dir, stack):
    cdktf, cdktn = (_flat(_document(d, stack)) for d in (synth_dir, cdktn_synth_dir))
    assert set(cdktf) == set(cdktn)
    differing = {path: (cdktf[path], cdktn[path]) for path in cdktf if cdktf[path] != cdktn[path]}
    pipeline = PIPELINE_DIFFERENCES if not stack.startswith("bootstrap-") else {}
    assert differing == {**EXPECTED_DIFFERENCES, **pipeline}


@pytest.mark.parametrize("stack", STACKS)
def test_both_families_declare_the_same_in_the_other_processing_mode(flipped_synth_dir, cdktn_flipped_synth_dir,
                                                                     stack):
    """dev streaming and prod scheduled (the environments' other modes) synthesize alike on both too."""
    cdktf, cdktn = (_flat(_document(d, stack)) for d in (flipped_synth_dir, cdktn_flipped_synth_dir))
    assert set(cdktf) == set(cdktn)
    differing = {path: (cdktf[path], cdktn[path]) for path in cdktf if cdktf[path] != cdktn[path]}
    pipeline = PIPELINE_DIFFERENCES if not stack.startswith("bootstrap-") else {}
    assert differing == {**EXPECTED_DIFFERENCES, **pipeline}


def test_both_families_grant_exactly_the_same(synth_dir, cdktn_synth_dir):
    """The effective-permission model (test_effective_access.py) computes the same on both."""
    def bindings(directory: Path) -> set:
        model = AccessModel.from_stacks({s: _document(directory, s) for s in ("dev", "bootstrap-dev")}, 1)
        return set(model.bindings)

    assert bindings(synth_dir) == bindings(cdktn_synth_dir)


def test_checkov_finds_no_failed_check_on_the_other_family(cdktn_synth_dir):
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "checkov.py"), str(cdktn_synth_dir / "stacks")],
                            capture_output=True, text=True, timeout=540)
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert sum(" 0 failed" in line for line in result.stdout.splitlines()) == len(STACKS)


def test_an_unknown_family_is_refused_by_name():
    assert selected_family({}) == "cdktf"
    assert selected_family({FAMILY_VARIABLE: "cdktn"}) == "cdktn"
    with pytest.raises(ValueError, match=f"{FAMILY_VARIABLE}='pulumi' is not a CDK family"):
        selected_family({FAMILY_VARIABLE: "pulumi"})
