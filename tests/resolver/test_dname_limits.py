"""DNAME substitution at its limits (RFC 6672): a loop of DNAMEs ends in SERVFAIL as soon
as the chain comes back to one of its names (RFC 1034 3.6.2), and a substitution whose result is longer than
a name may be is YXDOMAIN, passed to the client as the authority said it (RFC 6672 2.2), not
turned into SERVFAIL or NXDOMAIN. On the fake network (``scenario``)."""
from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone
import pytest

from resolver import iterator as itr
from resolver.cache import Cache
from resolver.hints import parse_root_hints
from resolver.limits import Limits
from scenario import FakeClock, W, drive, root_hints, small_internet

LIMITS = Limits(exploration=0.0)
A, CNAME, DNAME = 1, 5, 39
YXDOMAIN, SERVFAIL = 6, 2
#: a DNAME target of 251 octets: one short label below the DNAME owner still fits in 255
#: octets once substituted, three overflow it
LONG = ".".join(["a" * 62] * 3 + ["b" * 48]) + ".example.net."


def world():
    net = small_internet()
    z = net.zones[dns.name.from_text("example.com.")]
    with z.writer() as txn:
        for text in ("loop1 300 DNAME loop2.example.com.",
                     "loop2 300 DNAME loop1.example.com.",
                     f"long 300 DNAME {LONG}"):
            owner, ttl, rdtype, target = text.split(" ", 3)
            txn.add(dns.name.from_text(owner, z.origin), int(ttl),
                    dns.rdata.from_text("IN", rdtype, target))
    for addr in ("10.0.3.1", "10.0.3.2"):
        net.faults[addr] = _yxdomain_aware(net, addr)
    return net


def _yxdomain_aware(net, addr):
    """The server, answering as an authority does when a DNAME's substitution overflows:
    YXDOMAIN with the DNAME and no CNAME (the fake network's zones cannot hold the name)."""
    def fault(q):
        qname = q.question[0].name
        owner = dns.name.from_text("long.example.com.")
        if qname.is_subdomain(owner) and qname != owner:
            r = dns.message.make_response(q)
            r.flags |= dns.flags.AA
            r.set_rcode(dns.rcode.YXDOMAIN)
            r.answer.append(dns.rrset.from_text(owner, 300, "IN", "DNAME", LONG))
            return r.to_wire()
        net.faults.pop(addr)
        try:
            return net.answer(addr, q.to_wire())
        finally:
            net.log.pop()           # logged once, as asked
            net.faults[addr] = fault
    return fault


def resolve(net, name, qtype=A, minimise=True):
    clock = FakeClock()
    it = itr.Iterator(W(name), qtype, 1, Cache(1 << 22, LIMITS),
                      parse_root_hints(root_hints()), clock,
                      limits=LIMITS, minimise=minimise)
    before = len(net.log)
    res = drive(it, net, clock)
    return res, net.log[before:]


@pytest.mark.parametrize("minimise", [True, False])
def test_a_dname_loop_ends_in_servfail_within_the_chain_limit(minimise):
    net = world()
    res, log = resolve(net, "x.loop1.example.com.", A, minimise)
    assert res.rcode == SERVFAIL
    assert "loop" in (res.reason or ""), res.reason
    # detected when the chain comes back to its first name, not at the chain limit
    assert len([q for _a, q, _t in log if "loop" in q]) <= 4, log


@pytest.mark.parametrize("minimise", [True, False])
def test_an_overlong_substitution_is_yxdomain(minimise):
    net = world()
    name = "b.c.d.long.example.com."
    assert len(W(name)) - len(W("long.example.com.")) + len(W(LONG)) > 255
    res, _log = resolve(net, name, A, minimise)
    assert res.rcode == YXDOMAIN, (res.rcode, res.reason)
    assert [r[1] for r in res.answer] == [DNAME]


def test_a_name_that_still_fits_is_followed():
    net = world()
    res, log = resolve(net, "b.long.example.com.", A, False)
    assert res.rcode != YXDOMAIN
    assert any(q.endswith("example.net.") for _a, q, _t in log)


def test_the_library_raises_dnspythons_yxdomain():
    """``Resolver.resolve`` raises what dnspython's own resolver raises for it."""
    import asyncio

    import dns.resolver

    import resolver
    from scenario import FakeServers

    p = "127.55"
    net = small_internet(prefix=p)
    z = net.zones[dns.name.from_text("example.com.")]
    with z.writer() as txn:
        txn.add(dns.name.from_text("long", z.origin), 300,
                dns.rdata.from_text("IN", "DNAME", LONG))
    for addr in (f"{p}.3.1", f"{p}.3.2"):
        net.faults[addr] = _yxdomain_aware(net, addr)

    async def go():
        servers = FakeServers(net)
        port = await servers.start(sorted(net.served))
        r = resolver.Resolver(root_hints(p), port=port, limits=LIMITS,
                              do_not_query_localhost=False)
        try:
            with pytest.raises(dns.resolver.YXDOMAIN):
                await r.resolve("b.c.d.long.example.com.", "A")
            ans = await r.resolve("www.example.com.", "A")      # the rest resolves
            assert [rd.address for rd in ans] == ["192.0.2.1"]
        finally:
            await r.close()
            await servers.stop()

    asyncio.run(asyncio.wait_for(go(), 30))
