"""``python -m producer`` as systemd runs it: a real subprocess, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cryptopipe.replay import Fault

KEY = "CG-do-not-log-me"


def start_producer(tmp_path: Path, **settings: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOPIPE__") and k != "STORAGE_EMULATOR_HOST"}
    env.update(
        {
            "CRYPTOPIPE__PRODUCER__LANDING_URI": str(tmp_path / "landing"),
            "CRYPTOPIPE__PRODUCER__SPOOL_DIR": str(tmp_path / "spool"),
            "CRYPTOPIPE__PRODUCER__TOP_N": "50",
            "CRYPTOPIPE__PRODUCER__INTERVAL_SECONDS": "60",
        }
    )
    env.update({k if k.isupper() else f"CRYPTOPIPE__PRODUCER__{k.upper()}": v for k, v in settings.items()})
    return subprocess.Popen(
        [sys.executable, "-m", "producer"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    )


def wait_for_request(replay, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while not replay.requests:
        assert process.poll() is None, process.communicate()[1]
        assert time.monotonic() < deadline, "the producer sent no request"
        time.sleep(0.02)


def terminate(process: subprocess.Popen[str]) -> tuple[int, float, list[dict]]:
    """SIGTERM; returns exit code, seconds to exit, and the JSON log lines."""
    sent = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail("the producer did not exit within 15 s of SIGTERM")
    return process.returncode, time.monotonic() - sent, [json.loads(line) for line in stderr.splitlines()]


def polls_in(directory: Path) -> dict[str, int]:
    """Poll files under ``directory`` (landing or spool), by name, with their line counts."""
    return {p.name: len(p.read_text().splitlines()) for p in directory.rglob("*.ndjson") if "quarantine" not in p.parts}


def test_sigterm_exits_0_within_10_s_with_the_poll_in_flight_landed(replay, tmp_path):
    replay.inject(Fault.delay(2.0))  # keeps the first poll in flight while the signal arrives
    process = start_producer(  # Demo's 10,000 credits last a 31-day month at a poll every 268 s
        tmp_path, base_url=replay.url, api_plan="demo", api_key=KEY, interval_seconds="300",
        health_file=str(tmp_path / "health.json"),
    )
    wait_for_request(replay, process)

    code, seconds, logs = terminate(process)

    assert code == 0 and seconds < 10
    events = [line.get("event") for line in logs]
    assert events.index("stop_requested") < events.index("poll")  # the poll was in flight
    [poll] = [line for line in logs if line.get("event") == "poll"]
    assert (poll["status"], poll["landed"]) == ("ok", True)
    assert polls_in(tmp_path / "landing") == {f"{poll['poll_id']}.ndjson": 50}
    assert polls_in(tmp_path / "spool") == {}
    assert replay.requests[0].headers["x-cg-demo-api-key"] == KEY
    [config] = [line for line in logs if line.get("event") == "config"]
    assert config["api_key"] == "***"
    assert KEY not in json.dumps(logs)


def test_sigterm_exits_0_with_the_poll_in_flight_spooled_when_gcs_is_down(replay, gcs, tmp_path):
    gcs.stop()
    replay.inject(Fault.delay(1.0))
    process = start_producer(
        tmp_path,
        base_url=replay.url,
        landing_uri=f"gs://{gcs.bucket}/landing",
        gcs_retry_seconds="1",
        gcs_timeout_seconds="1",
        STORAGE_EMULATOR_HOST=gcs.url,
    )
    wait_for_request(replay, process)

    code, seconds, logs = terminate(process)

    assert code == 0 and seconds < 10
    [poll] = [line for line in logs if line.get("event") == "poll"]
    assert (poll["landed"], poll["spool_depth"]) == (False, 1)
    assert polls_in(tmp_path / "spool") == {f"{poll['poll_id']}.ndjson": 50}


def test_sigterm_exits_0_within_the_grace_when_the_api_hangs(replay, tmp_path):
    replay.inject(Fault.delay(30))
    process = start_producer(tmp_path, base_url=replay.url, read_timeout_seconds="60", shutdown_grace_seconds="1")
    wait_for_request(replay, process)

    code, seconds, logs = terminate(process)

    assert code == 0 and seconds < 10
    assert any(line.get("event") == "shutdown_grace_exceeded" for line in logs)


@pytest.mark.parametrize(("settings", "message"), [
    ({"top_n": "many"}, "CRYPTOPIPE__PRODUCER__TOP_N='many' is invalid"),
    # Demo's credits would last a week at the default 60 s: refused before any request
    ({"api_plan": "demo", "api_key": KEY}, "needs 44,640 calls a month (31 days) but plan demo has 10,000 credits: "
                                           "expected an interval of at least 268 s"),
], ids=["bad-value", "demo-credits-last-a-week"])  # fmt: skip
def test_config_error_exits_2_naming_the_setting(tmp_path, settings, message):
    process = start_producer(tmp_path, **settings)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2
    [line] = [json.loads(line) for line in stderr.splitlines()]
    assert line["event"] == "config_error"
    assert message in line["error"]
    assert not (tmp_path / "spool").exists()  # nothing started
