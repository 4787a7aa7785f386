// Building the page's DOM. Every value of interest is an element with
// data-field (or a table cell with data-col) whose text is the formatted
// value and whose data-value is the raw RPC value: the browser test reads
// both, so these helpers are the only way values reach the page.

import * as fmt from "./format.js";

// h("div", {class: "x", dataset: {a: "b"}}, child, "text", ...)
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "onclick") el.addEventListener("click", value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

// Kinds of values, each with its formatter and (for ids) the page it links to.
const LINKS = {
  block: (v) => `#/block/${v}`,
  tx: (v) => `#/tx/${v}`,
  account: (v) => `#/account/${v}`,
  cert: (v) => `#/cert/${v}`,
  device: (v) => `#/device/${v}`,
  ppa: (v) => `#/ppa/${v}`,
  contract: (v) => `#/contract/${v}`,
  height: (v) => `#/block/${v}`,
};

const FORMATS = {
  energy: fmt.energy,
  power: fmt.power,
  money: fmt.money,
  price: fmt.price,
  bps: fmt.bps,
  time: fmt.time,
  duration: fmt.duration,
  int: fmt.integer,
  bytes: fmt.bytes,
  text: fmt.plain,
  hash: fmt.short,
  block: fmt.short,
  tx: fmt.short,
  account: fmt.short,
  cert: fmt.short,
  device: fmt.short,
  ppa: fmt.short,
  contract: fmt.short,
  height: fmt.integer,
  full: fmt.plain,
  problems: (list) => (Array.isArray(list) && list.length === 0 ? "none" : fmt.plain(list)),
};

// The content of a value: its formatted text, a link for ids.
export function valueContent(value, kind) {
  const format = FORMATS[kind] || fmt.plain;
  const text = format(value);
  const link = LINKS[kind];
  if (link && value !== null && value !== undefined && value !== "") {
    return h("a", { href: link(value), title: String(value) }, text);
  }
  return text;
}

function valueClass(kind) {
  if (["hash", "block", "tx", "account", "cert", "device", "ppa", "contract", "full"].includes(kind)) return "mono";
  if (["energy", "power", "money", "price", "int", "bytes", "height", "bps"].includes(kind)) return "num";
  return null;
}

// A shortened hash keeps its full value in the tooltip.
function setTitle(el, value, kind) {
  if (valueClass(kind) === "mono" && typeof value === "string" && value.length > 20) el.title = value;
}

// <span data-field=name data-value=raw>formatted</span>
export function field(name, value, kind = "text") {
  const el = h("span", { class: valueClass(kind), dataset: { field: name, value: fmt.raw(value) } });
  setTitle(el, value, kind);
  append(el, [valueContent(value, kind)]);
  return el;
}

// A definition list of fields: [[label, name, value, kind], ...]
export function fields(rows) {
  const dl = h("dl", { class: "fields" });
  for (const [label, name, value, kind] of rows) {
    // A full hash would wrap in a narrow column: it gets a row of its own.
    const cls = kind === "full" && String(value || "").length > 40 ? "f wide" : "f";
    dl.append(h("div", { class: cls }, h("dt", {}, label), h("dd", {}, field(name, value, kind))));
  }
  return dl;
}

// <table data-table=name>: columns [{col, label, kind}], rows objects;
// rowId(row) gives the row's data-id.
export function table(name, columns, rows, rowId, empty = "none") {
  const head = h("tr", {}, columns.map((c) => h("th", { class: valueClass(c.kind) }, c.label)));
  const body = h("tbody", {});
  for (const row of rows) body.append(tableRow(columns, row, rowId));
  const el = h("table", { class: "data", dataset: { table: name } }, h("thead", {}, head), body);
  const wrap = h("div", { class: "table-wrap" }, el);
  if (rows.length === 0) wrap.append(h("p", { class: "empty", dataset: { empty: name } }, empty));
  return wrap;
}

export function tableRow(columns, row, rowId) {
  const tr = h("tr", { dataset: { id: fmt.raw(rowId(row)) } });
  for (const c of columns) {
    const value = c.value ? c.value(row) : row[c.col];
    const td = h("td", { class: valueClass(c.kind), dataset: { col: c.col, value: fmt.raw(value) } });
    setTitle(td, value, c.kind);
    append(td, [c.render ? c.render(row) : valueContent(value, c.kind)]);
    tr.append(td);
  }
  return tr;
}

// The most rows a list page asks for: a list past the bound of an answer
// without auth ([explorer] max_response_bytes) would fail the whole page.
export const LIST_LIMIT = 1000;

// Under a table that got LIST_LIMIT rows: there may be more.
export function listNote(name, rows) {
  if (!rows || rows.length < LIST_LIMIT) return null;
  return h(
    "p",
    { class: "meta", dataset: { note: name } },
    `The first ${fmt.integer(LIST_LIMIT)} shown; RPC's limit and filters give the rest.`,
  );
}

export function section(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}
