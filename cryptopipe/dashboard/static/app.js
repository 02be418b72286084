// The dashboard page: which view the address names (the list at /, a coin at
// /coin/<id>), the controls kept in the address so a view can be shared (the quote
// currency among them: ?currency=eur, one of those the API's health lists), and the
// refresh loop that polls /api/health and the view's own API every refresh_seconds.
// One refresh at a time; a failed one keeps the last picture and says why.

import * as coin from "./coin.js";
import * as list from "./list.js";

const $ = (id) => document.getElementById(id);
const TOPS = ["5", "8", "12", "20"];
const DEFAULT_WINDOW = "1h";
const loop = { timer: null, running: false, again: false, typing: null };
let settings = null;
let view = fromURL();

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  const body = await response.json();
  if (!response.ok) throw new ApiError(response.status, body.error || response.statusText);
  return body;
}

// --- the address -----------------------------------------------------------------

function fromURL() {
  const params = new URLSearchParams(location.search);
  const match = location.pathname.match(/^\/coin\/([^/]+)$/);
  const sort = Object.hasOwn(list.NATURAL_ORDER, params.get("sort")) ? params.get("sort") : "rank";
  const order = ["asc", "desc"].includes(params.get("order")) ? params.get("order") : list.NATURAL_ORDER[sort];
  const windows = settings ? settings.windows : [params.get("window")];
  // Until the settings are known, any currency asked for; then one the producer polls.
  const currencies = settings ? settings.vs_currencies : [params.get("currency")];
  return {
    coin: match ? decodeURIComponent(match[1]) : null,
    q: params.get("q") || "",
    sort,
    order,
    window: windows.includes(params.get("window")) ? params.get("window") : DEFAULT_WINDOW,
    top: TOPS.includes(params.get("top")) ? params.get("top") : "8",
    scale: params.get("scale") === "linear" ? "linear" : "log",
    currency: currencies.includes(params.get("currency")) ? params.get("currency") : defaultCurrency(),
  };
}

function defaultCurrency() {
  return settings ? settings.vs_currencies[0] : null;
}

// Only what differs from the defaults, so a plain view has a plain address.
function toURL(v) {
  const params = new URLSearchParams();
  if (v.currency && v.currency !== defaultCurrency()) params.set("currency", v.currency);
  if (v.window !== DEFAULT_WINDOW) params.set("window", v.window);
  if (v.coin) {
    if (v.scale !== "log") params.set("scale", v.scale);
  } else {
    if (v.q) params.set("q", v.q);
    if (v.sort !== "rank") params.set("sort", v.sort);
    if (v.order !== list.NATURAL_ORDER[v.sort]) params.set("order", v.order);
    if (v.top !== "8") params.set("top", v.top);
  }
  const path = v.coin ? "/coin/" + encodeURIComponent(v.coin) : "/";
  return path + (params.size ? "?" + params : "");
}

// A control changed: same history entry, new address.
function update(changes) {
  view = { ...view, ...changes };
  history.replaceState(history.state, "", toURL(view));
  showControls();
  refresh();
}

// To a coin, or back to the list: a new history entry. The list's entry keeps where it
// was scrolled to, so Back returns to it as it was.
function go(changes) {
  if (!view.coin) history.replaceState({ scroll: { table: $("table-scroll").scrollTop, page: scrollY } }, "", toURL(view));
  const fromList = !view.coin;
  view = { ...view, ...changes };
  history.pushState({ fromList }, "", toURL(view));
  showView();
  scrollTo(0, 0);
  refresh();
}

function back() {
  if (history.state && history.state.fromList) history.back();
  else go({ coin: null });
}

addEventListener("popstate", (event) => {
  view = fromURL();
  showView();
  const scroll = event.state && event.state.scroll;
  if (scroll) {
    $("table-scroll").scrollTop = scroll.table;
    scrollTo(0, scroll.page);
  }
  refresh();
});

// --- the page --------------------------------------------------------------------

function showView() {
  $("list-view").hidden = Boolean(view.coin);
  $("coin-view").hidden = !view.coin;
  if (!view.coin) document.title = "cryptopipe · live prices";
  $("search").value = view.q;
  showControls();
}

function showControls() {
  for (const id of ["window", "coin-window"]) $(id).value = view.window;
  $("top").value = view.top;
  for (const button of document.querySelectorAll("#scale button")) {
    button.setAttribute("aria-pressed", String(button.dataset.scale === view.scale));
  }
  for (const button of document.querySelectorAll("#currency button")) {
    button.setAttribute("aria-pressed", String(button.dataset.currency === view.currency));
  }
  list.showSort(view);
}

function setup(health) {
  settings = health;
  for (const id of ["window", "coin-window"]) {
    for (const name of settings.windows) $(id).add(new Option(name, name));
  }
  $("currency").replaceChildren(...settings.vs_currencies.map((code) => {
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.currency = code;
    button.textContent = code;
    return button;
  }));
  $("currency").hidden = settings.vs_currencies.length < 2;
  view = fromURL(); // now that the windows and currencies are known
  history.replaceState(history.state, "", toURL(view)); // a currency it does not poll is left out
  showView();
  $("warehouse").textContent = settings.warehouse_name;
}

function showFreshness(health) {
  const el = $("freshness");
  el.className = health.status === "fresh" ? "fresh" : "stale";
  const label = { fresh: "Live", stale: "Stale", empty: "No data", unavailable: "Unavailable" }[health.status];
  el.textContent = `${label} · ${health.message}`;
  el.dataset.status = health.status;
}

async function refreshView() {
  const asked = toURL(view);
  const current = () => toURL(view) === asked; // else the answer is for a view already left
  if (!view.coin) {
    const answers = await list.load(view, getJSON);
    if (current()) list.show(answers);
    return;
  }
  try {
    const answer = await coin.load(view, getJSON);
    if (current()) coin.show(answer, view);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status >= 500) throw error;
    if (current()) coin.showError(error.message); // an unknown coin: said in the view, not as an outage
  }
}

// The freshness of the currency shown; before the settings are known, of the default one.
function healthPath() {
  return settings ? "/api/health?" + new URLSearchParams({ currency: view.currency }) : "/api/health";
}

async function refresh() {
  if (loop.running) {
    loop.again = true; // the view changed mid-refresh: go again right after
    return;
  }
  loop.running = true;
  loop.again = false;
  clearTimeout(loop.timer);
  try {
    let health = await getJSON(healthPath());
    if (!settings) {
      setup(health);
      if (health.vs_currency !== view.currency) health = await getJSON(healthPath());
    }
    showFreshness(health);
    if (health.status !== "unavailable") await refreshView();
    $("updated").textContent = "refreshed " + new Date().toLocaleTimeString();
  } catch (error) {
    showFreshness({ status: "unavailable", message: error.message });
  } finally {
    loop.running = false;
    const seconds = loop.again ? 0 : settings ? settings.refresh_seconds : 5;
    loop.timer = setTimeout(refresh, 1000 * seconds);
  }
}

// --- the controls ----------------------------------------------------------------

function openCoin(event) {
  const link = event.target.closest("a[href^='/coin/'], tr[data-coin]");
  // A modified click opens the coin in another tab, as links do.
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  event.preventDefault();
  const id = link.dataset.coin || decodeURIComponent(link.getAttribute("href").slice("/coin/".length));
  go({ coin: id });
}

$("latest").tBodies[0].addEventListener("click", openCoin);
$("legend").addEventListener("click", openCoin);
$("latest").tHead.addEventListener("click", (event) => {
  const th = event.target.closest("th[data-sort]");
  if (!th) return;
  const sort = th.dataset.sort;
  const flipped = view.order === "asc" ? "desc" : "asc";
  update({ sort, order: sort === view.sort ? flipped : list.NATURAL_ORDER[sort] });
});
$("search").addEventListener("input", () => {
  view = { ...view, q: $("search").value.trim() };
  history.replaceState(history.state, "", toURL(view));
  clearTimeout(loop.typing);
  loop.typing = setTimeout(refresh, 150);
});
$("window").addEventListener("change", () => update({ window: $("window").value }));
$("coin-window").addEventListener("change", () => update({ window: $("coin-window").value }));
$("top").addEventListener("change", () => update({ top: $("top").value }));
$("currency").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-currency]");
  if (button) update({ currency: button.dataset.currency });
});
$("scale").addEventListener("click", (event) => {
  const button = event.target.closest("button[data-scale]");
  if (button) update({ scale: button.dataset.scale });
});
$("back").addEventListener("click", (event) => {
  event.preventDefault();
  back();
});
$("home").addEventListener("click", (event) => {
  if (!view.coin) return; // on the list, a fresh one
  event.preventDefault();
  back();
});
$("coin-chart").addEventListener("pointermove", (event) => {
  coin.readout(coin.pointAt(event.clientX - $("coin-chart").getBoundingClientRect().left));
});
$("coin-chart").addEventListener("pointerleave", () => coin.readout(-1));
let resizing = 0;
addEventListener("resize", () => {
  cancelAnimationFrame(resizing);
  resizing = requestAnimationFrame(() => (view.coin ? coin.drawChart() : list.drawChart()));
});

history.scrollRestoration = "manual";
showView();
refresh();
