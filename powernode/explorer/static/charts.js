// Market charts drawn as inline SVG by our own code (no chart library).
// Pixel positions are computed with Numbers (geometry only); every label is
// formatted from integers by format.js. Each level or trade drawn is a <g>
// carrying data-price and data-energy, the raw RPC values.

import * as fmt from "./format.js";

const NS = "http://www.w3.org/2000/svg";
const W = 640;
const H = 280;
const PAD = { left: 64, right: 16, top: 16, bottom: 44 };

function s(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null) el.setAttribute(key, String(value));
  }
  for (const child of children) {
    if (child) el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function frame(name, label) {
  return s("svg", {
    viewBox: `0 0 ${W} ${H}`,
    class: "chart",
    role: "img",
    "aria-label": label,
    "data-chart": name,
  });
}

// A linear scale from [lo, hi] to [a, b], its domain widened to round
// ticks (1, 2 or 5 times a power of ten, at least `minStep`); an empty
// domain is widened so a single price or instant still draws in the middle.
function scale(lo, hi, a, b, count = 4, minStep = 1) {
  if (hi <= lo) {
    const pad = Math.max(Math.abs(lo) * 0.1, minStep);
    lo -= pad;
    hi += pad;
  }
  const rough = (hi - lo) / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = Math.max(minStep, [1, 2, 5, 10].map((m) => m * power).find((v) => v >= rough));
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const f = (v) => a + ((v - lo) / (hi - lo)) * (b - a);
  f.lo = lo;
  f.hi = hi;
  f.step = step;
  return f;
}

function ticks(sc) {
  const out = [];
  for (let v = sc.lo; v <= sc.hi + sc.step / 2; v += sc.step) out.push(v);
  return out;
}

function axes(svg, x, y, xTicks, yTicks, xLabel, yLabel, xFormat, yFormat) {
  const x0 = PAD.left;
  const x1 = W - PAD.right;
  const y0 = H - PAD.bottom;
  const y1 = PAD.top;
  const g = s("g", { class: "axes" });
  g.append(s("line", { x1: x0, y1: y0, x2: x1, y2: y0, class: "axis" }));
  g.append(s("line", { x1: x0, y1: y0, x2: x0, y2: y1, class: "axis" }));
  for (const t of xTicks) {
    const px = x(t);
    g.append(s("line", { x1: px, y1: y0, x2: px, y2: y0 + 4, class: "axis" }));
    g.append(s("text", { x: px, y: y0 + 16, class: "tick", "text-anchor": "middle" }, xFormat(t)));
  }
  for (const t of yTicks) {
    const py = y(t);
    g.append(s("line", { x1: x0, y1: py, x2: x1, y2: py, class: "grid" }));
    g.append(s("text", { x: x0 - 6, y: py + 4, class: "tick", "text-anchor": "end" }, yFormat(t)));
  }
  g.append(s("text", { x: (x0 + x1) / 2, y: H - 6, class: "axis-label", "text-anchor": "middle" }, xLabel));
  g.append(
    s("text", { x: 12, y: (y0 + y1) / 2, class: "axis-label", "text-anchor": "middle", transform: `rotate(-90 12 ${(y0 + y1) / 2})` }, yLabel),
  );
  svg.append(g);
}

const priceTick = (v) => fmt.price(Math.round(v));
const energyTick = (v) => fmt.energy(Math.round(v)).replace(" kWh", "");

function cumulative(levels) {
  let total = 0n;
  return levels.map((level) => {
    total += fmt.toBig(level.energy) ?? 0n;
    return { level, price: Number(level.price), cum: Number(total) };
  });
}

// Depth: cumulative bid energy at or above each price (left of the spread)
// and cumulative ask energy at or below it (right), as two step areas.
export function depthChart(book) {
  const svg = frame("depth", "market depth: cumulative bid and ask energy against price");
  const bids = cumulative(book.bids || []);
  const asks = cumulative(book.asks || []);
  const prices = [...bids, ...asks].map((p) => p.price);
  const maxCum = Math.max(1, ...bids.map((p) => p.cum), ...asks.map((p) => p.cum));
  const lo = prices.length ? Math.min(...prices) : 0;
  const hi = prices.length ? Math.max(...prices) : 1000000;
  const spread = Math.max((hi - lo) * 0.15, lo * 0.1, 10000);
  const x = scale(Math.max(0, lo - spread), hi + spread, PAD.left, W - PAD.right, 5, 10000);
  const y = scale(0, maxCum * 1.1, H - PAD.bottom, PAD.top, 4, 1000);
  axes(svg, x, y, ticks(x), prices.length ? ticks(y) : [], "price (/kWh)", "cumulative energy (kWh)", priceTick, energyTick);
  if (!prices.length) {
    // After the gate the book is empty: what was not matched has expired.
    const empty = book.closed ? "the gate has closed: no orders rest in the book" : "no open orders";
    svg.append(s("text", { x: W / 2, y: H / 2, class: "chart-empty", "text-anchor": "middle" }, empty));
    return svg;
  }
  const area = (points, side, edge) => {
    let d = `M${x(points[0].price)},${y(0)}`;
    points.forEach((p, i) => {
      d += ` L${x(p.price)},${y(p.cum)}`;
      const next = points[i + 1];
      d += ` L${next ? x(next.price) : edge},${y(p.cum)}`;
    });
    d += ` L${edge},${y(0)} Z`;
    svg.append(s("path", { d, class: `depth ${side}` }));
  };
  if (bids.length) area(bids, "bid", x(x.lo));
  if (asks.length) area(asks, "ask", x(x.hi));
  for (const [side, points] of [["bid", bids], ["ask", asks]]) {
    for (const p of points) {
      const g = s("g", {
        class: `level ${side}`,
        "data-side": side,
        "data-price": fmt.raw(p.level.price),
        "data-energy": fmt.raw(p.level.energy),
        "data-cumulative": String(p.cum),
      });
      g.append(s("circle", { cx: x(p.price), cy: y(p.cum), r: 4 }));
      g.append(s("title", {}, `${side} ${fmt.price(p.level.price)}/kWh: ${fmt.energy(p.level.energy)} (${p.level.orders} ${p.level.orders === 1 ? "order" : "orders"})`));
      svg.append(g);
    }
  }
  return svg;
}

// Trades: each trade a point at its price (upper band) and a bar of its
// energy (lower band), against time.
export function tradesChart(trades) {
  const svg = frame("trades", "trades: price and volume over time");
  const times = trades.map((t) => Number(t.time));
  const prices = trades.map((t) => Number(t.price));
  const energies = trades.map((t) => Number(t.energy));
  const x = scale(Math.min(...times, Infinity) - 30, Math.max(...times, -Infinity) + 30, PAD.left + 10, W - PAD.right - 10, 4, 15);
  const split = PAD.top + (H - PAD.top - PAD.bottom) * 0.62;
  const pLo = trades.length ? Math.min(...prices) : 0;
  const pHi = trades.length ? Math.max(...prices) : 1000000;
  const pPad = Math.max((pHi - pLo) * 0.15, pLo * 0.1, 10000);
  const y = scale(Math.max(0, pLo - pPad), pHi + pPad, split - 8, PAD.top, 3, 10000);
  const maxE = Math.max(1, ...energies);
  const v = scale(0, maxE, H - PAD.bottom, split + 4);
  if (!trades.length) {
    axes(svg, scale(0, 1, PAD.left, W - PAD.right), y, [], [], "time (UTC)", "price (/kWh)", () => "", priceTick);
    svg.append(s("text", { x: W / 2, y: H / 2, class: "chart-empty", "text-anchor": "middle" }, "no trades"));
    return svg;
  }
  const timeTick = (t) => fmt.time(Math.round(t)).slice(11);
  axes(svg, x, y, ticks(x), ticks(y), "time (UTC)", "price (/kWh)", timeTick, priceTick);
  svg.append(s("line", { x1: PAD.left, y1: split, x2: W - PAD.right, y2: split, class: "axis band" }));
  svg.append(s("text", { x: W - PAD.right, y: split + 14, class: "tick", "text-anchor": "end" }, `volume (kWh), largest ${energyTick(maxE)}`));
  const barWidth = Math.max(3, Math.min(16, (W - PAD.left - PAD.right) / (trades.length * 2)));
  trades.forEach((t, i) => {
    const g = s("g", {
      class: "trade",
      "data-seq": fmt.raw(t.seq),
      "data-price": fmt.raw(t.price),
      "data-energy": fmt.raw(t.energy),
      "data-time": fmt.raw(t.time),
    });
    const px = x(times[i]);
    g.append(s("rect", { x: px - barWidth / 2, y: v(energies[i]), width: barWidth, height: v(0) - v(energies[i]), class: "volume" }));
    g.append(s("circle", { cx: px, cy: y(prices[i]), r: 4.5, class: "price" }));
    g.append(s("title", {}, `${fmt.time(t.time)}: ${fmt.energy(t.energy)} at ${fmt.price(t.price)}/kWh`));
    svg.append(g);
  });
  return svg;
}
