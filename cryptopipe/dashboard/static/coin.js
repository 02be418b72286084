// The coin view (/coin/<id>): its latest figures and data age, and its one-minute
// candles over the chosen window on a log or linear axis (/api/coin?id=&window=&currency=).

import { MINUTE, timeRange } from "./axes.js";
import * as candleChart from "./candles.js";
import { showFit } from "./chart.js";
import { clockTime, compactMoney, duration, money, percent } from "./format.js";

const $ = (id) => document.getElementById(id);
let drawn = null; // {answer, scale, at}: the last answer, redrawn on resize and for the readout

export function load(view, getJSON) {
  return getJSON("/api/coin?" + new URLSearchParams({ id: view.coin, window: view.window, currency: view.currency }));
}

export function show(answer, view) {
  $("coin-error").hidden = true;
  $("coin-body").hidden = false;
  const c = answer.coin;
  const currency = answer.vs_currency;
  document.title = `${c.name} · cryptopipe`;
  $("coin-name").textContent = c.name;
  $("coin-symbol").textContent = c.symbol;
  $("coin-rank").textContent = c.market_cap_rank ? `#${c.market_cap_rank}` : "unranked";
  $("coin-price").textContent = money(c.price, currency);
  $("coin-price").dataset.currency = currency;
  const change = $("coin-change");
  change.textContent = percent(c.price_change_percentage_24h);
  change.className = c.price_change_percentage_24h >= 0 ? "up" : "down";
  $("coin-mcap").textContent = compactMoney(c.market_cap, currency);
  const volumes = answer.candles.total_volume.filter((v) => v !== null);
  $("coin-volume").textContent = compactMoney(volumes.length ? volumes[volumes.length - 1] : null, currency);
  const age = $("coin-age");
  age.textContent = `${duration(c.age_seconds)} ago`;
  age.dataset.ageSeconds = c.age_seconds;
  age.className = c.age_seconds > answer.stale_after_seconds ? "down" : "";
  drawn = { answer, scale: view.scale, at: null };
  drawChart();
}

export function showError(message) {
  document.title = "cryptopipe";
  $("coin-body").hidden = true;
  $("coin-error").hidden = false;
  $("coin-error").textContent = message;
  drawn = null;
}

export function drawChart() {
  if (!drawn) return;
  const { answer, scale } = drawn;
  const t = answer.candles.t;
  const range = timeRange(Date.parse(answer.since), Date.parse(answer.served_at), t);
  if (t.length) range.to = Math.max(range.to, t[t.length - 1] + MINUTE); // the last candle's whole minute
  drawn.at = candleChart.render($("coin-chart"), answer.candles, range, scale, answer.vs_currency);
  showFit($("coin-note"), range, answer.window);
  readout(-1);
}

// The candle under the pointer, or the newest one: its minute, prices and 24 h volume.
export function readout(index) {
  if (!drawn) return;
  const c = drawn.answer.candles;
  const cur = drawn.answer.vs_currency;
  const i = index >= 0 ? index : c.t.length - 1;
  if (i < 0) {
    $("coin-readout").textContent = "";
    return;
  }
  const parts = [clockTime(c.t[i]), `O ${money(c.open[i], cur)}`, `H ${money(c.high[i], cur)}`,
                 `L ${money(c.low[i], cur)}`, `C ${money(c.close[i], cur)}`,
                 `24 h vol ${compactMoney(c.total_volume[i], cur)}`];
  $("coin-readout").textContent = parts.join("  ");
}

export function pointAt(x) {
  return drawn && drawn.at ? drawn.at(x) : -1;
}
