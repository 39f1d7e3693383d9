"""The port chooser every test area uses for the servers it starts (tests/ports.py)."""
from __future__ import annotations

import socket

import pytest

from ports import bind_all, ephemeral_low, free_port


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_free_port_is_outside_the_range_client_sockets_are_given(host):
    """A port bound to 0 and closed comes from the ephemeral range, where any connect() of
    the machine may be handed it before the server binds it; the chooser's never does, is
    free for UDP and TCP, and is not handed out twice in a row."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        socket.socket(family, socket.SOCK_DGRAM).close()
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
    except OSError as e:
        pytest.skip(f"no {host} here: {e}")
    ports = [free_port(host) for _ in range(20)]
    assert all(1024 < p < ephemeral_low() for p in ports)
    assert len(set(ports)) == len(ports)
    for p in ports:
        for s in bind_all([host], p):       # each still free for both, as handed out
            s.close()
