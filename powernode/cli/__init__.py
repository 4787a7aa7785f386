"""The ``powernode`` command.

User mistakes (bad arguments, no node running, a rejected tx, a file that
cannot be read) print one line on stderr and exit 1; only argparse's usage
errors exit 2 (see ``common``). ``--json`` gives machine-readable output for
queries.

This module assembles the parser: each command module (``node``, ``market``, ``certs``, ``contracts``, ``proof``)
exposes ``add_commands(subparsers)`` and builds on ``common``, which imports
none of them; adding a group of commands is one more entry in
``COMMAND_GROUPS``. ``python -m powernode.cli`` runs ``main`` through
``__main__``; the console script calls ``powernode.cli:main``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from powernode.cli import certs, contracts, market, node, proof
from powernode.cli.common import Subparsers, run_argv

__all__ = ["build_parser", "main"]

# In the order `powernode --help` lists them.
COMMAND_GROUPS: tuple[Callable[[Subparsers], None], ...] = (
    node.add_commands,
    market.add_commands,
    certs.add_commands,
    contracts.add_commands,
    proof.add_commands,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="powernode", description="powernode: a P2P node for electricity trading"
    )
    sub = p.add_subparsers(dest="command", required=True)
    for add_commands in COMMAND_GROUPS:
        add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_argv(build_parser(), argv)
