"""The floor every part of cryptopipe stands on, and which stands on nothing of ours.

- :mod:`core.schema`: the one market tick record schema (``schemas/market_tick.json``)
  and what is derived from it: validation model, Spark schema, DuckDB and BigQuery columns;
- :mod:`core.tables`: the warehouse's tables (ticks and quarantine) as every part sees them;
- :mod:`core.views`: the views' SQL, written once for BigQuery and DuckDB;
- :mod:`core.totals`: a thread-safe holder of live counters;
- :mod:`core.timefmt`: times as text, UTC to the millisecond;
- :mod:`core.uris`: the one parser of the pipeline's URIs (landing, locations, warehouses);
- :mod:`core.gcp`: Google Cloud's naming rules (project ids);
- :mod:`core.coingecko_plans`: CoinGecko's plans and credits, and whether a schedule lasts the month;
- :mod:`core.settings`: what the producer's and the deployment's typed settings share;
- :mod:`core.joboptions`: the streaming job's command line, for everything that builds one.

``producer`` and ``jobs`` import only this package; the CDKTF app (``cdktf/``) imports
only this package and ships ``core/`` beside each workload; the local app
(``cryptopipe``) sits on top of all of them. ``tests/test_layers.py`` keeps it so.
"""
