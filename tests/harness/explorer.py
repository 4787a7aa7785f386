"""Reading the node's web explorer in a real Chromium (tests/harness/browser.py)
through the DOM hooks the page promises (README "Explorer"):

- ``body[data-route]`` names the page, ``body[data-state]`` is ``loading``,
  ``ready`` or ``error`` (the message in ``[data-field=error]``);
- every value is a ``[data-field=NAME]`` element (text: formatted, ``data-value``:
  the raw RPC value), tables are ``table[data-table=NAME]`` whose rows carry
  ``data-id`` and cells ``td[data-col][data-value]``;
- charts are ``svg[data-chart]`` with ``[data-price][data-energy]`` marks, the
  certificate lineage a ``[data-tree=lineage]`` of nested ``[data-cert]``
  with ``[data-step]`` steps.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.harness.browser import Browser

# Screenshots go to the test's tmp dir, and with this set into that folder
# too (the README's docs/explorer.png is made so).
SCREENSHOTS_ENV = "POWERNODE_SCREENSHOTS"


@dataclass(frozen=True)
class Value:
    """A shown value: its text, and the raw RPC value in ``data-value``."""

    text: str
    value: str


@dataclass(frozen=True)
class Row:
    id: str
    cells: dict[str, Value]

    def value(self, col: str) -> str:
        return self.cells[col].value

    def text(self, col: str) -> str:
        return self.cells[col].text


@dataclass(frozen=True)
class Step:
    kind: str
    wh: str
    text: str


@dataclass(frozen=True)
class CertNode:
    """One certificate of the lineage tree as shown: ``parent`` is the
    certificate it is nested in (None for the root)."""

    id: str
    parent: str | None
    current: bool
    wh: str
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Mark:
    """A chart's bar or point; ``side``, ``cumulative`` and ``title`` are ""
    where the mark has none (a depth chart's have: bid/ask, the energy up to
    its level, its tooltip)."""

    price: str
    energy: str
    side: str = ""
    cumulative: str = ""
    title: str = ""


class PageError(AssertionError):
    """The page showed its error state."""


_FIELD_JS = """((name) => {
  const el = document.querySelector(`#main [data-field="${name}"]`);
  return el ? {text: el.textContent.trim(), value: el.dataset.value ?? ""} : null;
})"""

_TABLE_JS = """((name) => {
  const table = document.querySelector(`#main table[data-table="${name}"]`);
  if (!table) return null;
  return [...table.querySelectorAll("tbody tr")].map((tr) => ({
    id: tr.dataset.id ?? "",
    cells: Object.fromEntries([...tr.querySelectorAll("td[data-col]")].map((td) =>
      [td.dataset.col, {text: td.textContent.trim(), value: td.dataset.value ?? ""}])),
  }));
})"""

_TREE_JS = """(() => {
  const tree = document.querySelector('#main [data-tree="lineage"]');
  if (!tree) return null;
  return [...tree.querySelectorAll("[data-cert]")].map((el) => {
    const up = el.parentElement.closest("[data-cert]");
    const mine = (sel) => [...el.querySelectorAll(sel)].filter((s) => s.closest("[data-cert]") === el);
    const wh = mine('[data-field="wh"]').filter((f) => !f.closest("[data-step]"))[0];
    return {
      id: el.dataset.cert,
      parent: up && tree.contains(up) ? up.dataset.cert : null,
      current: el.classList.contains("current"),
      wh: wh ? wh.dataset.value : "",
      steps: mine("[data-step]").map((s) => {
        const f = s.querySelector('[data-field="wh"]');
        return {kind: s.dataset.step, wh: f ? f.dataset.value : (s.dataset.wh ?? ""),
                text: s.textContent.trim()};
      }),
    };
  });
})()"""

_MARKS_JS = """((name) => {
  const svg = document.querySelector(`#main svg[data-chart="${name}"]`);
  if (!svg) return null;
  return {
    marks: [...svg.querySelectorAll("[data-price][data-energy]")].map((m) => ({
      price: m.dataset.price, energy: m.dataset.energy, side: m.dataset.side ?? "",
      cumulative: m.dataset.cumulative ?? "",
      title: m.querySelector("title")?.textContent.trim() ?? "",
    })),
    labels: [...svg.querySelectorAll("text")].map((t) => t.textContent.trim()).filter(Boolean),
  };
})"""


class Explorer:
    """The explorer of one node, open in ``browser`` at ``base`` (the node's
    ``http://host:port/``)."""

    def __init__(self, browser: Browser, base: str, shots: Path) -> None:
        self.browser = browser
        self.base = base
        self.shots = shots
        self.extra_shots = (
            Path(os.environ[SCREENSHOTS_ENV]) if os.environ.get(SCREENSHOTS_ENV) else None
        )

    def open(self, timeout: float = 60.0) -> None:
        """Load the app (its home page) and wait until that has loaded, or
        failed to (``show`` checks pages)."""
        self.browser.goto(self.base, timeout=timeout)
        self.browser.wait_for(
            "['ready', 'error'].includes(document.body.dataset.state)",
            timeout=timeout,
            what="the explorer to load",
        )

    def show(self, route: str, name: str, *, timeout: float = 60.0) -> None:
        """Go to ``#/route`` in the loaded app and wait for page ``name`` to
        be ready; PageError with the page's message if it shows an error."""
        target = "#/" + route
        # Marked stale first, so the wait cannot see the previous page's
        # "ready" (the app sets "loading" on the hashchange, then "ready").
        same = self.browser.evaluate(
            f"(() => {{ const same = location.hash === {json.dumps(target)};"
            " document.body.dataset.state = 'stale';"
            f" location.hash = {json.dumps(target)}; return same; }})()"
        )
        if same:  # no hashchange: load it anew
            self.browser.goto(self.base + target, timeout=timeout)
        self._wait_route(timeout, name)

    def search(self, q: str, *names: str, timeout: float = 60.0) -> str:
        """Type ``q`` into the search box, press Enter, wait for one of the
        pages ``names`` to be ready; the one reached."""
        self.browser.evaluate(
            "(() => { const input = document.querySelector('input[data-action=search]');"
            " document.body.dataset.state = 'stale';"
            f" input.value = {json.dumps(q)};"
            " input.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));"
            " })()"
        )
        return self._wait_route(timeout, *names)

    def _wait_route(self, timeout: float, *names: str) -> str:
        route = self.browser.wait_for(
            f"{json.dumps(list(names))}.includes(document.body.dataset.route)"
            " && ['ready', 'error'].includes(document.body.dataset.state)"
            # A search with one match is "ready" for a moment before it
            # opens that match's page: a search page counts once it lists.
            " && (document.body.dataset.route !== 'search'"
            " || document.body.dataset.state === 'error'"
            ' || document.querySelector(\'#main [data-table="matches"], #main [data-field="nothing"]\'))'
            " && [document.body.dataset.route, document.body.dataset.state]",
            timeout=timeout,
            what=f"the explorer's {' or '.join(names)} page to be ready",
        )
        name, state = route
        if state == "error":
            raise PageError(f"the {name} page shows an error: {self.field('error')}")
        return str(name)

    def field(self, name: str) -> Value:
        doc = self.browser.evaluate(f"{_FIELD_JS}({json.dumps(name)})")
        assert doc is not None, f"no [data-field={name}] on the page"
        return Value(doc["text"], doc["value"])

    def table(self, name: str) -> list[Row]:
        doc = self.browser.evaluate(f"{_TABLE_JS}({json.dumps(name)})")
        assert doc is not None, f"no table[data-table={name}] on the page"
        return [
            Row(r["id"], {col: Value(c["text"], c["value"]) for col, c in r["cells"].items()})
            for r in doc
        ]

    def lineage(self) -> list[CertNode]:
        doc = self.browser.evaluate(_TREE_JS)
        assert doc is not None, "no [data-tree=lineage] on the page"
        return [
            CertNode(
                n["id"],
                n["parent"],
                n["current"],
                n["wh"],
                tuple(Step(s["kind"], s["wh"], s["text"]) for s in n["steps"]),
            )
            for n in doc
        ]

    def chart(self, name: str) -> tuple[list[Mark], list[str]]:
        """A chart's marks and its text (axis labels, ticks)."""
        doc = self.browser.evaluate(f"{_MARKS_JS}({json.dumps(name)})")
        assert doc is not None, f"no svg[data-chart={name}] on the page"
        marks = [
            Mark(m["price"], m["energy"], m["side"], m["cumulative"], m["title"])
            for m in doc["marks"]
        ]
        return marks, list(doc["labels"])

    def evaluate(self, expression: str) -> Any:
        return self.browser.evaluate(expression)

    def screenshot(self, name: str) -> Path:
        path = self.browser.screenshot(self.shots / f"{name}.png")
        if self.extra_shots is not None:
            self.extra_shots.mkdir(parents=True, exist_ok=True)
            (self.extra_shots / path.name).write_bytes(path.read_bytes())
        return path
