"""A blocking WebSocket JSON-RPC client, for the CLI's ``--wait``.

Synchronous like ``client.RpcClient`` (the CLI and scripts are blocking
code), over a plain socket: the handshake of RFC 6455 section 4 and its
framing (section 5), enough for text messages, pings and the close
handshake. ``wait_for_tx`` is what the CLI uses: subscribe to a tx's
status and return when it is final or the time is up.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import socket
import time
from typing import Any
from urllib.parse import urlsplit

from powernode.client import Endpoint, RpcError, RpcUnavailable

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# The largest message read: a verbose block answer fits many times over.
MAX_MESSAGE = 64 * 1024 * 1024
MAX_HANDSHAKE = 64 * 1024
# Statuses after which a tx's status does not change on its own.
FINAL = ("confirmed", "dropped", "unknown")


class WsUnavailable(Exception):
    """The node answered, but not with a WebSocket (a node from before
    push subscriptions): the caller falls back to polling."""


class WsClosed(RpcUnavailable):
    """The node closed the WebSocket (``code``, ``reason``) or the socket
    ended: the node is gone for this client, as ``RpcUnavailable`` says."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"WebSocket closed: {code} {reason}".strip())
        self.code = code
        self.reason = reason


def mask(payload: bytes, key: bytes) -> bytes:
    """XOR ``payload`` with the 4-byte ``key`` repeated (as one big integer:
    a Python loop per byte would be slow for a large message)."""
    n = len(payload)
    if n == 0:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


def encode_frame(opcode: int, payload: bytes, key: bytes) -> bytes:
    """One final frame from a client (clients always mask, section 5.3)."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 1 << 16:
        head += bytes([0x80 | 126]) + n.to_bytes(2, "big")
    else:
        head += bytes([0x80 | 127]) + n.to_bytes(8, "big")
    return head + key + mask(payload, key)


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()


class WsClient:
    """One WebSocket to the node's ``GET /rpc``; answers and notices in
    order, notices kept aside while a call waits for its answer."""

    def __init__(self, endpoint: Endpoint, *, timeout: float = 10.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._id = 0
        self.notices: list[dict[str, Any]] = []

    def __enter__(self) -> WsClient:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- connection -------------------------------------------------------

    def connect(self) -> None:
        parts = urlsplit(self.endpoint.url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        try:
            self._sock = socket.create_connection((host, port), timeout=self.timeout)
        except OSError as exc:
            raise RpcUnavailable(f"cannot reach node at {self.endpoint.url}: {exc}") from exc
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {parts.path or '/rpc'} HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: {self.endpoint.auth}\r\n\r\n"
        )
        deadline = time.monotonic() + self.timeout
        try:
            self._sock.sendall(request.encode())
            head = self._read_head(deadline)
        except (OSError, WsClosed) as exc:
            self.close()
            raise RpcUnavailable(f"WebSocket handshake with {self.endpoint.url}: {exc}") from exc
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields = status_line.split(" ", 2)
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if status == 401:
            self.close()
            raise RpcError(
                -32600, "unauthorized (stale cookie? restart the client)", {"code": "unauthorized"}
            )
        if status != 101 or headers.get("sec-websocket-accept") != accept_key(key):
            self.close()
            raise WsUnavailable(f"{self.endpoint.url} offers no WebSocket (HTTP {status})")

    def _read_head(self, deadline: float) -> bytes:
        while b"\r\n\r\n" not in self._buf:
            if len(self._buf) > MAX_HANDSHAKE:
                raise WsClosed(0, "handshake answer too long")
            self._fill(deadline)
        head, _, rest = bytes(self._buf).partition(b"\r\n\r\n")
        self._buf = bytearray(rest)
        return head

    def close(self) -> None:
        if self._sock is not None:
            # A polite close frame; the node may be gone already.
            with contextlib.suppress(OSError):
                self._sock.sendall(encode_frame(OP_CLOSE, (1000).to_bytes(2, "big"), os.urandom(4)))
            self._sock.close()
            self._sock = None

    # --- bytes ------------------------------------------------------------

    def _fill(self, deadline: float) -> None:
        """Read what the socket has, waiting until ``deadline`` at most
        (``TimeoutError`` past it)."""
        assert self._sock is not None
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self._sock.settimeout(left)
        try:
            chunk = self._sock.recv(65536)
        except TimeoutError:
            raise TimeoutError from None
        if not chunk:
            raise WsClosed(1006, "connection ended")
        self._buf += chunk

    def _take(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            self._fill(deadline)
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _send(self, opcode: int, payload: bytes) -> None:
        assert self._sock is not None
        self._sock.settimeout(self.timeout)
        self._sock.sendall(encode_frame(opcode, payload, os.urandom(4)))

    def recv(self, deadline: float) -> dict[str, Any] | list[Any]:
        """The next message, as JSON (``TimeoutError`` past ``deadline``)."""
        message = bytearray()
        while True:
            b0, b1 = self._take(2, deadline)
            opcode, n = b0 & 0x0F, b1 & 0x7F
            if n == 126:
                n = int.from_bytes(self._take(2, deadline), "big")
            elif n == 127:
                n = int.from_bytes(self._take(8, deadline), "big")
            key = self._take(4, deadline) if b1 & 0x80 else b""
            if len(message) + n > MAX_MESSAGE:
                raise WsClosed(1009, "message too big")
            payload = self._take(n, deadline)
            if key:
                payload = mask(payload, key)
            if opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                raise WsClosed(code, payload[2:].decode("utf-8", "replace"))
            elif opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                message += payload
                if b0 & 0x80:
                    try:
                        doc: dict[str, Any] | list[Any] = json.loads(message)
                    except ValueError:
                        raise WsClosed(1007, "not JSON") from None
                    return doc
            # A pong, or a reserved opcode: nothing to do.

    # --- JSON-RPC ---------------------------------------------------------

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self._id += 1
        doc = {"jsonrpc": "2.0", "id": self._id, "method": method, "params": params or {}}
        self._send(OP_TEXT, json.dumps(doc).encode())
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                msg = self.recv(deadline)
            except TimeoutError:
                raise RpcUnavailable(
                    f"no answer to {method} from {self.endpoint.url} within {self.timeout:g} s"
                ) from None
            if isinstance(msg, dict) and msg.get("method") == "subscription":
                self.notices.append(msg)
                continue
            if isinstance(msg, dict) and msg.get("id") == self._id:
                if "error" in msg:
                    e = msg["error"]
                    raise RpcError(e.get("code", 0), e.get("message", ""), e.get("data"))
                return msg.get("result")

    def notice(self, deadline: float) -> dict[str, Any]:
        """The next notice's ``params`` (``subscription`` and ``result``)."""
        while not self.notices:
            msg = self.recv(deadline)
            if isinstance(msg, dict) and msg.get("method") == "subscription":
                self.notices.append(msg)
        params: dict[str, Any] = self.notices.pop(0).get("params", {})
        return params


def wait_for_tx(endpoint: Endpoint, txid: str, seconds: float) -> dict[str, Any]:
    """Subscribe to ``txid``'s status and wait up to ``seconds`` for it to be
    final: the last status the node pushed (``pending`` when the time ran
    out). ``WsUnavailable`` if the node has no WebSocket."""
    deadline = time.monotonic() + seconds
    status: dict[str, Any] = {"id": txid, "status": "pending"}
    with WsClient(endpoint, timeout=max(1.0, min(seconds, 10.0))) as ws:
        sid = ws.call("subscribe", {"topic": "tx", "id": txid})
        while True:
            try:
                params = ws.notice(deadline)
            except TimeoutError:
                return status
            if params.get("subscription") == sid and isinstance(params.get("result"), dict):
                status = params["result"]
                if status.get("status") in FINAL:
                    return status
