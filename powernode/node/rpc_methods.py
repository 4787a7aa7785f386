"""The RPC methods: parse params, call the node, shape JSON results.

Method names are a public contract (README, "RPC"). Hashes, ids and
addresses are lowercase hex; amounts are integers in micro-units.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from powernode.core.block import Block, BlockHeader, decode_block
from powernode.core.crypto import address_hex, parse_address
from powernode.core.errors import DecodeError, NotFound, PowernodeError
from powernode.core.tx import Transaction, decode_tx
from powernode.node.rpc import BatchMethod, InvalidParams, Method, Params

if TYPE_CHECKING:
    from powernode.node.node import Node

VERSION = "0.1.0"


def jsonable(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, list | tuple):
        return [jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    return obj


def _arg(params: Params, key: str, pos: int) -> Any:
    if key in params:
        return params[key]
    args = params.get("_args", [])
    return args[pos] if pos < len(args) else None


def _hex(params: Params, key: str, pos: int = 0, *, size: int | None = None) -> bytes:
    v = _arg(params, key, pos)
    if not isinstance(v, str):
        raise InvalidParams(f"'{key}' must be a hex string")
    try:
        raw = bytes.fromhex(v.removeprefix("0x"))
    except ValueError:
        raise DecodeError(f"'{key}' is not valid hex") from None
    if size is not None and len(raw) != size:
        raise InvalidParams(f"'{key}' must be {size} bytes")
    return raw


def _int(
    params: Params, key: str, pos: int, *, default: int | None = None, lo: int = 0, hi: int = 2**63
) -> int:
    v = _arg(params, key, pos)
    if v is None and default is not None:
        return default
    if type(v) is not int or not lo <= v <= hi:
        raise InvalidParams(f"'{key}' must be an integer in {lo}..{hi}")
    return v


def header_json(h: BlockHeader) -> dict[str, Any]:
    return {
        "hash": h.hash.hex(),
        "height": h.height,
        "version": h.version,
        "prev_hash": h.prev_hash.hex(),
        "timestamp": h.timestamp,
        "target": h.target.hex(),
        "nonce": h.nonce,
        "tx_root": h.tx_root.hex(),
        "state_root": h.state_root.hex(),
        "miner": h.miner.hex(),
    }


def tx_json(tx: Transaction) -> dict[str, Any]:
    return {
        "id": tx.txid.hex(),
        "chain_id": tx.chain_id,
        "type": tx.type,
        "sender": address_hex(tx.sender_address),
        "pubkey": tx.sender.hex(),
        "nonce": tx.nonce,
        "fee": tx.fee,
        "payload": jsonable(tx.payload),
        "size": tx.size,
    }


def build_methods(node: Node) -> tuple[dict[str, Method], dict[str, BatchMethod]]:
    def ledger() -> Any:
        return node.L

    async def node_info(p: Params) -> Any:
        L = ledger()
        tip = L.chain.tip
        return {
            "version": VERSION,
            "chain_id": L.params.chain_id,
            "genesis": L.chain.genesis.hash.hex(),
            "dev": L.params.dev,
            "height": tip.height,
            "tip": tip.hash.hex(),
            "state_root": tip.header.state_root.hex(),
            "total_work": hex(tip.work),
            "mempool_size": len(L.mempool),
            "mining": bool(node.miner and node.miner.running),
            "mining_address": node.mining_address.hex(),
            "rpc": node.rpc_url,
            "p2p": node.p2p.listen if node.p2p else "",
            "peers": len(node.p2p.peers) if node.p2p else 0,
        }

    def _find_block(p: Params) -> Block:
        L = ledger()
        if "hash" in p:
            return L.chain.get_block(_hex(p, "hash", size=32))
        height = _int(p, "height", 0, hi=2**62)
        entry = L.chain.entry_at(height)
        if entry is None:
            raise NotFound(f"no block at height {height} (tip is {L.chain.height})")
        return L.chain.get_block(entry.hash)

    async def chain_block(p: Params) -> Any:
        block = _find_block(p)
        L = ledger()
        entry = L.chain.index.get(block.hash)
        out = header_json(block.header)
        out["size"] = len(block.raw)
        out["in_main_chain"] = bool(entry and L.chain.in_active(entry))
        out["confirmations"] = (L.chain.height - block.height + 1) if out["in_main_chain"] else 0
        if p.get("verbose"):
            out["txs"] = [tx_json(tx) for tx in block.txs]
        else:
            out["txs"] = [t.hex() for t in block.txids()]
        if p.get("raw"):
            out["raw"] = block.raw.hex()
        return out

    async def tx_submit_batch(items: list[Params]) -> list[tuple[Any, PowernodeError | None]]:
        txs: list[Transaction | PowernodeError] = []
        for p in items:
            try:
                txs.append(decode_tx(_hex(p, "raw")))
            except PowernodeError as exc:
                txs.append(exc)
        results = await node.submit_and_relay(txs)
        return [(txid.hex() if txid else None, err) for txid, err in results]

    async def tx_get(p: Params) -> Any:
        txid = _hex(p, "id", size=32)
        L = ledger()
        status = L.tx_status(txid)
        entry = L.mempool.get(txid)
        if entry is not None:
            status["tx"] = tx_json(entry.tx)
        elif "block" in status:
            block = L.chain.get_block(bytes.fromhex(status["block"]))
            status["tx"] = tx_json(block.txs[status["index"]])
        return status

    async def account_get(p: Params) -> Any:
        v = _arg(p, "address", 0)
        if not isinstance(v, str):
            raise InvalidParams("'address' must be a hex string")
        addr = parse_address(v)
        L = ledger()
        acct = L.account(addr)
        return {
            "address": addr.hex(),
            "balance": acct.balance,
            "nonce": acct.nonce,
            "next_nonce": L.next_nonce(addr),
        }

    async def mempool_info(p: Params) -> Any:
        pool = ledger().mempool
        return {
            "size": len(pool),
            "bytes": pool.total_bytes,
            "max_bytes": pool.max_bytes,
            "senders": len(pool.by_sender),
            "max_per_sender": pool.max_per_sender,
        }

    async def block_submit(p: Params) -> Any:
        block = decode_block(_hex(p, "raw"))
        outcome, _ = node.accept_block(block)
        return {"hash": block.hash.hex(), "height": block.height, "outcome": outcome}

    async def miner_start(p: Params) -> Any:
        assert node.miner is not None
        node.miner.start()
        return {"mining": True}

    async def miner_stop(p: Params) -> Any:
        assert node.miner is not None
        await asyncio.to_thread(node.miner.stop)
        return {"mining": False}

    async def dev_mine(p: Params) -> Any:
        if not ledger().params.dev:
            raise PowernodeError("dev.mine needs a dev-mode chain", code="not_dev_mode")
        n = _int(p, "blocks", 0, default=1, lo=1, hi=10_000)
        addr = None
        if _arg(p, "address", 1) is not None:
            addr = parse_address(str(_arg(p, "address", 1)))
        hashes = await node.mine_now(n, addr)
        return {"hashes": [h.hex() for h in hashes], "height": ledger().chain.height}

    def p2p() -> Any:
        if node.p2p is None:
            raise PowernodeError("p2p is disabled in this node's config", code="p2p_disabled")
        return node.p2p

    def _address(p: Params) -> str:
        v = _arg(p, "address", 0)
        host, _, port = str(v).rpartition(":")
        if not isinstance(v, str) or not host or not port.isdigit():
            raise InvalidParams("'address' must be 'host:port'")
        return v

    async def peer_list(p: Params) -> Any:
        return p2p().peer_list()

    async def peer_add(p: Params) -> Any:
        addr = _address(p)
        p2p().add_address(addr)
        return {"added": addr}

    async def peer_remove(p: Params) -> Any:
        addr = _address(p)
        return {"removed": addr, "disconnected": p2p().remove_address(addr)}

    async def peer_ban(p: Params) -> Any:
        addr = _address(p)
        seconds = _int(p, "seconds", 1, default=p2p().cfg.ban_seconds, lo=1, hi=10**8)
        p2p().ban(addr, seconds, "manual")
        return {"banned": addr, "seconds": seconds}

    async def peer_unban(p: Params) -> Any:
        addr = _address(p)
        return {"unbanned": p2p().unban(addr)}

    async def node_stop(p: Params) -> Any:
        node.stopping.set()
        return {"stopping": True}

    methods: dict[str, Method] = {
        "node.info": node_info,
        "node.stop": node_stop,
        "chain.block": chain_block,
        "tx.get": tx_get,
        "account.get": account_get,
        "mempool.info": mempool_info,
        "block.submit": block_submit,
        "miner.start": miner_start,
        "miner.stop": miner_stop,
        "dev.mine": dev_mine,
        "peer.list": peer_list,
        "peer.add": peer_add,
        "peer.remove": peer_remove,
        "peer.ban": peer_ban,
        "peer.unban": peer_unban,
    }
    from powernode.node.rpc_market import build_market_methods  # it imports this module

    methods.update(build_market_methods(node))
    batch_methods: dict[str, BatchMethod] = {"tx.submit": tx_submit_batch}
    return methods, batch_methods
