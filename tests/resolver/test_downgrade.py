"""A signed zone is never taken for an unsigned one, and forged data never passes as the
answer, whatever an on-path attacker (or a compromised parent) sends.

The world is ``signed_net.cut_world``: root -> tld. (NSEC3, opt-out) -> the signed child
sub.tld. (NSEC) -> the signed grandchild g.sub.tld. (NSEC3), with unsigned siblings
(uns*.tld. in tld.'s opt-out spans, u.sub.tld. a delegation without DS). The attacker
rewrites the replies of tld.'s or sub.tld.'s servers:

- ``ancestor_referral``: tld. refers a name below sub.tld. straight to the attacker's own
  server and "proves" it unsigned with tld.'s genuine NSEC3 records (the delegation
  sub.tld. as closest encloser, the next closer name in an opt-out span);
- ``ancestor_nodata`` / ``ancestor_nxdomain``: tld. denies a name of sub.tld. the same way;
- ``strip_ds``: tld.'s referral to sub.tld. loses its DS and carries tld.'s nearest
  opt-out span instead;
- ``parent_signed``: tld. answers for names below sub.tld. with data it signs itself;
- ``key_unknown_alg``, ``key_tag_collision``, ``key_not_in_ds``: sub.tld.'s key set forged
  (a key of an unknown algorithm, a key whose tag collides with the DS's but whose digest
  does not match, a key the DS does not name signing the set), with a TTL of a day;
- ``extra_rrsets``: sub.tld.'s answers carry unsigned rrsets nobody asked for;
- ``skew_near`` / ``skew_far``: sub.tld.'s genuine data signed by its own key with an
  inception 20 minutes (a signer's clock a little ahead: accepted as Unbound accepts it)
  or two days ahead (refused).

The oracle: for a name the attacker cannot legitimately speak for, a NOERROR or NXDOMAIN
answer is the genuine zones' (rcode and data, with or without AD); AD only where the
genuine answer is secure; nothing outside an answer chain enters the cache; and once the
attacker has gone and the bogus TTL has passed, every name resolves as the genuine zones
say, with nothing forged left in the cache."""
from __future__ import annotations

import os
import struct
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdata
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver import iterator as itr
from resolver.cache import Cache
from resolver.dnssec import BOGUS, SECURE, Validator
from resolver.dnssec.trust_anchor import load
from resolver.hints import parse_root_hints
from resolver.limits import Limits
from miss_path import ask_miss
from scenario import FakeClock, W, drive
from signed_net import Nsec3Proofs, cut_world, name

LIMITS = Limits(exploration=0.0)
A, TXT, DS, DNSKEY, RRSIG = 1, 16, 43, 48, 46
P = "10.9"


def tld_servers(w) -> tuple:
    return (f"{w['p']}.1.1", f"{w['p']}.1.2")


def sub_servers(w) -> tuple:
    return (f"{w['p']}.2.1", f"{w['p']}.2.2")

FORGED_ADDRS = ("203.0.113.", "forged")

#: attacks on tld.'s servers, and on sub.tld.'s
ON_TLD = ["ancestor_referral", "ancestor_nodata", "ancestor_nxdomain", "strip_ds",
          "parent_signed"]
ON_SUB = ["key_unknown_alg", "key_tag_collision", "key_not_in_ds", "extra_rrsets",
          "skew_near", "skew_far"]
KINDS = ["none"] + ON_TLD + ON_SUB


@pytest.fixture(scope="module")
def world():
    return make_world(time.time(), P)


def make_world(wall: float, p: str, truth=None) -> dict:
    net, anchor, keys, names = cut_world(wall, p)
    w = {"net": net, "anchor": anchor, "keys": keys, "wall": wall, "p": p, **names}
    w["names"] = ["www.tld.", "www.sub.tld.", w["victim"], "www.g.sub.tld.", "nope.sub.tld.",
                  "other.sub.tld.", "www." + w["forged"], "www.u.sub.tld.", "www.uns0.tld."]
    w["truth"] = truth or {(n, t): _outcome(Session(w).resolve(n, t)) for n in w["names"]
                           for t in (A, TXT)}
    return w


def _outcome(res):
    """(rcode, data, security) as a client without CD gets them: a bogus result is
    SERVFAIL (the data is kept only for CD clients)."""
    if res.security == BOGUS:
        return 2, frozenset(), BOGUS
    data = frozenset((r[0].lower(), r[1], r[4]) for r in res.answer if r[1] != RRSIG)
    return res.rcode, data, res.security


class Session:
    """One resolver's cache, validator and clock over the fake network; the validator's
    wall clock follows the fake clock, so advancing it ages signatures too."""

    def __init__(self, w, limits=LIMITS) -> None:
        self.w, self.limits = w, limits
        self.clock = FakeClock()
        self.cache = Cache(1 << 22, limits)
        self.v = Validator(load(w["anchor"]), limits,
                           wallclock=lambda: w["wall"] + self.clock() - 1000.0)

    def resolve(self, n: str, qtype: int, deferred: bool = False):
        it = itr.Iterator(W(n), qtype, 1, self.cache,
                          parse_root_hints([("a.root.", f"{self.w['p']}.0.1")]), self.clock,
                          limits=self.limits, dnssec=self.v)
        if deferred:
            it.deferred = []
        res = drive(it, self.w["net"], self.clock)
        if deferred:
            it.store_deferred()
        return res

    def forged_in_cache(self, forged=None) -> list:
        """Live rrset-cache entries holding forged data (``forged(rdtype, rdata)``)."""
        now = self.clock()
        out = []
        for key, e in list(self.cache.rrsets.lru.data.items()):
            if e.expires <= now or not getattr(e, "rdatas", None):
                continue
            for rd in e.rdatas:
                if (forged or _forged_rdata)(key[1], rd):
                    out.append((dns.name.from_wire(key[0], 0)[0].to_text(), key[1], e.rank))
        return out

    def extras_in_cache(self) -> list:
        """Entries holding the rrsets ``extra_rrsets`` adds, at any rank."""
        return self.cache.rrsets and self.forged_in_cache(
            lambda t, rd: rd in (bytes([203, 0, 113, 98]), bytes([203, 0, 113, 99]))
            or b"forged-extra" in rd)


def _forged_rdata(rdtype: int, rd: bytes) -> bool:
    if rdtype == A and len(rd) == 4:
        return rd[:3] == bytes([203, 0, 113])
    if rdtype == TXT:
        return b"forged" in rd
    if rdtype == DNSKEY:
        return rd in FORGED_KEYS
    return False


#: DNSKEY rdatas the attacker made (``_forged_keys``)
FORGED_KEYS: set = set()


# ---- the attacker --------------------------------------------------------------------------

def _genuine(net, addr, q):
    fault = net.faults.pop(addr, None)
    try:
        return dns.message.from_wire(net.answer(addr, q.to_wire()))
    finally:
        if fault is not None:
            net.faults[addr] = fault


def _rrset(owner, rdtype, ttl, *texts):
    return dns.rrset.from_text(owner, ttl, "IN", dns.rdatatype.to_text(rdtype), *texts)


def _sign(w, origin, rrset, inception=None, expiration=None):
    priv, key = w["keys"][origin]
    wall = int(w["wall"])
    return dns.rrset.from_rdata(rrset.name, rrset.ttl, dns.dnssec.sign(
        rrset, priv, name(origin), key, inception=inception or wall - 600,
        expiration=expiration or wall + 7 * 86400))


def _tld_proof(w, *names_):
    """tld.'s genuine NSEC3 records (with RRSIGs) matching or covering each name."""
    proofs = Nsec3Proofs(w["net"].zones[name("tld.")])
    out = []
    for n in names_:
        out += proofs.match(name(n)) or proofs.cover(name(n))
    return [r for r in out if r is not None]


def _tld_soa(w):
    z = w["net"].zones[name("tld.")]
    soa = dns.rrset.RRset(z.origin, 1, dns.rdatatype.SOA)
    soa.update(z.get_rdataset(z.origin, dns.rdatatype.SOA))
    sig = dns.rrset.RRset(z.origin, 1, RRSIG, dns.rdatatype.SOA)
    sig.update(z.get_node(z.origin).get_rdataset(1, RRSIG, dns.rdatatype.SOA))
    return [soa, sig]


def _forged_keys(w, kind):
    """sub.tld.'s DNSKEY answer as the attacker forges it, TTL a day."""
    priv, key = w["keys"]["sub.tld."]
    rogue = ec.generate_private_key(ec.SECP256R1())
    rogue_key = dns.dnssec.make_dnskey(rogue.public_key(),
                                       dns.dnssec.Algorithm.ECDSAP256SHA256, flags=257)
    tag = dns.dnssec.key_id(key)
    if kind == "key_unknown_alg":
        pub = os.urandom(64)
        forged = [dns.rdata.from_wire(1, DNSKEY, struct.pack("!HBB", 257, 3, 200) + pub, 0,
                                      68)]
        signer = (rogue, rogue_key)
    elif kind == "key_tag_collision":
        forged = [_colliding_key(tag)]
        signer = (rogue, rogue_key)
    else:                                     # key_not_in_ds
        forged = [key, rogue_key]
        signer = (rogue, rogue_key)
    rrset = dns.rrset.from_rdata_list("sub.tld.", 86400, forged + [rogue_key])
    FORGED_KEYS.update(rd.to_digestable() for rd in rrset if rd != key)
    wall = int(w["wall"])
    sig = dns.dnssec.sign(rrset, signer[0], name("sub.tld."), signer[1],
                          inception=wall - 600, expiration=wall + 7 * 86400)
    return [rrset, dns.rrset.from_rdata(rrset.name, 86400, sig)]


def _colliding_key(tag: int):
    """An algorithm-13 DNSKEY whose key tag is ``tag`` but whose key is not the zone's:
    the last two bytes of a random key chosen to make the tag (RFC 4034 appendix B)."""
    body = struct.pack("!HBB", 257, 3, 13) + os.urandom(62)
    acc = 0
    for i, b in enumerate(body):
        acc += b if i & 1 else b << 8
    # two more bytes x, y add (x << 8) + y; the tag is acc + that, folded
    for x in range(256):
        for y in range(256):
            a = acc + (x << 8) + y
            if ((a + (a >> 16)) & 0xFFFF) == tag:
                rd = body + bytes([x, y])
                k = dns.rdata.from_wire(1, DNSKEY, rd, 0, len(rd))
                assert dns.dnssec.key_id(k) == tag
                return k
    raise AssertionError("no colliding key")


def attacker(w, kind):
    """addr -> fault for the servers ``kind`` attacks."""
    net = w["net"]
    sub, forged = name("sub.tld."), name(w["forged"])

    def on_tld(q, addr):
        qname, qtype = q.question[0].name, q.question[0].rdtype
        if not qname.is_subdomain(sub):
            return None
        if kind == "strip_ds":
            return _strip_ds(q, addr)
        if qname == sub and qtype == DS:
            return None
        r = dns.message.make_response(q)
        if qname == sub:                     # a minimised probe: refused, the full name next
            r.set_rcode(dns.rcode.REFUSED)
            return r.to_wire()
        if kind == "ancestor_referral" and qname.is_subdomain(forged):
            if qtype == DS and qname == forged:
                r.flags |= dns.flags.AA
                r.authority = _tld_soa(w) + _tld_proof(w, "sub.tld.", w["forged"])
                return r.to_wire()
            r.authority = [_rrset(forged, dns.rdatatype.NS, 86400, f"ns.evil.{forged}")] \
                + _tld_proof(w, "sub.tld.", w["forged"])
            r.additional = [_rrset(f"ns.evil.{forged}", A, 86400, f"{w['p']}.6.6")]
            return r.to_wire()
        if kind in ("ancestor_nodata", "ancestor_nxdomain") and qtype != DS:
            r.flags |= dns.flags.AA
            r.authority = _tld_soa(w) + _tld_proof(w, "sub.tld.", qname.to_text())
            if kind == "ancestor_nxdomain":
                r.set_rcode(dns.rcode.NXDOMAIN)
                r.authority += _tld_proof(w, "*.sub.tld.")
            return r.to_wire()
        if kind == "parent_signed" and qtype in (A, TXT):
            r.flags |= dns.flags.AA
            data = _rrset(qname, qtype, 300, "203.0.113.77" if qtype == A else '"forged"')
            r.answer = [data, _sign(w, "tld.", data)]
            return r.to_wire()
        return None

    def _strip_ds(q, addr):
        """tld.'s referral to sub.tld. (or its DS answer) without the DS, with tld.'s
        apex NSEC3 and an opt-out span in its place."""
        r = _genuine(net, addr, q)
        proof = _tld_proof(w, "tld.", "uns0.tld.")
        if any(x.rdtype == DS for x in r.authority):
            r.authority = [x for x in r.authority if x.rdtype not in (DS, RRSIG)] + proof
        if any(x.rdtype == DS for x in r.answer):
            r.answer = []
            r.flags |= dns.flags.AA
            r.authority = _tld_soa(w) + proof
        return r.to_wire()

    def on_sub(q, addr):
        qname, qtype = q.question[0].name, q.question[0].rdtype
        r = _genuine(net, addr, q)
        if kind.startswith("key_"):
            if qtype != DNSKEY or qname != sub:
                return None
            r.answer = _forged_keys(w, kind)
            return r.to_wire()
        if qtype in (DS, DNSKEY):
            return None
        if kind == "extra_rrsets" and r.answer:
            other = (_rrset(qname, TXT, 86400, '"forged-extra"') if qtype != TXT
                     else _rrset(qname, A, 86400, "203.0.113.98"))
            r.answer += [other, _rrset("other.sub.tld.", A, 86400, "203.0.113.99")]
            return r.to_wire()
        if kind in ("skew_near", "skew_far") and r.answer:
            ahead = 1200 if kind == "skew_near" else 2 * 86400
            wall = int(w["wall"])
            data = [x for x in r.answer if x.rdtype != RRSIG]
            r.answer = data + [_sign(w, "sub.tld.", x, inception=wall + ahead,
                                     expiration=wall + ahead + 7 * 86400) for x in data]
            return r.to_wire()
        return None

    faults = {}
    if kind in ON_TLD:
        for a in tld_servers(w):
            faults[a] = lambda q, a=a: on_tld(q, a) or _genuine(net, a, q).to_wire()
    elif kind in ON_SUB:
        for a in sub_servers(w):
            faults[a] = lambda q, a=a: on_sub(q, a) or _genuine(net, a, q).to_wire()
    return faults


def attack(w, kind, servers=None):
    net = w["net"]
    for a in tld_servers(w) + sub_servers(w):
        net.faults.pop(a, None)
    for a, f in attacker(w, kind).items():
        if servers is None or a in servers:
            net.faults[a] = f


# ---- the oracle ----------------------------------------------------------------------------

def speaks_for(w, n: str, kind: str) -> bool:
    """Whether the attacker ``kind`` may legitimately decide the answer for ``n``: only for
    names of unsigned zones it is on the path to (tld.'s attacker for the opt-out
    sibling; sub.tld.'s for both unsigned zones below them)."""
    if n.endswith("uns0.tld."):
        return kind in ON_TLD or kind in ON_SUB
    if n.endswith("u.sub.tld."):
        return kind in ON_SUB
    return False


def check(w, res, n: str, qtype: int, kind: str) -> None:
    rcode, data, security = _outcome(res)
    trcode, tdata, tsec = w["truth"][(n, qtype)]
    if security == SECURE:
        assert tsec == SECURE, f"{n}/{qtype} under {kind}: AD where the zones are not secure"
        assert (rcode, data) == (trcode, tdata), f"{n}/{qtype} under {kind}: AD on forged data"
    if speaks_for(w, n, kind) or rcode not in (0, 3):
        return
    assert rcode == trcode, f"{n}/{qtype} under {kind}: rcode {rcode}, genuine {trcode}"
    assert data == tdata, f"{n}/{qtype} under {kind}: forged data answered {sorted(data)}"


def settle(w, s: Session) -> None:
    """The attacker gone and the bogus TTL passed: every name resolves as the genuine
    zones say, and nothing forged is left in the cache."""
    attack(w, "none")
    s.clock.advance(s.limits.dnssec_bogus_ttl + 1)
    for n in w["names"]:
        for t in (A, TXT):
            res = s.resolve(n, t)
            assert _outcome(res) == w["truth"][(n, t)], \
                f"{n}/{t}: still not the genuine answer after the bogus TTL"
    assert not s.forged_in_cache(), s.forged_in_cache()


# ---- hand-written regressions --------------------------------------------------------------

def test_the_world_is_what_the_tests_assume(world):
    """The genuine answers: signed names secure, the unsigned siblings insecure, the names
    the attacks aim at real (the forged zone hashes into an opt-out span of tld.)."""
    t = world["truth"]
    assert t[("www.sub.tld.", A)][2] == SECURE and t[("www.sub.tld.", A)][0] == 0
    assert t[(world["victim"], A)][2] == SECURE and t[(world["victim"], A)][1]
    assert t[("www.g.sub.tld.", A)][2] == SECURE
    assert t[("www." + world["forged"], A)][0] == 3 and \
        t[("www." + world["forged"], A)][2] == SECURE
    assert t[("www.u.sub.tld.", A)][2] != SECURE and t[("www.u.sub.tld.", A)][1]
    assert t[("www.uns0.tld.", A)][2] != SECURE and t[("www.uns0.tld.", A)][1]


@pytest.mark.parametrize("deferred", [False, True])
def test_ancestor_denial_of_ds_does_not_make_a_signed_child_insecure(world, deferred):
    """tld. refers a name below the signed sub.tld. to the attacker, "proving" no DS with
    the delegation's NSEC3 as closest encloser and an opt-out span: SERVFAIL, never the
    attacker's address, and the genuine NXDOMAIN once the attacker has gone."""
    s = Session(world)
    attack(world, "ancestor_referral")
    n = "www." + world["forged"]
    res = s.resolve(n, A, deferred)
    assert _outcome(res)[0] == 2, (res.rcode, res.answer)
    check(world, res, n, A, "ancestor_referral")
    # kept for CD clients, below VALIDATED, no longer than the bogus verdict
    for owner, rdtype, rank in s.forged_in_cache():
        e = s.cache.rrsets.lru.peek((W(owner), rdtype, 1))
        assert rank < 7 and e.expires <= s.clock() + s.limits.dnssec_bogus_ttl
    settle(world, s)


def test_a_forged_referral_lives_no_longer_than_its_bogus_verdict(world):
    """The attacker's referral to a zone below sub.tld. (a day's TTL) is not kept past the
    bogus verdict it led to: once the genuine servers answer, with sub.tld.'s delegation
    known, the name is the genuine NXDOMAIN again, though the attacker's own server still
    answers for its zone."""
    s = Session(world)
    s.resolve("www.tld.", A)
    attack(world, "ancestor_referral")
    n = "www." + world["forged"]
    assert _outcome(s.resolve(n, A))[0] == 2
    attack(world, "none")
    assert s.resolve("www.sub.tld.", A).security == SECURE     # sub.tld.'s cut now known
    e = s.cache.rrsets.lru.peek((W(world["forged"]), 2, 1))
    assert e is None or e.expires <= s.clock() + s.limits.dnssec_bogus_ttl
    settle(world, s)


@pytest.mark.parametrize("kind", ["ancestor_nodata", "ancestor_nxdomain"])
def test_ancestor_denial_of_a_signed_childs_name_is_refused(world, kind):
    """The same proof for a name of sub.tld. that exists: no NODATA or NXDOMAIN cached in
    place of the genuine answer."""
    s = Session(world)
    attack(world, kind)
    res = s.resolve(world["victim"], A)
    assert _outcome(res)[0] == 2, (res.rcode, res.answer)
    settle(world, s)


def test_a_referral_stripped_of_its_ds_is_bogus_not_insecure(world):
    s = Session(world)
    attack(world, "strip_ds")
    res = s.resolve("www.sub.tld.", A)
    check(world, res, "www.sub.tld.", A, "strip_ds")
    assert _outcome(res)[0] == 2
    settle(world, s)


def test_data_below_a_signed_cut_signed_by_the_parent_is_not_secure(world):
    """RFC 4035 5.3.1: tld.'s own signature over data of sub.tld. proves nothing (Unbound
    accepts it): the answer is not the parent's forged data."""
    s = Session(world)
    attack(world, "parent_signed")
    res = s.resolve("www.sub.tld.", A)
    assert res.security != SECURE
    assert _outcome(res)[0] == 2, (res.rcode, res.answer)
    settle(world, s)


@pytest.mark.parametrize("kind", ["key_unknown_alg", "key_tag_collision", "key_not_in_ds"])
def test_a_forged_key_set_lives_no_longer_than_its_bogus_verdict(world, kind):
    """Every server of sub.tld. sends a forged key set with a TTL of a day: bogus, and kept
    (in the rrset cache too) no longer than the bogus TTL, so the zone validates again as
    soon as its servers answer genuinely."""
    s = Session(world)
    attack(world, kind)
    res = s.resolve("www.sub.tld.", A)
    assert res.security == BOGUS and res.rcode == 0
    e = s.cache.rrsets.lru.peek((W("sub.tld."), DNSKEY, 1))
    if e is not None:
        assert e.expires <= s.clock() + s.limits.dnssec_bogus_ttl
    settle(world, s)


def test_a_forged_key_set_from_one_server_sends_the_question_to_the_others(world):
    """One of sub.tld.'s two servers sends a forged key set: the other is asked before the
    zone is declared bogus, and the answer is secure."""
    s = Session(world)
    attack(world, "key_not_in_ds", servers=[sub_servers(world)[0]])
    try:
        res = s.resolve("www.sub.tld.", A)
    finally:
        attack(world, "none")
    assert res.security == SECURE, res.reason
    assert _outcome(res) == world["truth"][("www.sub.tld.", A)]


def test_only_the_answer_chain_is_cached(world):
    """Unsigned rrsets added beside the signed answer (another type at the name, another
    name) never enter the cache, so they neither answer nor fail later questions."""
    s = Session(world)
    attack(world, "extra_rrsets")
    res = s.resolve("www.sub.tld.", A)
    attack(world, "none")
    assert res.security == SECURE
    for key in ((W("www.sub.tld."), TXT, 1), (W("other.sub.tld."), A, 1)):
        assert s.cache.rrsets.lru.peek(key) is None, key
    assert not s.extras_in_cache()
    res = s.resolve("www.sub.tld.", TXT)
    assert res.security == SECURE and _outcome(res) == world["truth"][("www.sub.tld.", TXT)]
    res = s.resolve("other.sub.tld.", A)
    assert _outcome(res) == world["truth"][("other.sub.tld.", A)]


def test_signatures_from_a_signer_whose_clock_runs_ahead(world):
    """Inception 20 minutes ahead is within Unbound's allowance (a tenth of the validity,
    at least an hour): secure. Two days ahead is beyond it (a tenth of 7 days): bogus."""
    s = Session(world)
    attack(world, "skew_near")
    res = s.resolve("www.sub.tld.", A)
    assert res.security == SECURE, res.reason
    s = Session(world)
    attack(world, "skew_far")
    res = s.resolve("www.sub.tld.", A)
    attack(world, "none")
    assert res.security == BOGUS and "not yet valid" in res.reason


def test_signature_skew_follows_the_settings(world):
    """val-sig-skew-max bounds the allowance: with it at 10 minutes, a signature 20 minutes
    ahead is not yet valid."""
    lim = LIMITS.replace(dnssec_sig_skew_min=60, dnssec_sig_skew_max=600)
    s = Session(world, lim)
    attack(world, "skew_near")
    res = s.resolve("www.sub.tld.", A)
    attack(world, "none")
    assert res.security == BOGUS and "not yet valid" in res.reason


def test_skew_settings_are_unbounds():
    from resolver.daemon.config import ConfigError
    from resolver.daemon.settings import BY_NAME, check_limits
    assert BY_NAME["val_sig_skew_min"].default == 3600
    assert BY_NAME["val_sig_skew_max"].default == 86400
    assert BY_NAME["val_bogus_ttl"].default == 60
    with pytest.raises(ConfigError, match="val-sig-skew-min"):
        check_limits(LIMITS.replace(dnssec_sig_skew_min=90000))


# ---- generated cases -----------------------------------------------------------------------

def run_steps(w, steps) -> Session:
    s = Session(w)
    try:
        for n, qtype, kind, deferred, again in steps:
            attack(w, kind)
            res = s.resolve(n, qtype, deferred)
            check(w, res, n, qtype, kind)
            if kind == "extra_rrsets":      # the rrsets nobody asked for: never cached
                assert not s.extras_in_cache(), s.extras_in_cache()
            if again:       # the attacker gone: what the forged reply left must not answer
                attack(w, "none")
                res = s.resolve(n, qtype)
                check(w, res, n, qtype, kind)
        settle(w, s)
    finally:
        attack(w, "none")
    return s


def _steps(w):
    return st.lists(st.tuples(st.sampled_from(w["names"]), st.sampled_from([A, TXT]),
                              st.sampled_from(KINDS), st.booleans(), st.booleans()),
                    min_size=1, max_size=3)


# A few minutes of one core (its examples are many); a loaded machine may take several times
# that, still bounded.
@pytest.mark.timeout(1200)
def test_generated_downgrades_never_pass(world):
    """Sequences of attacks of every class on one cache, each followed by the invariant;
    every sequence ends with the attacker gone and the bogus TTL past, when every name must
    resolve as the genuine zones say, with nothing forged in the cache."""
    @settings(max_examples=int(os.environ.get("DOWNGRADE_CASES", "1000")), deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(steps=_steps(world))
    def run(steps):
        run_steps(world, steps)

    run()


# ---- the daemon's path ---------------------------------------------------------------------
#: the same tree on loopback addresses, behind real sockets (``FakeServers``)
DP = "127.57"
DAEMON_LIMITS = LIMITS.replace(initial_rto=0.1, max_rto=0.2, max_query_time=2.0)


@pytest.fixture(scope="module")
def sockets_world(world):
    """The tree on loopback addresses: other keys, the same zones' data, so the same
    truth (the names compared hold no server address)."""
    return make_world(world["wall"], DP, world["truth"])


@pytest.fixture
def daemon_port(run, sockets_world):
    from scenario import FakeServers
    net = sockets_world["net"]
    fs = FakeServers(net)
    port = run(fs.start(sorted(net.served)))
    try:
        yield port
    finally:
        attack(sockets_world, "none")
        run(fs.stop())


def _daemon(w, port, limits=DAEMON_LIMITS):
    import resolver
    return resolver.Resolver([("a.root.", f"{w['p']}.0.1")], port=port,
                             trust_anchor=w["anchor"], do_not_query_localhost=False,
                             limits=limits)


def check_response(w, resp, n: str, qtype: int, kind: str, cd: bool = False) -> None:
    """The oracle on a response: AD only on the genuine secure answer; without CD (which
    asks for data that failed validation), NOERROR and NXDOMAIN only as the genuine zones
    answer, for every name the attacker may not speak for."""
    rcode = resp.rcode()
    data = frozenset((rs.name.to_wire().lower(), rs.rdtype, rd.to_digestable())
                     for rs in resp.answer if rs.rdtype != RRSIG for rd in rs)
    trcode, tdata, tsec = w["truth"][(n, qtype)]
    if resp.flags & dns.flags.AD:
        assert tsec == SECURE and (rcode, data) == (trcode, tdata), \
            f"{n}/{qtype} under {kind}: AD on {rcode} {sorted(data)}"
    if cd or speaks_for(w, n, kind) or rcode not in (0, 3):
        return
    assert (rcode, data) == (trcode, tdata), \
        f"{n}/{qtype} under {kind}: {rcode} {sorted(data)} answered, genuine {trcode}"


ATTACKED = [(k, n) for k in ON_TLD + ON_SUB
            for n in (["www.sub.tld."] if k not in ("ancestor_referral",) else [None])]


def _target(w, kind: str, n: str | None) -> str:
    return n or "www." + w["forged"]


@pytest.mark.parametrize("kind,n", ATTACKED)
def test_daemon_path_answers_no_forged_data(run, sockets_world, daemon_port, kind, n):
    """The miss path with the deferred store, then the message cache's DO and CD variants
    and a follow-up once the attacker has gone."""
    w = sockets_world
    n = _target(w, kind, n)
    r = _daemon(w, daemon_port)

    async def go():
        attack(w, kind)
        for do, cd in ((True, False), (False, False), (True, True)):
            check_response(w, await ask_miss(r, n, A, do, cd), n, A, kind, cd)
        attack(w, "none")
        for do in (True, False):
            check_response(w, await ask_miss(r, n, A, do), n, A, kind)

    run(go(), timeout=30)


@pytest.mark.parametrize("kind,n", ATTACKED)
def test_prefetch_under_attack_answers_no_forged_data(run, sockets_world, daemon_port, kind,
                                                       n):
    """Every hit is due for prefetch: the refresh runs while the attacker answers, and
    what it leaves in the message cache is what the next clients get."""
    import asyncio
    w = sockets_world
    n = _target(w, kind, n)
    r = _daemon(w, daemon_port,
                DAEMON_LIMITS.replace(prefetch_fraction=1.0, prefetch_min_hits=1))

    async def go():
        check_response(w, await ask_miss(r, n, A), n, A, "none")
        attack(w, kind)
        prefetches = r.stats.prefetches
        for _ in range(3):
            check_response(w, await ask_miss(r, n, A), n, A, kind)
            for _ in range(100):
                if not any(e.prefetching for e in r.message_table.values()):
                    break
                await asyncio.sleep(0.01)
        assert r.stats.prefetches > prefetches, "no refresh ran under the attack"
        attack(w, "none")
        for do in (True, False):
            check_response(w, await ask_miss(r, n, A, do), n, A, kind)

    run(go(), timeout=30)


@pytest.mark.parametrize("kind,n", ATTACKED)
def test_serve_stale_under_attack_serves_only_the_genuine_answer(run, sockets_world,
                                                                 daemon_port, kind, n):
    """Entries live 1 s and are served stale for an hour when resolving fails: under the
    attack, what is answered (fresh, stale or SERVFAIL) is never forged data."""
    import asyncio
    w = sockets_world
    n = _target(w, kind, n)
    r = _daemon(w, daemon_port, DAEMON_LIMITS.replace(max_ttl=1, stale_window=3600))

    async def go():
        check_response(w, await ask_miss(r, n, A), n, A, "none")
        await asyncio.sleep(1.2)
        attack(w, kind)
        for do in (True, False, True):
            check_response(w, await ask_miss(r, n, A, do), n, A, kind)

    run(go(), timeout=30)


@pytest.mark.parametrize("kind,n", ATTACKED)
def test_shared_cache_carries_no_forged_data(run, sockets_world, daemon_port, redis_shared,
                                             kind, n):
    """One resolver answers under attack and writes to Redis what it answered; another,
    the attacker gone, reads it from there: neither answers forged data."""
    w = sockets_world
    n = _target(w, kind, n)
    attacked, other = _daemon(w, daemon_port), _daemon(w, daemon_port)
    attacked.shared, other.shared = redis_shared(), redis_shared()

    async def go():
        try:
            attack(w, kind)
            for do in (True, False):
                check_response(w, await ask_miss(attacked, n, A, do), n, A, kind)
            attack(w, "none")
            for do in (True, False):
                check_response(w, await ask_miss(other, n, A, do), n, A, kind)
        finally:
            await attacked.shared.close()
            await other.shared.close()

    run(go(), timeout=30)


def test_daemon_path_generated_downgrades_never_pass(run, sockets_world, daemon_port):
    """Generated sequences of attacks on one daemon resolver (its message cache, deferred
    store and DO/CD variants), each response held to the oracle."""
    w = sockets_world

    @settings(max_examples=int(os.environ.get("DOWNGRADE_DAEMON_CASES", "40")),
              deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=st.lists(st.tuples(st.sampled_from(w["names"]), st.sampled_from([A, TXT]),
                                    st.sampled_from(KINDS), st.booleans(), st.booleans()),
                          min_size=1, max_size=3))
    def case(steps):
        r = _daemon(w, daemon_port)

        async def go():
            for n, qtype, kind, do, cd in steps:
                attack(w, kind)
                check_response(w, await ask_miss(r, n, qtype, do, cd), n, qtype, kind, cd)
                attack(w, "none")
                check_response(w, await ask_miss(r, n, qtype, not do), n, qtype, kind)

        try:
            run(go(), timeout=60)
        finally:
            attack(w, "none")

    case()
