"""resolver.install: loop.getaddrinfo (and create_connection) resolving through the Resolver."""
from __future__ import annotations

import asyncio
import socket

import pytest

import resolver
from resolver.getaddrinfo import uninstall
from resolver.limits import Limits
from scenario import FakeServers, root_hints, small_internet

P = "127.53"


@pytest.fixture
def installed(loop, run):
    net = small_internet(prefix=P)
    fs = FakeServers(net)
    port = run(fs.start(sorted(set(net.served))))
    r = resolver.Resolver(root_hints(P), port=port,
                          limits=Limits(exploration=0.0, initial_rto=0.1, max_query_time=1.5))
    resolver.install(loop, r)
    try:
        yield r, net
    finally:
        uninstall(loop)
        run(fs.stop())


def test_names_resolve_like_the_stdlib_shapes_them(installed, loop, run):
    r, net = installed
    got = run(loop.getaddrinfo("www.example.com", 80, type=socket.SOCK_STREAM))
    want = socket.getaddrinfo("192.0.2.1", 80, socket.AF_INET, socket.SOCK_STREAM) + \
        socket.getaddrinfo("2001:db8::1", 80, socket.AF_INET6, socket.SOCK_STREAM)
    assert sorted(got) == sorted(want)
    only4 = run(loop.getaddrinfo("www.example.com", "http", family=socket.AF_INET,
                                 type=socket.SOCK_STREAM))
    assert only4 == socket.getaddrinfo("192.0.2.1", 80, socket.AF_INET, socket.SOCK_STREAM)
    anytype = run(loop.getaddrinfo("www.example.com", 53, family=socket.AF_INET))
    assert {t for _, t, _, _, _ in anytype} >= {socket.SOCK_STREAM, socket.SOCK_DGRAM}


def test_canonname_and_errors(installed, loop, run):
    r, net = installed
    got = run(loop.getaddrinfo("alias.example.com", 443, family=socket.AF_INET,
                               type=socket.SOCK_STREAM, flags=socket.AI_CANONNAME))
    assert got[0][3] == "www.example.com" and got[0][4] == ("192.0.2.1", 443)
    with pytest.raises(socket.gaierror) as exc:
        run(loop.getaddrinfo("nope.example.com", 80))
    assert exc.value.errno == socket.EAI_NONAME
    for a in (f"{P}.3.1", f"{P}.3.2"):
        net.faults[a] = "refused"
    with pytest.raises(socket.gaierror) as exc:
        run(loop.getaddrinfo("mail.example.com", 80))
    assert exc.value.errno == socket.EAI_AGAIN
    with pytest.raises(socket.gaierror):
        run(loop.getaddrinfo("www.example.com", "no-such-service-name"))


def test_numeric_hosts_and_localhost_never_reach_dns(installed, loop, run):
    r, net = installed
    for host in ("127.0.0.1", "::1", "localhost", None):
        got = run(loop.getaddrinfo(host, 80, type=socket.SOCK_STREAM))
        assert got == socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
    assert r.stats.upstream_queries == 0


def test_create_connection_by_name_goes_through_the_resolver(installed, loop, run):
    r, net = installed

    async def go():
        async def handle(reader, writer):
            writer.write(b"hi " + await reader.readexactly(3))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, f"{P}.7.7", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            reader, writer = await asyncio.open_connection("svc.example.com", port)
            writer.write(b"abc")
            data = await reader.read(100)
            writer.close()
            await writer.wait_closed()
            return data
        finally:
            server.close()
            await server.wait_closed()

    assert run(go()) == b"hi abc"
    assert r.stats.upstream_queries > 0
