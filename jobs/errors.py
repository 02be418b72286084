"""Errors the streaming job and its loaders raise.

::

    JobError                      base of everything below
    ├── ConfigError               an option or URI is invalid: fix the value and rerun
    └── WarehouseError            the warehouse refused an operation
        ├── WarehouseLockedError  another process kept the warehouse file locked for the
        │                         whole wait: retryable, try again when it is done
        └── LoadJobFailedError    a batch's BigQuery load jobs failed in this run: the
                                  stream exits non-zero; a restart tries new attempts

Messages name the offending value, what was expected, and where it came from.
"""

from __future__ import annotations


class JobError(Exception):
    """Base class of the job's own errors."""


class ConfigError(JobError, ValueError):
    """Raised when an option, URI or combination of options cannot work."""


class WarehouseError(JobError):
    """Raised when the warehouse cannot be opened or written."""


class WarehouseLockedError(WarehouseError):
    """Raised when another process held the warehouse's lock longer than we waited.

    Retryable: the holder (e.g. a running stream, or a long dashboard query) will
    release it.
    """


class LoadJobFailedError(WarehouseError):
    """Raised when every BigQuery load job this run started for a batch failed.

    The stream then stops with a non-zero exit and Dataproc restarts the driver. The
    replayed batch skips the failed jobs (their ids are deterministic) and starts
    the next attempts: a passing fault heals by itself, a lasting one (a changed
    table, a missing permission) costs a couple of failed jobs per restart until
    it is fixed. The message carries each job's id and error.
    """
