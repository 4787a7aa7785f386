"""A scriptable peer for P2P tests, in the spirit of Bitcoin Core's P2PInterface.

It speaks the wire protocol from the outside, over a real WebSocket to a
node's ``ws://host:port/p2p``, but follows only the rules a test asks it to:
it can shake hands properly (hello, then its ``auth`` signed with its own
key, which a test may swap for another's to pose as an impostor) or with a
wrong chain id / genesis / version,
send any ``Message`` or raw bytes (including frames larger than the node
accepts), and it records what the node sends. ``on_<name>`` hooks answer
messages (ping, getheaders and getdata by default; override or set to None).

    async with TestPeer.for_node(node) as peer:
        await peer.connect()
        await peer.send(Inv("tx", [h]))
        await peer.wait_for(lambda: peer.last("getdata"))
        await peer.send_raw(b"\\xc1")
        await peer.wait_disconnected()
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import WSMsgType

from powernode.core.crypto import KeyPair
from powernode.protocol.auth import DIAL, sign_auth
from powernode.protocol.messages import (
    CHALLENGE_SIZE,
    PROTOCOL_VERSION,
    Auth,
    BlockMsg,
    GetData,
    GetHeaders,
    Headers,
    Hello,
    Message,
    NotFound,
    Ping,
    Pong,
    ProtocolError,
    TxMsg,
    decode_message,
)
from tests.harness.network import async_wait_until

# Big enough for any frame a test wants to send or receive (the node's own
# limit is about 9 MiB; oversize tests go past it).
MAX_MSG_SIZE = 64 * 1024 * 1024


def node_hello(node: Any, key: KeyPair | None = None, **changes: Any) -> Hello:
    """A hello that a running in-process ``Node`` accepts (its chain, its
    genesis, ``key``'s node id), with any field overridden: pass
    ``genesis=...`` to be refused."""
    L = node.ledger
    fields: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "chain_id": L.params.chain_id,
        "genesis": L.chain.genesis.hash,
        "height": 0,
        "work": bytes(32),
        "listen": "",
        "node_id": (key or KeyPair.generate()).pubkey,
        "agent": "testpeer/1",
        "challenge": os.urandom(CHALLENGE_SIZE),
    }
    fields.update(changes)
    return Hello(**fields)


class TestPeer:
    """One connection to a node. Not reusable: make a new one to reconnect."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        address: str,
        hello: Hello,
        *,
        key: KeyPair | None = None,
        max_msg_size: int = MAX_MSG_SIZE,
        local_ip: str = "",
    ) -> None:
        self.address = address  # "host:port" of the node's p2p listener
        self.hello = hello
        # Signs our auth; a key other than the hello's node id's is an impostor's.
        self.key = key or KeyPair.generate()
        # The source IP to connect from ("" = any): another loopback IP, such
        # as 127.0.0.2, is another host to a node on 127.0.0.1.
        self.local_ip = local_ip
        self.authed = False  # the node's auth arrived and we sent ours
        self.max_msg_size = max_msg_size
        self.received: list[Message] = []
        self.bad_frames: list[tuple[bytes, ProtocolError]] = []  # what we could not decode
        self.remote: Hello | None = None
        self.close_code: int | None = None
        self.close_reason = ""  # the text of the node's close frame
        self.disconnected = asyncio.Event()
        # Answers for the default hooks: block/tx hash -> raw bytes, and the
        # headers (encoded) to return for any getheaders.
        self.blocks: dict[bytes, bytes] = {}
        self.txs: dict[bytes, bytes] = {}
        self.headers: list[bytes] | None = None
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    def for_node(
        cls, node: Any, *, key: KeyPair | None = None, local_ip: str = "", **hello_changes: Any
    ) -> TestPeer:
        """A peer for an in-process ``Node`` with p2p enabled: its node id is
        ``key``'s (a fresh one by default) unless ``node_id=`` says otherwise."""
        assert node.p2p is not None, "p2p is not enabled on this node"
        key = key or KeyPair.generate()
        hello = node_hello(node, key, **hello_changes)
        return cls(node.p2p.listen, hello, key=key, local_ip=local_ip)

    # --- connection -------------------------------------------------------------

    async def connect(self, *, handshake: bool = True, timeout: float = 10.0) -> TestPeer:
        """Open the WebSocket; with ``handshake``, send our hello, wait for
        the node's hello and auth, and send our auth (``on_auth``). Returns
        when that is done or the node hung up (a node refuses a hello it
        does not like without a word)."""
        connector = aiohttp.TCPConnector(local_addr=(self.local_ip, 0)) if self.local_ip else None
        self._session = aiohttp.ClientSession(connector=connector)
        self._ws = await self._session.ws_connect(
            f"http://{self.address}/p2p",
            max_msg_size=self.max_msg_size,
            autoping=True,
            timeout=aiohttp.ClientWSTimeout(ws_close=5),
        )
        self._reader = asyncio.create_task(self._read_loop(), name="testpeer-reader")
        if handshake:
            await self.send(self.hello)
            await self.wait_for(lambda: self.authed or self.is_closed, timeout=timeout)
        return self

    def auth_for(self, remote: Hello) -> Auth:
        """Our auth for the node's ``remote`` hello, signed with ``key``."""
        return Auth(
            sign_auth(
                self.key,
                chain_id=self.hello.chain_id,
                genesis=self.hello.genesis,
                role=DIAL,
                other=remote.node_id,
                signer_challenge=self.hello.challenge,
                other_challenge=remote.challenge,
            )
        )

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            # wait() neither raises the reader's end nor swallows a cancel
            # aimed at the test that is closing this peer.
            await asyncio.wait([self._reader])
        if self._session is not None:
            await self._session.close()
        self.disconnected.set()

    async def __aenter__(self) -> TestPeer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def is_closed(self) -> bool:
        return self.disconnected.is_set()

    # --- sending --------------------------------------------------------------------

    async def send(self, msg: Message) -> None:
        await self.send_raw(msg.encode())

    async def send_raw(self, frame: bytes) -> None:
        """Any bytes as one binary frame (need not be valid)."""
        assert self._ws is not None, "not connected"
        await self._ws.send_bytes(frame)

    async def send_text(self, text: str) -> None:
        assert self._ws is not None, "not connected"
        await self._ws.send_str(text)

    # --- receiving --------------------------------------------------------------------

    async def _read_loop(self) -> None:
        ws = self._ws
        assert ws is not None
        try:
            while True:
                msg = await ws.receive()
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
                    if msg.type == WSMsgType.CLOSE:
                        self.close_reason = str(msg.extra or "")
                    break
                if msg.type != WSMsgType.BINARY:
                    continue
                try:
                    m = decode_message(msg.data, max_bytes=self.max_msg_size)
                except ProtocolError as exc:
                    self.bad_frames.append((msg.data, exc))
                    continue
                if isinstance(m, Hello) and self.remote is None:
                    self.remote = m
                self.received.append(m)
                hook = getattr(self, f"on_{m.name}", None)
                if hook is not None:
                    await hook(m)
        except (ConnectionError, aiohttp.ClientError):
            pass
        finally:
            self.close_code = ws.close_code
            self.disconnected.set()

    def messages(self, name: str) -> list[Message]:
        return [m for m in self.received if m.name == name]

    def last(self, name: str) -> Message | None:
        found = self.messages(name)
        return found[-1] if found else None

    async def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 10.0, what: str = ""
    ) -> Any:
        return await async_wait_until(predicate, timeout=timeout, what=what or repr(predicate))

    async def wait_for_message(self, name: str, timeout: float = 10.0) -> Message:
        return await async_wait_until(
            lambda: self.last(name), timeout=timeout, what=f"a {name!r} message"
        )

    async def wait_disconnected(self, timeout: float = 10.0) -> int | None:
        """Wait until the node closes the connection; returns the close code."""
        try:
            async with asyncio.timeout(timeout):
                await self.disconnected.wait()
        except TimeoutError:
            raise AssertionError(f"still connected after {timeout}s") from None
        return self.close_code

    async def ping_or_disconnect(self, timeout: float = 10.0) -> bool:
        """Send a ping and wait for its pong (True) or for the node to hang up
        (False). The node handles one connection's frames in order, so a pong
        means everything sent before the ping has been handled."""
        nonce = int.from_bytes(os.urandom(7), "big")
        await self.send(Ping(nonce))

        def answered() -> bool:
            return any(isinstance(m, Pong) and m.nonce == nonce for m in self.received)

        await self.wait_for(
            lambda: answered() or self.is_closed, timeout=timeout, what=f"pong {nonce}"
        )
        return answered()

    async def sync_with_ping(self, timeout: float = 10.0) -> None:
        """Round-trip a ping: everything sent before it has been handled."""
        assert await self.ping_or_disconnect(timeout), "the node hung up instead of answering"

    # --- default hooks (override in a subclass, or set to None) ---------------------

    async def on_auth(self, msg: Auth) -> None:
        """The node proved its id (not checked here): answer with ours."""
        if self.remote is not None and not self.authed:
            await self.send(self.auth_for(self.remote))
            self.authed = True

    async def on_ping(self, msg: Ping) -> None:
        await self.send(Pong(msg.nonce))

    async def on_getheaders(self, msg: GetHeaders) -> None:
        if self.headers is not None:
            await self.send(Headers(self.headers))

    async def on_getdata(self, msg: GetData) -> None:
        store = self.blocks if msg.kind == "block" else self.txs
        missing = []
        for h in msg.hashes:
            raw = store.get(h)
            if raw is None:
                missing.append(h)
            elif msg.kind == "block":
                await self.send(BlockMsg(raw))
            else:
                await self.send(TxMsg(raw))
        if missing:
            await self.send(NotFound(msg.kind, missing))
