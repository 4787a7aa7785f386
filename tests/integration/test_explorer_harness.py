"""tests/harness/explorer.py against a fake single-page app on 127.0.0.1 that
keeps the explorer's DOM contract: it waits for the page asked for (not the
previous one still marked ready, nor a search that is about to open its one
match), reads fields, tables and the lineage tree, and turns the error state
into a failure naming the page's message."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.harness.browser import Browser, ensure_chromium
from tests.harness.explorer import Explorer, PageError

INDEX = b"""<!doctype html><html><head><link rel="icon" href="data:,">
<script type="module" src="/app.js"></script></head>
<body data-state="loading"><input data-action="search"><main id="main"></main></body></html>"""

# Each page renders after a delay, as an RPC round trip would, and starts
# to load a moment after the hash changes; a search with one match is
# "ready" for a while, then opens the match's page.
APP = b"""
const main = document.getElementById("main");
const later = (ms) => new Promise((r) => setTimeout(r, ms));
const PAGES = {
  async block(n) {
    await later(150);
    return `<span data-field="height" data-value="${n}">${n}</span>
      <table data-table="txs"><tbody>
        <tr data-id="aa"><td data-col="fee" data-value="1000">0.001</td></tr>
        <tr data-id="bb"><td data-col="fee" data-value="2000">0.002</td></tr>
      </tbody></table>`;
  },
  async search(q) {
    await later(50);
    if (q === "one") { setTimeout(() => location.replace("#/block/1"), 300); return "..."; }
    return `<p data-field="nothing">nothing found</p>`;
  },
  async cert() {
    await later(50);
    return `<div data-tree="lineage"><div data-cert="r"><span data-field="wh" data-value="100">100</span>
      <ol><li data-step="reading"><span data-field="wh" data-value="100">100</span></li></ol>
      <div data-cert="c" class="current"><span data-field="wh" data-value="40">40</span>
        <ol><li data-step="split"><span data-field="wh" data-value="40">40</span></li>
            <li data-step="retire"><span data-field="wh" data-value="40">40</span></li></ol>
      </div></div></div>`;
  },
  async broken() { await later(50); throw new Error("no such thing"); },
};
async function route() {
  const [name, arg] = location.hash.replace(/^#\\/?/, "").split("/");
  document.body.dataset.route = name;
  document.body.dataset.state = "loading";
  try {
    main.innerHTML = await PAGES[name](arg);
    document.body.dataset.state = "ready";
  } catch (err) {
    main.innerHTML = `<p data-field="error">${err.message}</p>`;
    document.body.dataset.state = "error";
  }
}
document.querySelector("[data-action=search]").addEventListener("keydown", (e) => {
  if (e.key === "Enter") location.hash = "#/search/" + e.target.value;
});
// Late to react, so the previous page still says "ready" meanwhile.
window.addEventListener("hashchange", () => setTimeout(route, 200));
location.hash = "#/block/0";
"""


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body, ctype = (APP, "text/javascript") if self.path == "/app.js" else (INDEX, "text/html")
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Explorer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Browser(executable=ensure_chromium()) as b:
            x = Explorer(b, f"http://127.0.0.1:{server.server_address[1]}/", tmp_path)
            x.open()
            yield x
            assert b.errors() == []
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_show_waits_for_the_page_asked_for_and_reads_it(app: Explorer) -> None:
    app.show("block/7", "block")
    assert app.field("height").value == "7"
    # the same route again, another page: not the previous one's "ready"
    app.show("block/8", "block")
    assert app.field("height").value == "8"
    rows = app.table("txs")
    assert [(r.id, r.value("fee"), r.text("fee")) for r in rows] == [
        ("aa", "1000", "0.001"),
        ("bb", "2000", "0.002"),
    ]
    with pytest.raises(AssertionError, match="no table"):
        app.table("nope")


def test_search_lands_where_the_page_goes(app: Explorer) -> None:
    assert app.search("one", "block", "search") == "block"
    assert app.field("height").value == "1"
    assert app.search("zero", "block", "search") == "search"
    assert app.field("nothing").text == "nothing found"


def test_the_lineage_tree_and_an_error_page(app: Explorer) -> None:
    app.show("cert/c", "cert")
    root, child = app.lineage()
    assert (root.id, root.parent, root.current, root.wh) == ("r", None, False, "100")
    assert [(s.kind, s.wh) for s in root.steps] == [("reading", "100")]
    assert (child.id, child.parent, child.current, child.wh) == ("c", "r", True, "40")
    assert [(s.kind, s.wh) for s in child.steps] == [("split", "40"), ("retire", "40")]
    with pytest.raises(PageError, match=r"the broken page shows an error: .*no such thing"):
        app.show("broken", "broken")
