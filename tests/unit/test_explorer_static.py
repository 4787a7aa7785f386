"""The explorer's static files, checked without a browser: the page loads
nothing but its own files (the node's CSP allows nothing else), uses no
inline script or style, knows every route and table of the contract, and
formats energy and money with integer arithmetic (run under Node.js when it
is installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from powernode.node.node import method_specs

STATIC = Path(__file__).resolve().parents[2] / "powernode" / "explorer" / "static"
INDEX = STATIC / "index.html"
APP = STATIC / "app.js"

# The SVG namespace is an identifier the DOM API takes, not a URL anything
# fetches: the one http:// string the page may hold.
SVG_NAMESPACE = "http://www.w3.org/2000/svg"

ROUTES = [
    "home",
    "block",
    "tx",
    "account",
    "market",
    "market-slot",
    "cert",
    "certs",
    "devices",
    "device",
    "ppas",
    "ppa",
    "contracts",
    "contract",
    "peers",
    "search",
]

TABLES = [
    "blocks",
    "mempool",
    "txs",
    "events",
    "orders",
    "trades",
    "bids",
    "asks",
    "slots",
    "devices",
    "readings",
    "ppas",
    "deliveries",
    "settlements",
    "contracts",
    "peers",
    "matches",
]


def static_files() -> list[Path]:
    return sorted(p for p in STATIC.iterdir() if p.is_file())


def test_index_references_only_files_of_the_folder() -> None:
    html = INDEX.read_text()
    refs = re.findall(r'(?:src|href)="([^"]*)"', html)
    local = [r for r in refs if r.startswith("/explorer/")]
    assert local, "index.html loads its script and style from /explorer/"
    for ref in local:
        assert (STATIC / ref.removeprefix("/explorer/")).is_file(), ref
    # Everything else is an in-page route or the empty favicon that stops
    # the browser asking for /favicon.ico.
    others = [r for r in refs if not r.startswith("/explorer/")]
    assert all(r.startswith("#") or r == "data:," for r in others), others
    assert '<link rel="icon" href="data:,">' in html


def static_imports(module: str) -> set[str]:
    """The modules ``module`` needs before it runs: its static imports,
    and theirs (file names in the folder)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        text = (STATIC / todo.pop()).read_text()
        for target in re.findall(r'^import .* from "\./([^"]+)";$', text, re.M):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_what_the_home_page_needs_is_preloaded_and_nothing_more() -> None:
    """The modules app.js needs at start are fetched at once, not one import
    level at a time; the other pages' modules are not part of the first
    load (app.js imports them when their page is shown)."""
    html = INDEX.read_text()
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/explorer/([^"]+)">', html))
    assert preloaded == static_imports("app.js")
    later = {p.name for p in STATIC.glob("*.js")} - preloaded - {"app.js"}
    assert later, "every page's module loads with the home page"
    app = APP.read_text()
    for name in later:
        assert f'"./{name}"' in app, f"{name} is neither loaded at start nor by app.js later"


def test_module_imports_resolve_to_files_of_the_folder() -> None:
    for path in STATIC.glob("*.js"):
        text = path.read_text()
        for target in re.findall(r'^import .* from "([^"]+)";$', text, re.M):
            assert target.startswith("./"), (path.name, target)
            assert (STATIC / target.removeprefix("./")).is_file(), (path.name, target)
        # dynamic imports name their module as a "./x.js" string
        for target in re.findall(r'"\./([^"/]+\.js)"', text):
            assert (STATIC / target).is_file(), (path.name, target)


def test_no_file_names_another_host() -> None:
    for path in static_files():
        text = path.read_text().replace(SVG_NAMESPACE, "")
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), path.name
        assert "@import" not in text, path.name


def test_no_inline_script_or_style() -> None:
    html = INDEX.read_text()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="' in tag, tag
    assert not re.search(r"<script\b[^>]*>\s*[^<\s]", html), "inline script"
    assert "<style" not in html
    for path in static_files():
        text = path.read_text()
        # style="" attributes and on* handlers would be refused by the CSP;
        # JS sets styles through element.style, which it allows.
        assert not re.search(r"""\sstyle\s*=\s*["']""", text), path.name
        assert not re.search(r"""\son[a-z]+\s*=\s*["']""", text), path.name
        assert 'setAttribute("style"' not in text, path.name


def test_app_knows_every_route_and_table_of_the_contract() -> None:
    routes = APP.read_text()
    for route in ROUTES:
        assert f'"{route}"' in routes, route
    app = "\n".join(p.read_text() for p in STATIC.glob("*.js"))
    for name in TABLES:
        assert re.search(rf'table\(\s*"{name}"', app), name
    for hook in ('data-action="search"',):
        assert hook in INDEX.read_text()
    for hook in (
        '"download-proof"',
        'tree: "lineage"',
        'bar: "progress"',
        "step: step.kind",
        "cert: node.id",
    ):
        assert hook in app, hook
    charts = (STATIC / "charts.js").read_text()
    assert '"depth"' in charts and '"trades"' in charts


def test_the_page_calls_only_public_methods() -> None:
    """The page sends no auth: a method that is not public would answer
    `unauthorized` (and the page must never write)."""
    specs = method_specs()
    source = "\n".join(p.read_text() for p in STATIC.glob("*.js"))
    called = set(re.findall(r'(?:method: |call\()"([a-z_]+\.[a-z_.]+|search|subscribe)"', source))
    assert {"node.info", "chain.blocks", "cert.proof", "search", "subscribe"} <= called
    for name in sorted(called):
        assert name in specs, name
        assert specs[name].public, name


FORMAT_CASES: dict[str, list[list[object]]] = {
    "energy": [[50000, "50 kWh"], [1500, "1.5 kWh"], [1, "0.001 kWh"], [0, "0 kWh"]],
    "money": [
        [550000, "0.55"],
        [27500000, "27.50"],
        [1234567, "1.234567"],
        [0, "0.00"],
        ["1000000000000000000", "1000000000000.00"],
        ["999999999999999999", "999999999999.999999"],
        [-1500000, "-1.50"],
    ],
    "power": [[12000000, "12000 kW"], [1500, "1.5 kW"]],
    "bps": [[1000, "10.0%"], [10000, "100.0%"], [5, "0.0%"], [1234, "12.3%"]],
    "time": [[1796605323, "2026-12-07 01:02:03"]],
    "short": [["ab" * 32, "abababab…ababab"]],
}


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_formatting_uses_exact_integer_arithmetic() -> None:
    script = (
        f"import * as f from {json.dumps((STATIC / 'format.js').as_uri())};"
        f"const cases = {json.dumps(FORMAT_CASES)};"
        "const out = {};"
        "for (const [fn, list] of Object.entries(cases)) out[fn] = list.map(([v]) => f[fn](v));"
        "console.log(JSON.stringify(out));"
    )
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    got = json.loads(done.stdout)
    for fn, cases in FORMAT_CASES.items():
        assert got[fn] == [case[1] for case in cases], fn
