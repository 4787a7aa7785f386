"""JSON-RPC 2.0 over a WebSocket on the RPC port, with push subscriptions.

``GET /rpc`` upgraded to a WebSocket (the same auth as ``POST /rpc``)
takes any RPC call, through the same dispatch and bounds as HTTP, plus
``subscribe`` and ``unsubscribe`` (geth's ``eth_subscribe``): a
subscription's notices arrive as

    {"jsonrpc": "2.0", "method": "subscription",
     "params": {"subscription": ID, "result": ...}}

Topics and their notices are in push_topics.py (pure); this module keeps
the clients and routes notices to them. The node tells it what happened
(``chain_updated``, ``pool_changed``, ``txs_accepted``, ``tx_dropped``) from
block connect and tx admission: those calls build each notice once, put it in each
subscriber's queue without waiting, and return. A client's own task writes
its queue to its socket, so a slow client never slows the node: when a
notice finds its queue (``[rpc] ws_queue`` messages) full it is dropped,
closed with 1008 and a reason, and ``ws.dropped`` is logged. Answers to
the client's own calls wait for room instead (the node stops reading that
client meanwhile), so a client that pipelines calls is slowed, not dropped.

A client without auth (the explorer's) has tighter bounds (``[explorer]``):
its messages are at most ``max_request_bytes`` and its batches
``batch_limit`` calls, at most ``ws_max_clients`` of them connect at once
(so authenticated tools keep their slots), and the bytes queued for it
(answers and notices) may not pass ``ws_queue_bytes``: one that does not
read what it asked for is dropped, not waited on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Callable, Container
from typing import Any, TypeVar

from aiohttp import WSMsgType, web

from powernode.chain.chain import ChainUpdate
from powernode.chain.index import IndexEntry
from powernode.core.errors import (
    BatchTooLarge,
    InvalidParams,
    NotFound,
    PowernodeError,
    SubscriptionLimit,
    WebSocketOnly,
)
from powernode.core.tx import Transaction
from powernode.engines.market.queries import ScanState
from powernode.logkit import emit
from powernode.node.push_topics import (
    TOPICS,
    EventsTopic,
    MempoolTopic,
    ReceiptEvent,
    SettlementsTopic,
    TipsTopic,
    Topic,
    TradesTopic,
    TxTopic,
    added_notice,
    confirmed_from_pool,
    parse_topic,
    receipt_events,
    removed_notice,
    settlement_matches,
    settlements_made,
    tip_notices,
    trade_matches,
    trades_made,
)
from powernode.node.rpc import (
    INVALID_REQUEST,
    Method,
    Params,
    RpcServer,
    refusal,
    result_json,
)
from powernode.node.rpc_body import Refused, decode, loads, scan
from powernode.node.rpc_spec import ADDRESS, ID32, MethodSpec, Param, one_of, rejected

log = logging.getLogger("powernode.rpc")

# WebSocket close codes (RFC 6455): going away (the node stops), policy
# violation (a client too slow to keep up), and abnormal closure (the
# connection lost without a close frame: never sent, only recorded).
CLOSE_GOING_AWAY = 1001
CLOSE_POLICY = 1008
CLOSE_ABNORMAL = 1006
# Pings keep idle connections alive through proxies and find dead peers.
HEARTBEAT_S = 30.0
# How long a closing handshake may take before the socket is cut.
CLOSE_TIMEOUT_S = 2.0

TxStatus = Callable[[bytes], dict[str, Any]]
# A topic class, in _publish.
T = TypeVar("T")


_WS_ONLY = rejected("websocket_only", "subscriptions need the WebSocket (GET /rpc upgraded)")

# subscribe's params are every topic's filters; push_topics.parse_topic
# refuses a filter its topic does not take.
PUSH_SPECS = {
    "subscribe": MethodSpec(
        summary="subscribe to a topic over the WebSocket; notices arrive as "
        '{"method": "subscription", "params": {"subscription", "result"}}',
        params=(
            Param("topic", one_of(TOPICS), required=True),
            Param("id", ID32, description="tx: the tx id"),
            Param("product", {"type": "string"}, by_position=False, description="trades"),
            Param("participant", ADDRESS, by_position=False, description="trades"),
            Param("engine", {"type": "string"}, by_position=False, description="events"),
            Param(
                "event",
                {"oneOf": [{"type": "string"}, {"type": "array"}]},
                by_position=False,
                description="events: an event name, or a list of them",
            ),
            Param("seller", ADDRESS, by_position=False, description="settlements"),
        ),
        result={"type": "string"},
        errors=(_WS_ONLY, rejected("subscription_limit", "[rpc] ws_max_subscriptions reached")),
        public=True,
    ),
    "unsubscribe": MethodSpec(
        summary="end a subscription of this WebSocket connection",
        params=(Param("subscription", {"type": "string"}, required=True),),
        result={"type": "boolean"},
        errors=(_WS_ONLY,),
        public=True,
    ),
}


def http_methods() -> dict[str, Method]:
    """``subscribe`` and ``unsubscribe`` in the node's method table, so they
    are listed and described with the others; over HTTP they are refused
    (``websocket_only``): a notice needs a connection to arrive on."""

    async def subscribe(p: Params) -> Any:
        """Params: ``topic`` (tips, tx, trades, events, settlements) and its
        filters (``id``; ``product``, ``participant``; ``engine``, ``event``;
        ``seller``); result: the subscription id, a string. Notices:
        ``{"method": "subscription", "params": {"subscription", "result"}}``.
        WebSocket only."""
        parse_topic(p)  # bad params are invalid_params here too, as on the WebSocket
        raise WebSocketOnly("subscriptions need the WebSocket: GET /rpc upgraded (ws://)")

    async def unsubscribe(p: Params) -> Any:
        """Params: ``subscription`` (an id ``subscribe`` gave); result: true
        if it was this connection's and is now gone. WebSocket only."""
        raise WebSocketOnly("subscriptions need the WebSocket: GET /rpc upgraded (ws://)")

    return {"subscribe": subscribe, "unsubscribe": unsubscribe}


def _json_pair(notice: dict[str, Any]) -> tuple[dict[str, Any], str]:
    return notice, result_json(notice)


def _notice(sid: str, result_text: str) -> str:
    return (
        '{"jsonrpc": "2.0", "method": "subscription", "params": {"subscription": "'
        + sid
        + '", "result": '
        + result_text
        + "}}"
    )


def _refusal(code: int, message: str, reason: str | None = None, status: int = 200) -> str:
    # The same answer, error.data included, as HTTP gives (rpc.refusal).
    return json.dumps(refusal(code, message, reason, status))


class _Client:
    """One WebSocket connection: its subscriptions and its outgoing queue."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        peer: str,
        queue_size: int,
        *,
        public_only: bool,
        max_queued_bytes: int | None = None,
    ) -> None:
        self.ws = ws
        self.peer = peer
        # An explorer client without auth: public methods only (rpc.py).
        self.public_only = public_only
        self.queue: asyncio.Queue[str] = asyncio.Queue(queue_size)
        # Bytes queued and not yet written (the message being written
        # included); None: no byte budget (an authenticated client).
        self.queued_bytes = 0
        self.max_queued_bytes = max_queued_bytes
        self.subs: dict[str, Topic] = {}
        # A tx subscription's last status sent, so a status is told once.
        self.last_tx: dict[str, tuple[str, str]] = {}
        # Subscriptions made by the call being answered: they start once
        # the answer naming them is queued, so no notice comes before it.
        self.fresh: list[tuple[str, Topic]] = []
        self.close_code = 0
        self.close_reason = ""
        self.closing = asyncio.Event()
        self.methods: dict[str, Method] = {}

    def send(self, text: str) -> bool:
        """Queue ``text`` without waiting; a full queue drops the client."""
        if self.closing.is_set() or not self._budget(text):
            return False
        try:
            self.queue.put_nowait(text)
        except asyncio.QueueFull:
            self._drop(f"too slow: {self.queue.maxsize} messages queued")
            return False
        self.queued_bytes += len(text)
        return True

    def _budget(self, text: str) -> bool:
        """Whether ``text`` fits the byte budget; if not, the client is
        dropped. A message on an empty queue always fits, so one large
        answer is still sent."""
        limit = self.max_queued_bytes
        if limit is None or not self.queued_bytes or self.queued_bytes + len(text) <= limit:
            return True
        self._drop(f"too slow: {self.queued_bytes} bytes queued ([explorer] ws_queue_bytes)")
        return False

    def _drop(self, reason: str) -> None:
        emit(log, "ws.dropped", logging.WARNING, peer=self.peer, reason=reason)
        self.close(CLOSE_POLICY, reason)

    def sent(self, text: str) -> None:
        self.queued_bytes -= len(text)

    async def answer(self, text: str) -> None:
        """Queue an answer to the client's own call, waiting for room: a
        client that sends calls faster than it reads the answers only
        slows its own reading (the node stops reading its socket)."""
        if not self.closing.is_set() and self._budget(text):
            self.queued_bytes += len(text)
            await self.queue.put(text)

    def close(self, code: int, reason: str) -> None:
        if not self.closing.is_set():
            self.close_code, self.close_reason = code, reason
            self.closing.set()


class PushHub:
    """The WebSocket endpoint of one node: its clients and their topics."""

    def __init__(
        self,
        *,
        rpc: RpcServer,
        tx_status: TxStatus,
        state: Callable[[], ScanState],
        max_clients: int,
        max_subscriptions: int,
        queue_size: int,
        public_max_clients: int | None = None,
        public_queue_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.rpc = rpc
        self._tx_status = tx_status
        self._state = state
        self.max_clients = max_clients
        self.max_subscriptions = max_subscriptions
        self.queue_size = queue_size
        # No-auth clients: their own cap within max_clients, and a byte
        # budget each on their queue.
        self.public_max_clients = max_clients if public_max_clients is None else public_max_clients
        self.public_queue_bytes = public_queue_bytes
        self.public_clients = 0
        # Clients holding a mempool subscription: checked on every tx the
        # pool takes, so it is a count, not a pass over the clients.
        self.mempool_subs = 0
        self.clients: set[_Client] = set()
        # txid -> {subscription id: client}: a tx's status goes straight to
        # those who asked, without a pass over every client.
        self._by_tx: dict[bytes, dict[str, _Client]] = {}
        self._gone = asyncio.Event()
        # Set by stop: a client arriving after it would hold the RPC
        # server's shutdown (aiohttp waits for open handlers).
        self._stopping = False

    # --- what the node tells it -----------------------------------------------

    def chain_updated(self, update: ChainUpdate, old_tip: IndexEntry, new_tip: IndexEntry) -> None:
        """Blocks connected (and undone): tips, trades, events, and the txs
        whose status moved. Notices are built only for topics someone holds."""
        if not self.clients or not update:
            return
        wanted = {type(t) for c in self.clients for t in c.subs.values()}
        if TipsTopic in wanted:
            tips = tip_notices(update, old_tip, new_tip)
            self._publish(TipsTopic, [(n, result_json(n)) for n in tips])
        if TradesTopic in wanted:
            trades = trades_made(update, self._state())
            self._publish(TradesTopic, [(t, result_json(t)) for t in trades], trade_matches)
        if SettlementsTopic in wanted:
            settled = settlements_made(update)
            self._publish(
                SettlementsTopic, [(x, result_json(x)) for x in settled], settlement_matches
            )
        if EventsTopic in wanted:
            events = [(ev, result_json(ev.to_json())) for ev in receipt_events(update)]
            self._publish(EventsTopic, events, ReceiptEvent.matches)
        if self._by_tx:
            touched = {
                tx.txid
                for block in update.disconnected
                for tx in block.txs
                if tx.txid in self._by_tx
            }
            touched.update(
                tx.txid
                for block, _ in update.connected
                for tx in block.txs
                if tx.txid in self._by_tx
            )
            for txid in touched:
                self._tell_tx(txid, self.status_of(txid))

    @property
    def wants_txs(self) -> bool:
        """Whether ``txs_accepted`` would tell anyone anything: a mempool
        subscriber, or a tx followed (the node skips the call otherwise)."""
        return self.wants_mempool or bool(self._by_tx)

    def txs_accepted(self, txs: list[Transaction]) -> None:
        """Txs that entered the pool (from RPC or a peer)."""
        if self.wants_mempool:
            self._publish(MempoolTopic, [_json_pair(added_notice(tx)) for tx in txs])
        if not self._by_tx:
            return
        for tx in txs:
            if tx.txid in self._by_tx:
                self._tell_tx(tx.txid, {"id": tx.txid.hex(), "status": "pending"})

    def tx_dropped(self, txid: bytes, exc: PowernodeError) -> None:
        """A tx the node let go of unmined (replaced, evicted, no longer valid)."""
        if self.wants_mempool:
            self._publish(MempoolTopic, [_json_pair(removed_notice([txid], exc.code))])
        if txid in self._by_tx:
            self._tell_tx(txid, {"id": txid.hex(), "status": "dropped", "error": exc.to_dict()})

    @property
    def wants_mempool(self) -> bool:
        """Whether a client holds a ``mempool`` subscription: only then does
        the node record the txs leaving its pool around a block
        (``pool_changed``). A count, as it is asked for every tx the pool
        takes or drops."""
        return self.mempool_subs > 0

    def pool_changed(
        self, update: ChainUpdate, left: Container[bytes], pending: Container[bytes]
    ) -> None:
        """After ``update``: the txs its blocks took out of the pool
        (``confirmed``, one notice), and the txs of undone blocks that came
        back (``added``: they were in a block, so not in the pool before).
        ``left``: the ids of txs that left the pool during the update;
        ``pending``: the pool now."""
        if not update or not self.wants_mempool:
            return
        mined = confirmed_from_pool(update, left, pending)
        notices = [_json_pair(removed_notice(mined, "confirmed"))] if mined else []
        for block in update.disconnected:
            for tx in block.txs:
                if tx.txid in pending:
                    notices.append(_json_pair(added_notice(tx)))
        self._publish(MempoolTopic, notices)

    def status_of(self, txid: bytes) -> dict[str, Any]:
        """``tx.get``'s status of ``txid`` without the tx itself; ``unknown``
        when the node has not seen it (or forgot it)."""
        try:
            status = self._tx_status(txid)
        except NotFound:
            return {"id": txid.hex(), "status": "unknown"}
        return {"id": txid.hex(), **status}

    def _publish(
        self,
        kind: type[T],
        notices: list[tuple[Any, str]],
        match: Callable[[Any, T], bool] | None = None,
    ) -> None:
        """Each (item, its JSON) to every subscription of ``kind`` whose
        filter ``match``es the item (all of them without ``match``)."""
        if not notices:
            return
        for c in list(self.clients):
            for sid, t in list(c.subs.items()):
                if isinstance(t, kind):
                    for item, text in notices:
                        if (match is None or match(item, t)) and not c.send(_notice(sid, text)):
                            break

    def _tell_tx(self, txid: bytes, status: dict[str, Any]) -> None:
        key = (str(status["status"]), str(status.get("block", "")))
        text = result_json(status)
        for sid, c in list(self._by_tx.get(txid, {}).items()):
            if c.last_tx.get(sid) != key:
                c.last_tx[sid] = key
                c.send(_notice(sid, text))

    # --- subscriptions --------------------------------------------------------

    def _client_methods(self, c: _Client) -> dict[str, Method]:
        async def subscribe(p: Params) -> Any:
            topic = parse_topic(p)
            held = len(c.subs) + len(c.fresh)
            if held >= self.max_subscriptions:
                raise SubscriptionLimit(
                    f"this connection holds {held} subscription{'' if held == 1 else 's'}, the limit "
                    "([rpc] ws_max_subscriptions)"
                )
            sid = "0x" + secrets.token_hex(16)
            c.fresh.append((sid, topic))
            return sid

        async def unsubscribe(p: Params) -> Any:
            args = p.get("_args")
            sid = args[0] if isinstance(args, list) and len(args) == 1 else p.get("subscription")
            if not isinstance(sid, str) or (args is None and set(p) != {"subscription"}):
                raise InvalidParams("params are {'subscription': id} or [id]")
            return self._unsubscribe(c, sid)

        return {**self.rpc.methods, "subscribe": subscribe, "unsubscribe": unsubscribe}

    def _unsubscribe(self, c: _Client, sid: str) -> bool:
        fresh = len(c.fresh)
        c.fresh = [(s, t) for s, t in c.fresh if s != sid]
        if len(c.fresh) < fresh:
            return True
        topic = c.subs.pop(sid, None)
        c.last_tx.pop(sid, None)
        if isinstance(topic, MempoolTopic):
            self.mempool_subs -= 1
        if isinstance(topic, TxTopic):
            subs = self._by_tx.get(topic.txid, {})
            subs.pop(sid, None)
            if not subs:
                self._by_tx.pop(topic.txid, None)
        return topic is not None

    def _flush_fresh(self, c: _Client) -> None:
        """Start the subscriptions the answer just queued named; a tx
        subscription's first notice is the tx's status now (so a tx
        confirmed before the call is told at once)."""
        fresh, c.fresh = c.fresh, []
        for sid, topic in fresh:
            c.subs[sid] = topic
            if isinstance(topic, MempoolTopic):
                self.mempool_subs += 1
            if isinstance(topic, TxTopic):
                self._by_tx.setdefault(topic.txid, {})[sid] = c
                status = self.status_of(topic.txid)
                c.last_tx[sid] = (str(status["status"]), str(status.get("block", "")))
                c.send(_notice(sid, result_json(status)))

    # --- connections ----------------------------------------------------------

    async def handle(self, request: web.Request, public_only: bool) -> web.StreamResponse:
        """A WebSocket client, from upgrade to close (auth already checked;
        ``public_only``: a no-auth explorer client)."""
        peer = str(request.remote or "")
        reason = ""
        if self._stopping:
            reason = "node stopping"
        elif len(self.clients) >= self.max_clients:
            reason = f"too many WebSocket clients ({self.max_clients}, [rpc] ws_max_clients)"
        elif public_only and self.public_clients >= self.public_max_clients:
            reason = (
                f"too many WebSocket clients without auth ({self.public_max_clients}, "
                "[explorer] ws_max_clients)"
            )
        if reason:
            emit(log, "ws.refused", peer=peer, reason=reason)
            return web.Response(
                text=_refusal(INVALID_REQUEST, reason, status=503),
                status=503,
                content_type="application/json",
            )
        bounds = self.rpc.public if public_only else self.rpc
        # aiohttp refuses a message of max_msg_size itself; the bound is the
        # largest message taken, as for a body.
        ws = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=bounds.max_request_bytes + 1)
        await ws.prepare(request)
        c = _Client(
            ws,
            peer,
            self.queue_size,
            public_only=public_only,
            max_queued_bytes=self.public_queue_bytes if public_only else None,
        )
        c.methods = self._client_methods(c)
        self.clients.add(c)
        self.public_clients += public_only
        self._gone.clear()
        emit(log, "ws.connected", logging.DEBUG, peer=peer, clients=len(self.clients))
        tasks = [
            asyncio.create_task(self._write(c)),
            asyncio.create_task(self._read(c)),
            asyncio.create_task(c.closing.wait()),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._forget(c)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._close(c, request)
        emit(log, "ws.closed", logging.DEBUG, peer=peer, code=c.close_code, reason=c.close_reason)
        return ws

    async def _write(self, c: _Client) -> None:
        while True:
            text = await c.queue.get()
            await c.ws.send_str(text)
            c.sent(text)

    async def _read(self, c: _Client) -> None:
        async for msg in c.ws:
            if msg.type == WSMsgType.TEXT:
                await self._answer(c, msg.data.encode())
            elif msg.type == WSMsgType.BINARY:
                await self._answer(c, msg.data)
            else:
                if msg.type == WSMsgType.ERROR:
                    # aiohttp has closed the socket itself, so the node
                    # closed first and ws.closed says with what: the frame
                    # error's own code (1009 for a message over
                    # max_request_bytes, 1007, 1002; the socket's record
                    # says 1006 by then), else that record, 1006 for a
                    # client lost without a close frame (no pong).
                    code = getattr(msg.data, "code", 0) or c.ws.close_code or CLOSE_ABNORMAL
                    c.close(int(code), str(msg.data)[:120])
                return

    async def _answer(self, c: _Client, body: bytes) -> None:
        """One message: a call or a batch, answered on the same socket."""
        rpc = self.rpc
        bounds = rpc.public if c.public_only else rpc
        try:
            scan(body, max_values=rpc.max_values, max_depth=rpc.max_depth)
            doc = loads(decode(body))
        except Refused as exc:
            await c.answer(_refusal(exc.code, exc.message, exc.reason))
            return
        if isinstance(doc, list):
            if not doc:
                await c.answer(_refusal(INVALID_REQUEST, "empty batch"))
                return
            if len(doc) > bounds.batch_limit:
                await c.answer(
                    _refusal(
                        INVALID_REQUEST,
                        f"batch too large: {len(doc)} calls, the limit is {bounds.batch_limit}",
                        BatchTooLarge.code,
                    )
                )
                return
            answers = await rpc.dispatch_batch(
                doc,
                max_response_bytes=bounds.max_response_bytes,
                methods=c.methods,
                public_only=c.public_only,
            )
            out = [a for a in answers if a is not None]
            if out:
                await c.answer("[" + ", ".join(a.decode() for a in out) + "]")
        else:
            answer = (
                await rpc.dispatch_batch(
                    [doc],
                    max_response_bytes=bounds.max_response_bytes if c.public_only else None,
                    methods=c.methods,
                    public_only=c.public_only,
                )
            )[0]
            if answer is not None:
                await c.answer(answer.decode())
        self._flush_fresh(c)

    def _forget(self, c: _Client) -> None:
        for sid in list(c.subs):
            self._unsubscribe(c, sid)
        if c in self.clients:
            self.public_clients -= c.public_only
        self.clients.discard(c)
        if not self.clients:
            self._gone.set()

    async def _close(self, c: _Client, request: web.Request) -> None:
        """Close with the client's code and reason; a client that does not
        take the close frame in time has its socket cut."""
        if c.ws.closed:
            return
        code = c.close_code or CLOSE_GOING_AWAY
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await c.ws.close(code=code, message=c.close_reason.encode()[:120])
        except (TimeoutError, ConnectionError):
            if request.transport is not None:
                request.transport.abort()

    async def stop(self) -> None:
        """Close every client (going away) and wait for them to be gone."""
        self._stopping = True
        if not self.clients:
            return
        for c in list(self.clients):
            c.close(CLOSE_GOING_AWAY, "node stopping")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S + 1):
                await self._gone.wait()
