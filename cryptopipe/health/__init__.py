"""A local pipeline's health: the cloud alerts' signals, read on one machine and judged alike.

Three steps, three modules, one direction:

- :mod:`~cryptopipe.health.state`: what ``cryptopipe up`` writes for another process
  to read (the stream's state file; the producer writes its own heartbeat);
- :mod:`~cryptopipe.health.judge`: those files and the warehouse read as the alerts'
  signals and judged against core/health.py's thresholds, the same the CDKTF app turns
  into Cloud Monitoring policies;
- :mod:`~cryptopipe.health.render`: the verdicts as ``cryptopipe status`` prints them
  and as the dashboard's health endpoint answers them.

| signal | cloud (cdktf/infra/stacks/alerts.py) | here |
|---|---|---|
| data age | the batch lines' ``data_age_seconds`` | ``max(last_updated)`` in the DuckDB warehouse |
| producer heartbeat | ``poll`` events in Cloud Logging | the producer's heartbeat file, written every poll |
| CoinGecko credits | none yet (the ``credits`` event's ``short``) | the heartbeat's ``credits``, the producer's projection |
| stream state | batch and idle lines; ``stream_started`` lines | :class:`~cryptopipe.health.state.StreamWatch`'s file, written every second |
| quarantine rate | quarantined over read lines, 15 min | the same, from the stream's running totals |
"""
