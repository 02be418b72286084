"""The CoinGecko producer: poll ``/coins/markets``, validate, land one NDJSON object per poll.

The public surface is listed in ``__all__``; modules are split by concern
(config, coingecko, budget, credits, validate, landing, spool, poller, backfill, coverage, errors).
``python -m producer`` runs it as a service.
"""

from producer.backfill import Backfiller, BackfillError, BackfillReport, BackfillTask, run_backfill
from producer.budget import RequestBudget
from producer.coingecko import CoinGeckoClient, PageRequest, PageResult, parse_retry_after
from producer.config import ENV_PREFIX, ProducerConfig
from producer.credits import CreditLedger, Credits, CreditState
from producer.errors import (
    ApiRejected,
    ApiUnavailable,
    BadPayload,
    ConfigError,
    FatalError,
    GaveUp,
    LandingConflict,
    LandingUnavailable,
    ProducerError,
    RateLimited,
    RetryableError,
    SpoolFull,
)
from producer.landing import GcsLandingZone, LandingZone, LocalLandingZone, new_poll_id, object_name, open_landing_zone
from producer.poller import Poller, PollerStats, PollReport, StatsSnapshot
from producer.spool import Spool
from producer.validate import Rejection, Validation, parse_page, validate_records

__all__ = [
    "ENV_PREFIX",
    "ApiRejected",
    "ApiUnavailable",
    "BackfillError",
    "BackfillReport",
    "BackfillTask",
    "Backfiller",
    "BadPayload",
    "CoinGeckoClient",
    "ConfigError",
    "CreditLedger",
    "CreditState",
    "Credits",
    "FatalError",
    "GaveUp",
    "GcsLandingZone",
    "LandingConflict",
    "LandingUnavailable",
    "LandingZone",
    "LocalLandingZone",
    "PageRequest",
    "PageResult",
    "PollReport",
    "Poller",
    "PollerStats",
    "ProducerConfig",
    "ProducerError",
    "RateLimited",
    "Rejection",
    "RequestBudget",
    "RetryableError",
    "Spool",
    "SpoolFull",
    "StatsSnapshot",
    "Validation",
    "new_poll_id",
    "object_name",
    "open_landing_zone",
    "parse_page",
    "parse_retry_after",
    "run_backfill",
    "validate_records",
]
