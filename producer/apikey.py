"""Reading the CoinGecko key from Secret Manager at start-up.

On the VM the key lives in Secret Manager, not in the unit file or the metadata, so
nothing that can read the instance's configuration sees it. Locally it comes from
``CRYPTOPIPE__PRODUCER__API_KEY`` and this module is not involved.
"""

from __future__ import annotations

from typing import Any

from producer.config import ProducerConfig
from producer.errors import ConfigError

SECRET_MANAGER_PIN = "google-cloud-secret-manager==2.32.0"


def resolve_api_key(config: ProducerConfig, client: Any = None) -> ProducerConfig:
    """Return ``config`` with the key from ``api_key_secret`` when that is set.

    ``client`` is a ``SecretManagerServiceClient``; by default one is built with the
    VM's service account (it needs ``roles/secretmanager.secretAccessor`` on the secret).
    An ``api_key`` set directly wins, so a local override needs no GCP access.
    """
    if config.api_key or not config.api_key_secret:
        return config
    if client is None:
        try:
            from google.cloud import secretmanager
        except ImportError:
            raise ConfigError(
                f"CRYPTOPIPE__PRODUCER__API_KEY_SECRET={config.api_key_secret!r} is set but the Secret "
                f"Manager client is not installed: pip install {SECRET_MANAGER_PIN}"
            ) from None
        client = secretmanager.SecretManagerServiceClient()
    try:
        response = client.access_secret_version(name=config.api_key_secret)
    except Exception as exc:  # the client raises many types; all mean "no key"
        raise ConfigError(
            f"cannot read CRYPTOPIPE__PRODUCER__API_KEY_SECRET={config.api_key_secret!r}: {exc}. "
            "Expected a version name like projects/P/secrets/S/versions/latest that the "
            "producer's service account may access"
        ) from exc
    key = response.payload.data.decode("utf-8").strip()
    if not key:
        raise ConfigError(f"secret {config.api_key_secret!r} is empty: add a version holding the CoinGecko key")
    return config.with_api_key(key)
