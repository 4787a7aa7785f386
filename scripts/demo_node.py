"""Quickstart demo: one dev node, mining, taking transfers over RPC.

Initialises a fresh data dir, starts ``powernode run --mine`` as a real
process, sends transfers to three new accounts through the CLI and the RPC
client, waits for them to be confirmed, prints balances and the node's
status, then stops the node with SIGTERM (a clean stop).
"""

from __future__ import annotations

import argparse
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from powernode.client import RpcClient, RpcUnavailable, build_transfer, read_key
from powernode.core.crypto import KeyPair
from powernode.core.units import format_units


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, cond, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = cond()
        if result:
            return result
        time.sleep(0.1)
    raise SystemExit(f"demo: timed out waiting for {what}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=Path("testnet/quickstart"))
    args = ap.parse_args()
    d: Path = args.dir
    if d.exists():
        shutil.rmtree(d)
    pn = [sys.executable, "-m", "powernode.cli"]
    subprocess.run(
        [*pn, "init", "--datadir", str(d), "--dev", "--rpc-port", str(free_port())], check=True
    )
    log = open(d / "stderr.log", "w")  # noqa: SIM115 - lives as long as the node
    node = subprocess.Popen([*pn, "run", "--datadir", str(d), "--mine"], stderr=log, stdout=log)
    print(f"node started (pid {node.pid}); log: {d / 'node.log'}")
    try:

        def connect() -> RpcClient | None:
            try:
                c = RpcClient.from_datadir(d)
                c.call("node.info")
                return c
            except RpcUnavailable:
                return None

        client: RpcClient = wait_for("the node's RPC", connect)
        info = client.call("node.info")
        print(f"chain {info['chain_id']}  genesis {info['genesis'][:16]}  rpc {info['rpc']}")
        key = read_key(d / "node.key")
        recipients = [KeyPair.generate() for _ in range(3)]
        subprocess.run(
            [
                *pn,
                "transfer",
                "--datadir",
                str(d),
                "--to",
                recipients[0].address.hex(),
                "--amount",
                "12.5",
            ],
            check=True,
        )
        ids = []
        nonce = client.call("account.get", {"address": key.address.hex()})["next_nonce"]
        for i, r in enumerate(recipients[1:]):
            tx = build_transfer(
                key,
                chain_id=info["chain_id"],
                nonce=nonce + i,
                to=r.address,
                amount=(i + 1) * 1_000_000,
            )
            ids.append(client.submit(tx))
        print(f"submitted {len(ids) + 1} transfers; waiting for confirmation")
        for txid in ids:
            st = wait_for(
                f"tx {txid}",
                lambda t=txid: (
                    (s := client.call("tx.get", {"id": t}))["status"] == "confirmed" and s
                ),
            )
            print(f"  tx {txid[:16]} confirmed at height {st['height']}")
        wait_for(
            "first transfer",
            lambda: (
                client.call("account.get", {"address": recipients[0].address.hex()})["balance"] > 0
            ),
        )
        for r in recipients:
            acct = client.call("account.get", {"address": r.address.hex()})
            print(f"  {r.address.hex()}  balance {format_units(acct['balance'])}")
        subprocess.run([*pn, "status", "--datadir", str(d)], check=True)
        client.close()
    finally:
        node.send_signal(signal.SIGTERM)
        code = node.wait(timeout=30)
        log.close()
    print(f"node stopped cleanly (exit {code}); data dir kept in {d}")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
