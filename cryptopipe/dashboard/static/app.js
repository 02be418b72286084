"use strict";
// The dashboard page: polls /api/health, /api/latest and /api/candles every
// refresh_seconds and redraws the freshness indicator, the table and the chart.
// One refresh at a time; a failed one keeps the last picture and says why.
(function () {
  const COLORS = ["#f7931a", "#627eea", "#26a17b", "#f3ba2f", "#e84142", "#9b59b6", "#00bcd4", "#ff7043",
                  "#8bc34a", "#ec407a", "#7e57c2", "#26c6da", "#d4e157", "#ffa726", "#5c6bc0", "#66bb6a",
                  "#ab47bc", "#29b6f6", "#ef5350", "#bdbdbd"];
  const $ = (id) => document.getElementById(id);
  const state = { settings: null, timer: null, running: false, again: false, candles: null, latest: null };

  async function getJSON(path) {
    const response = await fetch(path, { cache: "no-store" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  const money = (v) => v === null ? "–" : v >= 1
    ? "$" + v.toLocaleString("en-US", { maximumFractionDigits: 2 })
    : "$" + v.toPrecision(4);
  const compact = (v) => v === null ? "–"
    : "$" + v.toLocaleString("en-US", { notation: "compact", maximumFractionDigits: 2 });
  const percent = (v) => v === null ? "–" : (v > 0 ? "+" : "") + v.toFixed(2) + " %";
  function age(seconds) {
    if (seconds < 90) return Math.max(0, Math.round(seconds)) + " s ago";
    if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
    return (seconds / 3600).toFixed(1) + " h ago";
  }

  function setup(settings) {
    state.settings = settings;
    const select = $("window");
    for (const name of settings.windows) select.add(new Option(name, name, false, name === settings.default_window));
    $("top").value = String(settings.default_top);
    select.addEventListener("change", refresh);
    $("top").addEventListener("change", refresh);
    window.addEventListener("resize", drawChart);
    $("warehouse").textContent = settings.warehouse;
  }

  function showFreshness(health) {
    const el = $("freshness");
    el.className = health.status === "fresh" ? "fresh" : "stale";
    const label = { fresh: "Live", stale: "Stale", empty: "No data", unavailable: "Unavailable" }[health.status];
    el.textContent = `${label} · ${health.message}`;
    el.dataset.status = health.status;
  }

  function showTable(latest) {
    const served = Date.parse(latest.served_at);
    const rows = latest.rows.map((r) => {
      const tr = document.createElement("tr");
      tr.dataset.coin = r.coin_id;
      tr.dataset.lastUpdated = r.last_updated;
      const cells = [
        [r.market_cap_rank ?? "–", ""],
        [r.name, ""],
        [money(r.price), "num price"],
        [percent(r.price_change_percentage_24h), "num " + (r.price_change_percentage_24h >= 0 ? "up" : "down")],
        [compact(r.market_cap), "num"],
        [age((served - Date.parse(r.last_updated)) / 1000), "num"],
      ];
      for (const [text, cls] of cells) {
        const td = tr.insertCell();
        td.textContent = text;
        td.className = cls;
      }
      const symbol = document.createElement("span");
      symbol.className = "symbol";
      symbol.textContent = r.symbol;
      tr.cells[1].appendChild(symbol);
      return tr;
    });
    $("latest").tBodies[0].replaceChildren(...rows);
  }

  function drawChart() {
    const { candles, latest } = state;
    if (!candles || !latest) return;
    const byId = Object.fromEntries(latest.rows.map((r) => [r.coin_id, r]));
    // In the order asked for (market-cap rank), each coin keeping its colour.
    const series = candles.series.map((s) => {
      const coin = byId[s.coin_id];
      const order = candles.coins.indexOf(s.coin_id);
      const label = coin ? coin.symbol.toUpperCase() : s.coin_id;
      return { id: s.coin_id, label, order, color: COLORS[order % COLORS.length], t: s.t, v: s.close };
    }).sort((a, b) => a.order - b.order);
    const range = { from: Date.parse(candles.since), to: Math.max(Date.parse(candles.served_at), ...series.flatMap((s) => s.t)) };
    window.LogChart.render($("chart"), series, range);
    $("legend").replaceChildren(...series.map((s) => {
      const li = document.createElement("li");
      li.dataset.coin = s.id;
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = s.color;
      const price = document.createElement("span");
      price.className = "price";
      price.textContent = money(s.v[s.v.length - 1]);
      li.append(swatch, s.label, price);
      return li;
    }));
  }

  async function refresh() {
    if (state.running) {
      state.again = true; // a control changed mid-refresh: go again right after
      return;
    }
    state.running = true;
    state.again = false;
    clearTimeout(state.timer);
    try {
      const health = await getJSON("/api/health");
      if (!state.settings) setup(health);
      showFreshness(health);
      if (health.status !== "unavailable") {
        const query = new URLSearchParams({ window: $("window").value, top: $("top").value });
        const [latest, candles] = await Promise.all([getJSON("/api/latest"), getJSON("/api/candles?" + query)]);
        Object.assign(state, { latest, candles });
        showTable(latest);
        drawChart();
      }
      $("updated").textContent = "refreshed " + new Date().toLocaleTimeString();
    } catch (error) {
      showFreshness({ status: "unavailable", message: error.message });
    } finally {
      state.running = false;
      const seconds = state.again ? 0 : state.settings ? state.settings.refresh_seconds : 5;
      state.timer = setTimeout(refresh, 1000 * seconds);
    }
  }

  refresh();
})();
