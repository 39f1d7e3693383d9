"""AD only for what an independent validator calls secure, whatever an on-path attacker
sends. Signed zones on the fake network (``signed_net``); an attacker rewrites the replies
of example.com.'s servers (drops proofs, replays the wildcard's signed data onto other
names, strips or swaps signatures, re-signs with expired or future validity, forges data
and DNAME syntheses); queries follow one another on one cache, so what one forged reply
left there is read by the next (the deferred store, follow-ups with and without DO/CD).

The oracle, for every answer marked secure: each signed rrset verifies with dnspython's
``dns.dnssec.validate`` under the zone's true keys, themselves checked from the trust
anchor down, and the data is what the genuine zones answer (the rcode and the final
rrset), so a replayed wildcard on an existing name or a wrong closest encloser is caught
even where every signature is genuine."""
from __future__ import annotations

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
from resolver.dnssec import SECURE, Validator
from resolver.dnssec.trust_anchor import load
from resolver.hints import parse_root_hints
from resolver.limits import Limits
from miss_path import ask_miss
from scenario import FakeClock, W, drive, root_hints
from signed_net import signed_world

LIMITS = Limits(exploration=0.0)
EXAMPLE = ("10.0.3.1", "10.0.3.2", "10.0.3.3")
A, TXT, AAAA, CNAME = 1, 16, 28, 5

#: names of example.com. that exist, that a wildcard answers, that it must not answer
#: (real.wild exists; q.real.wild has the closest encloser real.wild, which has no
#: wildcard), empty non-terminals, the literal wildcard, DNAME targets, non-existent names
NAMES = ["www.example.com.", "alias.example.com.", "x.wild.example.com.",
         "a.b.wild.example.com.", "real.wild.example.com.", "q.real.wild.example.com.",
         "deeper.real.wild.example.com.", "*.wild.example.com.", "nonterminal.example.com.",
         "empty.nonterminal.example.com.", "host.dn.example.com.", "zz.dn.example.com.",
         "nope.example.com.", "mail.example.com.", "ns1.example.com.",
         # NSEC3, an opt-out span for an unsigned delegation
         "www.n3.example.com.", "x.wild.n3.example.com.", "real.wild.n3.example.com.",
         "q.real.wild.n3.example.com.", "*.wild.n3.example.com.", "ent.n3.example.com.",
         "nope.n3.example.com.", "unsigned.n3.example.com."]
TYPES = [A, TXT, AAAA]


@pytest.fixture(scope="module")
def world():
    wall = time.time()
    net, anchor, keys = signed_world(wall)
    return net, anchor, keys, wall, _truths(net, anchor, wall)


# ---- the oracle ----------------------------------------------------------------------------

#: (function, its arguments' ids) -> (the arguments, the value): what _once computed. The
#: arguments are kept, so no other object can take their ids while the entry lives.
_ONCE: dict[tuple, tuple] = {}


def _once(make, *args):
    """``make(*args)``, computed once per set of argument objects (by identity: the zones
    and worlds here compare by content, and each check and attacker reads the same ones)."""
    key = (make, *map(id, args))
    hit = _ONCE.get(key)
    if hit is None:
        hit = _ONCE[key] = (args, make(*args))
    return hit[1]


def _final_rrset(answer: list, qname: bytes, qtype: int):
    """(rcode-independent) the data of the answer's final rrset: a frozenset of rdata."""
    data = [(r[0].lower(), r[1], r[4]) for r in answer if r[1] != 46]
    return frozenset(x for x in data if x[1] == qtype)


def _truths(net, anchor, wall):
    """What the genuine zones answer: (name, type) -> (rcode, final data), from a resolver
    that validates, on a fresh cache per question, with no attacker."""
    out = {}
    for n in NAMES:
        for t in TYPES + [CNAME]:
            res, _ = _resolve(net, anchor, wall, Cache(1 << 22, LIMITS), None, n, t)
            out[(n, t)] = (res.rcode, _final_rrset(res.answer, W(n), t), res.security)
    return out


def _keysets(net, anchor):
    """The zones' DNSKEY rrsets, each proven the way a validator proves them, with
    dnspython alone: the root's by the anchor's DS, each child's by the DS its parent
    signs, and each set by its own signature: the independent chain of trust."""
    keys: dict = {}
    ds = anchor
    parent = None
    for origin in (".", "com.", "example.com.", "n3.example.com."):
        z = net.zones[dns.name.from_text(origin)]
        node = z.get_node(z.origin)
        rrset = dns.rrset.RRset(z.origin, 1, dns.rdatatype.DNSKEY)
        rrset.update(node.get_rdataset(1, dns.rdatatype.DNSKEY))
        sigs = dns.rrset.RRset(z.origin, 1, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
        sigs.update(node.get_rdataset(1, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY))
        if parent is not None:          # the DS the parent holds, under the parent's keys
            pz = net.zones[parent]
            pnode = pz.get_node(z.origin)
            ds = dns.rrset.RRset(z.origin, 1, dns.rdatatype.DS)
            ds.update(pnode.get_rdataset(1, dns.rdatatype.DS))
            dsig = dns.rrset.RRset(z.origin, 1, dns.rdatatype.RRSIG, dns.rdatatype.DS)
            dsig.update(pnode.get_rdataset(1, dns.rdatatype.RRSIG, dns.rdatatype.DS))
            dns.dnssec.validate(ds, dsig, keys)
        assert any(dns.dnssec.make_ds(z.origin, k, "SHA256") in ds for k in rrset), origin
        dns.dnssec.validate(rrset, sigs, {z.origin: rrset})
        keys[z.origin] = rrset
        parent = z.origin
    return keys


def check_secure(world, res, qname: str, qtype: int, *, sigs_present: bool = True) -> None:
    """The invariant for one Result the resolver calls SECURE."""
    net, anchor, keys, wall, truth = world
    if res.security != SECURE:
        return
    rcode, data, tsec = truth[(qname, qtype)]
    assert tsec == SECURE, f"{qname}/{qtype}: AD where the genuine zones are not secure"
    assert res.rcode == rcode, f"{qname}/{qtype}: AD on rcode {res.rcode}, truth {rcode}"
    assert _final_rrset(res.answer, W(qname), qtype) == data, \
        f"{qname}/{qtype}: AD on data the genuine zones do not hold"
    if not sigs_present:
        return
    keysets = _once(_keysets, net, anchor)
    msg = dns.message.make_response(dns.message.make_query(qname, qtype))
    for (o, t, c, ttl, rd) in res.answer:
        n = dns.name.from_wire(o, 0)[0]
        rdata = dns.rdata.from_wire(c, t, rd, 0, len(rd))
        covers = rdata.covers() if t == 46 else dns.rdatatype.NONE
        msg.find_rrset(msg.answer, n, c, t, covers, create=True).add(rdata, ttl)
    for rrset in msg.answer:
        if rrset.rdtype == 46:
            continue
        sig = [s for s in msg.answer if s.rdtype == 46 and s.covers == rrset.rdtype
               and s.name == rrset.name]
        if not sig and rrset.rdtype == CNAME and any(x.rdtype == 39 for x in msg.answer):
            continue                   # a DNAME's synthesis: the DNAME is checked
        assert sig, f"{rrset.name}/{rrset.rdtype}: AD without its RRSIG"
        dns.dnssec.validate(rrset, sig[0], keysets, now=wall)


# ---- the attacker --------------------------------------------------------------------------

MUTATIONS = ["none", "drop_proof", "strip_sigs", "replay_wildcard", "replay_wildcard_proof",
             "forge_rdata", "foreign_sigs", "expired", "future", "unsigned_aa",
             "forge_dname_cname", "swap_nsec"]


def _genuine(net, addr, q):
    fault = net.faults.pop(addr)
    try:
        return dns.message.from_wire(net.answer(addr, q.to_wire()))
    finally:
        net.faults[addr] = fault


def _denials(zone) -> list:
    """The zone's NSEC or NSEC3 rrsets, each with its RRSIG."""
    out = []
    for n, nd in zone.nodes.items():
        n = n if n.is_absolute() else n.concatenate(zone.origin)
        for t in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3):
            rds = nd.get_rdataset(1, t)
            if rds is not None:
                s = dns.rrset.RRset(n, 1, 46, t)
                s.update(nd.get_rdataset(1, 46, t))
                out.append([dns.rrset.from_rdata_list(n, 3600, list(rds)), s])
    return out


def _attacker(world, kind: str, servers=EXAMPLE, addr=None):
    """A fault for server ``addr`` (of ``servers``: example.com.'s two, n3's last) that
    answers as the genuine server would, then rewrites the reply as ``kind`` says."""
    net, anchor, keys, wall, truth = world
    zones = {o: (net.zones[dns.name.from_text(o)], keys[o])
             for o in ("example.com.", "n3.example.com.")}
    rogue = ec.generate_private_key(ec.SECP256R1())
    rogue_key = dns.dnssec.make_dnskey(rogue.public_key(),
                                       dns.dnssec.Algorithm.ECDSAP256SHA256, flags=257)
    proofs = {o: _once(_denials, z) for o, (z, _k) in zones.items()}

    def mutate(q, addr):
        wire = forge(q, addr)
        return wire if wire is not None else _genuine(net, addr, q).to_wire()

    def forge(q, addr):
        qname, qtype = q.question[0].name, q.question[0].rdtype
        if qtype in (dns.rdatatype.DS, dns.rdatatype.DNSKEY) or kind == "none":
            return None
        o = "n3.example.com." if qname.is_subdomain(dns.name.from_text("n3.example.com.")) \
            and addr == servers[2] else "example.com."
        zone, (priv, key) = zones[o]
        origin = zone.origin
        wild = dns.name.from_text("*.wild." + o)
        wnode = zone.get_node(wild)

        def sig_for(rrset, signer=priv, dnskey=key, inception=None, expiration=None):
            return dns.rrset.from_rdata(rrset.name, rrset.ttl, dns.dnssec.sign(
                rrset, signer, origin, dnskey, inception=inception or int(wall) - 600,
                expiration=expiration or int(wall) + 86400))

        r = _genuine(net, addr, q)
        sigs = [x for x in r.answer if x.rdtype == 46]
        data = [x for x in r.answer if x.rdtype != 46]
        if kind == "drop_proof":
            r.authority = [x for x in r.authority if x.rdtype not in (47, 50)
                           and not (x.rdtype == 46 and x.covers in (47, 50))]
        elif kind == "strip_sigs":
            r.answer = data
        elif kind in ("replay_wildcard", "replay_wildcard_proof"):
            rds = wnode.get_rdataset(1, qtype)
            if rds is None:
                return None
            rs = dns.rrset.from_rdata_list(qname, rds.ttl, list(rds))
            s = dns.rrset.RRset(qname, 1, 46, qtype)
            s.update(wnode.get_rdataset(1, 46, qtype))
            r.set_rcode(dns.rcode.NOERROR)
            r.flags |= dns.flags.AA
            r.answer = [rs, s]
            r.authority = []
            if kind == "replay_wildcard_proof":
                # the genuine proof of an expansion of the wildcard: for another name
                other = dns.message.make_query("zzz.wild." + o, qtype, want_dnssec=True)
                r.authority = _genuine(net, addr, other).authority
        elif kind == "forge_rdata":
            out = []
            for x in data:
                if x.rdtype == dns.rdatatype.A:
                    x = dns.rrset.from_text(x.name, x.ttl, "IN", "A", "203.0.113.66")
                out.append(x)
            r.answer = out + sigs
        elif kind == "foreign_sigs":
            r.answer = data + [sig_for(x, rogue, rogue_key) for x in data]
        elif kind in ("expired", "future"):
            times = ((int(wall) - 20 * 86400, int(wall) - 10 * 86400) if kind == "expired"
                     else (int(wall) + 10 * 86400, int(wall) + 20 * 86400))
            r.answer = data + [sig_for(x, inception=times[0], expiration=times[1])
                               for x in data]
        elif kind == "unsigned_aa":
            r.set_rcode(dns.rcode.NOERROR)
            r.flags |= dns.flags.AA
            r.answer = [dns.rrset.from_text(qname, 86400, "IN", dns.rdatatype.to_text(qtype),
                                            {A: "203.0.113.77", AAAA: "2001:db8::77",
                                             TXT: '"forged"', CNAME: "forged.example.net."
                                             }.get(qtype, "203.0.113.77"))]
            r.authority = []
        elif kind == "forge_dname_cname":
            r.answer = [dns.rrset.from_text(x.name, x.ttl, "IN", "CNAME", "www.example.com.")
                        if x.rdtype == CNAME else x for x in r.answer]
        elif kind == "swap_nsec":
            keep = [x for x in r.authority if x.rdtype not in (47, 50, 46)]
            if len(r.authority) != len(keep):
                r.authority = keep + proofs[o][hash(qname) % len(proofs[o])]
        return r.to_wire()

    return lambda q: mutate(q, addr)


def _resolve(net, anchor, wall, cache, v, name: str, qtype: int, deferred: bool = False):
    clock = FakeClock()
    v = v or Validator(load(anchor), LIMITS, wallclock=lambda: wall)
    it = itr.Iterator(W(name), qtype, 1, cache, parse_root_hints(root_hints()), clock,
                      limits=LIMITS, dnssec=v)
    if deferred:
        it.deferred = []
    res = drive(it, net, clock)
    if deferred:
        it.store_deferred()
    return res, it


def _run_steps(world, steps) -> int:
    """Runs ``steps`` (name, type, mutation, deferred) on one cache and one validator,
    checking every answer; returns how many answers were SECURE."""
    net, anchor, keys, wall, truth = world
    cache = Cache(1 << 22, LIMITS)
    v = Validator(load(anchor), LIMITS, wallclock=lambda: wall)
    secure = 0
    try:
        for name, qtype, kind, deferred in steps:
            for a in EXAMPLE:
                net.faults.pop(a, None)
                if kind != "none":
                    net.faults[a] = _attacker(world, kind, addr=a)
            res, _ = _resolve(net, anchor, wall, cache, v, name, qtype, deferred)
            check_secure(world, res, name, qtype)
            secure += res.security == SECURE
            # the same question again, the attacker gone: what the forged reply left in
            # the cache must not come back vouched for
            for a in EXAMPLE:
                net.faults.pop(a, None)
            res, _ = _resolve(net, anchor, wall, cache, v, name, qtype)
            check_secure(world, res, name, qtype)
    finally:
        for a in EXAMPLE:
            net.faults.pop(a, None)
    return secure


# ---- hand-written cases --------------------------------------------------------------------

@pytest.mark.parametrize("name,qtype,kind", [
    ("real.wild.example.com.", A, "replay_wildcard"),          # onto an existing name
    ("www.example.com.", A, "replay_wildcard"),
    ("x.wild.example.com.", A, "drop_proof"),                  # wildcard without its proof
    ("x.wild.example.com.", TXT, "drop_proof"),
    ("q.real.wild.example.com.", A, "replay_wildcard_proof"),  # wrong closest encloser
    ("deeper.real.wild.example.com.", A, "replay_wildcard_proof"),
    ("www.example.com.", A, "forge_rdata"),
    ("www.example.com.", A, "foreign_sigs"),
    ("www.example.com.", A, "expired"),
    ("www.example.com.", A, "future"),
    ("www.example.com.", A, "strip_sigs"),
    ("www.example.com.", A, "unsigned_aa"),
    ("host.dn.example.com.", A, "forge_dname_cname"),
    ("nope.example.com.", A, "swap_nsec"),
    ("empty.nonterminal.example.com.", A, "swap_nsec"),
])
def test_forged_reply_is_never_vouched_for(world, name, qtype, kind):
    for deferred in (False, True):
        _run_steps(world, [(name, qtype, kind, deferred)])


def test_the_genuine_answers_are_secure(world):
    """The oracle has something to compare with: every case of the genuine zones that
    exists is secure, and the resolver agrees with it."""
    net, anchor, keys, wall, truth = world
    assert sum(1 for v in truth.values() if v[2] == SECURE) >= 30
    assert _run_steps(world, [(n, t, "none", False) for n in NAMES for t in (A, TXT)]) >= 20


def test_wildcard_without_proof_is_bogus_and_not_cached_as_validated(world):
    """The reported fault: the proof-less wildcard answer is SERVFAIL, and the genuine
    answer with its proof is secure once the attacker has gone (the forged rrset neither
    sits in the cache as VALIDATED nor pins the failure past the bogus verdict)."""
    net, anchor, keys, wall, truth = world
    cache = Cache(1 << 22, LIMITS)
    v = Validator(load(anchor), LIMITS, wallclock=lambda: wall)
    for a in EXAMPLE:
        net.faults[a] = _attacker(world, "drop_proof", addr=a)
    try:
        res, it = _resolve(net, anchor, wall, cache, v, "x.wild.example.com.", A, True)
    finally:
        for a in EXAMPLE:
            net.faults.pop(a, None)
    assert res.security == 3 and res.rcode == 0
    e = cache.rrsets.lru.peek((W("x.wild.example.com."), A, 1))
    assert e is None or e.rank < 7
    v.bogus.clear()                    # the bogus verdict expired
    res, _ = _resolve(net, anchor, wall, cache, v, "x.wild.example.com.", A)
    assert res.security == SECURE
    check_secure(world, res, "x.wild.example.com.", A)


def test_secure_answer_lives_no_longer_than_its_signature(world):
    """RFC 4035 5.3.3: ``Result.valid_for`` is the time left on the signatures, and the
    message cache neither answers nor serves stale past it."""
    from resolver.response import store_answer
    net, anchor, keys, wall, truth = world
    late = wall + 7 * 86400 - 3600 - 100       # 100 s before example.com.'s sigs expire
    cache = Cache(1 << 22, LIMITS.replace(stale_window=86400))
    res, _ = _resolve(net, anchor, late, cache, None, "www.example.com.", A)
    assert res.security == SECURE
    assert 0 < res.valid_for <= 100 + 1
    e = store_answer(cache, b"k", res, W("www.example.com.") + b"\x00\x01\x00\x01", A,
                     False, False, False, 10.0)
    assert e.stale_until <= 10.0 + 101 and e.expires <= 10.0 + 101


def test_a_proven_denial_lives_no_longer_than_its_signatures(world):
    """The negative entry a secure NXDOMAIN leaves is VALIDATED until the proof's earliest
    signature expires, not for the SOA's negative TTL past it."""
    from resolver.cache import NXDOMAIN_TYPE
    net, anchor, keys, wall, truth = world
    late = wall + 7 * 86400 - 3600 - 100       # 100 s before example.com.'s sigs expire
    cache = Cache(1 << 22, LIMITS)
    res, it = _resolve(net, anchor, late, cache, None, "nope.example.com.", A)
    assert res.security == SECURE and res.rcode == 3
    e = cache.rrsets.lru.peek((W("nope.example.com."), NXDOMAIN_TYPE, 1))
    assert e is not None and e.rank == 7
    assert e.expires <= it.clock() + 101


def test_failure_caching_is_bounded_by_rfc9520():
    from resolver.daemon.config import ConfigError, limit_value
    assert limit_value("dnssec_bogus_ttl", 300) == 300
    for name in ("dnssec_bogus_ttl", "failure_ttl"):
        with pytest.raises(ConfigError):
            limit_value(name, 301)


# ---- generated cases -----------------------------------------------------------------------

STEP = st.tuples(st.sampled_from(NAMES), st.sampled_from(TYPES + [CNAME]),
                 st.sampled_from(MUTATIONS),
                 st.booleans())


# A few minutes of one core (its examples are many); a loaded machine may take several times
# that, still bounded.
@pytest.mark.timeout(1200)
@settings(max_examples=1500, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(STEP, min_size=1, max_size=4))
def test_generated_attacks_never_get_ad(world, steps):
    """Sequences of forged and genuine replies on one cache: every SECURE answer, fresh or
    from the cache, agrees with the genuine zones and verifies under the true keys."""
    _run_steps(world, steps)


# ---- the daemon's path ---------------------------------------------------------------------

P = "127.54"
DAEMON_EXAMPLE = (f"{P}.3.1", f"{P}.3.2", f"{P}.3.3")


@pytest.fixture(scope="module")
def sockets_world(world):
    """The signed world on loopback addresses, for a Resolver over real sockets. Its truth
    is the sans-IO world's: the same zones (other keys and server addresses, which no
    answer compared here holds)."""
    net, anchor, keys = signed_world(world[3], P)
    return net, anchor, keys, world[3], world[4]


# (the name servers' own addresses differ between the two worlds: not compared here)
DSTEP = st.tuples(st.sampled_from([n for n in NAMES if not n.startswith("ns1.")]), st.sampled_from(TYPES), st.sampled_from(MUTATIONS),
                  st.booleans(), st.booleans())


@pytest.fixture
def daemon_path(run, sockets_world):
    from scenario import FakeServers
    import resolver
    net = sockets_world[0]
    fs = FakeServers(net)
    port = run(fs.start(sorted(net.served)))
    try:
        yield fs, port
    finally:
        run(fs.stop())


DAEMON_LIMITS = LIMITS.replace(initial_rto=0.1, max_rto=0.2, max_query_time=2.0)


def _daemon(world, port, limits=DAEMON_LIMITS):
    import resolver
    net, anchor, keys, wall, truth = world
    return resolver.Resolver(root_hints(P), port=port, trust_anchor=anchor,
                             do_not_query_localhost=False, limits=limits)


def _attack(world, kind):
    net = world[0]
    for a in DAEMON_EXAMPLE:
        net.faults.pop(a, None)
        if kind != "none":
            net.faults[a] = _attacker(world, kind, DAEMON_EXAMPLE, a)


def _daemon_steps(run, world, port, steps) -> None:
    net = world[0]
    r = _daemon(world, port)

    async def ask(name, qtype, do, cd):
        return await ask_miss(r, name, qtype, do, cd)

    try:
        for name, qtype, kind, do, cd in steps:
            for a in DAEMON_EXAMPLE:
                net.faults.pop(a, None)
                if kind != "none":
                    net.faults[a] = _attacker(world, kind, DAEMON_EXAMPLE, a)
            for attempt in range(2):       # the forged reply, then a cached follow-up
                resp = run(ask(name, qtype, do, cd), timeout=10)
                _check_response(world, resp, name, qtype, do)
                for a in DAEMON_EXAMPLE:
                    net.faults.pop(a, None)
                do = not do
    finally:
        for a in DAEMON_EXAMPLE:
            net.faults.pop(a, None)


def _check_response(world, resp, name: str, qtype: int, do: bool) -> None:
    """The invariant on a response: AD only on the genuine zones' secure data, with the
    RRSIGs (verified) when DO was set."""
    if not resp.flags & dns.flags.AD:
        return
    res = itr.Result(resp.rcode(), [], [], security=SECURE)
    for rrset in resp.answer:
        for rd in rrset:
            res.answer.append((rrset.name.to_wire(), rrset.rdtype, 1, rrset.ttl,
                               rd.to_digestable()))
    check_secure(world, res, name, qtype, sigs_present=do)


@pytest.mark.parametrize("name,qtype,kind", [
    ("real.wild.example.com.", A, "replay_wildcard"),
    ("x.wild.example.com.", A, "drop_proof"),
    ("q.real.wild.example.com.", A, "replay_wildcard_proof"),
    ("www.example.com.", A, "forge_rdata"),
    ("www.example.com.", A, "unsigned_aa"),
    ("host.dn.example.com.", A, "forge_dname_cname"),
])
def test_daemon_path_never_vouches_for_forged_replies(run, sockets_world, daemon_path, name,
                                                      qtype, kind):
    fs, port = daemon_path
    for do, cd in ((True, False), (False, False), (True, True)):
        _daemon_steps(run, sockets_world, port, [(name, qtype, kind, do, cd)])


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(steps=st.lists(DSTEP, min_size=1, max_size=3))
def test_daemon_path_generated_attacks_never_get_ad(run, sockets_world, daemon_path, steps):
    """The daemon's miss path (Drive, the message cache, the deferred store on corenet's
    loop, DO/CD variants answered from the cache): every AD response holds the genuine
    zones' secure data, and its verified RRSIGs when DO was set."""
    fs, port = daemon_path
    _daemon_steps(run, sockets_world, port, steps)


ATTACKS = [("real.wild.example.com.", A, "replay_wildcard"),
           ("x.wild.example.com.", A, "drop_proof"),
           ("q.real.wild.n3.example.com.", A, "replay_wildcard_proof"),
           ("www.example.com.", A, "forge_rdata"),
           ("www.n3.example.com.", A, "unsigned_aa")]


@pytest.mark.parametrize("name,qtype,kind", ATTACKS)
def test_prefetch_under_attack_never_vouches(run, sockets_world, daemon_path, name, qtype,
                                             kind):
    """Every hit is due for prefetch: the refresh runs while the attacker answers, and what
    it leaves in the message cache is answered to the next clients."""
    import asyncio
    fs, port = daemon_path
    r = _daemon(sockets_world, port,
                DAEMON_LIMITS.replace(prefetch_fraction=1.0, prefetch_min_hits=1))

    async def go():
        first = await ask_miss(r, name, qtype)
        _check_response(sockets_world, first, name, qtype, True)
        _attack(sockets_world, kind)
        try:
            prefetches = r.stats.prefetches
            for _ in range(3):
                resp = await ask_miss(r, name, qtype)
                _check_response(sockets_world, resp, name, qtype, True)
                for _ in range(100):       # the refresh in the background
                    if not any(e.prefetching for e in r.message_table.values()):
                        break
                    await asyncio.sleep(0.01)
            assert r.stats.prefetches > prefetches, "no refresh ran under the attack"
        finally:
            _attack(sockets_world, "none")
        for do in (True, False):
            _check_response(sockets_world, await ask_miss(r, name, qtype, do), name, qtype, do)

    run(go(), timeout=30)


@pytest.mark.parametrize("name,qtype,kind", ATTACKS)
def test_serve_stale_under_attack_serves_only_what_was_proven(run, sockets_world, daemon_path,
                                                               name, qtype, kind):
    """Entries live 1 s and are served stale for an hour when resolving fails: a forged
    reply makes the resolution bogus (SERVFAIL), and when the servers then stop answering
    what is served stale is the genuine answer proven before, never the forged data."""
    import asyncio
    fs, port = daemon_path
    net = sockets_world[0]
    r = _daemon(sockets_world, port, DAEMON_LIMITS.replace(max_ttl=1, stale_window=3600))

    async def go():
        first = await ask_miss(r, name, qtype)
        _check_response(sockets_world, first, name, qtype, True)
        await asyncio.sleep(1.2)
        try:
            # servers that stop answering: the stale answer is the proven one, AD and all
            for a in DAEMON_EXAMPLE:
                net.faults[a] = "timeout"
            resp = await ask_miss(r, name, qtype, True)
            assert r.stats.stale_answers >= 1 and resp.rcode() != dns.rcode.SERVFAIL
            _check_response(sockets_world, resp, name, qtype, True)
            # a forged reply: bogus, so SERVFAIL (not a cue for stale data) or the proven
            # answer, never the forged data with AD
            _attack(sockets_world, kind)
            for do in (True, False, True):
                _check_response(sockets_world, await ask_miss(r, name, qtype, do), name, qtype,
                                do)
        finally:
            _attack(sockets_world, "none")

    run(go(), timeout=30)


@pytest.mark.parametrize("name,qtype,kind", ATTACKS)
def test_shared_cache_carries_only_what_was_proven(run, sockets_world, daemon_path,
                                                   redis_shared, name, qtype, kind):
    """One process resolves under attack and writes what it answered to Redis; another,
    the attacker gone, reads it from there: neither says AD on data it was not proven."""
    fs, port = daemon_path
    attacked, other = _daemon(sockets_world, port), _daemon(sockets_world, port)
    attacked.shared, other.shared = redis_shared(), redis_shared()

    async def go():
        try:
            _attack(sockets_world, kind)
            for do in (True, False):
                _check_response(sockets_world, await ask_miss(attacked, name, qtype, do), name,
                                qtype, do)
            _attack(sockets_world, "none")
            for do in (True, False):
                _check_response(sockets_world, await ask_miss(other, name, qtype, do), name,
                                qtype, do)
        finally:
            _attack(sockets_world, "none")
            await attacked.shared.close()
            await other.shared.close()

    run(go(), timeout=30)
