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
def conf(tmp_path):
    """A hosts file and a resolv.conf of the test's own (the host's are never read)."""
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n::1 localhost ip6-localhost\n")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 192.0.2.53\n")
    return hosts, resolv


@pytest.fixture
def installed(loop, run, conf):
    net = small_internet(prefix=P)
    fs = FakeServers(net)
    port = run(fs.start(sorted(set(net.served))))
    r = resolver.Resolver(root_hints(P), port=port, do_not_query_localhost=False,
                          limits=Limits(exploration=0.0, initial_rto=0.1, max_query_time=1.5))
    resolver.install(loop, r, hosts=conf[0], resolv_conf=conf[1])
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
    for host in ("127.0.0.1", "::1", "fe80::1%lo", None):
        got = run(loop.getaddrinfo(host, 80, type=socket.SOCK_STREAM))
        assert got == socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
    # localhost from the test's hosts file, in its order
    got = run(loop.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM))
    assert [sa[0] for *_, sa in got] == ["127.0.0.1", "::1"]
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


def test_the_hosts_file_comes_first_and_is_read_again_when_it_changes(installed, loop, run,
                                                                      conf, monkeypatch):
    r, net = installed
    hosts, _ = conf
    import resolver.hostconf as hc
    monkeypatch.setattr(hc, "RECHECK_INTERVAL", 0.0)
    hosts.write_text("# mine\n10.9.9.9 www.example.com intranet\nfe80::1%lo intranet\n"
                     "garbage line\n")
    got = run(loop.getaddrinfo("WWW.Example.com.", 80, type=socket.SOCK_STREAM))
    assert [sa[0] for *_, sa in got] == ["10.9.9.9"]          # not the zone's 192.0.2.1
    both = run(loop.getaddrinfo("intranet", 443, type=socket.SOCK_STREAM))
    assert [(f, sa[0]) for f, *_, sa in both] == [(socket.AF_INET, "10.9.9.9"),
                                                   (socket.AF_INET6, "fe80::1")]
    assert both[1][4][3] == socket.if_nametoindex("lo")        # the scope ID kept
    with pytest.raises(socket.gaierror):
        run(loop.getaddrinfo("intranet", 80, family=socket.AF_UNIX))
    before = r.stats.client_queries
    hosts.write_text("10.8.8.8 intranet\n")                    # changed: read again
    got = run(loop.getaddrinfo("intranet", 80, family=socket.AF_INET, type=socket.SOCK_STREAM))
    assert [sa[0] for *_, sa in got] == ["10.8.8.8"]
    assert r.stats.client_queries == before                    # no DNS for any of these
    got = run(loop.getaddrinfo("www.example.com", 80, family=socket.AF_INET,
                               type=socket.SOCK_STREAM))
    assert [sa[0] for *_, sa in got] == ["192.0.2.1"]          # gone from hosts: DNS again


def test_localhost_without_a_hosts_entry_is_loopback(installed, loop, run, conf):
    conf[0].write_text("")
    got = run(loop.getaddrinfo("foo.localhost", 80, type=socket.SOCK_STREAM))
    assert sorted(sa[0] for *_, sa in got) == ["127.0.0.1", "::1"]


def test_search_domains_and_ndots_from_resolv_conf(loop, run, conf):
    net = small_internet(prefix=P)
    fs = FakeServers(net)
    port = run(fs.start(sorted(set(net.served))))
    r = resolver.Resolver(root_hints(P), port=port, do_not_query_localhost=False,
                          limits=Limits(exploration=0.0, initial_rto=0.1, max_query_time=1.5))
    conf[1].write_text("search nowhere.test example.com\noptions rotate ndots:2\n")
    resolver.install(loop, r, hosts=conf[0], resolv_conf=conf[1])
    try:
        assert [str(d) for d in r.search] == ["nowhere.test.", "example.com."] and r.ndots == 2
        got = run(loop.getaddrinfo("www", 80, family=socket.AF_INET, type=socket.SOCK_STREAM))
        assert [sa[0] for *_, sa in got] == ["192.0.2.1"]        # www.example.com.
        got = run(loop.getaddrinfo("alias", 80, family=socket.AF_INET, flags=socket.AI_CANONNAME,
                                   type=socket.SOCK_STREAM))
        assert got[0][3] == "www.example.com"
        with pytest.raises(socket.gaierror) as ei:
            run(loop.getaddrinfo("nothere", 80))
        assert ei.value.errno == socket.EAI_NONAME
    finally:
        uninstall(loop)
        run(fs.stop())


def test_fallback_only_when_asked(loop, run, conf):
    r = resolver.Resolver([("a.root.", "127.0.0.1")], port=9, do_not_query_localhost=False,
                          limits=Limits(initial_rto=0.05, max_query_time=0.2))
    asked = []

    async def own(host, port, **kw):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.7.7.7", port))]

    loop.getaddrinfo = own
    resolver.install(loop, r, hosts=conf[0], resolv_conf=conf[1])
    try:
        with pytest.raises(socket.gaierror):
            run(loop.getaddrinfo("printer.lan", 80))
        assert asked == []
    finally:
        uninstall(loop)
    resolver.install(loop, r, hosts=conf[0], resolv_conf=conf[1], fallback=True)
    try:
        got = run(loop.getaddrinfo("printer.lan", 80))
        assert asked == ["printer.lan"] and got[0][4] == ("10.7.7.7", 80)
    finally:
        uninstall(loop)
    assert loop.getaddrinfo is own            # what was there before install
    del loop.getaddrinfo


def test_search_rules_read_as_glibc_reads_them(tmp_path):
    from resolver.hostconf import search_rules

    f = tmp_path / "resolv.conf"
    f.write_text("domain corp.example\n")
    assert search_rules(f) == ([dns_name("corp.example.")], 1)
    f.write_text("domain a.example\nsearch b.example c.example # note\noptions ndots:99\n")
    assert search_rules(f) == ([dns_name("b.example."), dns_name("c.example.")], 15)
    f.write_text("options ndots:nope\n")
    assert search_rules(f) == ([], 1)
    assert search_rules(tmp_path / "missing") == ([], 1)


def dns_name(text):
    import dns.name
    return dns.name.from_text(text)
