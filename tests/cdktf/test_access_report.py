"""The README's and SECURITY.md's access tables are what the effective-permission model computes."""

from __future__ import annotations

from access_report import DOCUMENTS, render, report
from config import load_environments

CONFIGS = {cfg.name: cfg for cfg in load_environments()}


def _report(env, stacks, bootstrap_stacks):
    return report({env: stacks[env].json, f"bootstrap-{env}": bootstrap_stacks[env].json}, CONFIGS[env])


def test_the_documents_carry_the_models_tables(stacks, bootstrap_stacks):
    tables = _report("dev", stacks, bootstrap_stacks)
    stale = [document.name for document in DOCUMENTS if render(document, tables) != document.read_text()]
    assert stale == [], "regenerate with: .venv/bin/python cdktf/access_report.py"


def test_the_tables_hold_for_every_environment(stacks, bootstrap_stacks):
    dev, prod = (_report(env, stacks, bootstrap_stacks) for env in ("dev", "prod"))
    assert dev.grants() == prod.grants()
    assert dev.capabilities() == prod.capabilities()


def test_the_capabilities_say_what_the_review_found_fixed(stacks, bootstrap_stacks):
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ")[1:]
            for line in _report("dev", stacks, bootstrap_stacks).capabilities().splitlines()[2:]}
    # columns: landing, archive/checkpoints/staging, artifacts/producer, artifacts/job, state, key, rows, acts as
    assert rows["cryptopipe-<env>-processing"][2:5] == ["no", "read", "no"]
    assert rows["cryptopipe-<env>-producer"][0] == "read, create"
    assert rows["cryptopipe-<env>-deployer"][7] == "producer, processing"
    assert rows["cryptopipe-<env>-planner"][:2] == ["no", "no"]
