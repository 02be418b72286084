"""The Spark Structured Streaming job and the warehouses it loads into.

``jobs/stream.py`` is the entry point (``spark-submit`` on Dataproc, in-process for
``cryptopipe up``); ``jobs/loaders`` holds the warehouse contract and its DuckDB
implementation. Importing this package imports neither Spark nor DuckDB.
"""
