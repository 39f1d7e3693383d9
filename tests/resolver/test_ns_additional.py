"""An NS answer's additional section, as Unbound gives it (``minimal-responses``): the
addresses of the servers it names inside their zone, from the rrset cache while fresh, their
RRSIGs for DO, only validated ones for a secure answer (those the zone's keys sign in the
reply's own additional section, proven with the answer); and a UDP answer too long for the
client losing its additional records before anything else, without TC (RFC 2181 9).
Side by side with Unbound: the lab's NS cases in test_answers_as_unbound_s, the signed
lab's in test_dnssec_unbound."""
from __future__ import annotations

import dataclasses
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rrset
import pytest

from resolver import Resolver
from resolver import iterator as itr
from resolver.cache import Cache, ranks
from resolver.cache.answer import parse_query, truncate
from resolver.daemon.admission import ALLOWED_ACL, FrontDoor
from resolver.dnssec import Validator
from resolver.dnssec.trust_anchor import load
from resolver.hints import parse_root_hints
from resolver.iterator import A, AAAA, NS, RRSIG, SECURE, Result
from resolver.response import ns_addresses
from resolver.wire.codec import MsgEntry
from scenario import FakeClock, W, drive, root_hints
from signed_net import signed_world
from test_ad_invariant import LIMITS

ZONE = "example.org."
SIG = ("A 13 3 3600 20300101000000 20200101000000 4242 example.org. "
       "c2lnbmF0dXJlIGJ5dGVzIGhlcmU=")


def _resolver() -> Resolver:
    return Resolver([("a.root-servers.net.", "192.0.2.1")], validate=False)


def _ns_result(*targets: str, security: int = 0) -> Result:
    res = Result(0, [(W(ZONE), NS, 1, 3600, W(t)) for t in targets])
    res.security = security
    return res


def _store(r: Resolver, name: str, rdtype: int, rdata: bytes, rank: int, sigs=()) -> None:
    r.cache.rrsets.store_records([(W(name), rdtype, 1, 3600, rdata)], rank, r.clock(),
                                 [(W(name), RRSIG, 1, 3600, s) for s in sigs])


def test_the_addresses_of_servers_inside_the_zone_only():
    r = _resolver()
    _store(r, "ns1.example.org.", A, bytes([192, 0, 2, 53]), ranks.AUTH_ANSWER)
    _store(r, "ns1.example.org.", AAAA, bytes(15) + b"\x35", ranks.AUTH_ANSWER)
    _store(r, "ns.other.net.", A, bytes([198, 51, 100, 53]), ranks.AUTH_ANSWER)
    got = ns_addresses(r.cache, _ns_result("ns1.example.org.", "ns.other.net.",
                                           "ns2.example.org."), NS, False, r.clock())
    assert sorted((rec[0], rec[1]) for rec in got) == [(W("ns1.example.org."), A),
                                                       (W("ns1.example.org."), AAAA)]
    # no other type of answer, and no failed or negative one, has any
    assert ns_addresses(r.cache, _ns_result("ns1.example.org."), A, False, r.clock()) == []
    res = _ns_result("ns1.example.org.")
    res.rcode = 3
    assert ns_addresses(r.cache, res, NS, False, r.clock()) == []


def test_their_rrsigs_for_do_and_only_validated_ones_for_a_secure_answer():
    sig = dns.rrset.from_text("ns1.example.org.", 3600, "IN", "RRSIG", SIG)[0]
    wire = sig.to_digestable()
    r = _resolver()
    _store(r, "ns1.example.org.", A, bytes([192, 0, 2, 53]), ranks.AUTH_ANSWER, [wire])
    _store(r, "ns2.example.org.", A, bytes([192, 0, 2, 54]), ranks.VALIDATED, [wire])
    res = _ns_result("ns1.example.org.", "ns2.example.org.")
    assert [rec[1] for rec in ns_addresses(r.cache, res, NS, False, r.clock())] == [A, A]
    assert [rec[1] for rec in ns_addresses(r.cache, res, NS, True, r.clock())] == \
        [A, RRSIG, A, RRSIG]
    secure = _ns_result("ns1.example.org.", "ns2.example.org.", security=SECURE)
    assert [(rec[0], rec[1]) for rec in ns_addresses(r.cache, secure, NS, True, r.clock())] \
        == [(W("ns2.example.org."), A), (W("ns2.example.org."), RRSIG)]


def _big_ns_response(servers: int, edns: bool) -> tuple[bytes, bytes]:
    """(query, response) for ``ZONE`` NS with ``servers`` servers inside the zone, an A and
    an AAAA for each in the additional section."""
    q = dns.message.make_query(ZONE, "NS", use_edns=0 if edns else False)
    resp = dns.message.make_response(q)
    names = [f"ns{i:02d}.{ZONE}" for i in range(servers)]
    resp.answer.append(dns.rrset.from_text(ZONE, 3600, "IN", "NS", *names))
    for i, n in enumerate(names):
        resp.additional.append(dns.rrset.from_text(n, 3600, "IN", "A", f"192.0.2.{i + 1}"))
        resp.additional.append(dns.rrset.from_text(n, 3600, "IN", "AAAA", f"2001:db8::{i + 1}"))
    return q.to_wire(), resp.to_wire()


@pytest.mark.parametrize("edns", [False, True])
def test_truncate_leaves_out_the_additional_records_first(edns):
    _, wire = _big_ns_response(13, edns)
    full = dns.message.from_wire(wire)
    assert len(wire) > 512
    out = truncate(wire, 512)
    m = dns.message.from_wire(out)
    assert not m.flags & dns.flags.TC and len(out) <= 512
    assert m.answer == full.answer and m.additional == [] and (m.edns >= 0) == edns
    # an answer that does not fit by itself still goes with TC and no record
    out = truncate(wire, 100)
    m = dns.message.from_wire(out)
    assert m.flags & dns.flags.TC and m.answer == [] and (m.edns >= 0) == edns
    assert truncate(wire, len(wire)) is wire


def test_a_cached_ns_answer_over_udp_loses_its_additional_records_not_its_answer():
    """The daemon's hit path (the front door's C answer): a plain query gets the 13 NS
    records without their addresses and without TC, their TTLs counted down; a query with
    EDNS gets the addresses too."""
    r = _resolver()
    door = FrontDoor(r.cache.messages.table, r)
    for edns in (False, True):
        q, wire = _big_ns_response(13, edns)
        r.cache.messages.table[parse_query(q)[0]] = MsgEntry(wire, time.monotonic() - 100, 0.0)
        verdict, out, _ = door.verdict(q, ALLOWED_ACL, udp=True)
        m = dns.message.from_wire(out)
        assert verdict == "hit" and not m.flags & dns.flags.TC
        assert len(m.answer[0]) == 13 and 3490 <= m.answer[0].ttl <= 3500
        assert len(m.additional) == (26 if edns else 0)
        assert all(3490 <= rr.ttl <= 3500 for rr in m.additional)


# ---- a secure NS answer's addresses, proven from its own additional section --------------

PREFIX = "10.9"


@pytest.fixture(scope="module")
def signed():
    wall = time.time()
    net, anchor, keys = signed_world(wall, PREFIX)
    return net, anchor, wall, keys


def _served_sigs(net, addr: str):
    """The RRSIGs ``addr`` serves over an address rrset: from its signed answer for it."""
    def sigs(rrset):
        aq = dns.message.make_query(rrset.name, "A", want_dnssec=True)
        a = dns.message.from_wire(net.answer(addr, aq.to_wire()))
        return next((s for s in a.answer if s.rdtype == RRSIG), None)
    return sigs


def _signing_additional(net, addr: str, make_sigs):
    """A fault for ``addr``: its genuine NS reply with ``make_sigs(rrset)`` (an RRSIG
    rrset, or None) after each address rrset of its additional section."""
    def fault(q: dns.message.Message) -> bytes:
        del net.faults[addr]
        try:
            r = dns.message.from_wire(net.answer(addr, q.to_wire()))
            for rrset in list(r.additional):
                sigs = make_sigs(rrset) if rrset.rdtype == A else None
                if sigs is not None:
                    r.additional.append(sigs)
        finally:
            net.faults[addr] = fault
        return r.to_wire()
    return fault


def _ask_ns(world, name: str, sigs_for=None, limits=None):
    """Resolves ``name`` NS, validating; ``sigs_for(net, addr)``: what makes the RRSIGs
    example.com.'s servers add over the addresses in their replies (none by default)."""
    net, anchor, wall, _ = world
    servers = (f"{PREFIX}.3.1", f"{PREFIX}.3.2")
    if sigs_for is not None:
        for addr in servers:
            net.faults[addr] = _signing_additional(net, addr, sigs_for(net, addr))
    try:
        limits = limits or LIMITS
        v = Validator(load(anchor), limits, wallclock=lambda: wall)
        clock = FakeClock()
        cache = Cache(1 << 22, limits)
        it = itr.Iterator(W(name), NS, 1, cache, parse_root_hints(root_hints(PREFIX)), clock,
                          limits=limits, dnssec=v)
        res = drive(it, net, clock)
        return res, cache, clock, v
    finally:
        for addr in servers:
            net.faults.pop(addr, None)


def _broken(net, addr):
    served = _served_sigs(net, addr)

    def sigs(rrset):
        good = served(rrset)
        out = good.copy()
        out.clear()
        for rd in good:
            out.add(rd.replace(signature=bytes(b ^ 0xFF for b in rd.signature)))
        return out
    return sigs


def _signed_by(world, origin: str):
    """RRSIGs made with ``origin``'s own key (a genuine signature, by the wrong zone)."""
    _, _, wall, keys = world
    priv, dnskey = keys[origin]

    def sigs_for(net, addr):
        def sigs(rrset):
            rrsig = dns.dnssec.sign(rrset, priv, dns.name.from_text(origin), dnskey,
                                    inception=int(wall) - 3600, expiration=int(wall) + 86400)
            return dns.rrset.from_rdata(rrset.name, rrset.ttl, rrsig)
        return sigs
    return sigs_for


def test_a_secure_ns_answer_carries_the_addresses_its_zone_signed(signed):
    """The addresses come with their RRSIGs in the additional section (as NSD, Knot and
    BIND send them): the validator proves them with the zone's keys and the answer carries
    them, with the RRSIGs for DO (Unbound's val-clean-additional keeps these)."""
    res, cache, clock, v = _ask_ns(signed, "example.com.", _served_sigs)
    assert res.rcode == 0 and res.security == SECURE, res.reason
    got = ns_addresses(cache, res, NS, True, clock())
    assert sorted((rec[0], rec[1]) for rec in got) == [
        (W("ns1.example.com."), A), (W("ns1.example.com."), RRSIG),
        (W("ns2.example.com."), A), (W("ns2.example.com."), RRSIG)]
    assert [rec[1] for rec in ns_addresses(cache, res, NS, False, clock())] == [A, A]
    assert v.stats.rrsets_bogus == 0


def test_addresses_without_a_good_signature_of_the_zone_are_left_out(signed):
    """Unsigned (the glue the referral gave), a signature that does not verify, or one by
    another zone's key: the answer stays secure and carries none of them; a signature that
    does not verify counts as a bogus rrset, as in Unbound."""
    res, cache, clock, v = _ask_ns(signed, "example.com.")
    assert res.security == SECURE and ns_addresses(cache, res, NS, True, clock()) == []
    res, cache, clock, v = _ask_ns(signed, "example.com.", _broken)
    assert res.rcode == 0 and res.security == SECURE, res.reason
    assert ns_addresses(cache, res, NS, True, clock()) == []
    assert ns_addresses(cache, res, NS, False, clock()) == []
    assert v.stats.rrsets_bogus == 2
    res, cache, clock, v = _ask_ns(signed, "example.com.", _signed_by(signed, "com."))
    assert res.rcode == 0 and res.security == SECURE, res.reason
    assert ns_addresses(cache, res, NS, True, clock()) == []


def test_the_query_s_validation_budget_bounds_the_proofs_not_the_verdict(signed):
    """Each address rrset proven is charged to the query's validation budget (the KeyTrap
    bound: ``dnssec_validations_at_once``, no suspension allowed here). A budget spent on the
    answer itself makes it bogus; one spent on the addresses leaves the rest of them out and
    the answer secure."""
    seen = []
    for at_once in range(1, 13):
        limits = dataclasses.replace(LIMITS, dnssec_validations_at_once=at_once,
                                     dnssec_max_suspends=0)
        res, cache, clock, v = _ask_ns(signed, "example.com.", _served_sigs, limits)
        if res.security == SECURE and v.stats.retries == 0:
            seen.append(len(ns_addresses(cache, res, NS, False, clock())))
    assert seen == sorted(seen) and seen[0] < 2 and seen[-1] == 2, seen
