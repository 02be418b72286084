"""Where the job reads and writes: local paths or ``gs://`` URIs, checked up front.

Spark reaches both through Hadoop's file systems, so the same job runs locally and
on Dataproc; what differs is only the address. Parsing them up front (with
:func:`core.uris.parse_location`, not deep inside Spark) lets a typo fail at start-up
with the value and the option named.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from core.uris import SCHEMES, GcsPath, LocalPath, parse_location
from jobs.errors import ConfigError


@dataclass(frozen=True)
class Location:
    """A directory the job uses, as a normalised URI.

    Example: ``Location.parse("data/landing", option="--landing").uri`` is
    ``file:///abs/data/landing``; ``Location.parse("gs://b/landing/", option=...)``
    is ``gs://b/landing``.
    """

    scheme: str
    """``file`` or ``gs``."""
    bucket: str
    """The GCS bucket; empty for local paths."""
    path: str
    """Absolute POSIX path: on the local disk, or inside the bucket."""

    @classmethod
    def parse(cls, value: str | os.PathLike[str] | Location, *, option: str) -> Location:
        """Parse a local path or URI; raises :class:`ConfigError` naming ``option``."""
        if isinstance(value, Location):
            return value
        parsed = parse_location(value, option=option, error=ConfigError)
        if isinstance(parsed, GcsPath):
            return cls(SCHEMES[GcsPath], parsed.bucket, parsed.path)
        return cls(SCHEMES[LocalPath], "", str(Path(parsed.path).expanduser().resolve()))

    @property
    def uri(self) -> str:
        """The URI Spark and Hadoop take."""
        return f"file://{self.path}" if self.scheme == "file" else f"gs://{self.bucket}{self.path}".rstrip("/")

    @property
    def local_path(self) -> Path:
        """The directory on the local disk; raises :class:`ConfigError` for remote locations."""
        if self.scheme != "file":
            raise ConfigError(f"{self.uri} is not on the local disk")
        return Path(self.path)

    def child(self, name: str) -> Location:
        """The location ``name`` below this one."""
        return Location(self.scheme, self.bucket, str(PurePosixPath(self.path) / name))

    def overlaps(self, other: Location) -> bool:
        """True when one location is the other or lies inside it."""
        if (self.scheme, self.bucket) != (other.scheme, other.bucket):
            return False
        mine, theirs = PurePosixPath(self.path), PurePosixPath(other.path)
        return mine == theirs or mine in theirs.parents or theirs in mine.parents

    def __str__(self) -> str:
        return self.uri

