"""The access tables (docs/DEPLOY.md, SECURITY.md) say what the effective-permission model computes."""

from __future__ import annotations

import pytest

from infra.reports.access import report

from .conftest import MODES


def _report(stacks_in_mode, env, mode):
    pipeline, bootstrap, cfg = stacks_in_mode[env, mode]
    return report({env: pipeline.json, f"bootstrap-{env}": bootstrap.json}, cfg)


@pytest.mark.parametrize("mode", MODES)
def test_the_tables_hold_for_every_environment(stacks_in_mode, mode):
    dev, prod = (_report(stacks_in_mode, env, mode) for env in ("dev", "prod"))
    assert dev.grants() == prod.grants()
    assert dev.capabilities() == prod.capabilities()


@pytest.mark.parametrize("mode", MODES)
def test_the_capabilities_say_what_the_review_found_fixed(stacks_in_mode, mode):
    rows = {line.split(" | ")[0].strip("| `"): [cell.strip(" |") for cell in line.split(" | ")[1:]]
            for line in _report(stacks_in_mode, "dev", mode).capabilities().splitlines()[2:]}
    # columns: landing, archive/checkpoints/staging, artifacts/producer, artifacts/job, state, key, rows, acts as
    assert rows["cryptopipe-<env>-processing"][2:5] == ["no", "read", "no"]
    assert rows["cryptopipe-<env>-producer"][0] == "read, create"
    assert rows["cryptopipe-<env>-deployer"][7] == "producer, processing, scheduler"
    assert rows["cryptopipe-<env>-planner"][:2] == ["no", "no"]
    # scheduled mode's starter touches no data and acts as nobody (test_effective_access.py: only our cluster)
    scheduler = rows["cryptopipe-<env>-scheduler"]
    assert scheduler[:9] == ["no"] * 7 + ["no one", "no"]
    assert scheduler[9] == ("start, stop, run jobs" if mode == "scheduled" else "no")
