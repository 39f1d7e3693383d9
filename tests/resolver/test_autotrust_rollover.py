"""An RFC 5011 rollover of the root's key seen by a Resolver with ``auto_trust_anchor_file``:
the signed fake Internet (``signed_net``) behind real sockets on loopback, the root zone
re-signed at each step of the rollover, the probes run at chosen times of a fake wall clock
(the hold-downs are 30 days, as RFC 5011 says)."""
from __future__ import annotations

import asyncio
import time

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

import resolver
from resolver import operations
from resolver.dnssec import autotrust_file
from resolver.dnssec.autotrust import REVOKE, State, Timers
from resolver.limits import Limits
from scenario import FakeClock, FakeServers, root_hints
from signed_net import signed_world

P = "127.58"
ROOT = dns.name.root
IN = dns.rdataclass.IN
DAY = 86400
LIMITS = Limits(exploration=0.0, initial_rto=0.1, max_rto=0.2, max_query_time=3.0)
ALG = dns.dnssec.Algorithm.ECDSAP256SHA256


def new_key():
    priv = ec.generate_private_key(ec.SECP256R1())
    return priv, dns.dnssec.make_dnskey(priv.public_key(), ALG, flags=257)


def revoked(pair):
    return pair[0], pair[1].replace(flags=pair[1].flags | REVOKE)


def resign_root(net, published, data_signer, extra_dnskey_signers, wall):
    """The root zone with the DNSKEY rrset ``published``, its data signed by
    ``data_signer`` and its DNSKEY rrset by ``extra_dnskey_signers`` too (signatures valid
    for 200 days from ``wall``, so both the validator's clock and the probes' fake one are
    inside them)."""
    z = net.zones[ROOT]
    with z.writer() as txn:
        for n, node in list(z.nodes.items()):
            for rds in list(node.rdatasets):
                if rds.rdtype in (dns.rdatatype.RRSIG, dns.rdatatype.NSEC,
                                  dns.rdatatype.DNSKEY):
                    txn.delete(n, rds.rdtype, rds.covers)
        txn.add(dns.rrset.from_rdata_list(ROOT, 3600, [k for _, k in published]))
    dns.dnssec.sign_zone(z, keys=[data_signer], add_dnskey=False, inception=int(wall) - 3600,
                         lifetime=200 * DAY)
    dnskeys = dns.rrset.from_rdata_list(ROOT, 3600, [k for _, k in published])
    with z.writer() as txn:
        for priv, key in extra_dnskey_signers:
            sig = dns.dnssec.sign(dnskeys, priv, ROOT, key, inception=int(wall) - 3600,
                                  lifetime=200 * DAY)
            txn.add(ROOT, 3600, sig)


@pytest.fixture
def world(run, tmp_path):
    wall = time.time()
    net, _anchor, keys = signed_world(wall, P)
    fs = FakeServers(net)
    port = run(fs.start(sorted(net.served)))
    try:
        yield net, keys, port, wall
    finally:
        run(fs.stop())


def make_resolver(port, path, clock):
    r = resolver.Resolver(root_hints(P), port=port, auto_trust_anchor_file=path,
                          do_not_query_localhost=False, limits=LIMITS)
    r.auto_anchors.wallclock = clock
    r.auto_anchors.attach(r.dnssec)
    return r


async def ask(r, name, rdtype="A"):
    q = dns.message.make_query(name, rdtype, want_dnssec=True)
    return await r.resolve_message(q)


def probe(run, r, clock, days=1):
    """Advances the fake clock ``days`` days, a probe a day (each one due)."""
    for _ in range(days):
        clock.advance(DAY)
        assert run(r.auto_anchors.probe_due(r.resolve_message)) == 1


def test_default_resolver_has_no_auto_anchor(run, world):
    net, keys, port, wall = world
    r = resolver.Resolver(root_hints(P), port=port, do_not_query_localhost=False,
                          limits=LIMITS, trust_anchor=dns.rrset.from_rdata_list(
                              ROOT, 3600, [keys["."][1]]))
    assert r.auto_anchors is None


def test_full_rollover_ends_trusting_only_the_new_key(run, world, tmp_path):
    net, keys, port, wall = world
    k1, k2 = keys["."], new_key()
    path = tmp_path / "root.key"
    path.write_text(f". 3600 IN DNSKEY {k1[1].to_text()}\n")     # a plain initial anchor
    resign_root(net, [k1], k1, [], wall)
    clock = FakeClock(wall)
    r = make_resolver(port, path, clock)
    try:
        tag1, tag2 = dns.dnssec.key_id(k1[1]), dns.dnssec.key_id(k2[1])
        assert run(r.auto_anchors.probe_due(r.resolve_message)) == 1
        assert autotrust_file.read(path).states() == {tag1: State.VALID}
        assert run(ask(r, "www.example.com.")).flags & dns.flags.AD

        # the new KSK is published, the DNSKEY rrset signed by both keys
        resign_root(net, [k1, k2], k1, [k2], wall)
        operations.flush(r)                     # the cached DNSKEY rrset has expired
        probe(run, r, clock)
        assert autotrust_file.read(path).states() == {tag1: State.VALID, tag2: State.ADDPEND}
        probe(run, r, clock, 28)
        assert r.dnssec.anchors[b"\x00"].dnskey == [k1[1]]     # pending: not trusted yet
        probe(run, r, clock, 3)
        assert autotrust_file.read(path).states() == {tag1: State.VALID, tag2: State.VALID}
        assert set(r.dnssec.anchors[b"\x00"].dnskey) == {k1[1], k2[1]}

        # the old key is revoked (self-signed), the data signed by the new key
        rev = revoked(k1)
        resign_root(net, [rev, k2], k2, [rev], wall)
        operations.flush(r)
        probe(run, r, clock)
        states = autotrust_file.read(path).states()
        assert states == {dns.dnssec.key_id(rev[1]): State.REVOKED, tag2: State.VALID}
        assert r.dnssec.anchors[b"\x00"].dnskey == [k2[1]]

        # then withdrawn; after the delete hold-down it is forgotten
        resign_root(net, [k2], k2, [], wall)
        operations.flush(r)
        probe(run, r, clock, 31)
        assert autotrust_file.read(path).states() == {tag2: State.VALID}
        assert r.dnssec.anchors[b"\x00"].dnskey == [k2[1]]

        # names under the root validate with the new key alone
        operations.flush(r)
        m = run(ask(r, "www.example.com."))
        assert m.flags & dns.flags.AD and m.answer
        # and a resolver started afresh from the state file does too
        r2 = make_resolver(port, path, clock)
        assert run(ask(r2, "www.example.com.")).flags & dns.flags.AD
        run(r2.close())
    finally:
        run(r.close())


def test_a_forged_dnskey_rrset_never_makes_a_key_trusted(run, world, tmp_path):
    net, keys, port, wall = world
    k1, forged = keys["."], new_key()
    path = tmp_path / "root.key"
    path.write_text(f". 3600 IN DNSKEY {k1[1].to_text()}\n")
    resign_root(net, [k1], k1, [], wall)
    clock = FakeClock(wall)
    r = make_resolver(port, path, clock)
    try:
        run(r.auto_anchors.probe_due(r.resolve_message))
        # an attacker's root answers a DNSKEY rrset with its key, signed by its key only
        resign_root(net, [k1, forged], forged, [], wall)
        operations.flush(r)
        probe(run, r, clock, 40)
        assert autotrust_file.read(path).states() == {dns.dnssec.key_id(k1[1]): State.VALID}
        assert r.dnssec.anchors[b"\x00"].dnskey == [k1[1]]
        assert r.auto_anchors.failures == 40
    finally:
        run(r.close())


def test_probes_run_on_their_timer(run, world, tmp_path):
    """Once started, the probes run at once and again when the query interval (here half
    the DNSKEY TTL: permit-small-holddown) is over."""
    net, keys, port, wall = world
    k1, k2 = keys["."], new_key()
    path = tmp_path / "root.key"
    path.write_text(f". 3600 IN DNSKEY {k1[1].to_text()}\n")
    resign_root(net, [k1, k2], k1, [k2], wall)
    z = net.zones[ROOT]
    with z.writer() as txn:                     # a 2-second DNSKEY TTL: a probe a second
        rds = z.get_node(ROOT).get_rdataset(IN, dns.rdatatype.DNSKEY)
        txn.replace(ROOT, dns.rrset.from_rdata_list(ROOT, 2, list(rds)))
        sigs = z.get_node(ROOT).get_rdataset(IN, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
        txn.delete(ROOT, dns.rdatatype.RRSIG, dns.rdatatype.DNSKEY)
    dnskeys = dns.rrset.from_rdata_list(ROOT, 2, list(rds))
    with z.writer() as txn:
        for signer in (k1, k2):
            txn.add(ROOT, 2, dns.dnssec.sign(dnskeys, signer[0], ROOT, signer[1],
                                             inception=int(wall) - 3600, lifetime=DAY))

    async def go():
        r = resolver.Resolver(root_hints(P), port=port, auto_trust_anchor_file=path,
                              auto_trust_timers=Timers(add_holddown=1,
                                                       permit_small_holddown=True),
                              do_not_query_localhost=False, limits=LIMITS)
        await asyncio.sleep(0.3)
        assert r.auto_anchors.probes == 0       # nothing before start_trust_probes()
        r.start_trust_probes()
        try:
            for _ in range(100):                # at most 10 s
                if r.auto_anchors.probes >= 3 and \
                        k2[1] in r.dnssec.anchors[b"\x00"].dnskey:
                    break
                await asyncio.sleep(0.1)
            return r.auto_anchors.probes, r.dnssec.anchors[b"\x00"].dnskey
        finally:
            await r.close()

    probes, trusted = run(go(), timeout=20)
    assert probes >= 3 and set(trusted) == {k1[1], k2[1]}
    assert sorted(autotrust_file.read(path).states().values()) == [State.VALID, State.VALID]


def test_resolvers_sharing_a_state_file_probe_once_and_trust_alike(run, world, tmp_path):
    """Two resolvers (as the daemon's workers) on one state file: the one whose probe
    comes first rewrites the file; the other takes that state instead of probing, and
    trusts the new key when the first one does."""
    net, keys, port, wall = world
    k1, k2 = keys["."], new_key()
    path = tmp_path / "root.key"
    path.write_text(f". 3600 IN DNSKEY {k1[1].to_text()}\n")
    resign_root(net, [k1, k2], k1, [k2], wall)
    clock = FakeClock(wall)
    a, b = make_resolver(port, path, clock), make_resolver(port, path, clock)
    try:
        for day in range(32):
            clock.advance(DAY)
            assert run(a.auto_anchors.probe_due(a.resolve_message)) == 1
            assert run(b.auto_anchors.probe_due(b.resolve_message)) == 0
            assert b.auto_anchors.points[0].tp.states() == a.auto_anchors.points[0].tp.states()
            if day == 0:
                assert b.dnssec.anchors[b"\x00"].dnskey == [k1[1]]
        assert b.auto_anchors.probes == 0
        assert set(b.dnssec.anchors[b"\x00"].dnskey) == {k1[1], k2[1]}
    finally:
        run(a.close())
        run(b.close())
