"""The Spark Structured Streaming job and the warehouses it loads into.

``jobs/stream.py`` is the entry point (``spark-submit`` on Dataproc, in-process for
``cryptopipe up``); ``jobs/loaders`` holds the warehouse contract and its DuckDB and
BigQuery implementations. Importing this package imports neither Spark nor a
warehouse client. docs/STREAM.md describes the job.
"""
