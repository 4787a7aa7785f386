"""Import rules the layer contract (lint-imports) does not check: no import
hidden in a function, and a network side that sees the node only through its
narrow interface (node/api.py). Cycles anywhere in the package:
``test_import_graph.py``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "powernode"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = ast.parse(path.read_text(), str(path))
    return out


MODULES = _modules()


def _imported(tree: ast.Module, module: str) -> set[str]:
    """powernode modules ``module`` imports anywhere (TYPE_CHECKING too)."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0 and node.module, f"{module}: relative import"
            base = node.module
            out.add(base)
            # ``from pkg import module`` names a module, not just an attribute.
            out.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES)
    return {m for m in out if m in MODULES}


# The one exception: the CLI imports powernode.node (asyncio, aiohttp) only in
# the commands that start a node, so that every other command starts fast;
# `run` also reads a storage fault's typed error from the chain layer there.
LAZY = {
    "powernode.cli.node": {
        "powernode.chain.storage_faults",
        "powernode.node.config",
        "powernode.node.logging_setup",
        "powernode.node.node",
    },
    # backup/restore/export read a data dir's config through the node's loader.
    "powernode.cli.ops": {"powernode.node.config"},
    # The console script takes Ctrl-C and SIGTERM before the CLI's imports,
    # which take half a second: importing it is the point of the function.
    "powernode.launcher": {"powernode.cli"},
}


def _function_imported(tree: ast.Module) -> set[str]:
    out: set[str] = set()
    for fn in ast.walk(tree):
        if isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            for n in ast.walk(fn):
                if isinstance(n, ast.Import):
                    out.update(a.name for a in n.names)
                elif isinstance(n, ast.ImportFrom):
                    out.add(n.module or "")
    return out


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_import_inside_a_function(module: str) -> None:
    assert _function_imported(MODULES[module]) <= LAZY.get(module, set())


@pytest.mark.parametrize(
    "module",
    [
        "powernode.node.p2p",
        "powernode.node.p2p_gossip",
        "powernode.node.p2p_sync",
        "powernode.node.peer",
        "powernode.node.rpc_methods",
        "powernode.node.rpc_market",
        "powernode.node.rpc_certs",
        "powernode.node.rpc_params",
    ],
)
def test_the_network_side_does_not_import_the_node(module: str) -> None:
    assert "powernode.node.node" not in _imported(MODULES[module], module)
