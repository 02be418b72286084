-- candles_1m: one-minute candles per coin and quote currency, by event time.
--
-- GoogleSQL (BigQuery); core.views translates it for DuckDB. open and close
-- are the prices of the minute's first and last tick; the stream de-duplicates on
-- (coin_id, vs_currency, last_updated), so they are well defined.
SELECT
  coin_id,
  vs_currency,
  TIMESTAMP_TRUNC(last_updated, MINUTE) AS minute,
  MIN_BY(price, last_updated) AS open,
  MAX(price) AS high,
  MIN(price) AS low,
  MAX_BY(price, last_updated) AS close,
  COUNT(*) AS samples
FROM market_ticks
GROUP BY coin_id, vs_currency, minute
