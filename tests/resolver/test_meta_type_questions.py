"""ANY and RRSIG questions through the validating iterator, on the signed fake network
(``signed_net``, example.com. signed with NSEC): an ANY answer's rrsets are validated like
any answer's, a CNAME followed to its target; a name whose NSEC record is cached is never
taken for NODATA to ANY (no type bitmap holds ANY) nor to RRSIG; an RRSIG question gets the
name's signatures, which prove nothing by themselves (never secure), and its denial is
proven as any other. The response carries an ANY or RRSIG answer's RRSIGs without DO too
(RFC 4035 3.2.1). Beside Unbound: ``test_any_and_rrsig_questions_as_unbound_s`` in
test_dnssec_unbound."""
from __future__ import annotations

import time

import pytest

from resolver import iterator as itr
from resolver.cache import Cache
from resolver.dnssec import INSECURE, SECURE, Validator
from resolver.dnssec.trust_anchor import load
from resolver.hints import parse_root_hints
from resolver.limits import Limits
from resolver.response import response
from scenario import FakeClock, W, drive, root_hints
from signed_net import signed_world

LIMITS = Limits(exploration=0.0)
A, CNAME, SOA, TXT, RRSIG, NSEC, ANY = 1, 5, 6, 16, 46, 47, 255
PREFIX = "10.11"


@pytest.fixture(scope="module")
def world():
    wall = time.time()
    net, anchor, _keys = signed_world(wall, PREFIX, extra="alias 300 CNAME www.example.com.\n")
    return net, anchor, wall


def _meta_answers(net, addr: str):
    """A fault for ``addr`` (one of example.com.'s servers): ANY and RRSIG questions for a
    name of the zone answered from the zone as BIND and Knot answer them (every rrset at
    the name with its RRSIGs; the name's RRSIGs), the rest as the fake server answers."""
    import dns.flags
    import dns.message
    import dns.name
    import dns.rrset

    zone = net.zones[dns.name.from_text("example.com.")]

    def fault(q: dns.message.Message) -> bytes:
        qname, qtype = q.question[0].name, q.question[0].rdtype
        node = zone.get_node(qname) if qtype in (ANY, RRSIG) else None
        if node is None:
            del net.faults[addr]
            try:
                return net.answer(addr, q.to_wire())
            finally:
                net.faults[addr] = fault
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        for rds in node.rdatasets:
            if qtype == RRSIG and rds.rdtype != RRSIG:
                continue
            rrset = dns.rrset.RRset(qname, rds.rdclass, rds.rdtype, rds.covers)
            rrset.update(rds)
            r.answer.append(rrset)
        return r.to_wire()
    return fault


def _asker(world):
    net, anchor, wall = world
    cache = Cache(1 << 22, LIMITS)
    v = Validator(load(anchor), LIMITS, wallclock=lambda: wall)
    clock = FakeClock()

    def ask(name, qtype):
        servers = (f"{PREFIX}.3.1", f"{PREFIX}.3.2")
        for addr in servers:
            net.faults[addr] = _meta_answers(net, addr)
        try:
            it = itr.Iterator(W(name), qtype, 1, cache,
                              parse_root_hints(root_hints(PREFIX)), clock, limits=LIMITS,
                              dnssec=v)
            before = len(net.log)
            return drive(it, net, clock), net.log[before:]
        finally:
            for addr in servers:
                net.faults.pop(addr, None)
    return ask, v


def test_any_is_validated_and_not_taken_for_nodata_from_a_cached_nsec(world):
    ask, v = _asker(world)
    res, _ = ask("example.com.", TXT)                  # NODATA: the apex's NSEC is cached
    assert res.rcode == 0 and res.answer == [] and res.security == SECURE, res.reason
    assert any(r[1] == NSEC for r in res.authority)
    noerror = v.stats.aggressive_noerror
    res, log = ask("example.com.", ANY)
    assert res.rcode == 0 and res.security == SECURE, res.reason
    assert {r[1] for r in res.answer} >= {SOA, RRSIG}
    assert log, "asked of the zone's servers, not answered from the NSEC range"
    assert v.stats.aggressive_noerror == noerror
    res, _ = ask("www.example.com.", ANY)
    assert res.security == SECURE and A in {r[1] for r in res.answer}, res.reason
    res, _ = ask("nope.example.com.", ANY)             # NXDOMAIN, proven
    assert res.rcode == 3 and res.security == SECURE, res.reason


def test_any_follows_a_cname_as_every_other_type_does(world):
    """A CNAME does not answer ANY (as Unbound): its target is asked, the chain is validated
    to the data there, from the authority and from the cache alike."""
    ask, v = _asker(world)
    for _ in range(2):
        res, _ = ask("alias.example.com.", ANY)
        assert res.rcode == 0 and res.security == SECURE, res.reason
        owners = {(r[0], r[1]) for r in res.answer}
        assert {(W("alias.example.com."), CNAME), (W("www.example.com."), A)} <= owners


def test_rrsig_questions_get_the_signatures_never_vouched_for(world):
    ask, v = _asker(world)
    ask("www.example.com.", TXT)                       # www's NSEC is cached
    res, _ = ask("www.example.com.", RRSIG)
    assert res.rcode == 0 and res.security == INSECURE, res.reason
    assert res.answer and {r[1] for r in res.answer} == {RRSIG}
    assert all(r[0] == W("www.example.com.") for r in res.answer)
    res, _ = ask("nope.example.com.", RRSIG)
    assert res.rcode == 3 and res.answer == [] and res.security == SECURE, res.reason


@pytest.mark.parametrize("qtype", [ANY, RRSIG])
def test_the_response_keeps_their_rrsigs_without_do(qtype):
    res = itr.Result(0, [(W("example.com."), SOA, 1, 300, b"\x00" * 22),
                         (W("example.com."), RRSIG, 1, 300, b"\x00\x06" + b"\x00" * 20)])
    question = W("example.com.") + qtype.to_bytes(2, "big") + b"\x00\x01"
    import dns.message

    for do in (False, True):
        m = dns.message.from_wire(b"\x00\x00" + response(res, question, qtype, True, do)[2:])
        assert RRSIG in {rr.rdtype for rr in m.answer}, do
    m = dns.message.from_wire(b"\x00\x00" + response(res, W("example.com.") + b"\x00\x06\x00\x01",
                                                     SOA, True, False)[2:])
    assert RRSIG not in {rr.rdtype for rr in m.answer}
