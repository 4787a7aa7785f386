"""What each side of a handshake signs to prove its node id.

A node id is an Ed25519 public key. Each hello carries a fresh 32-byte
challenge; each side then signs one canonical msgpack array naming the
purpose, the network, its own role and both sides' ids and challenges:

    ["powernode/p2p-auth", chain_id, genesis, role, signer_id, other_id,
     signer_challenge, other_challenge]

``role`` is ``"dial"`` for the side that opened the connection and
``"accept"`` for the other, so a signature made in one role is never valid
in the other (a relay cannot hand an acceptor's proof to another acceptor).
The other side's challenge makes the proof fresh: it is good for this
handshake only.
"""

from __future__ import annotations

from powernode.core import encoding
from powernode.core.crypto import KeyPair, signature_ok

AUTH_TAG = "powernode/p2p-auth"
DIAL = "dial"
ACCEPT = "accept"


def auth_message(
    *,
    chain_id: str,
    genesis: bytes,
    role: str,
    signer: bytes,
    other: bytes,
    signer_challenge: bytes,
    other_challenge: bytes,
) -> bytes:
    return encoding.encode(
        [AUTH_TAG, chain_id, genesis, role, signer, other, signer_challenge, other_challenge]
    )


def sign_auth(
    key: KeyPair,
    *,
    chain_id: str,
    genesis: bytes,
    role: str,
    other: bytes,
    signer_challenge: bytes,
    other_challenge: bytes,
) -> bytes:
    """``key``'s signature over the auth message, ``key`` being the signer."""
    return key.sign(
        auth_message(
            chain_id=chain_id,
            genesis=genesis,
            role=role,
            signer=key.pubkey,
            other=other,
            signer_challenge=signer_challenge,
            other_challenge=other_challenge,
        )
    )


def auth_ok(
    signature: bytes,
    *,
    chain_id: str,
    genesis: bytes,
    role: str,
    signer: bytes,
    other: bytes,
    signer_challenge: bytes,
    other_challenge: bytes,
) -> bool:
    """Whether ``signature`` is ``signer``'s over the auth message."""
    message = auth_message(
        chain_id=chain_id,
        genesis=genesis,
        role=role,
        signer=signer,
        other=other,
        signer_challenge=signer_challenge,
        other_challenge=other_challenge,
    )
    return signature_ok(signer, signature, message)
