"""``python -m producer``: run the producer until SIGTERM or SIGINT (``python -m producer backfill …``:
back-fill a range once, :mod:`producer.ondemand`).

Thin on purpose: settings come from ``CRYPTOPIPE__PRODUCER__*`` (see
the README), are logged with the key masked, and the tested
:meth:`Poller.run` does the work. Exit codes: 0 after a signal, 2 for a
configuration error, 1 if the poll loop died (a bug).

On a signal the poll in flight finishes without retries and is spooled and landed;
the process exits within ``shutdown_grace_seconds`` even if the API or the landing
zone hangs: anything finished is already in the spool by then, and the next start
lands it.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading

from producer.apikey import resolve_api_key
from producer.config import ProducerConfig
from producer.errors import ConfigError
from producer.logs import JsonFormatter, log_event
from producer.poller import Poller

log = logging.getLogger("producer")


def main() -> int:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise next to ours
    try:
        config = resolve_api_key(ProducerConfig.from_env())
        log_event(log, logging.INFO, "config", **config.masked())
        poller = Poller.from_config(config)
    except ConfigError as exc:
        log_event(log, logging.ERROR, "config_error", error=str(exc))
        return 2

    stop = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        log_event(log, logging.INFO, "stop_requested", signal=signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    # A daemon thread: if the poll in flight outlives the grace period (a hung
    # connection), the process still exits; the spool already holds finished polls.
    worker = threading.Thread(target=poller.run, args=(stop,), name="poller", daemon=True)
    worker.start()
    while worker.is_alive() and not stop.is_set():
        worker.join(0.5)  # short joins let the signal handler run promptly
    if not stop.is_set():  # run() never returns on its own: something is badly wrong
        log_event(log, logging.ERROR, "poller_died", note="see the traceback above; systemd restarts the service")
        return 1
    worker.join(config.shutdown_grace_seconds)
    if worker.is_alive():
        log_event(
            log,
            logging.WARNING,
            "shutdown_grace_exceeded",
            grace_seconds=config.shutdown_grace_seconds,
            note="the poll in flight was abandoned; finished polls are in the spool and land on the next start",
        )
    else:
        poller.close()
    logging.shutdown()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["backfill"]:
        from producer.ondemand import main as backfill

        sys.exit(backfill(sys.argv[2:]))
    sys.exit(main())
