"""``cryptopipe backfill``: fill a range of the local pipeline from CoinGecko's market charts.

The producer's on-demand back-fill (:func:`producer.backfill.run_backfill`) with the
local layout's landing zone and spool, against the live API or the bundled replay;
``cryptopipe up`` (or its next start) streams what lands into the warehouse, each
point once, and running the same back-fill again adds nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.layout import LocalLayout
from cryptopipe.settings import producer_config

if TYPE_CHECKING:
    from producer import BackfillReport


def backfill(layout: LocalLayout, source: str, start: datetime, end: datetime, **settings: Any) -> BackfillReport:
    """Back-fill ``start``-``end`` into ``layout``'s landing zone; ``settings`` as for
    :func:`cryptopipe.settings.producer_config` (``coin_ids=…``).

    Raises :class:`producer.BackfillError` (a bad range, an unknown coin, no spare
    budget), :class:`producer.config.InvalidSetting`, or
    :class:`producer.backfill.CoinSetUnavailable`.
    """
    from producer import run_backfill
    from producer.coingecko import CoinGeckoClient
    from producer.landing import LocalLandingZone

    config = producer_config(layout, source, **settings)
    layout.landing.mkdir(parents=True, exist_ok=True)
    replay = None
    if source == "replay":
        from cryptopipe.replay.server import ReplayServer

        replay = ReplayServer(frame_seconds=config.interval_seconds, rebase=True).start()
        config = config.model_copy(update={"base_url": replay.url})
    try:
        with CoinGeckoClient(config) as client:
            return run_backfill(config, start, end, client=client, landing=LocalLandingZone(layout.landing))
    finally:
        if replay is not None:
            replay.stop()
