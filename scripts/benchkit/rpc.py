"""A minimal raw JSON-RPC connection for the benchmarks (127.0.0.1 only)."""

from __future__ import annotations

import http.client
import json
from typing import Any
from urllib.parse import urlsplit

from powernode.client import Endpoint

# --- raw JSON-RPC --------------------------------------------------------------


class RawRpc:
    """One keep-alive HTTP connection that POSTs pre-encoded JSON-RPC bodies.

    The benchmarks build request bodies before timing and parse answers after
    it, so the client spends as little CPU as possible (it shares the machine
    with the node).
    """

    def __init__(self, endpoint: Endpoint, *, timeout: float = 60.0) -> None:
        parts = urlsplit(endpoint.url)
        self._path = parts.path or "/rpc"
        self._conn = http.client.HTTPConnection(
            parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout
        )
        self._headers = {"Content-Type": "application/json", "Authorization": endpoint.auth}

    def post(self, body: bytes) -> bytes:
        self._conn.request("POST", self._path, body=body, headers=self._headers)
        resp = self._conn.getresponse()
        data = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"HTTP {resp.status}: {data[:200]!r}")
        return data

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        body = json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}
        ).encode()
        doc = json.loads(self.post(body))
        if "error" in doc:
            raise RuntimeError(f"{method}: {doc['error']}")
        return doc["result"]

    def close(self) -> None:
        self._conn.close()


def request_body(method: str, params: dict[str, Any], id_: int = 1) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}).encode()
