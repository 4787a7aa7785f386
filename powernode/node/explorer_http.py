"""The web explorer's files on the RPC port: ``GET /`` is the page,
``GET /explorer/<file>`` the other files of powernode/explorer/static/.

Only the files in that one folder are served: a name is one path segment
of letters, digits, ``.``, ``_`` and ``-`` not starting with a dot, so
nothing outside it (no ``..``, no sub-folder, no hidden file) can be named,
and there is no listing. Every answer carries a Content-Security-Policy
that lets the page load its own files and talk to this node only (no
other origin, no inline script or style), plus ``nosniff`` and
``no-referrer``. With the explorer off, both routes answer 404 with a line
saying how to turn it on. Every other 404 of the RPC port (``/explorer``,
``/explorer/``, a sub-folder, any unknown path) is made here too, with the
same headers, not aiohttp's bare one.
"""

from __future__ import annotations

import re
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

STATIC_DIR = Path(__file__).resolve().parent.parent / "explorer" / "static"
INDEX = "index.html"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    # The files change with the node's version; a reload must not show stale ones.
    "Cache-Control": "no-cache",
}
DISABLED_TEXT = (
    "the explorer is off on this node; to serve it, set [explorer] enabled = true in "
    "config.toml and restart (anyone who reaches the RPC port can then read the chain)\n"
)

# By suffix, not the system's mimetypes table, which differs between hosts
# (.js as application/javascript or text/javascript, or not at all).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2",
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def static_file(name: str, folder: Path = STATIC_DIR) -> Path | None:
    """The file ``name`` of ``folder``, or None if the name is not a plain
    file name of the folder or no such file exists."""
    if not _NAME.match(name) or Path(name).suffix not in CONTENT_TYPES:
        return None
    path = folder / name
    return path if path.is_file() else None


def _text(status: int, text: str) -> web.Response:
    return web.Response(
        status=status, text=text, content_type="text/plain", headers=SECURITY_HEADERS
    )


def _file(name: str) -> web.Response:
    path = static_file(name)
    if path is None:
        return _text(404, f"no explorer file {name!r}\n")
    try:
        body = path.read_bytes()  # a few kB each: no need to leave the loop
    except OSError:
        return _text(404, f"no explorer file {name!r}\n")
    headers = {**SECURITY_HEADERS, "Content-Type": CONTENT_TYPES[path.suffix]}
    return web.Response(body=body, headers=headers)


def add_explorer_routes(app: web.Application, *, enabled: bool) -> None:
    """``GET /`` and ``GET /explorer/{name}`` on ``app`` (HEAD too)."""

    async def index(request: web.Request) -> web.Response:
        return _file(INDEX) if enabled else _text(404, DISABLED_TEXT)

    async def asset(request: web.Request) -> web.Response:
        return _file(request.match_info["name"]) if enabled else _text(404, DISABLED_TEXT)

    @web.middleware
    async def not_found(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPNotFound:
            path = request.path
            if not enabled and (path == "/explorer" or path.startswith("/explorer/")):
                return _text(404, DISABLED_TEXT)
            return _text(404, "not found\n")
        except web.HTTPMethodNotAllowed as exc:
            # aiohttp's own 405 would go out without the headers every
            # other answer of the port carries.
            resp = _text(405, "method not allowed\n")
            resp.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
            return resp

    app.middlewares.append(not_found)
    app.router.add_get("/", index)
    app.router.add_get("/explorer/{name}", asset)
