"""Demo against a running testnet: transfers sent to one node, confirmed on all.

    python scripts/demo_transfers.py --dir testnet/local

Signs transfers from a funded demo account, submits them over node0's RPC,
then waits until every node reports them confirmed in the same block and
shows the recipients' balances as each node sees them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from powernode.client import RpcClient, RpcError, build_transfer, read_key
from powernode.core.crypto import KeyPair
from powernode.core.units import format_units


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--dir", type=Path, default=Path("testnet/local"))
    ap.add_argument("--txs", type=int, default=5)
    ap.add_argument("--timeout", type=float, default=120.0)
    a = ap.parse_args()
    state = json.loads((a.dir / "testnet.json").read_text())
    clients = {n["name"]: RpcClient.from_datadir(a.dir / n["name"]) for n in state["nodes"]}
    first = next(iter(clients))
    sender = read_key(a.dir / state["demo_keys"][0])
    chain_id = clients[first].call("node.info")["chain_id"]
    recipients = [KeyPair.generate() for _ in range(a.txs)]
    nonce = clients[first].call("account.get", {"address": sender.address.hex()})["next_nonce"]
    ids = []
    for i, r in enumerate(recipients):
        tx = build_transfer(
            sender, chain_id=chain_id, nonce=nonce + i, to=r.address, amount=(i + 1) * 250_000
        )
        ids.append(clients[first].submit(tx))
    print(
        f"submitted {len(ids)} transfer{'' if len(ids) == 1 else 's'} from {sender.address.hex()[:12]}.. to {first}"
    )
    deadline = time.monotonic() + a.timeout
    pending = {(name, txid) for name in clients for txid in ids}
    seen: dict[str, dict[str, int]] = {}
    while pending and time.monotonic() < deadline:
        for name, txid in sorted(pending):
            try:
                st = clients[name].call("tx.get", {"id": txid})
            except RpcError:
                continue  # not yet gossiped to this node
            if st["status"] == "confirmed":
                pending.discard((name, txid))
                seen.setdefault(txid, {})[name] = st["height"]
        time.sleep(0.25)
    if pending:
        print(
            f"demo: {len(pending)} (node, tx) pairs still unconfirmed after {a.timeout:.0f}s",
            file=sys.stderr,
        )
        return 1
    for txid in ids:
        heights = seen[txid]
        where = ", ".join(f"{n}@{h}" for n, h in sorted(heights.items()))
        print(f"  tx {txid[:16]} confirmed on every node: {where}")
    for r in recipients:
        bals = {
            n: c.call("account.get", {"address": r.address.hex()})["balance"]
            for n, c in clients.items()
        }
        same = len(set(bals.values())) == 1
        print(
            f"  {r.address.hex()}  balance {format_units(next(iter(bals.values())))}  "
            f"({'same on all ' + str(len(bals)) + ' nodes' if same else bals})"
        )
    roots = {n: c.call("node.info") for n, c in clients.items()}
    print("tips: " + ", ".join(f"{n} {i['height']} {i['tip'][:12]}" for n, i in roots.items()))
    for c in clients.values():
        c.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
