"""The producer's and the stream's settings for a local run, built for its layout.

Each part keeps its own typed settings (:class:`producer.ProducerConfig`,
:class:`jobs.StreamConfig`) and owns their defaults; a local run only adds what differs
on one machine: its folders, and the bundled replay's faster pace. The CLI shows the
defaults from here and from those classes, never a copy of them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any

from cryptopipe.errors import PipelineError
from core.layout import LocalLayout

if TYPE_CHECKING:
    from jobs import StreamConfig
    from producer import ProducerConfig

SOURCES = ("live", "replay")

#: Seconds between polls of the bundled replay: its frames move this often, so a
#: local run shows prices moving without waiting a minute per step. (The live API
#: keeps the producer's own default interval: CoinGecko caches /coins/markets for
#: 45-60 s, so polling it faster only fetches the same rows again.)
REPLAY_INTERVAL_SECONDS = 10.0

#: The replay's request budget: the server is ours, with no public rate limit to
#: respect, so only enough for every page of a poll each interval.
REPLAY_REQUESTS_PER_MINUTE = 600


def producer_default(field: str) -> Any:
    """The producer's own default for ``field`` (what a live run polls with unless told otherwise)."""
    from producer import ProducerConfig

    return ProducerConfig.model_fields[field].default


def producer_configured(field: str) -> Any:
    """``field`` as a producer started here would run with it: ``CRYPTOPIPE__PRODUCER__*`` over the
    default (a part showing what the producer lands, like the dashboard's currencies). A refused
    variable raises :class:`producer.config.InvalidSetting`."""
    from producer import ProducerConfig

    return getattr(ProducerConfig.from_env(), field)


def producer_setting(field: str, value: Any) -> Any:
    """``value`` checked and converted by the producer's own rules for ``field`` (``"usd,eur"`` ->
    ``("usd", "eur")``), for a part that takes one producer setting without the rest; a
    refused value raises :class:`producer.config.InvalidSetting`."""
    from pydantic import TypeAdapter, ValidationError

    from core.settings import problems
    from producer import ProducerConfig
    from producer.config import InvalidSetting

    spec = ProducerConfig.model_fields[field]
    try:
        return TypeAdapter(Annotated[spec.annotation, *spec.metadata]).validate_python(value)
    except ValidationError as error:
        raise InvalidSetting(replace(problems(error)[0], field=field)) from None


def default_trigger_seconds() -> float:
    """Seconds between the stream's micro-batches when not told: the local warehouse's own default."""
    from jobs.loaders.duckdb import DuckDBWarehouse

    return DuckDBWarehouse.default_trigger_seconds


def default_interval_seconds(source: str) -> float:
    """Seconds between polls of ``source`` when no option or variable says otherwise."""
    return REPLAY_INTERVAL_SECONDS if source == "replay" else producer_default("interval_seconds")


def producer_config(layout: LocalLayout, source: str, **settings: Any) -> ProducerConfig:
    """The producer's settings for a run of ``source`` on ``layout``: ``CRYPTOPIPE__PRODUCER__*``
    over the defaults, then the replay's pace and budget and the layout's folders, then
    ``settings``. A refused value raises :class:`producer.config.InvalidSetting`."""
    from producer import ProducerConfig

    if source not in SOURCES:
        raise PipelineError(f"source {source!r} is not one of {', '.join(SOURCES)}")
    by_source = (
        {"interval_seconds": REPLAY_INTERVAL_SECONDS, "requests_per_minute": REPLAY_REQUESTS_PER_MINUTE}
        if source == "replay" else {}
    )
    folders = {"landing_uri": str(layout.landing), "spool_dir": str(layout.spool),
               "health_file": str(layout.producer_heartbeat)}
    return ProducerConfig.from_env(**{**by_source, **folders, **settings})


def stream_config(layout: LocalLayout, **settings: Any) -> StreamConfig:
    """The stream's settings for ``layout``: its folders and DuckDB file, then ``settings``
    (``trigger_seconds=…``; None keeps the warehouse's default). A refused value raises
    :class:`jobs.ConfigError`, naming the option."""
    from jobs import StreamConfig

    places = StreamConfig.locations(
        landing=layout.landing, archive=layout.archive, checkpoint=layout.checkpoint, staging=layout.staging
    )
    given = {name: value for name, value in settings.items() if value is not None}
    return StreamConfig(**places, warehouse=layout.warehouse_uri, **given)
