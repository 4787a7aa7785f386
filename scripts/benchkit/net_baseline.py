"""Phase a of ``scripts/bench_network.py``: the Ed25519 verify baseline."""

from __future__ import annotations

from typing import Any

from benchkit.net_common import FEE
from benchkit.node_baseline import bench_baseline
from powernode.client import build_transfer
from powernode.core.crypto import KeyPair, sha256

# --- a. baseline ---------------------------------------------------------------------


def phase_baseline(sigs: int) -> dict[str, Any]:
    key = KeyPair.from_seed(sha256(b"net-baseline"))
    sample = [
        build_transfer(key, chain_id="powernode-bench", nonce=n, to=bytes(20), amount=1, fee=FEE)
        for n in range(200)
    ]
    return bench_baseline(sigs, 3, 140, sample)
