"""What can go wrong in the producer, sorted by what the caller should do about it.

::

    ProducerError
    ├── ConfigError            a setting is wrong: fix it and restart (exit 2 at start-up)
    ├── RetryableError         one attempt failed; the same call may succeed later
    │   ├── ApiUnavailable     timeout, connection reset, 408 or 5xx from CoinGecko
    │   ├── RateLimited        429 (or an error object with code 429); may carry Retry-After
    │   ├── BadPayload         a 2xx whose body is not a usable list of records
    │   └── LandingUnavailable the landing zone could not be written; the poll stays spooled
    ├── FatalError             trying the same call again cannot help
    │   ├── ApiRejected        a 4xx other than 408/429: key, plan, host or parameters are wrong
    │   ├── LandingConflict    the landing object exists with different content
    │   └── SpoolFull          the spool holds ``spool_max_polls`` polls; the new one is dropped
    └── GaveUp                 no time left: the poll's deadline or a shutdown came first

Retryable errors are failed attempts: the API client retries them within a poll,
the spool retries landing on the next cycle. Nothing in this tree ever leaves the
poll loop: a poll that finally fails is logged and the next one runs on schedule.
"""

from __future__ import annotations


class ProducerError(Exception):
    """Base of every error the producer raises on purpose."""


class ConfigError(ProducerError):
    """Raised at start-up when a setting is missing or invalid; the message names the
    setting, its environment variable, the bad value and what is expected."""


class RetryableError(ProducerError):
    """Raised for one failed attempt that a later attempt may get past.

    ``retry_after`` is the server's ``Retry-After`` in seconds when it sent one.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApiUnavailable(RetryableError):
    """Raised when CoinGecko could not be reached or answered 408/5xx."""


class RateLimited(RetryableError):
    """Raised when CoinGecko answered 429, as a status or inside an error object."""


class BadPayload(RetryableError):
    """Raised when a 2xx body is not a non-empty JSON list: an HTML page from a CDN,
    truncated JSON, an error object, or an empty list."""


class LandingUnavailable(RetryableError):
    """Raised when the landing zone cannot take an object right now (network, outage,
    permissions); the poll stays in the spool and is retried next cycle."""


class FatalError(ProducerError):
    """Base of errors that repeating the same call cannot fix."""


class ApiRejected(FatalError):
    """Raised when CoinGecko refused the request itself (400, 401, 403, 404, ...)."""


class LandingConflict(FatalError):
    """Raised when an object of the same name already exists with other content: the
    create-only contract was broken by someone else; the poll is quarantined."""


class SpoolFull(FatalError):
    """Raised when the spool already holds ``spool_max_polls`` polls."""


class GaveUp(ProducerError):
    """Raised when waiting for a request slot, ``Retry-After`` or a backoff would pass
    the poll's deadline, or when a shutdown was requested."""
