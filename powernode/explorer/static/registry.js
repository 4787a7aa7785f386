// Registry pages: devices and their readings, PPAs with their progress,
// contracts, and the node's peers.

import { batch, call, RpcError } from "./rpc.js";
import { h, field, fields, table, section, valueContent, LIST_LIMIT, listNote } from "./dom.js";
import * as fmt from "./format.js";
import { certTable } from "./certs.js";

// ---- devices --------------------------------------------------------------

const DEVICE_COLUMNS = [
  { col: "id", label: "device", kind: "device" },
  { col: "owner", label: "owner", kind: "account" },
  { col: "kind", label: "kind", kind: "text" },
  { col: "source", label: "source", kind: "text" },
  { col: "capacity_w", label: "capacity", kind: "power" },
  { col: "location", label: "location", kind: "text" },
  { col: "status", label: "status", kind: "text" },
  { col: "readings", label: "readings", kind: "int" },
  { col: "produced_wh", label: "produced", kind: "energy" },
  { col: "consumed_wh", label: "consumed", kind: "energy" },
];

export async function devicesPage(ctx) {
  const devices = await call("device.list", { limit: LIST_LIMIT });
  return section("Devices", deviceTable(devices), listNote("devices", devices));
}

export async function devicePage(ctx, id) {
  const device = id.replace(/^0x/i, "").toLowerCase();
  const [d, params, certs] = await batch([
    { method: "device.get", params: { device } },
    { method: "cert.params" },
    { method: "cert.list", params: { device, limit: LIST_LIMIT }, optional: true },
  ]);
  // The latest LIST_LIMIT intervals at most (one reading each): a meter's
  // whole history would outgrow the bound of an answer without auth.
  const span = (LIST_LIMIT - 1) * Number(params.interval_seconds);
  const start = d.last_interval == null ? 0 : Math.max(0, Number(d.last_interval) - span);
  const readings = await call("meter.readings", { device, start });
  const out = [
    section(
      "Device",
      fields([
        ["id", "id", d.id, "full"],
        ["owner", "owner", d.owner, "account"],
        ["kind", "kind", d.kind],
        ["source", "source", d.source],
        ["capacity", "capacity_w", d.capacity_w, "power"],
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
      Number(d.readings) > readings.length
        ? h(
            "p",
            { class: "meta", dataset: { note: "readings" } },
            `Readings of the latest ${fmt.integer(LIST_LIMIT)} intervals; ${fmt.integer(d.readings)} in all.`,
          )
        : null,
    ),
  ];
  if (certs && certs.length) {
    out.push(section("Certificates issued", certTable(certs), listNote("certs", certs)));
  }
  return out;
}


// ---- PPAs and contracts ---------------------------------------------------

export function ppaTable(ppas) {
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

export async function ppasPage(ctx) {
  const ppas = await call("ppa.list", { limit: LIST_LIMIT });
  return section("Power purchase agreements", ppaTable(ppas), listNote("ppas", ppas));
}

export async function ppaPage(ctx, id) {
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

export function contractTable(contracts) {
  return table(
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
  );
}

export function deviceTable(devices) {
  return table("devices", DEVICE_COLUMNS, devices, (d) => d.id, "no devices");
}

export async function contractsPage(ctx) {
  const contracts = await call("contract.list", { limit: LIST_LIMIT });
  return section("Contracts", contractTable(contracts), listNote("contracts", contracts));
}

export async function contractPage(ctx, id) {
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

export async function peersPage(ctx) {
  const [peers, stats] = await batch([
    { method: "peer.list", soft: true },
    { method: "peer.stats", soft: true },
  ]);
  // A node without P2P (init --dev's default) has no peers: that is its
  // state, not a page that failed to load.
  if ([peers, stats].some((r) => r instanceof RpcError && r.code === "p2p_disabled")) {
    return section(
      "Peers",
      h("p", { class: "empty", dataset: { field: "p2p", value: "off" } }, "P2P is off on this node: no peers."),
    );
  }
  for (const r of [peers, stats]) if (r instanceof RpcError) throw r;
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

