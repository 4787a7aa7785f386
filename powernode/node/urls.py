"""The URLs a node tells (``node.json``, ``metrics.listening``,
``explorer.enabled``) for a host and port it bound."""

from __future__ import annotations

__all__ = ["http_url"]


def http_url(host: str, port: int, path: str) -> str:
    """``http://HOST:PORT/PATH``, an IPv6 host in brackets (RFC 3986): a
    bare ``::1`` would be read as part of the port."""
    bare = host.removeprefix("[").removesuffix("]")
    shown = f"[{bare}]" if ":" in bare else bare
    return f"http://{shown}:{port}/{path.lstrip('/')}"
