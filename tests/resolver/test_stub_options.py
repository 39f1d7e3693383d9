"""Unbound's stub-zone options: ``stub-first`` (when the stub's servers fail, resolve as if
there were no stub: from the root, past the stub's configured delegation) and
``stub-prime`` (the stub's NS set is asked of its servers first, and the servers it names
are asked from then on)."""
from __future__ import annotations

import dns.flags
import dns.rcode
import dns.resolver
import pytest

from dnslab.authority import ZoneAuthority, response
from dnslab.fake import serve
from ports import pick_port
from resolver.resolution import iterator_for
from resolver.daemon.zone_tables import stub_zone
from resolver.zones import StubFirst, StubZone, Upstream, Zones

FAKE_A, FAKE_B = "127.0.0.45", "127.0.0.46"      # loopback addresses no lab server uses
WWW_EXAMPLE_COM = {"192.0.2.1", "192.0.2.11"}
CORP = """
$TTL 300
@ SOA ns.corp.lan. h.corp.lan. 1 3600 600 86400 300
@ NS ns
ns A 127.0.0.46
host A {host}
"""


def addrs(answer) -> set[str]:
    return {r.to_text() for r in answer.rrset}


def refusing(query):
    return response(query, rcode=dns.rcode.REFUSED, aa=False)


def test_stub_first_recurses_past_a_failing_stub(run, lab, lab_resolver, fakes):
    """example.com.'s stub server refuses everything: with stub-first the question is
    resolved from the root (the lab delegates example.com.), without it it fails."""
    port = pick_port([FAKE_A], low=31000)
    stub = fakes(FAKE_A, serve(refusing), port=port)

    async def go():
        first = stub_zone({"name": "example.com.", "stub-addr": [f"{FAKE_A}@{port}"],
                           "stub-first": True})
        assert first.first and not first.prime
        r = lab_resolver(zones=Zones(stub=[first]))
        ans = await r.resolve("www.example.com.", "A")
        assert addrs(ans) == WWW_EXAMPLE_COM
        assert stub.count(qname="www.example.com.") >= 1        # the stub was asked first
        assert r.stats.stubbed == 1
        # the stub's configured delegation is still in force for the next question
        asked = len(stub.queries)
        ans = await r.resolve("www.example.com.", "MX", raise_on_no_answer=False)
        assert len(stub.queries) > asked
        # without stub-first the stub's failure is the answer
        plain = lab_resolver(zones=Zones(stub=[StubZone("example.com.",
                                                        (Upstream(FAKE_A, port),))]))
        with pytest.raises(dns.resolver.NoNameservers):
            await plain.resolve("www.example.com.", "A")

    run(go())


def test_stub_first_is_the_driver_api_of_its_iterator(run, lab, lab_resolver, fakes):
    """A stub-first zone's iterator starts as the stub's and switches only on SERVFAIL."""
    port = pick_port([FAKE_A], low=31000)
    fakes(FAKE_A, serve(ZoneAuthority.from_text("corp.lan.", CORP.format(host="10.7.0.1"))),
          port=port)

    async def go():
        z = StubZone("corp.lan.", (Upstream(FAKE_A, port),), first=True)
        r = lab_resolver(zones=Zones(stub=[z]))
        cut = r.zones.match(b"\x04host\x04corp\x03lan\x00")
        it = cut.iterator(r, b"\x04host\x04corp\x03lan\x00", 1, 1, iterator_for)
        assert isinstance(it, StubFirst) and it.ports == {FAKE_A: (FAKE_A, port)}
        assert addrs(await r.resolve("host.corp.lan.", "A")) == {"10.7.0.1"}

    run(go())


def test_stub_prime_asks_the_ns_set_first_then_its_servers(run, lab, lab_resolver, fakes):
    """corp.lan.'s configured server (FAKE_A) names ns.corp.lan. (FAKE_B) in its NS set:
    priming asks FAKE_A for the NS set before anything else, and the questions go to
    FAKE_B from then on (which answers differently, to tell them apart)."""
    port = pick_port([FAKE_A], low=31000)
    hint = fakes(FAKE_A, serve(ZoneAuthority.from_text("corp.lan.",
                                                       CORP.format(host="10.7.0.1"))),
                 port=port)
    real = fakes(FAKE_B, serve(ZoneAuthority.from_text("corp.lan.",
                                                       CORP.format(host="10.7.0.2"))))

    async def go():
        z = stub_zone({"name": "corp.lan.", "stub-addr": [f"{FAKE_A}@{port}"],
                       "stub-prime": True})
        r = lab_resolver(zones=Zones(stub=[z]))
        await r.start_server_names()
        first = hint.queries[0]
        assert (first.qname, first.qtype) == ("corp.lan.", "NS")
        assert not first.message.flags & dns.flags.RD
        assert r.server_names.primed == {"corp.lan.": (FAKE_B,)}
        assert addrs(await r.resolve("host.corp.lan.", "A")) == {"10.7.0.2"}
        assert real.count(qname="host.corp.lan.") == 1
        assert hint.count(qname="host.corp.lan.") == 0
        # without priming the configured server answers
        plain = lab_resolver(zones=Zones(stub=[StubZone("corp.lan.",
                                                        (Upstream(FAKE_A, port),))]))
        assert addrs(await plain.resolve("host.corp.lan.", "A")) == {"10.7.0.1"}

    run(go())
