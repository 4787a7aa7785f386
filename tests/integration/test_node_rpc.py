"""An in-process node driven over its real JSON-RPC socket on loopback."""

from __future__ import annotations

import base64

import msgpack
import pytest

from powernode.client import RpcError, build_transfer
from powernode.core import encoding
from powernode.core.crypto import KeyPair
from powernode.core.tx import MAX_TX_BYTES, sign_tx
from tests.integration.conftest import FUNDS, DevNode


async def reason(dev: DevNode, method: str, params: dict) -> str:
    with pytest.raises(RpcError) as info:
        await dev.rpc.call(method, params)
    return info.value.reason


async def test_info_mine_and_transfer(dev_node: DevNode) -> None:
    rpc = dev_node.rpc
    info = await rpc.call("node.info")
    assert info["chain_id"] == "powernode-test"
    assert info["height"] == 0 and info["mining"] is False and info["dev"] is True

    mined = await rpc.call("dev.mine", {"blocks": 3})
    assert len(mined["hashes"]) == 3 and mined["height"] == 3

    alice, bob = dev_node.users[0], KeyPair.generate()
    tx = build_transfer(
        alice, chain_id=dev_node.chain_id, nonce=0, to=bob.address, amount=7_000_000, fee=500
    )
    txid = await rpc.call("tx.submit", {"raw": tx.raw.hex()})
    assert txid == tx.txid.hex()
    assert (await rpc.call("tx.get", {"id": txid}))["status"] == "pending"
    pool = await rpc.call("mempool.info")
    assert pool["size"] == 1 and pool["min_fee_rate"] == 0  # nothing turned away yet
    acct = await rpc.call("account.get", {"address": alice.address.hex()})
    assert acct["nonce"] == 0 and acct["next_nonce"] == 1

    await rpc.call("dev.mine", {"blocks": 1})
    st = await rpc.call("tx.get", {"id": txid})
    assert st["status"] == "confirmed" and st["height"] == 4
    assert st["receipt"]["status"] == "ok" and st["tx"]["fee"] == 500
    assert (await rpc.call("account.get", {"address": bob.address.hex()}))["balance"] == 7_000_000
    acct = await rpc.call("account.get", {"address": alice.address.hex()})
    assert acct == {**acct, "balance": FUNDS - 7_000_000 - 500, "nonce": 1}

    block = await rpc.call("chain.block", {"height": 4, "verbose": True})
    assert block["txs"][0]["id"] == txid and block["in_main_chain"]
    by_hash = await rpc.call("chain.block", {"hash": block["hash"]})
    assert by_hash["txs"] == [txid]


async def test_jsonrpc_protocol_errors(dev_node: DevNode) -> None:
    rpc = dev_node.rpc
    status, resp = await rpc.raw(b"{not json")
    assert resp["error"]["code"] == -32700
    _, resp = await rpc.raw({"jsonrpc": "2.0", "id": 1, "method": "no.such"})
    assert resp["error"]["code"] == -32601
    _, resp = await rpc.raw(
        {"jsonrpc": "2.0", "id": 2, "method": "chain.block", "params": {"height": "x"}}
    )
    assert resp["error"]["code"] == -32602
    _, resp = await rpc.raw({"id": 3, "method": "node.info"})
    assert resp["error"]["code"] == -32600
    _, resp = await rpc.raw([])
    assert resp["error"]["code"] == -32600
    # A batch answers each call in place, errors included.
    _, resp = await rpc.raw(
        [
            {"jsonrpc": "2.0", "id": 10, "method": "node.info"},
            {"jsonrpc": "2.0", "id": 11, "method": "no.such"},
            {"jsonrpc": "2.0", "id": 12, "method": "tx.submit", "params": {"raw": "zz"}},
        ]
    )
    by_id = {r["id"]: r for r in resp}
    assert by_id[10]["result"]["chain_id"] == "powernode-test"
    assert by_id[11]["error"]["code"] == -32601
    assert by_id[12]["error"]["data"]["code"] == "malformed"
    # Wrong credentials get 401, not an answer.
    bad = "Basic " + base64.b64encode(b"__cookie__:wrong").decode()
    status, _ = await rpc.raw(
        {"jsonrpc": "2.0", "id": 1, "method": "node.info"}, headers={"Authorization": bad}
    )
    assert status == 401
    assert (await rpc.call("node.info"))["height"] == 0
    # The scheme's name is case-insensitive (RFC 9110): the cookie under
    # "basic" or "BASIC" is the cookie.
    secret = base64.b64decode(rpc.endpoint.auth.split(" ", 1)[1])
    for scheme in ("basic", "BASIC"):
        status, resp = await rpc.raw(
            {"jsonrpc": "2.0", "id": 2, "method": "node.info"},
            headers={"Authorization": f"{scheme} " + base64.b64encode(secret).decode()},
        )
        assert status == 200 and resp["result"]["height"] == 0, (scheme, status)
    # More than one space after the scheme is allowed (RFC 9110 1*SP).
    status, _ = await rpc.raw(
        {"jsonrpc": "2.0", "id": 3, "method": "node.info"},
        headers={"Authorization": "Basic   " + base64.b64encode(secret).decode()},
    )
    assert status == 200
    # Credentials that are not ASCII are wrong ones (401), not a server error.
    for header in (
        "Basic " + base64.b64encode("__cookie__:é".encode()).decode(),
        "Basic " + base64.b64encode(b"__cookie__:\xff").decode(),
    ):
        status, _ = await rpc.raw(
            {"jsonrpc": "2.0", "id": 4, "method": "node.info"}, headers={"Authorization": header}
        )
        assert status == 401, (header, status)


async def test_bad_transactions_get_typed_errors(dev_node: DevNode) -> None:
    rpc = dev_node.rpc
    alice, bob = dev_node.users[0], dev_node.users[1]
    cid = dev_node.chain_id

    def raw(tx_obj: list) -> dict:
        return {"raw": encoding.encode(tx_obj).hex()}

    good = build_transfer(alice, chain_id=cid, nonce=0, to=bob.address, amount=1, fee=0)
    tampered = [cid, "transfer", alice.pubkey, 0, 0, [bob.address, 2], good.signature]
    assert await reason(dev_node, "tx.submit", raw(tampered)) == "bad_signature"

    wrong_chain = build_transfer(alice, chain_id="other-chain", nonce=0, to=bob.address, amount=1)
    assert await reason(dev_node, "tx.submit", {"raw": wrong_chain.raw.hex()}) == "wrong_chain"

    await rpc.call("tx.submit", {"raw": good.raw.hex()})
    await rpc.call("dev.mine", {"blocks": 1})
    assert await reason(dev_node, "tx.submit", {"raw": good.raw.hex()}) == "nonce_too_low"
    replay = build_transfer(alice, chain_id=cid, nonce=0, to=bob.address, amount=5)
    assert await reason(dev_node, "tx.submit", {"raw": replay.raw.hex()}) == "nonce_too_low"

    far = build_transfer(alice, chain_id=cid, nonce=1 + 256, to=bob.address, amount=1)
    assert await reason(dev_node, "tx.submit", {"raw": far.raw.hex()}) == "nonce_too_high"

    broke = KeyPair.generate()
    poor = build_transfer(broke, chain_id=cid, nonce=0, to=bob.address, amount=1)
    assert await reason(dev_node, "tx.submit", {"raw": poor.raw.hex()}) == "insufficient_funds"
    too_much = build_transfer(alice, chain_id=cid, nonce=1, to=bob.address, amount=FUNDS * 2)
    assert await reason(dev_node, "tx.submit", {"raw": too_much.raw.hex()}) == "insufficient_funds"

    negative = sign_tx(
        alice, chain_id=cid, tx_type="transfer", nonce=1, fee=0, payload=[bob.address, -5]
    )
    assert await reason(dev_node, "tx.submit", {"raw": negative.raw.hex()}) == "bad_amount"
    # A float cannot even be signed with our encoder; a hostile client writes it by hand.
    float_tx = msgpack.packb(
        [cid, "transfer", alice.pubkey, 1, 0, [bob.address, 1.5], bytes(64)], use_bin_type=True
    )
    assert await reason(dev_node, "tx.submit", {"raw": float_tx.hex()}) == "float_not_allowed"

    unknown = sign_tx(alice, chain_id=cid, tx_type="teleport", nonce=1, fee=0, payload=[])
    assert await reason(dev_node, "tx.submit", {"raw": unknown.raw.hex()}) == "unknown_tx_type"

    huge = msgpack.packb(
        [cid, "transfer", alice.pubkey, 1, 0, [bytes(MAX_TX_BYTES)], bytes(64)], use_bin_type=True
    )
    assert await reason(dev_node, "tx.submit", {"raw": huge.hex()}) == "oversize_tx"

    assert await reason(dev_node, "tx.submit", {"raw": "not hex"}) == "malformed"
    assert await reason(dev_node, "tx.submit", {"raw": "c1c1c1"}) == "malformed"
    assert await reason(dev_node, "tx.submit", {"raw": "93010203"}) == "malformed"

    ok = build_transfer(alice, chain_id=cid, nonce=1, to=bob.address, amount=3)
    await rpc.call("tx.submit", {"raw": ok.raw.hex()})
    assert await reason(dev_node, "tx.submit", {"raw": ok.raw.hex()}) == "already_known"
    # After all of that the node still serves and the good tx is pending.
    assert (await rpc.call("mempool.info"))["size"] == 1
    assert (await rpc.call("node.info"))["height"] == 1


async def test_a_batch_longer_than_a_pipeline_chunk_answers_each_call_in_place(
    dev_node: DevNode,
) -> None:
    """tx.submit decodes each chunk of a batch as admission reaches it: a
    call that does not decode, or whose signature fails, in any chunk gets
    its own error; every other call its txid."""
    alice, bob = dev_node.users[0], dev_node.users[1]
    txs = [
        build_transfer(k, chain_id=dev_node.chain_id, nonce=n, to=carol, amount=10)
        for n in range(150)
        for k, carol in ((alice, bob.address), (bob, alice.address))
    ]
    raws = [t.raw.hex() for t in txs]
    bad = {5: "zz", 140: "93010203", 290: "c1"}  # in the first, second and third chunk
    for i, text in bad.items():
        raws[i] = text
    forged = txs[200].raw[:-1] + bytes([txs[200].raw[-1] ^ 1])  # its last signature byte
    raws[200] = forged.hex()
    calls = [
        {"jsonrpc": "2.0", "id": i, "method": "tx.submit", "params": {"raw": r}}
        for i, r in enumerate(raws)
    ]
    _, resp = await dev_node.rpc.raw(calls)
    by_id = {r["id"]: r for r in resp}
    assert len(by_id) == len(calls)
    assert {i: by_id[i]["error"]["data"]["code"] for i in bad} == dict.fromkeys(bad, "malformed")
    assert by_id[200]["error"]["data"]["code"] == "bad_signature"
    # A sender's txs after a refused nonce wait in the pool (queued), so
    # every other call is admitted.
    ok = [i for i in range(len(txs)) if i not in bad and i != 200]
    assert all(by_id[i]["result"] == txs[i].txid.hex() for i in ok)
    info = await dev_node.rpc.call("mempool.info")
    assert info["size"] == len(ok)


async def test_mixed_batch_of_submissions(dev_node: DevNode) -> None:
    alice, bob = dev_node.users[0], dev_node.users[1]
    txs = [
        build_transfer(alice, chain_id=dev_node.chain_id, nonce=n, to=bob.address, amount=10)
        for n in range(20)
    ]
    calls = [
        {"jsonrpc": "2.0", "id": i, "method": "tx.submit", "params": {"raw": t.raw.hex()}}
        for i, t in enumerate(txs)
    ]
    calls.append(
        {"jsonrpc": "2.0", "id": 99, "method": "tx.submit", "params": {"raw": txs[0].raw.hex()}}
    )
    _, resp = await dev_node.rpc.raw(calls)
    by_id = {r["id"]: r for r in resp}
    assert all(by_id[i]["result"] == txs[i].txid.hex() for i in range(20))
    assert by_id[99]["error"]["data"]["code"] == "already_known"
    await dev_node.rpc.call("dev.mine", {"blocks": 1})
    assert (await dev_node.rpc.call("account.get", {"address": alice.address.hex()}))["nonce"] == 20
