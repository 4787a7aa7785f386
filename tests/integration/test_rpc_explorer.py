"""The RPC methods the explorer reads its pages with, on in-process dev nodes
over their real sockets: chain.blocks, mempool.txs, search, market.slots,
cert.tree and tx.get's raw bytes, each checked against the other methods'
answers, and their bad params refused as -32602 invalid_params."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from powernode.client import (
    RpcError,
    build_cert_transfer,
    build_contract_create,
    build_order,
    build_ppa_propose,
    build_transfer,
    child_cert_id,
    endpoint_from_datadir,
)
from powernode.core.crypto import KeyPair
from powernode.engines.certificates import queries as cert_queries
from powernode.engines.market import queries as market_queries
from tests.harness.network import Network, async_wait_until, cut, heal
from tests.harness.wsrpc import WsRpc
from tests.integration.conftest import DevNode
from tests.integration.test_cert_rpc import Seed, cert_node  # noqa: F401
from tests.integration.test_contract_rpc import DAY, contract_node  # noqa: F401
from tests.integration.test_contract_rpc import Scenario as ContractScenario
from tests.integration.test_contract_rpc import mine as contract_mine
from tests.integration.test_market_rpc import Scenario, market_node, submit_all  # noqa: F401

INVALID_PARAMS = -32602


async def refused(dev: DevNode, method: str, params: Any) -> tuple[int, str]:
    with pytest.raises(RpcError) as info:
        await dev.rpc.call(method, params)
    return info.value.code, info.value.reason


async def test_chain_blocks_newest_first_as_chain_block_tells(dev_node: DevNode) -> None:
    rpc = dev_node.rpc
    await rpc.call("dev.mine", {"blocks": 3})
    alice, bob = dev_node.users[0], KeyPair.generate()
    tx = build_transfer(alice, chain_id=dev_node.chain_id, nonce=0, to=bob.address, amount=5)
    await rpc.call("tx.submit", {"raw": tx.raw.hex()})
    await rpc.call("dev.mine", {"blocks": 2})
    rows = await rpc.call("chain.blocks")
    assert [r["height"] for r in rows] == [5, 4, 3, 2, 1, 0]
    for row in rows:
        block = await rpc.call("chain.block", {"height": row["height"]})
        assert row == {
            "height": block["height"],
            "hash": block["hash"],
            "prev_hash": block["prev_hash"],
            "timestamp": block["timestamp"],
            "txs": len(block["txs"]),
            "size": block["size"],
            "miner": block["miner"],
            "state_root": block["state_root"],
        }
    assert rows[1]["txs"] == 1 and rows[0]["txs"] == 0
    assert [r["height"] for r in await rpc.call("chain.blocks", {"from": 3, "limit": 2})] == [3, 2]
    assert [r["height"] for r in await rpc.call("chain.blocks", [1, 100])] == [1, 0]
    # Past the tip: from the tip.
    assert (await rpc.call("chain.blocks", {"from": 99, "limit": 1}))[0]["height"] == 5
    for bad in ({"limit": 0}, {"limit": 101}, {"from": -1}, {"from": "tip"}, {"limit": 1.5}):
        assert await refused(dev_node, "chain.blocks", bad) == (INVALID_PARAMS, "invalid_params")


async def test_mempool_txs_in_mining_order(
    dev_node: DevNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    rpc, cid = dev_node.rpc, dev_node.chain_id
    a, b, c = dev_node.users[:3]
    to = KeyPair.generate().address
    cheap = build_transfer(a, chain_id=cid, nonce=0, to=to, amount=1, fee=1_000)
    a_next = build_transfer(a, chain_id=cid, nonce=1, to=to, amount=1, fee=90_000)
    rich = build_transfer(b, chain_id=cid, nonce=0, to=to, amount=1, fee=50_000)
    # c's nonce 1 waits for a nonce 0 that never came: not minable yet.
    gap = build_transfer(c, chain_id=cid, nonce=1, to=to, amount=1, fee=99_000)
    for tx in (cheap, a_next, rich, gap):
        await rpc.call("tx.submit", {"raw": tx.raw.hex()})
    got = await rpc.call("mempool.txs")
    assert got["size"] == 4 == (await rpc.call("mempool.info"))["size"]
    # b pays most of the minable heads; a's nonce 1 comes only after its nonce 0.
    assert [t["id"] for t in got["txs"]] == [
        rich.txid.hex(),
        cheap.txid.hex(),
        a_next.txid.hex(),
        gap.txid.hex(),
    ]
    row = got["txs"][0]
    assert row == {
        "id": rich.txid.hex(),
        "type": "transfer",
        "sender": b.address.hex(),
        "nonce": 0,
        "fee": 50_000,
        "size": rich.size,
        "fee_rate": 50_000 * 1000 // rich.size,
    }
    assert [t["id"] for t in (await rpc.call("mempool.txs", {"limit": 2}))["txs"]] == [
        rich.txid.hex(),
        cheap.txid.hex(),
    ]
    # One pass over the pool while neither it nor the tip changes.
    pool = dev_node.node.ledger.mempool
    passes = []
    real = type(pool).select

    def counted(self: Any, state_nonce: Any) -> Any:
        passes.append(1)
        return real(self, state_nonce)

    monkeypatch.setattr(type(pool), "select", counted)
    batch = [{"jsonrpc": "2.0", "id": i, "method": "mempool.txs"} for i in range(20)]
    _, answers = await rpc.raw(batch)
    assert all(a["result"] == got for a in answers) and passes == []
    extra = build_transfer(b, chain_id=cid, nonce=1, to=to, amount=1, fee=1_000)
    await rpc.call("tx.submit", {"raw": extra.raw.hex()})
    _, answers = await rpc.raw(batch)
    assert len(passes) == 1 and all(a["result"]["size"] == 5 for a in answers)
    await rpc.call("dev.mine", {"blocks": 1})
    left = await rpc.call("mempool.txs", [10])
    assert left == {**left, "size": 1} and [t["id"] for t in left["txs"]] == [gap.txid.hex()]
    for bad in ({"limit": 0}, {"limit": 1001}, {"limit": "all"}):
        assert await refused(dev_node, "mempool.txs", bad) == (INVALID_PARAMS, "invalid_params")


async def test_tx_get_gives_the_raw_signed_tx(dev_node: DevNode) -> None:
    alice = dev_node.users[0]
    tx = build_transfer(alice, chain_id=dev_node.chain_id, nonce=0, to=alice.address, amount=1)
    await dev_node.rpc.call("tx.submit", {"raw": tx.raw.hex()})
    assert (await dev_node.rpc.call("tx.get", {"id": tx.txid.hex()}))["raw"] == tx.raw.hex()
    await dev_node.rpc.call("dev.mine", {"blocks": 1})
    confirmed = await dev_node.rpc.call("tx.get", {"id": tx.txid.hex()})
    assert confirmed["status"] == "confirmed" and confirmed["raw"] == tx.raw.hex()


async def search(dev: DevNode, q: Any) -> list[tuple[str, str]]:
    got = await dev.rpc.call("search", {"q": q})
    assert got["q"] == q
    return [(m["kind"], m["id"]) for m in got["matches"]]


async def test_search_finds_heights_hashes_txs_accounts_and_orders(
    market_node: DevNode,  # noqa: F811
) -> None:
    dev = market_node
    s = Scenario(dev)
    await s.run()
    tip = await dev.rpc.call("node.info")
    genesis = await dev.rpc.call("chain.block", {"height": 0})
    assert await search(dev, "0") == [("block", genesis["hash"])]
    assert await search(dev, f" {tip['height']} ") == [("block", tip["tip"])]
    assert await search(dev, "0x" + tip["tip"].upper()) == [("block", tip["tip"])]
    assert await search(dev, str(tip["height"] + 1)) == []
    # A sell order's id is the id of the tx that placed it: both are listed.
    sell = s.sell.txid.hex()
    assert await search(dev, sell) == [("tx", sell), ("order", sell)]
    reg = s.register[0].txid.hex()
    assert await search(dev, reg) == [("tx", reg)]
    producer = s.producer.address.hex()
    assert await search(dev, producer) == [("account", producer)]
    assert await search(dev, KeyPair.generate().address.hex()) == []
    # A pending tx is found too.
    pending = build_transfer(
        s.outsider, chain_id=dev.chain_id, nonce=0, to=s.producer.address, amount=1
    )
    await dev.rpc.call("tx.submit", {"raw": pending.raw.hex()})
    assert await search(dev, pending.txid.hex()) == [("tx", pending.txid.hex())]
    for nothing in ("", "zz", "ab" * 7, "-1", "1.5", "g" * 64, "12345678901234567890123"):
        assert await search(dev, nothing) == [], nothing
    # Digits that are not ASCII (str.isdigit takes them, int() does not)
    # and a 0x number (hex, not a height) find nothing, and are no error.
    for nothing in ("²", "1²", "\u0661", "\u0660", "0x0", "0x1", "0X1"):
        assert await search(dev, nothing) == [], nothing
    for bad in ({"q": 5}, {"q": None}, {}, {"q": "a" * 131}):
        assert await refused(dev, "search", bad) == (INVALID_PARAMS, "invalid_params"), bad


async def test_search_finds_certs_and_devices(cert_node: DevNode) -> None:  # noqa: F811
    s = Seed(cert_node)
    await s.run()
    assert await search(cert_node, s.root.hex()) == [("cert", s.root.hex())]
    assert await search(cert_node, s.child.hex()) == [("cert", s.child.hex())]
    # A device's id is the tx that registered it.
    device = s.device.hex()
    assert await search(cert_node, device) == [("tx", device), ("device", device)]
    # cert.list and device.list take a limit: the first of the list.
    rpc = cert_node.rpc
    certs = await rpc.call("cert.list")
    assert len(certs) >= 2 and await rpc.call("cert.list", {"limit": 1}) == certs[:1]
    devices = await rpc.call("device.list")
    assert await rpc.call("device.list", {"limit": 1}) == devices[:1]
    for method in ("cert.list", "device.list"):
        for bad in (0, 10_001):
            got = await refused(cert_node, method, {"limit": bad})
            assert got == (INVALID_PARAMS, "invalid_params")


async def test_market_slots_newest_first_with_stats(
    market_node: DevNode,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev = market_node
    s = Scenario(dev)
    await s.run()
    # One more ask, one slot later: its slot comes first.
    ask = build_order(
        s.producer,
        chain_id=dev.chain_id,
        nonce=2,
        product="spot",
        side="sell",
        slot=s.slot + 900,
        energy_wh=10_000,
        price=700_000,
        source="wind",
    )
    await submit_all(dev, [ask])
    rows = await dev.rpc.call("market.slots", {"product": "spot"})
    assert [r["slot"] for r in rows] == [s.slot + 900, s.slot]
    stats = await dev.rpc.call("market.stats", {"product": "spot", "slot": s.slot})
    book = await dev.rpc.call("market.book", {"product": "spot", "slot": s.slot})
    assert rows[1] == {
        "slot": s.slot,
        "gate": book["gate"],
        "closed": book["closed"],
        **stats,
    }
    assert rows[1]["trades"] == 1 and rows[1]["volume_wh"] == 50_000
    assert rows[1]["avg_price"] == 550_000 and rows[1]["open_orders"] == 1
    assert rows[0]["trades"] == 0 and rows[0]["open_orders"] == 1
    assert await dev.rpc.call("market.slots", ["spot", 1]) == rows[:1]
    # One pass over the state per tip, however many calls: the index is kept.
    passes = []
    real = market_queries.slot_index

    def counted(state: Any) -> Any:
        passes.append(1)
        return real(state)

    monkeypatch.setattr(market_queries, "slot_index", counted)
    batch = [
        {"jsonrpc": "2.0", "id": i, "method": "market.slots", "params": {"product": "spot"}}
        for i in range(20)
    ]
    _, answers = await dev.rpc.raw(batch)
    assert [a["result"] for a in answers] == [rows] * 20
    assert passes == []  # the index of this tip was made by the calls above
    await dev.rpc.call("dev.mine", {"blocks": 1})
    _, answers = await dev.rpc.raw(batch)
    assert len(passes) == 1 and all(a["result"][0]["slot"] == s.slot + 900 for a in answers)
    # market.orders takes a limit: the first of the list.
    orders = await dev.rpc.call("market.orders", {"participant": s.producer.address.hex()})
    assert len(orders) >= 2
    got = await dev.rpc.call("market.orders", {"participant": s.producer.address.hex(), "limit": 1})
    assert got == orders[:1]
    bad: Any
    for bad in (0, 10_001, "1"):
        params = {"participant": s.producer.address.hex(), "limit": bad}
        assert await refused(dev, "market.orders", params) == (INVALID_PARAMS, "invalid_params")
    assert await dev.rpc.call("market.slots", {"product": "forward"}) == []
    assert await refused(dev, "market.slots", {"product": "candles"}) == (
        INVALID_PARAMS,
        "unknown_market",
    )
    for bad in ({}, {"product": "spot", "limit": 0}, {"product": "spot", "limit": 501}):
        assert await refused(dev, "market.slots", bad) == (INVALID_PARAMS, "invalid_params")


async def test_cert_tree_is_the_roots_whole_lineage(cert_node: DevNode) -> None:  # noqa: F811
    dev, rpc = cert_node, cert_node.rpc
    s = Seed(dev)
    await s.run()
    # A second part split off the root, after the first.
    second = build_cert_transfer(
        s.producer,
        chain_id=dev.chain_id,
        nonce=s.nonce(s.producer),
        cert_id=s.root,
        to=s.outsider.address,
        wh=10_000,
    )
    await rpc.call("tx.submit", {"raw": second.raw.hex()})
    await rpc.call("dev.mine", {"blocks": 1})
    child2 = child_cert_id(s.root, second.txid)
    tree = await rpc.call("cert.tree", {"cert": s.child.hex()})
    assert tree["root"] == s.root.hex() and tree["cert"] == s.child.hex()
    assert tree["truncated"] is False
    assert [(n["id"], n["parent"]) for n in tree["nodes"]] == [
        (s.root.hex(), None),
        (s.child.hex(), s.root.hex()),
        (child2.hex(), s.root.hex()),
    ]
    # From any certificate of the tree, the same tree.
    assert (await rpc.call("cert.tree", [s.root.hex()]))["nodes"] == tree["nodes"]
    root, child, other = tree["nodes"]
    for node in tree["nodes"]:
        got = await rpc.call("cert.get", {"cert": node["id"]})
        assert {k: node[k] for k in ("owner", "wh", "remaining_wh", "status")} == {
            k: got[k] for k in ("owner", "wh", "remaining_wh", "status")
        }
    assert [x["kind"] for x in root["steps"]] == ["reading", "split", "split"]
    assert [x["kind"] for x in child["steps"]] == ["split", "transfer", "retire"]
    assert [x["kind"] for x in other["steps"]] == ["split", "transfer"]
    # Each certificate's steps are cert.trace's steps of that certificate.
    trace = await rpc.call("cert.trace", {"cert": s.child.hex()})
    assert [x for x in trace["steps"] if x["cert"] == s.child.hex()] == child["steps"]
    assert [x["wh"] for x in child["steps"]] == [40_000, 40_000, 40_000]
    assert (child["status"], child["remaining_wh"], root["remaining_wh"]) == (
        "retired",
        40_000,
        50_000,
    )
    # Bounded: past max_nodes the tree is cut, depth first, and says so.
    cut = cert_queries.tree(dev.node.ledger.chain.state, s.root, 0, max_nodes=2)
    assert cut is not None and cut["truncated"] is True
    assert [n["id"] for n in cut["nodes"]] == [s.root.hex(), s.child.hex()]
    # And past max_steps in all: the root's 3 steps and the child's first 2.
    cut = cert_queries.tree(dev.node.ledger.chain.state, s.root, 0, max_steps=5)
    assert cut is not None and cut["truncated"] is True
    assert [n["id"] for n in cut["nodes"]] == [s.root.hex(), s.child.hex()]
    assert [len(n["steps"]) for n in cut["nodes"]] == [3, 2]
    cut = cert_queries.tree(dev.node.ledger.chain.state, s.root, 0, max_steps=3)
    assert cut is not None and cut["truncated"] is True
    assert [len(n["steps"]) for n in cut["nodes"]] == [3]
    whole = cert_queries.tree(dev.node.ledger.chain.state, s.root, 0, max_steps=8)
    assert whole is not None and whole["truncated"] is False
    unknown = await refused(dev, "cert.tree", {"cert": "ab" * 32})
    assert unknown == (-32004, "unknown_cert")
    for bad in ({}, {"cert": "zz"}, {"cert": "ab" * 20}):
        assert await refused(dev, "cert.tree", bad) == (INVALID_PARAMS, "invalid_params")


async def test_mempool_topic_tells_txs_entering_and_leaving(dev_node: DevNode) -> None:
    rpc, cid = dev_node.rpc, dev_node.chain_id
    a, b = dev_node.users[:2]
    to = KeyPair.generate().address
    first = build_transfer(a, chain_id=cid, nonce=0, to=to, amount=1, fee=1_000)
    other = build_transfer(b, chain_id=cid, nonce=0, to=to, amount=1, fee=2_000)
    async with WsRpc(endpoint_from_datadir(dev_node.datadir)) as ws:
        sid = await ws.subscribe("mempool")
        for tx in (first, other):
            await rpc.call("tx.submit", {"raw": tx.raw.hex()})
        added = [await ws.next(sid) for _ in range(2)]
        assert added == [
            {
                "type": "added",
                "id": tx.txid.hex(),
                "fee": tx.fee,
                "size": tx.size,
                "sender": tx.sender_address.hex(),
                "tx_type": "transfer",
            }
            for tx in (first, other)
        ]
        # A replacement: the old one leaves with its drop code, the new one enters.
        better = build_transfer(a, chain_id=cid, nonce=0, to=to, amount=1, fee=5_000)
        await rpc.call("tx.submit", {"raw": better.raw.hex()})
        moved = [await ws.next(sid) for _ in range(2)]
        assert {"type": "removed", "ids": [first.txid.hex()], "reason": "replaced"} in moved
        assert {m["type"] for m in moved} == {"added", "removed"}
        assert better.txid.hex() in {m.get("id") for m in moved}
        # A tx and its replacement in one batch: the first is told removed
        # (replaced) and never added after it left; the second is added.
        c = dev_node.users[2]
        once = build_transfer(c, chain_id=cid, nonce=0, to=to, amount=1, fee=1_000)
        again = build_transfer(c, chain_id=cid, nonce=0, to=to, amount=1, fee=9_000)
        batch = [
            {"jsonrpc": "2.0", "id": i, "method": "tx.submit", "params": {"raw": tx.raw.hex()}}
            for i, tx in enumerate((once, again))
        ]
        _, answers = await rpc.raw(batch)
        assert all("result" in x for x in answers), answers
        told = [await ws.next(sid) for _ in range(2)]
        await ws.call("node.info")
        assert ws.pending(sid) == 0
        assert {"type": "removed", "ids": [once.txid.hex()], "reason": "replaced"} in told
        assert [m.get("id") for m in told if m["type"] == "added"] == [again.txid.hex()]
        # A block: one notice for the txs it took out of the pool, in its order.
        await rpc.call("dev.mine", {"blocks": 1})
        block = await rpc.call("chain.block", {"height": 1})
        assert sorted(block["txs"]) == sorted(
            [better.txid.hex(), other.txid.hex(), again.txid.hex()]
        )
        assert await ws.next(sid) == {"type": "removed", "ids": block["txs"], "reason": "confirmed"}
        # An empty block tells nothing.
        await rpc.call("dev.mine", {"blocks": 1})
        await ws.call("node.info")
        assert ws.pending(sid) == 0
        assert (await rpc.call("mempool.txs"))["size"] == 0


async def test_search_finds_ppas_and_contracts(contract_node: DevNode) -> None:  # noqa: F811
    s = ContractScenario(contract_node)
    await s.setup()
    ppa = build_ppa_propose(
        s.producer, **s.kw(s.producer), buyer=s.consumer.address, device_id=None,
        share_bps=0, total_wh=10_000, price=400_000, start=s.interval,
        duration_days=1, period_seconds=DAY, accept_deadline=s.now + 3600,
    )  # fmt: skip
    contract = build_contract_create(
        s.consumer, **s.kw(s.consumer), parties=[s.consumer.address, s.producer.address],
        escrow=1_000_000, expiry=s.now + DAY,
        conditions=[["cert_retired_for", bytes(32), "consumer_001"]],
        actions=[["pay", s.producer.address, 1_000_000]], fee=2_000,
    )  # fmt: skip
    await contract_mine(contract_node, [ppa, contract])
    ppa_id, contract_id = ppa.txid.hex(), contract.txid.hex()
    assert await search(contract_node, ppa_id) == [("tx", ppa_id), ("ppa", ppa_id)]
    assert await search(contract_node, contract_id) == [
        ("tx", contract_id),
        ("contract", contract_id),
    ]
    # ppa.list and contract.list take a limit (by name).
    rpc = contract_node.rpc
    for method in ("ppa.list", "contract.list"):
        rows = await rpc.call(method)
        assert rows and await rpc.call(method, {"limit": 1}) == rows[:1]
        assert await refused(contract_node, method, {"limit": 0}) == (
            INVALID_PARAMS,
            "invalid_params",
        )


async def test_mempool_topic_tells_txs_a_reorg_brings_back(tmp_path: Path) -> None:
    users = [KeyPair.generate() for _ in range(2)]
    net = Network(tmp_path, users)
    try:
        a, b = await net.start(2)
        async with WsRpc(endpoint_from_datadir(a.config.datadir)) as ws:
            sid = await ws.subscribe("mempool")
            await cut(a, b)
            tx = build_transfer(
                users[0], chain_id=a.ledger.params.chain_id, nonce=0, to=users[1].address, amount=1
            )
            ((txid, err),) = await a.submit_and_relay([tx])
            assert txid == tx.txid and err is None
            assert (await ws.next(sid))["type"] == "added"
            await a.mine_now(1)
            confirmed = {"type": "removed", "ids": [tx.txid.hex()], "reason": "confirmed"}
            assert await ws.next(sid) == confirmed
            await b.mine_now(3)
            await heal(a, b)
            back = await ws.next(sid)
            assert back == {**back, "type": "added", "id": tx.txid.hex()}
            assert tx.txid in a.ledger.mempool
    finally:
        await net.stop()


async def test_mempool_followers_are_counted_and_the_pool_is_not_copied(
    dev_node: DevNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whether anyone follows the pool is asked on every tx: a count kept as
    subscriptions come and go, not a pass over every client. Around a block
    the node records the txs that leave the pool, instead of copying it."""
    push, ledger = dev_node.node.push, dev_node.node.ledger
    assert push is not None
    rpc, cid = dev_node.rpc, dev_node.chain_id
    seen: list[Any] = []
    real = type(ledger).submit_block

    def recording(self: Any, *args: Any, **kw: Any) -> Any:
        seen.append(None if self.mempool.left is None else set(self.mempool.left))
        return real(self, *args, **kw)

    monkeypatch.setattr(type(ledger), "submit_block", recording)
    await rpc.call("dev.mine", {"blocks": 1})
    assert seen == [None] and push.mempool_subs == 0
    async with WsRpc(endpoint_from_datadir(dev_node.datadir)) as ws:
        sid = await ws.subscribe("mempool")
        await ws.subscribe("tips")
        assert push.mempool_subs == 1 and push.wants_mempool
        assert await ws.call("unsubscribe", [sid]) is True
        assert push.mempool_subs == 0 and not push.wants_mempool
        sid = await ws.subscribe("mempool")
        await ws.subscribe("mempool")
        assert push.mempool_subs == 2
        a = dev_node.users[0]
        tx = build_transfer(a, chain_id=cid, nonce=0, to=a.address, amount=1)
        await rpc.call("tx.submit", {"raw": tx.raw.hex()})
        assert (await ws.next(sid))["type"] == "added"
        await rpc.call("dev.mine", {"blocks": 1})
        # Recording starts empty, and the confirmed notice still comes.
        assert seen[-1] == set() and ledger.mempool.left is None
        assert await ws.next(sid) == {
            "type": "removed",
            "ids": [tx.txid.hex()],
            "reason": "confirmed",
        }
    await async_wait_until(lambda: not push.clients, what="the client gone")
    assert push.mempool_subs == 0
