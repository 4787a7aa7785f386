// The home page: the tip, the latest blocks and the mempool, kept live by
// the WebSocket's tips and mempool notices. It is the first page most
// visits load, so it needs nothing but the shared modules.

import { batch, call } from "./rpc.js";
import { h, field, fields, table, tableRow, section } from "./dom.js";

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
  { col: "fee_rate", label: "fee rate (/1000 B)", kind: "money" },
];

export async function homePage(ctx) {
  const [info, blocks, pool] = await batch([
    { method: "node.info" },
    { method: "chain.blocks", params: { limit: 20 } },
    { method: "mempool.txs", params: { limit: 100 } },
  ]);
  ctx.setHeader(info);
  const tipCard = section("Tip", homeTipFields(info));
  const blocksCard = section("Recent blocks", table("blocks", BLOCK_COLUMNS, blocks, (b) => b.hash));
  const poolCard = section("Mempool", mempoolContent(pool));
  let refreshing = false;
  // A new tip: reload the three panels in one call (the block's size and
  // the pool after it are not in the notice).
  ctx.onTip = async () => {
    if (refreshing) return;
    refreshing = true;
    try {
      const [i, b, p] = await batch([
        { method: "node.info" },
        { method: "chain.blocks", params: { limit: 20 } },
        { method: "mempool.txs", params: { limit: 100 } },
      ]);
      if (!ctx.current()) return;
      tipCard.replaceChildren(h("h2", {}, "Tip"), homeTipFields(i));
      blocksCard.replaceChildren(h("h2", {}, "Recent blocks"), table("blocks", BLOCK_COLUMNS, b, (x) => x.hash));
      poolCard.replaceChildren(h("h2", {}, "Mempool"), ...mempoolContent(p));
    } catch {
      // The next tip retries; the panels keep what they showed.
    } finally {
      refreshing = false;
    }
  };
  // A notice changes the table at once; the pool is then read again (once
  // for a burst of notices) for what a notice does not carry: nonce, fee
  // rate and the miner's order.
  let poolTimer = null;
  const reloadPool = async () => {
    poolTimer = null;
    try {
      const p = await call("mempool.txs", { limit: 100 });
      if (ctx.current()) poolCard.replaceChildren(h("h2", {}, "Mempool"), ...mempoolContent(p));
    } catch {
      // The next notice or tip reads it again.
    }
  };
  ctx.onMempool = (notice) => {
    if (poolTimer === null) poolTimer = setTimeout(reloadPool, 300);
    const body = poolCard.querySelector('table[data-table="mempool"] tbody');
    if (!body) return;
    // The size counts every notice, not the table's rows: the table shows
    // the first 100 txs, the pool may hold many more.
    let delta = 0;
    if (notice.type === "added") {
      if (body.querySelector(`tr[data-id="${notice.id}"]`)) return;
      const row = { id: notice.id, type: notice.tx_type, sender: notice.sender, nonce: null, fee: notice.fee, size: notice.size, fee_rate: null };
      body.append(tableRow(MEMPOOL_COLUMNS, row, (r) => r.id));
      delta = 1;
    } else if (notice.type === "removed") {
      const ids = notice.ids || [notice.id];
      for (const id of ids) {
        const tr = body.querySelector(`tr[data-id="${id}"]`);
        if (tr) tr.remove();
      }
      delta = -ids.length;
    }
    const size = poolCard.querySelector('[data-field="mempool_size"]');
    if (size) {
      size.replaceWith(field("mempool_size", Math.max(0, Number(size.dataset.value) + delta), "int"));
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
