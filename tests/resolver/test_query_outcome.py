"""One set of query rules: the library (``Resolver.resolve``) and the daemon (``response.begin``,
``finish`` and the hit paths) read the same :class:`resolver.response.Outcome` and so give the
same outcome for the same cache state and the same resolution Result; the prefetch decision is
taken by one function, which every hit path follows when its limits change.

No network: the resolution's Result is handed to both sides (the library's ``_result`` is
replaced, the daemon's ``finish`` takes it as an argument), so each case pins what the policy
makes of it, not what an authority said.
"""
from __future__ import annotations

import asyncio
import struct
import time

import dns.edns
import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.resolver
import pytest

import resolver
from resolver import iterator as it
from resolver import response
from resolver.cache.answer import parse_query
from resolver.daemon.admission import ALLOWED_ACL, FrontDoor
from resolver.daemon.tcp_framer import DNSFrameReceiver
from resolver.limits import DEFAULT
from resolver.zones import LocalZone, Zones
from scenario import FakeClock

NAME = "www.example.com."
A_RDATA = bytes([192, 0, 2, 1])
EDE_EXPIRED, EDE_NO_REACHABLE = 7, 22


def _wire(name: str) -> bytes:
    return dns.name.from_text(name).to_wire()


def _answer(name: str = NAME, ttl: int = 300) -> it.Result:
    return it.Result(it.NOERROR, [(_wire(name), 1, 1, ttl, A_RDATA)], [])


def _resolver(clock=None, **kw) -> resolver.Resolver:
    r = resolver.Resolver([("a.root.invalid.", "127.0.0.1")], validate=False, **kw)
    if clock is not None:
        r.clock = clock
    return r


def _query(name: str = NAME, edns: bool = False) -> bytes:
    q = dns.message.make_query(name, "A", use_edns=0 if edns else False)
    q.id = 0x4242
    return q.to_wire()


def daemon(r: resolver.Resolver, q: bytes, res: it.Result | None) -> dns.message.Message:
    """The daemon's engine path for ``q``: a hit, or ``begin`` then ``finish`` with ``res``."""
    out = r.resolve_cached(q)
    if out is None:
        miss = response.begin(r, q)
        out = miss if type(miss) is bytes else response.finish(r, q, miss, res)
    return dns.message.from_wire(out)


def library(r: resolver.Resolver, res: it.Result | None, name: str = NAME):
    """``Resolver.resolve`` for ``name``/A, resolving to ``res`` (None: it must not
    resolve): its Answer, or the exception it raises."""

    async def result(qname, qtype, qclass, tcp=False, tried=None, lifetime=None):
        assert res is not None, "the library resolved what the daemon took from the cache"
        return res

    r._result = result
    try:
        return asyncio.run(r.resolve(name, "A"))
    except dns.exception.DNSException as exc:
        return exc


def _records(msg: dns.message.Message):
    """The answer section, TTLs aside (a library hit's age by whole seconds since the entry
    was stored, the daemon's by the same rule, but the two are read at different times)."""
    return sorted((rrset.name.to_text(), rd.to_text()) for rrset in msg.answer for rd in rrset)


def same_answer(m: dns.message.Message, a) -> None:
    """The daemon's response ``m`` and the library's Answer ``a`` answer alike."""
    assert isinstance(a, dns.resolver.Answer), a
    assert m.rcode() == a.response.rcode() == dns.rcode.NOERROR
    assert _records(m) == _records(a.response) and _records(m)


def _ede(m: dns.message.Message):
    return [(o.code, o.text) for o in m.options if isinstance(o, dns.edns.EDEOption)]


# ---- the same outcome on both sides ----------------------------------------------------------
def test_an_answer_then_hits_are_the_same_on_both_sides():
    clock = FakeClock()
    r = _resolver(clock)
    same_answer(daemon(r, _query(), _answer()), library(r, None))   # the daemon's stored entry
    assert r.stats.cache_hits == 1
    clock.advance(100)
    m, a = daemon(r, _query(), None), library(r, None)
    same_answer(m, a)
    assert m.answer[0].ttl == 200
    assert r.stats.cache_hits == 3
    # the library's miss stores what the daemon's engine then hits
    a = library(r, _answer("b.example.com."), "b.example.com.")
    same_answer(daemon(r, _query("b.example.com."), None), a)
    assert r.stats.cache_hits == 4


def test_stale_answers_are_the_same_on_both_sides():
    clock = FakeClock()
    r = _resolver(clock)
    daemon(r, _query(), _answer())
    clock.advance(400)                     # expired, within the stale window
    failed = it.Result(it.SERVFAIL, reason="every server refused")
    m, a = daemon(r, _query(), failed), library(r, failed)
    same_answer(m, a)
    assert m.answer[0].ttl == a.rrset.ttl == DEFAULT.stale_answer_ttl
    assert r.stats.stale_answers == 2
    clock.advance(DEFAULT.stale_window + 10)      # past the window: a failure on both sides
    m, a = daemon(r, _query(), failed), library(r, failed)
    assert m.rcode() == dns.rcode.SERVFAIL and isinstance(a, dns.resolver.NoNameservers)
    assert "every server refused" in str(a)


def test_bogus_is_servfail_with_its_extended_error_on_both_sides():
    r = _resolver(FakeClock())
    bogus = it.Result(it.NOERROR, _answer().answer, [], reason="signature expired",
                      security=it.BOGUS, ede=EDE_EXPIRED)
    m, a = daemon(r, _query(edns=True), bogus), library(r, bogus)
    assert m.rcode() == dns.rcode.SERVFAIL and not m.answer
    assert _ede(m) == [(EDE_EXPIRED, "signature expired")]
    assert isinstance(a, dns.resolver.NoNameservers) and "signature expired" in str(a)
    assert r.stats.servfail == 2 and not r.message_table      # nothing bogus is cached
    o = response.resolved(r, parse_query(_query(edns=True))[0],
                          _wire(NAME) + b"\x00\x01\x00\x01", 1, bogus)
    assert (o.kind, o.rcode, o.ede, o.reason) == (response.OUTCOME_BOGUS, dns.rcode.SERVFAIL,
                                                   EDE_EXPIRED, "signature expired")


def test_a_failure_carries_its_extended_error_on_both_sides():
    r = _resolver(FakeClock())
    failed = it.Result(it.SERVFAIL, reason="no server reachable", ede=EDE_NO_REACHABLE)
    m, a = daemon(r, _query(edns=True), failed), library(r, failed)
    assert m.rcode() == dns.rcode.SERVFAIL
    assert _ede(m) == [(EDE_NO_REACHABLE, "no server reachable")]
    assert isinstance(a, dns.resolver.NoNameservers) and "no server reachable" in str(a)
    timed_out = it.Result(it.SERVFAIL, reason="out of time", time_exhausted=True)
    assert isinstance(library(r, timed_out), dns.resolver.LifetimeTimeout)
    refused = it.Result(it.REFUSED)
    m, a = daemon(r, _query(), refused), library(r, refused)
    assert m.rcode() == dns.rcode.REFUSED
    assert isinstance(a, dns.resolver.NoNameservers) and "REFUSED" in str(a)
    assert not r.message_table


def test_without_ede_a_failure_is_answered_without_its_extended_error(tmp_path):
    """``ede`` off (Unbound's ``ede: no``, read from an unbound.conf): the same SERVFAILs,
    no EDE option; the library still says why."""
    from resolver.daemon.config import build, engine_attributes

    conf = tmp_path / "unbound.conf"
    conf.write_text("server:\n  ede: no\n")
    assert engine_attributes(build(str(conf)))["ede"] is False
    r = _resolver(FakeClock())
    r.ede = False
    bogus = it.Result(it.NOERROR, _answer().answer, [], reason="signature expired",
                      security=it.BOGUS, ede=EDE_EXPIRED)
    failed = it.Result(it.SERVFAIL, reason="no server reachable", ede=EDE_NO_REACHABLE)
    for res in (bogus, failed):
        m, a = daemon(r, _query(edns=True), res), library(r, res)
        assert m.rcode() == dns.rcode.SERVFAIL and _ede(m) == [] and m.edns == 0
        assert isinstance(a, dns.resolver.NoNameservers) and res.reason in str(a)


def test_local_zones_answer_alike_on_both_sides():
    zones = Zones(local=[LocalZone("lan.", "static", (
        "lan. 600 SOA ns.lan. admin.lan. 1 3600 600 86400 120", "router.lan. 60 A 192.168.1.1"))])
    r = _resolver(FakeClock(), zones=zones)
    m, a = daemon(r, _query("router.lan."), None), library(r, None, "router.lan.")
    same_answer(m, a)
    assert m.answer[0].ttl == a.rrset.ttl == 60
    assert r.stats.local_answers == 2
    m, a = daemon(r, _query("nothing.lan."), None), library(r, None, "nothing.lan.")
    assert m.rcode() == dns.rcode.NXDOMAIN and isinstance(a, dns.resolver.NXDOMAIN)
    o = response.lookup(r, _wire("router.lan."), 1, 1)
    assert o.kind == response.OUTCOME_LOCAL and o.rcode == dns.rcode.NOERROR
    assert r.stats.local_answers == 5 and not r.message_table


# ---- one prefetch decision ---------------------------------------------------------------------
class _Owner:
    def __init__(self):
        self.hits, self.queries = [], []

    def send_frames(self, pieces):
        self.hits += pieces[1::2]

    def hold(self, q):
        self.queries.append(q)          # a miss, kept
        return False


def _c_hit_path(table, fraction: float, q: bytes) -> str:
    """What the daemon's C hit path (the front door, asked by the TCP framer) does with
    ``q``: "hit" or "engine"."""
    owner = _Owner()
    framer = DNSFrameReceiver(None, 2, "big", 65535, 1024)
    framer.setup(owner, FrontDoor(table, None, fraction))
    framer.who = ALLOWED_ACL
    frame = struct.pack("!H", len(q)) + q
    buf = framer.get_buffer(len(frame))
    buf[:len(frame)] = frame
    framer.buffer_updated(len(frame))
    return "hit" if owner.hits else "engine" if owner.queries else "none"


@pytest.mark.parametrize("fraction, due", [(0.1, True), (0.01, False)])
def test_every_hit_path_follows_the_prefetch_limits(fraction, due):
    """An entry with 20 s of its 300 s TTL left is in the last 10 % but not the last 1 %:
    the C hit path leaves it to the engine exactly when the engine's hit (``cached``) and
    the library's hit refresh it."""
    r = _resolver()                         # the C hit path reads the monotonic clock
    r.set_limits(DEFAULT.replace(prefetch_fraction=fraction, prefetch_min_hits=1))
    refreshed = []
    r.refresh = lambda key, e: refreshed.append(key)
    q = _query()
    daemon(r, q, _answer())
    e = r.message_table[parse_query(q)[0]]
    e.expires = time.monotonic() + 20
    assert _c_hit_path(r.message_table, fraction, q) == ("engine" if due else "hit")
    assert r.resolve_cached(q) is not None
    assert isinstance(library(r, None), dns.resolver.Answer)
    assert len(refreshed) == (2 if due else 0)
    e.prefetching = True                  # a refresh under way: the C path answers
    assert _c_hit_path(r.message_table, fraction, q) == "hit"


def test_prefetch_min_hits_counts_every_hit_alike():
    """The hit count the prefetch decision reads is the entry's, whichever path hit it."""
    clock = FakeClock()
    r = _resolver(clock)
    r.set_limits(DEFAULT.replace(prefetch_min_hits=3))
    refreshed = []
    r.refresh = lambda key, e: refreshed.append(key)
    daemon(r, _query(), _answer())
    clock.advance(290)                     # in the last 10 % of 300 s
    assert r.resolve_cached(_query()) is not None
    assert isinstance(library(r, None), dns.resolver.Answer)
    assert not refreshed                  # two hits
    assert r.resolve_cached(_query()) is not None
    assert refreshed == [parse_query(_query())[0]]


def test_the_variant_bits_of_the_daemon_key_and_the_library_key_agree():
    """A query without EDNS, DO or CD shares the library's entry: one variant function."""
    r = _resolver(FakeClock())
    library(r, _answer())
    assert list(r.message_table) == [parse_query(_query())[0]]
    o = response.lookup(r, _wire(NAME), 1, 1)
    assert o.kind == response.OUTCOME_HIT and o.key == parse_query(_query())[0]
    assert parse_query(_query(edns=True))[0][-1] == 1
