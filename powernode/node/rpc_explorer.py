"""RPC methods the explorer reads pages with: recent blocks, the mempool in
mining order, and search. All are public (a caller without auth may use
them while the explorer is on) and bounded by their ``limit`` params.

``search`` answers what a box on a page can be given: a height, a block
hash, a tx id, an address, or the id of an order, certificate, device, PPA
or contract. A 32-byte id is looked up in every kind with 32-byte ids, in
that order, so a value that names two things lists both; anything else
(unknown, malformed) is an empty list, not an error: a search box is not
an API client and "nothing found" is its answer.
"""

from __future__ import annotations

import heapq
import re
from typing import Any

from powernode.chain.ledger import Ledger
from powernode.chain.mempool import PoolEntry, fee_rate
from powernode.core.crypto import address_hex
from powernode.core.errors import InvalidParams
from powernode.core.hextext import from_hex
from powernode.engines.accounts import ACCOUNT_NS
from powernode.engines.certificates.records import CERT_NS
from powernode.engines.contracts.contract_records import CONTRACT_NS
from powernode.engines.contracts.ppa_records import PPA_NS
from powernode.engines.market.records import ORDER_NS
from powernode.engines.metering.records import DEVICE_NS
from powernode.node import rpc_params as rp
from powernode.node.rpc import Method, Params
from powernode.node.rpc_spec import MethodSpec, Param, array_of, shape
from powernode.node.rpc_spec import integer as int_schema

BLOCKS_LIMIT = 20
BLOCKS_MAX = 100
MEMPOOL_LIMIT = 100
MEMPOOL_MAX = 1000
# The longest search text: a 32-byte id in hex with its 0x, and room to spare.
SEARCH_MAX_CHARS = 130

# The kinds of 32-byte ids held in state, in the order search lists them
# (after block and tx, which the chain holds).
_STATE_KINDS = (
    ("order", ORDER_NS),
    ("cert", CERT_NS),
    ("device", DEVICE_NS),
    ("ppa", PPA_NS),
    ("contract", CONTRACT_NS),
)
SEARCH_KINDS = ("block", "tx", "account", *(kind for kind, _ in _STATE_KINDS))
_HEIGHT = re.compile(r"[0-9]{1,19}")

_BLOCK_ROW = shape(
    "height:int hash:hex prev_hash:hex timestamp:int txs:int size:int miner:hex state_root:hex"
)
_POOL_ROW = shape("id:hex type:str sender:hex nonce:int fee:amount size:int fee_rate:int")

EXPLORER_SPECS = {
    "chain.blocks": MethodSpec(
        summary="main-chain blocks from a height down, newest first (a page of recent blocks)",
        params=(
            Param("from", int_schema(0, 2**62), description="the first height (default the tip)"),
            Param("limit", int_schema(1, BLOCKS_MAX), description=f"default {BLOCKS_LIMIT}"),
        ),
        result=array_of(_BLOCK_ROW),
        public=True,
    ),
    "mempool.txs": MethodSpec(
        summary="pending txs in the order the miner takes them, and the pool's size",
        params=(
            Param("limit", int_schema(1, MEMPOOL_MAX), description=f"default {MEMPOOL_LIMIT}"),
        ),
        result=shape("size:int txs:list", txs=_POOL_ROW),
        public=True,
    ),
    "search": MethodSpec(
        summary="what a height, hash, tx id, address or order/cert/device/ppa/contract id "
        "names: a list of {kind, id}, empty when nothing",
        params=(
            Param(
                "q",
                {"type": "string", "maxLength": SEARCH_MAX_CHARS},
                required=True,
                description="the text searched",
            ),
        ),
        # height: a block's only
        result=shape("q:str matches:list", matches=shape("kind:str id:hex height:int")),
        public=True,
    ),
}


def _pool_row(e: PoolEntry) -> dict[str, Any]:
    tx = e.tx
    return {
        "id": tx.txid.hex(),
        "type": tx.type,
        "sender": address_hex(tx.sender_address),
        "nonce": tx.nonce,
        "fee": tx.fee,
        "size": tx.size,
        "fee_rate": fee_rate(tx),
    }


def explorer_methods(ledger: Ledger) -> dict[str, Method]:
    """``chain.blocks``, ``mempool.txs``, ``search``: reads of the tip."""

    async def chain_blocks(p: Params) -> Any:
        chain = ledger.chain
        start = rp.opt_int(p, "from", 0, hi=2**62)
        limit = rp.opt_int(p, "limit", 1, lo=1, hi=BLOCKS_MAX) or BLOCKS_LIMIT
        top = chain.height if start is None else min(start, chain.height)
        out = []
        for height in range(top, max(-1, top - limit), -1):
            entry = chain.entry_at(height)
            if entry is None:  # the tip moved under a long answer: stop there
                break
            block = chain.get_block(entry.hash)
            h = block.header
            out.append(
                {
                    "height": h.height,
                    "hash": block.hash.hex(),
                    "prev_hash": h.prev_hash.hex(),
                    "timestamp": h.timestamp,
                    "txs": len(block.txs),
                    "size": len(block.raw),
                    "miner": h.miner.hex(),
                    "state_root": h.state_root.hex(),
                }
            )
        return out

    # The first MEMPOOL_MAX rows of the pool in mining order, kept while
    # neither the pool nor the tip changes: a batch of mempool.txs calls
    # (public) costs one pass over the pool's senders, not one per call.
    pool_rows_at: dict[tuple[int, bytes], list[dict[str, Any]]] = {}

    def pool_rows() -> list[dict[str, Any]]:
        pool = ledger.mempool
        key = (pool.version, ledger.chain.tip.hash)
        rows = pool_rows_at.get(key)
        if rows is not None:
            return rows
        rows = []
        taken: set[bytes] = set()
        # What the miner would take first: best fee rate, each sender's in
        # nonce order (Mempool.select) ...
        for tx in pool.select(lambda sender: ledger.account(sender).nonce):
            if len(rows) >= MEMPOOL_MAX:
                break
            entry = pool.get(tx.txid)
            if entry is not None:
                rows.append(_pool_row(entry))
                taken.add(tx.txid)
        # ... then those it cannot take yet (a nonce gap before them), best
        # fee rate first, oldest first among equals (a bounded selection,
        # not a sort of the whole pool).
        if len(rows) < MEMPOOL_MAX and len(taken) < len(pool):
            rest = heapq.nsmallest(
                MEMPOOL_MAX - len(rows),
                (e for e in pool.by_id.values() if e.tx.txid not in taken),
                key=lambda e: (-e.rate, e.seq),
            )
            rows.extend(_pool_row(e) for e in rest)
        pool_rows_at.clear()
        pool_rows_at[key] = rows
        return rows

    async def mempool_txs(p: Params) -> Any:
        limit = rp.opt_int(p, "limit", 0, lo=1, hi=MEMPOOL_MAX) or MEMPOOL_LIMIT
        return {"size": len(ledger.mempool), "txs": pool_rows()[:limit]}

    def matches(q: str) -> list[dict[str, Any]]:
        chain = ledger.chain
        state = chain.state
        stripped = q.strip().lower()
        text = stripped.removeprefix("0x")
        found: list[dict[str, Any]] = []
        # ASCII digits only, and no 0x: str.isdigit takes "²", which int()
        # refuses, and "0x10" is hex, not height 10.
        if _HEIGHT.fullmatch(stripped):
            entry = chain.entry_at(int(stripped))
            if entry is not None:
                found.append({"kind": "block", "id": entry.hash.hex(), "height": entry.height})
        try:
            raw = from_hex(text) if len(text) in (40, 64) else b""
        except ValueError:
            raw = b""
        if len(raw) == 20:
            if state.get((ACCOUNT_NS, raw)) is not None or raw in ledger.mempool.by_sender:
                found.append({"kind": "account", "id": raw.hex()})
        elif len(raw) == 32:
            entry = chain.index.get(raw)
            if entry is not None:
                found.append({"kind": "block", "id": raw.hex(), "height": entry.height})
            if raw in ledger.mempool or chain.store.find_tx(raw) is not None:
                found.append({"kind": "tx", "id": raw.hex()})
            for kind, ns in _STATE_KINDS:
                if state.get((ns, raw)) is not None:
                    found.append({"kind": kind, "id": raw.hex()})
        return found

    async def search(p: Params) -> Any:
        q = rp.arg(p, "q", 0)
        if not isinstance(q, str) or len(q) > SEARCH_MAX_CHARS:
            raise InvalidParams(f"'q' must be a string of at most {SEARCH_MAX_CHARS} characters")
        return {"q": q, "matches": matches(q)}

    return {"chain.blocks": chain_blocks, "mempool.txs": mempool_txs, "search": search}
