"""The dialler's side of a peer handshake, for benchmarks that play a peer
over a raw aiohttp WebSocket: send our hello, read the node's hello and
auth, send our auth (README, "Peer protocol")."""

from __future__ import annotations

import os

import aiohttp

from powernode.core.crypto import KeyPair
from powernode.protocol.auth import DIAL, sign_auth
from powernode.protocol.messages import (
    CHALLENGE_SIZE,
    PROTOCOL_VERSION,
    Auth,
    Hello,
    decode_message,
)


def dialler_hello(chain_id: str, genesis: bytes, key: KeyPair, *, agent: str) -> Hello:
    return Hello(
        version=PROTOCOL_VERSION,
        chain_id=chain_id,
        genesis=genesis,
        height=0,
        work=bytes(32),
        listen="",
        node_id=key.pubkey,
        agent=agent,
        challenge=os.urandom(CHALLENGE_SIZE),
    )


async def handshake(
    ws: aiohttp.ClientWebSocketResponse, hello: Hello, key: KeyPair, *, timeout: float = 10
) -> bool:
    """Shake hands as the dialler; False if the node hung up first."""
    await ws.send_bytes(hello.encode())
    got: list[object] = []
    while len(got) < 2:
        msg = await ws.receive(timeout=timeout)
        if msg.type != aiohttp.WSMsgType.BINARY:
            return False
        got.append(decode_message(msg.data, max_bytes=64 << 20))
    remote = got[0]
    if not isinstance(remote, Hello) or not isinstance(got[1], Auth):
        return False
    signature = sign_auth(
        key,
        chain_id=hello.chain_id,
        genesis=hello.genesis,
        role=DIAL,
        other=remote.node_id,
        signer_challenge=hello.challenge,
        other_challenge=remote.challenge,
    )
    await ws.send_bytes(Auth(signature).encode())
    return True
