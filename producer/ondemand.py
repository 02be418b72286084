"""``python -m producer backfill --from … --to … [--coin-ids …]``: back-fill a range on the VM.

The same settings as the service (``CRYPTOPIPE__PRODUCER__*``, the key from Secret
Manager), the same landing zone and back-fill spool; it waits for the back-fill lock,
so it never runs beside the service's own back-fill, and takes only the requests the
live polls leave over (docs/PRODUCER.md "Back-fill"). Exit codes: 0 when every coin
landed (or had before), 1 when some chart could not be fetched or the landing zone
was unreachable (run it again: what landed is skipped), 2 for a usage or settings error.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict

from producer.apikey import resolve_api_key
from producer.backfill import BackfillError, CoinSetUnavailable, parse_moment, run_backfill
from producer.coingecko import CoinGeckoClient
from producer.config import ProducerConfig
from producer.errors import ConfigError
from producer.landing import open_landing_zone
from producer.logs import JsonFormatter


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog="python -m producer backfill", description=__doc__.splitlines()[0])
    parse.add_argument("--from", dest="start", required=True, help="Start: ISO 8601 (UTC unless given) or unix s.")
    parse.add_argument("--to", dest="end", required=True, help="End, at most now.")
    parse.add_argument("--coin-ids", default="", help="These coins (comma-separated) instead of the configured set.")
    return parse


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)  # exits 2 on a usage error
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        overrides = {"coin_ids": args.coin_ids} if args.coin_ids else {}
        config = resolve_api_key(ProducerConfig.from_env(**overrides))
        start, end = parse_moment(args.start, "--from"), parse_moment(args.end, "--to")
        landing = open_landing_zone(
            config.landing_uri, timeout_seconds=config.gcs_timeout_seconds, retry_seconds=config.gcs_retry_seconds
        )
        with CoinGeckoClient(config) as client:
            report = run_backfill(config, start, end, client=client, landing=landing)
    except (BackfillError, ConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except CoinSetUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(asdict(report)))
    return 1 if report.failed or report.spooled else 0
