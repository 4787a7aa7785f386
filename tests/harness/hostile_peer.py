"""A hostile P2P client as a process of its own, for the netns e2e tests:
run in a namespace of its own (``ip netns exec NS python -m
tests.harness.hostile_peer ...``), it reaches the nodes from an IP of its
own, as a stranger on another machine would. It does one thing, prints one
JSON line with what happened and exits.

It says its hello first (the dialler speaks first), for the chain and
genesis it is given, with the field layout and sizes of the protocol module
it runs with; it never proves a node id (no ``auth``).

    junk-first TARGET               a junk frame before any hello
    junk-after-hello TARGET         our hello, then a junk frame
    wrong-chain TARGET              a hello for another chain id
    impostor TARGET --copy HONEST   the id and listen address HONEST sends,
                                    claimed to TARGET, then a junk frame
    silent TARGET --count N         N connections that never say hello, held
                                    --hold seconds; how many the node closed

Output: ``{"closed": bool, "close_code": int|null, "hello": bool, ...}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import sys
from typing import Any

import aiohttp

from powernode.protocol import messages
from powernode.protocol.messages import PROTOCOL_VERSION, Hello
from tests.harness.testpeer import TestPeer

JUNK = b"\xc1\x00junk"  # 0xc1 is never valid msgpack
WAIT = 10.0  # s for the node to answer or hang up


def own_listen(ip: str) -> str:
    """A listen address on our own IP (nobody listens there: it is only
    claimed, and a ban on it touches nobody else)."""
    return f"{ip}:8646"


def new_peer(target: str) -> TestPeer:
    # The hello TestPeer holds is never sent: each action sends its own.
    blank: dict[str, Any] = {f.name: None for f in dataclasses.fields(Hello)}
    return TestPeer(target, Hello(**blank))


class Refused(Exception):
    """The node refused the connection itself (before any frame)."""


def make_hello(a: argparse.Namespace, **changes: Any) -> Hello:
    """What an honest stranger on the node's chain says first: a fresh node
    id and challenge, our own listen address."""
    fields: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "chain_id": a.chain_id,
        "genesis": bytes.fromhex(a.genesis),
        "height": 0,
        "work": bytes(32),
        "listen": own_listen(a.ip),
        "node_id": os.urandom(messages.PUBKEY_SIZE),
        "agent": "hostile/1",
        "challenge": os.urandom(messages.CHALLENGE_SIZE),
    }
    fields.update(changes)
    return Hello(**fields)


async def open_peer(target: str, hello: Hello) -> tuple[TestPeer, Hello | None]:
    """Connect, say ``hello`` and take the node's hello (None if it hung up
    first). ``Refused`` if the node would not even connect."""
    peer = new_peer(target)
    try:
        await peer.connect(handshake=False)
    except (aiohttp.ClientError, OSError) as exc:
        await peer.close()
        raise Refused(str(exc)) from exc
    await peer.send(hello)
    with contextlib.suppress(AssertionError):  # a node that stays silent: no hello
        await peer.wait_for(lambda: peer.remote is not None or peer.is_closed, timeout=WAIT)
    return peer, peer.remote


async def hang_up_result(peer: TestPeer, hello: bool) -> dict[str, Any]:
    with contextlib.suppress(AssertionError):
        await peer.wait_disconnected(WAIT)
    return {"closed": peer.is_closed, "close_code": peer.close_code, "hello": hello}


async def junk_first(a: argparse.Namespace) -> dict[str, Any]:
    peer = new_peer(a.target)
    try:
        try:
            await peer.connect(handshake=False)
        except (aiohttp.ClientError, OSError) as exc:
            raise Refused(str(exc)) from exc
        await peer.send_raw(JUNK)
        return await hang_up_result(peer, peer.remote is not None)
    finally:
        await peer.close()


async def after_hello(a: argparse.Namespace, **changes: Any) -> dict[str, Any]:
    peer, remote = await open_peer(a.target, make_hello(a, **changes))
    try:
        if a.action != "wrong-chain" and not peer.is_closed:
            await peer.send_raw(JUNK)
        return await hang_up_result(peer, remote is not None)
    finally:
        await peer.close()


async def impostor(a: argparse.Namespace) -> dict[str, Any]:
    # The honest node's id and listen address, from its own hello.
    honest, honest_hello = await open_peer(a.copy, make_hello(a))
    await honest.close()
    if honest_hello is None:
        return {"error": f"{a.copy} sent no hello"}
    out = await after_hello(a, node_id=honest_hello.node_id, listen=honest_hello.listen)
    out["copied_id"] = honest_hello.node_id.hex()
    out["copied_listen"] = honest_hello.listen
    return out


async def silent(a: argparse.Namespace) -> dict[str, Any]:
    peers = [new_peer(a.target) for _ in range(a.count)]
    opened = await asyncio.gather(
        *(p.connect(handshake=False) for p in peers), return_exceptions=True
    )
    try:
        refused = sum(1 for r in opened if isinstance(r, BaseException))
        # Held until the node has closed all but ``--keep`` or ``--hold`` s
        # pass: the caller asserts on the count, not on the time.
        with contextlib.suppress(Exception):
            await peers[0].wait_for(
                lambda: sum(1 for p in peers if p.is_closed) >= a.count - a.keep,
                timeout=a.hold,
            )
        return {
            "opened": a.count - refused,
            "closed": sum(1 for p in peers if p.is_closed),
            "refused": refused,
        }
    finally:
        await asyncio.gather(*(p.close() for p in peers))


ACTIONS = {
    "junk-first": junk_first,
    "junk-after-hello": after_hello,
    "wrong-chain": lambda a: after_hello(a, chain_id="powernode-not-this-one"),
    "impostor": impostor,
    "silent": silent,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("action", choices=sorted(ACTIONS))
    ap.add_argument("target", help="the node's p2p address, host:port")
    ap.add_argument("--ip", required=True, help="our own IP (for the listen address we claim)")
    ap.add_argument("--chain-id", required=True)
    ap.add_argument("--genesis", required=True, help="the genesis block hash (hex)")
    ap.add_argument("--copy", help="impostor: the honest node to copy, host:port")
    ap.add_argument("--count", type=int, default=6)
    ap.add_argument("--keep", type=int, default=0, help="silent: stop once all but KEEP closed")
    ap.add_argument("--hold", type=float, default=8.0)
    a = ap.parse_args(argv)
    try:
        out = asyncio.run(ACTIONS[a.action](a))
    except Refused as exc:
        out = {"closed": True, "close_code": None, "hello": False, "refused": str(exc)}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
