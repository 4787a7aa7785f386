"""What every ``powernode`` command shares: registering a subcommand and its
number options, finding the running node and the signing key from
``--datadir``, printing a result (text or ``--json``), submitting a tx and
reporting it, and turning a user's mistake into one line on stderr and exit
status 1.

Exit status: 0 done; 1 any failure, told in one line
``powernode COMMAND: error: ...`` on stderr; 3 a tx still pending when its
``--wait`` ran out (one line too); 2 only for argparse's usage
errors (an unknown command or option, a missing required option, a value
outside an option's ``choices``), which print argparse's usage block; 130
on Ctrl-C; 141, quietly, when stdout's reader went away (``| head -1``). A bad *value* for a number option is a 1, not a 2: the option's
type function raises ``UserError``, which argparse does not catch (it
catches only ValueError, TypeError and ArgumentTypeError), so ``main``
reports it like any other mistake.

Command modules import this one, never the other way round.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import select
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from powernode.client import (
    CALL_TIMEOUT_S,
    Endpoint,
    RpcClient,
    RpcError,
    RpcUnavailable,
    endpoint_from_datadir,
    format_kwh,
    format_money,
    read_bytes,
    read_key,
    read_text,
)
from powernode.core.crypto import KeyPair, parse_address
from powernode.core.errors import ConfigError, DecodeError, GenesisError, PowernodeError
from powernode.core.hextext import from_hex
from powernode.core.params import ChainParams
from powernode.core.tx import Transaction
from powernode.core.units import U63, clip, parse_decimal, parse_whole
from powernode.state.genesis import parse_genesis_json
from powernode.ws_client import WsUnavailable, wait_for_tx

DEFAULT_DATADIR = Path.home() / ".powernode"
# The data dir when no --datadir is given, as bitcoind's -datadir has none.
DATADIR_ENV = "POWERNODE_DATADIR"
# How long --rpcwait waits for the node's RPC unless --rpcwait-timeout says.
DEFAULT_RPCWAIT_SECONDS = 60.0

Command: TypeAlias = Callable[[argparse.Namespace], int]
Subparsers: TypeAlias = "argparse._SubParsersAction[CommandParser]"


class UserError(Exception):
    """A mistake on the command line or in the data dir: one line, exit 1.

    Not a ValueError on purpose: raised from an argparse ``type=`` function
    it passes through argparse (which would turn a ValueError into a usage
    error, exit 2) to ``main``."""


# The exit status of a tx command whose ``--wait`` ran out while the tx was
# still pending: not 1, since the tx was sent and may yet be mined, and a
# script must not send it again as if it had failed.
EXIT_WAIT_TIMEOUT = 3

# The longest ``--wait``: a day. Parsed as a decimal, so "nan", "inf" and
# "1e9", which float() takes, are refused rather than waited on.
MAX_WAIT_SECONDS = 86_400


# --- parsing ------------------------------------------------------------------


def add_command(sub: Subparsers, name: str, fn: Command, help: str) -> argparse.ArgumentParser:
    """A subcommand running ``fn``, with the global options every command
    takes (``add_global_options``)."""
    sp = sub.add_parser(name, help=help, description=help)
    add_global_options(sp)
    sp.set_defaults(fn=fn)
    return sp


def add_global_options(p: argparse.ArgumentParser) -> None:
    """``--datadir`` and the options that say how to reach the node, taken
    before the subcommand or after it (``powernode --datadir D status`` or
    ``powernode status --datadir D``). Absent ones stay unset while parsing
    (``SUPPRESS``), so a subcommand's parser cannot overwrite one given
    before it; ``TopParser`` then fills the defaults."""
    p.add_argument(
        "--datadir",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"node data directory (default ${DATADIR_ENV}, else ~/.powernode)",
    )
    p.add_argument(
        "--rpc-url",
        default=argparse.SUPPRESS,
        metavar="URL",
        help="the node's RPC URL, e.g. http://127.0.0.1:8645/rpc (default: from DATADIR/node.json)",
    )
    p.add_argument(
        "--rpc-cookie",
        type=Path,
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="the RPC cookie file (default DATADIR/.cookie)",
    )
    p.add_argument(
        "--rpcwait",
        action="store_true",
        default=argparse.SUPPRESS,
        help="wait for the node's RPC to come up (as bitcoin-cli -rpcwait)",
    )
    p.add_argument(
        "--rpcwait-timeout",
        type=seconds_option("--rpcwait-timeout"),
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help=f"how long --rpcwait waits (default {DEFAULT_RPCWAIT_SECONDS:g})",
    )


class CommandParser(argparse.ArgumentParser):
    """Every parser of the CLI: an option is spelled out in full. argparse
    would otherwise take any unique prefix (``--energy`` for
    ``--energy-kwh``), so a misspelt option could run a command instead of
    being refused as unknown (exit 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


class TopParser(CommandParser):
    """The ``powernode`` parser: after parsing, the global options that were
    not given get their defaults (``--datadir`` from ``$POWERNODE_DATADIR``
    when set). Only the top parser does this: a subcommand's parser filling
    them would overwrite what was given before the subcommand."""

    def parse_known_args(  # type: ignore[override]
        self, args: list[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        ns, rest = super().parse_known_args(args, namespace)
        fill_globals(ns)
        return ns, rest


def fill_globals(ns: argparse.Namespace) -> None:
    if not hasattr(ns, "datadir"):
        env = os.environ.get(DATADIR_ENV, "")
        ns.datadir = Path(env).expanduser() if env else DEFAULT_DATADIR
    ns.rpc_url = getattr(ns, "rpc_url", None)
    ns.rpc_cookie = getattr(ns, "rpc_cookie", None)
    ns.rpcwait = getattr(ns, "rpcwait", False)
    ns.rpcwait_timeout = getattr(ns, "rpcwait_timeout", DEFAULT_RPCWAIT_SECONDS)


def whole_number(what: str, *, lo: int = 0, hi: int = U63) -> Callable[[str], int]:
    """An argparse ``type=`` for a whole number option in ``lo..hi`` (ASCII
    digits only, see ``parse_whole``); a bad value is a UserError naming
    ``what``, checked while parsing, before anything is read or sent."""

    def parse(text: str) -> int:
        try:
            return parse_whole(text, what, lo=lo, hi=hi)
        except DecodeError as exc:
            raise UserError(exc.message) from None

    return parse


def hex_id(text: str, what: str) -> bytes:
    """A 32-byte id (a device, certificate, PPA or contract: the id of the tx
    that made it) as 64 hex digits (``0x`` optional), or a UserError saying
    what ``what`` is."""
    s = text.strip().removeprefix("0x")
    try:
        raw = from_hex(s)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UserError(f"{what} must be 64 hex digits, not {clip(text)!r}")
    return raw


# The chain's bound on a participant's and a device's capacity
# (engines/market, engines/metering), checked before a key is read.
MAX_CAPACITY_W = 10**12


def capacity_arg(text: str) -> int:
    """``--capacity-kw``: kW with up to 3 decimals, as Wh per hour (W)."""
    try:
        w = parse_decimal(text, 3, "--capacity-kw")
    except DecodeError as exc:
        raise UserError(exc.message) from None
    if not 1 <= w <= MAX_CAPACITY_W:
        raise UserError(f"--capacity-kw must be 0.001..{MAX_CAPACITY_W // 1000} kW")
    return w


# The largest genesis file the CLI reads: a guard against `--genesis
# /dev/zero` more than a limit on real chains (a dev genesis is a few KiB).
MAX_GENESIS_BYTES = 64 * 1024 * 1024


def read_genesis(src: Path) -> tuple[bytes, ChainParams]:
    """A genesis file's bytes and the params the chain's own parser makes of
    them; a file that is missing, too large or not a genesis is one
    UserError naming it (and the key at fault)."""
    try:
        raw = read_bytes(src, "genesis file", max_bytes=MAX_GENESIS_BYTES)
    except ConfigError as exc:
        raise UserError(exc.message) from None
    try:
        return raw, parse_genesis_json(raw)
    except GenesisError as exc:
        raise UserError(f"{src}: {exc.message}") from None


def address_arg(what: str) -> Callable[[str], bytes]:
    """An address option's type: a bad one is a UserError naming ``what``."""

    def parse(text: str) -> bytes:
        try:
            return parse_address(text)
        except DecodeError as exc:
            raise UserError(f"{what}: {exc.message}") from None

    return parse


def add_address_options(sp: argparse.ArgumentParser) -> None:
    """The account a query is about, taken the same way by every command that
    takes one: as a positional ADDRESS or as ``--participant`` (alias
    ``--address``), else the address of ``--key`` (default the node key)."""
    sp.add_argument(
        "address",
        nargs="?",
        type=address_arg("ADDRESS"),
        metavar="ADDRESS",
        help="the account's address (default: the key's); same as --participant",
    )
    sp.add_argument(
        "--participant",
        "--address",
        dest="address_option",
        type=address_arg("--participant"),
        metavar="ADDRESS",
        help="the account's address (default: the key's); same as the positional ADDRESS",
    )
    sp.add_argument("--key", help="key file whose address is used (default: the node key)")


def chosen_address(a: argparse.Namespace) -> bytes:
    """The address ``add_address_options`` took: both forms naming different
    accounts is a mistake, not a silent pick of one."""
    positional: bytes | None = a.address
    option: bytes | None = a.address_option
    if positional is not None and option is not None and positional != option:
        raise UserError("ADDRESS and --participant name different accounts; give one")
    given = positional if positional is not None else option
    return given if given is not None else signing_key(a).address


def port_number(what: str) -> Callable[[str], int]:
    return whole_number(what, lo=1, hi=65535)


def seconds_option(option: str) -> Callable[[str], float]:
    """An option of decimal seconds (to the millisecond), 0..MAX_WAIT_SECONDS,
    whose errors name ``option``."""

    def parse(text: str) -> float:
        try:
            ms = parse_decimal(text, 3, option)
        except DecodeError as exc:
            raise UserError(f"{exc.message} (seconds, e.g. 10 or 0.5)") from None
        if ms > MAX_WAIT_SECONDS * 1000:
            raise UserError(f"{option}: at most {MAX_WAIT_SECONDS} seconds")
        return ms / 1000

    return parse


# ``--wait``: how long a tx command waits for its tx.
wait_seconds = seconds_option("--wait")


def add_wait_option(sp: argparse.ArgumentParser) -> None:
    sp.add_argument(
        "--wait",
        type=wait_seconds,
        default=0,
        metavar="SECONDS",
        help="seconds to wait for confirmation",
    )


def add_tx_options(
    sp: argparse.ArgumentParser, *, fee_default: str | None = "0.001", fee_help: str = ""
) -> None:
    """The options of a command that signs and submits a tx. A command whose
    ``fee_default`` is None works its fee out when ``--fee`` is not given,
    as ``fee_help`` says."""
    sp.add_argument("--key", help="signing key file (default: the node key)")
    default = fee_help or str(fee_default)
    sp.add_argument("--fee", default=fee_default, help=f"fee in units (default: {default})")
    add_wait_option(sp)
    sp.add_argument("--json", action="store_true", help="print the result as JSON")


def run_argv(parser: argparse.ArgumentParser, argv: list[str] | None) -> int:
    """Parse and run; see the module doc for the exit statuses."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser.parse_args(argv)
    except UserError as exc:
        # Raised by a type function: named by the subcommand if one was
        # given (global options may come before it), else as the program.
        commands = next(
            (a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {}
        )
        command = next((x for x in argv if x in commands), "")
        print(f"powernode{' ' + command if command else ''}: error: {exc}", file=sys.stderr)
        return 1
    return run_command(args)


def run_command(args: argparse.Namespace) -> int:
    """Run the parsed command; a user's mistake, a typed rejection, an
    unreachable node or a file that cannot be read or written becomes one
    line on stderr and exit status 1."""
    try:
        try:
            return int(args.fn(args))
        finally:
            # stdout to a pipe is block-buffered: a reader that went away
            # shows here at the latest, not in the interpreter's flush at exit
            # (stdout is None when the command was started with it closed)
            if sys.stdout is not None:
                sys.stdout.flush()
    except BrokenPipeError as exc:
        if not _stdout_reader_gone():
            error_line(args.command, os_error_text(exc))
            return 1
        # `powernode ... | head -1`: nothing more can reach the reader. End
        # quietly, as a command killed by SIGPIPE would (128 + 13), with
        # stdout on /dev/null so the flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return SIGPIPE_EXIT
    except (UserError, PowernodeError, RpcError, RpcUnavailable) as exc:
        error_line(args.command, str(exc))
        return 1
    except OSError as exc:
        # The net under the commands' own checks: a path that is a
        # directory, unreadable, on a full disk... named by the OSError.
        error_line(args.command, os_error_text(exc))
        return 1
    except KeyboardInterrupt:
        return 130


# The exit status of a command whose reader went away: that of a process
# killed by SIGPIPE (128 + 13), as `head` leaves other CLIs.
SIGPIPE_EXIT = 141


def _stdout_reader_gone() -> bool:
    """Whether stdout is a pipe with no reader left (poll reports POLLERR on
    such a write end), so a BrokenPipeError is the reader's doing and not a
    socket's."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), 0)
        return any(ev & select.POLLERR for _, ev in poller.poll(0))
    except (OSError, ValueError):
        return False


def os_error_text(exc: OSError) -> str:
    """'PATH: Is a directory' rather than '[Errno 21] Is a directory: PATH'."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename is not None else reason


# Receipt event fields that hold money (micro-units) or energy (Wh): shown
# in units and kWh, as every amount the CLI takes or prints.
MONEY_FIELDS = frozenset(
    {"amount", "escrow", "paid", "value", "refund", "refunded", "penalty", "owed", "fee"}
)


def event_line(event: dict[str, Any]) -> str:
    """A receipt event no command words on its own: its name, then each
    field, money in units and energy in kWh."""

    def shown(key: str, value: Any) -> str:
        if type(value) is int and key in MONEY_FIELDS:
            return f"{key} {format_money(value)}"
        if type(value) is int and (key == "wh" or key.endswith("_wh")):
            return f"{key} {format_kwh(value)} kWh"
        return f"{key} {value}"

    rest = "  ".join(shown(k, v) for k, v in event.items() if k != "event")
    return f"  {event['event']}  {rest}"


def out_file(text: str, *, force: bool) -> Path:
    """An ``--out FILE`` a command is about to write whole, checked before
    any work: a name, not a directory, in a folder that exists, and not an
    existing file unless ``force``."""
    if not text:
        raise UserError("--out: give a file name")
    out = Path(text)
    if out.is_dir():
        raise UserError(f"--out {out} is a directory; give a file name")
    if not out.parent.is_dir():
        raise UserError(f"--out {out}: folder {out.parent} does not exist")
    if out.exists() and not force:
        raise UserError(f"{out} exists; give --force to replace it")
    return out


def error_line(command: str, message: str) -> None:
    print(f"powernode {command}: error: {message}", file=sys.stderr)


# --- the node and the key -----------------------------------------------------


def rpc_client(a: argparse.Namespace, *, timeout: float = CALL_TIMEOUT_S) -> RpcClient:
    """A client for the node: the one running in ``--datadir`` (its URL and
    cookie are there), or at ``--rpc-url`` / with ``--rpc-cookie``. With
    ``--rpcwait``, first wait up to ``--rpcwait-timeout`` seconds for it to
    answer (a node still starting has no node.json, or refuses connections).
    ``timeout`` bounds each call."""
    if not a.rpcwait:
        return RpcClient(node_endpoint(a), timeout=timeout)
    deadline = time.monotonic() + a.rpcwait_timeout
    while True:
        try:
            client = RpcClient(node_endpoint(a), timeout=timeout)
            try:
                client.call("node.info")
            except BaseException:
                client.close()
                raise
            return client
        except RpcUnavailable as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RpcUnavailable(
                    f"{exc} (waited {a.rpcwait_timeout:g} s with --rpcwait)"
                ) from None
            time.sleep(min(0.2, left))


def node_endpoint(a: argparse.Namespace) -> Endpoint:
    """Where the node's RPC is and the Authorization header it takes."""
    if a.rpc_url is None:
        found = endpoint_from_datadir(a.datadir)
        if a.rpc_cookie is None:
            return found
        return Endpoint(url=found.url, auth=cookie_auth(a.rpc_cookie))
    url = a.rpc_url
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme != "http" or not parts.hostname or port is None:
        raise UserError(f"--rpc-url: expected http://HOST:PORT/rpc, not {clip(url)!r}")
    cookie = a.rpc_cookie if a.rpc_cookie is not None else a.datadir / ".cookie"
    if a.rpc_cookie is None and not cookie.exists():
        raise RpcUnavailable(f"no RPC cookie at {cookie}; give --rpc-cookie FILE or --datadir")
    # http://HOST:PORT and http://HOST:PORT/ mean the node's /rpc.
    if parts.path in ("", "/"):
        url = parts._replace(path="/rpc").geturl()
    return Endpoint(url=url, auth=cookie_auth(cookie))


def cookie_auth(path: Path) -> str:
    """The Basic header for a cookie file (``__cookie__:<secret>``)."""
    try:
        secret = read_text(path, "RPC cookie").strip()
    except ConfigError as exc:
        raise UserError(exc.message) from None
    return "Basic " + base64.b64encode(secret.encode()).decode()


def signing_key(a: argparse.Namespace) -> KeyPair:
    """``--key FILE``, else the node key in ``--datadir``."""
    return read_key(Path(a.key) if a.key else a.datadir / "node.key")


# --- output -------------------------------------------------------------------


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and the noun agreeing with it: "1 block", "2 blocks", "0 blocks"."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def emit(a: argparse.Namespace, obj: Any, text: Callable[[Any], str]) -> None:
    print(json.dumps(obj, indent=2) if a.json else text(obj))


# --- transactions -------------------------------------------------------------


def tx_context(c: RpcClient, key: KeyPair) -> tuple[str, int]:
    """The chain id and the sender's next nonce (counting its pending txs)."""
    chain_id = c.call("node.info")["chain_id"]
    return chain_id, c.call("account.get", {"address": key.address.hex()})["next_nonce"]


def submit_and_wait(c: RpcClient, tx: Transaction, wait: float) -> dict[str, Any]:
    """Submit ``tx``; with ``wait`` > 0, wait up to that many seconds for it
    to be confirmed, told by the node's ``tx`` subscription over its
    WebSocket (polling ``tx.get`` instead on a node without one). Returns
    ``tx.get``'s answer with the id; status ``dropped`` if the node let go
    of it unmined (replaced, evicted, or it stopped passing the checks
    against a newer tip, e.g. a second order over the capacity), with the
    reason in ``error`` when the node still knows it; ``pending`` when the
    time ran out."""
    try:
        return await_tx(c, c.submit(tx), wait)
    except KeyboardInterrupt:
        # A Ctrl-C ends the wait, not the tx (the node may have it from the
        # moment it was sent): its id is then what the user needs. Exit 130,
        # as any Ctrl-C.
        txid = tx.txid.hex()
        print(
            f"interrupted: tx {txid} may still confirm (powernode rpc tx.get id={txid})",
            file=sys.stderr,
        )
        raise


def await_tx(c: RpcClient, txid: str, wait: float) -> dict[str, Any]:
    """A submitted tx's status as ``submit_and_wait`` tells it."""
    if not wait:
        return {"id": txid, "status": "pending"}
    try:
        pushed = wait_for_tx(c.endpoint, txid, wait)
    except WsUnavailable:
        return poll_tx(c, txid, wait)
    if pushed["status"] == "pending":
        return {"id": txid, "status": "pending"}
    # The final answer as tx.get gives it (with the tx), as polling did.
    try:
        return {"id": txid, **c.call("tx.get", {"id": txid})}
    except RpcError as exc:
        if exc.reason != "not_found":
            raise
        return {"id": txid, "status": "dropped"}


def poll_tx(c: RpcClient, txid: str, wait: float) -> dict[str, Any]:
    """``tx.get`` every 0.2 s until the tx is final or ``wait`` s passed."""
    status: dict[str, Any] = {"id": txid, "status": "pending"}
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            status = {"id": txid, **c.call("tx.get", {"id": txid})}
        except RpcError as exc:
            if exc.reason != "not_found":
                raise
            return {"id": txid, "status": "dropped"}
        if status["status"] in ("confirmed", "dropped"):
            break
        time.sleep(0.2)
    return status


def tx_line(s: dict[str, Any]) -> str:
    line = f"tx {s['id']} {s['status']}"
    if s.get("height") is not None:
        line += f" in block {s['height']}"
    if (s.get("receipt") or {}).get("status") == "failed":
        line += " (failed)"
    return line


def tx_failure(status: dict[str, Any]) -> str:
    """Why a submitted tx came to nothing, in the words of its error line
    (``was mined but failed: CODE: ...``, ``was dropped unmined: CODE: ...
    (nothing charged)``), or "" for a tx confirmed ok or still pending."""
    err = (status.get("receipt") or {}).get("error")
    if err:
        return f"was mined but failed: {err['code']}: {err['message']}"
    if status["status"] == "dropped":
        reason = status.get("error")
        detail = (
            f"{reason['code']}: {reason['message']}"
            if reason
            else "it no longer passes the node's checks"
        )
        return f"was dropped unmined: {detail} (nothing charged)"
    return ""


def report_tx(
    a: argparse.Namespace, status: dict[str, Any], text: Callable[[Any], str] = tx_line
) -> int:
    """Print a submitted tx's status. A tx mined as failed (its fee charged,
    its effect not applied) or dropped unmined also gets an error line on
    stderr and exit status 1."""
    emit(a, status, text)
    why = tx_failure(status)
    if why:
        error_line(a.command, f"tx {status['id']} {why}")
        return 1
    if status["status"] == "pending" and getattr(a, "wait", 0):
        error_line(
            a.command,
            f"tx {status['id']} not confirmed within --wait {a.wait:g} s: still pending "
            "(it may yet be mined; check with tx.get before sending it again)",
        )
        return EXIT_WAIT_TIMEOUT
    return 0
