"""An async WebSocket JSON-RPC client for in-process nodes: calls, and the
notices of subscriptions, kept per subscription in arrival order."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from typing import Any

import aiohttp

from powernode.client import Endpoint, RpcError


class WsRpc:
    def __init__(self, endpoint: Endpoint, *, timeout: float = 30.0) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        # Every message in arrival order (answers, notices and batch answers), for order checks.
        self.log: list[dict[str, Any] | list[Any]] = []
        self._notices: dict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self._answers: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.closed = asyncio.Event()

    async def __aenter__(self) -> WsRpc:
        self._session = aiohttp.ClientSession()
        self.ws = await self._session.ws_connect(
            self.endpoint.url, headers={"Authorization": self.endpoint.auth}
        )
        self._reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        if self.ws is not None:
            await self.ws.close()
        if self._session is not None:
            await self._session.close()

    async def _read(self) -> None:
        assert self.ws is not None
        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            doc = msg.json()
            self.log.append(doc)
            if isinstance(doc, dict) and doc.get("method") == "subscription":
                p = doc["params"]
                self._notices[p["subscription"]].put_nowait(p["result"])
            elif isinstance(doc, dict) and doc.get("id") in self._answers:
                self._answers.pop(doc["id"]).set_result(doc)
        self.closed.set()

    async def raw(self, doc: Any) -> dict[str, Any]:
        """Send ``doc`` (a call with an id) and return the whole answer."""
        assert self.ws is not None
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._answers[doc["id"]] = fut
        await self.ws.send_json(doc)
        async with asyncio.timeout(self.timeout):
            return await fut

    async def call(self, method: str, params: Any = None) -> Any:
        doc = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or {}}
        resp = await self.raw(doc)
        if "error" in resp:
            e = resp["error"]
            raise RpcError(e["code"], e["message"], e.get("data"))
        return resp["result"]

    async def subscribe(self, topic: str, **filters: Any) -> str:
        return str(await self.call("subscribe", {"topic": topic, **filters}))

    async def next(self, sid: str, *, timeout: float | None = None) -> Any:
        """The subscription's next notice's result, waiting for it."""
        async with asyncio.timeout(self.timeout if timeout is None else timeout):
            return await self._notices[sid].get()

    def pending(self, sid: str) -> int:
        """Notices received and not yet taken."""
        return self._notices[sid].qsize()
