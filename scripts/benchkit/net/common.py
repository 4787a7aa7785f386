"""Shared parts of ``scripts/bench_network.py``'s phases: its target,
transfers signed with a testnet's demo keys, and the RPC polls that wait for
mempools and tips."""

from __future__ import annotations

import contextlib
import time

from benchkit.net.testnet import Testnet
from powernode.client import RpcClient, RpcError, build_transfer
from powernode.core.crypto import sha256
from powernode.core.tx import Transaction
from powernode.devnet.wait import WaitTimeout, wait_until

TARGET_TX_PER_S = 4000.0
FEE = 1000


# --- txs from the demo keys ----------------------------------------------------------


class DemoSigner:
    """Transfers from a testnet's demo keys, nonces counted here (the caller
    makes sure each is confirmed before a sender's pending txs pass 256)."""

    def __init__(self, tn: Testnet, chain_id: str) -> None:
        self.keys = tn.layout.read_demo_keys()
        self.chain_id = chain_id
        with tn.client(tn.names[0]) as c:
            self.nonces = [
                c.call("account.get", {"address": k.address.hex()})["next_nonce"] for k in self.keys
            ]
        self.recipients = [sha256(b"net-rcpt-%d" % i)[:20] for i in range(500)]
        self.made = 0

    def sign(self, n: int) -> list[Transaction]:
        out = []
        for _ in range(n):
            i = self.made % len(self.keys)
            out.append(
                build_transfer(
                    self.keys[i],
                    chain_id=self.chain_id,
                    nonce=self.nonces[i],
                    to=self.recipients[self.made % len(self.recipients)],
                    amount=1 + self.made % 1000,
                    fee=FEE,
                )
            )
            self.nonces[i] += 1
            self.made += 1
        return out


def submit(c: RpcClient, txs: list[Transaction], chunk: int = 1000) -> None:
    for i in range(0, len(txs), chunk):
        part = txs[i : i + chunk]
        res = c.batch([("tx.submit", {"raw": tx.raw.hex()}) for tx in part])
        bad = [r for r in res if isinstance(r, RpcError)]
        if bad:
            raise RuntimeError(f"{len(bad)} of {len(part)} txs rejected, first: {bad[0]}")


def wait_mempools(
    clients: dict[str, RpcClient], size: int, timeout: float
) -> tuple[float, dict[str, int]]:
    """Until every node's mempool holds ``size`` txs: the seconds that took
    and the sizes (also on a timeout: the caller reports them)."""
    t0 = time.monotonic()
    sizes: dict[str, int] = {}

    def full() -> bool:
        sizes.update({n: c.call("mempool.info")["size"] for n, c in clients.items()})
        return min(sizes.values()) >= size

    with contextlib.suppress(WaitTimeout):
        wait_until(full, timeout=timeout, what=f"{size:,} txs in every mempool")
    return time.monotonic() - t0, sizes


def wait_same_tip(
    clients: dict[str, RpcClient], timeout: float, tip: str | None = None
) -> tuple[bool, dict[str, tuple[int, str]]]:
    """Until every node has ``tip`` (default: the highest node's tip):
    whether they got there, and each node's (height, tip)."""
    tips: dict[str, tuple[int, str]] = {}

    def same() -> bool:
        for n, c in clients.items():
            info = c.call("node.info")
            tips[n] = (info["height"], info["tip"])
        want = tip or max(tips.values())[1]
        return all(t == want for _, t in tips.values())

    try:
        wait_until(same, timeout=timeout, interval=0.1, what="one tip on every node")
    except WaitTimeout:
        return False, tips
    return True, tips
