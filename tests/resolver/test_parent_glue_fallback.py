"""The parent's glue as a fallback: the child zone gives its name servers other addresses
than the parent's glue (its own, authoritative A records, which replace the glue in the
cache), and those do not answer. The addresses the referral gave are tried before the
question fails, as Unbound falls back on the parent side's addresses. On the fake network:
example.com.'s own zone puts ns1 and ns2 at addresses where nothing answers."""
from __future__ import annotations

import dns.name
import dns.rdata

from resolver import iterator as itr
from resolver.cache import Cache
from resolver.hints import parse_root_hints
from resolver.limits import Limits
from scenario import FakeClock, W, drive, root_hints, small_internet

LIMITS = Limits(exploration=0.0)
A = 1
DEAD = {"ns1": "10.0.3.91", "ns2": "10.0.3.92"}


def world():
    net = small_internet()
    z = net.zones[dns.name.from_text("example.com.")]
    with z.writer() as txn:
        for host, addr in DEAD.items():
            n = dns.name.from_text(host, z.origin)
            txn.delete(n, "A")
            txn.add(n, 3600, dns.rdata.from_text("IN", "A", addr))
    for addr in DEAD.values():
        net.faults[addr] = "timeout"
    return net


def test_the_parents_glue_answers_when_the_childs_addresses_do_not():
    net = world()
    cache = Cache(1 << 22, LIMITS)
    clock = FakeClock()

    def ask(name):
        it = itr.Iterator(W(name), A, 1, cache, parse_root_hints(root_hints()), clock,
                          limits=LIMITS)
        before = len(net.log)
        return drive(it, net, clock), net.log[before:]

    # the child's own addresses for its servers, learned from the child (AA): they
    # replace the referral's glue in the cache
    for host, addr in DEAD.items():
        res, _log = ask(f"{host}.example.com.")
        assert [r[4] for r in res.answer if r[1] == A] == [bytes(map(int, addr.split(".")))]
    res, log = ask("www.example.com.")
    assert res.rcode == 0, res.reason
    assert [r[4] for r in res.answer if r[1] == A] == [bytes([192, 0, 2, 1])]
    asked = [a for a, q, _t in log if q == "www.example.com."]
    assert set(asked[:-1]) <= set(DEAD.values()) and set(DEAD.values()) <= set(asked)
    assert asked[-1] in ("10.0.3.1", "10.0.3.2")       # the glue, after the child's failed


def test_without_a_referral_in_the_cache_nothing_else_is_tried():
    """The fallback is the referral's glue, kept with the parent's NS set: once that set
    is replaced by the child's own (an authoritative NS answer), there is none, and the
    question fails as before."""
    net = world()
    cache = Cache(1 << 22, LIMITS)
    clock = FakeClock()

    def ask(name, qtype=A):
        it = itr.Iterator(W(name), qtype, 1, cache, parse_root_hints(root_hints()), clock,
                          limits=LIMITS)
        before = len(net.log)
        return drive(it, net, clock), net.log[before:]

    for host in DEAD:
        ask(f"{host}.example.com.")
    ask("example.com.", 2)              # the child's NS set replaces the parent's
    res, log = ask("www.example.com.")
    assert res.rcode == 2
    assert {a for a, q, _t in log if q == "www.example.com."} <= set(DEAD.values())


def test_a_server_named_in_another_zone_falls_back_on_that_zones_glue():
    """glueless.com.'s server is ns.other.net.: net.'s referral to other.net. gives it the
    address 10.0.4.1 as glue, other.net. itself (authoritative) says 10.0.4.91, where
    nothing answers. The question for www.glueless.com. goes to the glue's address once
    the child's has failed (RFC 1034 5.3.3; Deckard's iter_pcdiff)."""
    net = small_internet()
    z = net.zones[dns.name.from_text("other.net.")]
    with z.writer() as txn:
        n = dns.name.from_text("ns", z.origin)
        txn.delete(n, "A")
        txn.add(n, 3600, dns.rdata.from_text("IN", "A", "10.0.4.91"))
    net.faults["10.0.4.91"] = "timeout"
    cache = Cache(1 << 22, LIMITS)
    clock = FakeClock()
    it = itr.Iterator(W("www.glueless.com."), A, 1, cache, parse_root_hints(root_hints()),
                      clock, limits=LIMITS)
    res = drive(it, net, clock)
    assert res.rcode == 0, res.reason
    assert [r[4] for r in res.answer if r[1] == A] == [bytes([203, 0, 113, 5])]
    asked = [a for a, q, _t in net.log if q == "www.glueless.com."]
    assert "10.0.4.91" in asked and asked[-1] == "10.0.4.1"
