"""Cache entries are invisible to the cyclic collector: a full cache gives a collector pass
nothing to walk, so under a flood of new names the collector's passes stay short. Their
byte accounting still matches what they hold."""
from __future__ import annotations

import gc
import sys

import dns.message
import dns.rrset

from resolver.cache.answer import parse_query
from resolver.cache.store import Cache, RRsetEntry, store_entry, store_message, store_records
from resolver.wire.codec import MsgEntry

SOA = (b"\x07example\x03com\x00", 6, 1, 3600, b"\x02ns\xc0\x00\x05admin\xc0\x00" + bytes(20))


def _response(i: int) -> tuple[bytes, bytes]:
    q = dns.message.make_query(f"n{i}.example.com.", "A", use_edns=True)
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text(f"n{i}.example.com.", 300, "IN", "A", "192.0.2.1"))
    return q.to_wire(), r.to_wire()


def _fill(cache: Cache, first: int, count: int) -> None:
    """What misses leave in the cache: an answer, an address rrset (signed every third
    time) and a negative entry per name."""
    for i in range(first, first + count):
        q, r = _response(i)
        store_message(cache.messages, parse_query(q)[0], r, 1000.0)
        owner = b"\x05n%04d" % (i % 10000) + b"\x07example\x03com\x00"
        sigs = [(owner, 46, 1, 300, bytes([0, 1]) + bytes(80))] if i % 3 == 0 else []
        store_records(cache.rrsets, [(owner, 1, 1, 300, bytes([192, 0, 2, i % 250]))],
                      3, 1000.0, sigs)
        cache.rrsets.store_negative(b"\x05x%04d" % (i % 10000) + b"\x07example\x03com\x00",
                                    1, 1, True, [SOA], 3, 1000.0)


def _tracked() -> int:
    gc.collect()                                  # dnspython's garbage of _response
    return len(gc.get_objects())


def test_entries_are_not_tracked_by_the_collector():
    e = RRsetEntry(b"\x03www\x00", 1, 1, 300, 300.0, 3, [b"\x01\x02\x03\x04"], [], None, [SOA])
    m = MsgEntry(_response(1)[1], 1.0, 0.0)
    assert not gc.is_tracked(e) and not gc.is_tracked(m)
    assert type(e.rdatas) is tuple and type(e.rrsigs) is tuple and type(e.soa) is tuple
    # its tuples leave the collector's sight as they are stored, not at its next pass
    assert not gc.is_tracked(e.rdatas)
    assert not gc.is_tracked(e.soa) and not gc.is_tracked(e.soa[0])
    key = (b"\x03www\x00", 1, 1)
    cache = Cache(1 << 20)
    store_entry(cache.rrsets, e, key)
    assert not gc.is_tracked(key)
    # a tuple holding something the collector must see stays in its sight
    odd = RRsetEntry(b"\x03www\x00", 1, 1, 300, 300.0, 3, [b"x"], [], None, [[b"list"]])
    assert gc.is_tracked(odd.soa)


def test_a_growing_cache_adds_no_tracked_objects():
    cache = Cache(64 * 1024 * 1024)
    _fill(cache, 0, 200)                          # the stores' own structures are made
    before = _tracked()
    _fill(cache, 200, 3000)
    grown = _tracked() - before
    stored = len(cache.messages.lru) + len(cache.rrsets.lru)
    assert stored >= 9000 and cache.evictions == 0
    # 3,000 answers and 6,000 rrsets: one tracked object per entry would be 9,000 more
    assert grown < 50, f"{grown} more tracked objects for {stored} more entries"


def _held(e: RRsetEntry) -> int:
    """What an entry holds, from sys.getsizeof (owners in record tuples are the entry's
    or the zone's, shared, and not counted)."""
    n = sys.getsizeof(e) + sys.getsizeof(e.name)
    if e.rdatas:
        n += sys.getsizeof(e.rdatas) + sum(sys.getsizeof(rd) for rd in e.rdatas)
    for recs in (e.rrsigs, e.soa, e.proofs or ()):
        if recs:
            n += sys.getsizeof(recs) + sum(sys.getsizeof(r) + sys.getsizeof(r[4]) for r in recs)
    return n


def test_entry_sizes_count_what_entries_hold():
    """The accounting is what the objects take, rounded up as the allocator rounds (at most
    15 bytes per object): neither under nor grossly over."""
    owner = b"\x03www\x07example\x03com\x00"
    sig = (owner, 46, 1, 300, bytes(100))
    cases = [RRsetEntry(owner, 1, 1, 300, 300.0, 3, [bytes(4)]),
             RRsetEntry(owner, 1, 1, 300, 300.0, 3, [bytes(4)] * 5, [sig]),
             RRsetEntry(owner, -1, 1, 300, 300.0, 3, [], [], 3, [SOA])]
    proved = RRsetEntry(owner, 1, 1, 300, 300.0, 3, [bytes(4)])
    proved.proofs = (sig, sig)
    cases.append(proved)
    for e in cases:
        held = _held(e)
        objects = 2 + (len(e.rdatas) + 1 if e.rdatas else 0) + sum(
            2 * len(r) + 1 for r in (e.rrsigs, e.soa, e.proofs or ()) if r)
        assert held <= e.size <= held + 16 * objects + 64, (e, held, e.size)
    m = MsgEntry(_response(1)[1], 1.0, 0.0)
    held = sys.getsizeof(m) + sys.getsizeof(m.wire) + sys.getsizeof(m.ttl_offsets)
    assert held <= m.size <= held + 3 * 15
