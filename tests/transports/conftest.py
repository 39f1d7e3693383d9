"""Fixtures of the transport tests: a throw-away PKI and a descriptor-leak check."""
from __future__ import annotations

import gc

import pytest

from looptools import open_fds
from transport_helpers import Pki, make_pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    return make_pki(str(tmp_path_factory.mktemp("transport-pki")))


@pytest.fixture
def fd_check(loop):
    """Yields a function that asserts no descriptor opened since the loop was made is still
    open (transports and sockets created by the test must all be closed by then)."""
    before = open_fds()

    def check() -> None:
        gc.collect()
        leaked = open_fds() - before
        assert not leaked, f"descriptors leaked: {sorted(leaked)}"

    return check
