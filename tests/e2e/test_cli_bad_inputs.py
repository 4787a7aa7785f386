"""Bad input to the ``powernode`` command, one table: every row must end in
exit status 1 and exactly one line ``powernode COMMAND: error: ...`` on
stderr (2 and argparse's usage block only for a usage error), never a
traceback, and a failed command leaves the files it was given as they were.

Rows run in-process through ``main(argv)`` (fast) unless marked ``proc``:
those run the installed ``powernode`` script, to prove the real entry point,
and every ``run`` that gets as far as starting the node (which sets up
logging, signal handlers and worker processes, none of which belong in the
test process). Rows that need a running node share one dev node per module.
"""

from __future__ import annotations

import errno
import http.server
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from powernode.cli import build_parser, main
from powernode.cli import node as cli_node
from powernode.cli.datadir_lock import lock_datadir
from powernode.core.crypto import KeyPair
from powernode.devnet.datadir import LOOPBACK, free_port
from powernode.devnet.devchain import DEV_FUNDS, dev_genesis
from powernode.devnet.process import ProcessNode
from powernode.logkit import render_value

pytestmark = pytest.mark.e2e

POWERNODE = Path(sys.executable).parent / "powernode"
# A line the node's text log writes on stderr while `run` starts and stops.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z [A-Z]+ ")
ADDR = "00" * 20

# A row's preparation of its tmp dir (what it returns is ignored).
Setup = Callable[[Path], object]


@dataclass(frozen=True)
class Row:
    """``argv`` with ``@name`` placeholders (see ``row``); ``needle`` is
    part of the one error line. ``logged``: a ``run`` that fails after its
    log is set up, so stderr has the node's log lines before the error line
    and node.log ends with the same error as a ``node.failed`` event."""

    argv: tuple[str, ...]
    needle: str
    setup: Setup | None = None
    status: int = 1
    proc: bool = False
    logged: bool = False


def row(label: str, command: str, needle: str, setup: Setup | None = None, **kw: Any) -> Any:
    """A table row: ``command`` is split as a shell would; ``@name`` (or
    ``@name/more``) stands for a path ``paths`` makes in the row's tmp dir,
    ``@node`` for the shared dev node's data dir."""
    return pytest.param(Row(tuple(shlex.split(command)), needle, setup, **kw), id=label)


# --- what rows refer to ---------------------------------------------------------------


def paths(tmp: Path, node: Path | None) -> dict[str, str]:
    """The placeholders, made fresh in each row's tmp dir."""
    (tmp / "adir").mkdir()
    (tmp / "afile").write_text("hello\n")
    (tmp / "bin").write_bytes(b"\xff\xfe\x00\x9c not text")
    (tmp / "empty").write_bytes(b"")
    (tmp / "short.key").write_text("ab" * 31 + "\n")
    (tmp / "spaced.key").write_text(" ".join(["ab"] * 32) + "\n")  # bytes.fromhex takes it
    (tmp / "keyed").mkdir()
    (tmp / "keyed" / "node.key").write_text(KeyPair.generate().seed().hex() + "\n")
    names = (
        "adir", "afile", "bin", "empty", "short.key", "spaced.key", "keyed", "missing", "dd",
        "g.json",
    )  # fmt: skip
    out = {n.removesuffix(".key").removesuffix(".json"): str(tmp / n) for n in names}
    out["tmp"] = str(tmp)
    out["node"] = str(node) if node else "/nonexistent-node-dir"
    return out


def runtime_files(node_json: str | bytes | None, cookie: str | None = "__cookie__:x") -> Setup:
    """A data dir ``dd`` whose node.json (None: a directory) and .cookie
    (None: a directory) hold the given text."""

    def setup(tmp: Path) -> None:
        dd = tmp / "dd"
        dd.mkdir()
        if node_json is None:
            (dd / "node.json").mkdir()
        elif isinstance(node_json, bytes):
            (dd / "node.json").write_bytes(node_json)
        else:
            (dd / "node.json").write_text(node_json)
        if cookie is None:
            (dd / ".cookie").mkdir()
        else:
            (dd / ".cookie").write_text(cookie)

    return setup


def rpc_at(port: int) -> str:
    return json.dumps({"pid": 1, "rpc": f"http://{LOOPBACK}:{port}/rpc"})


def initialised(edit: Callable[[Path], object] = lambda d: None) -> Setup:
    """``dd`` as ``powernode init --dev`` writes it, then ``edit``ed."""

    def setup(tmp: Path) -> None:
        d = tmp / "dd"
        assert main(["init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port())]) == 0
        edit(d)

    return setup


def config_edit(old: str, new: str) -> Setup:
    def edit(d: Path) -> None:
        text = (d / "config.toml").read_text()
        assert old in text, f"config.toml has no {old!r}"
        (d / "config.toml").write_text(text.replace(old, new, 1))

    return initialised(edit)


def config_append(extra: str) -> Setup:
    return initialised(
        lambda d: (d / "config.toml").write_text((d / "config.toml").read_text() + extra)
    )


def replace_file(name: str, content: bytes | None) -> Setup:
    """``dd`` initialised, then ``name`` replaced (None: by a directory)."""

    def edit(d: Path) -> None:
        (d / name).unlink()
        if content is None:
            (d / name).mkdir()
        else:
            (d / name).write_bytes(content)

    return initialised(edit)


def genesis_doc(**changes: object) -> bytes:
    doc = dev_genesis({KeyPair.generate().address: DEV_FUNDS}, timestamp=1_700_000_000)
    doc.update(changes)
    return json.dumps(doc).encode()


def genesis_file(content: bytes) -> Setup:
    return lambda tmp: (tmp / "g.json").write_bytes(content)


def port_taken(tmp: Path) -> None:
    """``dd`` initialised, its RPC port held by a listening socket; the
    socket lives until the row's tmp dir is dropped (kept on the module)."""
    sock = socket.socket()
    sock.bind((LOOPBACK, 0))
    sock.listen()
    _HELD.append(sock)
    port = sock.getsockname()[1]

    def edit(d: Path) -> None:
        text = (d / "config.toml").read_text()
        (d / "config.toml").write_text(re.sub(r"(?m)^port = \d+", f"port = {port}", text, count=1))

    initialised(edit)(tmp)


_HELD: list[socket.socket] = []


@pytest.fixture(scope="module", autouse=True)
def _close_held_sockets() -> Iterator[None]:
    """Rows' listeners live for the module; closed at its end."""
    yield
    while _HELD:
        _HELD.pop().close()
    while _SERVERS:
        server = _SERVERS.pop()
        server.shutdown()
        server.server_close()
    _HTML_PORT.clear()


def p2p_port_70000(tmp: Path) -> None:
    def edit(d: Path) -> None:
        text = (d / "config.toml").read_text()
        head, p2p = text.split("[p2p]")
        p2p, sep, rest = p2p.partition("\n[")  # the [p2p] table alone
        p2p = p2p.replace("enabled = false", "enabled = true")
        p2p = re.sub(r"(?m)^port = \d+", "port = 70000", p2p)
        (d / "config.toml").write_text(head + "[p2p]" + p2p + sep + rest)

    initialised(edit)(tmp)


def p2p_port_taken(tmp: Path) -> None:
    """``dd`` initialised with p2p on, its p2p port held by a listening
    socket (kept for the module, as ``port_taken``'s)."""
    sock = socket.socket()
    sock.bind((LOOPBACK, 0))
    sock.listen()
    _HELD.append(sock)
    port = sock.getsockname()[1]

    def edit(d: Path) -> None:
        text = (d / "config.toml").read_text()
        head, p2p = text.split("[p2p]")
        p2p, sep, rest = p2p.partition("\n[")  # the [p2p] table alone
        p2p = p2p.replace("enabled = false", "enabled = true")
        p2p = re.sub(r"(?m)^port = \d+", f"port = {port}", p2p)
        (d / "config.toml").write_text(head + "[p2p]" + p2p + sep + rest)

    initialised(edit)(tmp)


# Data dir locks this test process holds (as a running node would) until it ends.
_HELD_LOCKS: list[int] = []


def locked(tmp: Path) -> None:
    """The data dir's node.lock held, as by a node still loading its chain:
    by this process."""

    def hold(d: Path) -> None:
        fd = lock_datadir(d)
        assert fd is not None
        _HELD_LOCKS.append(fd)

    initialised(hold)(tmp)


def not_json_server(tmp: Path) -> None:
    """``dd`` whose node.json names a loopback HTTP server that answers HTML."""
    runtime_files(rpc_at(_html_server_port()))(tmp)


_HTML_PORT: list[int] = []
_SERVERS: list[http.server.ThreadingHTTPServer] = []


class _Html(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = b"<html>not a node</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _html_server_port() -> int:
    if not _HTML_PORT:
        server = http.server.ThreadingHTTPServer((LOOPBACK, 0), _Html)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        _SERVERS.append(server)
        _HTML_PORT.append(server.server_address[1])
    return _HTML_PORT[0]


# --- the table --------------------------------------------------------------------------

# Digits Python takes but the CLI does not: str.isdigit() accepts all of
# these, int() all but the superscripts.
SUP2 = "\u00b2"  # superscript two
SUP3 = "\u00b3"  # superscript three
ARABIC_INDIC_80 = "\u0668\u0660"
ARABIC_INDIC_1200 = "\u0661\u0662\u0660\u0660"
FULLWIDTH_8645 = "\uff18\uff16\uff14\uff15"
FULLWIDTH_60 = "\uff16\uff10"
FULLWIDTH_1 = "\uff11"
FULLWIDTH_9 = "\uff19"
DEVANAGARI_1 = "\u0967"
HUGE = "9" * 5000  # past Python's 4300-digit limit on int(str)
ORDER = "--side buy --energy-kwh 1 --price 0.5"
SEND = f"transfer --datadir @keyed --to {ADDR} --amount 1"
REGISTER = "register --datadir @keyed --role producer --location x"
CANCEL = f"cancel {'00' * 32} --datadir @keyed"
INIT = "init --datadir @dd"
ID = "ab" * 32
METER_PUB = KeyPair.from_seed(b"\x01" * 32).pubkey.hex()
DEVICE = (
    "device register --datadir @keyed --kind generation --source solar --capacity-kw 1 "
    "--location x --carbon-intensity 50"
)
DEVREG = f"{DEVICE} --meter-pubkey {METER_PUB}"
REPORT = f"meter report --datadir @keyed --device {ID} --interval last --produced 1"
SIGN = f"meter sign --device {ID} --interval 900 --produced 1 --chain-id powernode-dev-7"
RETIRE = f"cert retire {ID} --datadir @keyed --energy-kwh 1 --beneficiary b"
PROPOSE = f"ppa propose --datadir @keyed --buyer {ADDR} --total-kwh 1 --price 0.5 --days 1"
CREATE = "contract create --datadir @keyed --escrow 1 --expiry +60"


def terms(doc: object) -> Setup:
    """A contract terms file at @g."""
    return genesis_file(json.dumps(doc).encode())


PORT_BAD = [
    ("70000", "outside 1..65535"),
    ("65536", "outside 1..65535"),
    ("0", "outside 1..65535"),
    ("-1", "whole number"),
    ("+80", "whole number"),
    (FULLWIDTH_8645, "whole number"),
    (ARABIC_INDIC_80, "whole number"),
    (SUP2, "whole number"),
    ("8_645", "whole number"),
    ("0x21c5", "whole number"),
    ("8.6e3", "whole number"),
    ("8645.0", "whole number"),
    ("", "whole number"),
    (" ", "whole number"),
    ("eighty", "whole number"),
    (HUGE, "outside 1..65535"),
]
MINE_BAD = [SUP2, "0", "10001", "1.5", DEVANAGARI_1, "1_0", "", "-1", "0x1", HUGE]
WAIT_BAD = [
    ("abc", "--wait"),
    ("nan", "--wait"),
    ("inf", "--wait"),
    ("-1", "--wait"),
    ("1e3", "--wait"),
    (SUP2, "--wait"),
    ("86401", "at most 86400"),
    ("0.0001", "at most 3 decimal places"),
    ("1_0", "--wait"),
]
AMOUNT_BAD = [
    ("1e3", "not a non-negative decimal"),
    ("nan", "not a non-negative decimal"),
    ("inf", "not a non-negative decimal"),
    ("-1", "not a non-negative decimal"),
    (FULLWIDTH_1, "not a non-negative decimal"),
    (DEVANAGARI_1, "not a non-negative decimal"),
    ("1_000", "not a non-negative decimal"),
    ("0x10", "not a non-negative decimal"),
    ("", "not a non-negative decimal"),
    ("1.0000001", "at most 6 decimal places"),
    ("1.2.3", "not a non-negative decimal"),
    (HUGE, "too large"),
    ("0", "must be positive"),
]
SLOT_BAD = [ARABIC_INDIC_1200, "1_800", "-900", "9e9", "", "Next", HUGE]
EXPIRY_BAD = ["61", "-60", "1.5", "+-5", "+999999999", FULLWIDTH_60, "", "never"]


def q(text: str) -> str:
    return shlex.quote(text)


# fmt: off
ROWS = [
    # --- issue 12's findings, each as first seen ----------------------------------------
    row("key-is-directory", "balance --datadir @keyed --key @adir", "Is a directory"),
    row("datadir-is-file-init", "init --datadir @afile --dev", "is not a directory"),
    row("datadir-is-file-balance", "balance --datadir @afile", "Not a directory"),
    row("node-json-corrupt", "status --datadir @dd", "does not name the node's RPC URL",
        setup=runtime_files("{bad")),
    row("slot-superscript", f"order --datadir @keyed {ORDER} --slot {SUP2}", "--slot must be"),
    row("expiry-superscript", f"order --datadir @keyed {ORDER} --expiry {SUP2}", "--expiry must"),
    row("expiry-plus-superscript", f"order --datadir @keyed {ORDER} --expiry +{SUP2}",
        "--expiry must be"),
    row("init-missing-genesis-leaves-nothing", f"{INIT} --genesis @missing", "not found"),
    row("keygen-out-missing-folder", "keygen --out @missing/k.key", "does not exist"),
    row("init-rpc-port-above-65535", f"{INIT} --dev --rpc-port 70000",
        "--rpc-port: 70000 is outside 1..65535"),
    # Checked when the config loads: the node.failed line still ends node.log.
    row("config-rpc-port-above-65535", "run --datadir @dd",
        "config [rpc] port: expected an integer 0..65535, not 70000",
        setup=config_edit("port = ", "port = 70000 #"), proc=True, logged=True),
    row("config-log-level-unknown", "run --datadir @dd", "config [log] level",
        setup=config_edit('level = "info"', 'level = "loud"'), proc=True, logged=True),
    row("rpc-port-in-use", "run --datadir @dd", "Address already in use", setup=port_taken,
        proc=True, logged=True),
    row("p2p-port-in-use", "run --datadir @dd", "Address already in use",
        setup=p2p_port_taken, proc=True, logged=True),
    # An existing key: init refuses the dir and leaves it as it was (no node
    # ran there, so no node.log is written either).
    row("proc-init-over-existing-key", "init --datadir @keyed --dev", "is not empty", proc=True),
    row("wait-abc", f"{SEND} --wait abc", "--wait"),
    row("mine-abc", "mine abc --datadir @dd", "BLOCKS: expected a whole number"),
    # --- the same kinds, through the installed script -----------------------------------
    row("proc-key-is-directory", "balance --datadir @keyed --key @adir", "Is a directory",
        proc=True),
    row("proc-mine-abc", "mine abc --datadir @dd", "BLOCKS", proc=True),
    row("proc-wait-abc", f"{SEND} --wait abc", "--wait", proc=True),
    row("proc-slot-superscript", f"book --datadir @dd --slot {SUP2}", "--slot must", proc=True),
    row("proc-keygen-missing-folder", "keygen --out @missing/k.key", "does not exist", proc=True),
    row("proc-init-bad-genesis", f"{INIT} --genesis @g", "genesis block_time",
        setup=genesis_file(genesis_doc(block_time="x")), proc=True),
    row("proc-usage-unknown-option", "status --bogus", "unrecognized arguments", status=2,
        proc=True),
    # --- key files ----------------------------------------------------------------------
    row("key-missing", "balance --datadir @keyed --key @missing", "not found"),
    row("key-empty", "balance --datadir @keyed --key @empty", "hex private key"),
    row("key-binary", "balance --datadir @keyed --key @bin", "not a text file"),
    row("key-31-bytes", "balance --datadir @keyed --key @short", "hex private key"),
    row("key-spaced", "balance --datadir @keyed --key @spaced", "hex private key"),
    row("key-not-hex", "balance --datadir @keyed --key @afile", "hex private key"),
    row("key-dev-zero", "balance --datadir @keyed --key /dev/zero", "larger than"),
    row("key-dev-null", "balance --datadir @keyed --key /dev/null", "hex private key"),
    row("key-dir-transfer", f"{SEND} --key @adir", "Is a directory"),
    row("key-binary-order", f"order --datadir @keyed --key @bin {ORDER}", "not a text file"),
    row("key-empty-register", f"{REGISTER} --capacity-kw 1 --key @empty", "hex private key"),
    row("key-dir-cancel", f"{CANCEL} --key @adir", "Is a directory"),
    row("key-dir-orders", "orders --datadir @keyed --key @adir", "Is a directory"),
    row("key-missing-participant", "participant --datadir @keyed --key @missing", "not found"),
    row("node-key-missing", "balance --datadir @adir", "node.key not found"),
    # --- data dirs that are files, or missing -------------------------------------------
    row("datadir-file-status", "status --datadir @afile", "no running node"),
    row("datadir-file-run", "run --datadir @afile", "is not a directory"),
    row("datadir-file-stop", "stop --datadir @afile", "no running node"),
    row("datadir-file-transfer", f"transfer --datadir @afile --to {ADDR} --amount 1",
        "Not a directory"),
    row("datadir-under-file-init", "init --datadir @afile/sub --dev", "is not a directory"),
    row("datadir-missing-run", "run --datadir @missing", "not initialised"),
    row("datadir-missing-mine", "mine --datadir @missing", "no running node"),
    row("keygen-out-existing-file", "keygen --out @afile", "not overwriting"),
    row("keygen-out-directory", "keygen --out @adir", "not overwriting"),
    row("keygen-out-under-file", "keygen --out @afile/k.key", "is not a directory"),
    # --- node.json and .cookie as a dead or foreign node left them ----------------------
    row("node-json-empty", "status --datadir @dd", "does not name", setup=runtime_files("")),
    row("node-json-list", "status --datadir @dd", "does not name", setup=runtime_files("[]")),
    row("node-json-no-rpc", f"balance {ADDR} --datadir @dd", "does not name",
        setup=runtime_files('{"pid": 1}')),
    row("node-json-rpc-number", "mine --datadir @dd", "does not name",
        setup=runtime_files('{"rpc": 5}')),
    row("node-json-port-99999", "status --datadir @dd", "does not name",
        setup=runtime_files('{"rpc": "http://127.0.0.1:99999/rpc"}')),
    row("node-json-not-http", "book --datadir @dd", "does not name",
        setup=runtime_files('{"rpc": "ftp://127.0.0.1:21/"}')),
    row("node-json-deep", "stop --datadir @dd", "does not name",
        setup=runtime_files("[" * 50_000)),
    row("node-json-binary", "status --datadir @dd", "not a text file",
        setup=runtime_files(b"\xff\xfe")),
    row("node-json-directory", "status --datadir @dd", "Is a directory",
        setup=runtime_files(None)),
    row("cookie-directory", "stats --datadir @dd", "Is a directory",
        setup=runtime_files(rpc_at(1), cookie=None)),
    row("node-json-dead-port", "status --datadir @dd", "cannot reach node",
        setup=lambda tmp: runtime_files(rpc_at(free_port()))(tmp)),
    row("node-json-names-a-web-server", "status --datadir @dd", "did not answer JSON-RPC",
        setup=not_json_server),
    # --- ports at init ------------------------------------------------------------------
    *(row(f"rpc-port-{i}", f"{INIT} --dev --rpc-port {q(text)}", needle)
      for i, (text, needle) in enumerate(PORT_BAD)),
    row("p2p-port-70000", f"{INIT} --dev --p2p-port 70000", "--p2p-port: 70000 is outside"),
    row("p2p-port-superscript", f"{INIT} --dev --p2p-port {SUP2}", "--p2p-port"),
    row("p2p-port-negative", f"{INIT} --dev --p2p-port -5", "--p2p-port"),
    # --- mine N -------------------------------------------------------------------------
    *(row(f"mine-{i}", f"mine {q(text)} --datadir @dd", "BLOCKS")
      for i, text in enumerate(MINE_BAD)),
    # --- --wait -------------------------------------------------------------------------
    *(row(f"wait-transfer-{i}", f"{SEND} --wait {q(text)}", needle)
      for i, (text, needle) in enumerate(WAIT_BAD)),
    row("wait-register", f"{REGISTER} --capacity-kw 1 --wait nan", "--wait"),
    row("wait-order", f"order --datadir @keyed {ORDER} --wait inf", "--wait"),
    row("wait-cancel", f"{CANCEL} --wait -5", "--wait"),
    # --rpcwait-timeout names itself, not --wait
    row("rpcwait-timeout-neg", "status --datadir @dd --rpcwait-timeout -1", "--rpcwait-timeout"),
    row("rpcwait-timeout-big", "status --datadir @dd --rpcwait-timeout 86401", "--rpcwait-timeout"),
    # --rpcwait is a global option: backup (no node in @dd) waits too
    row("backup-rpcwait", "backup --datadir @dd --out x.db --rpcwait --rpcwait-timeout 0.5",
        "(waited 0.5 s with --rpcwait)"),
    # --- amounts, fees, energy, prices, capacity ----------------------------------------
    *(row(f"amount-{i}", f"transfer --datadir @keyed --to {ADDR} --amount {q(text)}", needle)
      for i, (text, needle) in enumerate(AMOUNT_BAD)),
    row("amount-names-its-option", f"transfer --datadir @keyed --to {ADDR} --amount 1e3",
        "--amount: not a non-negative decimal"),
    row("amount-zero-names-its-option", f"transfer --datadir @keyed --to {ADDR} --amount 0",
        "--amount must be positive"),
    row("fee-negative", f"{SEND} --fee -0.5", "--fee: not a non-negative"),
    row("fee-exponent", f"{CANCEL} --fee 1e-3", "--fee: not a non-negative"),
    row("energy-fullwidth", f"order --datadir @keyed --side buy --energy-kwh {FULLWIDTH_1} "
        "--price 1", "--energy-kwh: not a non-negative decimal number"),
    row("energy-too-fine", "order --datadir @keyed --side buy --energy-kwh 0.0001 --price 1",
        "at most 3 decimal places"),
    row("price-nan", "order --datadir @keyed --side buy --energy-kwh 1 --price nan",
        "--price: not a non-negative decimal number"),
    row("price-huge", f"order --datadir @keyed --side buy --energy-kwh 1 --price {HUGE}",
        "too large"),
    row("capacity-superscript", f"{REGISTER} --capacity-kw {SUP2}", "--capacity-kw"),
    row("capacity-zero", f"{REGISTER} --capacity-kw 0", "--capacity-kw must be 0.001.."),
    row("capacity-huge", f"{REGISTER} --capacity-kw 1000000001", "--capacity-kw must be 0.001.."),
    row("location-blank", "register --datadir @keyed --role producer --location ' ' "
        "--capacity-kw 1", "--location must be"),
    row("sell-without-source", "order --datadir @keyed --side sell --energy-kwh 1 --price 1",
        "needs --source"),
    # --- slots, expiries, heights, levels, limits ---------------------------------------
    *(row(f"slot-{i}", f"order --datadir @keyed {ORDER} --slot {q(text)}", "--slot must be")
      for i, text in enumerate(SLOT_BAD)),
    row("slot-book", "book --datadir @dd --slot soon", "--slot must be"),
    row("slot-trades", "trades --datadir @dd --product spot --slot 1.5", "--slot must be"),
    row("slot-stats", f"stats --datadir @dd --product spot --slot {FULLWIDTH_9}", "--slot must"),
    *(row(f"expiry-{i}", f"order --datadir @keyed {ORDER} --expiry {q(text)}", "--expiry must")
      for i, text in enumerate(EXPIRY_BAD)),
    row("levels-zero", "book --datadir @dd --levels 0", "--levels: 0 is outside"),
    row("levels-1001", "book --datadir @dd --levels 1001", "--levels"),
    row("levels-superscript", f"book --datadir @dd --levels {SUP2}", "--levels"),
    row("limit-zero", "trades --datadir @dd --limit 0", "--limit"),
    row("limit-arabic", f"trades --datadir @dd --limit {ARABIC_INDIC_80}", "--limit"),
    row("from-height-negative", "trades --datadir @dd --from-height -1", "--from-height"),
    row("to-height-superscript", f"trades --datadir @dd --to-height {SUP3}", "--to-height"),
    row("to-height-huge", f"trades --datadir @dd --to-height {'9' * 25}", "--to-height"),
    # --- addresses and ids --------------------------------------------------------------
    row("to-not-hex", "transfer --datadir @keyed --to xyz --amount 1", "--to: address is not hex"),
    row("to-19-bytes", f"transfer --datadir @keyed --to {'00' * 19} --amount 1",
        "--to: address must be 20 bytes"),
    row("balance-address-superscript", f"balance {SUP2 * 40} --datadir @keyed",
        "address is not hex"),
    row("participant-address-short", "participant 0x --datadir @keyed", "address must be"),
    row("trades-participant-bad", f"trades --datadir @dd --participant {'g' * 40}",
        "--participant: address is not hex"),
    # Checked before the node is looked for (@dd has none running).
    row("trades-slot-without-product", "trades --datadir @dd --slot 5", "--slot needs --product"),
    row("stats-slot-without-product", "stats --datadir @dd --slot 5", "--slot needs --product"),
    row("cancel-id-short", f"cancel {'00' * 31} --datadir @keyed", "ORDER_ID"),
    row("cancel-id-superscript", f"cancel {SUP2 * 64} --datadir @keyed", "ORDER_ID"),
    # Hex digits only: bytes.fromhex alone would take spaces between bytes.
    row("cancel-id-spaced", f"cancel '{' '.join(['ab'] * 32)}' --datadir @keyed", "ORDER_ID"),
    row("to-spaced", f"transfer --datadir @keyed --to '{' '.join(['ab'] * 20)}' --amount 1",
        "--to: address is not hex"),
    # --- devices, meter readings, certificates ------------------------------------------
    row("device-generation-source-none", f"{DEVREG} --source none", "names its --source"),
    row("device-generation-no-source",
        f"device register --datadir @keyed --kind both --capacity-kw 1 --location x "
        f"--carbon-intensity 0 --meter-pubkey {METER_PUB}", "names its --source"),
    row("device-consumption-solar",
        f"device register --datadir @keyed --kind consumption --source solar --capacity-kw 1 "
        f"--location x --carbon-intensity 0 --meter-pubkey {METER_PUB}", "no energy source"),
    row("device-capacity-zero", f"{DEVREG} --capacity-kw 0", "--capacity-kw must be"),
    row("device-capacity-nan", f"{DEVREG} --capacity-kw nan", "--capacity-kw"),
    row("device-capacity-huge", f"{DEVREG} --capacity-kw 1000000001", "--capacity-kw must be"),
    row("device-carbon-negative", f"{DEVREG} --carbon-intensity -1", "--carbon-intensity"),
    row("device-carbon-decimal", f"{DEVREG} --carbon-intensity 1.5", "--carbon-intensity"),
    row("device-carbon-too-high", f"{DEVREG} --carbon-intensity 100001",
        "--carbon-intensity: 100001 is outside"),
    row("device-carbon-superscript", f"{DEVREG} --carbon-intensity {SUP2}", "--carbon-intensity"),
    row("device-location-blank", f"{DEVREG} --location ' '", "--location must be 1..64"),
    row("device-location-long", f"{DEVREG} --location {'x' * 65}", "--location must be 1..64"),
    row("device-meter-pubkey-short", f"{DEVICE} --meter-pubkey abcd", "--meter-pubkey must be"),
    row("device-meter-pubkey-not-hex", f"{DEVICE} --meter-pubkey {'zz' * 32}",
        "--meter-pubkey must be"),
    row("device-meter-pubkey-not-canonical", f"{DEVICE} --meter-pubkey {'ff' * 32}",
        "--meter-pubkey must be"),
    row("device-meter-key-missing", f"{DEVICE} --meter-key @missing", "not found"),
    row("device-meter-key-directory", f"{DEVICE} --meter-key @adir", "Is a directory"),
    row("device-meter-key-binary", f"{DEVICE} --meter-key @bin", "not a text file"),
    row("device-meter-key-short", f"{DEVICE} --meter-key @short", "hex private key"),
    row("device-key-directory", f"{DEVREG} --key @adir", "Is a directory"),
    row("device-fee-negative", f"{DEVREG} --fee -1", "--fee: not a non-negative"),
    row("device-wait-nan", f"{DEVREG} --wait nan", "--wait"),
    row("device-approve-id-short", "device approve abcd --datadir @keyed", "DEVICE_ID"),
    row("device-approve-id-superscript", f"device approve {SUP2 * 64} --datadir @keyed",
        "DEVICE_ID"),
    row("device-retire-id-not-hex", f"device retire {'zz' * 32} --datadir @keyed", "DEVICE_ID"),
    row("device-retire-key-missing", f"device retire {ID} --datadir @keyed --key @missing",
        "not found"),
    row("device-get-id-long", f"device get {'ab' * 33} --datadir @keyed", "DEVICE_ID"),
    row("device-list-owner-bad", "device list --datadir @keyed --owner xyz",
        "--owner: address is not hex"),
    row("meter-batch-fee-negative", "meter batch --datadir @keyed --file @afile --fee -1",
        "--fee: not a non-negative"),
    row("meter-sign-interval-word", f"{SIGN} --interval soon --meter-key @keyed/node.key",
        "--interval"),
    row("meter-sign-produced-nan", f"{SIGN} --produced nan --meter-key @keyed/node.key",
        "--produced (kWh)"),
    row("meter-sign-nothing", f"{SIGN} --produced 0 --meter-key @keyed/node.key",
        "needs --produced or --consumed"),
    row("meter-sign-key-missing", f"{SIGN} --meter-key @missing", "not found"),
    row("meter-sign-key-binary", f"{SIGN} --meter-key @bin", "not a text file"),
    row("meter-sign-device-short", "meter sign --device abcd --interval 900 --produced 1 "
        "--chain-id c --meter-key @keyed/node.key", "DEVICE_ID"),
    row("meter-interval-word", f"{REPORT} --interval soon --meter-key @keyed/node.key",
        "--interval must be"),
    row("meter-interval-decimal", f"{REPORT} --interval 1.5 --meter-key @keyed/node.key",
        "--interval must be"),
    row("meter-interval-superscript", f"{REPORT} --interval {SUP2} --meter-key @keyed/node.key",
        "--interval must be"),
    row("meter-interval-negative", f"{REPORT} --interval -900 --meter-key @keyed/node.key",
        "--interval must be"),
    row("meter-produced-nan", f"{REPORT} --produced nan --meter-key @keyed/node.key",
        "--produced (kWh)"),
    row("meter-produced-huge", f"{REPORT} --produced 99999999999999999999999 --meter-key @keyed/node.key",
        "at most"),
    row("meter-produced-too-fine", f"{REPORT} --produced 0.0001 --meter-key @keyed/node.key",
        "at most 3 decimal places"),
    row("meter-consumed-negative", f"{REPORT} --consumed -1 --meter-key @keyed/node.key",
        "--consumed (kWh)"),
    row("meter-nothing-metered", f"{REPORT} --produced 0 --meter-key @keyed/node.key",
        "needs --produced or --consumed"),
    row("meter-key-missing", f"{REPORT} --meter-key @missing", "not found"),
    row("meter-key-dev-zero", f"{REPORT} --meter-key /dev/zero", "larger than"),
    row("meter-key-empty", f"{REPORT} --meter-key @empty", "hex private key"),
    row("meter-device-bad", "meter report --datadir @keyed --device 12 --interval last "
        "--produced 1 --meter-key @keyed/node.key", "DEVICE_ID"),
    row("meter-readings-start-bad", f"meter readings --datadir @keyed --device {ID} --start x",
        "--start"),
    row("meter-readings-device-bad", "meter readings --datadir @keyed --device xyz", "DEVICE_ID"),
    # cert proof's --out is checked before the node is asked (none runs here).
    row("cert-proof-out-directory", f"cert proof {ID} --datadir @dd --out @adir",
        "is a directory; give a file name"),
    row("cert-proof-out-no-folder", f"cert proof {ID} --datadir @dd --out @missing/x.proof",
        "does not exist"),
    row("cert-proof-out-exists", f"cert proof {ID} --datadir @dd --out @afile",
        "exists; give --force"),
    row("cert-proof-out-empty", f"cert proof {ID} --datadir @dd --out=", "--out: give a file"),
    row("cert-issue-zero", f"cert issue --datadir @keyed --device {ID} --interval last "
        "--energy-kwh 0", "--energy-kwh must be positive"),
    row("cert-issue-interval-bad", f"cert issue --datadir @keyed --device {ID} --interval "
        f"{FULLWIDTH_9} --energy-kwh 1", "--interval must be"),
    row("cert-transfer-to-bad", f"cert transfer {ID} --datadir @keyed --to xyz --energy-kwh 1",
        "--to: address is not hex"),
    row("cert-transfer-id-short", f"cert transfer abc --datadir @keyed --to {ADDR} "
        "--energy-kwh 1", "CERT_ID"),
    row("cert-transfer-kwh-exponent", f"cert transfer {ID} --datadir @keyed --to {ADDR} "
        "--energy-kwh 1e3", "--energy-kwh (kWh)"),
    row("cert-transfer-key-binary", f"cert transfer {ID} --datadir @keyed --to {ADDR} "
        "--energy-kwh 1 --key @bin", "not a text file"),
    row("cert-retire-beneficiary-blank", f"cert retire {ID} --datadir @keyed --energy-kwh 1 "
        "--beneficiary ' '", "--beneficiary must be 1..128"),
    row("cert-retire-purpose-long", f"{RETIRE} --purpose {'p' * 257}",
        "--purpose must be 0..256"),
    row("cert-retire-period-half", f"{RETIRE} --period-start 900", "give both"),
    row("cert-retire-period-reversed", f"{RETIRE} --period-start 1800 --period-end 900",
        "--period-start must be before"),
    row("cert-retire-wait-inf", f"{RETIRE} --wait inf", "--wait"),
    row("cert-list-range-reversed", "cert list --datadir @keyed --start 1800 --end 900",
        "--start must not be after"),
    row("cert-list-device-bad", "cert list --datadir @keyed --device 00", "DEVICE_ID"),
    row("cert-get-id-bad", f"cert get {'g' * 64} --datadir @keyed", "CERT_ID"),
    row("cert-trace-id-bad", "cert trace 0x --datadir @keyed", "CERT_ID"),
    row("cert-verify-id-superscript", f"cert verify {SUP3 * 64} --datadir @keyed", "CERT_ID"),
    row("cert-cfe-range-empty", "cert cfe --datadir @keyed --start 900 --end 900",
        "--start must be before --end"),
    row("cert-cfe-participant-bad", "cert cfe --datadir @keyed --participant 12 --start 0 "
        "--end 900", "--participant: address must be 20 bytes"),
    row("cert-cfe-end-arabic", f"cert cfe --datadir @keyed --start 0 --end {ARABIC_INDIC_1200}",
        "--end"),
    row("cert-cfe-key-directory", "cert cfe --datadir @keyed --start 0 --end 900 --key @adir",
        "Is a directory"),
    row("proc-device-approve-id", "device approve abcd --datadir @keyed", "DEVICE_ID", proc=True),
    row("proc-meter-interval", f"{REPORT} --interval soon --meter-key @keyed/node.key",
        "--interval must be", proc=True),
    row("proc-cert-get-id", "cert get 12 --datadir @keyed", "CERT_ID", proc=True),
    row("usage-device-no-action", "device", "required", status=2),
    row("usage-device-bad-kind", f"{DEVREG} --kind storage", "invalid choice", status=2),
    row("usage-device-two-meter-keys", f"{DEVREG} --meter-key @afile", "not allowed with",
        status=2),
    row("usage-device-list-status", "device list --status open", "invalid choice", status=2),
    row("usage-meter-no-meter-key", f"meter report --device {ID} --interval last --produced 1",
        "--meter-key", status=2),
    row("usage-cert-list-source-none", "cert list --source none", "invalid choice", status=2),
    row("usage-cert-cfe-no-start", "cert cfe --end 900", "--start", status=2),
    # --- ppa and contract -----------------------------------------------------------------
    row("ppa-propose-buyer-bad", PROPOSE.replace(ADDR, "xyz"), "--buyer: address is not hex"),
    row("ppa-propose-share-alone", f"{PROPOSE} --share 50", "--device and --share go together"),
    row("ppa-propose-device-alone", f"{PROPOSE} --device {ID}", "--device and --share"),
    row("ppa-propose-share-zero", f"{PROPOSE} --device {ID} --share 0", "0.01..100 percent"),
    row("ppa-propose-share-over", f"{PROPOSE} --device {ID} --share 100.01", "0.01..100"),
    row("ppa-propose-share-fine", f"{PROPOSE} --device {ID} --share 1.005",
        "at most 2 decimal places"),
    row("ppa-propose-share-fullwidth", f"{PROPOSE} --device {ID} --share {FULLWIDTH_1}",
        "--share (percent)"),
    row("ppa-propose-device-bad", f"{PROPOSE} --device 12 --share 5", "--device"),
    row("ppa-propose-total-zero", PROPOSE.replace("--total-kwh 1", "--total-kwh 0"),
        "--total-kwh must be positive"),
    row("ppa-propose-total-fine", PROPOSE.replace("--total-kwh 1", "--total-kwh 0.0001"),
        "at most 3 decimal places"),
    row("ppa-propose-price-zero", PROPOSE.replace("--price 0.5", "--price 0"),
        "--price must be positive"),
    row("ppa-propose-price-exponent", PROPOSE.replace("--price 0.5", "--price 1e3"),
        "error: --price: not a non-negative decimal"),
    row("ppa-propose-days-zero", PROPOSE.replace("--days 1", "--days 0"), "--days"),
    row("ppa-propose-days-huge", PROPOSE.replace("--days 1", f"--days {HUGE}"), "--days"),
    row("ppa-propose-start-bad", f"{PROPOSE} --start soon", "--start must be a unix time"),
    row("ppa-propose-start-minus", f"{PROPOSE} --start +-5", "--start must be a unix time"),
    # now is a start, never a deadline after now: refused before the node is asked
    row("ppa-propose-accept-by-now", f"{PROPOSE} --accept-by now",
        "--accept-by must be a unix time or +SECONDS"),
    row("contract-expiry-now", f"{CREATE.replace('--expiry +60', '--expiry now')} --terms @g",
        "--expiry must be a unix time or +SECONDS"),
    row("ppa-propose-accept-by-arabic", f"{PROPOSE} --accept-by {ARABIC_INDIC_1200}",
        "--accept-by"),
    row("ppa-propose-period-short", f"{PROPOSE} --period 59", "--period"),
    row("ppa-propose-wait-nan", f"{PROPOSE} --wait nan", "--wait"),
    row("ppa-accept-id-bad", "ppa accept abc --datadir @keyed", "PPA_ID"),
    row("ppa-reject-id-superscript", f"ppa reject {SUP3 * 64} --datadir @keyed", "PPA_ID"),
    row("ppa-terminate-key-directory", f"ppa terminate {ID} --datadir @keyed --key @adir",
        "Is a directory"),
    row("ppa-fund-amount-zero", f"ppa fund {ID} --datadir @keyed --amount 0",
        "--amount must be positive"),
    row("ppa-fund-amount-fine", f"ppa fund {ID} --datadir @keyed --amount 1.0000001",
        "at most 6 decimal places"),
    row("ppa-deliver-kwh-negative", f"ppa deliver {ID} --datadir @keyed --energy-kwh -1 "
        "--interval 900", "--energy-kwh (kWh)"),
    row("ppa-deliver-interval-bad", f"ppa deliver {ID} --datadir @keyed --energy-kwh 1 "
        "--interval x", "--interval"),
    row("ppa-confirm-delivery-negative", f"ppa confirm {ID} --datadir @keyed --delivery -1",
        "--delivery"),
    row("ppa-show-id-bad", f"ppa show {'g' * 64} --datadir @keyed", "PPA_ID"),
    row("ppa-list-party-bad", "ppa list --datadir @keyed --party 12",
        "--party: address must be 20 bytes"),
    row("contract-terms-missing", f"{CREATE} --terms @missing", "not found"),
    row("contract-terms-directory", f"{CREATE} --terms @adir", "Is a directory"),
    row("contract-terms-binary", f"{CREATE} --terms @bin", "not valid JSON"),
    row("contract-terms-empty", f"{CREATE} --terms @empty", "not valid JSON"),
    row("contract-terms-dev-zero", f"{CREATE} --terms /dev/zero", "larger than"),
    row("contract-terms-list", f"{CREATE} --terms @g", "expected an object",
        setup=terms([1])),
    row("contract-terms-extra-key", f"{CREATE} --terms @g", "expected an object",
        setup=terms({"actions": [["refund"]], "code": "x"})),
    row("contract-terms-no-actions", f"{CREATE} --terms @g", "at least one action",
        setup=terms({"actions": []})),
    row("contract-terms-actions-left-out", f"{CREATE} --terms @g", "at least one action",
        setup=terms({"conditions": [["after", 1]]})),
    row("contract-terms-unknown-action", f"{CREATE} --terms @g", "unknown action 'burn'",
        setup=terms({"actions": [["burn"]]})),
    row("contract-terms-unknown-condition", f"{CREATE} --terms @g",
        "unknown condition 'eval'", setup=terms({"conditions": [["eval", "1"]],
                                                  "actions": [["refund"]]})),
    row("contract-terms-arity", f"{CREATE} --terms @g", "pay takes 2 values",
        setup=terms({"actions": [["pay", ADDR]]})),
    row("contract-terms-not-tagged", f"{CREATE} --terms @g", "actions[0]: expected",
        setup=terms({"actions": [{"pay": ADDR}]})),
    row("contract-terms-device-bad", f"{CREATE} --terms @g", "conditions[0]: the device id",
        setup=terms({"conditions": [["produced_at_least", "12", 0, 900, 1]],
                     "actions": [["refund"]]})),
    row("contract-terms-time-negative", f"{CREATE} --terms @g", "expected a whole number",
        setup=terms({"conditions": [["after", -1]], "actions": [["refund"]]})),
    row("contract-terms-amount-float", f"{CREATE} --terms @g", "expected micro-units",
        setup=terms({"actions": [["pay", ADDR, 1.5]]})),
    # Bounds the chain holds too, found here with the term they are in.
    row("contract-terms-time-past-64-bits", f"{CREATE} --terms @g",
        "conditions[0]: expected a whole number 0..2^64-1",
        setup=terms({"conditions": [["after", 2**64]], "actions": [["refund"]]})),
    row("contract-terms-amount-past-cap", f"{CREATE} --terms @g", "actions[0]: expected micro-units",
        setup=terms({"actions": [["pay", ADDR, 10**18 + 1]]})),
    row("contract-terms-units-past-cap", f"{CREATE} --terms @g", "above the supply cap",
        setup=terms({"actions": [["pay", ADDR, "1000000000001"]]})),
    row("contract-escrow-past-cap", CREATE.replace("--escrow 1", "--escrow 1000000000001"),
        "--escrow is above the supply cap"),
    row("contract-terms-amount-text", f"{CREATE} --terms @g", "not a non-negative decimal",
        setup=terms({"actions": [["pay", ADDR, "lots"]]})),
    row("contract-terms-address-bad", f"{CREATE} --terms @g", "actions[0]: address",
        setup=terms({"actions": [["pay", "00", 1]]})),
    row("contract-terms-too-many", f"{CREATE} --terms @g", "at most 16",
        setup=terms({"conditions": [["after", 1]] * 17, "actions": [["refund"]]})),
    row("contract-escrow-zero", "contract create --datadir @keyed --terms @g --escrow 0 "
        "--expiry +60", "--escrow must be positive"),
    row("contract-expiry-never", "contract create --datadir @keyed --terms @g --escrow 1 "
        "--expiry never", "--expiry must be"),
    row("contract-party-bad", f"{CREATE} --terms @g --party xyz", "--party"),
    # The typed options before the terms file is read (it does not exist here).
    row("contract-fee-before-terms", f"{CREATE} --terms @missing --fee nan", "fee:"),
    row("contract-execute-id-bad", "contract execute 12 --datadir @keyed", "CONTRACT_ID"),
    row("contract-show-id-short", f"contract show {ID[:62]} --datadir @keyed", "CONTRACT_ID"),
    row("contract-list-party-bad", "contract list --datadir @keyed --party z", "--party"),
    row("proc-ppa-show-id", "ppa show 12 --datadir @keyed", "PPA_ID", proc=True),
    row("proc-contract-terms-binary", f"{CREATE} --terms @bin", "not valid JSON", proc=True),
    row("usage-ppa-no-action", "ppa", "required", status=2),
    row("usage-ppa-list-status", "ppa list --status done", "invalid choice", status=2),
    row("usage-ppa-propose-no-buyer", "ppa propose --total-kwh 1 --price 1 --days 1",
        "--buyer", status=2),
    row("usage-contract-create-no-terms", "contract create --escrow 1 --expiry +60", "--terms",
        status=2),
    row("usage-contract-list-status", "contract list --status done", "invalid choice",
        status=2),
    # --- init ---------------------------------------------------------------------------
    row("init-no-chain", INIT, "give --dev"),
    row("init-again", f"{INIT} --dev", "already initialised", setup=initialised()),
    row("init-over-leftover-key", "init --datadir @keyed --dev", "is not empty"),
    row("init-genesis-directory", f"{INIT} --genesis @adir", "Is a directory"),
    row("init-genesis-binary", f"{INIT} --genesis @bin", "not valid JSON"),
    row("init-genesis-empty", f"{INIT} --genesis @empty", "not valid JSON"),
    row("init-genesis-dev-null", f"{INIT} --genesis /dev/null", "not valid JSON"),
    row("init-genesis-dev-zero", f"{INIT} --genesis /dev/zero", "larger than"),
    row("init-genesis-float", f"{INIT} --genesis @g", "floats are not allowed",
        setup=genesis_file(b'{"block_time": 2.5}')),
    row("init-genesis-unknown-key", f"{INIT} --genesis @g", "unknown keys ['bogus']",
        setup=genesis_file(genesis_doc(bogus=1))),
    row("init-genesis-bad-allocation", "init --datadir @missing/a/b --genesis @g",
        "genesis allocation", setup=genesis_file(genesis_doc(allocations={"zz": 1}))),
    row("init-genesis-bad-market", f"{INIT} --genesis @g", "genesis markets.spot",
        setup=genesis_file(genesis_doc(markets={"spot": {"slot_seconds": -1}}))),
    row("init-genesis-not-object", f"{INIT} --genesis @g", "genesis",
        setup=genesis_file(b"[1, 2]")),
    row("init-dev-and-genesis", f"{INIT} --dev --genesis @afile", "not allowed with", status=2),
    # --- config values and start-up: `run` ----------------------------------------------
    row("config-unknown-key", "run --datadir @dd", "bogus",
        setup=config_append("\nbogus = 1\n"), proc=True, logged=True),
    row("config-toml-syntax", "run --datadir @dd", "config.toml", setup=config_append("\n[rpc\n"),
        proc=True, logged=True),
    row("config-log-format", "run --datadir @dd", "config [log] format",
        setup=config_edit('format = "text"', 'format = "xml"'), proc=True, logged=True),
    row("config-cpu-percent", "run --datadir @dd", "cpu_percent",
        setup=config_edit("cpu_percent = 100", "cpu_percent = 0"), proc=True, logged=True),
    row("config-verify-processes", "run --datadir @dd", "verify_processes",
        setup=config_edit("verify_processes = 2", "verify_processes = 0"),
        proc=True, logged=True),
    row("config-port-string", "run --datadir @dd", "config [rpc] port",
        setup=config_edit("port = ", 'port = "x" #'), proc=True, logged=True),
    row("config-mining-enabled-string", "run --datadir @dd", "config [mining] enabled",
        setup=config_edit("enabled = false", 'enabled = "yes"'), proc=True, logged=True),
    row("config-directory", "run --datadir @dd", "Is a directory",
        setup=replace_file("config.toml", None), proc=True, logged=True),
    row("config-binary", "run --datadir @dd", "not UTF-8",
        setup=replace_file("config.toml", b"\xff\xfe"), proc=True, logged=True),
    row("config-genesis-number", "run --datadir @dd", "config genesis",
        setup=config_edit('genesis = "genesis.json"', "genesis = 5"), proc=True, logged=True),
    row("run-genesis-missing", "run --datadir @dd", "genesis file",
        setup=config_edit('genesis = "genesis.json"', 'genesis = "nope.json"'),
        proc=True, logged=True),
    row("run-genesis-bad-key", "run --datadir @dd", "genesis block_time",
        setup=replace_file("genesis.json", genesis_doc(block_time=0)), proc=True, logged=True),
    row("run-genesis-directory", "run --datadir @dd", "Is a directory",
        setup=replace_file("genesis.json", None), proc=True, logged=True),
    row("run-node-key-garbage", "run --datadir @dd", "node.key is not a hex key",
        setup=replace_file("node.key", b"zz\n"), proc=True, logged=True),
    row("run-mining-address", "run --datadir @dd", "config [mining] address: address is not hex",
        setup=config_edit('address = ""', 'address = "xyz"'), proc=True, logged=True),
    row("run-p2p-port-above-65535", "run --datadir @dd",
        "config [p2p] port: expected an integer 0..65535, not 70000",
        setup=p2p_port_70000, proc=True, logged=True),
    row("config-peer-not-host-port", "run --datadir @dd", "config [p2p] peers: 'nowhere'",
        setup=config_edit("peers = []", 'peers = ["nowhere"]'), proc=True, logged=True),
    row("config-refresh-zero", "run --datadir @dd", "config [mining] refresh",
        setup=config_edit("refresh = 2", "refresh = 0"), proc=True, logged=True),
    row("config-mempool-bytes-zero", "run --datadir @dd", "config [mempool] max_bytes",
        setup=config_edit("max_bytes = 67108864", "max_bytes = 0"), proc=True, logged=True),
    row("run-node-log-directory", "run --datadir @dd", "node.log: cannot write",
        setup=initialised(lambda d: (d / "node.log").mkdir()), proc=True),
    row("restore-from-missing", "restore --from @missing --datadir @dd --force", "not found",
        setup=initialised()),
    row("restore-from-directory", "restore --from @adir --datadir @dd --force", "is not a file",
        setup=initialised()),
    row("run-second-node", "run --datadir @dd", "already runs", setup=locked, proc=True),
    # --- usage errors: argparse's, exit 2 -----------------------------------------------
    row("usage-no-command", "", "required", status=2),
    row("usage-unknown-command", "frobnicate", "invalid choice", status=2),
    row("usage-missing-to", "transfer --amount 1", "--to", status=2),
    row("usage-bad-side", "order --side both --energy-kwh 1 --price 1", "invalid choice",
        status=2),
    # --- against a running dev node -----------------------------------------------------
    row("node-slot-not-multiple", f"order --datadir @node {ORDER} --slot 901", "not a multiple"),
    row("node-energy-out-of-range",
        "order --datadir @node --side buy --energy-kwh 999999999 --price 1", "outside"),
    row("node-stats-slot-not-multiple", "stats --datadir @node --product spot --slot 901",
        "not a multiple"),
    row("node-trades-slot-without-product", "trades --datadir @node --slot next",
        "--slot needs --product"),
    row("node-trades-heights-reversed", "trades --datadir @node --from-height 5 --to-height 1",
        "--from-height must not be above --to-height"),
    row("meter-readings-reversed", f"meter readings --device {ID} --datadir @dd --start 10 "
        "--end 5", "--start must not be after --end"),
    row("order-expiry-plus-zero", "order --datadir @dd --side buy --energy-kwh 1 --price 1 "
        "--slot next --expiry +0", "(+1 to +527040), not '+0'"),
    row("node-device-get-unknown", f"device get {ID} --datadir @node", "unknown_device"),
    row("node-meter-readings-unknown", f"meter readings --device {ID} --datadir @node",
        "unknown_device"),
    row("node-device-approve-unknown", f"device approve {ID} --datadir @node", "unknown_device"),
    row("node-cert-get-unknown", f"cert get {ID} --datadir @node", "unknown_cert"),
    row("node-meter-batch-file-missing", "meter batch --datadir @node --file @missing",
        "not found"),
    row("node-meter-batch-file-directory", "meter batch --datadir @node --file @adir",
        "Is a directory"),
    row("node-meter-batch-file-binary", "meter batch --datadir @node --file @bin",
        "not a text file"),
    row("node-meter-batch-file-not-json", "meter batch --datadir @node --file @afile",
        "line 1: not a JSON object"),
    row("node-meter-batch-file-empty", "meter batch --datadir @node --file @empty",
        "no readings"),
    row("node-cert-trace-unknown", f"cert trace {ID} --datadir @node", "unknown_cert"),
    row("node-cert-transfer-unknown", f"cert transfer {ID} --datadir @node --to {ADDR} "
        "--energy-kwh 1", "unknown_cert"),
    row("node-cert-retire-unknown", f"cert retire {ID} --datadir @node --energy-kwh 1 "
        "--beneficiary b", "unknown_cert"),
    row("node-ppa-show-unknown", f"ppa show {ID} --datadir @node", "unknown_ppa"),
    row("node-ppa-accept-unknown", f"ppa accept {ID} --datadir @node", "unknown_ppa"),
    row("node-ppa-fund-unknown", f"ppa fund {ID} --datadir @node --amount 1", "unknown_ppa"),
    row("node-contract-show-unknown", f"contract show {ID} --datadir @node", "unknown_contract"),
    row("node-contract-execute-unknown", f"contract execute {ID} --datadir @node",
        "unknown_contract"),
    row("node-meter-interval-off-grid", f"meter report --datadir @node --device {ID} "
        "--interval 901 --produced 1 --meter-key @keyed/node.key", "not a multiple of the 900 s"),
    row("node-device-register-not-participant", "device register --datadir @node --kind "
        "generation --source solar --capacity-kw 1 --location x --carbon-intensity 0 "
        f"--meter-pubkey {METER_PUB}", "not_registered"),
    row("node-transfer-more-than-funds",
        f"transfer --datadir @node --to {ADDR} --amount 999999999", "insufficient"),
]
# fmt: on


# --- running a row --------------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One dev node (no mining) for the rows that need a node's answers."""
    d = tmp_path_factory.mktemp("cli-bad-inputs") / "node"
    subprocess.run(
        [str(POWERNODE), "init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port())],
        check=True,
        capture_output=True,
    )
    with ProcessNode(d) as node:
        node.start()
        yield d


def expand(arg: str, where: dict[str, str]) -> str:
    if not arg.startswith("@"):
        return arg
    name, sep, rest = arg[1:].partition("/")
    return where[name] + sep + rest


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root``, with a file's bytes (None for a directory);
    but ``node.lock``, which ``run`` takes before anything can fail, and
    which stays (the README's "Data dir")."""
    out: dict[str, bytes | None] = {}
    for p in sorted(root.rglob("*")):
        if p.name == "node.lock":
            continue
        rel = str(p.relative_to(root))
        out[rel] = None if p.is_dir() else p.read_bytes()
    return out


@pytest.mark.parametrize("case", ROWS)
def test_bad_input_is_one_line(
    case: Row, tmp_path: Path, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest
) -> None:
    node = request.getfixturevalue("dev_node") if "@node" in case.argv else None
    where = paths(tmp_path, node)
    if case.setup is not None:
        case.setup(tmp_path)
    argv = [expand(a, where) for a in case.argv]
    capsys.readouterr()  # what a setup's own init printed
    before = snapshot(tmp_path)

    if case.proc:
        r = subprocess.run(
            [str(POWERNODE), *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        status, out, err = r.returncode, r.stdout, r.stderr
    else:
        try:
            status = main(argv)
        except SystemExit as exc:  # argparse's usage errors
            status = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()

    assert "Traceback" not in err, err
    assert status == case.status, f"exit {status}\nstdout: {out}\nstderr: {err}"
    assert out == ""
    lines = err.splitlines()
    command = argv[0] if argv else ""
    prefix = f"powernode {command}: error: " if argv else "powernode: error: "
    assert lines, "nothing on stderr"
    assert case.needle in lines[-1], err
    if case.status == 2:
        # argparse names the subcommand (with its group: "cert cfe"), or
        # not (unrecognized arguments are the top-level parser's to report).
        assert lines[0].startswith("usage: powernode"), err
        assert re.match(r"powernode( [a-z]+){0,2}: error: ", lines[-1]), err
        return
    assert lines[-1].startswith(prefix), err
    if case.logged:
        # The node's own log lines while it started and stopped, then the one
        # error line, which node.log ends with too.
        assert all(LOG_LINE.match(line) for line in lines[:-1]), err
        message = lines[-1].removeprefix(prefix)
        last = (tmp_path / "dd" / "node.log").read_text().splitlines()[-1]
        assert f" ERROR   node node.failed error={render_value(message)}" in last, last
    else:
        assert len(lines) == 1, err
        # Nothing created, removed or changed: init in particular leaves
        # nothing behind when it refuses.
        assert snapshot(tmp_path) == before


def test_table_size() -> None:
    assert len(ROWS) >= 100


# --- init: completes, or leaves nothing behind ------------------------------------------


@pytest.mark.parametrize(
    ("failure", "status", "needle"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), 1, "No space left on device"),
        (KeyboardInterrupt(), 130, ""),
    ],
    ids=["disk-full", "ctrl-c"],
)
def test_init_failing_midway_leaves_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    failure: BaseException,
    status: int,
    needle: str,
) -> None:
    """The last file of init fails to be written, after the key and genesis
    were: neither they, nor the temporary dir, nor the parents made for the
    data dir remain."""

    def fail(**_: object) -> str:
        raise failure

    monkeypatch.setattr(cli_node, "render_config", fail)
    (tmp_path / "keep").write_text("untouched")
    before = snapshot(tmp_path)
    assert main(["init", "--datadir", str(tmp_path / "a" / "b" / "node"), "--dev"]) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if needle:
        assert err.count("\n") == 1 and err.startswith("powernode init: error: ") and needle in err
    assert snapshot(tmp_path) == before


def test_init_fills_an_empty_dir_through_a_symlink(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty directory is a new data dir (filled from inside); a symlink
    to it stays a symlink, and no temporary dir is left beside it."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert main(["init", "--datadir", str(tmp_path / "link"), "--dev", "--rpc-port", "18645"]) == 0
    assert "initialised" in capsys.readouterr().out
    assert (tmp_path / "link").is_symlink()
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == [
        "config.toml",
        "genesis.json",
        "node.key",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "real"]
    assert (tmp_path / "real" / "node.key").stat().st_mode & 0o777 == 0o600
    assert "port = 18645" in (tmp_path / "real" / "config.toml").read_text()


def test_init_fills_an_existing_empty_dir_from_inside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An existing empty data dir (made for a service user, under a parent
    that user may not write) is filled from inside: nothing is made beside
    it, and it ends mode 0700."""
    d = tmp_path / "var" / "powernode"
    d.mkdir(parents=True, mode=0o755)
    made_in: list[str] = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(**kw: Any) -> str:
        made_in.append(str(kw["dir"]))
        if Path(kw["dir"]) == d.parent:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_mkdtemp(**kw)

    monkeypatch.setattr(cli_node.tempfile, "mkdtemp", mkdtemp)
    assert main(["init", "--datadir", str(d), "--dev"]) == 0
    assert "initialised" in capsys.readouterr().out
    assert made_in == [str(d)]
    assert sorted(p.name for p in d.iterdir()) == ["config.toml", "genesis.json", "node.key"]
    assert d.stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in d.parent.iterdir()) == ["powernode"]


def test_init_begins_again_where_a_killed_init_left_its_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A kill while init filled an existing empty dir leaves its hidden
    build dir, and perhaps the files it had moved in: a new init clears
    them and starts over. Anything else there still makes the dir not empty."""
    d = tmp_path / "node"
    (d / ".init-x1y2").mkdir(parents=True)
    (d / ".init-x1y2" / "config.toml").write_text("half")
    (d / "node.key").write_text("moved in before the kill")
    assert main(["init", "--datadir", str(d), "--dev"]) == 0
    assert "initialised" in capsys.readouterr().out
    assert sorted(p.name for p in d.iterdir()) == ["config.toml", "genesis.json", "node.key"]
    assert "moved in" not in (d / "node.key").read_text()
    other = tmp_path / "other"
    (other / ".init-a").mkdir(parents=True)
    (other / "notes.txt").write_text("mine")
    assert main(["init", "--datadir", str(other), "--dev"]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert (other / "notes.txt").read_text() == "mine"


def test_init_failing_inside_an_existing_dir_leaves_it_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "node"
    d.mkdir()
    real_rename = os.rename

    def rename(src: Any, dst: Any) -> None:
        if Path(dst).name == "config.toml":  # the last to move
            raise OSError(errno.ENOSPC, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(cli_node.os, "rename", rename)
    assert main(["init", "--datadir", str(d), "--dev"]) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert list(d.iterdir()) == []


def test_init_genesis_copies_the_file_it_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    raw = genesis_doc()
    (tmp_path / "g.json").write_bytes(raw)
    d = tmp_path / "n"
    assert main(["init", "--datadir", str(d), "--genesis", str(tmp_path / "g.json")]) == 0
    assert (d / "genesis.json").read_bytes() == raw
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("argv", "attr", "value"),
    [
        (["mine", "0010"], "blocks", 10),
        (["book", "--levels", " 7 "], "levels", 7),
        (["init", "--rpc-port", "65535"], "rpc_port", 65535),
        (["transfer", "--to", ADDR, "--amount", "1", "--wait", "0.5"], "wait", 0.5),
        (["book", "--slot", "1800"], "slot", 1800),
        (
            ["order", "--side", "buy", "--energy-kwh", "1", "--price", "1", "--expiry", "120"],
            "expiry",
            120,
        ),
    ],
)
def test_good_numbers_still_parse(argv: list[str], attr: str, value: object) -> None:
    assert getattr(build_parser().parse_args(argv), attr) == value
