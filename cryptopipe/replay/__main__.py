"""Run the replay server until Ctrl-C: ``python -m cryptopipe.replay --port 8765``."""

from __future__ import annotations

import argparse
import sys
import threading

from .server import ReplayServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cryptopipe.replay",
        description="Serve the bundled CoinGecko /coins/markets replay on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port (default: %(default)s)")
    parser.add_argument(
        "--frame-seconds", type=float, default=60.0, help="seconds between frames (default: %(default)s)"
    )
    parser.add_argument(
        "--no-rebase",
        dest="rebase",
        action="store_false",
        help="keep the snapshot's fixed 2025 timestamps instead of starting frame 0 now",
    )
    parser.add_argument(
        "--rate-limit-per-minute", type=int, default=None, help="answer 429 above this many calls a minute"
    )
    parser.add_argument(
        "--monthly-credits", type=int, default=None,
        help="play an account with this many call credits: /key reports them, and 429 once spent",
    )
    args = parser.parse_args(argv)
    server = ReplayServer(
        host=args.host,
        port=args.port,
        frame_seconds=args.frame_seconds,
        rebase=args.rebase,
        rate_limit_per_minute=args.rate_limit_per_minute,
        monthly_credits=args.monthly_credits,
    )
    try:
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    coins, every = len(server.market.ids), f"{args.frame_seconds:g} s"
    print(f"Replaying {coins} coins at {server.url} (a frame every {every}); Ctrl-C stops.", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
