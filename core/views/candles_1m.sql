-- candles_1m: one-minute candles per coin and quote currency, by event time.
--
-- GoogleSQL (BigQuery); core.views translates it for DuckDB. open and close
-- are the prices of the minute's first and last tick; the stream de-duplicates on
-- (coin_id, vs_currency, last_updated), so they are well defined. CoinGecko reports
-- volume only over a rolling 24 hours, never per trade, so a minute's total_volume is
-- the highest such figure its ticks carry, not what traded within the minute (MAX, not
-- the close's value: MAX skips NULLs the same way in both dialects, which MAX_BY with a
-- NULL value is not documented to do). Back-filled points (origin = 'backfill', 5-minutely
-- to daily from CoinGecko's market charts) make candles too; backfilled says a minute
-- has nothing else, so a chart can draw those stretches as the coarser data they are
-- (rows from before the origin column hold NULL: live polls).
SELECT
  coin_id,
  vs_currency,
  TIMESTAMP_TRUNC(last_updated, MINUTE) AS minute,
  MIN_BY(price, last_updated) AS open,
  MAX(price) AS high,
  MIN(price) AS low,
  MAX_BY(price, last_updated) AS close,
  MAX(total_volume) AS total_volume,
  COUNT(*) AS samples,
  LOGICAL_AND(COALESCE(origin, 'poll') = 'backfill') AS backfilled
FROM market_ticks
GROUP BY coin_id, vs_currency, minute
