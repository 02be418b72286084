"""The locks agree with pyproject.toml, and a lock the cache cannot serve stops the synth with what to run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.artifacts import wheelhouse
from infra.artifacts.archive import build_artifacts
from infra.artifacts.wheelhouse import (
    CACHE,
    FILL_COMMAND,
    LOCKS,
    PRODUCER_LOCK,
    WheelhouseError,
    check_lock,
    locked_wheels,
    read_lock,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("lock", LOCKS, ids=lambda lock: lock.extra)
def test_each_lock_agrees_with_pyproject_and_is_complete_and_hashed(lock):
    check_lock(ROOT, lock)  # every pin of the core and the extra, at its version
    pins = read_lock(ROOT / lock.path)
    assert len({pin.name for pin in pins}) == len(pins) > 10  # the transitive closure, each release once
    assert all(pin.hashes for pin in pins)


def test_a_pin_changed_without_relocking_stops_the_synth(source_copy, tmp_path):
    pyproject = source_copy / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"httpx==0.28.1"', '"httpx==0.28.0"'))
    with pytest.raises(WheelhouseError, match=r"locks/producer.txt has httpx==0.28.1 .*httpx==0.28.0.*scripts/lock.sh"):
        build_artifacts(source_copy, tmp_path)


def test_a_wheel_missing_from_the_cache_is_named_with_the_command(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    pins = read_lock(ROOT / PRODUCER_LOCK.path)
    kept = locked_wheels(ROOT / PRODUCER_LOCK.path)[1:]  # the first pin's wheel is missing
    for wheel in kept:
        shutil.copy(wheel.path, cache)
    stale = cache / kept[0].path.name
    stale.write_bytes(stale.read_bytes() + b"\0")  # and another's file is not the locked one
    downloads = []
    monkeypatch.setattr(wheelhouse, "download", lambda lock, cache: downloads.append(lock))  # no index here

    with pytest.raises(WheelhouseError) as raised:
        locked_wheels(ROOT / PRODUCER_LOCK.path, cache)
    assert downloads == [ROOT / PRODUCER_LOCK.path]  # it tried to fill the cache first
    message = str(raised.value)
    assert str(pins[0]) in message
    assert f"{kept[0].pin} ({stale.name}: hash not in the lock, delete it)" in message
    assert FILL_COMMAND in message


def test_the_cache_serves_both_locks_with_wheels_for_the_target():
    for lock in LOCKS:
        for wheel in locked_wheels(ROOT / lock.path):
            assert wheel.path.parent == CACHE
            assert wheel.path.name.endswith(("-none-any.whl", "_x86_64.whl")), wheel.path.name
            assert "-cp311-" in wheel.path.name or "-abi3-" in wheel.path.name or "-none-" in wheel.path.name
