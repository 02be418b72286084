"use strict";
// A line chart of several price series on a log-10 axis, drawn as SVG.
//
// Drawn here rather than with a charting library: it is about as long as the
// configuration a library would need, nothing has to be vendored or fetched, and
// its ticks and lines are plain DOM (a browser test reads them). A log axis is the
// point: coins from $0.00001 to $100,000 share one chart, and equal moves in
// percent look equal.
//
//   LogChart.render(svgElement, [{id, label, color, t: [ms...], v: [price...]}], {from, to})
window.LogChart = (function () {
  const NS = "http://www.w3.org/2000/svg";
  const MARGIN = { top: 10, right: 14, bottom: 24, left: 64 };
  const MAX_Y_LABELS = 12;
  // A gap longer than this (the pipeline was stopped) breaks the line.
  const GAP_MS = 5 * 60 * 1000;
  const MINUTE = 60 * 1000;
  const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720].map((m) => m * MINUTE);

  function node(name, attrs, parent, text) {
    const el = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, value);
    if (text !== undefined) el.textContent = text;
    parent.appendChild(el);
    return el;
  }

  // 10^k exactly as a double: Math.pow(10, -7) is not 1e-7, but "1e-7" parses to it.
  const decade = (k) => Number("1e" + k);

  // The domain is widened to the 1-2-5 ladder around the data, so every line sits
  // between labels without wasting most of a decade; ticks are on that ladder for
  // short ranges and whole decades for long ones.
  function logScale(lo, hi) {
    const first = Math.floor(Math.log10(lo));
    const last = Math.ceil(Math.log10(hi)) + 1;
    const ladder = [];
    for (let k = first; k <= last; k += 1) for (const m of [1, 2, 5]) ladder.push(m * decade(k));
    const min = ladder.filter((v) => v <= lo).pop();
    const max = ladder.find((v) => v >= hi && v > min); // above min even when lo == hi
    const short = Math.log10(max / min) <= 2;
    let ticks = ladder.filter((v) => v >= min && v <= max && (short || Number.isInteger(Math.log10(v))));
    const stride = Math.ceil(ticks.length / MAX_Y_LABELS);
    ticks = ticks.filter((_, i) => i % stride === 0);
    return { min, max, ticks };
  }

  function priceLabel(v) {
    if (v >= 1e9) return v / 1e9 + "B";
    if (v >= 1e6) return v / 1e6 + "M";
    if (v >= 1e3) return v / 1e3 + "k";
    return String(Number(v.toPrecision(1)));
  }

  function timeLabel(ms, withDate) {
    const d = new Date(ms);
    const hm = d.toTimeString().slice(0, 5);
    return withDate ? d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + hm : hm;
  }

  function render(svg, series, range) {
    const width = svg.clientWidth || 800;
    const height = svg.clientHeight || 380;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const plotW = width - MARGIN.left - MARGIN.right;
    const plotH = height - MARGIN.top - MARGIN.bottom;

    // Log scales cannot show zero or negative prices; they are left out.
    const values = series.flatMap((s) => s.v.filter((v) => v > 0));
    if (!values.length) {
      node("text", { class: "empty", x: width / 2, y: height / 2, "text-anchor": "middle" }, svg, "no prices in this window yet");
      return;
    }
    const y = logScale(Math.min(...values), Math.max(...values));
    const logMin = Math.log10(y.min);
    const logSpan = Math.log10(y.max) - logMin;
    const yPos = (v) => MARGIN.top + plotH * (1 - (Math.log10(v) - logMin) / logSpan);
    const xPos = (t) => MARGIN.left + (plotW * (t - range.from)) / (range.to - range.from);

    for (const v of y.ticks) {
      const g = node("g", { class: "tick y", "data-value": v, "data-y": yPos(v).toFixed(2) }, svg);
      node("line", { class: "grid", x1: MARGIN.left, x2: width - MARGIN.right, y1: yPos(v), y2: yPos(v) }, g);
      node("text", { x: MARGIN.left - 6, y: yPos(v) + 4, "text-anchor": "end" }, g, priceLabel(v));
    }

    const span = range.to - range.from;
    const step = TIME_STEPS.find((s) => span / s <= 7) || TIME_STEPS[TIME_STEPS.length - 1];
    const withDate = span > 12 * 60 * MINUTE;
    for (let t = Math.ceil(range.from / step) * step; t <= range.to; t += step) {
      const g = node("g", { class: "tick x" }, svg);
      node("line", { class: "grid", x1: xPos(t), x2: xPos(t), y1: MARGIN.top, y2: MARGIN.top + plotH }, g);
      node("text", { x: xPos(t), y: height - 6, "text-anchor": "middle" }, g, timeLabel(t, withDate));
    }

    for (const s of series) {
      let d = "";
      let previous = null;
      s.t.forEach((t, i) => {
        const v = s.v[i];
        if (!(v > 0)) return;
        const jump = previous === null || t - previous > GAP_MS;
        d += `${jump ? "M" : "L"}${xPos(t).toFixed(1)},${yPos(v).toFixed(1)}`;
        previous = t;
      });
      const path = node("path", { class: "series", "data-coin": s.id, d, stroke: s.color }, svg);
      node("title", {}, path, s.label);
    }
  }

  return { render, logScale, priceLabel };
})();
