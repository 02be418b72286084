-- latest_prices: each coin's newest tick, one row per coin and quote currency.
--
-- GoogleSQL (BigQuery); core.views translates it for DuckDB. Only ticks of
-- the last day are looked at: on BigQuery that keeps the scan to the newest one or
-- two daily partitions however long the table grows (a dashboard reads this view
-- every few seconds), and a coin CoinGecko has not updated for a day is dead. Only
-- live polls count (origin 'poll', or NULL in rows from before the column): a
-- back-filled point carries no rank or 24 h change, and is history, not the latest.
SELECT
  coin_id,
  symbol,
  name,
  vs_currency,
  price,
  price_change_percentage_24h,
  market_cap,
  market_cap_rank,
  total_volume,
  last_updated,
  ingested_at,
  -- Seconds since the event time, as of the query.
  TIMESTAMP_DIFF(CURRENT_TIMESTAMP(), last_updated, MILLISECOND) / 1000 AS freshness_seconds
FROM (
  SELECT
    *,
    ROW_NUMBER() OVER (
      PARTITION BY coin_id, vs_currency
      ORDER BY last_updated DESC, ingested_at DESC
    ) AS recency
  FROM market_ticks
  WHERE last_updated >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL 1 DAY)
    AND COALESCE(origin, 'poll') = 'poll'
)
WHERE recency = 1
