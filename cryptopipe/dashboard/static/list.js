// The list view: the overview chart of the top coins and the latest-prices table,
// searched and sorted by the API (/api/latest?q=&sort=&order=&currency=).

import { timeRange } from "./axes.js";
import * as chart from "./chart.js";
import { compactMoney, duration, money, percent } from "./format.js";

const COLORS = ["#f7931a", "#627eea", "#26a17b", "#f3ba2f", "#e84142", "#9b59b6", "#00bcd4", "#ff7043",
                "#8bc34a", "#ec407a", "#7e57c2", "#26c6da", "#d4e157", "#ffa726", "#5c6bc0", "#66bb6a",
                "#ab47bc", "#29b6f6", "#ef5350", "#bdbdbd"];
// Each sort's natural direction, as the API has it: rank up, the others biggest or newest first.
export const NATURAL_ORDER = { rank: "asc", price: "desc", change_24h: "desc", market_cap: "desc", updated: "desc" };

const $ = (id) => document.getElementById(id);
let drawn = null; // the last candles answer, redrawn on resize

export async function load(view, getJSON) {
  const table = new URLSearchParams({ sort: view.sort, order: view.order, currency: view.currency });
  if (view.q) table.set("q", view.q);
  const overview = new URLSearchParams({ window: view.window, top: view.top, currency: view.currency });
  const [latest, candles] = await Promise.all([getJSON("/api/latest?" + table), getJSON("/api/candles?" + overview)]);
  return { latest, candles };
}

export function show({ latest, candles }) {
  showTable(latest);
  drawn = candles;
  drawChart();
}

export function showSort(view) {
  for (const th of $("latest").tHead.rows[0].cells) {
    if (!th.dataset.sort) continue;
    if (th.dataset.sort === view.sort) th.setAttribute("aria-sort", view.order === "asc" ? "ascending" : "descending");
    else th.removeAttribute("aria-sort");
  }
}

// Rows keep their element from one refresh to the next (keyed by coin): only changed text
// is written and the rows are re-ordered only when the order changed, so a refresh never
// pulls a row from under a pointer, a focused link or a scroll position.
function showTable(latest) {
  const served = Date.parse(latest.served_at);
  const body = $("latest").tBodies[0];
  const kept = new Map([...body.rows].map((tr) => [tr.dataset.coin, tr]));
  const rows = latest.rows.map((r) => {
    const tr = kept.get(r.coin_id) || newRow(r);
    tr.dataset.lastUpdated = r.last_updated;
    const change = r.price_change_percentage_24h;
    const cells = [
      ["rank", r.market_cap_rank ?? "–", r.market_cap_rank],
      ["coin", null],
      ["num price", money(r.price, latest.vs_currency), r.price],
      ["num change " + (change === null ? "" : change >= 0 ? "up" : "down"), percent(change), change],
      ["num mcap", compactMoney(r.market_cap, latest.vs_currency), r.market_cap],
      ["num updated", duration((served - Date.parse(r.last_updated)) / 1000), Date.parse(r.last_updated)],
    ];
    cells.forEach(([cls, text, value], i) => {
      const td = tr.cells[i];
      if (td.className !== cls) td.className = cls;
      if (text !== null && td.textContent !== String(text)) td.textContent = text;
      if (value !== undefined && td.dataset.value !== String(value ?? "")) td.dataset.value = value ?? "";
    });
    return tr;
  });
  const unchanged = rows.length === body.rows.length && rows.every((tr, i) => body.rows[i] === tr);
  if (!unchanged) body.replaceChildren(...rows);
  const table = $("latest");
  // What the rows are, as the API answered: the controls may already ask for the next.
  Object.assign(table.dataset, { q: latest.q, sort: latest.sort, order: latest.order, currency: latest.vs_currency });
  const found = latest.rows.length;
  $("count").textContent = latest.q ? `· ${found} of ${latest.total}` : `· ${latest.total} coins`;
  $("no-match").hidden = found > 0 || !latest.q;
  $("no-match").textContent = `No coin's name or symbol contains “${latest.q}”.`;
}

// A coin's row: six cells, the second holding the link to its page.
function newRow(r) {
  const tr = document.createElement("tr");
  tr.dataset.coin = r.coin_id;
  for (let i = 0; i < 6; i++) tr.insertCell();
  const link = document.createElement("a");
  link.href = "/coin/" + encodeURIComponent(r.coin_id);
  link.title = `${r.name} (${r.symbol.toUpperCase()})`;
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = r.name;
  const symbol = document.createElement("span");
  symbol.className = "symbol";
  symbol.textContent = r.symbol;
  link.append(name, symbol);
  tr.cells[1].appendChild(link);
  return tr;
}

export function drawChart() {
  if (!drawn) return;
  const candles = drawn;
  // In the order asked for (market-cap rank), each coin keeping its colour.
  const series = candles.series.map((s) => {
    const order = candles.coins.indexOf(s.coin_id);
    const label = s.symbol ? s.symbol.toUpperCase() : s.coin_id;
    return { id: s.coin_id, label, order, color: COLORS[order % COLORS.length], t: s.t, v: s.close, b: s.backfilled };
  }).sort((a, b) => a.order - b.order);
  const range = timeRange(Date.parse(candles.since), Date.parse(candles.served_at), series.flatMap((s) => s.t));
  chart.render($("chart"), series, range);
  chart.showFit($("chart-note"), range, candles.window);
  $("legend").replaceChildren(...series.map((s) => {
    const li = document.createElement("li");
    li.dataset.coin = s.id;
    const link = document.createElement("a");
    link.href = "/coin/" + encodeURIComponent(s.id);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = s.color;
    const price = document.createElement("span");
    price.className = "price";
    price.textContent = money(s.v[s.v.length - 1], candles.vs_currency);
    link.append(swatch, s.label, price);
    li.append(link);
    return li;
  }));
}
