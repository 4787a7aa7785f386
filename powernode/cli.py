"""The ``powernode`` command.

User mistakes (bad arguments, no node running, a rejected tx) print one line
on stderr and exit 1; ``--json`` gives machine-readable output for queries.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from powernode.client import (
    RpcClient,
    RpcError,
    RpcUnavailable,
    build_transfer,
    read_key,
    write_key,
)
from powernode.core.crypto import KeyPair, parse_address
from powernode.core.errors import PowernodeError
from powernode.core.tx import Transaction
from powernode.core.units import format_units, parse_units

DEFAULT_DATADIR = Path.home() / ".powernode"


class UserError(Exception):
    pass


# --- commands -----------------------------------------------------------------


def cmd_init(a: argparse.Namespace) -> int:
    from powernode.devnet.datadir import render_config, write_genesis
    from powernode.devnet.devchain import DEV_FUNDS, dev_genesis

    d: Path = a.datadir
    if (d / "config.toml").exists():
        raise UserError(f"{d} is already initialised (config.toml exists)")
    d.mkdir(parents=True, exist_ok=True)
    key = KeyPair.generate()
    write_key(d / "node.key", key)
    if a.genesis:
        src = Path(a.genesis)
        if not src.exists():
            raise UserError(f"genesis file {src} not found")
        (d / "genesis.json").write_bytes(src.read_bytes())
    elif a.dev:
        doc = dev_genesis(
            {key.address: DEV_FUNDS},
            timestamp=int(time.time()),
            comment="dev chain (like bitcoind's regtest): trivial difficulty, mine on demand with dev.mine",
        )
        write_genesis(d / "genesis.json", doc)
    else:
        raise UserError("give --dev for a new dev chain, or --genesis FILE to join a chain")
    (d / "config.toml").write_text(
        render_config(rpc_port=a.rpc_port, p2p_port=a.p2p_port, mining=a.mine)
    )
    print(f"initialised {d}")
    print(f"node address {key.address.hex()}")
    return 0


def cmd_run(a: argparse.Namespace) -> int:
    from powernode.node.config import load_config
    from powernode.node.logging_setup import setup_logging
    from powernode.node.node import run_node

    if not (a.datadir / "config.toml").exists():
        raise UserError(
            f"{a.datadir} is not initialised; run 'powernode init --datadir {a.datadir} --dev'"
        )
    cfg = load_config(a.datadir)
    if a.mine:
        from dataclasses import replace

        cfg = replace(cfg, mining=replace(cfg.mining, enabled=True))
    setup_logging(fmt=a.log_format or cfg.log.format, level=cfg.log.level, file=cfg.log_path)
    if (cfg.runtime_path).exists():
        try:
            pid = json.loads(cfg.runtime_path.read_text())["pid"]
            import os

            os.kill(pid, 0)
            raise UserError(f"a node (pid {pid}) already runs in {a.datadir}")
        except (ProcessLookupError, ValueError, KeyError, PermissionError):
            pass  # stale file from a killed node
    run_node(cfg)
    return 0


def cmd_keygen(a: argparse.Namespace) -> int:
    key = KeyPair.generate()
    if a.out:
        out = Path(a.out)
        if out.exists():
            raise UserError(f"{out} exists; not overwriting a key")
        write_key(out, key)
    result = {"address": key.address.hex(), "pubkey": key.pubkey.hex(), "file": a.out}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"address {result['address']}")
        if a.out:
            print(f"key written to {a.out}")
        else:
            print(f"private  {key.seed().hex()}   (keep secret; use --out FILE to save)")
    return 0


def _client(a: argparse.Namespace) -> RpcClient:
    return RpcClient.from_datadir(a.datadir)


def _key(a: argparse.Namespace) -> KeyPair:
    return read_key(Path(a.key) if a.key else a.datadir / "node.key")


def _emit(a: argparse.Namespace, obj: Any, text: Callable[[Any], str]) -> None:
    print(json.dumps(obj, indent=2) if a.json else text(obj))


def cmd_status(a: argparse.Namespace) -> int:
    with _client(a) as c:
        info = c.call("node.info")
    _emit(
        a,
        info,
        lambda i: (
            f"chain {i['chain_id']}  height {i['height']}  tip {i['tip']}\n"
            f"mempool {i['mempool_size']} txs  mining {'on' if i['mining'] else 'off'}  rpc {i['rpc']}"
        ),
    )
    return 0


def cmd_balance(a: argparse.Namespace) -> int:
    addr = a.address or _key(a).address.hex()
    parse_address(addr)
    with _client(a) as c:
        acct = c.call("account.get", {"address": addr})
    acct["balance_units"] = format_units(acct["balance"])
    _emit(a, acct, lambda r: f"{r['address']}  balance {r['balance_units']}  nonce {r['nonce']}")
    return 0


def tx_context(c: RpcClient, key: KeyPair) -> tuple[str, int]:
    """The chain id and the sender's next nonce (counting its pending txs)."""
    chain_id = c.call("node.info")["chain_id"]
    return chain_id, c.call("account.get", {"address": key.address.hex()})["next_nonce"]


def submit_and_wait(c: RpcClient, tx: Transaction, wait: float) -> dict[str, Any]:
    """Submit ``tx``; with ``wait`` > 0, poll up to that many seconds for it
    to be confirmed. Returns ``tx.get``'s answer with the id; status
    ``dropped`` if the node let go of it unmined (it stopped passing the
    checks against a newer tip, e.g. a second order over the capacity), with
    the reason in ``error`` when the node still knows it."""
    txid = c.submit(tx)
    status: dict[str, Any] = {"id": txid, "status": "pending"}
    deadline = time.monotonic() + wait
    while wait and time.monotonic() < deadline:
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
    if s.get("receipt", {}).get("status") == "failed":
        line += " (failed)"
    return line


def report_tx(
    a: argparse.Namespace, status: dict[str, Any], text: Callable[[Any], str] = tx_line
) -> int:
    """Print a submitted tx's status. A tx mined as failed (its fee charged,
    its effect not applied) or dropped unmined also gets an error line on
    stderr and exit status 1."""
    _emit(a, status, text)
    err = status.get("receipt", {}).get("error")
    if err:
        why = f"was mined but failed: {err['code']}: {err['message']}"
    elif status["status"] == "dropped":
        reason = status.get("error")
        detail = (
            f"{reason['code']}: {reason['message']}"
            if reason
            else "it no longer passes the node's checks"
        )
        why = f"was dropped unmined: {detail} (nothing charged)"
    else:
        return 0
    print(f"powernode {a.command}: error: tx {status['id']} {why}", file=sys.stderr)
    return 1


def cmd_transfer(a: argparse.Namespace) -> int:
    key = _key(a)
    to = parse_address(a.to)
    amount = parse_units(a.amount)
    fee = parse_units(a.fee)
    if amount <= 0:
        raise UserError("amount must be positive")
    with _client(a) as c:
        chain_id, nonce = tx_context(c, key)
        tx = build_transfer(key, chain_id=chain_id, nonce=nonce, to=to, amount=amount, fee=fee)
        status = submit_and_wait(c, tx, a.wait)
    return report_tx(a, status)


def cmd_stop(a: argparse.Namespace) -> int:
    with _client(a) as c:
        c.call("node.stop")
    print("stopping")
    return 0


def cmd_mine(a: argparse.Namespace) -> int:
    with _client(a) as c:
        r = c.call("dev.mine", {"blocks": a.blocks})
    _emit(a, r, lambda r: f"mined {len(r['hashes'])} blocks, height {r['height']}")
    return 0


# --- parser -------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="powernode", description="powernode: a P2P node for electricity trading"
    )
    sub = p.add_subparsers(dest="command", required=True)

    def add(
        name: str, fn: Callable[[argparse.Namespace], int], help: str
    ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help)
        sp.add_argument(
            "--datadir",
            type=Path,
            default=DEFAULT_DATADIR,
            help="node data directory (default ~/.powernode)",
        )
        sp.set_defaults(fn=fn)
        return sp

    sp = add("init", cmd_init, "create a data dir with a node key, config and genesis")
    sp.add_argument("--dev", action="store_true", help="a new dev chain funding this node's key")
    sp.add_argument("--genesis", help="join the chain of this genesis file")
    sp.add_argument("--rpc-port", type=int, default=8645)
    sp.add_argument("--p2p-port", type=int, default=8646)
    sp.add_argument("--mine", action="store_true", help="enable mining in the config")

    sp = add("run", cmd_run, "run the node in the foreground")
    sp.add_argument("--mine", action="store_true", help="mine (overrides the config)")
    sp.add_argument("--log-format", choices=["text", "json"])

    sp = add("keygen", cmd_keygen, "make a new key pair")
    sp.add_argument("--out", help="write the private key to this file")
    sp.add_argument("--json", action="store_true")

    sp = add("status", cmd_status, "show the node's chain, tip and mempool")
    sp.add_argument("--json", action="store_true")

    sp = add("balance", cmd_balance, "show an account's balance and nonce")
    sp.add_argument("address", nargs="?", help="address (default: the key's)")
    sp.add_argument("--key", help="key file (default: the node key)")
    sp.add_argument("--json", action="store_true")

    sp = add("transfer", cmd_transfer, "sign and submit a transfer")
    sp.add_argument("--to", required=True, help="recipient address (hex)")
    sp.add_argument("--amount", required=True, help="amount in units, e.g. 1.5")
    sp.add_argument("--fee", default="0.001", help="fee in units (default 0.001)")
    sp.add_argument("--key", help="sender key file (default: the node key)")
    sp.add_argument("--wait", type=float, default=0, help="seconds to wait for confirmation")
    sp.add_argument("--json", action="store_true")

    add("stop", cmd_stop, "stop the running node cleanly")

    sp = add("mine", cmd_mine, "dev chains: mine blocks now")
    sp.add_argument("blocks", type=int, nargs="?", default=1)
    sp.add_argument("--json", action="store_true")

    from powernode.cli_market import add_market_commands  # it imports this module

    add_market_commands(add)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.fn(args))
    except (UserError, PowernodeError, RpcError, RpcUnavailable) as exc:
        print(f"powernode {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
