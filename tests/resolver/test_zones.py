"""Forward, stub and local zones in the library (``Resolver(zones=...)``), against the lab's
NSD authorities and fake servers on loopback, on every loop kind."""
from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from dnslab import zones as Z
from dnslab.authority import ZoneAuthority
from dnslab.fake import serve
from ports import pick_port
from resolver import operations
from resolver.daemon.zone_tables import forward_zone, local_zone, stub_zone
from resolver.zones import (DROP, Denied, ForwardZone, LocalZone, StubZone, Upstream, Zones,
                            parse_record, ptr_records)

WWW_EXAMPLE_COM = {"192.0.2.1", "192.0.2.11"}
FAKE_A, FAKE_B = "127.0.0.45", "127.0.0.46"      # loopback addresses no lab server uses

CORP = """
$TTL 300
@ SOA ns.corp.internal. host.corp.internal. 1 3600 600 86400 300
@ NS ns
ns A 127.0.0.45
host A 10.7.0.1
sub NS ns.sub
ns.sub A 127.0.0.46
"""
SUB = """
$TTL 300
@ SOA ns.sub.corp.internal. host.corp.internal. 1 3600 600 86400 300
@ NS ns
ns A 127.0.0.46
deep A 10.7.0.2
"""


def other_port(lab) -> int:
    return pick_port([FAKE_A], low=31000)


def addrs(answer) -> set[str]:
    return {r.to_text() for r in answer.rrset}


# ---- forward zones ----------------------------------------------------------------------------
def test_forward_zone_asks_the_forwarder_once(run, lab_resolver):
    """A forward zone's questions go to its server (here the lab's authority for
    example.com, which answers RD queries for its zone): one upstream query, counted; a
    name outside it is resolved from the root."""
    async def go():
        r = lab_resolver(zones=Zones(forward=[ForwardZone(
            "example.com.", (Upstream(Z.EXAMPLE_COM_1),))]))
        ans = await r.resolve("www.example.com.", "A")
        assert addrs(ans) == WWW_EXAMPLE_COM
        assert r.stats.forwarded == 1 and r.stats.upstream_queries == 1
        ans = await r.resolve("www.example.net.", "A")
        assert addrs(ans) == {"198.51.100.1"}
        assert r.stats.forwarded == 1 and r.stats.upstream_queries > 2

    run(go())


def test_forward_zone_port_rd_and_longest_match(run, lab, lab_resolver, fakes):
    """A forwarder on a port of its own gets RD set; the deepest forward zone wins over
    the one above it, whose forwarder refuses."""
    port = other_port(lab)
    srv = fakes(FAKE_A, serve(ZoneAuthority.from_text("corp.internal.", CORP)), port=port)

    async def go():
        r = lab_resolver(zones=Zones(forward=[
            ForwardZone("internal.", (Upstream(Z.EXAMPLE_NET),)),     # REFUSED for it
            ForwardZone("corp.internal.", (Upstream(FAKE_A, port),))]))
        ans = await r.resolve("host.corp.internal.", "A")
        assert addrs(ans) == {"10.7.0.1"}
        assert srv.queries and all(s.message.flags & dns.flags.RD for s in srv.queries)
        with pytest.raises(dns.resolver.NoNameservers):
            await r.resolve("other.internal.", "A")
        assert r.stats.forwarded == 2

    run(go())


def test_forward_first_falls_back_to_recursion(run, lab_resolver):
    async def go():
        broken = (Upstream(Z.EXAMPLE_NET),)      # answers REFUSED for example.com.
        strict = lab_resolver(zones=Zones(forward=[ForwardZone("example.com.", broken)]))
        with pytest.raises(dns.resolver.NoNameservers):
            await strict.resolve("www.example.com.", "A")
        first = lab_resolver(zones=Zones(forward=[ForwardZone("example.com.", broken,
                                                              first=True)]))
        ans = await first.resolve("www.example.com.", "A")
        assert addrs(ans) == WWW_EXAMPLE_COM
        assert first.stats.forwarded == 1

    run(go(), timeout=20)


def test_forward_zone_with_several_servers_moves_past_a_refusing_one(run, lab_resolver):
    async def go():
        servers = (Upstream(Z.EXAMPLE_NET), Upstream(Z.EXAMPLE_COM_1))  # REFUSED, then good
        r = lab_resolver(zones=Zones(forward=[ForwardZone("example.com.", servers)]))
        for name in ("www.example.com.", "alias.example.com.", "example.com."):
            ans = await r.resolve(name, "A", raise_on_no_answer=False)
            assert ans.response.rcode() == dns.rcode.NOERROR
        assert r.stats.forwarded == 3
        assert r.stats.upstream_queries <= 6 and r.stats.servfail == 0

    run(go())


def test_forward_tcp_upstream(run, lab, lab_resolver, fakes):
    port = other_port(lab)
    srv = fakes(FAKE_A, serve(ZoneAuthority.from_text("corp.internal.", CORP)), port=port)

    async def go():
        r = lab_resolver(zones=Zones(forward=[ForwardZone(
            "corp.internal.", (Upstream(FAKE_A, port),), transport="tcp")]))
        ans = await r.resolve("host.corp.internal.", "A")
        assert addrs(ans) == {"10.7.0.1"}
        assert srv.queries and {s.transport for s in srv.queries} == {"tcp"}

    run(go())


def test_forward_argument_still_forwards_everything(run, lab_resolver):
    """``forward=`` is the forward zone of the root; a deeper zone wins over it."""
    async def go():
        r = lab_resolver(forward=[Z.EXAMPLE_NET],
                         zones=Zones(forward=[ForwardZone("example.com.",
                                                          (Upstream(Z.EXAMPLE_COM_1),))]))
        assert addrs(await r.resolve("www.example.net.", "A")) == {"198.51.100.1"}
        assert addrs(await r.resolve("www.example.com.", "A")) == WWW_EXAMPLE_COM
        assert r.stats.upstream_queries == 2

    run(go())


# ---- stub zones -------------------------------------------------------------------------------
def test_stub_zone_asks_its_servers_then_iterates_below(run, lab, lab_resolver, fakes):
    """corp.internal. is not delegated by the lab's root: its stub server (on a port of its
    own) is asked with RD clear, and its referral to sub.corp.internal. is followed."""
    port = other_port(lab)
    corp = fakes(FAKE_A, serve(ZoneAuthority.from_text("corp.internal.", CORP)), port=port)
    sub = fakes(FAKE_B, serve(ZoneAuthority.from_text("sub.corp.internal.", SUB)))

    async def go():
        r = lab_resolver(zones=Zones(stub=[StubZone("corp.internal.", (Upstream(FAKE_A, port),))]))
        assert addrs(await r.resolve("host.corp.internal.", "A")) == {"10.7.0.1"}
        assert addrs(await r.resolve("deep.sub.corp.internal.", "A")) == {"10.7.0.2"}
        assert corp.queries and not any(s.message.flags & dns.flags.RD for s in corp.queries)
        assert sub.count(qname="deep.sub.corp.internal.") >= 1
        assert r.stats.stubbed == 2
        # the stub's servers stay in force after the cache is flushed
        operations.flush(r)
        assert addrs(await r.resolve("host.corp.internal.", "A")) == {"10.7.0.1"}
        # without the stub zone the name does not exist
        plain = lab_resolver()
        with pytest.raises(dns.resolver.NXDOMAIN):
            await plain.resolve("host.corp.internal.", "A")

    run(go())


def test_do_not_query_localhost_spares_forwarders_not_stub_servers(run, lab, lab_resolver,
                                                                  fakes):
    """With ``do-not-query-localhost`` on (the default), a forward zone's loopback server is
    still asked: the operator named it, and a local forwarder is the usual case (Unbound
    would want the switch off). A stub zone's loopback server is not asked, as an
    authority learned from the DNS would not be."""
    port = other_port(lab)
    corp = fakes(FAKE_A, serve(ZoneAuthority.from_text("corp.internal.", CORP)), port=port)

    async def go():
        fwd = lab_resolver(do_not_query_localhost=True, zones=Zones(forward=[ForwardZone(
            "corp.internal.", (Upstream(FAKE_A, port),))]))
        assert addrs(await fwd.resolve("host.corp.internal.", "A")) == {"10.7.0.1"}
        asked = len(corp.queries)
        assert asked >= 1
        stub = lab_resolver(do_not_query_localhost=True, zones=Zones(stub=[StubZone(
            "corp.internal.", (Upstream(FAKE_A, port),))]))
        with pytest.raises(dns.resolver.NoNameservers):
            await stub.resolve("host.corp.internal.", "A")
        assert len(corp.queries) == asked

    run(go())


def test_stub_zone_on_ipv6_with_a_resolver_that_asks_over_ipv4(run, lab, lab_resolver, fakes):
    """A stub server given by IPv6 address is asked even though the library resolver asks
    authorities over IPv4 only by default."""
    port = other_port(lab)
    corp = fakes("::1", serve(ZoneAuthority.from_text("corp.internal.", CORP)), port=port)

    async def go():
        r = lab_resolver(zones=Zones(stub=[StubZone("corp.internal.", (Upstream("::1", port),))]))
        assert not r.ipv6
        assert addrs(await r.resolve("host.corp.internal.", "A")) == {"10.7.0.1"}
        assert corp.count(qname="host.corp.internal.") >= 1

    run(go())


def test_stub_zone_is_validated(run, validating, signed_lab):
    """DNSSEC applies to a stub zone under the trust anchor: secure data gets AD, a zone
    whose DS does not match is bogus (SERVFAIL)."""
    async def go():
        r = validating(zones=Zones(stub=[
            StubZone("example.com.", (Upstream(Z.EXAMPLE_COM_1),)),
            StubZone("badds.com.", (Upstream(Z.EXAMPLE_COM_2),))]))
        q = dns.message.make_query("www.example.com.", "A", want_dnssec=True)
        resp = await r.resolve_message(q)
        assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD
        assert r.stats.stubbed >= 1
        q = dns.message.make_query("www.badds.com.", "A", want_dnssec=True)
        resp = await r.resolve_message(q)
        assert resp.rcode() == dns.rcode.SERVFAIL

    run(go(), timeout=20)


# ---- local zones ------------------------------------------------------------------------------
SOA = "lan. 600 SOA ns.lan. admin.lan. 1 3600 600 86400 120"


def local_zones() -> Zones:
    return Zones(local=[
        LocalZone("lan.", "static", (SOA, "router.lan. 60 A 192.168.1.1",
                                     "alias.lan. CNAME router.lan.", "a.b.lan. TXT \"deep\"")),
        LocalZone("example.com.", "transparent", ("fixed.example.com. A 10.0.0.1",)),
        LocalZone("example.net.", "typetransparent", ("www.example.net. TXT \"local\"",)),
        LocalZone("ads.test.", "redirect", ("ads.test. A 0.0.0.0",)),
        LocalZone("refused.test.", "refuse"),
        LocalZone("denied.test.", "deny", ("ok.denied.test. A 10.0.0.9",)),
        LocalZone("gone.test.", "always_nxdomain", ("x.gone.test. A 10.0.0.8",)),
        LocalZone("closed.test.", "always_refuse", ("x.closed.test. A 10.0.0.7",)),
        LocalZone("h000.bulk.net.", "always_transparent", ("h000.bulk.net. A 10.0.0.6",)),
    ], local_data=["printer.home. A 10.0.0.5"])


# (name, type) -> (rcode, answer data or None for no answer section, resolved upstream)
LOCAL_CASES = [
    ("router.lan.", "A", "NOERROR", {"192.168.1.1"}),
    ("router.lan.", "AAAA", "NOERROR", set()),                    # static: NODATA
    ("nothing.lan.", "A", "NXDOMAIN", set()),                     # static: NXDOMAIN
    ("b.lan.", "A", "NOERROR", set()),                            # empty non-terminal
    ("alias.lan.", "A", "NOERROR", {"router.lan."}),             # a CNAME alone (Unbound's)
    ("fixed.example.com.", "A", "NOERROR", {"10.0.0.1"}),        # transparent: local data
    ("fixed.example.com.", "AAAA", "NOERROR", set()),             # transparent: NODATA
    ("www.example.com.", "A", "NOERROR", WWW_EXAMPLE_COM),        # transparent: resolved
    ("www.example.net.", "TXT", "NOERROR", {'"local"'}),          # typetransparent
    ("www.example.net.", "A", "NOERROR", {"198.51.100.1"}),       # typetransparent: resolved
    ("x.y.ads.test.", "A", "NOERROR", {"0.0.0.0"}),               # redirect
    ("x.ads.test.", "AAAA", "NOERROR", set()),                    # redirect: NODATA
    ("a.refused.test.", "A", "REFUSED", set()),
    ("ok.denied.test.", "A", "NOERROR", {"10.0.0.9"}),            # deny: data still answered
    ("x.gone.test.", "A", "NXDOMAIN", set()),                     # always_nxdomain
    ("printer.home.", "A", "NOERROR", {"10.0.0.5"}),              # local-data, own zone
    ("x.closed.test.", "A", "REFUSED", set()),                    # always_refuse
    ("h000.bulk.net.", "A", "NOERROR", {"10.1.0.0"}),             # always_transparent
]


@pytest.mark.parametrize("name,rdtype,rcode,data", LOCAL_CASES,
                         ids=[f"{n}{t}" for n, t, _, _ in LOCAL_CASES])
def test_local_zone_answers(run, lab_resolver, name, rdtype, rcode, data):
    async def go():
        r = lab_resolver(zones=local_zones())
        q = dns.message.make_query(name, rdtype, use_edns=0)
        resp = await r.resolve_message(q)
        assert dns.rcode.to_text(resp.rcode()) == rcode
        got = {rd.to_text() for rrset in resp.answer for rd in rrset}
        assert got == data
        local = r.stats.local_answers == 1
        assert local == (r.stats.upstream_queries == 0)
        if local:
            assert resp.flags & dns.flags.AA and resp.id == q.id and resp.edns == 0
            if rcode == "NXDOMAIN" and name.endswith(".lan."):
                assert resp.authority and resp.authority[0].ttl == 120    # SOA minimum
        # resolve() agrees
        if rcode == "NXDOMAIN":
            with pytest.raises(dns.resolver.NXDOMAIN):
                await r.resolve(name, rdtype)
        elif rcode == "REFUSED":
            with pytest.raises(dns.resolver.NoNameservers):
                await r.resolve(name, rdtype)
        else:
            ans = await r.resolve(name, rdtype, raise_on_no_answer=False)
            assert {rd.to_text() for rd in (ans.rrset or [])} <= data
            typed = any(rrset.rdtype == dns.rdatatype.from_text(rdtype) for rrset in resp.answer)
            assert typed == (ans.rrset is not None)

    run(go())


def test_a_redirect_zones_cname_is_followed_to_its_target(run, lab_resolver):
    """A redirect zone's CNAME, asked for another type (Unbound's local alias): the CNAME
    at the question's name, then what the target resolves to, not asked of the local zones
    (``www.example.com.``'s static zone does not answer it); AA set; a ``*`` first label
    of the target takes the question's name (the lab's ``*.wild.example.com.``). Never
    stored under the question's name: the second time the target's answer comes from the
    cache, with the same CNAME before it."""
    zones = Zones(local=[
        LocalZone("safe.test.", "redirect", ("safe.test. 300 CNAME www.example.com.",)),
        LocalZone("w.test.", "redirect", ("w.test. CNAME *.wild.example.com.",)),
        LocalZone("www.example.com.", "static", ("www.example.com. A 10.9.9.9",))])

    async def go():
        r = lab_resolver(zones=zones)
        for round in range(2):
            sent = r.stats.upstream_queries
            q = dns.message.make_query("X.y.safe.test.", "A", use_edns=0)
            resp = await r.resolve_message(q)
            assert resp.rcode() == dns.rcode.NOERROR and resp.id == q.id
            assert resp.flags & dns.flags.AA and not resp.flags & dns.flags.AD
            assert resp.question == q.question
            first, *rest = resp.answer
            assert (first.name.to_text(), first.rdtype, first.ttl) == ("X.y.safe.test.", 5,
                                                                      300)
            assert first[0].target.to_text() == "www.example.com."
            assert {rd.to_text() for rrset in rest for rd in rrset} == WWW_EXAMPLE_COM
            assert (r.stats.upstream_queries > sent) == (round == 0)
        ans = await r.resolve("www.safe.test.", "A")
        assert addrs(ans) == WWW_EXAMPLE_COM
        # the target's own question is the local zone's, the alias's answer cached apart
        assert addrs(await r.resolve("www.example.com.", "A")) == {"10.9.9.9"}
        assert ans.canonical_name.to_text() == "www.example.com."
        assert ans.response.question[0].name.to_text() == "www.safe.test."
        # the CNAME itself is local data as any other
        ans = await r.resolve("safe.test.", "CNAME")
        assert {rd.to_text() for rd in ans.rrset} == {"www.example.com."}
        resp = await r.resolve_message(dns.message.make_query("a.w.test.", "A"))
        assert [rrset.to_text() for rrset in resp.answer] == [
            "a.w.test. 3600 IN CNAME a.w.test.wild.example.com.",
            "a.w.test.wild.example.com. 3600 IN A 192.0.2.80"]

    run(go())


def test_deny_zone_drops(run, lab_resolver):
    async def go():
        r = lab_resolver(zones=local_zones())
        with pytest.raises(Denied):
            await r.resolve_message(dns.message.make_query("x.denied.test.", "A"))
        with pytest.raises(dns.resolver.NoNameservers):
            await r.resolve("x.denied.test.", "A")
        assert r.local_zones.lookup(b"\x01x\x06denied\x04test\x00", 1) is DROP
        assert r.stats.upstream_queries == 0

    run(go())


def test_set_zones_keeps_the_cache_but_what_changed(run, lab_resolver):
    async def go():
        r = lab_resolver()
        assert addrs(await r.resolve("www.example.net.", "A")) == {"198.51.100.1"}
        assert addrs(await r.resolve("www.example.com.", "A")) == WWW_EXAMPLE_COM
        sent = r.stats.upstream_queries
        r.set_zones(Zones(local=[LocalZone("example.com.", "static",
                                           ("www.example.com. A 10.9.9.9",))]))
        assert addrs(await r.resolve("www.example.com.", "A")) == {"10.9.9.9"}
        assert addrs(await r.resolve("www.example.net.", "A")) == {"198.51.100.1"}
        assert r.stats.upstream_queries == sent                  # from the kept cache
        r.set_zones(None)
        assert addrs(await r.resolve("www.example.com.", "A")) == WWW_EXAMPLE_COM

    run(go())


# ---- the config's forms -----------------------------------------------------------------------
def test_zone_tables_parse_and_reject():
    z = forward_zone({"name": "Corp.Example", "forward-addr": ["192.0.2.1@5353", "2001:db8::1#53",
                                                               "192.0.2.2"],
                      "forward-first": True, "forward-tcp-upstream": True})
    assert z.name == "corp.example." and z.first and z.transport == "tcp"
    assert [s.key for s in z.servers] == ["192.0.2.1@5353", "2001:db8::1@53", "192.0.2.2"]
    assert stub_zone({"name": "lab.", "stub-addr": "127.0.0.1"}).servers == (
        Upstream("127.0.0.1"),)
    assert local_zone("home.arpa. refuse") == LocalZone("home.arpa.", "refuse")
    assert ptr_records(["192.0.2.7 host.example. 60", "2001:db8::1 v6.example."]) == (
        "7.2.0.192.in-addr.arpa. 60 PTR host.example.",
        "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa. PTR v6.example.")
    assert parse_record("x. 60 IN A 10.0.0.1") == (b"\x01x\x00", 1, 1, 60, bytes([10, 0, 0, 1]))
    bad = [
        lambda: forward_zone({"name": "a.", "forward-addr": ["host.example"]}),
        lambda: forward_zone({"name": "a.", "forward-addr": ["192.0.2.1@99999"]}),
        lambda: forward_zone({"name": "a.", "forward-addr": []}),
        lambda: forward_zone({"name": "a.", "forward-addr": ["192.0.2.1"], "typo": 1}),
        lambda: forward_zone({"name": "a.", "forward-addr": ["192.0.2.1"],
                              "forward-tls-upstream": True}),
        lambda: local_zone({"name": "a.", "type": "nosuch"}),
        lambda: local_zone({"name": "a.", "local-data": ["b. A 10.0.0.1"]}),      # outside
        lambda: parse_record("x. A not-an-address"),
        lambda: parse_record("x. CH A 10.0.0.1"),
        lambda: ptr_records(["host.example. 192.0.2.7"]),
        lambda: ptr_records(["192.0.2.7"]),
        lambda: Zones(forward=[ForwardZone("a.", (Upstream("192.0.2.1"),))],
                      stub=[StubZone("A.", (Upstream("192.0.2.1"),))]),
    ]
    for make in bad:
        with pytest.raises(ValueError):
            make()
    # a line under the zone's name in other case, and one only sharing a suffix with it
    assert local_zone({"name": "Home.Example.", "local-data": ["a.HOME.example. A 10.0.0.1"]})
    with pytest.raises(ValueError, match="outside the zone"):
        local_zone({"name": "home.example.", "local-data": ["xhome.example. A 10.0.0.1"]})


def test_a_line_parsed_again_is_remembered_and_a_bad_one_is_not():
    """A reload reads the same local-data lines again: each is parsed once (the same tuple
    comes back), while a line that does not parse raises each time it is given."""
    line = "remembered.example. 60 IN A 10.0.0.9"
    assert parse_record(line) is parse_record(line)
    for _ in range(2):
        with pytest.raises(ValueError, match="not-an-address"):
            parse_record("y. A not-an-address")
    with pytest.raises(ValueError, match="expected a record line"):
        parse_record(["not", "a", "line"])


def test_flush_under_keeps_names_that_only_share_a_suffix(run, lab_resolver):
    """A changed zone forgets its own names and no others, label by label."""
    from resolver.zones import _under, flush_under

    async def go():
        r = lab_resolver()
        await r.resolve("www.example.com.", "A")
        await r.resolve("h001.bulk.net.", "A")
        names = {k[:-5] for k in r.cache.messages.lru.data}
        assert b"\x03www\x07example\x03com\x00" in names
        flush_under(r.cache, b"\x03com\x00")
        names = {k[:-5] for k in r.cache.messages.lru.data}
        assert b"\x03www\x07example\x03com\x00" not in names
        assert b"\x04h001\x04bulk\x03net\x00" in names
        assert not any(k[0].endswith(b"\x03com\x00") for k in r.cache.rrsets.lru.data)
        # a label holding the zone's bytes is not the zone: b"a\x03com" is one label
        assert _under(b"\x03www\x03com\x00", b"\x03com\x00")
        assert not _under(b"\x05a\x03com\x00", b"\x03com\x00")

    run(go())
