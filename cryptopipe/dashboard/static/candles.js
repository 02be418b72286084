// One coin's one-minute candles on a log or linear price axis, with its 24 h volume in
// a pane below, drawn as SVG (see chart.js for why no library).
//
// CoinGecko reports volume only over a rolling 24 hours, so the pane is a line of that
// figure per minute, on its own fitted axis: bars of it would all be about as tall.
//
//   const at = render(svg, {t, open, high, low, close, total_volume}, {from, to}, "log", "usd");
//   at(x)   // index of the candle under x (for a readout), or -1

import { MINUTE, fittedLogScale, linearScale } from "./axes.js";
import { canvas, drawPriceAxis, drawTimeAxis, node } from "./chart.js";
import { compactMoney } from "./format.js";

const MARGIN = { top: 10, right: 14, bottom: 24 };
const VOLUME_SHARE = 0.2; // of the plot's height
const PANE_GAP = 24;
const CHAR_PX = 6.6; // a label character at the chart's 11px font, for the left margin

export function render(svg, candles, range, scaleKind, currency) {
  const prices = candles.low.concat(candles.high).filter((v) => v > 0);
  const { width, height } = canvas(svg, prices.length ? undefined : "no candles in this window yet");
  if (!prices.length) return () => -1;

  const plotHeight = height - MARGIN.top - MARGIN.bottom;
  const volumeHeight = Math.round(plotHeight * VOLUME_SHARE);
  const priceHeight = plotHeight - volumeHeight - PANE_GAP;
  const make = scaleKind === "linear" ? linearScale : fittedLogScale;
  const y = make(Math.min(...prices), Math.max(...prices), priceHeight);
  const volumes = candles.total_volume.filter((v) => v !== null);
  const yv = volumes.length ? linearScale(Math.min(...volumes), Math.max(...volumes), volumeHeight * 0.9) : null;
  const labels = y.ticks.map(y.label).concat(yv ? yv.ticks.map((v) => compactMoney(v, currency)) : []);
  const left = 12 + CHAR_PX * Math.max(...labels.map((l) => l.length));
  const box = { left, right: width - MARGIN.right, top: MARGIN.top, bottom: MARGIN.top + priceHeight };
  const volumeBox = { ...box, top: box.bottom + PANE_GAP, bottom: height - MARGIN.bottom };

  const yPos = (v) => box.bottom - priceHeight * y.at(v);
  const xPos = (t) => box.left + ((box.right - box.left) * (t - range.from)) / (range.to - range.from);
  svg.dataset.scale = y.kind;
  drawPriceAxis(svg, y, yPos, box);
  drawTimeAxis(svg, range, xPos, { ...box, bottom: volumeBox.bottom });

  // Candles sit mid-minute; bodies are 70 % of a minute's width, at least a pixel.
  const minute = ((box.right - box.left) * MINUTE) / (range.to - range.from);
  const body = Math.max(1, minute * 0.7);
  const centers = candles.t.map((t) => xPos(t + MINUTE / 2));
  // A faint line through the closes: polled once a minute (CoinGecko's own pace), most
  // candles are one tick, a dash, and the line is what shows the trend.
  const closes = candles.close.map((v, i) => (v > 0 ? `${centers[i].toFixed(1)},${yPos(v).toFixed(1)}` : null));
  node("path", { class: "close-line", d: closes.filter(Boolean).map((p, i) => (i ? "L" : "M") + p).join("") }, svg);
  // Back-filled stretches (5-minutely to daily points) also get a dashed line over that one,
  // from the candle before to the candle after, so the coarse stretch stands out.
  const backfilled = candles.backfilled || [];
  let dashed = "";
  closes.forEach((p, i) => {
    if (!p || !backfilled[i]) return;
    const before = closes[i - 1];
    dashed += backfilled[i - 1] && before ? `L${p}` : `${before ? `M${before}L` : "M"}${p}`;
    if (!backfilled[i + 1] && closes[i + 1]) dashed += `L${closes[i + 1]}`;
  });
  if (dashed) node("path", { class: "close-line backfill", d: dashed }, svg);
  candles.t.forEach((t, i) => {
    const [open, high, low, close] = [candles.open[i], candles.high[i], candles.low[i], candles.close[i]];
    if (!(low > 0)) return;
    const x = centers[i];
    // A back-filled minute (one point of CoinGecko's 5-minutely to daily history) is drawn faint.
    const kind = `candle ${close >= open ? "up" : "down"}${candles.backfilled && candles.backfilled[i] ? " backfilled" : ""}`;
    const g = node("g", { class: kind, "data-t": t }, svg);
    node("line", { class: "wick", x1: x, x2: x, y1: yPos(high), y2: yPos(low) }, g);
    const top = yPos(Math.max(open, close));
    node("rect", { class: "body", x: x - body / 2, y: top, width: body, height: Math.max(1, yPos(Math.min(open, close)) - top) }, g);
  });

  if (yv) drawVolume(svg, candles, yv, centers, volumeBox, currency);
  return (x) => nearest(centers, x);
}

function drawVolume(svg, candles, scale, centers, box, currency) {
  const yPos = (v) => box.bottom - (box.bottom - box.top) * scale.at(v);
  const g = node("g", { class: "volume" }, svg);
  node("text", { class: "pane-title", x: box.left + 4, y: box.top + 10 }, g, "24 h volume");
  for (const v of [scale.ticks[0], scale.ticks[scale.ticks.length - 1]]) {
    node("text", { x: box.left - 6, y: yPos(v) + 4, "text-anchor": "end" }, g, compactMoney(v, currency));
  }
  let d = "";
  candles.total_volume.forEach((v, i) => {
    if (v === null) return;
    d += `${d ? "L" : "M"}${centers[i].toFixed(1)},${yPos(v).toFixed(1)}`;
  });
  node("path", { class: "volume-line", d }, g);
}

function nearest(centers, x) {
  let best = -1;
  centers.forEach((c, i) => {
    if (best < 0 || Math.abs(c - x) < Math.abs(centers[best] - x)) best = i;
  });
  return best;
}
