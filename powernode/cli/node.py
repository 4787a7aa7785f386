"""The node and account commands: init, run, keygen, status, balance,
transfer, stop, mine."""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

from powernode.cli.common import (
    Subparsers,
    UserError,
    add_command,
    emit,
    report_tx,
    rpc_client,
    signing_key,
    submit_and_wait,
    tx_context,
)
from powernode.client import build_transfer, write_key
from powernode.core.crypto import KeyPair, parse_address
from powernode.core.units import format_units, parse_units
from powernode.devnet.datadir import render_config, write_genesis
from powernode.devnet.devchain import DEV_FUNDS, dev_genesis

# --- commands -----------------------------------------------------------------


def cmd_init(a: argparse.Namespace) -> int:
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
    # Imported here: powernode.node pulls in asyncio and aiohttp, which
    # every other command can do without.
    from powernode.node.config import load_config
    from powernode.node.logging_setup import setup_logging
    from powernode.node.node import run_node

    if not (a.datadir / "config.toml").exists():
        raise UserError(
            f"{a.datadir} is not initialised; run 'powernode init --datadir {a.datadir} --dev'"
        )
    cfg = load_config(a.datadir)
    if a.mine:
        cfg = replace(cfg, mining=replace(cfg.mining, enabled=True))
    setup_logging(fmt=a.log_format or cfg.log.format, level=cfg.log.level, file=cfg.log_path)
    if (cfg.runtime_path).exists():
        try:
            pid = json.loads(cfg.runtime_path.read_text())["pid"]
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


def cmd_status(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        info = c.call("node.info")
    emit(
        a,
        info,
        lambda i: (
            f"chain {i['chain_id']}  height {i['height']}  tip {i['tip']}\n"
            f"mempool {i['mempool_size']} txs  mining {'on' if i['mining'] else 'off'}  rpc {i['rpc']}"
        ),
    )
    return 0


def cmd_balance(a: argparse.Namespace) -> int:
    addr = a.address or signing_key(a).address.hex()
    parse_address(addr)
    with rpc_client(a) as c:
        acct = c.call("account.get", {"address": addr})
    acct["balance_units"] = format_units(acct["balance"])
    emit(a, acct, lambda r: f"{r['address']}  balance {r['balance_units']}  nonce {r['nonce']}")
    return 0


def cmd_transfer(a: argparse.Namespace) -> int:
    key = signing_key(a)
    to = parse_address(a.to)
    amount = parse_units(a.amount)
    fee = parse_units(a.fee, "fee")
    if amount <= 0:
        raise UserError("amount must be positive")
    with rpc_client(a) as c:
        chain_id, nonce = tx_context(c, key)
        tx = build_transfer(key, chain_id=chain_id, nonce=nonce, to=to, amount=amount, fee=fee)
        status = submit_and_wait(c, tx, a.wait)
    return report_tx(a, status)


def cmd_stop(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        c.call("node.stop")
    print("stopping")
    return 0


def cmd_mine(a: argparse.Namespace) -> int:
    with rpc_client(a) as c:
        r = c.call("dev.mine", {"blocks": a.blocks})
    emit(a, r, lambda r: f"mined {len(r['hashes'])} blocks, height {r['height']}")
    return 0


# --- parser -------------------------------------------------------------------


def add_commands(sub: Subparsers) -> None:
    sp = add_command(sub, "init", cmd_init, "create a data dir with a node key, config and genesis")
    sp.add_argument("--dev", action="store_true", help="a new dev chain funding this node's key")
    sp.add_argument("--genesis", help="join the chain of this genesis file")
    sp.add_argument("--rpc-port", type=int, default=8645)
    sp.add_argument("--p2p-port", type=int, default=8646)
    sp.add_argument("--mine", action="store_true", help="enable mining in the config")

    sp = add_command(sub, "run", cmd_run, "run the node in the foreground")
    sp.add_argument("--mine", action="store_true", help="mine (overrides the config)")
    sp.add_argument("--log-format", choices=["text", "json"])

    sp = add_command(sub, "keygen", cmd_keygen, "make a new key pair")
    sp.add_argument("--out", help="write the private key to this file")
    sp.add_argument("--json", action="store_true")

    sp = add_command(sub, "status", cmd_status, "show the node's chain, tip and mempool")
    sp.add_argument("--json", action="store_true")

    sp = add_command(sub, "balance", cmd_balance, "show an account's balance and nonce")
    sp.add_argument("address", nargs="?", help="address (default: the key's)")
    sp.add_argument("--key", help="key file (default: the node key)")
    sp.add_argument("--json", action="store_true")

    sp = add_command(sub, "transfer", cmd_transfer, "sign and submit a transfer")
    sp.add_argument("--to", required=True, help="recipient address (hex)")
    sp.add_argument("--amount", required=True, help="amount in units, e.g. 1.5")
    sp.add_argument("--fee", default="0.001", help="fee in units (default 0.001)")
    sp.add_argument("--key", help="sender key file (default: the node key)")
    sp.add_argument("--wait", type=float, default=0, help="seconds to wait for confirmation")
    sp.add_argument("--json", action="store_true")

    add_command(sub, "stop", cmd_stop, "stop the running node cleanly")

    sp = add_command(sub, "mine", cmd_mine, "dev chains: mine blocks now")
    sp.add_argument("blocks", type=int, nargs="?", default=1)
    sp.add_argument("--json", action="store_true")
