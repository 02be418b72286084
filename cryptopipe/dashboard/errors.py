"""Errors of the dashboard and its query backends.

::

    DashboardError            base of everything below
    ├── BadWarehouse          the warehouse's address is malformed; the message names
    │                         it and the accepted forms
    ├── BackendUnavailable    the warehouse cannot answer: no file yet, no views, no
    │                         credentials, a failed query; the message says how to fix it
    │   └── BackendBusy       the stream held the DuckDB file for the whole wait:
    │                         retryable, and the dashboard serves its last good answer
    ├── BadRequest            a query parameter is invalid (an HTTP 400); the message
    │                         names the value and what is accepted
    └── NotFound              a well-formed request for a coin the warehouse has no
                              latest price of (an HTTP 404)
"""

from __future__ import annotations


class DashboardError(Exception):
    """Base class of the dashboard's own errors."""


class BadWarehouse(DashboardError):
    """Raised for a warehouse address that names no DuckDB file or BigQuery dataset."""


class BackendUnavailable(DashboardError):
    """Raised when the warehouse cannot answer a query; the message says why."""


class BackendBusy(BackendUnavailable):
    """Raised when the writer kept the warehouse locked for longer than a reader waits.

    Retryable: the stream lets go after each micro-batch.
    """


class BadRequest(DashboardError, ValueError):
    """Raised for an invalid API parameter."""


class NotFound(DashboardError, LookupError):
    """Raised for a coin with no latest price in the quote currency."""
