"""The node's peer identity key: ``p2p.key`` in the data dir.

Its public half is the node id peers see and the handshake proves. It is a
key of its own, never the account and mining key ``node.key``: a node id is
shown to every peer, and rotating it (deleting the file) must cost nothing
but the peers' memory of this node. Created at first start, mode 0600, hex
of the 32-byte Ed25519 seed as ``node.key`` is.
"""

from __future__ import annotations

import os
from pathlib import Path

from powernode.core.crypto import KeyPair
from powernode.core.errors import ConfigError, DecodeError
from powernode.core.hextext import from_hex

P2P_KEY_FILE = "p2p.key"


def load_or_create_p2p_key(path: Path) -> KeyPair:
    """The key in ``path``, made there first if there is no file yet. Any
    trouble is a ConfigError naming the file (the node prints one line)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return _create(path)
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not text"
        raise ConfigError(f"cannot read the peer key {path}: {why}") from None
    try:
        return KeyPair.from_seed(from_hex(text.strip()))
    except (ValueError, DecodeError):
        raise ConfigError(
            f"{path} does not hold a hex private key (64 hex digits); delete it for a new node id"
        ) from None


def _create(path: Path) -> KeyPair:
    key = KeyPair.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(key.seed().hex() + "\n")
    except FileExistsError:
        # Made meanwhile (another process on this data dir): use that one.
        return load_or_create_p2p_key(path)
    except OSError as exc:
        raise ConfigError(f"cannot write the peer key {path}: {exc.strerror}") from None
    return key
