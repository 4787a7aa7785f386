"""The README's event table (Operating a node, Logs) and the events the code
emits are the same set: an operator can look up every line the node writes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# An event name as a literal: emit(log, "name", ...) (the logger may be an
# expression such as LOGGERS[engine]) or log_to_file_only("name", ...).
EMITTED = re.compile(
    r'(?:\bemit\(\s*[\w.\[\]]+,\s*|\blog_to_file_only\(\s*)"([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)"'
)
NAME = re.compile(r"`([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)`")


def emitted() -> dict[str, list[str]]:
    """Event -> where it is emitted (path:line)."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "powernode").rglob("*.py")):
        text = path.read_text()
        for m in EMITTED.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.setdefault(m.group(1), []).append(f"{path.relative_to(ROOT)}:{line}")
    return found


def documented() -> set[str]:
    """The names in the first column of the README's event table."""
    text = (ROOT / "README.md").read_text()
    start = text.index("### Logs\n")
    section = text[start : text.index("\n### ", start + 1)]
    table = section[section.index("| event | level |") :]
    names: set[str] = set()
    for row in table.splitlines()[2:]:
        if not row.startswith("|"):
            break
        names.update(NAME.findall(row.split("|")[1]))
    return names


def test_scanner_finds_events_in_every_form() -> None:
    found = emitted()
    # one line, several lines, and the file-only failure line
    for name in (
        "block.disconnected",
        "p2p.task_failed",
        "node.failed",
        "block.connected",
        "engine.block",
    ):
        assert name in found, name


def test_readme_lists_exactly_the_emitted_events() -> None:
    code = emitted()
    readme = documented()
    missing = {name: code[name] for name in sorted(code.keys() - readme)}
    extra = sorted(readme - code.keys())
    problems = []
    if missing:
        lines = [f"  {name} (emitted at {', '.join(where)})" for name, where in missing.items()]
        problems.append(
            "events the code emits that README.md's Logs event table lacks "
            "(add a row: event, level, fields, when):\n" + "\n".join(lines)
        )
    if extra:
        problems.append(
            "events README.md's Logs event table lists that no code emits "
            "(remove the row, or emit it): " + ", ".join(extra)
        )
    assert not problems, "\n".join(problems)
