"""Ports for dev nodes are picked below the kernel's ephemeral range, so none
of this machine's own outgoing connections can take one between the pick and
the node's bind (a CI run lost a node start to that once), and one process
never hands the same port to two listeners."""

from __future__ import annotations

import socket

import pytest

from powernode.devnet import datadir
from powernode.devnet.datadir import PORT_BAND, free_port


def test_ports_are_below_the_ephemeral_range_distinct_and_bindable() -> None:
    low = datadir._ephemeral_low()
    ports = [free_port() for _ in range(200)]
    assert len(set(ports)) == len(ports)
    assert all(max(1024, low - PORT_BAND) <= p < low for p in ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))


def test_a_port_in_use_is_not_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    real = datadir.random.SystemRandom.randrange
    picks = iter([busy, busy])  # the first two draws hit the busy port

    def randrange(self: object, a: int, b: int) -> int:
        return next(picks, None) or real(self, a, b)  # type: ignore[arg-type]

    monkeypatch.setattr(datadir.random.SystemRandom, "randrange", randrange)
    try:
        port = free_port()
        assert port != busy
        assert next(picks, None) is None  # both busy draws were made and refused
    finally:
        taken.close()


def test_an_unreadable_range_falls_back_to_linux_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(datadir, "_EPHEMERAL_RANGE", datadir.Path("/nonexistent/range"))
    assert datadir._ephemeral_low() == 32_768
