"""Landing zones: where each poll becomes one immutable NDJSON object.

The streaming job's file source needs every object complete or absent and never
rewritten (docs/ARCHITECTURE.md §2), so both implementations are *create-only*:

- :class:`LocalLandingZone` writes a hidden temp file (``.`` prefix: Spark skips
  it), fsyncs it and hard-links it to its final name. ``link`` fails when the name
  exists, which a ``rename`` would silently overwrite.
- :class:`GcsLandingZone` uploads with ``if_generation_match=0``; GCS uploads are
  atomic.

Both treat "already exists with the same bytes" as success: that is an earlier attempt
whose acknowledgement was lost (a retry after a timeout, a restart before the spool
entry was removed), and landing it again would be a duplicate. Different bytes raise
:class:`LandingConflict`.

Objects are named ``dt=YYYY-MM-DD/hour=HH/<poll_id>.ndjson`` (UTC), and poll ids
start with the poll time, so names sort in time order.
"""

from __future__ import annotations

import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Protocol

import google.auth.exceptions
import requests
from google.api_core import exceptions as gapi
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from core.timefmt import BASIC_SECONDS, utc_millis
from core.uris import GcsPath, parse_location
from producer.errors import ConfigError, LandingConflict, LandingUnavailable
from producer.files import fsync_dir, write_synced

NDJSON_CONTENT_TYPE = "application/x-ndjson"


def new_poll_id(at: datetime) -> str:
    """A unique, time-sortable poll id, e.g. ``20261123T210501123Z-1f2e3d4c5b6a``.

    The millisecond UTC poll time sorts polls; 48 random bits keep two producers (or
    a restart within the same millisecond) from ever colliding.
    """
    return f"{utc_millis(at, basic=True)}-{secrets.token_hex(6)}"


def object_name(poll_id: str) -> str:
    """The landing name of a poll: ``dt=YYYY-MM-DD/hour=HH/<poll_id>.ndjson``."""
    try:
        at = datetime.strptime(poll_id[:15], BASIC_SECONDS)
    except ValueError:
        raise ValueError(f"poll id {poll_id!r} does not start with a poll time like 20261123T210501") from None
    return f"dt={at:%Y-%m-%d}/hour={at:%H}/{poll_id}.ndjson"


class LandingZone(Protocol):
    """Where finished polls go; create-only."""

    uri: str
    """Where objects land, for logs."""

    def put(self, name: str, data: bytes) -> None:
        """Create object ``name`` holding ``data``, once.

        Returns when the object exists with exactly ``data``, also when an earlier
        attempt created it. Raises :class:`LandingUnavailable` when it cannot tell yet
        (try again later) and :class:`LandingConflict` when the name holds other bytes.
        """

    def exists(self, name: str) -> bool:
        """Whether object ``name`` exists; raises :class:`LandingUnavailable` when it cannot tell."""


class LocalLandingZone:
    """A local directory, for the local pipeline and tests."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self.uri = str(self.root)

    def put(self, name: str, data: bytes) -> None:
        target = self.root / name
        temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                write_synced(temp, data, exclusive=True)
                try:
                    os.link(temp, target)
                except FileExistsError:
                    if target.read_bytes() != data:
                        raise LandingConflict(
                            f"{target} already exists with different content; landing objects are written "
                            "once: find out what else writes there"
                        ) from None
            finally:
                temp.unlink(missing_ok=True)
            fsync_dir(target.parent)
        except OSError as exc:
            raise LandingUnavailable(f"cannot write {target}: {exc}; check the directory is writable") from exc

    def exists(self, name: str) -> bool:
        return (self.root / name).exists()


class GcsLandingZone:
    """A GCS prefix, written with the real ``google-cloud-storage`` client.

    The producer's service account needs ``storage.objects.create`` (the upload) and
    ``storage.objects.get`` (comparing content after a 412); never delete, so it
    cannot overwrite: with ``if_generation_match=0`` create alone suffices.
    """

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        client: storage.Client | None = None,
        timeout_seconds: float = 10.0,
        retry_seconds: float = 10.0,
    ) -> None:
        try:
            client = client or storage.Client()
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise ConfigError(
                f"no Google credentials to write gs://{bucket}: run on a VM with a service account, "
                "or set GOOGLE_APPLICATION_CREDENTIALS / STORAGE_EMULATOR_HOST"
            ) from exc
        self._bucket = client.bucket(bucket)
        self._prefix = prefix.strip("/")
        self._timeout = timeout_seconds
        # if_generation_match=0 makes the upload idempotent, so retrying it is safe.
        self._retry = DEFAULT_RETRY.with_timeout(retry_seconds)
        self.uri = f"gs://{bucket}/{self._prefix}".rstrip("/")

    def _key(self, name: str) -> str:
        return f"{self._prefix}/{name}" if self._prefix else name

    def put(self, name: str, data: bytes) -> None:
        blob = self._bucket.blob(self._key(name))
        try:
            try:
                blob.upload_from_string(
                    data,
                    content_type=NDJSON_CONTENT_TYPE,
                    if_generation_match=0,
                    timeout=self._timeout,
                    retry=self._retry,
                )
            except gapi.PreconditionFailed:
                existing = blob.download_as_bytes(timeout=self._timeout, retry=self._retry)
                if existing != data:
                    raise LandingConflict(
                        f"{self.uri}/{name} already exists with different content; landing objects are "
                        "written once: find out what else writes there"
                    ) from None
        except (gapi.GoogleAPIError, google.auth.exceptions.GoogleAuthError, requests.RequestException, OSError) as exc:
            raise LandingUnavailable(f"cannot write {self.uri}/{name}: {_describe(exc)}") from exc

    def exists(self, name: str) -> bool:
        """A metadata read: ``storage.objects.get``, which the producer holds for the 412 check already."""
        try:
            return self._bucket.blob(self._key(name)).exists(timeout=self._timeout, retry=self._retry)
        except (gapi.GoogleAPIError, google.auth.exceptions.GoogleAuthError, requests.RequestException, OSError) as exc:
            raise LandingUnavailable(f"cannot read {self.uri}/{name}: {_describe(exc)}") from exc


def open_landing_zone(
    uri: str, *, gcs_client: storage.Client | None = None, timeout_seconds: float = 10.0, retry_seconds: float = 10.0
) -> LandingZone:
    """The landing zone for ``uri``: ``gs://bucket[/prefix]``, or a local directory (a path or ``file:`` URI).

    Raises :class:`ConfigError` naming ``uri`` and the forms it may take.

    >>> open_landing_zone("data/landing").uri
    'data/landing'
    """
    location = parse_location(uri, option="landing URI", error=ConfigError)
    if isinstance(location, GcsPath):
        return GcsLandingZone(
            location.bucket,
            location.prefix,
            client=gcs_client,
            timeout_seconds=timeout_seconds,
            retry_seconds=retry_seconds,
        )
    return LocalLandingZone(location.path)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, gapi.Forbidden):
        return f"{exc.message}; the producer's service account needs storage.objects.create and .get on the bucket"
    if isinstance(exc, gapi.NotFound):
        return f"{exc.message}; check the bucket in landing_uri exists"
    if isinstance(exc, gapi.RetryError):
        return f"still failing after retrying: {exc.cause!r}"
    return f"{type(exc).__name__}: {exc}"
