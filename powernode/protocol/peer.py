"""The per-peer protocol state machine, sans I/O.

Fed frames (bytes) and the time (integer milliseconds of a monotonic
clock, given by the caller), it answers with messages for the node and
frames to send; it never touches a socket, so tests drive it with bytes.

Rules it enforces by itself:
- the handshake: the dialler sends ``hello`` first; the acceptor answers
  with its ``hello`` and its ``auth``; the dialler checks that proof and
  sends its own ``auth`` (protocol/auth.py says what is signed). Until the
  other side's ``auth`` has verified, nothing but that sequence is accepted:
  anything else, a second hello, or a hello from another chain, genesis or
  protocol version ends the connection with a typed error, and a signature
  that does not verify is ``bad_auth``;
- pings are answered here; pongs give the round-trip time;
- inventory is rate-limited by a token bucket (``inv_rate`` hashes a second,
  bursting to ``inv_burst``): a peer that floods announcements is cut off;
- frames are bounded by ``max_frame``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from powernode.core.crypto import KeyPair
from powernode.core.errors import BadAuth, Flood, Unexpected, VersionMismatch, WrongNetwork
from powernode.protocol.auth import ACCEPT, DIAL, auth_ok, sign_auth
from powernode.protocol.messages import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
    Auth,
    GetData,
    Hello,
    Inv,
    Message,
    Ping,
    Pong,
    decode_message,
)


@dataclass(slots=True)
class _Bucket:
    """Token bucket counted in thousandths of a token, so frequent small
    refills (rate x a few ms) are not rounded away."""

    rate: int  # tokens per second = milli-tokens per ms
    burst: int
    milli: int
    stamp_ms: int

    def take(self, n: int, now_ms: int) -> bool:
        self.milli = min(self.burst * 1000, self.milli + (now_ms - self.stamp_ms) * self.rate)
        self.stamp_ms = now_ms
        if n * 1000 > self.milli:
            return False
        self.milli -= n * 1000
        return True


@dataclass(slots=True)
class PeerProtocol:
    local: Hello
    # The key whose public half is ``local.node_id``: it signs our ``auth``.
    key: KeyPair
    # Whether we opened the connection: the dialler speaks first.
    dialler: bool
    max_frame: int = MAX_FRAME_BYTES
    inv_rate: int = 20_000
    inv_burst: int = 50_000
    # The other side's hello once it arrived; its node id is proven only
    # once ``ready``.
    remote: Hello | None = None
    rtt_ms: int | None = None
    _sent_hello: bool = False
    _proven: bool = False
    _outbox: list[bytes] = field(default_factory=list)
    _ping: tuple[int, int] | None = None
    _inv: _Bucket | None = None

    @property
    def ready(self) -> bool:
        """Both hellos exchanged and both ids proven: the session is open."""
        return self._proven

    @property
    def role(self) -> str:
        return DIAL if self.dialler else ACCEPT

    def start(self) -> None:
        """Call once when the connection opens: the dialler queues its hello
        (the acceptor waits for it)."""
        if self.dialler:
            self._send_hello()

    def _send_hello(self) -> None:
        if not self._sent_hello:
            self._sent_hello = True
            self._outbox.append(self.local.encode())

    def send(self, msg: Message) -> None:
        if not self.ready:
            raise Unexpected("cannot send before the handshake")
        self._outbox.append(msg.encode())

    def data_to_send(self) -> list[bytes]:
        out, self._outbox = self._outbox, []
        return out

    def ping(self, nonce: int, now_ms: int) -> None:
        self._ping = (nonce, now_ms)
        self.send(Ping(nonce))

    def ping_outstanding(self, now_ms: int) -> int:
        """Milliseconds the last ping has waited for its pong (0 if none pending)."""
        return 0 if self._ping is None else now_ms - self._ping[1]

    def receive(self, frame: bytes, now_ms: int) -> list[Message]:
        """Messages for the node from one frame (none during the handshake:
        watch ``ready``). Raises ProtocolError."""
        try:
            msg = decode_message(frame, max_bytes=self.max_frame)
        except VersionMismatch:
            if self.remote is not None:
                # A hello after the first, whatever its version, is misbehaviour.
                raise Unexpected("second hello") from None
            raise
        if not self._proven:
            self._handshake(msg, now_ms)
            return []
        if isinstance(msg, Hello):
            raise Unexpected("second hello")
        if isinstance(msg, Auth):
            raise Unexpected("second auth")
        if isinstance(msg, Ping):
            self.send(Pong(msg.nonce))
            return []
        if isinstance(msg, Pong):
            if self._ping is not None and self._ping[0] == msg.nonce:
                self.rtt_ms = now_ms - self._ping[1]
                self._ping = None
            return []
        if isinstance(msg, Inv | GetData):
            assert self._inv is not None
            if not self._inv.take(len(msg.hashes), now_ms):
                raise Flood(f"more than {self.inv_rate} inventory hashes a second")
        return [msg]

    def _handshake(self, msg: Message, now_ms: int) -> None:
        if self.remote is None:
            if not isinstance(msg, Hello):
                raise Unexpected(f"expected hello first, got {msg.name}")
            if self.dialler and not self._sent_hello:
                raise Unexpected("hello before ours")
            self._check_hello(msg)
            self.remote = msg
            if not self.dialler:
                self._send_hello()
                self._outbox.append(Auth(self._sign()).encode())
            return
        if not isinstance(msg, Auth):
            raise Unexpected(f"expected auth, got {msg.name}")
        remote, local = self.remote, self.local
        ok = auth_ok(
            msg.signature,
            chain_id=local.chain_id,
            genesis=local.genesis,
            role=ACCEPT if self.dialler else DIAL,
            signer=remote.node_id,
            other=local.node_id,
            signer_challenge=remote.challenge,
            other_challenge=local.challenge,
        )
        if not ok:
            raise BadAuth(f"auth does not verify for node id {remote.node_id.hex()[:16]}..")
        self._proven = True
        self._inv = _Bucket(self.inv_rate, self.inv_burst, self.inv_burst * 1000, now_ms)
        if self.dialler:
            self._outbox.append(Auth(self._sign()).encode())

    def _sign(self) -> bytes:
        remote, local = self.remote, self.local
        assert remote is not None
        return sign_auth(
            self.key,
            chain_id=local.chain_id,
            genesis=local.genesis,
            role=self.role,
            other=remote.node_id,
            signer_challenge=local.challenge,
            other_challenge=remote.challenge,
        )

    def _check_hello(self, hello: Hello) -> None:
        local = self.local
        # decode_message already refused another version; kept for a Hello
        # built in memory.
        if hello.version != PROTOCOL_VERSION:
            raise VersionMismatch(ours=PROTOCOL_VERSION, theirs=hello.version)
        if hello.chain_id != local.chain_id:
            raise WrongNetwork(f"peer is on chain {hello.chain_id!r}, we are on {local.chain_id!r}")
        if hello.genesis != local.genesis:
            raise WrongNetwork(f"peer's genesis {hello.genesis.hex()[:16]} is not ours")
        # Before the node id: a reflection echoes our id too. A real
        # connection to ourselves does not carry this connection's
        # challenge back (each side of it drew its own).
        if hello.challenge == local.challenge:
            # Our own challenge sent back: a reflection, never an honest peer.
            raise Unexpected("our own challenge")
        if hello.node_id == local.node_id:
            raise WrongNetwork("connected to ourselves")
