"""``python -m bench freshness|freshness-bigquery|catchup|growth|scale|footprint|all``; see docs/BENCHMARKS.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.common import BenchFailure

NAMES = ("catchup", "growth", "freshness", "freshness-bigquery", "scale", "footprint")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("benchmark", choices=(*NAMES, "all", "doc"), help="'doc' only regenerates docs/BENCHMARKS.md")
    parser.add_argument("--files", type=int, default=2000, help="catch-up backlog files (default 2000)")
    parser.add_argument("--seed-files", type=int, default=5, help="files the seed (with de-duplication) drains")
    parser.add_argument("--seed-plain-files", type=int, default=40, help="files the seed without de-duplication drains")
    parser.add_argument("--ours-result", type=Path, help="catch-up: reuse this project's run (a JSON line it printed)")
    parser.add_argument("--sizes", default="1000,10000,50000,100000", help="growth: files already landed")
    parser.add_argument("--triggers", type=int, default=12, help="growth: triggers measured per size")
    parser.add_argument("--minutes", type=float, default=5.0, help="freshness, scale: minutes of the local pipeline")
    parser.add_argument("--coins", type=int, default=18_000, help="scale: coins the replay lists (default 18000)")
    parser.add_argument("--currencies", default="usd,eur,btc",
                        help="scale: quote currencies the one producer polls (default usd,eur,btc)")
    parser.add_argument("--skip-tests", action="store_true", help="footprint: do not time the test suite")
    args = parser.parse_args(argv)
    selected = NAMES if args.benchmark == "all" else () if args.benchmark == "doc" else (args.benchmark,)
    failed = []
    for name in selected:
        try:
            if name == "catchup":
                from bench import catchup

                catchup.main(
                    files=args.files, seed_files=args.seed_files, seed_plain_files=args.seed_plain_files,
                    ours_result=args.ours_result,
                )
            elif name == "growth":
                from bench import growth

                growth.main(sizes=[int(s) for s in args.sizes.split(",")], triggers=args.triggers)
            elif name == "freshness":
                from bench import freshness

                freshness.main(minutes=args.minutes)
            elif name == "freshness-bigquery":
                from bench import freshness_bigquery

                freshness_bigquery.main(minutes=args.minutes)
            elif name == "scale":
                from bench import scale

                scale.main(minutes=args.minutes, coins=args.coins, currencies=tuple(args.currencies.split(",")))
            elif name == "footprint":
                from bench import footprint

                footprint.main(run_tests=not args.skip_tests)
        except BenchFailure as error:
            print(f"bench {name}: FAILED: {error}", file=sys.stderr)
            failed.append(name)
    from bench import report

    report.write()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
