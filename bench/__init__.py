"""Benchmarks of cryptopipe against the seed design (docs/BENCHMARKS.md).

Scripts, not tests: ``.venv/bin/python -m bench freshness|catchup|growth|footprint|all``.
Each writes ``bench/results/<name>.json`` and regenerates ``docs/BENCHMARKS.md``.
"""
