"""The addresses cryptopipe is given, read in one place and refused with the value and what was expected.

Four forms, each read into a small value of its own:

- a local path, or ``file:///absolute/path``: :class:`LocalPath`;
- ``gs://bucket/path``: :class:`GcsPath`;
- ``duckdb:///absolute/path/warehouse.duckdb``: :class:`DuckDBFile`;
- ``bigquery://project.dataset``: :class:`BigQueryDataset`.

:func:`parse_location` takes the first two (the landing zone, the stream's folders),
:func:`parse_warehouse` the last two (``--warehouse``). Which adapter a form gets (a
landing zone, a warehouse, a dashboard backend) stays with each caller; this module
makes them all read an address the same way, so a typo fails at start-up naming the
option and the value, not deep inside Hadoop or a client library. Callers pass their
own error type, so the failure is the one their users already handle.

Files the engine names are a fifth form, read by :func:`file_uri`: Hadoop writes
``file:/abs``, ``file:///abs`` and ``gs://bucket/path`` for the files it lists and stages.

Nothing here touches the disk or the network: a relative path stays relative, and
whether a bucket or dataset exists is for the caller to find out.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TypeVar
from urllib.parse import SplitResult, unquote, urlsplit

#: Cloud Storage's rule for bucket names.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")

#: What a caller raises: its own error type, given the whole message.
ErrorType = Callable[[str], Exception]


class UriError(ValueError):
    """An address in none of the forms asked for; the message names the value and the forms."""


class _Refused(Exception):
    """What is wrong with a value, phrased to follow it in the message."""


@dataclass(frozen=True)
class LocalPath:
    """A directory on the local disk: as given for a plain path, absolute and normalised for a ``file:`` URI."""

    path: str


@dataclass(frozen=True)
class GcsPath:
    """A folder in a Cloud Storage bucket; ``path`` is absolute and normalised, ``/`` for the whole bucket."""

    bucket: str
    path: str

    @property
    def prefix(self) -> str:
        """The object name prefix: the path without its slashes."""
        return self.path.strip("/")


@dataclass(frozen=True)
class BigQueryDataset:
    """A BigQuery dataset. The ids are split, not checked: BigQuery's naming rules are the caller's."""

    project: str
    dataset: str


@dataclass(frozen=True)
class DuckDBFile:
    """The local warehouse file, by its absolute path."""

    path: str


Form = TypeVar("Form", LocalPath, GcsPath, DuckDBFile, BigQueryDataset)

#: Each form's URI scheme.
SCHEMES: dict[type, str] = {LocalPath: "file", GcsPath: "gs", DuckDBFile: "duckdb", BigQueryDataset: "bigquery"}
#: Each form as messages show it.
EXAMPLES: dict[type, str] = {
    LocalPath: "a local path, file:///absolute/path",
    GcsPath: "gs://bucket/path",
    DuckDBFile: "duckdb:///absolute/path/warehouse.duckdb",
    BigQueryDataset: "bigquery://project.dataset",
}
#: The forms ``--warehouse`` takes.
WAREHOUSE_FORMS = (DuckDBFile, BigQueryDataset)


def parse_location(
    value: str | os.PathLike[str], *, option: str, error: ErrorType = UriError
) -> LocalPath | GcsPath:
    """A local directory or a Cloud Storage folder; raises ``error`` naming ``option`` otherwise."""
    return _parse(value, (LocalPath, GcsPath), "a location", option, error)


def parse_warehouse(
    value: str, *, option: str = "--warehouse", error: ErrorType = UriError
) -> DuckDBFile | BigQueryDataset:
    """A DuckDB file or a BigQuery dataset; raises ``error`` naming ``option`` otherwise."""
    return _parse(value, WAREHOUSE_FORMS, "a warehouse URI", option, error)


def _parse(
    value: str | os.PathLike[str], forms: tuple[type[Form], ...], noun: str, option: str, error: ErrorType
) -> Form:
    """``value`` read as one of ``forms``; the message of a refusal names the form its scheme chose."""
    shown = os.fspath(value)
    text = shown.strip()
    expected: tuple[type, ...] = forms
    try:
        if not text:
            raise _Refused("is empty")
        if "://" not in text and not text.startswith("file:"):
            if LocalPath not in forms:
                raise _Refused(f"is not {noun} (it has no scheme)")
            return LocalPath(text)
        parts = urlsplit(text)
        form = {SCHEMES[f]: f for f in forms}.get(parts.scheme)
        if form is None:
            raise _Refused(f"is not {noun} (unsupported scheme {parts.scheme!r})")
        expected = (form,)
        if parts.query or parts.fragment:
            raise _Refused("has a query or fragment")
        return _read(parts)
    except _Refused as problem:
        examples = " or ".join(EXAMPLES[f] for f in expected)
        raise error(f"{option}: {shown!r} {problem}; expected {examples}") from None


def _read(parts: SplitResult) -> LocalPath | GcsPath | DuckDBFile | BigQueryDataset:
    """The value a URI of a known scheme names; raises _Refused saying what is wrong with it."""
    scheme, netloc, path = parts.scheme, parts.netloc, parts.path
    if scheme == "file":
        if netloc not in ("", "localhost") or not path.startswith("/"):
            raise _Refused("is not an absolute file URI")
        return LocalPath(_normalised(path))
    if scheme == "gs":
        if not _BUCKET.match(netloc):
            raise _Refused("does not name a valid bucket")
        return GcsPath(netloc, _normalised(path or "/"))
    if scheme == "duckdb":
        if netloc or not path.startswith("/") or path.endswith("/"):
            raise _Refused("does not name an absolute file path (note the three slashes)")
        return DuckDBFile(path)
    # A dataset id has no dots; a domain-scoped project id ("example.com:p") may.
    project, _, dataset = netloc.rpartition(".")
    if not project or not dataset or path not in ("", "/"):
        raise _Refused("is not a BigQuery dataset URI")
    return BigQueryDataset(project, dataset)


def _normalised(path: str) -> str:
    # PurePosixPath drops trailing slashes and doubled separators; ".." is refused
    # rather than resolved, since on Cloud Storage it means nothing.
    if ".." in PurePosixPath(path).parts:
        raise _Refused("contains '..'")
    return str(PurePosixPath(path))


@dataclass(frozen=True)
class FileUri:
    """A file as Hadoop names it: ``scheme`` (``file`` for a bare path), ``bucket`` (gs:// only) and ``path``."""

    scheme: str
    bucket: str
    path: str

    @property
    def object_path(self) -> str:
        """``bucket/path`` for gs://, the path itself for a local file: what Arrow's file systems take."""
        return f"{self.bucket}{self.path}" if self.scheme == "gs" else self.path


def file_uri(uri: str) -> FileUri:
    """``file:/a``, ``file:///a``, ``/a`` or ``gs://b/a`` read alike, the path unquoted:
    the checkpoint's log, a scan's rows and Spark's writers spell one file differently."""
    parts = urlsplit(uri)
    return FileUri(parts.scheme or "file", parts.netloc, unquote(parts.path))
