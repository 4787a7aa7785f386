// Chain pages: a block, a tx and its events, an account with its market
// position, orders and what else it holds.

import { batch, call } from "./rpc.js";
import { h, fields, table, section, valueContent, LIST_LIMIT, listNote } from "./dom.js";
import * as fmt from "./format.js";
import { slotLink } from "./market.js";
import { certTable } from "./certs.js";
import { contractTable, deviceTable, ppaTable } from "./registry.js";

// ---- block and tx ---------------------------------------------------------

export async function blockPage(ctx, ref) {
  const params = /^\d+$/.test(ref) ? { height: Number(ref) } : { hash: ref.replace(/^0x/i, "").toLowerCase() };
  params.verbose = true;
  params.raw = true;
  const block = await call("chain.block", params);
  const txs = block.txs.map((t) => (typeof t === "string" ? { id: t } : t));
  const nav = h(
    "p",
    { class: "pager" },
    // By hash: the parent of a block off the main chain is not the main
    // chain's block at that height.
    block.height > 0 ? h("a", { href: `#/block/${block.prev_hash}` }, "← previous") : null,
    " ",
    // The tip has no next block yet (a main-chain block has 1 confirmation
    // when it is the tip).
    block.in_main_chain && block.confirmations > 1 ? h("a", { href: `#/block/${block.height + 1}` }, "next →") : null,
  );
  return [
    section(
      `Block ${block.height}`,
      nav,
      fields([
        ["height", "height", block.height, "height"],
        ["hash", "hash", block.hash, "full"],
        ["previous", "prev_hash", block.prev_hash, "block"],
        ["time (UTC)", "timestamp", block.timestamp, "time"],
        ["miner", "miner", block.miner, "account"],
        ["txs", "txs", txs.length, "int"],
        ["size", "size", block.size, "bytes"],
        ["confirmations", "confirmations", block.confirmations, "int"],
        ["main chain", "in_main_chain", block.in_main_chain],
        ["state root", "state_root", block.state_root, "full"],
        ["tx root", "tx_root", block.tx_root, "full"],
        ["target", "target", block.target, "full"],
        ["nonce", "nonce", block.nonce],
      ]),
    ),
    section(
      "Transactions",
      table(
        "txs",
        [
          { col: "index", label: "#", kind: "int", value: (t) => txs.indexOf(t) },
          { col: "id", label: "tx", kind: "tx" },
          { col: "type", label: "type", kind: "text" },
          { col: "sender", label: "sender", kind: "account" },
          { col: "nonce", label: "nonce", kind: "int" },
          { col: "fee", label: "fee", kind: "money" },
          { col: "size", label: "size", kind: "bytes" },
        ],
        txs,
        (t) => t.id,
      ),
    ),
    rawSection("Raw block", block.raw),
  ];
}

// Raw bytes as hex, folded away (a block's can be long).
function rawSection(title, hex) {
  if (!hex) return null;
  return h(
    "section",
    { class: "card" },
    h(
      "details",
      {},
      h("summary", {}, `${title} (${fmt.bytes(hex.length / 2)})`),
      h("pre", { class: "raw mono", dataset: { field: "raw", value: hex } }, hex),
    ),
  );
}

export async function txPage(ctx, id) {
  const tx = await call("tx.get", { id: id.replace(/^0x/i, "").toLowerCase() });
  const body = tx.tx || {};
  const receipt = tx.receipt || {};
  const events = (receipt.events || []).map((e, i) => ({ ...e, index: i }));
  const raw = tx.raw ?? body.raw ?? null;
  // A pending tx is shown again at each block until it is mined or dropped.
  ctx.refreshOnTip = tx.status === "pending";
  const out = [
    section(
      "Transaction",
      fields([
        ["id", "id", body.id || id, "full"],
        ["status", "status", tx.status],
        ["block", "block", tx.block, "block"],
        ["height", "height", tx.height, "height"],
        ["index", "index", tx.index, "int"],
        ["confirmations", "confirmations", tx.confirmations, "int"],
        ["type", "type", body.type],
        ["sender", "sender", body.sender, "account"],
        ["nonce", "nonce", body.nonce, "int"],
        ["fee", "fee", body.fee, "money"],
        ["size", "size", body.size, "bytes"],
        ["receipt", "receipt_status", receipt.status],
        ["error", "tx_error", tx.error],
      ]),
      h("h3", {}, "Payload"),
      h("pre", { class: "json", dataset: { field: "payload", value: fmt.raw(body.payload) } }, JSON.stringify(body.payload)),
    ),
    section(
      "Events",
      table(
        "events",
        [
          { col: "index", label: "#", kind: "int" },
          { col: "event", label: "event", kind: "text" },
          { col: "detail", label: "detail", kind: "text", value: (e) => eventDetail(e), render: (e) => eventDetailNodes(e) },
        ],
        events,
        (e) => e.index,
        "no events",
      ),
    ),
  ];
  out.push(rawSection("Raw tx", raw));
  return out;
}

function eventDetail(event) {
  const rest = { ...event };
  delete rest.event;
  delete rest.index;
  return rest;
}

// An event's fields, each formatted by what its name says it holds.
function eventDetailNodes(event) {
  const parts = [];
  for (const [key, value] of Object.entries(eventDetail(event))) {
    parts.push(
      h("span", { class: "kv", dataset: { key, value: fmt.raw(value) } }, h("span", { class: "k" }, key + " "), valueContent(value, kindOf(key, value))),
    );
  }
  return parts;
}

function kindOf(key, value) {
  if (typeof value !== "number" && typeof value !== "string") return "text";
  if (/(^|_)wh$|^energy$|_wh_/.test(key)) return "energy";
  if (/price/.test(key)) return "price";
  if (/^(value|paid|fee|amount|refund|refunded|penalty|escrow|balance|owed|reward)$|_fee$/.test(key)) return "money";
  if (/bps$/.test(key)) return "bps";
  if (/^(participant|buyer|seller|owner|sender|to|from|producer|creator|address)$/.test(key) && /^[0-9a-f]{40}$/.test(String(value))) return "account";
  if (/^(cert|parent|child)$/.test(key) && /^[0-9a-f]{64}$/.test(String(value))) return "cert";
  if (/^(device)$/.test(key) && /^[0-9a-f]{64}$/.test(String(value))) return "device";
  if (/^(ppa)$/.test(key) && /^[0-9a-f]{64}$/.test(String(value))) return "ppa";
  if (/^(contract)$/.test(key) && /^[0-9a-f]{64}$/.test(String(value))) return "contract";
  if (/^(order|buy|sell|buy_id|sell_id|txid)$/.test(key) && /^[0-9a-f]{64}$/.test(String(value))) return "tx";
  if (/^[0-9a-f]{64}$/.test(String(value))) return "hash";
  if (/^(slot|time|interval|interval_start|start|end)$/.test(key)) return "time";
  return "text";
}


// ---- account --------------------------------------------------------------

export async function accountPage(ctx, address) {
  const a = address.replace(/^0x/i, "").toLowerCase();
  const [account, position, orders, trades, participant, certs, ppas, devices, contracts] = await batch([
    { method: "account.get", params: { address: a } },
    { method: "market.position", params: { participant: a }, optional: true },
    { method: "market.orders", params: { participant: a, limit: LIST_LIMIT }, optional: true },
    { method: "market.trades", params: { participant: a, limit: 100 }, optional: true },
    { method: "market.participant", params: { address: a }, optional: true },
    { method: "cert.list", params: { owner: a, limit: LIST_LIMIT }, optional: true },
    { method: "ppa.list", params: { party: a, limit: LIST_LIMIT }, optional: true },
    { method: "device.list", params: { owner: a, limit: LIST_LIMIT }, optional: true },
    { method: "contract.list", params: { party: a, limit: LIST_LIMIT }, optional: true },
  ]);
  const out = [
    section(
      "Account",
      fields([
        ["address", "address", a, "full"],
        ["balance", "balance", account.balance, "money"],
        ["nonce", "nonce", account.nonce, "int"],
        ["next nonce", "next_nonce", account.next_nonce, "int"],
        ["role", "role", participant ? participant.role : null],
        ["location", "location", participant ? participant.location : null],
        ["capacity", "capacity_w", participant ? participant.capacity_w : null, "power"],
      ]),
    ),
  ];
  if (position) {
    out.push(
      section(
        "Energy position",
        fields([
          ["bought", "bought_wh", position.bought_wh, "energy"],
          ["sold", "sold_wh", position.sold_wh, "energy"],
          ["received", "received_wh", position.received_wh, "energy"],
          ["not received", "not_received_wh", position.not_received_wh, "energy"],
          ["delivered", "delivered_wh", position.delivered_wh, "energy"],
          ["undelivered", "undelivered_wh", position.undelivered_wh, "energy"],
          ["pending bought", "pending_bought_wh", position.pending_bought_wh, "energy"],
          ["pending sold", "pending_sold_wh", position.pending_sold_wh, "energy"],
          ["order escrow", "order_escrow", position.order_escrow, "money"],
          ["settlement escrow", "settlement_escrow", position.settlement_escrow, "money"],
        ]),
      ),
    );
  }
  out.push(
    section(
      "Orders",
      table(
        "orders",
        [
          { col: "id", label: "order", kind: "tx" },
          { col: "side", label: "side", kind: "text" },
          { col: "product", label: "product", kind: "text" },
          { col: "slot", label: "slot (UTC)", kind: "time", render: (o) => slotLink(o.product, o.slot) },
          { col: "energy", label: "energy", kind: "energy" },
          { col: "price", label: "price (/kWh)", kind: "price" },
          { col: "filled", label: "filled", kind: "energy" },
          { col: "remaining", label: "remaining", kind: "energy" },
          { col: "status", label: "status", kind: "text" },
        ],
        orders || [],
        (o) => o.id,
      ),
      listNote("orders", orders),
    ),
    section("Trades", table("trades", accountTradeColumns(a), trades || [], (t) => t.seq)),
  );
  if (certs && certs.length) out.push(section("Certificates", certTable(certs), listNote("certs", certs)));
  if (ppas && ppas.length) out.push(section("PPAs", ppaTable(ppas), listNote("ppas", ppas)));
  if (devices && devices.length) out.push(section("Devices", deviceTable(devices), listNote("devices", devices)));
  if (contracts && contracts.length) {
    out.push(section("Contracts", contractTable(contracts), listNote("contracts", contracts)));
  }
  return out;
}

function accountTradeColumns(address) {
  return [
    { col: "seq", label: "seq", kind: "int" },
    { col: "side", label: "side", kind: "text", value: (t) => (t.buyer === address ? "buy" : "sell") },
    { col: "product", label: "product", kind: "text" },
    { col: "slot", label: "slot (UTC)", kind: "time", render: (t) => slotLink(t.product, t.slot) },
    { col: "energy", label: "energy", kind: "energy" },
    { col: "price", label: "price (/kWh)", kind: "price" },
    { col: "value", label: "value", kind: "money" },
    { col: "height", label: "block", kind: "height" },
    { col: "status", label: "settlement", kind: "text" },
  ];
}
