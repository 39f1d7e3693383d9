"""resolver.adapters: aiohttp's connector resolving through the resolver, against a real
aiohttp server on a loopback address that only the resolver's (fake) authorities know."""
from __future__ import annotations

import socket

import aiohttp
import pytest
from aiohttp import web

import resolver
from resolver.adapters import AiohttpResolver
from resolver.limits import Limits
from ports import free_port
from scenario import FakeServers, root_hints, small_internet

P = "127.54"
FAST = Limits(exploration=0.0, initial_rto=0.1, max_rto=0.2, max_query_time=1.5)
SVC = f"{P}.7.7"            # svc.example.com's address in the fake world


@pytest.fixture
def world(run):
    net = small_internet(prefix=P)
    fs = FakeServers(net)
    port = run(fs.start(sorted(net.served)))
    try:
        yield net, port
    finally:
        run(fs.stop())


async def _hello_site(hport: int) -> web.AppRunner:
    """An aiohttp server on SVC:hport that says which host it was asked for."""
    app = web.Application()

    async def hello(request):
        return web.Response(text=f"hello from {request.host}")
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, SVC, hport).start()
    return runner


def test_aiohttp_connects_to_a_name_the_resolver_finds(world, run):
    net, port = world
    r = resolver.Resolver(root_hints(P), port=port, limits=FAST, do_not_query_localhost=False)
    hport = free_port(SVC)

    async def go():
        runner = await _hello_site(hport)
        adapter = AiohttpResolver(r)
        try:
            connector = aiohttp.TCPConnector(resolver=adapter, use_dns_cache=False)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.get(f"http://svc.example.com:{hport}/") as resp:
                    text = await resp.text()
                with pytest.raises(aiohttp.ClientConnectorDNSError):
                    await session.get(f"http://nope.example.com:{hport}/")
            found = await adapter.resolve("svc.example.com", 80, socket.AF_INET)
        finally:
            await runner.cleanup()
        return text, found

    text, found = run(go())
    assert text == f"hello from svc.example.com:{hport}"
    assert found == [{"hostname": "svc.example.com", "host": SVC, "port": 80,
                      "family": socket.AF_INET, "proto": socket.IPPROTO_TCP,
                      "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV}]
    assert r.stats.cache_hits >= 1          # the second look-up came from the cache


def test_no_address_and_servfail_are_gaierrors(world, run):
    net, port = world
    r = resolver.Resolver(root_hints(P), port=port, limits=FAST, do_not_query_localhost=False)
    adapter = AiohttpResolver(r)
    with pytest.raises(socket.gaierror) as ei:
        run(adapter.resolve("txt.example.com", 443, socket.AF_INET))   # no A record
    assert ei.value.errno == socket.EAI_NODATA       # the name exists: glibc's error
    with pytest.raises(socket.gaierror) as ei:
        run(adapter.resolve("nowhere.example.com", 443, socket.AF_INET))
    assert ei.value.errno == socket.EAI_NONAME
    for a in list(net.served):
        net.faults[a] = "refused"
    with pytest.raises(socket.gaierror) as ei:
        run(adapter.resolve("www.other.net", 443, socket.AF_INET))
    assert ei.value.errno == socket.EAI_AGAIN


def test_literals_hosts_file_and_localhost_never_reach_dns(world, run, tmp_path):
    net, port = world
    r = resolver.Resolver(root_hints(P), port=port, limits=FAST, do_not_query_localhost=False)
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n"
                     "192.0.2.44 printer.lan\n")
    adapter = AiohttpResolver(r, hosts=hosts)

    def hosts_of(host, family=socket.AF_UNSPEC):
        got = run(adapter.resolve(host, 8080, family))
        assert all(g["hostname"] == host and g["port"] == 8080 for g in got)
        return [(g["host"], g["family"]) for g in got]

    # as aiohttp's ThreadedResolver gives them (the host's getaddrinfo)
    assert hosts_of("localhost") == [("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)]
    assert hosts_of("localhost", socket.AF_INET) == [("127.0.0.1", socket.AF_INET)]
    assert hosts_of("192.0.2.9", socket.AF_INET) == [("192.0.2.9", socket.AF_INET)]
    assert hosts_of("2001:db8::9") == [("2001:db8::9", socket.AF_INET6)]
    assert hosts_of("fe80::1%lo") == [("fe80::1%lo", socket.AF_INET6)]
    assert hosts_of("printer.lan") == [("192.0.2.44", socket.AF_INET)]
    assert hosts_of("foo.localhost") == [("::1", socket.AF_INET6), ("127.0.0.1", socket.AF_INET)]
    assert r.stats.client_queries == 0 and r.stats.upstream_queries == 0
    assert hosts_of("svc.example.com", socket.AF_INET) == [(SVC, socket.AF_INET)]
    with pytest.raises(socket.gaierror):
        run(adapter.resolve("192.0.2.9", 80, socket.AF_INET6))


def test_a_machine_that_reaches_dns_only_through_its_resolver(world, run, tmp_path):
    """Every root and TLD server refuses, so recursion finds nothing; the one server a
    resolv.conf (given by filename) names answers for svc.example.com. aiohttp through
    ``AiohttpResolver()`` and corenet's client through a Resolver asking that server reach
    the web server by name."""
    from corenet.https import AsyncClient
    from resolver.hostconf import nameservers

    net, port = world
    for a in list(net.served):
        if not a.startswith(f"{P}.3."):      # all but example.com's servers
            net.faults[a] = "refused"
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver {P}.3.1\n")
    recursing = resolver.Resolver(root_hints(P), port=port, limits=FAST,
                                  do_not_query_localhost=False)
    with pytest.raises(socket.gaierror):     # the root is out of reach
        run(AiohttpResolver(recursing, hosts=None).resolve("svc.example.com", 80))
    hport = free_port(SVC)
    url = f"http://svc.example.com:{hport}/"

    async def go():
        runner = await _hello_site(hport)
        adapter = AiohttpResolver(hosts=None, filename=conf, port=port)
        stub = resolver.Resolver(forward=nameservers(conf), port=port, limits=FAST)
        try:
            connector = aiohttp.TCPConnector(resolver=adapter, use_dns_cache=False)
            async with aiohttp.ClientSession(connector=connector) as session:
                async with session.get(url) as resp:
                    via_aiohttp = await resp.text()
            async with AsyncClient(resolver=stub, trust_env=False) as client:
                via_corenet = (await client.get(url)).text
        finally:
            await adapter.close()
            await stub.close()
            await runner.cleanup()
        return via_aiohttp, via_corenet, adapter.resolver.forward

    via_aiohttp, via_corenet, forward = run(go())
    assert via_aiohttp == via_corenet == f"hello from svc.example.com:{hport}"
    assert forward                           # the adapter made a stub, not a recursor
