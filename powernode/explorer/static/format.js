// Formatting of RPC values for display. Energy and money are integers on the
// chain (Wh, micro-units); they are formatted with BigInt and string
// arithmetic so a value near the supply cap shows every digit exactly.

const MICRO = 1000000n;

// An RPC integer arrives as a JSON number, or as a decimal string past 2^53.
export function toBig(value) {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return BigInt(Math.trunc(value));
  if (typeof value === "string" && /^-?\d+$/.test(value)) return BigInt(value);
  return null;
}

function isBlank(value) {
  return value === null || value === undefined || value === "";
}

// Integer division into "whole.fraction"; fraction digits as the divisor has,
// trailing zeros trimmed down to `minDigits`.
function decimal(value, divisor, digits, minDigits) {
  const big = toBig(value);
  if (big === null) return String(value);
  const sign = big < 0n ? "-" : "";
  const abs = big < 0n ? -big : big;
  const whole = (abs / divisor).toString();
  let frac = (abs % divisor).toString().padStart(digits, "0");
  while (frac.length > minDigits && frac.endsWith("0")) frac = frac.slice(0, -1);
  return sign + whole + (frac ? "." + frac : "");
}

// Wh -> "1.5 kWh" (fraction trimmed: 50000 -> "50 kWh").
export function energy(wh) {
  if (isBlank(wh)) return "–";
  return decimal(wh, 1000n, 3, 0) + " kWh";
}

// W -> "12000 kW" (fraction trimmed, as energy).
export function power(w) {
  if (isBlank(w)) return "–";
  return decimal(w, 1000n, 3, 0) + " kW";
}

// Micro-units -> units with at least two decimals (550000 -> "0.55").
export function money(micro) {
  if (isBlank(micro)) return "–";
  return decimal(micro, MICRO, 6, 2);
}

// A price is micro-units per kWh; shown as units, the "/kWh" in the heading.
export function price(micro) {
  return money(micro);
}

// Basis points -> percent with one decimal, rounded down (1000 -> "10.0%").
export function bps(value) {
  if (isBlank(value)) return "–";
  return decimal(toBig(value) / 10n, 10n, 1, 1) + "%";
}

// Unix seconds -> "2026-12-07 01:02:03" (UTC).
export function time(seconds) {
  if (isBlank(seconds) || seconds === 0) return "–";
  const big = toBig(seconds);
  if (big === null) return String(seconds);
  const iso = new Date(Number(big) * 1000).toISOString();
  return iso.slice(0, 10) + " " + iso.slice(11, 19);
}

// Seconds of a duration -> "1 min", "2 h 5 min".
export function duration(seconds) {
  if (isBlank(seconds)) return "–";
  const s = Number(seconds);
  if (s < 60) return s + " s";
  if (s < 3600) return Math.floor(s / 60) + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
  if (s < 86400) return Math.floor(s / 3600) + " h" + (s % 3600 >= 60 ? " " + Math.floor((s % 3600) / 60) + " min" : "");
  return Math.floor(s / 86400) + " d";
}

// A hash or id shortened for tables; the full value stays in data-value/title.
export function short(hex) {
  if (isBlank(hex)) return "–";
  const text = String(hex);
  return text.length > 20 ? text.slice(0, 8) + "…" + text.slice(-6) : text;
}

export function integer(value) {
  if (isBlank(value)) return "–";
  const big = toBig(value);
  return big === null ? String(value) : decimal(big, 1n, 0, 0);
}

export function bytes(value) {
  if (isBlank(value)) return "–";
  const n = Number(value);
  if (n < 1024) return n + " B";
  return decimal(toBig(value) * 10n / 1024n, 10n, 1, 1) + " KiB";
}

export function plain(value) {
  if (isBlank(value)) return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// The raw value as the data-value attribute holds it: numbers and decimal
// strings as JSON gives them, hex lowercase, objects as JSON.
export function raw(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}
