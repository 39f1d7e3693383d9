"""``harden-algo-downgrade``: every key algorithm a zone's DS names must sign its DNSKEY set
and each of its rrsets; off (the default, RFC 6840 5.11), one algorithm that validates is
enough.

The world is ``signed_net.signed_world`` with example.com. signed twice, by an ECDSA P-256
key (algorithm 13) and an Ed25519 key (algorithm 15), com. holding a DS for each (for the
first only in ``one_ds``). An on-path attacker between the resolver and example.com.'s
servers strips the RRSIGs of one algorithm from their replies, from every rrset or from one
type only, leaving genuine data with genuine signatures of the other algorithm."""
from __future__ import annotations

import time

import dns.message
import dns.rdatatype
import pytest

from resolver import iterator as itr
from resolver.cache import Cache
from resolver.dnssec import BOGUS, SECURE, Validator
from resolver.dnssec.trust_anchor import load
from resolver.hints import parse_root_hints
from scenario import FakeClock, W, drive, root_hints
from signed_net import signed_world
from test_ad_invariant import LIMITS

A, TXT, DNSKEY, RRSIG = 1, 16, 48, 46
ECDSA, ED25519 = 13, 15
PREFIX = "10.7"
EXAMPLE_SERVERS = (f"{PREFIX}.3.1", f"{PREFIX}.3.2")


@pytest.fixture(scope="module")
def both_ds():
    wall = time.time()
    net, anchor, _ = signed_world(wall, PREFIX, second_algorithm={"example.com.": True})
    return net, anchor, wall


@pytest.fixture(scope="module")
def one_ds():
    wall = time.time()
    net, anchor, _ = signed_world(wall, PREFIX, second_algorithm={"example.com.": False})
    return net, anchor, wall


def _strip(net, addr: str, algorithm: int, covered: int | None):
    """A fault for ``addr``: its genuine reply without the RRSIGs of ``algorithm`` (over
    ``covered`` only, or over every type)."""
    def fault(q: dns.message.Message) -> bytes:
        del net.faults[addr]
        try:
            wire = net.answer(addr, q.to_wire())
        finally:
            net.faults[addr] = fault
        r = dns.message.from_wire(wire)
        for section in (r.answer, r.authority):
            for rrset in list(section):
                if rrset.rdtype != RRSIG:
                    continue
                if covered is not None and rrset.covers != covered:
                    continue
                keep = [rd for rd in rrset if rd.algorithm != algorithm]
                if len(keep) == len(rrset):
                    continue
                section.remove(rrset)
                if keep:
                    copy = rrset.copy()
                    copy.clear()
                    for rd in keep:
                        copy.add(rd)
                    section.append(copy)
        return r.to_wire()
    return fault


def _ask(world, harden: bool, name: str, qtype: int, strip=None):
    net, anchor, wall = world
    for addr in EXAMPLE_SERVERS:
        net.faults.pop(addr, None)
        if strip is not None:
            net.faults[addr] = _strip(net, addr, *strip)
    try:
        v = Validator(load(anchor), LIMITS, wallclock=lambda: wall)
        v.harden_algo_downgrade = harden
        clock = FakeClock()
        it = itr.Iterator(W(name), qtype, 1, Cache(1 << 22, LIMITS),
                          parse_root_hints(root_hints(PREFIX)), clock, limits=LIMITS, dnssec=v)
        return drive(it, net, clock)
    finally:
        for addr in EXAMPLE_SERVERS:
            net.faults.pop(addr, None)


@pytest.mark.parametrize("harden", [False, True])
def test_both_algorithms_present_is_secure_either_way(both_ds, harden):
    res = _ask(both_ds, harden, "www.example.com.", A)
    assert res.rcode == 0 and res.security == SECURE, res.reason
    algorithms = {r[4][2] for r in res.answer if r[1] == RRSIG}
    assert algorithms == {ECDSA, ED25519}


@pytest.mark.parametrize("algorithm", [ECDSA, ED25519])
@pytest.mark.parametrize("covered", [None, A, DNSKEY], ids=["every type", "A", "DNSKEY"])
def test_one_algorithm_stripped(both_ds, algorithm, covered):
    """Off: the other algorithm's signatures validate it (RFC 6840 5.11). On: the DS
    names both algorithms, so the answer is bogus, whichever of them is missing and
    whether it is missing over the answer or over the key set alone."""
    res = _ask(both_ds, False, "www.example.com.", A, (algorithm, covered))
    assert res.rcode == 0 and res.security == SECURE, res.reason
    res = _ask(both_ds, True, "www.example.com.", A, (algorithm, covered))
    assert res.security == BOGUS, (res.rcode, res.security)
    assert f"algorithm {algorithm}" in res.reason and "harden-algo-downgrade" in res.reason, \
        res.reason


def test_an_algorithm_the_ds_does_not_name_is_not_needed(one_ds):
    """Only the algorithms of the DS are required: the zone's second key, which its parent
    does not name, may sign or not."""
    for harden in (False, True):
        res = _ask(one_ds, harden, "www.example.com.", A, (ED25519, None))
        assert res.rcode == 0 and res.security == SECURE, (harden, res.reason)
        res = _ask(one_ds, harden, "www.example.com.", A, (ECDSA, None))
        assert res.security == BOGUS, harden


def test_a_denial_needs_both_algorithms_too(both_ds):
    """The NSEC records and the SOA of an NXDOMAIN are the zone's rrsets as well."""
    res = _ask(both_ds, False, "nothing-here.example.com.", TXT, (ED25519, None))
    assert res.rcode == 3 and res.security == SECURE, res.reason
    res = _ask(both_ds, True, "nothing-here.example.com.", TXT, (ED25519, None))
    assert res.security == BOGUS, (res.rcode, res.reason)
    res = _ask(both_ds, True, "nothing-here.example.com.", TXT)
    assert res.rcode == 3 and res.security == SECURE, res.reason


def test_the_resolver_and_the_daemon_s_setting_reach_the_validator(both_ds, tmp_path):
    """``Resolver(harden_algo_downgrade=True)``, and the daemon's setting from its TOML and
    from an unbound.conf's line (the default off, as Unbound's)."""
    import asyncio

    import resolver
    from resolver.daemon import config
    from resolver.daemon.server import make_resolver

    _, anchor, _ = both_ds
    (tmp_path / "corenet.toml").write_text("harden-algo-downgrade = true\n")
    (tmp_path / "unbound.conf").write_text("server:\n  harden-algo-downgrade: yes\n")
    (tmp_path / "default.conf").write_text("server:\n  verbosity: 1\n")

    async def go():
        made = [resolver.Resolver(root_hints(PREFIX), trust_anchor=anchor,
                                  harden_algo_downgrade=True),
                resolver.Resolver(root_hints(PREFIX), trust_anchor=anchor)]
        made += [make_resolver(config.build(str(tmp_path / f))) for f in
                 ("corenet.toml", "unbound.conf", "default.conf")]
        seen = [r.dnssec.harden_algo_downgrade for r in made]
        for r in made:
            await r.close()
        return seen

    assert asyncio.run(go()) == [True, False, True, True, False]


def test_an_rfc_5011_probe_needs_every_trusted_algorithm_with_it_on():
    """The auto trust anchor's probe (``auto-trust-anchor-file``): a key set that only one
    of its two trusted algorithms signs is used with the setting off and refused with it
    on, as Unbound's probe is."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    import dns.dnssec
    import dns.name
    import dns.rdataclass
    import dns.rrset

    from resolver.dnssec.autotrust import State, TrackedKey, TrustPoint

    root, now = dns.name.root, 1_700_000_000
    p1 = ec.generate_private_key(ec.SECP256R1())
    k1 = dns.dnssec.make_dnskey(p1.public_key(), ECDSA, flags=257)
    p2 = ed25519.Ed25519PrivateKey.generate()
    k2 = dns.dnssec.make_dnskey(p2.public_key(), ED25519, flags=257)
    rrset = dns.rrset.from_rdata_list(root, 172800, [k1, k2])

    def signed_by(*pairs):
        sigs = dns.rrset.RRset(root, dns.rdataclass.IN, RRSIG, DNSKEY)
        for priv, key in pairs:
            sigs.add(dns.dnssec.sign(rrset, priv, root, key, inception=now - 3600,
                                     lifetime=14 * 86400), 172800)
        return sigs

    def probe(sigs, every):
        tp = TrustPoint(root, keys=[TrackedKey(k, State.VALID, ttl=172800) for k in (k1, k2)])
        return tp.probe(rrset, sigs, now, every_algorithm=every)

    both, one = signed_by((p1, k1), (p2, k2)), signed_by((p1, k1))
    assert probe(both, False).verified and probe(both, True).verified
    assert probe(one, False).verified
    res = probe(one, True)
    assert not res.verified and f"algorithm {ED25519}" in res.reason, res.reason
