"""Settings read from the environment: the one mechanism of the producer and the deployment.

Both are pydantic-settings models (``BaseSettings``): typed fields, each with a
docstring (its ``description``), read from variables under a prefix and from what
the code passes, and checked at construction. This module holds what both need
beyond the library:

- :data:`CommaSeparated`: a list written ``a,b,c`` in one variable (the library would
  read JSON there);
- :class:`StrictEnvSource`: a variable under the prefix that names no field is refused
  (the library ignores it), so a typo cannot leave a default silently in force;
- :func:`matching`: a pattern check whose refusal says, in words, what was expected;
- :class:`Refused` and :func:`problems`: every refusal as the field, the value and what
  was expected, which each part words for its own readers (a variable, a TOML field,
  a command-line option).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ValidationError
from pydantic_settings import BaseSettings, EnvSettingsSource, NoDecode, PydanticBaseSettingsSource


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list):  # TOML and JSON lists
        return tuple(value)
    return value


#: Strings written ``a, b,c`` in a variable (blanks and empty items dropped), or given as a list.
CommaSeparated = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split)]


def matching(pattern: str, expected: str) -> AfterValidator:
    """A check that a string (or every string of a tuple) matches ``pattern`` whole; None passes.

    Refused, it says ``expected <expected>``: words, where pydantic's own pattern
    check would show the regular expression.
    """
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        items = value if isinstance(value, tuple) else (value,)
        if any(item is not None and not compiled.fullmatch(item) for item in items):
            raise ValueError(f"expected {expected}")
        return value

    return AfterValidator(check)


class StrictEnvSource(EnvSettingsSource):
    """The environment under the model's prefix, where a variable that names no field is
    passed on under its own (upper-case) name, for the model's ``extra="forbid"`` to refuse.

    Built in the model's ``settings_customise_sources`` from the library's source, whose
    prefix may have been chosen per instance (``_env_prefix``).
    """

    def __call__(self) -> dict[str, Any]:
        values = super().__call__()
        prefix = self.env_prefix if self.case_sensitive else self.env_prefix.lower()
        known = {prefix + (name if self.case_sensitive else name.lower()) for name in self.settings_cls.model_fields}
        unknown = [name for name in self.env_vars if name.startswith(prefix) and name not in known]
        return {**values, **{name.upper(): self.env_vars[name] for name in unknown}}


class StrictSettings(BaseSettings):
    """Settings from keywords and the environment only (no ``.env`` file, no secrets
    directory), where a variable under the model's prefix that names no field is refused."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return cls.ordered_sources(init_settings, StrictEnvSource(settings_cls, env_prefix=env_settings.env_prefix))

    @classmethod
    def ordered_sources(
        cls, init_settings: PydanticBaseSettingsSource, env_settings: StrictEnvSource
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The sources, highest first: by default keywords over the environment."""
        return init_settings, env_settings


@dataclass(frozen=True)
class Problem:
    """One refused setting."""

    kind: str
    """``invalid``, ``unknown`` (names no field) or ``missing`` (required, not given)."""
    field: str
    """The field; for an unknown one, the keyword or the variable as given."""
    value: Any
    """The value as given (the variable's text, when it came from the environment)."""
    reason: str
    """What was expected, e.g. ``expected a valid integer``."""


class Refused(Exception):
    """Raised by a check across fields (a model validator) to name the one field to change.

    Not a ValueError on purpose: pydantic passes it through as it is, where it would
    file a ValueError under no field.
    """

    def __init__(self, field: str, value: Any, reason: str) -> None:
        super().__init__(f"{field}={value!r}: {reason}")
        self.problem = Problem("invalid", field, value, reason)


_KINDS = {"missing": "missing", "extra_forbidden": "unknown"}


def problems(error: ValidationError | Refused) -> list[Problem]:
    """What ``error`` refused, in the order of the fields."""
    if isinstance(error, Refused):
        return [error.problem]
    found = []
    for item in error.errors(include_url=False):
        if item["type"] == "value_error":  # our own checks: the message is the reason
            reason = str(item["ctx"]["error"])
        else:  # pydantic's: "Input should be a valid integer" -> "expected a valid integer"
            reason = re.sub(r"^Input should be\b", "expected", item["msg"])
        field = str(item["loc"][0]) if item["loc"] else ""
        found.append(Problem(_KINDS.get(item["type"], "invalid"), field, item.get("input"), reason))
    return found


def _distinct_currencies(values: tuple[str, ...]) -> tuple[str, ...]:
    """At least one item, and none twice (a currency asked twice would spend its credits twice)."""
    if not values:
        raise ValueError("expected at least one currency code such as usd")
    repeated = sorted({value for value in values if values.count(value) > 1})
    if repeated:
        raise ValueError(f"expected each currency once, got {', '.join(repeated)} more than once")
    return values


#: CoinGecko quote currencies, ``usd,eur,btc``: the producer's ``vs_currencies`` and each
#: environment's, which the CDKTF app hands to the producer's VM.
CurrencyCodes = Annotated[
    CommaSeparated,
    matching(r"[a-z0-9]+", "comma-separated lower-case CoinGecko currency codes such as usd,eur,btc"),
    AfterValidator(_distinct_currencies),
]

#: CoinGecko coin ids, ``bitcoin,ethereum``: the producer's ``coin_ids`` and each environment's,
#: which the CDKTF app hands to the producer's VM.
CoinIds = Annotated[
    CommaSeparated, matching(r"[a-z0-9][a-z0-9._-]*", "comma-separated CoinGecko ids such as bitcoin,ethereum")
]
