"""Where the job reads and writes: local paths or ``gs://`` URIs, checked up front.

Spark reaches both through Hadoop's file systems, so the same job runs locally and
on Dataproc; what differs is only the address. Parsing them here (not deep inside
Spark) lets a typo fail at start-up with the value and the option named.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from jobs.errors import ConfigError

#: URI schemes the job can read and write through Hadoop.
SCHEMES = ("file", "gs")

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")
_EXPECTED = "expected a local path, file:///absolute/path or gs://bucket/path"


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
        text = os.fspath(value).strip()
        if not text:
            raise ConfigError(f"{option}: {value!r} is empty; {_EXPECTED}")
        if "://" not in text and not text.startswith("file:"):
            return cls("file", "", str(Path(text).expanduser().resolve()))
        parts = urlsplit(text)
        if parts.query or parts.fragment:
            raise ConfigError(f"{option}: {text!r} has a query or fragment; {_EXPECTED}")
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
                raise ConfigError(f"{option}: {text!r} is not an absolute file URI; {_EXPECTED}")
            return cls("file", "", _normalise(parts.path, text, option))
        if parts.scheme == "gs":
            if not _BUCKET.match(parts.netloc):
                raise ConfigError(f"{option}: {text!r} does not name a valid bucket; {_EXPECTED}")
            return cls("gs", parts.netloc, _normalise(parts.path or "/", text, option))
        raise ConfigError(f"{option}: {text!r} has the unsupported scheme {parts.scheme!r}; {_EXPECTED}")

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


def _normalise(path: str, text: str, option: str) -> str:
    # PurePosixPath drops trailing slashes and doubled separators; ".." is refused
    # rather than resolved, since on GCS it means nothing.
    if ".." in PurePosixPath(path).parts:
        raise ConfigError(f"{option}: {text!r} contains '..'; give the path without it")
    return str(PurePosixPath(path))
