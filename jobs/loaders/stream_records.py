"""Small JSON objects the Storage Write path keeps beside the checkpoint, written create-only.

The path (:mod:`jobs.loaders.bigquery_storage`) records each batch's finalized streams
before committing them, and each driver's start. Both must be written **create-only**:
the record is what a second driver on the same checkpoint reads instead of writing its
own streams, so two drivers must never both believe they wrote it (docs/STREAM.md,
"Two drivers on one checkpoint"). Cloud Storage does that with the precondition
``ifGenerationMatch=0`` (https://cloud.google.com/storage/docs/request-preconditions),
which pyarrow's ``GcsFileSystem`` cannot send, so ``gs://`` goes through
``google-cloud-storage``; a local folder through a hard link, which fails when the name
exists (as the producer's landing zone does, docs/ARCHITECTURE.md §2).
"""

from __future__ import annotations

import os
import uuid
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from jobs.errors import ConfigError
from jobs.locations import Location

#: Environment: a Cloud Storage emulator's URL (``http://host:port``), google-cloud-storage's own
#: variable; with it, records and staged reads go there without credentials (tests).
GCS_EMULATOR_HOST = "STORAGE_EMULATOR_HOST"


class RecordFolder(ABC):
    """One folder of small objects, by name: read, create-only write, list, delete."""

    @abstractmethod
    def read(self, name: str) -> bytes | None:
        """The object's bytes, or None if there is none."""

    @abstractmethod
    def create(self, name: str, data: bytes) -> bool:
        """Write a new object whole; False (and nothing written) if ``name`` exists."""

    @abstractmethod
    def names(self) -> list[str]:
        """The names of the folder's objects."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Delete the object; one already gone is fine."""


def open_folder(location: Location, client: Any = None) -> RecordFolder:
    """The folder at ``location`` (local or ``gs://``); ``client``: a ``storage.Client`` for tests."""
    if location.scheme == "file":
        return LocalFolder(location.local_path)
    if location.scheme == "gs":
        return GcsFolder(location.uri, client)
    raise ConfigError(f"the Storage Write path keeps its records locally or on gs:// only, got {location.uri!r}")


class LocalFolder(RecordFolder):
    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, name: str) -> bytes | None:
        try:
            return (self.path / name).read_bytes()
        except FileNotFoundError:
            return None

    def create(self, name: str, data: bytes) -> bool:
        self.path.mkdir(parents=True, exist_ok=True)
        temporary = self.path / f".{name}.{uuid.uuid4().hex}.tmp"
        temporary.write_bytes(data)
        try:
            os.link(temporary, self.path / name)  # fails if the name exists: create-only
        except FileExistsError:
            return False
        finally:
            temporary.unlink()
        return True

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return [p.name for p in self.path.iterdir() if not p.name.startswith(".")]

    def delete(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)


class GcsFolder(RecordFolder):
    """A prefix of a bucket; the client honours ``STORAGE_EMULATOR_HOST`` (fake-gcs-server in tests)."""

    def __init__(self, uri: str, client: Any = None) -> None:
        bucket, _, prefix = uri.removeprefix("gs://").partition("/")
        self.prefix = f"{prefix.rstrip('/')}/" if prefix else ""
        self._bucket_name = bucket
        self._client = client
        self._bucket: Any = None

    def _blob(self, name: str) -> Any:
        if self._bucket is None:
            if self._client is None:
                from google.cloud import storage

                if os.environ.get(GCS_EMULATOR_HOST):
                    from google.auth.credentials import AnonymousCredentials

                    self._client = storage.Client(project="emulator", credentials=AnonymousCredentials())
                else:
                    self._client = storage.Client()
            self._bucket = self._client.bucket(self._bucket_name)
        return self._bucket.blob(self.prefix + name)

    def read(self, name: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        try:
            return self._blob(name).download_as_bytes()
        except NotFound:
            return None

    def create(self, name: str, data: bytes) -> bool:
        from google.api_core.exceptions import PreconditionFailed

        try:
            self._blob(name).upload_from_string(data, content_type="application/json", if_generation_match=0)
        except PreconditionFailed:
            # A retried upload whose first try landed meets its own bytes: that is success.
            return self.read(name) == data
        return True

    def names(self) -> list[str]:
        self._blob("")  # makes the client
        blobs = self._client.list_blobs(self._bucket_name, prefix=self.prefix, delimiter="/")
        return [blob.name.removeprefix(self.prefix) for blob in blobs]

    def delete(self, name: str) -> None:
        from google.api_core.exceptions import NotFound

        try:
            self._blob(name).delete()
        except NotFound:
            pass
