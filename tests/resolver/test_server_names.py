"""Forward and stub zones whose servers are given by name (Unbound's ``forward-host`` and
``stub-host``): the resolver finds their addresses itself (here from a fake authority
for ``hosts.lan.``, a stub zone) and follows them when the name's address changes once
its TTL has run out."""
from __future__ import annotations

import asyncio

import dns.message
import dns.name
import dns.rdatatype
import pytest

from dnslab import zones as Z
from dnslab.authority import ZoneAuthority, response
from dnslab.fake import serve
from ports import pick_port
from resolver.limits import DEFAULT
from resolver.daemon.zone_tables import forward_zone, stub_zone
from resolver.zones import ForwardZone, StubZone, Upstream, Zones

FAKE_A, FAKE_B = "127.0.0.45", "127.0.0.46"      # loopback addresses no lab server uses
WWW_EXAMPLE_COM = {"192.0.2.1", "192.0.2.11"}
HOSTS_SOA = "hosts.lan. 1 IN SOA ns.hosts.lan. h.hosts.lan. 1 1 1 1 1"
MOVED = """
$TTL 300
@ SOA ns.example.com. h.example.com. 1 3600 600 86400 300
@ NS ns
ns A 127.0.0.46
www A 192.0.2.99
"""
CORP = """
$TTL 300
@ SOA ns.corp.lan. h.corp.lan. 1 3600 600 86400 300
@ NS ns
ns A 127.0.0.46
host A 10.7.0.1
"""


def addrs(answer) -> set[str]:
    return {r.to_text() for r in answer.rrset}


class Hosts:
    """The authority of hosts.lan.: each name's A record, TTL 1, changeable."""

    def __init__(self, records: dict[str, str]) -> None:
        self.records = records

    def __call__(self, query: dns.message.Message) -> dns.message.Message:
        q = query.question[0]
        name = q.name.to_text().lower()
        if name in self.records and q.rdtype == dns.rdatatype.A:
            return response(query, answer=[f"{name} 1 IN A {self.records[name]}"])
        rcode = 0 if name in self.records or name == "hosts.lan." else 3
        return response(query, authority=[HOSTS_SOA], rcode=rcode)


async def until(check, what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, f"{what} within {timeout}s"
        await asyncio.sleep(0.05)


def test_forward_host_is_resolved_and_followed_when_it_moves(run, lab, lab_resolver, fakes):
    port = pick_port([FAKE_A], low=31000)
    hosts = Hosts({"fwd.hosts.lan.": Z.EXAMPLE_COM_1})
    authority = fakes(FAKE_A, serve(hosts), port=port)
    moved = fakes(FAKE_B, serve(ZoneAuthority.from_text("example.com.", MOVED)))

    async def go():
        r = lab_resolver(
            limits=DEFAULT.replace(server_name_min_ttl=0.2),
            zones=Zones(stub=[StubZone("hosts.lan.", (Upstream(FAKE_A, port),))],
                        forward=[forward_zone({"name": "example.com.",
                                               "forward-host": ["fwd.hosts.lan."]})]))
        names = r.server_names
        await until(lambda: names.addresses, "the forwarder's name resolved")
        assert names.addresses == {"fwd.hosts.lan.": (Z.EXAMPLE_COM_1,)}
        assert authority.count(qname="fwd.hosts.lan.", qtype="A") >= 1
        assert addrs(await r.resolve("www.example.com.", "A")) == WWW_EXAMPLE_COM
        assert r.stats.forwarded == 1 and not moved.queries
        # the name moves: after its TTL (1 s) the resolver asks again and follows it; what
        # the cache held for the zone goes with the old server
        hosts.records["fwd.hosts.lan."] = FAKE_B
        await until(lambda: names.addresses == {"fwd.hosts.lan.": (FAKE_B,)},
                    "the moved address followed")
        assert addrs(await r.resolve("www.example.com.", "A")) == {"192.0.2.99"}
        assert moved.count(qname="www.example.com.") == 1
        assert r.stats.forwarded == 2
        # a failing name keeps the address it had
        del hosts.records["fwd.hosts.lan."]
        asked = authority.count(qname="fwd.hosts.lan.")
        await until(lambda: authority.count(qname="fwd.hosts.lan.") > asked,
                    "the name asked again")
        await names.refresh()
        assert names.addresses == {"fwd.hosts.lan.": (FAKE_B,)}
        await r.close()
        assert names.task is None

    run(go())


def test_stub_host_is_resolved_then_the_stub_is_served(run, lab, lab_resolver, fakes):
    port = pick_port([FAKE_A], low=31000)
    other = pick_port([FAKE_B], low=32000)
    fakes(FAKE_A, serve(Hosts({"ns.hosts.lan.": FAKE_B})), port=port)
    corp = fakes(FAKE_B, serve(ZoneAuthority.from_text("corp.lan.", CORP)), port=other)

    async def go():
        zones = Zones(stub=[StubZone("hosts.lan.", (Upstream(FAKE_A, port),)),
                            stub_zone({"name": "corp.lan.",
                                       "stub-host": [f"ns.hosts.lan.@{other}"]})])
        # before the name has an address the zone is not served: nothing goes anywhere for it
        assert zones.match(dns.name.from_text("host.corp.lan.").to_wire()) is None
        r = lab_resolver(zones=zones)
        await r.start_server_names()
        assert r.server_names.addresses == {"ns.hosts.lan.": (FAKE_B,)}
        assert addrs(await r.resolve("host.corp.lan.", "A")) == {"10.7.0.1"}
        # two questions of stub zones: the server's name (hosts.lan.), then the name
        assert corp.count(qname="host.corp.lan.") == 1 and r.stats.stubbed == 2

    run(go())


def test_server_host_forms_parse_and_reject():
    z = forward_zone({"name": "corp.", "forward-host": ["dns.corp.example@5353"],
                      "forward-addr": ["192.0.2.1"]})
    assert z.servers == (Upstream("192.0.2.1"),)
    assert z.hosts == (Upstream("dns.corp.example.", 5353),)
    tls = forward_zone({"name": "corp.", "forward-tls-upstream": True,
                        "forward-host": ["dns.corp.example", "dns2.corp.example#auth.example"]})
    assert tls.hosts == (Upstream("dns.corp.example.", 853, "dns.corp.example"),
                         Upstream("dns2.corp.example.", 853, "auth.example"))
    assert stub_zone({"name": "lab.", "stub-host": "ns.lab.example"}).hosts == (
        Upstream("ns.lab.example."),)
    for entry, match in (
            ({"name": "corp."}, "forward-addr or forward-host"),
            ({"name": "corp.", "forward-host": ["192.0.2.1"]}, "is an address"),
            ({"name": "corp.", "forward-host": ["a.example#x.example"]}, "TLS"),
            ({"name": "corp.", "forward-host": ["a.example@99999"]}, "port"),
            ({"name": "corp.", "forward-host": ["a.example", "A.example."]}, "twice"),
            ({"name": "corp.", "forward-host": []}, "at least one")):
        with pytest.raises(ValueError, match=match):
            forward_zone(entry)
    with pytest.raises(ValueError, match="stub-addr or stub-host"):
        stub_zone({"name": "lab."})
    # the zones' host names, and the zones with their addresses filled in
    zones = Zones(forward=[z], stub=[StubZone("lab.", (), (Upstream("ns.lab.example."),))])
    assert zones.hosts == ("dns.corp.example.", "ns.lab.example.")
    assert zones.match(dns.name.from_text("x.lab.").to_wire()) is None
    filled = zones.resolved({"dns.corp.example.": ("192.0.2.7",),
                             "ns.lab.example.": ("192.0.2.8",)})
    assert filled.forward[0].servers == (Upstream("192.0.2.1"), Upstream("192.0.2.7", 5353))
    assert filled.match(dns.name.from_text("x.lab.").to_wire()).zone.servers == (
        Upstream("192.0.2.8"),)


def test_daemon_resolves_forward_host_before_it_serves(lab, tmp_path):
    """The daemon resolves a forward-host name (ns1.example.com., the lab's example.com.
    server) before it serves, and forwards the zone's questions there."""
    from daemon_proc import Daemon

    conf = tmp_path / "resolver.toml"
    conf.write_text('[[forward-zone]]\nname = "example.com."\nforward-host = ["ns1.example.com."]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        assert f"zone servers: ns1.example.com. {Z.EXAMPLE_COM_1}" in d.log_text()
        resp = d.ask("www.example.com.", "A")
        assert {rd.to_text() for rrset in resp.answer for rd in rrset} == WWW_EXAMPLE_COM
        assert d.stats()["engine"]["forwarded"] == 1
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
