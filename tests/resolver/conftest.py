"""Fixtures for the resolver tests: the DNS lab (real NSD on loopback, one per session)
and scriptable fake authorities on the test's loop."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # dnslab is importable however pytest imports us

from ci_policy import unavailable  # noqa: E402
from dnslab import Lab, LabError  # noqa: E402
from dnslab.nsd import NSD  # noqa: E402


@pytest.fixture(scope="session")
def lab(tmp_path_factory) -> Lab:
    """The lab hierarchy (see dnslab.cases for its names), started once per session and
    stopped by PID at the end, also when tests fail."""
    if not os.path.exists(NSD):
        unavailable("nsd (Debian package 'nsd') is not installed: scripts/setup.sh installs it")
    try:
        the_lab = Lab.start(tmp_path_factory.mktemp("dnslab"))
    except LabError as e:
        pytest.fail(f"the DNS lab did not start: {e}")
    try:
        yield the_lab
    finally:
        the_lab.stop()


@pytest.fixture
def fakes(loop, lab):
    """fakes(address, handler, port=None) -> FakeServer started on the test's loop, at the
    lab's port unless told otherwise; every one is closed after the test."""
    from dnslab.fake import FakeServer

    started: list[FakeServer] = []

    def start(address: str, handler, port: int | None = None, **kw) -> FakeServer:
        srv = loop.run_until_complete(
            FakeServer.start(address, lab.port if port is None else port, handler, **kw))
        started.append(srv)
        return srv

    yield start
    errors = []
    for srv in started:
        errors += srv.errors
        if not loop.is_closed():
            loop.run_until_complete(srv.close())
    assert not errors, f"a fake server's handler raised: {errors!r}"


@pytest.fixture
def lab_resolver(loop, lab):
    """lab_resolver(**kw) -> resolver.Resolver on the lab's root hints and port; the
    background work of each is cancelled after the test."""
    import resolver

    made = []

    def make(**kw):
        kw.setdefault("root_hints", lab.root_hints)
        kw.setdefault("port", lab.port)
        kw.setdefault("do_not_query_localhost", False)     # the lab is on loopback
        r = resolver.Resolver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        close = getattr(r, "close", None)
        if close is not None and not loop.is_closed():
            loop.run_until_complete(close())


@pytest.fixture
def validating(loop, signed_lab):
    """validating(**kw) -> Resolver over the signed lab with its anchor; closed after."""
    import resolver

    lab, anchor = signed_lab
    made = []

    def make(**kw):
        kw.setdefault("trust_anchor", anchor)
        kw.setdefault("do_not_query_localhost", False)     # the lab is on loopback
        r = resolver.Resolver(root_hints=lab.root_hints, port=lab.port, **kw)
        made.append(r)
        return r

    yield make
    for r in made:
        if not loop.is_closed():
            loop.run_until_complete(r.close())


@pytest.fixture(scope="session")
def signed_lab(tmp_path_factory):
    """(lab, trust-anchor path): the signed hierarchy of ``dnssec_lab`` (signed at test
    time, so never stale) served by NSD on its own port; stopped by PID at the end."""
    import dnssec_lab

    if not os.path.exists(NSD):
        unavailable("nsd (Debian package 'nsd') is not installed: scripts/setup.sh installs it")
    missing = dnssec_lab.tools_missing()
    if missing:
        unavailable(f"{missing} not installed: scripts/setup.sh installs it")
    work = tmp_path_factory.mktemp("signedlab")
    zones, servers, anchor = dnssec_lab.build(work / "keys")
    try:
        the_lab = Lab.start(work, zone_texts=zones, servers=servers)
    except LabError as e:
        pytest.fail(f"the signed DNS lab did not start: {e}")
    try:
        yield the_lab, anchor
    finally:
        the_lab.stop()


@pytest.fixture
def redis_shared(tmp_path):
    """A function making a resolver's SharedCache on a Redis server of this test's own
    (``redis_proc``), stopped by PID at the end."""
    from miss_path import shared_cache_factory
    from redis_proc import Redis

    server = Redis(tmp_path / "redis").start()
    try:
        yield shared_cache_factory(server)
    finally:
        server.stop()


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server (redis_proc.Redis) for the test, stopped by PID after it."""
    from redis_proc import Redis
    r = Redis(tmp_path / "redis").start()
    try:
        yield r
    finally:
        r.stop()
