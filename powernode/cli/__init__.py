"""The ``powernode`` command.

User mistakes (bad arguments, no node running, a rejected tx, a file that
cannot be read) print one line on stderr and exit 1; only argparse's usage
errors exit 2 (see ``common``). ``--json`` gives machine-readable output for
queries.

This module assembles the parser: each command module (``node``, ``ops``, ``market``, ``certs``, ``contracts``, ``proof``)
exposes ``add_commands(subparsers)`` and builds on ``common``, which imports
none of them; adding a group of commands is one more entry in
``COMMAND_GROUPS``. ``python -m powernode.cli`` runs ``main`` through
``__main__``; the console script calls it through ``powernode.launcher``,
which takes Ctrl-C and SIGTERM before this package's imports.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from powernode import __version__
from powernode.cli import certs, completion, contracts, market, node, ops, proof, rpc_call
from powernode.cli.common import (
    CommandParser,
    Subparsers,
    TopParser,
    add_global_options,
    run_argv,
)

__all__ = ["build_parser", "main"]

# In the order `powernode --help` lists them.
COMMAND_GROUPS: tuple[Callable[[Subparsers], None], ...] = (
    node.add_commands,
    ops.add_commands,
    market.add_commands,
    certs.add_commands,
    contracts.add_commands,
    proof.add_commands,
    rpc_call.add_commands,
)


def build_parser() -> argparse.ArgumentParser:
    p = TopParser(
        prog="powernode",
        description="powernode: a P2P node for electricity trading. Global options "
        "(--datadir, --rpc-url, --rpc-cookie, --rpcwait) go before or after the command.",
    )
    p.add_argument("--version", action="version", version=f"powernode {__version__}")
    add_global_options(p)
    # Subcommands parse into a namespace of their own; only the top parser
    # fills the global defaults (common.TopParser).
    sub = p.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    for add_commands in COMMAND_GROUPS:
        add_commands(sub)
    completion.add_commands(sub, build_parser)
    return p


def main(argv: list[str] | None = None) -> int:
    return run_argv(build_parser(), argv)
