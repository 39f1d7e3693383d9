"""Fixtures shared by the loop's tests."""
from __future__ import annotations

import socket

import pytest


@pytest.fixture
def pair():
    """A connected pair of non-blocking stream sockets, closed after the test."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    yield a, b
    a.close()
    b.close()
