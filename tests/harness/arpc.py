"""An async JSON-RPC client for in-process nodes (a blocking client would
stall the very event loop the node runs on)."""

from __future__ import annotations

import itertools
from typing import Any

import aiohttp

from powernode.client import Endpoint, RpcError


class AsyncRpc:
    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self._session: aiohttp.ClientSession | None = None
        self._ids = itertools.count(1)

    async def __aenter__(self) -> AsyncRpc:
        self._session = aiohttp.ClientSession(headers={"Authorization": self.endpoint.auth})
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None
        return self._session

    async def raw(self, body: Any, *, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """POST ``body`` (bytes sent as is, else JSON) and return (status, parsed JSON or None)."""
        kw: dict[str, Any] = {"data": body} if isinstance(body, bytes) else {"json": body}
        async with self.session.post(self.endpoint.url, headers=headers, **kw) as resp:
            text = await resp.text()
            return resp.status, (await resp.json(content_type=None)) if text else None

    async def call(self, method: str, params: dict[str, Any] | list[Any] | None = None) -> Any:
        doc = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params or {}}
        _, resp = await self.raw(doc)
        if "error" in resp:
            e = resp["error"]
            raise RpcError(e["code"], e["message"], e.get("data"))
        return resp["result"]
