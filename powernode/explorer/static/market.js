// Market pages: the slots of every product, and one slot's book, trades,
// statistics and charts.

import { batch } from "./rpc.js";
import { h, fields, table, section } from "./dom.js";
import * as fmt from "./format.js";
import { depthChart, tradesChart } from "./charts.js";

// ---- market ---------------------------------------------------------------

export async function marketPage(ctx) {
  const [params, stats] = await batch([{ method: "market.params" }, { method: "market.stats" }]);
  const products = Object.keys(params.products || {});
  const slotLists = await batch(products.map((product) => ({ method: "market.slots", params: { product, limit: 50 } })));
  const slots = [];
  products.forEach((product, i) => {
    for (const s of slotLists[i]) slots.push({ ...s, product });
  });
  const productRows = products.map((name) => ({ name, ...params.products[name] }));
  return [
    section(
      "Market",
      fields([
        ["market time (UTC)", "market_time", params.market_time, "time"],
        ["trades", "trades", stats.trades, "int"],
        ["volume", "volume_wh", stats.volume_wh, "energy"],
        ["value", "value", stats.value, "money"],
        ["average price (/kWh)", "avg_price", stats.avg_price, "price"],
        ["open orders", "open_orders", stats.open_orders, "int"],
      ]),
    ),
    section(
      "Slots with orders or trades",
      table(
        "slots",
        [
          { col: "product", label: "product", kind: "text" },
          { col: "slot", label: "slot (UTC)", kind: "time", render: (s) => slotLink(s.product, s.slot) },
          { col: "gate", label: "gate closes", kind: "time" },
          { col: "closed", label: "closed", kind: "text" },
          { col: "open_orders", label: "open orders", kind: "int" },
          { col: "trades", label: "trades", kind: "int" },
          { col: "volume_wh", label: "volume", kind: "energy" },
          { col: "avg_price", label: "avg price (/kWh)", kind: "price" },
        ],
        slots,
        (s) => `${s.product}/${s.slot}`,
        "no slot has orders or trades yet",
      ),
    ),
    section(
      "Products",
      table(
        "products",
        [
          { col: "name", label: "product", kind: "text" },
          { col: "slot_seconds", label: "slot", kind: "duration" },
          { col: "gate_closure_seconds", label: "gate closure", kind: "duration" },
          { col: "price_rule", label: "price rule", kind: "text" },
          { col: "min_order_wh", label: "min order", kind: "energy" },
          { col: "max_order_wh", label: "max order", kind: "energy" },
          { col: "price_tick", label: "tick", kind: "price" },
          { col: "min_lead_seconds", label: "min lead", kind: "duration" },
          { col: "max_lead_seconds", label: "max lead", kind: "duration" },
        ],
        productRows,
        (p) => p.name,
      ),
    ),
  ];
}

export async function marketSlotPage(ctx, product, slotText) {
  // A slot is its start, unix seconds: anything else is no slot at all.
  if (!/^[0-9]{1,15}$/.test(slotText)) throw new Error(`no slot ${slotText}: a slot is its start time in unix seconds`);
  const slot = Number(slotText);
  const [book, stats, trades, settlement] = await batch([
    { method: "market.book", params: { product, slot, levels: 100 } },
    { method: "market.stats", params: { product, slot } },
    { method: "market.trades", params: { product, slot, limit: 1000 } },
    { method: "market.settlement", params: { slot } },
  ]);
  const pending = settlement.pending_slots.some((s) => Number(s) === slot);
  // Until its gate closes a slot's book and trades change with each block;
  // until it settles (after the gate) its settlement can come with any.
  ctx.refreshOnTip = !book.closed || pending;
  const levelColumns = [
    { col: "price", label: "price (/kWh)", kind: "price" },
    { col: "energy", label: "energy", kind: "energy" },
    { col: "orders", label: "orders", kind: "int" },
  ];
  return [
    section(
      `${product} · ${fmt.time(slot)} UTC`,
      h("p", { class: "meta" }, h("a", { href: "#/market" }, "← all slots")),
      fields([
        ["product", "product", product],
        ["slot (UTC)", "slot", slot, "time"],
        ["gate closes", "gate", book.gate, "time"],
        ["closed", "closed", book.closed],
        ["trades", "trades", stats.trades, "int"],
        ["volume", "volume_wh", stats.volume_wh, "energy"],
        ["value", "value", stats.value, "money"],
        ["average price (/kWh)", "avg_price", stats.avg_price, "price"],
        ["min price (/kWh)", "min_price", stats.min_price, "price"],
        ["max price (/kWh)", "max_price", stats.max_price, "price"],
        ["open orders", "open_orders", stats.open_orders, "int"],
      ]),
    ),
    h(
      "div",
      { class: "columns" },
      section("Depth", depthChart(book), h("p", { class: "legend" }, h("span", { class: "swatch bid" }), "bids ", h("span", { class: "swatch ask" }), "asks")),
      section("Trades over time", tradesChart(trades), h("p", { class: "legend" }, h("span", { class: "swatch price" }), "price ", h("span", { class: "swatch volume" }), "volume")),
    ),
    h(
      "div",
      { class: "columns" },
      section("Bids", table("bids", levelColumns, book.bids, (l) => l.price, "no bids")),
      section("Asks", table("asks", levelColumns, book.asks, (l) => l.price, "no asks")),
    ),
    section(
      "Trades",
      table(
        "trades",
        [
          { col: "seq", label: "seq", kind: "int" },
          { col: "time", label: "time (UTC)", kind: "time" },
          { col: "height", label: "block", kind: "height" },
          { col: "energy", label: "energy", kind: "energy" },
          { col: "price", label: "price (/kWh)", kind: "price" },
          { col: "value", label: "value", kind: "money" },
          { col: "buyer", label: "buyer", kind: "account" },
          { col: "seller", label: "seller", kind: "account" },
          { col: "status", label: "settlement", kind: "text" },
        ],
        trades,
        (t) => t.seq,
        "no trades",
      ),
    ),
    // Per seller, what the slot's settlement did (all products of the slot:
    // settlement is by slot and seller).
    section(
      "Settlement",
      fields([["pending", "settlement_pending", pending]]),
      table(
        "settlements",
        [
          { col: "seller", label: "seller", kind: "account" },
          { col: "height", label: "block", kind: "height" },
          { col: "metered_wh", label: "metered", kind: "energy" },
          { col: "ppa_wh", label: "to PPAs", kind: "energy" },
          { col: "sold_wh", label: "sold", kind: "energy" },
          { col: "delivered_wh", label: "delivered", kind: "energy" },
          { col: "paid", label: "paid", kind: "money" },
          { col: "refunded", label: "refunded", kind: "money" },
          { col: "penalty", label: "penalty", kind: "money" },
          { col: "bundled_wh", label: "certificates bundled", kind: "energy" },
        ],
        settlement.settlements,
        (r) => r.seller,
        pending ? "not settled yet" : "nothing to settle",
      ),
    ),
  ];
}


// A slot, shown as its time, linked to its page.
export function slotLink(product, slot) {
  return h("a", { href: `#/market/${product}/${slot}` }, fmt.time(slot));
}
