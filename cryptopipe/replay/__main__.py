"""Run the replay server until Ctrl-C: ``python -m cryptopipe.replay --port 8765``.

At scale, as a paid plan: ``python -m cryptopipe.replay --coins 18000 --plan analyst``.
"""

from __future__ import annotations

import argparse
import sys
import time

from core.coingecko_plans import PLANS

from ..interrupt import stop_on_ctrl_c
from .market import Market
from .server import ReplayServer

#: The longest the main thread sleeps between looks at a pending Ctrl-C.
WAIT_SECONDS = 1.0


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
    parser.add_argument(
        "--coins", type=int, default=None,
        help="serve a synthetic market of this many coins made from the bundled one (default: the bundled coins)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the synthetic market's seed (default: %(default)s)")
    parser.add_argument(
        "--plan", choices=[name for name, plan in PLANS.items() if plan.calls_per_minute or plan.monthly_credits],
        default=None, help="play this CoinGecko plan's rate limit and monthly credits (the options above win)",
    )
    args = parser.parse_args(argv)
    stop_on_ctrl_c()
    if args.coins is not None and args.coins < 1:
        parser.error(f"--coins must be at least 1, got {args.coins}")
    given = {"host": args.host, "port": args.port, "frame_seconds": args.frame_seconds, "rebase": args.rebase,
             "market": Market.synthetic(args.coins, seed=args.seed) if args.coins else None}
    given.update({name: value for name, value in (("rate_limit_per_minute", args.rate_limit_per_minute),
                                                   ("monthly_credits", args.monthly_credits)) if value is not None})
    server = ReplayServer.playing(args.plan, **given) if args.plan else ReplayServer(**given)
    try:
        server.start()
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    coins, every = len(server.market.ids), f"{args.frame_seconds:g} s"
    limits = f"; {server.rate_limit_per_minute} calls a minute" if server.rate_limit_per_minute else ""
    limits += f", {server.monthly_credits:,} credits" if server.monthly_credits else ""
    try:
        print(f"Replaying {coins} coins at {server.url} (a frame every {every}{limits}); Ctrl-C stops.", flush=True)
        while True:
            # A second at a time: the kernel may hand Ctrl-C's SIGINT to a serving thread, and
            # CPython runs the handler in this thread only once it runs again; one long wait never would.
            time.sleep(WAIT_SECONDS)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
