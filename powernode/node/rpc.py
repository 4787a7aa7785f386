"""JSON-RPC 2.0 over aiohttp: POST /rpc, with batches and cookie auth.

Errors: the standard codes (-32700 parse, -32600 invalid request, -32601
method not found, -32602 invalid params, -32603 internal) plus -32000 for a
typed rejection and -32004 for not found; a typed rejection carries
``{"code": <stable code>, "message": ...}`` in ``error.data``.

The JSON-RPC 2.0 rules kept here (tests/integration/test_conformance_jsonrpc.py
replays the spec's examples): an id is a string, an integer or null, echoed
as sent; a fractional id (which might not survive a float) or a boolean is
an invalid request answered with id null, and NaN or Infinity is not JSON (a
parse error); params, when present, are an array or an object; notifications
(valid requests without an id) run but get no answer, and a request with
nothing to answer gets HTTP 204 with an empty body.

Auth as bitcoind: HTTP Basic with user ``__cookie__`` and the secret from
``<datadir>/.cookie`` (fresh at every start), or a configured token sent as
``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from powernode.core.errors import InvalidParams, NotFound, PowernodeError
from powernode.logkit import emit

log = logging.getLogger("powernode.rpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
REJECTED = -32000
NOT_FOUND = -32004

Params = dict[str, Any]
Method = Callable[[Params], Awaitable[Any]]
# A batch handler gets every call of one method in a batch at once, so e.g.
# tx.submit can verify signatures of the whole batch in parallel. It returns
# one (result, error) pair per call.
BatchMethod = Callable[[list[Params]], Awaitable[list[tuple[Any, PowernodeError | None]]]]


def _valid_id(id_: Any) -> bool:
    # bool is an int subclass in Python, but JSON's true/false are no ids.
    return id_ is None or type(id_) is str or type(id_) is int


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _error(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def error_response(id_: Any, exc: PowernodeError) -> dict[str, Any]:
    if isinstance(exc, InvalidParams):
        return _error(id_, INVALID_PARAMS, exc.message, exc.to_dict())
    code = NOT_FOUND if isinstance(exc, NotFound) else REJECTED
    return _error(id_, code, exc.message, exc.to_dict())


class RpcServer:
    def __init__(
        self,
        *,
        methods: dict[str, Method],
        batch_methods: dict[str, BatchMethod],
        cookie: str,
        token: str,
        max_request_bytes: int,
    ) -> None:
        self.methods = methods
        self.batch_methods = batch_methods
        self._cookie = cookie
        self._token = token
        self.max_request_bytes = max_request_bytes
        self._runner: web.AppRunner | None = None
        self.url = ""

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_hex(32)

    def _authorized(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            try:
                given = base64.b64decode(header[6:], validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return False
            return hmac.compare_digest(given, f"__cookie__:{self._cookie}")
        if header.startswith("Bearer ") and self._token:
            return hmac.compare_digest(header[7:], self._token)
        return False

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_request_bytes)
        app.router.add_post("/rpc", self.handle)
        return app

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0: any free one); ``url`` says where."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        self.url = f"http://{host}:{runner.addresses[0][1]}/rpc"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def handle(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.json_response(
                _error(None, INVALID_REQUEST, "unauthorized"),
                status=401,
                headers={"WWW-Authenticate": 'Basic realm="powernode"'},
            )
        try:
            body = await request.read()
            # Python's json reads NaN and Infinity, which JSON does not have.
            doc = json.loads(body, parse_constant=_not_json)
        except web.HTTPRequestEntityTooLarge:
            return web.json_response(_error(None, INVALID_REQUEST, "request too large"), status=413)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return web.json_response(_error(None, PARSE_ERROR, "parse error"))
        if isinstance(doc, list):
            if not doc:
                return web.json_response(_error(None, INVALID_REQUEST, "empty batch"))
            responses = await self.dispatch_batch(doc)
            out = [r for r in responses if r is not None]
            return web.json_response(out) if out else web.Response(status=204)
        response = (await self.dispatch_batch([doc]))[0]
        if response is None:
            return web.Response(status=204)
        return web.json_response(response)

    async def dispatch_batch(self, calls: list[Any]) -> list[dict[str, Any] | None]:
        started = time.perf_counter()
        out: list[dict[str, Any] | None] = [None] * len(calls)
        grouped: dict[str, list[tuple[int, Any, Params]]] = {}
        notifications: list[int] = []
        for i, call in enumerate(calls):
            if (
                not isinstance(call, dict)
                or call.get("jsonrpc") != "2.0"
                or not isinstance(call.get("method"), str)
                or not _valid_id(call.get("id"))
                or not isinstance(call.get("params", {}), dict | list)
            ):
                # The spec: an id that cannot be read is answered as null.
                id_ = call.get("id") if isinstance(call, dict) else None
                out[i] = _error(id_ if _valid_id(id_) else None, INVALID_REQUEST, "invalid request")
                continue
            id_ = call.get("id")
            if "id" not in call:
                notifications.append(i)
            params = call.get("params", {})
            if isinstance(params, list):
                params = {"_args": params}
            name = call["method"]
            if name in self.batch_methods:
                grouped.setdefault(name, []).append((i, id_, params))
            elif name in self.methods:
                out[i] = await self._call_one(name, id_, params)
            else:
                out[i] = _error(id_, METHOD_NOT_FOUND, f"method not found: {name}")
        for name, items in grouped.items():
            try:
                results = await self.batch_methods[name]([p for _, _, p in items])
            except Exception:
                emit(log, "rpc.internal_error", logging.ERROR, method=name)
                log.exception("rpc.internal_error")
                for i, id_, _ in items:
                    out[i] = _error(id_, INTERNAL_ERROR, "internal error")
                continue
            for (i, id_, _), (result, err) in zip(items, results, strict=True):
                out[i] = (
                    error_response(id_, err)
                    if err
                    else {"jsonrpc": "2.0", "id": id_, "result": result}
                )
        # Notifications (valid calls without an id) run but get no response;
        # an invalid request is no notification and is answered.
        for i in notifications:
            out[i] = None
        if log.isEnabledFor(logging.DEBUG):
            emit(
                log,
                "rpc.batch",
                logging.DEBUG,
                calls=len(calls),
                ms=(time.perf_counter() - started) * 1000,
            )
        return out

    async def _call_one(self, name: str, id_: Any, params: Params) -> dict[str, Any]:
        try:
            result = await self.methods[name](params)
        except PowernodeError as exc:
            return error_response(id_, exc)
        except Exception:
            log.exception("rpc.internal_error method=%s", name)
            return _error(id_, INTERNAL_ERROR, "internal error")
        return {"jsonrpc": "2.0", "id": id_, "result": result}
