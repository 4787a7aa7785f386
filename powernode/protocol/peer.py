"""The per-peer protocol state machine, sans I/O.

Fed frames (bytes) and the time (integer milliseconds of a monotonic
clock, given by the caller), it answers with messages for the node and
frames to send; it never touches a socket, so tests drive it with bytes.

Rules it enforces by itself:
- the first message each way is ``hello``; anything else first, a second
  hello, or a hello from another chain, genesis or protocol version ends the
  connection with a typed error;
- pings are answered here; pongs give the round-trip time;
- inventory is rate-limited by a token bucket (``inv_rate`` hashes a second,
  bursting to ``inv_burst``): a peer that floods announcements is cut off;
- frames are bounded by ``max_frame``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from powernode.core.errors import Flood, Unexpected, WrongNetwork
from powernode.protocol.messages import (
    MAX_FRAME_BYTES,
    PROTOCOL_VERSION,
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
    max_frame: int = MAX_FRAME_BYTES
    inv_rate: int = 20_000
    inv_burst: int = 50_000
    remote: Hello | None = None
    rtt_ms: int | None = None
    _sent_hello: bool = False
    _outbox: list[bytes] = field(default_factory=list)
    _ping: tuple[int, int] | None = None
    _inv: _Bucket | None = None

    @property
    def ready(self) -> bool:
        return self.remote is not None and self._sent_hello

    def start(self) -> None:
        """Queue our hello; call once when the connection opens."""
        if not self._sent_hello:
            self._sent_hello = True
            self._outbox.append(self.local.encode())

    def send(self, msg: Message) -> None:
        if not self.ready and not isinstance(msg, Hello):
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
        """Messages for the node from one frame. Raises ProtocolError."""
        msg = decode_message(frame, max_bytes=self.max_frame)
        if self.remote is None:
            if not isinstance(msg, Hello):
                raise Unexpected(f"expected hello first, got {msg.name}")
            self._check_hello(msg)
            self.remote = msg
            self._inv = _Bucket(self.inv_rate, self.inv_burst, self.inv_burst * 1000, now_ms)
            self.start()
            return [msg]
        if isinstance(msg, Hello):
            raise Unexpected("second hello")
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

    def _check_hello(self, hello: Hello) -> None:
        local = self.local
        if hello.version != PROTOCOL_VERSION:
            raise WrongNetwork(f"protocol version {hello.version}, we speak {PROTOCOL_VERSION}")
        if hello.chain_id != local.chain_id:
            raise WrongNetwork(f"peer is on chain {hello.chain_id!r}, we are on {local.chain_id!r}")
        if hello.genesis != local.genesis:
            raise WrongNetwork(f"peer's genesis {hello.genesis.hex()[:16]} is not ours")
        if hello.node_id == local.node_id:
            raise WrongNetwork("connected to ourselves")
