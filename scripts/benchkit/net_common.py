"""Shared parts of ``scripts/bench_network.py``'s phases: its target,
transfers signed with a testnet's demo keys, and the RPC polls that wait for
mempools and tips."""

from __future__ import annotations

import time

from benchkit.testnets import Testnet
from powernode.client import RpcClient, RpcError, build_transfer, read_key
from powernode.core.crypto import sha256
from powernode.core.tx import Transaction

TARGET_TX_PER_S = 2000.0
FEE = 1000


# --- txs from the demo keys ----------------------------------------------------------


class DemoSigner:
    """Transfers from a testnet's demo keys, nonces counted here (the caller
    makes sure each is confirmed before a sender's pending txs pass 256)."""

    def __init__(self, tn: Testnet, chain_id: str) -> None:
        self.keys = [read_key(tn.root / p) for p in tn.state["demo_keys"]]
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
    t0 = time.monotonic()
    sizes: dict[str, int] = {}
    while True:
        sizes = {n: c.call("mempool.info")["size"] for n, c in clients.items()}
        if min(sizes.values()) >= size or time.monotonic() - t0 > timeout:
            return time.monotonic() - t0, sizes
        time.sleep(0.05)


def wait_same_tip(
    clients: dict[str, RpcClient], timeout: float, tip: str | None = None
) -> tuple[bool, dict[str, tuple[int, str]]]:
    deadline = time.monotonic() + timeout
    tips: dict[str, tuple[int, str]] = {}
    while True:
        for n, c in clients.items():
            info = c.call("node.info")
            tips[n] = (info["height"], info["tip"])
        want = tip or max(tips.values())[1]
        if all(t == want for _, t in tips.values()):
            return True, tips
        if time.monotonic() > deadline:
            return False, tips
        time.sleep(0.1)
