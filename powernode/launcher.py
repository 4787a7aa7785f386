"""The ``powernode`` console script's entry point.

Importing the CLI takes about half a second. A Ctrl-C in that time would
end in a traceback, and a SIGTERM would kill ``powernode run`` with 143,
where the README promises the clean stop (0) and never a traceback. So
this module, which imports nothing heavy, takes both signals first and
only then imports the CLI; ``powernode run`` keeps SIGTERM as an interrupt
until the node installs its own handlers.
"""

from __future__ import annotations

import sys

from powernode.interrupts import sigterm_as_interrupt

__all__ = ["main"]

# The exit status of a command stopped by Ctrl-C (128 + SIGINT), as the
# CLI's own handler gives it once it runs.
INTERRUPTED = 130


# The global options that take a value (they may come before the command).
_VALUED = frozenset({"--datadir", "--rpc-url", "--rpc-cookie", "--rpcwait-timeout"})


def _command(argv: list[str]) -> str | None:
    """The command word, as far as it can be told before the parser loads."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def main() -> int:
    is_run = _command(sys.argv[1:]) == "run"
    if is_run:
        sigterm_as_interrupt()
    try:
        from powernode.cli import main as cli_main

        return cli_main()
    except KeyboardInterrupt:
        # Only while the CLI was still being imported: once it runs, its
        # own handling gives the status (run: 0).
        return 0 if is_run else INTERRUPTED
