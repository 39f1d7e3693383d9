"""The validator inside the sans-IO iterator, on the fake network and fake clocks: the chain
of trust is fetched within the client query's own state machine and budget, and signature
validity follows the validator's (wall) clock. dnspython signs the fake zones."""
from __future__ import annotations

import time

import dns.dnssec
import dns.name
import dns.rdata
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver import iterator as itr
from resolver.cache import VALIDATED, Cache
from resolver.dnssec import BOGUS, SECURE, Validator
from resolver.hints import parse_root_hints
from resolver.limits import Limits
from resolver.dnssec.trust_anchor import load
from scenario import FakeClock, W, drive, root_hints, small_internet

LIMITS = Limits(exploration=0.0)
LIFETIME = 3600


def signed_internet(wall: float, protocol: int = 3):
    """small_internet with ., com. and example.com. signed (ECDSA P-256, NSEC) and DS
    records in the parents; returns (net, root DS rrset). ``protocol`` is the DNSKEY
    protocol field of example.com.'s key."""
    net = small_internet()
    keys = {}
    for origin, children in (("example.com.", ()), ("com.", ("example.com.",)),
                             (".", ("com.",))):
        z = net.zones[dns.name.from_text(origin)]
        with z.writer() as txn:
            for child in children:
                txn.add(dns.name.from_text(child), 86400,
                        dns.dnssec.make_ds(child, keys[child], "SHA256"))
        priv = ec.generate_private_key(ec.SECP256R1())
        key = dns.dnssec.make_dnskey(priv.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256,
                                     flags=257,
                                     protocol=protocol if origin == "example.com." else 3)
        dns.dnssec.sign_zone(z, keys=[(priv, key)], inception=int(wall) - 60,
                             lifetime=LIFETIME)
        keys[origin] = key
    anchor = dns.rrset.from_rdata_list(dns.name.root, 86400,
                                       [dns.dnssec.make_ds(".", keys["."], "SHA256")])
    return net, anchor


@pytest.fixture(scope="module")
def world():
    wall = time.time()
    net, anchor = signed_internet(wall)
    return net, anchor, wall


def run(net, anchor, wallclock, limits=LIMITS, name="www.example.com.", rdtype=1,
        cache=None, v=None):
    clock = FakeClock()
    v = v or Validator(load(anchor), limits, wallclock=wallclock)
    it = itr.Iterator(W(name), rdtype, 1, cache or Cache(1 << 22, limits),
                      parse_root_hints(root_hints()), clock, limits=limits, dnssec=v)
    net.log.clear()
    return drive(it, net, clock), it, v


def test_chain_fetched_inside_the_query_and_data_marked_validated(world):
    net, anchor, wall = world
    res, it, v = run(net, anchor, lambda: wall)
    assert res.rcode == 0 and res.security == SECURE
    asked = net.queries()
    for q in ((".", "DNSKEY"), ("com.", "DNSKEY"), ("example.com.", "DNSKEY")):
        assert q in asked
    # the fake authority's referrals carry the DS without its RRSIG: rather than call the
    # zone bogus, the validator asks the parent for the DS itself
    assert ("com.", "DS") in asked and ("example.com.", "DS") in asked
    e = it.cache.rrsets.get(W("www.example.com."), 1, 1, it.clock())
    assert e.rank == VALIDATED
    assert v.stats.sig_checks == 6         # 3 DNSKEY sets, 2 DS sets, the A rrset


def test_signature_validity_follows_the_validators_clock(world):
    net, anchor, wall = world
    # a tenth of the signatures' validity, within val-sig-skew-min and -max (Unbound's)
    skew = max(LIMITS.dnssec_sig_skew_min, min(LIMITS.dnssec_sig_skew_max, LIFETIME // 10))
    expiry = int(wall) - 60 + LIFETIME
    res, _, _ = run(net, anchor, lambda: expiry + skew - 5)    # within the skew
    assert res.security == SECURE
    res, _, _ = run(net, anchor, lambda: expiry + skew + 5)
    assert res.security == BOGUS and res.ede == 7 and "expired" in res.reason
    res, _, _ = run(net, anchor, lambda: wall - 60 - skew - 5)          # before inception
    assert res.security == BOGUS and res.ede == 8


def test_validation_shares_the_query_budget(world):
    """The DS/DNSKEY look-ups count against max_upstream_queries like any other query."""
    net, anchor, wall = world
    res, _, _ = run(net, anchor, lambda: wall, LIMITS.replace(max_upstream_queries=4))
    assert res.rcode == itr.SERVFAIL and "upstream query limit" in res.reason


def test_a_dnskey_whose_protocol_is_not_3_verifies_nothing():
    """RFC 4034 2.1.2: a DNSKEY with another protocol value is invalid for verification, even
    when its DS matches and its signatures are good."""
    wall = time.time()
    net, anchor = signed_internet(wall, protocol=4)
    res, _, _ = run(net, anchor, lambda: wall)
    assert res.security == BOGUS and res.ede == 9 and "example.com" in res.reason
    net, anchor = signed_internet(wall)
    res, _, _ = run(net, anchor, lambda: wall)
    assert res.security == SECURE


def test_a_wrong_anchor_is_bogus_without_asking_beyond_the_root(world):
    net, _, wall = world
    other = ec.generate_private_key(ec.SECP256R1())
    key = dns.dnssec.make_dnskey(other.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256,
                                 flags=257)
    wrong = dns.rrset.from_rdata_list(dns.name.root, 86400, [key])
    res, _, _ = run(net, wrong, lambda: wall)
    assert res.security == BOGUS and res.ede == 9
    # the root's key set, of each root server once (RFC 4035 5.5: the other servers are
    # tried before the answer is bogus), and nothing below it
    asked = [(a, q) for a, q, t in net.log if t == "DNSKEY"]
    assert {q for _a, q in asked} == {"."}
    assert sorted(a for a, _q in asked) == ["10.0.0.1", "10.0.0.2"]


def test_a_referral_ds_without_rrsig_is_asked_for_when_it_is_the_answer(world):
    """The client asks for example.com/DS after a resolution left the referral's unsigned DS
    in the cache: the validator asks com. for the signed DS instead of calling it bogus."""
    net, anchor, wall = world
    cache = Cache(1 << 22, LIMITS)
    plain = itr.Iterator(W("www.example.com."), 1, 1, cache, parse_root_hints(root_hints()),
                         FakeClock(), limits=LIMITS)            # no validation: DS left as is
    assert drive(plain, net, plain.clock).rcode == 0
    cached = cache.rrsets.get(W("example.com."), 43, 1, plain.clock())
    assert cached is not None and not cached.rrsigs
    res, _, _ = run(net, anchor, lambda: wall, name="example.com.", rdtype=43, cache=cache)
    assert res.rcode == 0 and res.security == SECURE
    assert any(r[1] == 46 for r in res.answer)       # the signed copy, with its RRSIG
    assert ("example.com.", "DS") in net.queries()


RECORD = st.tuples(st.sampled_from(["www.example.com.", "example.com.", "*.example.com.",
                                    "x.www.example.com.", "com."]),
                   st.sampled_from([1, 5, 6, 43, 46, 47, 48, 50]),
                   st.binary(min_size=0, max_size=60))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=st.lists(RECORD, max_size=4), authority=st.lists(RECORD, max_size=4),
       rcode=st.sampled_from([0, 3]))
def test_fuzz_hostile_zone_never_crashes_the_validator(world, answer, authority, rcode):
    """example.com.'s servers answer with arbitrary records (signatures, NSEC/NSEC3, keys
    with random rdata): the query ends with a verdict, never an exception, never SECURE."""
    res = hostile_run(world, answer, authority, rcode)
    assert res.security != SECURE
    assert res.security in (0, 1, 3)


def test_hostile_zone_with_a_forged_signature_is_bogus(world):
    sig = dns.rdata.from_text("IN", "RRSIG", "A 13 3 300 20300101000000 20200101000000 1 "
                              "example.com. " + "AAAA" * 22).to_digestable()
    res = hostile_run(world, [("www.example.com.", 1, bytes([192, 0, 2, 66])),
                              ("www.example.com.", 46, sig)], [], 0)
    assert res.security == BOGUS and res.answer


def hostile_run(world, answer, authority, rcode):
    import struct as _struct

    net, anchor, wall = world

    def hostile(q):
        qname = q.question[0].name
        if q.question[0].rdtype in (43, 48):     # let the chain itself be fetched
            return None
        out = bytearray(_struct.pack("!HHHHHH", q.id, 0x8400 | rcode, 1, len(answer),
                                     len(authority), 0))
        out += qname.to_wire() + _struct.pack("!HH", q.question[0].rdtype, 1)
        for owner, t, rd in answer + authority:
            out += dns.name.from_text(owner).to_wire() + _struct.pack("!HHIH", t, 1, 300,
                                                                      len(rd)) + rd
        return bytes(out)

    saved = dict(net.faults)
    for a in ("10.0.3.1", "10.0.3.2"):
        net.faults[a] = lambda q, a=a: hostile(q) or net_answer(net, a, q)
    try:
        res, _, _ = run(net, anchor, lambda: wall)
    finally:
        net.faults.clear()
        net.faults.update(saved)
    return res


def net_answer(net, addr, q):
    """The fake authority's normal answer (used for the DS/DNSKEY look-ups)."""
    fault = net.faults.pop(addr)
    try:
        return net.answer(addr, q.to_wire())
    finally:
        net.faults[addr] = fault
