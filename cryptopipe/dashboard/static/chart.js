// The overview: several coins' prices on one log-10 axis, drawn as SVG.
//
// Drawn here rather than with a charting library: it is about as long as the
// configuration a library would need, nothing has to be vendored or fetched, and
// its ticks and lines are plain DOM (a browser test reads them). A log axis is the
// point: coins from $0.00001 to $100,000 share one chart, and equal moves in
// percent look equal.
//
//   render(svgElement, [{id, label, color, t: [ms...], v: [price...], b: [backfilled...]}], {from, to})
//
// Back-filled minutes (b true: CoinGecko's market charts, 5-minutely to daily) are a
// dashed path of their own, joined to the live line at both ends, so a person sees
// that stretch is coarser than the polls around it.
//
// Also the SVG helpers the coin's candles (candles.js) share: the canvas, the two
// axes, and the note that says when the time axis fits less data than the window.

import { logScale, timeTicks } from "./axes.js";
import { duration } from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const MARGIN = { top: 10, right: 14, bottom: 24, left: 52 };
// A gap longer than this (the pipeline was stopped) breaks the line.
const GAP_MS = 5 * 60 * 1000;
// Back-filled points can be a day apart (daily beyond 90 days of history).
const BACKFILL_GAP_MS = 25 * 60 * 60 * 1000;

export function node(name, attrs, parent, text) {
  const el = document.createElementNS(NS, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
  if (text !== undefined) el.textContent = text;
  parent.appendChild(el);
  return el;
}

// The svg's own size, its viewBox set to it, emptied; or a message when there is nothing to draw.
export function canvas(svg, empty) {
  const width = svg.clientWidth || 800;
  const height = svg.clientHeight || 380;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.replaceChildren();
  if (empty) node("text", { class: "empty", x: width / 2, y: height / 2, "text-anchor": "middle" }, svg, empty);
  return { width, height };
}

// Says so when the axis shows less than the window because there is less data than that.
export function showFit(note, range, window) {
  note.hidden = !range.fitted;
  if (range.fitted) {
    const minutes = duration((range.to - range.dataFrom) / 1000);
    note.textContent = `Only ${minutes} of data so far: the axis shows all of it rather than the ${window} window.`;
  }
}

// Vertical grid lines and time labels along the bottom of the plot.
export function drawTimeAxis(svg, range, xPos, box) {
  const axis = timeTicks(range.from, range.to, box.right - box.left);
  for (const t of axis.ticks) {
    const g = node("g", { class: "tick x", "data-t": t }, svg);
    node("line", { class: "grid", x1: xPos(t), x2: xPos(t), y1: box.top, y2: box.bottom }, g);
    node("text", { x: xPos(t), y: box.bottom + 16, "text-anchor": "middle" }, g, axis.label(t));
  }
}

// Horizontal grid lines and price labels at the left of the plot.
export function drawPriceAxis(svg, scale, yPos, box) {
  for (const v of scale.ticks) {
    const g = node("g", { class: "tick y", "data-value": v, "data-y": yPos(v).toFixed(2) }, svg);
    node("line", { class: "grid", x1: box.left, x2: box.right, y1: yPos(v), y2: yPos(v) }, g);
    node("text", { x: box.left - 6, y: yPos(v) + 4, "text-anchor": "end" }, g, scale.label(v));
  }
}

export function render(svg, series, range) {
  // Log scales cannot show zero or negative prices; they are left out.
  const values = series.flatMap((s) => s.v.filter((v) => v > 0));
  const { width, height } = canvas(svg, values.length ? undefined : "no prices in this window yet");
  if (!values.length) return;
  const box = { left: MARGIN.left, right: width - MARGIN.right, top: MARGIN.top, bottom: height - MARGIN.bottom };
  const y = logScale(Math.min(...values), Math.max(...values), box.bottom - box.top);
  const yPos = (v) => box.bottom - (box.bottom - box.top) * y.at(v);
  const xPos = (t) => box.left + ((box.right - box.left) * (t - range.from)) / (range.to - range.from);
  drawPriceAxis(svg, y, yPos, box);
  drawTimeAxis(svg, range, xPos, box);

  for (const s of series) {
    const backfilled = s.b || [];
    let d = "";
    let dashed = "";
    let previous = null; // the last live point's time
    let last = null; // the last point drawn, live or back-filled: {t, p, b}
    const alone = []; // points with no line to either side: drawn as dots, or they would not show
    s.t.forEach((t, i) => {
      const v = s.v[i];
      if (!(v > 0)) return;
      const p = `${xPos(t).toFixed(1)},${yPos(v).toFixed(1)}`;
      const near = last !== null && t - last.t <= BACKFILL_GAP_MS;
      if (backfilled[i]) {
        dashed += near ? (last.b ? `L${p}` : `M${last.p}L${p}`) : `M${p}`;
      } else {
        if (near && last.b) dashed += `L${p}`; // the stretch ends in this live point
        const jump = previous === null || t - previous > GAP_MS;
        const next = s.t[i + 1];
        const lone = next === undefined || next - t > GAP_MS || !(s.v[i + 1] > 0) || backfilled[i + 1];
        if (jump && lone && !(near && last.b)) alone.push([t, v]);
        d += `${jump ? "M" : "L"}${p}`;
        previous = t;
      }
      last = { t, p, b: Boolean(backfilled[i]) };
    });
    const path = node("path", { class: "series", "data-coin": s.id, d, stroke: s.color }, svg);
    node("title", {}, path, s.label);
    if (dashed) {
      const coarse = node("path", { class: "backfill", "data-coin": s.id, d: dashed, stroke: s.color }, svg);
      node("title", {}, coarse, `${s.label} (back-filled from CoinGecko's market charts)`);
    }
    for (const [t, v] of alone) node("circle", { class: "dot", cx: xPos(t), cy: yPos(v), r: 2.5, fill: s.color }, svg);
  }
}
