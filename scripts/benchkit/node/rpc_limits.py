"""bench_rpc_limits' hostile requests and what one costs a node process: the
peak RSS while the node serves it (``VmHWM``, reset through ``clear_refs``
just before the request), the longest ``node.info`` call made meanwhile over
another connection (how long the event loop was blocked), and the answer.

Each request is authenticated and at most ``max_request_bytes`` long: what
is measured is what a client with the cookie can make the node do."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchkit.node.txs import key_for, nonce_major, sign_grid
from benchkit.rpc import RawRpc, request_body
from powernode.client import Endpoint, RpcClient
from powernode.core.crypto import KeyPair

MB = 1_000_000
# Answers up to this size are parsed to summarise them; bigger ones are only
# counted (parsing them would cost this process more than the figure is worth).
PARSE_LIMIT = 50 * MB

# --- the requests --------------------------------------------------------------


def _array(item: bytes, size: int) -> bytes:
    """``[item,item,...]`` of about ``size`` bytes (never more)."""
    n = max(1, (size - 2) // (len(item) + 1))
    return b"[" + b",".join([item] * n) + b"]"


def _call_with_params(params: bytes) -> bytes:
    return b'{"jsonrpc": "2.0", "id": 1, "method": "node.info", "params": ' + params + b"}"


def int_batch(size: int) -> bytes:
    """A batch of bare integers: each is an invalid request that gets its own
    error object (the issue's 4 MB body that built a 178 MB answer)."""
    return _array(b"0", size)


def object_batch(size: int) -> bytes:
    """A batch of ``{}``: the most Python objects per byte a batch can carry."""
    return _array(b"{}", size)


def object_params(size: int) -> bytes:
    """One call (no batch) whose params are an array of ``{}``."""
    return _call_with_params(_array(b"{}", size - 64))


def string_params(size: int) -> bytes:
    """One call whose params are an array of short strings, each a new str."""
    return _call_with_params(_array(b'"ab"', size - 64))


def deep(opener: bytes, depth: int) -> bytes:
    """``depth`` unclosed openers: the issue's RecursionError in the parser."""
    return opener * depth


def nan_id() -> bytes:
    return b'{"jsonrpc": "2.0", "method": "node.info", "id": NaN}'


def call_batch(method: str, params: dict[str, Any], calls: int) -> bytes:
    """``calls`` valid calls of one method in a batch (their answers add up)."""
    one = json.loads(request_body(method, params))
    return json.dumps([{**one, "id": i} for i in range(calls)]).encode()


def long_id_batch(size: int, calls: int) -> bytes:
    """``calls`` node.info calls whose ids are long strings (echoed back)."""
    id_len = max(1, size // calls - 80)
    body = [
        {"jsonrpc": "2.0", "id": f"{i}-" + "x" * id_len, "method": "node.info"}
        for i in range(calls)
    ]
    return json.dumps(body).encode()


# --- a big block, for answers that add up ----------------------------------------

SENDERS = 20


def block_keys() -> list[KeyPair]:
    """The keys ``fill_block`` sends from (fund them in the genesis)."""
    return [key_for("rpc-limits", i) for i in range(SENDERS)]


def fill_block(ep: Endpoint, chain_id: str, txs: int) -> int:
    """Mine one block of ``txs`` transfers (on a dev chain, with
    ``block_keys`` funded); its height."""
    keys = block_keys()
    signed = nonce_major(sign_grid(keys, -(-txs // len(keys)), chain_id), range(len(keys)))
    with RpcClient(ep, timeout=120) as c:
        for start in range(0, txs, 500):
            chunk = signed[start : min(start + 500, txs)]
            for r in c.batch([("tx.submit", {"raw": tx.raw.hex()}) for tx in chunk]):
                if isinstance(r, Exception):
                    raise RuntimeError(f"tx.submit: {r}")
        c.call("dev.mine", {"blocks": 1})
        height = int(c.call("node.info")["height"])
        got = len(c.call("chain.block", {"height": height})["txs"])
    if got != txs:
        raise RuntimeError(f"the block holds {got} txs, not {txs}")
    return height


# --- one request, measured -------------------------------------------------------


def _status_kb(pid: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0])
    return out


def reset_peak(pid: int) -> None:
    """Set the process's VmHWM back to its current RSS (Linux ``clear_refs``
    5), so the next reading is the peak of what comes after."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


@dataclass
class Outcome:
    status: int = 0
    reply_bytes: int = 0
    seconds: float = 0.0
    error: str = ""
    reply: bytes = b""


def _post(ep: Endpoint, body: bytes, timeout: float) -> Outcome:
    parts = urlsplit(ep.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    out = Outcome()
    t0 = time.perf_counter()
    try:
        conn.request(
            "POST",
            parts.path or "/rpc",
            body=body,
            headers={"Content-Type": "application/json", "Authorization": ep.auth},
        )
        resp = conn.getresponse()
        data = resp.read()
        out.status, out.reply_bytes = resp.status, len(data)
        out.reply = data if len(data) <= PARSE_LIMIT else b""
    except (OSError, http.client.HTTPException) as exc:
        out.error = f"{type(exc).__name__}: {exc}"
    finally:
        out.seconds = time.perf_counter() - t0
        conn.close()
    return out


def summarise(out: Outcome) -> str:
    """The answer in a few words: error codes and messages, or results."""
    if out.error:
        return out.error
    if not out.reply:
        return f"HTTP {out.status}, {out.reply_bytes:,} bytes (not parsed)"

    def refuse(name: str) -> Any:
        raise ValueError(f"{name} in the answer, which is not JSON")

    try:
        doc = json.loads(out.reply, parse_constant=refuse)
    except ValueError as exc:
        return f"HTTP {out.status}, not JSON ({exc}): {out.reply[:60]!r}"

    def one(x: Any) -> str:
        if isinstance(x, dict) and "error" in x:
            return f"{x['error'].get('code')} {x['error'].get('message', '')[:48]}"
        return "result"

    if isinstance(doc, list):
        counts = Counter(one(x) for x in doc)
        parts = [f"{n:,} x {what}" for what, n in counts.most_common(3)]
        return f"HTTP {out.status}, batch of {len(doc):,}: " + "; ".join(parts)
    return f"HTTP {out.status}, {one(doc)}"


@dataclass
class Measured:
    name: str
    body_bytes: int
    outcome: Outcome
    rss_before_mb: float
    peak_mb: float
    rss_after_mb: float
    stall_ms: float
    info_calls: int
    alive: bool
    answer: str = field(default="")

    def figures(self) -> dict[str, Any]:
        return {
            "body_bytes": self.body_bytes,
            "status": self.outcome.status,
            "reply_bytes": self.outcome.reply_bytes,
            "seconds": self.outcome.seconds,
            "rss_before_mb": self.rss_before_mb,
            "peak_rss_mb": self.peak_mb,
            "rss_after_mb": self.rss_after_mb,
            "node_info_max_ms": self.stall_ms,
            "node_info_calls": self.info_calls,
            "node_alive": self.alive,
            "answer": self.answer,
        }


def measure(
    ep: Endpoint,
    pid: int,
    name: str,
    body: bytes,
    *,
    timeout: float,
    alive: Callable[[], bool],
) -> Measured:
    """Send ``body`` once and measure it: peak RSS, the longest node.info
    meanwhile (polled back to back over its own keep-alive connection until
    the request is answered), and whether the node is still up."""
    probe = RawRpc(ep, timeout=timeout)
    info = request_body("node.info", {})
    try:
        probe.post(info)  # connect before the clock starts
        reset_peak(pid)
        before = _status_kb(pid)["VmRSS"]
        box: list[Outcome] = []
        sender = threading.Thread(target=lambda: box.append(_post(ep, body, timeout)))
        sender.start()
        worst, calls = 0.0, 0
        while sender.is_alive():
            t0 = time.perf_counter()
            try:
                probe.post(info)
            except (OSError, http.client.HTTPException, RuntimeError):
                break  # the node died or stopped answering: the hostile call says why
            worst = max(worst, time.perf_counter() - t0)
            calls += 1
        sender.join(timeout)
        outcome = box[0] if box else Outcome(error="no answer")
        up = alive()
        kb = _status_kb(pid) if up else {"VmHWM": 0, "VmRSS": 0}
    finally:
        probe.close()
    return Measured(
        name=name,
        body_bytes=len(body),
        outcome=outcome,
        rss_before_mb=before / 1024,
        peak_mb=kb["VmHWM"] / 1024,
        rss_after_mb=kb["VmRSS"] / 1024,
        stall_ms=worst * 1000,
        info_calls=calls,
        alive=up,
        answer=summarise(outcome),
    )
