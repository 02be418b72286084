"""The access tables (docs/DEPLOY.md, SECURITY.md) say what the effective-permission model computes."""

from __future__ import annotations

from infra.environments import load_environments
from infra.reports.access import report

CONFIGS = {cfg.name: cfg for cfg in load_environments()}


def _report(env, stacks, bootstrap_stacks):
    return report({env: stacks[env].json, f"bootstrap-{env}": bootstrap_stacks[env].json}, CONFIGS[env])


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
