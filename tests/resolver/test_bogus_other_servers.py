"""Bogus data from one server of a zone, genuine data from another (RFC 4035 5.5): the
validator asks the zone's other servers before it calls the answer bogus, remembers the bad
server for the zone (the next question asks the good one first), and a zone whose every
server is bad still ends in SERVFAIL (BOGUS, with its extended error) within the question's
budgets. On the signed fake network (``signed_net``); one server of example.com. (or of
com.) rewrites its replies."""
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
from resolver.limits import Limits
from scenario import FakeClock, W, drive, root_hints
from signed_net import signed_world

LIMITS = Limits(exploration=0.0)
A, TXT, DS, DNSKEY, RRSIG = 1, 16, 43, 48, 46


@pytest.fixture(scope="module")
def world():
    wall = time.time()
    net, anchor, keys = signed_world(wall)
    return net, anchor, wall


def _genuine(net, addr, q):
    """What ``addr`` answers without its fault (the question logged once, as asked)."""
    fault = net.faults.pop(addr, None)
    try:
        return dns.message.from_wire(net.answer(addr, q.to_wire()))
    finally:
        net.log.pop()
        if fault is not None:
            net.faults[addr] = fault


def corrupt(net, addr, rdtype):
    """A fault for ``addr``: its genuine replies, with every RRSIG over ``rdtype`` broken
    (its signature's last octet flipped)."""
    def fault(q):
        r = _genuine(net, addr, q)
        r.answer = broken(r.answer)
        r.authority = broken(r.authority)
        return r.to_wire()

    def broken(section):
        out = []
        for rrset in section:
            if rrset.rdtype == RRSIG and rrset.covers == rdtype:
                bad = dns.rrset.RRset(rrset.name, rrset.rdclass, RRSIG, rdtype)
                for rd in rrset:
                    sig = rd.signature[:-1] + bytes([rd.signature[-1] ^ 0xFF])
                    bad.add(rd.replace(signature=sig), rrset.ttl)
                rrset = bad
            out.append(rrset)
        return out
    return fault


class Run:
    def __init__(self, world, limits=LIMITS):
        self.net, anchor, wall = world
        self.limits = limits
        self.cache = Cache(1 << 22, limits)
        self.validator = Validator(load(anchor), limits, wallclock=lambda: wall)
        self.clock = FakeClock()

    def ask(self, name, qtype):
        it = itr.Iterator(W(name), qtype, 1, self.cache, parse_root_hints(root_hints()),
                          self.clock, limits=self.limits, dnssec=self.validator)
        before = len(self.net.log)
        res = drive(it, self.net, self.clock)
        return res, it, self.net.log[before:]


def first_asked(world, name, qtype, asked=None):
    """The server a fresh resolver asks first (for ``name``/``qtype``, or for the question
    ``asked`` on the way to it): the one made bad."""
    qname, qt = asked or (name, qtype)
    _res, _it, log = Run(world).ask(name, qtype)
    return next(a for a, q, t in log if q == qname and t == dns.rdatatype.to_text(qt))


@pytest.fixture
def net(world):
    yield world[0]
    world[0].faults.clear()


def test_a_bad_signature_from_one_server_is_answered_by_the_other(world, net):
    bad = first_asked(world, "www.example.com.", A)
    good = ({"10.0.3.1", "10.0.3.2"} - {bad}).pop()
    net.faults[bad] = corrupt(net, bad, A)
    run = Run(world)
    res, it, log = run.ask("www.example.com.", A)
    assert res.rcode == 0 and res.security == SECURE, res.reason
    asked = [a for a, q, t in log if (q, t) == ("www.example.com.", "A")]
    assert asked == [bad, good]
    assert run.validator.stats.retries == 1
    # remembered: the next question of the zone goes to the good server, not the bad one
    res, it, log = run.ask("txt.example.com.", TXT)
    assert res.security == SECURE
    assert [a for a, q, t in log if q == "txt.example.com."] == [good]


def test_val_max_restart_bounds_the_other_servers_asked(world, net):
    """``val-max-restart`` (Unbound's name and default, 5) caps the restarts, apart from
    the servers a zone's question may try: at 0 the bad server's data is the verdict and
    the good server is never asked."""
    assert LIMITS.val_max_restart == 5
    bad = first_asked(world, "www.example.com.", A)
    net.faults[bad] = corrupt(net, bad, A)
    run = Run(world, LIMITS.replace(val_max_restart=0))
    res, it, log = run.ask("www.example.com.", A)
    assert res.security == BOGUS and res.ede == 6, res.reason
    assert [a for a, q, t in log if (q, t) == ("www.example.com.", "A")] == [bad]
    assert run.validator.stats.retries == 0


def test_a_bad_dnskey_from_one_server_is_fetched_from_the_other(world, net):
    bad = first_asked(world, "www.example.com.", A, ("example.com.", DNSKEY))
    net.faults[bad] = corrupt(net, bad, DNSKEY)
    res, it, log = Run(world).ask("www.example.com.", A)
    assert res.rcode == 0 and res.security == SECURE, res.reason
    keys = [a for a, q, t in log if (q, t) == ("example.com.", "DNSKEY")]
    assert keys[0] == bad and len(set(keys)) == 2


def test_a_bad_ds_from_one_parent_server_is_fetched_from_the_other(world, net):
    """The DS comes with com.'s referral to example.com. (the minimised question for
    example.com./A); its signature broken there, the DS is asked of com.'s other server."""
    bad = first_asked(world, "www.example.com.", A, ("example.com.", A))
    good = ({"10.0.1.1", "10.0.1.2"} - {bad}).pop()
    net.faults[bad] = corrupt(net, bad, DS)
    run = Run(world)
    res, it, log = run.ask("www.example.com.", A)
    assert res.rcode == 0 and res.security == SECURE, res.reason
    assert [a for a, q, t in log if (q, t) == ("example.com.", "DS")] == [good]
    assert run.validator.stats.retries == 1


def test_an_answer_stripped_of_its_signatures_is_asked_of_the_other(world, net):
    """A server of a signed zone whose answer lacks the RRSIGs (Unbound's DNSSEC lameness,
    which ``disable-dnssec-lame-check: no`` checks for): the zone's other server is asked,
    and the answer is secure."""
    bad = first_asked(world, "www.example.com.", A)
    good = ({"10.0.3.1", "10.0.3.2"} - {bad}).pop()

    def unsigned(q):
        r = _genuine(net, bad, q)
        r.answer = [x for x in r.answer if x.rdtype != RRSIG]
        r.authority = [x for x in r.authority if x.rdtype != RRSIG]
        return r.to_wire()

    net.faults[bad] = unsigned
    run = Run(world)
    res, it, log = run.ask("www.example.com.", A)
    assert res.rcode == 0 and res.security == SECURE, res.reason
    assert [a for a, q, t in log if (q, t) == ("www.example.com.", "A")] == [bad, good]
    assert run.validator.stats.retries == 1


def test_a_bad_denial_from_one_server_is_asked_of_the_other(world, net):
    bad = first_asked(world, "nope.example.com.", A)

    def no_proof(q):        # NXDOMAIN without its NSEC records
        r = _genuine(net, bad, q)
        r.authority = [x for x in r.authority if x.rdtype != 47
                       and not (x.rdtype == RRSIG and x.covers == 47)]
        return r.to_wire()

    net.faults[bad] = no_proof
    res, it, log = Run(world).ask("nope.example.com.", A)
    assert res.rcode == 3 and res.security == SECURE, res.reason


def test_every_server_bad_ends_bogus_within_the_budget(world, net):
    for addr in ("10.0.3.1", "10.0.3.2"):
        net.faults[addr] = corrupt(net, addr, A)
    run = Run(world)
    res, it, log = run.ask("www.example.com.", A)
    assert res.security == BOGUS and res.ede == 6, res.reason
    asked = [a for a, q, t in log if (q, t) == ("www.example.com.", "A")]
    assert sorted(asked) == ["10.0.3.1", "10.0.3.2"]      # each once, then given up
    assert it.queries <= LIMITS.max_upstream_queries
    # the verdict is kept: asked again at once, nothing more is sent
    res, it, log = run.ask("www.example.com.", A)
    assert res.security == BOGUS and log == []


def test_a_zone_with_one_server_is_not_asked_again(world, net):
    """n3.example.com. has one server: nothing else to ask, so bogus after one attempt."""
    net.faults["10.0.3.3"] = corrupt(net, "10.0.3.3", A)
    run = Run(world)
    res, it, log = run.ask("www.n3.example.com.", A)
    assert res.security == BOGUS
    assert [a for a, q, t in log if q == "www.n3.example.com."] == ["10.0.3.3"]
    assert run.validator.stats.retries == 0
