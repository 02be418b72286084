"""Where the pipeline keeps its data: the folders named once, for a local run and the cloud alike.

The stream's four places (:data:`LANDING`, :data:`ARCHIVE`, :data:`CHECKPOINT`,
:data:`STAGING`) are folders under a local run's data directory and prefixes of the
cloud's data bucket (cdktf/infra/stacks/storage.py, its lifecycle rules; cdktf/infra/stacks/processing.py, the
job's arguments). :class:`LocalLayout` is a local run's whole directory: ``cryptopipe
up`` writes there, ``cryptopipe status``, ``query``, ``dashboard`` and ``backfill`` read
there, and each takes a layout rather than building a path itself, so no two parts can
disagree on where a file lives.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: What the producer lands and the stream reads.
LANDING = "landing"
#: Landing files the stream has processed, moved outside its input path.
ARCHIVE = "archive"
#: The streaming query's checkpoint.
CHECKPOINT = "checkpoints/market_ticks"
#: Each micro-batch staged as Parquet before the warehouse loads it.
STAGING = "staging"


@dataclass(frozen=True)
class LocalLayout:
    """The paths of a local run under ``root`` (``data/`` by default)."""

    root: Path

    @property
    def landing(self) -> Path:
        return self.root / LANDING

    @property
    def archive(self) -> Path:
        return self.root / ARCHIVE

    @property
    def checkpoint(self) -> Path:
        return self.root / CHECKPOINT

    @property
    def staging(self) -> Path:
        return self.root / STAGING

    @property
    def spool(self) -> Path:
        """Polls that could not land yet, kept by the producer until they do."""
        return self.root / "producer-spool"

    @property
    def spark_scratch(self) -> Path:
        return self.root / "tmp"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse.duckdb"

    @property
    def warehouse_uri(self) -> str:
        return f"duckdb://{self.warehouse.resolve()}"

    def job_places(self) -> dict[str, str]:
        """The streaming job's places for this layout, by option (``core.joboptions.job_argv`` spells them)."""
        return {"landing": str(self.landing), "archive": str(self.archive), "checkpoint": str(self.checkpoint),
                "staging": str(self.staging), "warehouse": self.warehouse_uri}

    @property
    def producer_heartbeat(self) -> Path:
        """The producer's heartbeat, written after every poll."""
        return self.root / "producer-heartbeat.json"

    @property
    def stream_state(self) -> Path:
        """The stream's state as a running ``cryptopipe up`` sees it, for ``cryptopipe status``."""
        return self.root / "stream-health.json"

    @property
    def run_lock(self) -> Path:
        """Held by the one ``cryptopipe up`` that runs on this directory."""
        return self.root / ".cryptopipe-up.lock"
