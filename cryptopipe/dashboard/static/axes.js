// Axes shared by the overview chart and a coin's candles: a log or linear price scale,
// time ticks that never crowd (as many as the width holds), and the time range, which
// fits the data when there is less of it than the window.

export const MINUTE = 60 * 1000;
const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 240, 360, 720].map((m) => m * MINUTE);
// Room one time label needs, in pixels: "21:40", or "Jun 1 21:40" on a day-long axis.
const TIME_LABEL_PX = 64;
const DATED_LABEL_PX = 100;
// Room one price label needs vertically.
const PRICE_LABEL_PX = 24;
// The shortest span drawn: a first poll alone still gets an axis a person can read.
const MIN_SPAN = 2 * MINUTE;

// 10^k exactly as a double: Math.pow(10, -7) is not 1e-7, but "1e-7" parses to it.
const decade = (k) => Number("1e" + k);

// Log-10. The domain is widened to the 1-2-5 ladder around the data, so every line sits
// between labels without wasting most of a decade; ticks are on that ladder for short
// ranges and whole decades for long ones, thinned to what the height holds.
export function logScale(lo, hi, height) {
  const first = Math.floor(Math.log10(lo));
  const last = Math.ceil(Math.log10(hi)) + 1;
  const ladder = [];
  for (let k = first; k <= last; k += 1) for (const m of [1, 2, 5]) ladder.push(m * decade(k));
  const min = ladder.filter((v) => v <= lo).pop();
  const max = ladder.find((v) => v >= hi && v > min); // above min even when lo == hi
  const short = Math.log10(max / min) <= 2;
  let ticks = ladder.filter((v) => v >= min && v <= max && (short || Number.isInteger(Math.log10(v))));
  const stride = Math.ceil(ticks.length / Math.max(2, Math.floor(height / PRICE_LABEL_PX)));
  ticks = ticks.filter((_, i) => i % stride === 0);
  const logMin = Math.log10(min);
  const logSpan = Math.log10(max) - logMin;
  return { kind: "log", min, max, ticks, label: ladderLabel, at: (v) => (Math.log10(v) - logMin) / logSpan };
}

// Linear, on a 1-2-5 step that gives as many ticks as the height holds. A flat series
// (a stablecoin over a minute) still gets a range: 0.1 % either side of its value.
export function linearScale(lo, hi, height) {
  if (hi - lo < Math.abs(hi) * 1e-3) {
    const pad = Math.abs(hi) * 1e-3 || 1;
    [lo, hi] = [lo - pad, hi + pad];
  }
  const wanted = Math.max(2, Math.floor(height / (PRICE_LABEL_PX * 1.6)));
  const rough = (hi - lo) / wanted;
  const base = decade(Math.floor(Math.log10(rough)));
  const step = [1, 2, 5, 10].map((m) => m * base).find((s) => s >= rough);
  const min = Math.floor(lo / step) * step;
  const max = Math.ceil(hi / step) * step;
  const ticks = [];
  for (let i = 0; min + i * step <= max + step / 2; i += 1) ticks.push(Number((min + i * step).toPrecision(12)));
  return { kind: "linear", min, max, ticks, label: (v) => stepLabel(v, step), at: (v) => (v - min) / (max - min) };
}

// Log-10 for one coin: over a decade or more, as logScale; under a decade (an hour of
// almost any coin) the domain hugs the data and the ticks are round values within it,
// or a 1 % move would be a flat line in a band from 100k to 200k.
export function fittedLogScale(lo, hi, height) {
  if (Math.log10(hi / lo) >= 1) return logScale(lo, hi, height);
  const round = linearScale(lo, hi, height);
  const min = round.min > 0 ? round.min : lo;
  const ticks = round.ticks.filter((v) => v >= min);
  const logMin = Math.log10(min);
  const logSpan = Math.log10(round.max) - logMin;
  return { ...round, kind: "log", min, ticks, at: (v) => (Math.log10(v) - logMin) / logSpan };
}

// 100k, 2M, 0.005: a ladder value in the fewest characters.
function ladderLabel(v) {
  if (v >= 1e9) return v / 1e9 + "B";
  if (v >= 1e6) return v / 1e6 + "M";
  if (v >= 1e3) return v / 1e3 + "k";
  return String(Number(v.toPrecision(1)));
}

// 104.55k with a step of 50: as many decimals as the step needs, in thousands and up.
function stepLabel(v, step) {
  for (const [unit, suffix] of [[1e9, "B"], [1e6, "M"], [1e3, "k"]]) {
    if (Math.abs(v) >= unit) return (v / unit).toFixed(Math.max(0, Math.ceil(-Math.log10(step / unit)))) + suffix;
  }
  return v.toFixed(Math.max(0, Math.ceil(-Math.log10(step))));
}

// Time ticks on round minutes and hours, no closer than a label's width.
export function timeTicks(from, to, width) {
  const dated = to - from > 12 * 60 * MINUTE;
  const most = Math.max(2, Math.floor(width / (dated ? DATED_LABEL_PX : TIME_LABEL_PX)));
  const step = TIME_STEPS.find((s) => (to - from) / s <= most) || TIME_STEPS[TIME_STEPS.length - 1];
  const ticks = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) ticks.push(t);
  return { ticks, label: (t) => timeLabel(t, dated) };
}

function timeLabel(ms, dated) {
  const d = new Date(ms);
  const hm = d.toTimeString().slice(0, 5);
  return dated ? d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + hm : hm;
}

// The time axis for an answer's window (since .. served_at) and the minutes it has data
// for: the whole window, or, when the data starts later (a fresh start), from the first
// minute of data, so it fills the chart instead of huddling at the right edge.
export function timeRange(since, servedAt, times) {
  const to = Math.max(servedAt, ...times);
  if (!times.length) return { from: since, to, fitted: false };
  const first = Math.min(...times);
  if (first - since < MINUTE) return { from: since, to, fitted: false };
  return { from: Math.min(first, to - MIN_SPAN), to, fitted: true, dataFrom: first };
}
