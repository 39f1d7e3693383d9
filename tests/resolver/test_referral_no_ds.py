"""A referral that carries its own signed proof that the child has no DS (RFC 4035 5.2,
RFC 5155 8.9) is enough to call the child insecure: the parent is not asked for the DS
again, so a parent that never answers DS questions does not make the child's answers fail.
On the signed fake network: n3.example.com. (NSEC3) delegates unsigned.n3.example.com.
in an opt-out span, to ns.other.net."""
from __future__ import annotations

import time

import dns.message
import dns.rdatatype
import pytest

from resolver import iterator as itr
from resolver.cache import Cache
from resolver.dnssec import BOGUS, INSECURE, Validator
from resolver.dnssec.trust_anchor import load
from resolver.hints import parse_root_hints
from resolver.limits import Limits
from scenario import FakeClock, W, drive, root_hints
from signed_net import signed_world

LIMITS = Limits(exploration=0.0)
A, DS = 1, 43
N3 = "10.0.3.3"


@pytest.fixture(scope="module")
def world():
    wall = time.time()
    net, anchor, keys = signed_world(wall)
    net.zone("unsigned.n3.example.com.", """
@ 3600 NS ns.other.net.
www 300 A 192.0.2.80
""", ["10.0.4.1"])
    return net, anchor, wall


@pytest.fixture
def net(world):
    yield world[0]
    world[0].faults.clear()


def silent_to_ds(net, addr):
    """``addr`` answers every question but DS ones (as a middlebox dropping them)."""
    def fault(q):
        if q.question[0].rdtype == DS:
            return None
        net.faults.pop(addr)
        try:
            return net.answer(addr, q.to_wire())
        finally:
            net.log.pop()           # logged once, as asked
            net.faults[addr] = fault
    return fault


def ask(world, name, qtype, minimise, cache=None):
    net, anchor, wall = world
    clock = FakeClock()
    v = Validator(load(anchor), LIMITS, wallclock=lambda: wall)
    it = itr.Iterator(W(name), qtype, 1, cache or Cache(1 << 22, LIMITS),
                      parse_root_hints(root_hints()), clock, limits=LIMITS, dnssec=v,
                      minimise=minimise)
    before = len(net.log)
    return drive(it, net, clock), net.log[before:]


@pytest.mark.parametrize("minimise", [True, False])
def test_the_referrals_proof_makes_the_child_insecure_without_asking_ds(world, net, minimise):
    net.faults[N3] = silent_to_ds(net, N3)
    res, log = ask(world, "www.unsigned.n3.example.com.", A, minimise)
    assert res.rcode == 0 and res.security == INSECURE, res.reason
    assert [r[4] for r in res.answer if r[1] == A] == [bytes([192, 0, 2, 80])]
    assert ("unsigned.n3.example.com.", "DS") not in [(q, t) for _a, q, t in log]


def test_a_referral_without_its_proof_still_asks_the_parent(world, net):
    """The proof stripped from the referral: the parent is asked for the DS, as before,
    and answers it (opt-out: insecure)."""
    def stripped(q):
        net.faults.pop(N3)
        try:
            r = dns.message.from_wire(net.answer(N3, q.to_wire()))
        finally:
            net.log.pop()
            net.faults[N3] = stripped
        if q.question[0].rdtype != DS:
            r.authority = [x for x in r.authority if x.rdtype not in (50, 46)]
        return r.to_wire()

    net.faults[N3] = stripped
    res, log = ask(world, "www.unsigned.n3.example.com.", A, False)
    assert res.rcode == 0 and res.security == INSECURE, res.reason
    assert ("unsigned.n3.example.com.", "DS") in [(q, t) for _a, q, t in log]


def test_a_forged_proof_in_the_referral_is_not_taken(world, net):
    """The referral's proof must verify under the parent's keys: with its signatures
    broken it proves nothing, the parent is asked for the DS, and when that goes
    unanswered the child is not called insecure."""
    def forged(q):
        if q.question[0].rdtype == DS:
            return None
        net.faults.pop(N3)
        try:
            r = dns.message.from_wire(net.answer(N3, q.to_wire()))
        finally:
            net.log.pop()
            net.faults[N3] = forged
        out = []
        for rrset in r.authority:
            if rrset.rdtype == 46:
                bad = dns.rrset.RRset(rrset.name, rrset.rdclass, 46, rrset.covers)
                for rd in rrset:
                    bad.add(rd.replace(signature=rd.signature[:-1]
                                       + bytes([rd.signature[-1] ^ 1])), rrset.ttl)
                rrset = bad
            out.append(rrset)
        r.authority = out
        return r.to_wire()

    net.faults[N3] = forged
    res, log = ask(world, "www.unsigned.n3.example.com.", A, False)
    assert res.security != INSECURE or res.rcode != 0
    assert res.security == BOGUS or res.rcode == 2
    assert ("unsigned.n3.example.com.", "DS") in [(q, t) for _a, q, t in log]
