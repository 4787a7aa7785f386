"""The node's RPC methods: parse params, call the node, shape JSON results.

Each function here returns one table of methods over exactly what those
methods need; ``Node`` joins the tables (and the market's, rpc_market.py)
when it starts its RPC server. Method names are a public contract (README,
"RPC"). Hashes, ids and addresses are lowercase hex; amounts are integers in
micro-units.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Awaitable, Callable
from typing import Any

from powernode import __version__
from powernode.chain.ledger import Ledger
from powernode.core.block import Block, BlockHeader, decode_block
from powernode.core.crypto import address_hex
from powernode.core.errors import InvalidParams, NotDevMode, NotFound, P2pDisabled, PowernodeError
from powernode.core.tx import Transaction
from powernode.node.api import NodeApi
from powernode.node.health import sync_state
from powernode.node.logging_setup import (
    CATEGORIES,
    LEVELS,
    log_levels,
    set_base_level,
    set_category_level,
)
from powernode.node.miner import Miner
from powernode.node.p2p import P2P
from powernode.node.rpc import BatchMethod, Method, Params
from powernode.node.rpc_params import address, arg, flag, hex_bytes, host_port, id32, integer
from powernode.node.rpc_spec import (
    ADDRESS,
    BOOL,
    ERROR_OBJ,
    HEX,
    HOST_PORT,
    ID32,
    INT,
    STR,
    MethodSpec,
    Param,
    array_of,
    map_of,
    not_found,
    nullable,
    one_of,
    rejected,
    shape,
)
from powernode.node.rpc_spec import integer as int_schema

VERSION = __version__

# dev.mine: (blocks, reward address or None for the node's) -> block hashes.
MineNow = Callable[[int, bytes | None], Awaitable[list[bytes]]]


def jsonable(obj: Any) -> Any:
    if isinstance(obj, bytes):
        return obj.hex()
    if isinstance(obj, list | tuple):
        return [jsonable(x) for x in obj]
    if isinstance(obj, dict):
        return {k: jsonable(v) for k, v in obj.items()}
    return obj


def header_json(h: BlockHeader) -> dict[str, Any]:
    return {
        "hash": h.hash.hex(),
        "height": h.height,
        "version": h.version,
        "prev_hash": h.prev_hash.hex(),
        "timestamp": h.timestamp,
        "target": h.target.hex(),
        # A u64 that is often past 2^53: a decimal string (README "RPC").
        "nonce": str(h.nonce),
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


HEADER = (
    "hash:hex height:int version:int prev_hash:hex timestamp:int target:hex nonce:big "
    "tx_root:hex state_root:hex miner:hex"
)

NODE_SPECS = {
    "node.info": MethodSpec(
        summary="the node: version, chain, tip, mempool, mining, peers, sync state, uptime",
        result=shape(
            "version:str chain_id:str genesis:hex dev:bool height:int tip:hex state_root:hex "
            "total_work:str mempool_size:int mining:bool mining_address:hex rpc:str p2p:str "
            "peers:int syncing:bool best_peer_height:int? uptime_s:int explorer:bool"
        ),
        public=True,
    ),
    "node.stop": MethodSpec(summary="stop the node cleanly", result=shape("stopping:bool")),
    "miner.start": MethodSpec(summary="start mining", result=shape("mining:bool")),
    "miner.stop": MethodSpec(summary="stop mining", result=shape("mining:bool")),
}


def node_methods(
    *,
    ledger: Ledger,
    explorer: bool,
    miner: Miner,
    p2p: P2P | None,
    mining_address: bytes,
    rpc_url: Callable[[], str],
    stop: Callable[[], None],
    started_mono: float,
) -> dict[str, Method]:
    """``node.info``, ``node.stop``, ``miner.start``, ``miner.stop``."""

    async def node_info(p: Params) -> Any:
        tip = ledger.chain.tip
        peers = list(p2p.peers.values()) if p2p else []
        sync = sync_state(tip.height, (peer.height for peer in peers))
        return {
            "version": VERSION,
            "chain_id": ledger.params.chain_id,
            "genesis": ledger.chain.genesis.hash.hex(),
            "dev": ledger.params.dev,
            "height": tip.height,
            "tip": tip.hash.hex(),
            "state_root": tip.header.state_root.hex(),
            "total_work": hex(tip.work),
            "mempool_size": len(ledger.mempool),
            "mining": miner.running,
            "mining_address": mining_address.hex(),
            "rpc": rpc_url(),
            "p2p": p2p.listen if p2p else "",
            "peers": len(peers),
            "syncing": sync.syncing,
            "best_peer_height": sync.best_peer_height,
            "uptime_s": int(time.monotonic() - started_mono),
            # The web explorer at the RPC port's / (README, "Explorer").
            "explorer": explorer,
        }

    async def node_stop(p: Params) -> Any:
        stop()
        return {"stopping": True}

    async def miner_start(p: Params) -> Any:
        miner.start()
        return {"mining": True}

    async def miner_stop(p: Params) -> Any:
        # Joining the miner thread blocks; the loop keeps serving meanwhile.
        await asyncio.to_thread(miner.stop)
        return {"mining": False}

    return {
        "node.info": node_info,
        "node.stop": node_stop,
        "miner.start": miner_start,
        "miner.stop": miner_stop,
    }


LOG_SPECS = {
    "node.loglevel": MethodSpec(
        summary="read the log levels; with level, set the base level; with category and "
        "level, set that category's (default: back to the base)",
        params=(
            Param("category", one_of(list(CATEGORIES)), description="a log category"),
            Param("level", one_of([*LEVELS, "default"]), description="any case"),
        ),
        result=shape("level:str categories:obj", categories=map_of(nullable(STR))),
    )
}


def log_methods() -> dict[str, Method]:
    """``node.loglevel``: the base level and each category's, read or set
    (as bitcoind's ``logging``)."""

    async def node_loglevel(p: Params) -> Any:
        category = arg(p, "category", 0)
        level = arg(p, "level", 1)
        if category is not None and (not isinstance(category, str) or category not in CATEGORIES):
            raise InvalidParams(f"'category' must be one of {', '.join(CATEGORIES)}")
        # "default" gives a category back to the base level.
        allowed = (*LEVELS, "default") if category is not None else LEVELS
        if level is not None and (not isinstance(level, str) or level.lower() not in allowed):
            raise InvalidParams(f"'level' must be one of {', '.join(allowed)}")
        if level is not None:
            if category is None:
                set_base_level(level)
            else:
                set_category_level(category, None if level.lower() == "default" else level)
        elif category is not None:
            raise InvalidParams("'category' needs a 'level' to set")
        return log_levels()

    return {"node.loglevel": node_loglevel}


TX = shape(
    "id:hex chain_id:str type:str sender:hex pubkey:hex nonce:int fee:amount payload:any size:int"
)
# A receipt's events differ by event (README, "Receipt events").
RECEIPT = shape(
    "status:str fee:amount events:list error:obj",
    events={"type": "object"},
    error=ERROR_OBJ,
)

CHAIN_SPECS = {
    "chain.block": MethodSpec(
        summary="a block by height (of the main chain) or hash",
        params=(
            Param("height", int_schema(0, 2**62), description="required without hash"),
            Param("hash", ID32, description="instead of height", by_position=False),
            Param("verbose", BOOL, description="whole txs, not ids", by_position=False),
            Param("raw", BOOL, description="also the block's bytes", by_position=False),
        ),
        result=shape(
            HEADER + " size:int in_main_chain:bool confirmations:int txs:list raw:hex",
            txs={"oneOf": [dict(HEX), dict(TX)]},  # ids, or whole txs with verbose
        ),
        errors=(not_found(),),
        public=True,
    ),
    "tx.get": MethodSpec(
        summary="a tx's status: pending, confirmed (with its receipt) or dropped",
        params=(Param("id", ID32, required=True),),
        # height and confirmations are null for a block the index lost
        # (Ledger.tx_status), never on a sound store.
        result=shape(
            "status:str block:hex height:int? index:int confirmations:int? receipt:obj "
            "error:obj tx:obj raw:hex",
            receipt=RECEIPT,
            error=ERROR_OBJ,
            tx=TX,
        ),
        errors=(not_found(),),
        public=True,
    ),
    "account.get": MethodSpec(
        summary="an account's balance and nonce",
        params=(Param("address", ADDRESS, required=True),),
        result=shape("address:hex balance:amount nonce:int next_nonce:int"),
        public=True,
    ),
    "mempool.info": MethodSpec(
        summary="the mempool's size, bounds and fee floor",
        result=shape(
            "size:int bytes:int max_bytes:int senders:int max_per_sender:int min_fee_rate:amount"
        ),
        public=True,
    ),
    "block.submit": MethodSpec(
        summary="a block to validate and connect",
        params=(Param("raw", HEX, required=True, description="the block's bytes"),),
        result=shape("hash:hex height:int outcome:str"),
        errors=(
            rejected("malformed", "bytes that do not decode"),
            rejected("invalid_block", "a rule of the chain broken (data.code names it)"),
        ),
    ),
    "dev.mine": MethodSpec(
        summary="dev chains: mine blocks now",
        params=(
            Param("blocks", int_schema(1, 10_000), description="default 1"),
            Param("address", ADDRESS, description="reward address (default the node's)"),
        ),
        result=shape("hashes:list height:int", hashes=HEX),
        errors=(
            rejected("not_dev_mode", "not a dev chain"),
            rejected("mining_failed", "no nonce found"),
        ),
    ),
}


def chain_methods(node: NodeApi, ledger: Ledger, mine_now: MineNow) -> dict[str, Method]:
    """``chain.block``, ``tx.get``, ``account.get``, ``mempool.info``,
    ``block.submit``, ``dev.mine``."""

    def find_block(p: Params) -> Block:
        if "hash" in p:
            return ledger.chain.get_block(id32(p, "hash", 0, "a block hash"))
        height = integer(p, "height", 0, hi=2**62)
        entry = ledger.chain.entry_at(height)
        if entry is None:
            raise NotFound(f"no block at height {height} (tip is {ledger.chain.height})")
        return ledger.chain.get_block(entry.hash)

    async def chain_block(p: Params) -> Any:
        block = find_block(p)
        chain = ledger.chain
        entry = chain.index.get(block.hash)
        out = header_json(block.header)
        out["size"] = len(block.raw)
        out["in_main_chain"] = bool(entry and chain.in_active(entry))
        out["confirmations"] = (chain.height - block.height + 1) if out["in_main_chain"] else 0
        if flag(p, "verbose"):
            out["txs"] = [tx_json(tx) for tx in block.txs]
        else:
            out["txs"] = [t.hex() for t in block.txids()]
        if flag(p, "raw"):
            out["raw"] = block.raw.hex()
        return out

    async def tx_get(p: Params) -> Any:
        txid = id32(p, "id", 0, "a tx id")
        status = ledger.tx_status(txid)
        entry = ledger.mempool.get(txid)
        tx: Transaction | None = None
        if entry is not None:
            tx = entry.tx
        elif "block" in status:
            block = ledger.chain.get_block(bytes.fromhex(status["block"]))
            tx = block.txs[status["index"]]
        if tx is not None:
            status["tx"] = tx_json(tx)
            # The signed tx's bytes, as tx.submit took them (the explorer's "raw").
            status["raw"] = tx.raw.hex()
        return status

    async def account_get(p: Params) -> Any:
        addr = address(p, "address", 0, required=True)
        assert addr is not None
        acct = ledger.account(addr)
        return {
            "address": addr.hex(),
            "balance": acct.balance,
            "nonce": acct.nonce,
            "next_nonce": ledger.next_nonce(addr),
        }

    async def mempool_info(p: Params) -> Any:
        pool = ledger.mempool
        return {
            "size": len(pool),
            "bytes": pool.total_bytes,
            "max_bytes": pool.max_bytes,
            "senders": len(pool.by_sender),
            "max_per_sender": pool.max_per_sender,
            # The fee per 1000 bytes a tx must pay to enter now (0: any fee
            # the chain allows); it rises when a full pool turns txs away.
            "min_fee_rate": pool.min_fee_rate(int(time.time())),
        }

    async def block_submit(p: Params) -> Any:
        block = decode_block(hex_bytes(p, "raw"), decode=ledger.decoder.decode)
        outcome, _ = node.accept_block(block)
        return {"hash": block.hash.hex(), "height": block.height, "outcome": outcome}

    async def dev_mine(p: Params) -> Any:
        if not ledger.params.dev:
            raise NotDevMode("dev.mine needs a dev-mode chain")
        n = integer(p, "blocks", 0, default=1, lo=1, hi=10_000)
        addr = address(p, "address", 1, required=False)
        hashes = await mine_now(n, addr)
        return {"hashes": [h.hex() for h in hashes], "height": ledger.chain.height}

    return {
        "chain.block": chain_block,
        "tx.get": tx_get,
        "account.get": account_get,
        "mempool.info": mempool_info,
        "block.submit": block_submit,
        "dev.mine": dev_mine,
    }


SUBMIT_SPECS = {
    "tx.submit": MethodSpec(
        summary="a signed tx to the mempool (and to peers); its id",
        params=(Param("raw", HEX, required=True, description="the signed tx's bytes"),),
        result={"type": "string"},
        errors=(
            rejected("malformed", "bytes that do not decode"),
            rejected("invalid_tx", "a rule broken (data.code names it, e.g. nonce_too_low)"),
            rejected("mempool_rejected", "the pool refused it (e.g. mempool_full)"),
        ),
    )
}


def submit_methods(node: NodeApi) -> dict[str, BatchMethod]:
    """``tx.submit``, a batch method: a batch's txs are checked together, so
    their signatures verify in parallel."""

    def decoder(p: Params) -> Callable[[], Transaction]:
        # Decoded when admission reaches it: see TxInput.
        return lambda: node.decode_tx(hex_bytes(p, "raw"))

    async def tx_submit_batch(items: list[Params]) -> list[tuple[Any, PowernodeError | None]]:
        results = await node.submit_and_relay([decoder(p) for p in items])
        return [(txid.hex() if txid else None, err) for txid, err in results]

    return {"tx.submit": tx_submit_batch}


_DISABLED = rejected("p2p_disabled", "the node runs without P2P")
_PEER = (Param("address", HOST_PORT, required=True),)

# peer.ban / peer.unban name their peer by address or by node id.
_TARGET = (
    Param("address", HOST_PORT, description="host:port; or give node_id"),
    Param(
        "node_id",
        ID32,
        by_position=False,
        description="a proven node id (64 hex digits) instead of an address",
    ),
)

PEER_SPECS = {
    "peer.list": MethodSpec(
        summary="connected peers and bans",
        # A ban is {address, kind, direction: "banned", banned_until_s}.
        result=array_of(
            shape(
                "id:int? node_id:str? address:str ip:str? same_host:bool? listen:str? "
                "direction:str height:int? agent:str? ping_ms:int? connected_s:int? "
                "blocks_in_flight:int? kind:str? banned_until_s:int?"
            )
        ),
        errors=(_DISABLED,),
        public=True,
    ),
    "peer.stats": MethodSpec(
        summary="inbound slots now and at their peak, the limits, refusals by reason",
        result=shape(
            "node_id:str inbound:int outbound:int inbound_held:int pending:int "
            "peak_inbound_held:int peak_inbound_peers:int max_inbound:int max_pending:int "
            "max_pending_per_ip:int max_inbound_per_ip:int refused:obj",
            refused=map_of(INT),
        ),
        errors=(_DISABLED,),
        public=True,
    ),
    "peer.add": MethodSpec(
        summary="dial a peer", params=_PEER, result=shape("added:str"), errors=(_DISABLED,)
    ),
    "peer.remove": MethodSpec(
        summary="forget and disconnect a peer",
        params=_PEER,
        result=shape("removed:str disconnected:bool"),
        errors=(_DISABLED,),
    ),
    "peer.ban": MethodSpec(
        summary="refuse a peer for a while, by address or node id",
        params=(
            *_TARGET,
            Param("seconds", int_schema(1, 10**8), description="default [p2p] ban_seconds"),
        ),
        result=shape("banned:str seconds:int nodes:list", nodes=HEX),
        errors=(_DISABLED,),
    ),
    "peer.unban": MethodSpec(
        summary="lift a ban, by address, node id or IP",
        params=(
            *_TARGET,
            Param(
                "ip",
                {"type": "string"},
                by_position=False,
                description="an IP under a ban of its own (peer.list kind ip) instead",
            ),
        ),
        result=shape("unbanned:bool"),
        errors=(_DISABLED,),
    ),
}


def peer_methods(p2p: P2P | None) -> dict[str, Method]:
    """``peer.list``, ``peer.stats``, ``peer.add``, ``peer.remove``,
    ``peer.ban``, ``peer.unban``; each is ``p2p_disabled`` on a node without P2P."""

    def net() -> P2P:
        if p2p is None:
            raise P2pDisabled("p2p is disabled in this node's config")
        return p2p

    async def peer_list(p: Params) -> Any:
        return net().peer_list()

    async def peer_stats(p: Params) -> Any:
        return net().slot_stats()

    async def peer_add(p: Params) -> Any:
        addr = host_port(p)
        net().add_address(addr)
        return {"added": addr}

    async def peer_remove(p: Params) -> Any:
        addr = host_port(p)
        return {"removed": addr, "disconnected": net().remove_address(addr) > 0}

    def ban_target(p: Params) -> tuple[str, bytes]:
        """``{"address": "host:port"}`` or ``{"node_id": hex}``: the address
        (or '') and the node id (or b'')."""
        if "node_id" in p:
            return "", id32(p, "node_id", 0, "a node id")
        return host_port(p), b""

    async def peer_ban(p: Params) -> Any:
        addr, node_id = ban_target(p)
        seconds = integer(p, "seconds", 1, default=net().cfg.ban_seconds, lo=1, hi=10**8)
        if node_id:
            net().ban_node(node_id, seconds, "manual")
            return {"banned": node_id.hex(), "seconds": seconds, "nodes": [node_id.hex()]}
        nodes = net().ban_address(addr, seconds, "manual")
        return {"banned": addr, "seconds": seconds, "nodes": [n.hex() for n in nodes]}

    async def peer_unban(p: Params) -> Any:
        if "ip" in p:
            ip = p["ip"]
            try:
                text = str(ipaddress.ip_address(ip)) if isinstance(ip, str) else ""
            except ValueError:
                text = ""
            if not text:
                raise InvalidParams("'ip' must be an IPv4 or IPv6 address")
            # Bans are kept under the socket's own text for the IP, which
            # may not be the normalised form (an IPv4-mapped IPv6 address).
            return {"unbanned": net().unban(ip) or net().unban(text)}
        addr, node_id = ban_target(p)
        return {"unbanned": net().unban(node_id.hex() if node_id else addr)}

    return {
        "peer.list": peer_list,
        "peer.stats": peer_stats,
        "peer.add": peer_add,
        "peer.remove": peer_remove,
        "peer.ban": peer_ban,
        "peer.unban": peer_unban,
    }
