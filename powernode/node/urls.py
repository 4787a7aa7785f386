"""The URLs a node tells (``node.json``, ``metrics.listening``,
``explorer.enabled``) for a host and port it bound."""

from __future__ import annotations

__all__ = ["host_port", "http_url"]


def host_port(host: str, port: int) -> str:
    """``HOST:PORT``, an IPv6 host in brackets (RFC 3986), as ``[p2p] peers``
    takes it: a bare ``::1:8646`` cannot be split back."""
    bare = host.removeprefix("[").removesuffix("]")
    return f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"


def http_url(host: str, port: int, path: str) -> str:
    """``http://HOST:PORT/PATH``, an IPv6 host in brackets."""
    return f"http://{host_port(host, port)}/{path.lstrip('/')}"
