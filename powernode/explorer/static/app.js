// powernode explorer: a read-only single-page app over the node's public
// JSON-RPC. Hash routes (#/block/5) pick a page; each page loads with one
// batched RPC call and renders, then sets body[data-state] to "ready" (the
// browser test waits on it). The WebSocket keeps the header's tip, the home
// page, an open slot's page and a pending tx's page live.

import { call, Live } from "./rpc.js";
import { h, section, table } from "./dom.js";
import * as fmt from "./format.js";
import { homePage } from "./home.js";

// The home page comes with the shell; the other pages' modules are loaded
// when first shown (and fetched in the background once the page has
// loaded), so the first visit fetches only what the home page needs.
const lazy = (module, name) => () => import(module).then((m) => m[name]);
const chain = (name) => lazy("./chain.js", name);
const market = (name) => lazy("./market.js", name);
const certs = (name) => lazy("./certs.js", name);
const registry = (name) => lazy("./registry.js", name);
const LAZY_MODULES = ["./chain.js", "./market.js", "./certs.js", "./registry.js", "./charts.js"];

const main = document.getElementById("main");
const live = new Live();
let generation = 0; // the route being loaded; a newer one makes older loads stale
// The shown page's live handlers (the home page refreshes itself); a page
// sets them on its context, and they are installed once it is shown.
let onTip = null;
let onMempool = null;

// ---- routes -------------------------------------------------------------

const ROUTES = [
  [/^$/, "home", async () => homePage],
  [/^block\/([^/]+)$/, "block", chain("blockPage")],
  [/^tx\/([^/]+)$/, "tx", chain("txPage")],
  [/^account\/([^/]+)$/, "account", chain("accountPage")],
  [/^market$/, "market", market("marketPage")],
  [/^market\/([^/]+)\/([^/]+)$/, "market-slot", market("marketSlotPage")],
  [/^certs$/, "certs", certs("certsPage")],
  [/^cert\/([^/]+)$/, "cert", certs("certPage")],
  [/^devices$/, "devices", registry("devicesPage")],
  [/^device\/([^/]+)$/, "device", registry("devicePage")],
  [/^ppas$/, "ppas", registry("ppasPage")],
  [/^ppa\/([^/]+)$/, "ppa", registry("ppaPage")],
  [/^contracts$/, "contracts", registry("contractsPage")],
  [/^contract\/([^/]+)$/, "contract", registry("contractPage")],
  [/^peers$/, "peers", registry("peersPage")],
  [/^search(?:\/(.*))?$/, "search", async () => searchPage],
];

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  let path;
  try {
    path = decodeURIComponent(raw).replace(/\/+$/, "");
  } catch {
    path = raw; // a stray % in a typed URL: matched as it is
  }
  for (const [pattern, name, load] of ROUTES) {
    const m = path.match(pattern);
    if (m) return { name, load, args: m.slice(1) };
  }
  return { name: "notfound", load: async () => notFoundPage, args: [path] };
}

// What a page may use besides the RPC: whether it is still the page being
// shown, the header, and its live handlers (or refreshOnTip: load it again
// at each new tip, e.g. an open slot's book or a pending tx).
function newContext(gen) {
  return { current: () => gen === generation, setHeader, onTip: null, onMempool: null, refreshOnTip: false };
}

// A tip handler that loads the page again and swaps its content in place
// (the state stays "ready"); one load at a time, and it stops when the
// page no longer asks for it.
function refresher(gen, page, args) {
  let busy = false;
  return async () => {
    if (busy) return;
    busy = true;
    try {
      const ctx = newContext(gen);
      const content = await page(ctx, ...args);
      if (gen !== generation) return;
      main.replaceChildren(...[content].flat().filter(Boolean));
      if (!ctx.refreshOnTip) onTip = null;
    } catch {
      // Kept as it was; the next tip tries again.
    } finally {
      busy = false;
    }
  };
}

async function route() {
  const gen = ++generation;
  const { name, load, args } = parseHash();
  onTip = null;
  onMempool = null;
  document.body.dataset.route = name;
  document.body.dataset.state = "loading";
  for (const a of document.querySelectorAll("nav a")) {
    a.classList.toggle("active", a.dataset.nav === name.replace(/-slot$/, "").replace(/^(cert|device|ppa|contract)$/, "$1s"));
  }
  const ctx = newContext(gen);
  try {
    const page = await load();
    const content = await page(ctx, ...args);
    if (gen !== generation) return;
    main.replaceChildren(...[content].flat().filter(Boolean));
    onTip = ctx.refreshOnTip ? refresher(gen, page, args) : ctx.onTip;
    onMempool = ctx.onMempool;
    // The tab and the history name the page by its first heading.
    const heading = main.querySelector("h2");
    document.title = heading ? `${heading.textContent} · powernode explorer` : "powernode explorer";
    document.body.dataset.state = "ready";
  } catch (err) {
    if (gen !== generation) return;
    // Shown on the page, not logged: the console stays clean for the test.
    main.replaceChildren(
      h("section", { class: "card error" }, h("h2", {}, "Could not load this page"), h("p", { dataset: { field: "error" } }, err.message)),
    );
    document.title = "Could not load this page · powernode explorer";
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
  // "/" focuses the search box, as on most explorers.
  document.addEventListener("keydown", (event) => {
    if (event.key === "/" && document.activeElement !== input) {
      event.preventDefault();
      input.focus();
    }
  });
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter") return;
    const q = input.value.trim();
    if (!q) return;
    input.value = "";
    const target = `#/search/${encodeURIComponent(q)}`;
    // The same search again changes no hash: run it anew.
    if (location.hash === target) route();
    else location.hash = target;
  });
}

// ---- search ---------------------------------------------------------------

const MATCH_ROUTES = {
  // A height asked for opens that height; a hash opens that block, which
  // may be off the main chain (its height is then another block's).
  block: (id, m, q) => `#/block/${/^[0-9]+$/.test((q || "").trim()) && m ? m.height : id}`,
  tx: (id) => `#/tx/${id}`,
  order: (id) => `#/tx/${id}`, // an order's id is the tx that placed it
  account: (id) => `#/account/${id}`,
  cert: (id) => `#/cert/${id}`,
  device: (id) => `#/device/${id}`,
  ppa: (id) => `#/ppa/${id}`,
  contract: (id) => `#/contract/${id}`,
};

async function searchPage(ctx, q = "") {
  q = q.trim();
  if (!q) {
    return section(
      "Search",
      h("p", { class: "empty", dataset: { field: "nothing" } }, "Type a block height or hash, a tx, order, certificate, device, PPA or contract id, or an address in the search box."),
    );
  }
  // The node takes at most 130 characters; nothing longer can match.
  const result = q.length > 130 ? { matches: [] } : await call("search", { q });
  const matches = result.matches.filter((m) => MATCH_ROUTES[m.kind]);
  if (matches.length === 1) {
    // One match: go straight to its page (replacing the search in history).
    // This load never finishes: the page it opens sets the state, so the
    // search route is never seen as "ready".
    location.replace(MATCH_ROUTES[matches[0].kind](matches[0].id, matches[0], q));
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
            { col: "id", label: "id", kind: "full", render: (m) => h("a", { href: MATCH_ROUTES[m.kind](m.id, m, q) }, String(m.id)) },
          ],
          matches,
          (m) => `${m.kind}:${m.id}`,
        ),
  );
}

async function notFoundPage(ctx, path) {
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
  // Warm the other pages' modules once the first page has loaded, so
  // navigating needs no module fetch (a module is fetched once per visit).
  window.addEventListener("load", () => {
    setTimeout(() => {
      for (const module of LAZY_MODULES) import(module).catch(() => {});
    }, 500);
  });
}

start();

