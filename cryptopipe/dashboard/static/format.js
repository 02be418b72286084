// Numbers and times as the page shows them: short enough that the table's columns
// keep a fixed width from $0.0₈1301 to $104,576, whatever the coin. Money is in the
// quote currency the API says its answer is in (vs_currency): $, €, £ or ¥ before the
// number, and a currency without a sign of its own after it (0.02512 BTC).

const SUBSCRIPT = "₀₁₂₃₄₅₆₇₈₉";
const DASH = "–";

// The currency's sign as the browser's own number formatting writes it ("usd" -> "$",
// "eur" -> "€"), or null when it has none: Intl writes such a code (BTC) as it is, and
// refuses codes that are not three letters (sats).
function sign(currency) {
  try {
    const format = new Intl.NumberFormat("en-US", { style: "currency", currency: currency.toUpperCase() });
    const symbol = format.formatToParts(0).find((part) => part.type === "currency").value;
    return symbol === currency.toUpperCase() ? null : symbol;
  } catch {
    return null;
  }
}

function inCurrency(text, currency) {
  const symbol = sign(currency);
  return symbol ? symbol + text : `${text} ${currency.toUpperCase()}`;
}

// A price in ``currency`` with about four significant digits. Below 0.001 the zeros after
// the point are counted in a subscript, as CoinGecko does: $0.0₄1234 is $0.00001234.
export function money(v, currency) {
  if (v === null || v === undefined) return DASH;
  return inCurrency(amount(v), currency);
}

function amount(v) {
  if (v >= 1000) return v.toLocaleString("en-US", { maximumFractionDigits: 0 });
  if (v >= 1) return v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  if (v === 0 || v >= 0.001) return String(Number(v.toPrecision(4)));
  const digits = v.toExponential(3); // "1.234e-5"
  const [mantissa, exponent] = digits.split("e");
  const zeros = -Number(exponent) - 1;
  const significant = mantissa.replace(".", "").replace(/0+$/, "") || "0";
  return "0.0" + String(zeros).split("").map((d) => SUBSCRIPT[d]).join("") + significant;
}

// Market caps and volumes in ``currency``: $2.08T, €93.6B, 512K BTC.
export function compactMoney(v, currency) {
  if (v === null || v === undefined) return DASH;
  return inCurrency(v.toLocaleString("en-US", { notation: "compact", maximumSignificantDigits: 3 }), currency);
}

export function percent(v) {
  if (v === null || v === undefined) return DASH;
  return (v > 0 ? "+" : "") + v.toFixed(2) + "%";
}

// A duration, short: "12 s", "4 min", "1.5 h".
export function duration(seconds) {
  if (seconds < 90) return Math.max(0, Math.round(seconds)) + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  return (seconds / 3600).toFixed(1) + " h";
}

export function clockTime(ms) {
  return new Date(ms).toTimeString().slice(0, 5);
}
