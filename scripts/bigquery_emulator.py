#!/usr/bin/env python3
"""The BigQuery stand-in for tests and benchmarks: bqemulator, pinned, offline, on loopback.

    scripts/bigquery_emulator.py [--rest-port N] [--grpc-port N]    serve until interrupted

In code (tests/jobs/conftest.py, bench/): ``with Emulator() as emulator: ...`` starts it on
free loopback ports and ``emulator.create_tables(project, dataset)`` makes the warehouse's
tables as the CDKTF app declares them (core/tables.py, core/schema.py);
``emulator.environment`` names both ports for the job (jobs/loaders/bigquery_storage.py).

bqemulator lives in its own venv, ``.venv-bqemulator``, made on first use (as checkov's):
it pins ``sqlglot<30.12`` and ``grpcio-tools<1.81`` (so protobuf 6), below the app's pins.

The one launcher shim: at start-up bqemulator runs ``INSTALL spatial``, which downloads a
DuckDB extension and fails offline. The shim replaces that one step with a no-op before
starting the CLI; GEOGRAPHY (the only thing spatial backs) is no column of ours.
docs/STREAM.md ("The BigQuery stand-in") lists where the emulator differs from BigQuery.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # also when loaded by path (the tests)
from toolvenv import ensure_tool_venv  # noqa: E402

BQEMULATOR_VERSION = "1.4.0"
#: bqemulator registers numpy UDFs at start-up but does not declare numpy.
EXTRA_PINS = ("numpy==2.4.6",)
ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-bqemulator"
_STARTUP_SECONDS = 120


def ensure_venv() -> Path:
    """The emulator venv's python, with the pinned bqemulator."""
    return ensure_tool_venv(VENV, "bqemulator", BQEMULATOR_VERSION, EXTRA_PINS)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Emulator:
    """bqemulator in a child process on free loopback ports, in memory; stopped on exit."""

    def __init__(self, log: Path | None = None) -> None:
        self.rest_port = _free_port()
        self.grpc_port = _free_port()
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def environment(self) -> dict[str, str]:
        """What the job's BigQuery clients read to talk to the emulator (no credentials)."""
        return {"BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{self.rest_port}",
                "BIGQUERY_STORAGE_EMULATOR_HOST": f"127.0.0.1:{self.grpc_port}"}

    def __enter__(self) -> Emulator:
        python = ensure_venv()
        out = self._log.open("wb") if self._log else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [str(python), __file__, "--inside", "--rest-port", str(self.rest_port), "--grpc-port", str(self.grpc_port)],
            stdout=out, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + _STARTUP_SECONDS
        while not self._serving():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"bqemulator did not start (exit {self._process.returncode}); log: {self._log}")
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()

    def _serving(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.rest_port}/bigquery/v2/projects/p/datasets", timeout=1):
                pass
            with socket.create_connection(("127.0.0.1", self.grpc_port), timeout=1):
                return True
        except OSError:
            return False

    def client(self, project: str):
        """A real ``bigquery.Client`` on the emulator's REST port."""
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import bigquery

        return bigquery.Client(project=project, credentials=AnonymousCredentials(),
                               client_options=ClientOptions(api_endpoint=f"http://127.0.0.1:{self.rest_port}"))

    def create_tables(self, project: str, dataset: str) -> None:
        """The dataset and the warehouse's two tables, as the CDKTF app declares them (the contract's columns)."""
        sys.path.insert(0, str(ROOT))
        from google.cloud import bigquery

        from core.schema import bigquery_fields, market_tick
        from core.tables import QUARANTINE_FIELDS, QUARANTINE_PARTITION_FIELD, QUARANTINE_TABLE, TICK_FIELDS, TICKS_TABLE

        client = self.client(project)
        client.create_dataset(f"{project}.{dataset}", exists_ok=True)
        for name, fields, partition, cluster in (
            (TICKS_TABLE, TICK_FIELDS, market_tick().partition_field, list(market_tick().cluster_fields)),
            (QUARANTINE_TABLE, QUARANTINE_FIELDS, QUARANTINE_PARTITION_FIELD, []),
        ):
            table = bigquery.Table(f"{project}.{dataset}.{name}",
                                   schema=[bigquery.SchemaField.from_api_repr(f) for f in bigquery_fields(fields)])
            table.time_partitioning = bigquery.TimePartitioning(type_=bigquery.TimePartitioningType.DAY, field=partition)
            table.clustering_fields = cluster or None
            client.create_table(table, exists_ok=True)
        client.close()


def _serve_inside(argv: list[str]) -> int:
    """Run in the emulator's venv: skip the spatial download (module docstring), then the CLI's ``start``."""
    from bqemulator.cli import main
    from bqemulator.storage import engine

    engine.DuckDBEngine._load_spatial = lambda self: None
    sys.argv = ["bqemulator", "start", "--ephemeral", "--log-level", "warning", *argv]
    return main()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--inside"]:
        sys.exit(_serve_inside(sys.argv[2:]))
    python = ensure_venv()
    os.execv(str(python), [str(python), __file__, "--inside", *sys.argv[1:]])
