// powernode explorer: a read-only single-page app over the node's public
// JSON-RPC. Hash routes (#/block/5) pick a page; each page loads with one
// batched RPC call and renders, then sets body[data-state] to "ready" (the
// browser test waits on it). The WebSocket keeps the header's tip and the
// home page live.

import { batch, call, Live, RpcError } from "./rpc.js";
import { h, field, fields, table, tableRow, section, valueContent } from "./dom.js";
import * as fmt from "./format.js";
import { depthChart, tradesChart } from "./charts.js";

const main = document.getElementById("main");
const live = new Live();
let generation = 0; // the route being loaded; a newer one makes older loads stale
let onTip = null; // the current page's tip handler (home refreshes itself)
let onMempool = null;

// ---- routes -------------------------------------------------------------

const ROUTES = [
  [/^$/, "home", homePage],
  [/^block\/([^/]+)$/, "block", blockPage],
  [/^tx\/([^/]+)$/, "tx", txPage],
  [/^account\/([^/]+)$/, "account", accountPage],
  [/^market$/, "market", marketPage],
  [/^market\/([^/]+)\/([^/]+)$/, "market-slot", marketSlotPage],
  [/^certs$/, "certs", certsPage],
  [/^cert\/([^/]+)$/, "cert", certPage],
  [/^devices$/, "devices", devicesPage],
  [/^device\/([^/]+)$/, "device", devicePage],
  [/^ppas$/, "ppas", ppasPage],
  [/^ppa\/([^/]+)$/, "ppa", ppaPage],
  [/^contracts$/, "contracts", contractsPage],
  [/^contract\/([^/]+)$/, "contract", contractPage],
  [/^peers$/, "peers", peersPage],
  [/^search\/(.*)$/, "search", searchPage],
];

function parseHash() {
  const path = decodeURIComponent(location.hash.replace(/^#\/?/, "")).replace(/\/+$/, "");
  for (const [pattern, name, page] of ROUTES) {
    const m = path.match(pattern);
    if (m) return { name, page, args: m.slice(1) };
  }
  return { name: "notfound", page: notFoundPage, args: [path] };
}

async function route() {
  const gen = ++generation;
  const { name, page, args } = parseHash();
  onTip = null;
  onMempool = null;
  document.body.dataset.route = name;
  document.body.dataset.state = "loading";
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.nav === name.replace(/-slot$/, "").replace(/^(cert|device|ppa|contract)$/, "$1s"));
  }
  try {
    const content = await page(...args);
    if (gen !== generation) return;
    main.replaceChildren(...[content].flat());
    document.body.dataset.state = "ready";
  } catch (err) {
    if (gen !== generation) return;
    // Shown on the page, not logged: the console stays clean for the test.
    main.replaceChildren(
      h("section", { class: "card error" }, h("h2", {}, "Could not load this page"), h("p", { dataset: { field: "error" } }, err.message)),
    );
    document.body.dataset.state = "error";
  }
}

// ---- header ---------------------------------------------------------------

function setHeader(info) {
  const chain = document.getElementById("chain");
  chain.textContent = info.chain_id;
  chain.dataset.value = info.chain_id;
  setTipHeight(info.height);
}

function setTipHeight(height) {
  const tip = document.getElementById("tip-height");
  tip.textContent = fmt.integer(height);
  tip.dataset.value = String(height);
  tip.href = `#/block/${height}`;
}

function setupSearch() {
  const input = document.querySelector('input[data-action="search"]');
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const q = input.value.trim();
    if (!q) return;
    input.value = "";
    location.hash = `#/search/${encodeURIComponent(q)}`;
  });
}

// ---- home -----------------------------------------------------------------

const BLOCK_COLUMNS = [
  { col: "height", label: "height", kind: "height" },
  { col: "hash", label: "hash", kind: "block" },
  { col: "timestamp", label: "time (UTC)", kind: "time" },
  { col: "txs", label: "txs", kind: "int" },
  { col: "size", label: "size", kind: "bytes" },
  { col: "miner", label: "miner", kind: "account" },
];

const MEMPOOL_COLUMNS = [
  { col: "id", label: "tx", kind: "tx" },
  { col: "type", label: "type", kind: "text" },
  { col: "sender", label: "sender", kind: "account" },
  { col: "nonce", label: "nonce", kind: "int" },
  { col: "fee", label: "fee", kind: "money" },
  { col: "size", label: "size", kind: "bytes" },
  { col: "fee_rate", label: "fee / 1000 B", kind: "money" },
];

async function homePage() {
  const gen = generation;
  const [info, blocks, pool] = await batch([
    { method: "node.info" },
    { method: "chain.blocks", params: { limit: 20 } },
    { method: "mempool.txs", params: { limit: 100 } },
  ]);
  setHeader(info);
  const tipCard = section("Tip", homeTipFields(info));
  const blocksCard = section("Recent blocks", table("blocks", BLOCK_COLUMNS, blocks, (b) => b.hash));
  const poolCard = section("Mempool", mempoolContent(pool));
  if (gen !== generation) return []; // left before it loaded: install nothing
  let refreshing = false;
  // A new tip: reload the three panels in one call (the block's size and
  // the pool after it are not in the notice).
  onTip = async () => {
    if (refreshing) return;
    refreshing = true;
    try {
      const [i, b, p] = await batch([
        { method: "node.info" },
        { method: "chain.blocks", params: { limit: 20 } },
        { method: "mempool.txs", params: { limit: 100 } },
      ]);
      if (gen !== generation) return;
      tipCard.replaceChildren(h("h2", {}, "Tip"), homeTipFields(i));
      blocksCard.replaceChildren(h("h2", {}, "Recent blocks"), table("blocks", BLOCK_COLUMNS, b, (x) => x.hash));
      poolCard.replaceChildren(h("h2", {}, "Mempool"), mempoolContent(p));
    } catch {
      // The next tip retries; the panels keep what they showed.
    } finally {
      refreshing = false;
    }
  };
  onMempool = (notice) => {
    const body = poolCard.querySelector('table[data-table="mempool"] tbody');
    if (!body) return;
    if (notice.type === "added") {
      if (body.querySelector(`tr[data-id="${notice.id}"]`)) return;
      const row = { id: notice.id, type: notice.tx_type, sender: notice.sender, nonce: null, fee: notice.fee, size: notice.size, fee_rate: null };
      body.append(tableRow(MEMPOOL_COLUMNS, row, (r) => r.id));
    } else if (notice.type === "removed") {
      for (const id of notice.ids || [notice.id]) {
        const tr = body.querySelector(`tr[data-id="${id}"]`);
        if (tr) tr.remove();
      }
    }
    const size = poolCard.querySelector('[data-field="mempool_size"]');
    if (size) {
      const n = body.querySelectorAll("tr").length;
      size.textContent = String(n);
      size.dataset.value = String(n);
    }
    const empty = poolCard.querySelector("p.empty");
    if (empty) empty.hidden = body.querySelector("tr") !== null;
  };
  return [tipCard, h("div", { class: "columns" }, blocksCard, poolCard)];
}

function homeTipFields(info) {
  return fields([
    ["chain", "chain_id", info.chain_id],
    ["height", "height", info.height, "height"],
    ["tip", "tip", info.tip, "block"],
    ["state root", "state_root", info.state_root, "hash"],
    ["total work", "total_work", info.total_work, "text"],
    ["peers", "peers", info.peers, "int"],
    ["mining", "mining", info.mining],
    ["syncing", "syncing", info.syncing],
    ["version", "version", info.version],
  ]);
}

function mempoolContent(pool) {
  return [
    h("p", { class: "meta" }, field("mempool_size", pool.size, "int"), " txs waiting, the miner's order"),
    table("mempool", MEMPOOL_COLUMNS, pool.txs, (t) => t.id, "the pool is empty"),
  ];
}

// ---- block and tx ---------------------------------------------------------

async function blockPage(ref) {
  const params = /^\d+$/.test(ref) ? { height: Number(ref) } : { hash: ref.replace(/^0x/i, "").toLowerCase(), verbose: true };
  if ("height" in params) params.verbose = true;
  const block = await call("chain.block", params);
  const txs = block.txs.map((t) => (typeof t === "string" ? { id: t } : t));
  const nav = h(
    "p",
    { class: "pager" },
    block.height > 0 ? h("a", { href: `#/block/${block.height - 1}` }, "← previous") : null,
    " ",
    h("a", { href: `#/block/${block.height + 1}` }, "next →"),
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
  ];
}

async function txPage(id) {
  const tx = await call("tx.get", { id: id.replace(/^0x/i, "").toLowerCase() });
  const body = tx.tx || {};
  const receipt = tx.receipt || {};
  const events = (receipt.events || []).map((e, i) => ({ ...e, index: i }));
  const raw = tx.raw ?? body.raw ?? null;
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
  if (raw) {
    out.push(section("Raw", h("pre", { class: "raw mono", dataset: { field: "raw", value: raw } }, raw)));
  }
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

async function accountPage(address) {
  const a = address.replace(/^0x/i, "").toLowerCase();
  const [account, position, orders, trades, participant, certs, ppas] = await batch([
    { method: "account.get", params: { address: a } },
    { method: "market.position", params: { participant: a }, optional: true },
    { method: "market.orders", params: { participant: a }, optional: true },
    { method: "market.trades", params: { participant: a, limit: 100 }, optional: true },
    { method: "market.participant", params: { address: a }, optional: true },
    { method: "cert.list", params: { owner: a }, optional: true },
    { method: "ppa.list", params: { party: a }, optional: true },
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
        ["capacity (W)", "capacity_w", participant ? participant.capacity_w : null, "int"],
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
    ),
    section("Trades", table("trades", accountTradeColumns(a), trades || [], (t) => t.seq)),
  );
  if (certs && certs.length) out.push(section("Certificates", certTable(certs)));
  if (ppas && ppas.length) out.push(section("PPAs", ppaTable(ppas)));
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

function slotLink(product, slot) {
  return h("a", { href: `#/market/${product}/${slot}` }, fmt.time(slot));
}

// ---- market ---------------------------------------------------------------

async function marketPage() {
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

async function marketSlotPage(product, slotText) {
  const slot = Number(slotText);
  const [book, stats, trades] = await batch([
    { method: "market.book", params: { product, slot, levels: 100 } },
    { method: "market.stats", params: { product, slot } },
    { method: "market.trades", params: { product, slot, limit: 1000 } },
  ]);
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
  ];
}

// ---- certificates ---------------------------------------------------------

function certTable(certs) {
  return table(
    "certs",
    [
      { col: "id", label: "certificate", kind: "cert" },
      { col: "owner", label: "owner", kind: "account" },
      { col: "source", label: "source", kind: "text" },
      { col: "type", label: "type", kind: "text" },
      { col: "interval_start", label: "generated (UTC)", kind: "time" },
      { col: "wh", label: "energy", kind: "energy" },
      { col: "remaining_wh", label: "remaining", kind: "energy" },
      { col: "status", label: "status", kind: "text" },
    ],
    certs,
    (c) => c.id,
    "no certificates",
  );
}

async function certsPage() {
  const certs = await call("cert.list", {});
  return section("Certificates", certTable(certs));
}

async function certPage(id) {
  const cert = id.replace(/^0x/i, "").toLowerCase();
  const [tree, verify, proof] = await batch([
    { method: "cert.tree", params: { cert } },
    { method: "cert.verify", params: { cert } },
    { method: "cert.proof", params: { cert }, soft: true },
  ]);
  if (proof instanceof RpcError) {
    // Some lineages cannot be proven offline (the node says why).
    return certContent(cert, tree, verify, null, proof.message.replace(/^cert\.proof: /, ""));
  }
  return certContent(cert, tree, verify, proof, null);
}

function certContent(cert, tree, verify, proof, noProof) {
  const download = h(
    "a",
    { href: "#", class: "button", dataset: { action: "download-proof" } },
    "Download proof",
    proof ? h("span", { class: "meta" }, ` (${fmt.bytes(proof.bytes)}, proven to height ${proof.height})`) : null,
  );
  download.addEventListener("click", (event) => downloadProof(event, download, cert));
  const proofLine = noProof
    ? h("p", { class: "meta", dataset: { field: "proof_error", value: noProof } }, "No proof file: " + noProof)
    : h("p", {}, download, h("span", { hidden: true }, field("proof_bytes", proof.bytes, "int"), field("proof_height", proof.height, "height")));
  return [
    section(
      "Certificate",
      fields([
        ["id", "id", cert, "full"],
        ["root", "root", tree.root, "cert"],
        ["valid", "valid", verify.valid],
        ["usable", "usable", verify.usable],
        ["status", "status", verify.status],
        ["source", "source", verify.source],
        ["type", "type", verify.type],
        ["carbon intensity (gCO2/kWh)", "carbon_intensity", verify.carbon_intensity, "int"],
        ["energy", "wh", verify.wh, "energy"],
        ["remaining", "remaining_wh", verify.remaining_wh, "energy"],
        ["owner", "owner", verify.owner, "account"],
        ["producer", "producer", verify.producer, "account"],
        ["device", "device", verify.device, "device"],
        ["location", "location", verify.location],
        ["generated (UTC)", "interval_start", verify.interval_start, "time"],
        ["expires (UTC)", "expires", verify.expires, "time"],
        ["trace length", "trace_length", verify.trace_length, "int"],
        ["problems", "problems", verify.problems, "problems"],
      ]),
      proofLine,
    ),
    section("Lineage", lineageTree(tree)),
  ];
}

// The proof is fetched when asked for (it can be large) and saved through
// a Blob URL as cert-<id>.proof; the link keeps that URL afterwards.
async function downloadProof(event, link, cert) {
  if (link.href.startsWith("blob:")) return; // the browser saves it
  event.preventDefault();
  try {
    const proof = await call("cert.proof", { cert });
    const data = new Uint8Array(proof.proof.length / 2);
    for (let i = 0; i < data.length; i++) data[i] = parseInt(proof.proof.substr(i * 2, 2), 16);
    link.href = URL.createObjectURL(new Blob([data], { type: "application/octet-stream" }));
    link.download = `cert-${cert}.proof`;
    link.dataset.bytes = String(proof.bytes);
    link.dataset.height = String(proof.height);
    link.click();
  } catch (err) {
    link.after(h("span", { class: "problem", dataset: { field: "proof_error" } }, " " + err.message));
  }
}

// The tree: one [data-cert] per certificate, children nested in their
// parent, each with its steps as [data-step=kind].
function lineageTree(tree) {
  const byParent = new Map();
  for (const node of tree.nodes) {
    const key = node.parent || "";
    if (!byParent.has(key)) byParent.set(key, []);
    byParent.get(key).push(node);
  }
  const ids = new Set(tree.nodes.map((n) => n.id));
  const roots = tree.nodes.filter((n) => !n.parent || !ids.has(n.parent));
  const render = (node) => {
    const el = h(
      "div",
      { class: "cert-node" + (node.id === tree.cert ? " current" : ""), dataset: { cert: node.id } },
      h(
        "div",
        { class: "cert-head" },
        h("a", { href: `#/cert/${node.id}`, class: "mono", title: node.id }, fmt.short(node.id)),
        " ",
        field("wh", node.wh, "energy"),
        " · remaining ",
        field("remaining_wh", node.remaining_wh, "energy"),
        " · ",
        field("status", node.status),
        " · owner ",
        field("owner", node.owner, "account"),
      ),
      h("ol", { class: "steps" }, (node.steps || []).map(stepItem)),
    );
    const children = byParent.get(node.id) || [];
    if (children.length) el.append(h("div", { class: "children" }, children.map(render)));
    return el;
  };
  return h("div", { class: "tree", dataset: { tree: "lineage" } }, roots.map(render));
}

function stepItem(step) {
  return h(
    "li",
    { class: `step ${step.kind}`, dataset: { step: step.kind, wh: fmt.raw(step.wh) } },
    h("span", { class: "step-kind" }, step.kind),
    " ",
    field("wh", step.wh, "energy"),
    step.from ? [" from ", field("from", step.from, "account")] : null,
    step.to ? [" to ", field("to", step.to, "account")] : null,
    step.other ? [" · ", valueContent(step.other, /^[0-9a-f]{64}$/.test(step.other) ? "cert" : "text")] : null,
    " · ",
    h("a", { href: `#/tx/${step.txid}` }, "block " + step.height),
    step.time ? " · " + fmt.time(step.time) : null,
    step.note ? h("span", { class: "note" }, " · " + step.note) : null,
  );
}

// ---- devices --------------------------------------------------------------

const DEVICE_COLUMNS = [
  { col: "id", label: "device", kind: "device" },
  { col: "owner", label: "owner", kind: "account" },
  { col: "kind", label: "kind", kind: "text" },
  { col: "source", label: "source", kind: "text" },
  { col: "capacity_w", label: "capacity (W)", kind: "int" },
  { col: "location", label: "location", kind: "text" },
  { col: "status", label: "status", kind: "text" },
  { col: "readings", label: "readings", kind: "int" },
  { col: "produced_wh", label: "produced", kind: "energy" },
  { col: "consumed_wh", label: "consumed", kind: "energy" },
];

async function devicesPage() {
  const devices = await call("device.list", {});
  return section("Devices", table("devices", DEVICE_COLUMNS, devices, (d) => d.id, "no devices"));
}

async function devicePage(id) {
  const device = id.replace(/^0x/i, "").toLowerCase();
  const [d, readings] = await batch([
    { method: "device.get", params: { device } },
    { method: "meter.readings", params: { device } },
  ]);
  return [
    section(
      "Device",
      fields([
        ["id", "id", d.id, "full"],
        ["owner", "owner", d.owner, "account"],
        ["kind", "kind", d.kind],
        ["source", "source", d.source],
        ["capacity (W)", "capacity_w", d.capacity_w, "int"],
        ["location", "location", d.location],
        ["carbon intensity (gCO2/kWh)", "carbon_intensity", d.carbon_intensity, "int"],
        ["status", "status", d.status],
        ["registered at", "registered_height", d.registered_height, "height"],
        ["approved at", "approved_height", d.approved_height, "height"],
        ["readings", "readings", d.readings, "int"],
        ["produced", "produced_wh", d.produced_wh, "energy"],
        ["consumed", "consumed_wh", d.consumed_wh, "energy"],
        ["last interval (UTC)", "last_interval", d.last_interval, "time"],
        ["meter key", "meter_pubkey", d.meter_pubkey, "hash"],
      ]),
    ),
    section(
      "Readings",
      table(
        "readings",
        [
          { col: "interval", label: "interval (UTC)", kind: "time" },
          { col: "produced_wh", label: "produced", kind: "energy" },
          { col: "consumed_wh", label: "consumed", kind: "energy" },
          { col: "relayer", label: "relayer", kind: "account" },
          { col: "txid", label: "tx", kind: "tx" },
          { col: "height", label: "block", kind: "height" },
        ],
        readings,
        (r) => r.interval,
        "no readings",
      ),
    ),
  ];
}

// ---- PPAs and contracts ---------------------------------------------------

function ppaTable(ppas) {
  return table(
    "ppas",
    [
      { col: "id", label: "PPA", kind: "ppa" },
      { col: "seller", label: "seller", kind: "account" },
      { col: "buyer", label: "buyer", kind: "account" },
      { col: "total_wh", label: "total", kind: "energy" },
      { col: "delivered_wh", label: "delivered", kind: "energy" },
      { col: "progress_bps", label: "progress", kind: "bps" },
      { col: "price", label: "price (/kWh)", kind: "price" },
      { col: "paid", label: "paid", kind: "money" },
      { col: "status", label: "status", kind: "text" },
    ],
    ppas,
    (p) => p.id,
    "no PPAs",
  );
}

async function ppasPage() {
  const ppas = await call("ppa.list", {});
  return section("Power purchase agreements", ppaTable(ppas));
}

async function ppaPage(id) {
  const p = await call("ppa.get", { id: id.replace(/^0x/i, "").toLowerCase() });
  const bar = h("div", { class: "bar", dataset: { bar: "progress", value: fmt.raw(p.progress_bps) } }, h("div", { class: "bar-fill" }));
  // Width from integer bps: hundredths of a percent, capped at 100%.
  const pct = fmt.bps(Math.min(Number(p.progress_bps), 10000));
  bar.firstChild.style.width = pct;
  return [
    section(
      "Power purchase agreement",
      h("div", { class: "progress" }, bar, field("progress_bps", p.progress_bps, "bps")),
      fields([
        ["id", "id", p.id, "full"],
        ["status", "status", p.status],
        ["seller", "seller", p.seller, "account"],
        ["buyer", "buyer", p.buyer, "account"],
        ["device", "device", p.device, "device"],
        ["share", "share_bps", p.share_bps, "bps"],
        ["total", "total_wh", p.total_wh, "energy"],
        ["delivered", "delivered_wh", p.delivered_wh, "energy"],
        ["pending", "pending_wh", p.pending_wh, "energy"],
        ["price (/kWh)", "price", p.price, "price"],
        ["paid", "paid", p.paid, "money"],
        ["owed", "owed", p.owed, "money"],
        ["escrow", "escrow", p.escrow, "money"],
        ["start (UTC)", "start", p.start, "time"],
        ["end (UTC)", "end", p.end, "time"],
        ["duration (days)", "duration_days", p.duration_days, "int"],
        ["days remaining", "days_remaining", p.days_remaining, "int"],
        ["shortfall", "shortfall_wh", p.shortfall_wh, "energy"],
      ]),
    ),
    section(
      "Deliveries",
      table(
        "deliveries",
        [
          { col: "seq", label: "seq", kind: "int" },
          { col: "kind", label: "kind", kind: "text" },
          { col: "interval_start", label: "interval (UTC)", kind: "time" },
          { col: "wh", label: "energy", kind: "energy" },
          { col: "value", label: "value", kind: "money" },
          { col: "cert", label: "certificate", kind: "cert" },
          { col: "status", label: "status", kind: "text" },
          { col: "height", label: "block", kind: "height" },
        ],
        p.deliveries || [],
        (d) => d.seq,
        "no deliveries",
      ),
    ),
  ];
}

async function contractsPage() {
  const contracts = await call("contract.list", {});
  return section(
    "Contracts",
    table(
      "contracts",
      [
        { col: "id", label: "contract", kind: "contract" },
        { col: "creator", label: "creator", kind: "account" },
        { col: "parties", label: "parties", kind: "int", value: (c) => (c.parties || []).length },
        { col: "funded", label: "funded", kind: "money" },
        { col: "escrow", label: "escrow", kind: "money" },
        { col: "expiry", label: "expiry (UTC)", kind: "time" },
        { col: "status", label: "status", kind: "text" },
        { col: "created_height", label: "created at", kind: "height" },
      ],
      contracts,
      (c) => c.id,
      "no contracts",
    ),
  );
}

async function contractPage(id) {
  const c = await call("contract.get", { id: id.replace(/^0x/i, "").toLowerCase() });
  // Conditions and actions are lists of [name, args...]: one line each.
  const json = (name, value) =>
    h(
      "pre",
      { class: "json", dataset: { field: name, value: fmt.raw(value) } },
      Array.isArray(value) ? value.map((item) => JSON.stringify(item)).join("\n") : JSON.stringify(value),
    );
  return section(
    "Contract",
    fields([
      ["id", "id", c.id, "full"],
      ["status", "status", c.status],
      ["address", "address", c.address, "account"],
      ["creator", "creator", c.creator, "account"],
      ["funded", "funded", c.funded, "money"],
      ["escrow", "escrow", c.escrow, "money"],
      ["expiry (UTC)", "expiry", c.expiry, "time"],
      ["created at", "created_height", c.created_height, "height"],
      ["closed at", "closed_height", c.closed_height, "height"],
      ["closing tx", "closed_txid", c.closed_txid, "tx"],
    ]),
    h("h3", {}, "Parties"),
    h("ul", { class: "plain" }, (c.parties || []).map((p) => h("li", {}, valueContent(p, "account")))),
    h("h3", {}, "Approvals"),
    json("approvals", c.approvals),
    h("h3", {}, "Conditions"),
    json("conditions", c.conditions),
    h("h3", {}, "Actions"),
    json("actions", c.actions),
  );
}

// ---- peers ----------------------------------------------------------------

async function peersPage() {
  const [peers, stats] = await batch([{ method: "peer.list" }, { method: "peer.stats" }]);
  return [
    section(
      "This node",
      fields([
        ["node id", "node_id", stats.node_id, "hash"],
        ["inbound", "inbound", stats.inbound, "int"],
        ["outbound", "outbound", stats.outbound, "int"],
        ["max inbound", "max_inbound", stats.max_inbound, "int"],
      ]),
    ),
    section(
      "Peers",
      table(
        "peers",
        [
          { col: "node_id", label: "node id", kind: "hash" },
          { col: "address", label: "address", kind: "text" },
          { col: "direction", label: "direction", kind: "text" },
          { col: "height", label: "height", kind: "height" },
          { col: "agent", label: "agent", kind: "text" },
          { col: "ping_ms", label: "ping (ms)", kind: "int" },
          { col: "connected_s", label: "connected", kind: "duration" },
          { col: "banned_until_s", label: "banned for", kind: "duration" },
        ],
        peers,
        (p) => p.node_id || p.address,
        "no peers",
      ),
    ),
  ];
}

// ---- search ---------------------------------------------------------------

const MATCH_ROUTES = {
  block: (id, m) => `#/block/${m && m.height !== undefined ? m.height : id}`,
  tx: (id) => `#/tx/${id}`,
  order: (id) => `#/tx/${id}`, // an order's id is the tx that placed it
  account: (id) => `#/account/${id}`,
  cert: (id) => `#/cert/${id}`,
  device: (id) => `#/device/${id}`,
  ppa: (id) => `#/ppa/${id}`,
  contract: (id) => `#/contract/${id}`,
};

async function searchPage(q) {
  // The node takes at most 130 characters; nothing longer can match.
  const result = q.length > 130 ? { matches: [] } : await call("search", { q });
  const matches = result.matches.filter((m) => MATCH_ROUTES[m.kind]);
  // An order's id is the tx that placed it: both lead to the same page.
  const targets = new Set(matches.map((m) => MATCH_ROUTES[m.kind](m.id, m)));
  if (targets.size === 1) {
    // One match: go straight to its page (replacing the search in history).
    // This load never finishes: the page it opens sets the state, so the
    // search route is never seen as "ready".
    location.replace([...targets][0]);
    return new Promise(() => {});
  }
  return section(
    `Search: ${q}`,
    matches.length === 0
      ? h("p", { class: "empty", dataset: { field: "nothing" } }, "nothing found")
      : table(
          "matches",
          [
            { col: "kind", label: "kind", kind: "text" },
            { col: "id", label: "id", kind: "full", render: (m) => h("a", { href: MATCH_ROUTES[m.kind](m.id, m) }, String(m.id)) },
          ],
          matches,
          (m) => `${m.kind}:${m.id}`,
        ),
  );
}

async function notFoundPage(path) {
  throw new Error(`no page at #/${path}`);
}

// ---- start ----------------------------------------------------------------

function start() {
  setupSearch();
  window.addEventListener("hashchange", route);
  live.subscribe("tips", (notice) => {
    if (notice.type !== "tip") return;
    setTipHeight(notice.height);
    if (onTip) onTip(notice);
  });
  live.subscribe("mempool", (notice) => {
    if (onMempool) onMempool(notice);
  });
  live.onstatus = (up) => document.getElementById("live").classList.toggle("up", up);
  live.start();
  // The header's chain id comes with the first page that reads node.info;
  // other pages fetch it alongside (it is small).
  if (parseHash().name !== "home") call("node.info", {}).then(setHeader, () => {});
  route();
}

start();
