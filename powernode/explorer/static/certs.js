// Certificate pages: the list, and one certificate's lineage tree,
// verification and proof download.

import { batch, call, RpcError } from "./rpc.js";
import { h, field, fields, table, section, valueContent, LIST_LIMIT, listNote } from "./dom.js";
import * as fmt from "./format.js";

// ---- certificates ---------------------------------------------------------

export function certTable(certs) {
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

export async function certsPage(ctx) {
  const certs = await call("cert.list", { limit: LIST_LIMIT });
  return section("Certificates", certTable(certs), listNote("certs", certs));
}

export async function certPage(ctx, id) {
  const cert = id.replace(/^0x/i, "").toLowerCase();
  // The proof is not loaded with the page: it grows with the chain (every
  // header since the lineage began), so it is fetched only when asked for.
  const [tree, verify] = await batch([
    { method: "cert.tree", params: { cert } },
    { method: "cert.verify", params: { cert } },
  ]);
  return certContent(cert, tree, verify);
}

function certContent(cert, tree, verify) {
  const download = h(
    "a",
    { href: "#", class: "button", dataset: { action: "download-proof" } },
    "Download proof",
    h("span", { class: "meta" }),
  );
  download.addEventListener("click", (event) => downloadProof(event, download, cert));
  const proofLine = h("p", {}, download);
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

// The proof is fetched when asked for, so the file is proven to the tip of
// that moment, and saved through a Blob URL as cert-<id>.proof; the link
// keeps that URL after. A lineage the node cannot prove (or a proof larger
// than the answer bound) shows the node's reason beside the link.
async function downloadProof(event, link, cert) {
  if (link.href.startsWith("blob:")) return; // the browser saves it
  event.preventDefault();
  try {
    const proof = await call("cert.proof", { cert });
    const data = new Uint8Array(proof.proof.length / 2);
    for (let i = 0; i < data.length; i++) data[i] = parseInt(proof.proof.substr(i * 2, 2), 16);
    link.href = URL.createObjectURL(new Blob([data], { type: "application/octet-stream" }));
    link.download = `cert-${cert}.proof`;
    showProof(link, proof);
    link.click();
  } catch (err) {
    const shown = link.parentElement.querySelector('[data-field="proof_error"]');
    if (shown) shown.remove();
    // The node's reason, without the method's name in front.
    const why = err.message.replace(/^cert\.proof: /, "");
    link.after(h("span", { class: "problem", dataset: { field: "proof_error", value: why } }, " " + why));
  }
}

function showProof(link, proof) {
  link.dataset.bytes = String(proof.bytes);
  link.dataset.height = String(proof.height);
  link.querySelector(".meta").textContent = ` (${fmt.bytes(proof.bytes)}, proven to height ${proof.height})`;
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
  return [
    h("div", { class: "tree", dataset: { tree: "lineage" } }, roots.map(render)),
    tree.truncated ? h("p", { class: "meta", dataset: { field: "truncated", value: "true" } }, "The tree is larger than the node lists (1,000 certificates): the rest is not shown.") : null,
  ];
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
    step.txid ? [" · tx ", valueContent(step.txid, "tx")] : null,
    " in block ",
    valueContent(step.height, "height"),
    step.time ? " · " + fmt.time(step.time) : null,
    step.note ? h("span", { class: "note" }, " · " + step.note) : null,
  );
}

