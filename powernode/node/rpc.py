"""JSON-RPC 2.0 over aiohttp: POST /rpc, with batches and cookie auth.

Errors: the standard codes (-32700 parse, -32600 invalid request, -32601
method not found, -32602 invalid params, -32603 internal) plus -32000 for a
typed rejection, -32003 for a call not run because its batch's answer was
full, and -32004 for not found; every error carries
``{"code": <stable code>, "message": ...}`` in ``error.data`` (the stable
codes of the envelope's own errors are classes in core/errors.py too).

Each method has a declared spec (rpc_spec.py): a param it does not declare
is -32602, and ``rpc.discover`` serves every spec as an OpenRPC document.
An integer past 2^53 - 1 in an answer goes out as a decimal string, which a
JavaScript client's JSON parser keeps exact.

The JSON-RPC 2.0 rules kept here (tests/integration/test_conformance_jsonrpc.py
replays the spec's examples): an id is a string, an integer or null, echoed
as sent; a fractional id (which might not survive a float) or a boolean is
an invalid request answered with id null, and NaN or Infinity is not JSON (a
parse error); params, when present, are an array or an object; notifications
(valid requests without an id) run but get no answer, and a request with
nothing to answer gets HTTP 204 with an empty body.

Bounds (the ``[rpc]`` config; geth has the batch ones): what one request
can make the node hold is set by the config, not by the client. The body is
checked as it arrives (``Scan``), so the first three refuse it before it is
parsed, most without reading it to its end:

- ``max_request_bytes``: a longer body is -32600 with HTTP 413.
- ``max_values``: more JSON values (keys included) is -32600. Python objects
  cost up to ~30 times the JSON bytes they come from (``{}`` is 2 bytes, a
  dict 64), so the body cap alone let a 64 MiB body take 2 GB.
- ``max_depth``: deeper nesting is -32700; the parser recurses per level.
- ``batch_limit``: a longer batch is -32600, answered as one error object
  with id null (as an empty batch is); none of its calls runs.
- ``max_response_bytes``: a batch's calls run in order while its answer is
  below this size (each answer is encoded as it is made, so the running size
  is known); once past it, no further call runs and each gets -32003
  ("response too large"), notifications among them dropped unrun. The
  calls that ran keep their answers, so the client knows which ran. A single
  call is not capped (its answer is bounded by what the node stores, e.g. a
  block), as in geth; for a caller without auth it is (``PublicBounds``).

A body that is parsed is held as bytes, then as text, then as values, one
after the other, and the batch answer is sent piece by piece as it is let
go: peak memory is about twice ``max_request_bytes`` plus
``max_response_bytes`` (``scripts/bench_rpc_limits.py`` measures it).

``GET /rpc`` upgraded to a WebSocket takes the same calls, and
``subscribe``/``unsubscribe`` for pushed notices (node/rpc_ws.py).

Auth as bitcoind: HTTP Basic with user ``__cookie__`` and the secret from
``<datadir>/.cookie`` (fresh at every start), or a configured token sent as
``Authorization: Bearer <token>``. With the explorer on (``explorer=True``),
a request with no ``Authorization`` header at all (POST, or the WebSocket
upgrade) is served too, but only its calls of public methods
(``MethodSpec.public``) run: any other call gets a per-call -32600
``unauthorized``. A wrong header is still HTTP 401, so a client that means
to authenticate learns its secret is wrong. A request from a page whose
``Origin`` is not one of this node's names is HTTP 403, with auth or not;
a no-auth request must also name one in its ``Host`` (DNS rebinding), and
has its own, small bounds (``PublicBounds``, the ``[explorer]`` keys). The
explorer's page and files are served beside ``/rpc`` (node/explorer_http.py).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from powernode.core.errors import (
    BatchTooLarge,
    InternalFault,
    InvalidParams,
    InvalidRequest,
    MethodNotFound,
    NotFound,
    ParseError,
    PowernodeError,
    RequestTooLarge,
    ResponseTooLarge,
    Unauthorized,
)
from powernode.logkit import emit
from powernode.node.explorer_http import add_explorer_routes
from powernode.node.rpc_body import INVALID_REQUEST, Refused, Scan, decode, loads
from powernode.node.rpc_spec import (
    INTERNAL_ERROR,
    INVALID_PARAMS,
    METHOD_NOT_FOUND,
    NOT_FOUND,
    OPENRPC_DOC,
    PARSE_ERROR,
    REJECTED,
    RESPONSE_TOO_LARGE,
    MethodSpec,
    big_ints_as_strings,
    openrpc,
)
from powernode.node.urls import http_url

log = logging.getLogger("powernode.rpc")

# A number token of 16 or more digits in encoded JSON (after ": ", "[" or
# ", "): the only place an integer past 2^53 - 1 can be, so an answer
# without one is sent as encoded, and one with it is re-encoded with such
# integers as strings (a string that happens to hold ": 1234567890123456"
# only costs the re-encoding).
_LONG_NUMBER = re.compile(rb"[\[:,] ?-?[0-9]{16}")
_LONG_NUMBER_TEXT = re.compile(_LONG_NUMBER.pattern.decode())  # the same, over str
# json.dumps's bytes for {"jsonrpc": "2.0", "id": ID, "result": STRING}.
_RESULT_ANSWER = b'{"jsonrpc": "2.0", "id": %b, "result": %b}'

DISCOVER_SPEC = MethodSpec(
    summary="this node's API as an OpenRPC 1.2 document: every method, its params, "
    "result and errors (x-public: callable without auth while the explorer is on)",
    result=OPENRPC_DOC,
    public=True,
)

# A batch yields to the event loop when a call has run this long (s) since
# the last yield, so node.info and other clients are served in between.
YIELD_AFTER = 0.01
# A batch's answer is written in pieces of about this size (bytes).
WRITE_CHUNK = 256 * 1024

Params = dict[str, Any]
Method = Callable[[Params], Awaitable[Any]]
# A batch handler gets every call of one method in a batch at once, so e.g.
# tx.submit can verify signatures of the whole batch in parallel. It returns
# one (result, error) pair per call.
BatchMethod = Callable[[list[Params]], Awaitable[list[tuple[Any, PowernodeError | None]]]]
# Told each method run: (method, seconds, calls); a batch's calls of a batch
# method (tx.submit) run as one, so calls may be more than 1.
OnCall = Callable[[str, float, int], None]
# ``GET /health``: (HTTP status, JSON body), given the query's max_tip_age.
HealthCheck = Callable[[int | None], tuple[int, dict[str, Any]]]
# ``GET /rpc`` upgraded to a WebSocket, once authorized (node/rpc_ws.py);
# the flag: a no-auth client of the explorer, which may call public methods only.
WebSocketHandler = Callable[[web.Request, bool], Awaitable[web.StreamResponse]]


# Names of this machine a no-auth request's Host may give, besides the bound
# address and the configured ``[explorer] hosts``.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class PublicBounds:
    """What one caller without auth (the explorer's public RPC) may make the
    node hold: the ``[explorer]`` config keys of the same names."""

    max_request_bytes: int = 64 * 1024
    batch_limit: int = 50
    max_response_bytes: int = 4 * 1024 * 1024
    max_parallel: int = 16
    # Host names a no-auth request may name (its Host header), besides
    # LOCAL_HOSTS and the bound address; "*": any.
    hosts: tuple[str, ...] = ()


def host_name(netloc: str) -> str | None:
    """The host of ``host[:port]`` (lowercase, IPv6 without brackets), or
    None if it is not one."""
    try:
        return urlsplit("//" + netloc).hostname
    except ValueError:
        return None


def _valid_id(id_: Any) -> bool:
    # bool is an int subclass in Python, but JSON's true/false are no ids.
    return id_ is None or type(id_) is str or type(id_) is int


# The stable code of each of the envelope's own errors, by its number.
_CODES = {
    PARSE_ERROR: ParseError.code,
    INVALID_REQUEST: InvalidRequest.code,
    METHOD_NOT_FOUND: MethodNotFound.code,
    INVALID_PARAMS: InvalidParams.code,
    INTERNAL_ERROR: InternalFault.code,
    RESPONSE_TOO_LARGE: ResponseTooLarge.code,
}


def _error(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    """An error answer; without ``data``, the number's own stable code."""
    if data is None:
        data = {"code": _CODES.get(code, "error"), "message": message}
    err: dict[str, Any] = {"code": code, "message": message, "data": data}
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def result_json(result: Any) -> str:
    """``result`` as JSON text, an integer past 2^53 - 1 as a decimal string
    (the rule every answer keeps; the WebSocket's notices use this)."""
    text = json.dumps(result)
    if _LONG_NUMBER_TEXT.search(text):
        text = json.dumps(big_ints_as_strings(result))
    return text


def refusal(
    code: int, message: str, reason: str | None = None, status: int = 200
) -> dict[str, Any]:
    """The answer to a request turned away whole (over HTTP or a WebSocket),
    logged as ``rpc.refused``; ``reason``: the stable code in
    ``error.data.code`` when not the number's own."""
    answer = _error(None, code, message, {"code": reason, "message": message} if reason else None)
    _log_refused(answer, status)
    return answer


def _log_refused(answer: dict[str, Any], status: int = 200) -> None:
    """``rpc.refused`` for a request turned away whole (or a call of one
    without auth that names a private method): the JSON-RPC number,
    the stable code (``reason``, as in ``error.data.code``), the text, and
    the HTTP status when the answer has its own."""
    err = answer["error"]
    fields: dict[str, Any] = {"code": err["code"], "reason": err["data"]["code"]}
    if status != 200:
        fields["status"] = status
    emit(log, "rpc.refused", logging.DEBUG, **fields, msg=err["message"])


def error_response(id_: Any, exc: PowernodeError) -> dict[str, Any]:
    if isinstance(exc, InvalidParams):
        return _error(id_, INVALID_PARAMS, exc.message, exc.to_dict())
    code = NOT_FOUND if isinstance(exc, NotFound) else REJECTED
    return _error(id_, code, exc.message, exc.to_dict())


class _Answers:
    """A batch's answers, each encoded as it is made, so the running size is
    known (and only bytes are kept, not the result objects)."""

    def __init__(self, calls: int, cap: int | None, *, cap_each: bool = False) -> None:
        self.parts: list[bytes | None] = [None] * calls
        self.size = 2  # the brackets around the batch
        self.cap = cap
        # A caller without auth: a single answer past the cap is not sent
        # either (-32003), so one call cannot make a larger answer.
        self.cap_each = cap_each

    def put(self, i: int, response: dict[str, Any]) -> None:
        result = response.get("result")
        id_ = response.get("id")
        if (
            type(result) is str
            and len(response) == 3
            and (type(id_) is int or type(id_) is str)
            and response.get("jsonrpc") == "2.0"
        ):
            # A batch of tx.submit answers (a txid each) is made of these:
            # the bytes json.dumps gives, without its per-call set-up. A
            # string result holds no number for _LONG_NUMBER to rewrite.
            data = _RESULT_ANSWER % (
                (encode_basestring_ascii(id_) if isinstance(id_, str) else str(id_)).encode(),
                encode_basestring_ascii(result).encode(),
            )
        else:
            data = self._encode(response)
        if self.cap_each and self.cap is not None and len(data) > self.cap:
            data = json.dumps(
                _error(response.get("id"), RESPONSE_TOO_LARGE, "response too large")
            ).encode()
        self.parts[i] = data
        self.size += len(data) + 2  # and the ", " that joins it

    @staticmethod
    def _encode(response: dict[str, Any]) -> bytes:
        data = json.dumps(response).encode()
        if "result" in response and _LONG_NUMBER.search(data):
            # The id is echoed as sent, whatever its size (JSON-RPC 2.0).
            response = {**response, "result": big_ints_as_strings(response["result"])}
            data = json.dumps(response).encode()
        return data

    @property
    def full(self) -> bool:
        return self.cap is not None and self.size > self.cap


class RpcServer:
    def __init__(
        self,
        *,
        methods: dict[str, Method],
        batch_methods: dict[str, BatchMethod],
        cookie: str,
        token: str,
        max_request_bytes: int,
        batch_limit: int,
        max_response_bytes: int,
        max_depth: int,
        max_values: int,
        specs: Mapping[str, MethodSpec],
        version: str,
        on_call: OnCall | None = None,
        health: HealthCheck | None = None,
        explorer: bool = False,
        public: PublicBounds | None = None,
    ) -> None:
        self.specs = {**specs, "rpc.discover": DISCOVER_SPEC}
        self.methods = {**methods, "rpc.discover": self._discover}
        missing = sorted((self.methods.keys() | batch_methods.keys()) - self.specs.keys())
        if missing:
            raise ValueError(f"RPC methods without a spec (rpc_spec.MethodSpec): {missing}")
        self.version = version
        # Serve the explorer, and no-auth requests their public calls.
        self.explorer = explorer
        self.public = PublicBounds() if public is None else public
        self._allowed_hosts = set(LOCAL_HOSTS) | {h.lower() for h in self.public.hosts}
        # No-auth POSTs being served now (PublicBounds.max_parallel).
        self._public_running = 0
        self._on_call = on_call
        self._health = health
        self.batch_methods = batch_methods
        self._cookie = cookie
        self._token = token
        self.max_request_bytes = max_request_bytes
        self.batch_limit = batch_limit
        self.max_response_bytes = max_response_bytes
        self.max_depth = max_depth
        self.max_values = max_values
        self._runner: web.AppRunner | None = None
        self.url = ""
        # Set by the node before start; None: GET /rpc is 405, as before.
        self.websocket: WebSocketHandler | None = None

    async def _discover(self, p: Params) -> Any:
        return openrpc(self.specs, version=self.version, url=self.url)

    @staticmethod
    def new_cookie() -> str:
        return secrets.token_hex(32)

    def _authorized(self, request: web.Request) -> bool:
        # The scheme's name is case-insensitive and may be followed by more
        # than one space (RFC 9110 11.1, 11.4): "basic  x" is "Basic x".
        scheme, _, rest = request.headers.get("Authorization", "").partition(" ")
        credentials = rest.lstrip(" ")
        # Compared as bytes: compare_digest refuses a str that is not ASCII
        # (a TypeError, which would answer 500, not 401).
        if scheme.lower() == "basic":
            try:
                given = base64.b64decode(credentials, validate=True)
            except ValueError:
                return False
            return hmac.compare_digest(given, f"__cookie__:{self._cookie}".encode())
        if scheme.lower() == "bearer" and self._token:
            return hmac.compare_digest(
                credentials.encode("utf-8", "surrogateescape"), self._token.encode()
            )
        return False

    def app(self) -> web.Application:
        app = web.Application(client_max_size=self.max_request_bytes)
        app.router.add_post("/rpc", self.handle)
        app.router.add_get("/rpc", self.handle_upgrade)
        app.router.add_get("/health", self.handle_health)
        add_explorer_routes(app, enabled=self.explorer)
        return app

    def _host_allowed(self, netloc: str) -> bool:
        name = host_name(netloc)
        return "*" in self._allowed_hosts or (name is not None and name in self._allowed_hosts)

    def _access(self, request: web.Request) -> bool | web.Response:
        """False: every method; True: a no-auth explorer client, public
        methods only; a Response: the request refused with it.

        A request from a browser page (it has an ``Origin``) whose host is
        not one of this node's names is refused, even with auth: a browser
        may have cached Basic credentials, and a WebSocket is guarded by no
        CORS rule. A no-auth request must also name an allowed host (Host
        header): after DNS rebinding, an attacker's page is same-origin with
        its own name, which resolves here, and its Origin equals its Host."""
        origin = request.headers.get("Origin")
        if origin is not None and not self._host_allowed(_netloc(origin)):
            return _cross_origin(origin, authorized=self._authorized(request))
        if self._authorized(request):
            return False
        if not self.explorer or "Authorization" in request.headers:
            return _unauthorized()
        if not self._host_allowed(request.host):
            return _foreign_host(request.host)
        if origin is not None and _netloc(origin) != request.host.lower():
            return _cross_origin(origin, authorized=False)
        return True

    async def handle_upgrade(self, request: web.Request) -> web.StreamResponse:
        """``GET /rpc``: the WebSocket, with the same auth as POST."""
        if self.websocket is None:
            raise web.HTTPMethodNotAllowed("GET", ["POST"])
        access = self._access(request)
        if isinstance(access, web.Response):
            return access
        if not web.WebSocketResponse().can_prepare(request).ok:
            # A browser or curl opening the URL: say what it is, in JSON
            # like every other refusal (aiohttp's own answer is bare text).
            return web.json_response(
                refusal(
                    INVALID_REQUEST,
                    "GET /rpc is the WebSocket (ws://.../rpc); send JSON-RPC calls with POST",
                    status=400,
                ),
                status=400,
            )
        return await self.websocket(request, access)

    async def handle_health(self, request: web.Request) -> web.Response:
        """Unauthenticated, as a load balancer or orchestrator asks it: 200
        when serving and in sync, else 503 with a reason (node/health.py)."""
        if self._health is None:
            return web.json_response({"status": "unavailable", "reason": "starting"}, status=503)
        raw = request.query.get("max_tip_age")
        max_age: int | None = None
        if raw is not None:
            # ASCII digits only (str.isdigit also takes "²", which int()
            # refuses); any age past 10^18 s is no bound at all, and keeps
            # int() clear of its digit limit.
            if not (raw.isascii() and raw.isdigit()):
                return web.json_response(
                    {"status": "error", "reason": "max_tip_age must be a non-negative integer"},
                    status=400,
                )
            digits = raw.lstrip("0") or "0"
            max_age = int(digits) if len(digits) <= 18 else 10**18
        status, body = self._health(max_age)
        return web.json_response(body, status=status)

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0: any free one); ``url`` says where."""
        runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await runner.setup()
        self._runner = runner
        self._allowed_hosts.add(host.lower().strip("[]"))
        await web.TCPSite(runner, host, port, reuse_address=True).start()
        self.url = http_url(host, runner.addresses[0][1], "rpc")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _refuse(
        self, code: int, message: str, status: int = 200, reason: str | None = None
    ) -> web.Response:
        return web.json_response(refusal(code, message, reason, status), status=status)

    async def _read_body(self, request: web.Request, limit: int) -> bytearray:
        """The body, scanned as it arrives (``Scan``): refused (``Refused``)
        as soon as it is too long or holds too many values, without reading
        the rest. Read here rather than with ``request.read()``, which keeps
        a bytes copy of the whole body as long as the request lives: this
        buffer is dropped once decoded, before the answer is made."""
        length = request.content_length
        # A compressed body's length is not what the bound is on: the read
        # below counts it decompressed.
        if length is not None and length > limit and not request.headers.get("Content-Encoding"):
            raise Refused(
                INVALID_REQUEST, "request too large", status=413, reason=RequestTooLarge.code
            )
        scan = Scan(max_values=self.max_values, max_depth=self.max_depth)
        body = bytearray()
        try:
            while chunk := await request.content.readany():
                body += chunk
                if len(body) > limit:
                    raise Refused(
                        INVALID_REQUEST,
                        "request too large",
                        status=413,
                        reason=RequestTooLarge.code,
                    )
                scan.feed(chunk)
        except web.RequestPayloadError as exc:
            # A body that does not decompress (Content-Encoding): the
            # client's fault, answered as a parse error, in aiohttp's words
            # without its status and line breaks.
            # The rest of the body is not read: marked ended, aiohttp sends
            # the answer instead of failing to drain it (and logging that),
            # then closes the connection, whose stream is past repair.
            request.content.feed_eof()
            why = " ".join(str(getattr(exc.__cause__, "message", None) or exc).split())
            raise Refused(
                PARSE_ERROR, f"parse error: the body does not decode: {why}", close=True
            ) from None
        scan.finish()
        return body

    async def handle(self, request: web.Request) -> web.StreamResponse:
        access = self._access(request)
        if isinstance(access, web.Response):
            return access
        if not access:
            return await self._serve(request, public_only=False)
        if self._public_running >= self.public.max_parallel:
            return self._refuse(
                INVALID_REQUEST,
                f"busy: {self._public_running} requests without auth are being served "
                "([explorer] max_parallel)",
                status=503,
            )
        self._public_running += 1
        try:
            return await self._serve(request, public_only=True)
        finally:
            self._public_running -= 1

    async def _serve(self, request: web.Request, *, public_only: bool) -> web.StreamResponse:
        """A POST's calls; ``public_only``: with the no-auth bounds, public
        methods only."""
        bounds = self.public if public_only else self
        try:
            body = await self._read_body(request, bounds.max_request_bytes)
            text = decode(body)
            del body
            doc = loads(text)
            del text
        except Refused as exc:
            refused = self._refuse(exc.code, exc.message, exc.status, exc.reason)
            if exc.close:
                refused.force_close()
            return refused
        if isinstance(doc, list):
            if not doc:
                return self._refuse(INVALID_REQUEST, "empty batch")
            if len(doc) > bounds.batch_limit:
                # As geth: the whole batch is refused, none of it runs.
                return self._refuse(
                    INVALID_REQUEST,
                    f"batch too large: {len(doc)} calls, the limit is {bounds.batch_limit}",
                    reason=BatchTooLarge.code,
                )
            answers = await self.dispatch_batch(
                doc, max_response_bytes=bounds.max_response_bytes, public_only=public_only
            )
            del doc
            out = [a for a in answers if a is not None]
            del answers
            if not out:
                return web.Response(status=204)
            return await _send_batch(request, out)
        answer = (
            await self.dispatch_batch(
                [doc],
                max_response_bytes=bounds.max_response_bytes if public_only else None,
                public_only=public_only,
            )
        )[0]
        return web.Response(status=204) if answer is None else _json_body(answer)

    async def dispatch_batch(
        self,
        calls: list[Any],
        *,
        max_response_bytes: int | None = None,
        methods: dict[str, Method] | None = None,
        public_only: bool = False,
    ) -> list[bytes | None]:
        """Each call's answer, JSON-encoded, in request order; None for a
        notification. With ``max_response_bytes``, calls stop being run once
        the answers so far pass it, and the rest are answered -32003.
        ``methods``: the table to run from instead of the server's (a
        WebSocket adds its own ``subscribe``). ``public_only``: a call of a
        method that is not public is answered -32600 ``unauthorized``, unrun."""
        table = self.methods if methods is None else methods
        started = time.perf_counter()
        answers = _Answers(len(calls), max_response_bytes, cap_each=public_only)
        grouped: dict[str, list[tuple[int, Any, Params, bool]]] = {}
        skipped: list[tuple[int, Any, bool]] = []
        yielded = time.perf_counter()
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
                answers.put(
                    i, _error(id_ if _valid_id(id_) else None, INVALID_REQUEST, "invalid request")
                )
                continue
            id_ = call.get("id")
            # Notifications (valid calls without an id) run but get no
            # answer, not even an error; an invalid request is answered.
            notification = "id" not in call
            params = call.get("params", {})
            if isinstance(params, list):
                params = {"_args": params}
            name = call["method"]
            spec = self.specs.get(name)
            known = name in table or name in self.batch_methods
            # Fails closed: a method with no spec is not public either.
            if public_only and known and (spec is None or not spec.public):
                answer = _not_public(id_, name)
                _log_refused(answer)
                if not notification:
                    answers.put(i, answer)
                continue
            if spec is not None and (name in self.batch_methods or name in self.methods):
                try:
                    spec.check(params)
                except InvalidParams as exc:
                    if not notification:
                        answers.put(i, error_response(id_, exc))
                    continue
            if name in self.batch_methods:
                grouped.setdefault(name, []).append((i, id_, params, notification))
            elif name not in table:
                if not notification:
                    answers.put(i, _error(id_, METHOD_NOT_FOUND, f"method not found: {name}"))
            elif answers.full:
                skipped.append((i, id_, notification))
            else:
                response = await self._call_one(table[name], name, id_, params)
                if not notification:
                    answers.put(i, response)
                yielded = await _yield_if_due(yielded)
        for name, items in grouped.items():
            if answers.full:
                skipped += [(i, id_, notification) for i, id_, _, notification in items]
                continue
            # A group runs whole (tx.submit checks its signatures together),
            # so every call in it that ran is answered, even past the cap.
            for i, response, notification in await self._call_group(name, items):
                if not notification:
                    answers.put(i, response)
            yielded = await _yield_if_due(yielded)
        for i, id_, notification in skipped:
            if not notification:
                answers.put(i, _error(id_, RESPONSE_TOO_LARGE, "response too large"))
        if log.isEnabledFor(logging.DEBUG):
            emit(
                log,
                "rpc.batch",
                logging.DEBUG,
                calls=len(calls),
                skipped=len(skipped),
                bytes=answers.size,
                ms=(time.perf_counter() - started) * 1000,
            )
        return answers.parts

    async def _call_group(
        self, name: str, items: list[tuple[int, Any, Params, bool]]
    ) -> list[tuple[int, dict[str, Any], bool]]:
        """Every call of one batch method at once: (index, answer, notification)."""
        started = time.perf_counter()
        try:
            results = await self.batch_methods[name]([p for _, _, p, _ in items])
        except Exception:
            emit(log, "rpc.internal_error", logging.ERROR, exc_info=True, method=name)
            self._called(name, started, len(items), "internal_error")
            return [(i, _error(id_, INTERNAL_ERROR, "internal error"), n) for i, id_, _, n in items]
        # The first refused call's code: a batch of one refused tx.submit
        # logs its reason as a single call would.
        first = next((err.code for _, err in results if err), "")
        self._called(name, started, len(items), first)
        return [
            (
                i,
                error_response(id_, err)
                if err
                else {"jsonrpc": "2.0", "id": id_, "result": result},
                n,
            )
            for (i, id_, _, n), (result, err) in zip(items, results, strict=True)
        ]

    def _called(self, name: str, started: float, calls: int, error: str) -> None:
        seconds = time.perf_counter() - started
        if self._on_call is not None:
            self._on_call(name, seconds, calls)
        emit(
            log, "rpc.call", logging.DEBUG, method=name, calls=calls, ms=seconds * 1000, error=error
        )

    async def _call_one(
        self, method: Method, name: str, id_: Any, params: Params
    ) -> dict[str, Any]:
        started = time.perf_counter()
        try:
            result = await method(params)
        except PowernodeError as exc:
            self._called(name, started, 1, exc.code)
            return error_response(id_, exc)
        except Exception:
            emit(log, "rpc.internal_error", logging.ERROR, exc_info=True, method=name)
            self._called(name, started, 1, "internal_error")
            return _error(id_, INTERNAL_ERROR, "internal error")
        self._called(name, started, 1, "")
        return {"jsonrpc": "2.0", "id": id_, "result": result}


def _refused_http(message: str, status: int, **headers: str) -> web.Response:
    """A request refused whole for want of auth (401) or from a foreign page
    or host (403), logged as ``rpc.refused``."""
    answer = _error(None, INVALID_REQUEST, message, Unauthorized(message).to_dict())
    _log_refused(answer, status)
    return web.json_response(answer, status=status, headers=headers or None)


def _unauthorized() -> web.Response:
    return _refused_http("unauthorized", 401, **{"WWW-Authenticate": 'Basic realm="powernode"'})


def _cross_origin(origin: str, *, authorized: bool) -> web.Response:
    message = (
        f"unauthorized: a page from {origin[:100]} may not use this node's RPC "
        f"{'even with auth' if authorized else 'without auth'} "
        "(only pages from this node's own names may: [explorer] hosts)"
    )
    return _refused_http(message, 403)


def _foreign_host(host: str) -> web.Response:
    message = (
        f"unauthorized: without auth, the Host must be one of this node's names, not "
        f"{host[:100]!r} (add it to [explorer] hosts)"
    )
    return _refused_http(message, 403)


def _netloc(url: str) -> str:
    try:
        return urlsplit(url).netloc.lower()
    except ValueError:
        return ""


def _not_public(id_: Any, name: str) -> dict[str, Any]:
    message = f"unauthorized: {name} needs the cookie or token; without auth only public methods"
    return _error(id_, INVALID_REQUEST, message, Unauthorized(message).to_dict())


def _json_body(data: bytes) -> web.Response:
    return web.Response(body=data, content_type="application/json", charset="utf-8")


async def _send_batch(request: web.Request, parts: list[bytes]) -> web.StreamResponse:
    """Send ``[part, part, ...]`` (with the ", " json.dumps puts between
    list items), letting go of each part once it is written: the answer is
    never held twice, as joining it into one bytes object would."""
    resp = web.StreamResponse()
    resp.content_type = "application/json"
    resp.charset = "utf-8"
    resp.content_length = sum(map(len, parts)) + 2 * len(parts)  # "[", "]" and the ", "s
    await resp.prepare(request)
    chunk = bytearray(b"[")
    for i, part in enumerate(parts):
        parts[i] = b""
        if i:
            chunk += b", "
        chunk += part
        del part
        if len(chunk) >= WRITE_CHUNK:
            await resp.write(chunk)
            chunk = bytearray()
    chunk += b"]"
    await resp.write(chunk)
    await resp.write_eof()
    return resp


async def _yield_if_due(since: float) -> float:
    """Let the event loop run other tasks if this one has held it for
    ``YIELD_AFTER`` s since ``since``; returns when it last yielded. A
    method may never suspend, so a batch of them would otherwise hold the
    loop (node.info, other clients, peers) until the batch is done."""
    now = time.perf_counter()
    if now - since < YIELD_AFTER:
        return since
    await asyncio.sleep(0)
    return time.perf_counter()
