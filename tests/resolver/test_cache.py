"""resolver.cache: byte bounds, LRU, trust ranks, negative TTLs, server facts."""
from __future__ import annotations

import gc
import random
import tracemalloc

import dns.rrset
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver import cache as C
from resolver.limits import Limits
from resolver.cache.answer import parse_query
from resolver.wire.codec import MsgEntry, build_query, build_response


def W(text: str) -> bytes:
    import dns.name
    return dns.name.from_text(text).to_wire()


def response_for(i: int, ttl: int = 300) -> tuple[bytes, bytes]:
    """(cache key, response wire) for host<i>.example.com A, built without dnspython (fast)."""
    name = W(f"host{i}.example.com.")
    q = build_query(i & 0xFFFF, name, 1, edns=True)
    recs = [(name, 1, 1, ttl, bytes([10, i % 250, i % 7, k])) for k in range(3)]
    return parse_query(q)[0], build_response(0, 0x8180, name + b"\x00\x01\x00\x01", recs,
                                             [], [], edns=True)


def test_message_cache_filled_far_past_its_bound_stays_bounded_in_bytes_and_memory():
    bound = 64 * 1024
    mc = C.MessageCache(bound)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        stored = 0
        for i in range(12000):             # ~1.3 MB of entries into a 64 KiB cache
            key, wire = response_for(i)
            mc.store(key, wire, 0.0)
            stored += len(wire)
            assert mc.lru.bytes <= bound
        gc.collect()
        used = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert stored > 10 * bound
    assert mc.lru.evictions > 0 and len(mc.lru) < 12000
    # The accounting follows the real heap use (test_cache_memory.py measures it closely).
    assert used < 1.3 * bound, used
    # The newest entries survive, the oldest were evicted.
    assert response_for(11999)[0] in mc.table and response_for(0)[0] not in mc.table


def test_a_message_read_since_it_was_stored_outlives_an_unread_older_one():
    probe = C.MessageCache(1 << 20)
    probe.store(*response_for(10), 0.0)
    per = probe.lru.bytes
    mc = C.MessageCache(4 * per + per // 2)
    keys = [response_for(i)[0] for i in range(10, 16)]
    for i in range(10, 14):
        mc.store(*response_for(i), 0.0)
    assert mc.lru.get(keys[0]).referenced               # a hit marks, reorders nothing
    mc.store(*response_for(14), 0.0)
    assert keys[0] in mc.table and keys[1] not in mc.table
    assert not mc.table[keys[0]].referenced              # spared once: the mark is spent
    for i in (15, 16, 17):              # queued after it: the three stored before it go
        mc.store(*response_for(i), 0.0)
    assert keys[0] in mc.table and mc.lru.evictions == 4
    mc.store(*response_for(18), 0.0)
    assert keys[0] not in mc.table and mc.lru.evictions == 5


def test_the_eviction_queue_stays_bounded_and_lets_go_of_what_it_held():
    import weakref

    class V:
        size = 100
    lru = C.ByteLRU(10**6)
    first = V()
    gone = weakref.ref(first)
    lru.put(b"k0", first)
    del first
    for i in range(100_000):             # replacements and pops leave stale pairs behind
        key = b"k%d" % (i % 3)
        lru.put(key, V())
        if i % 2:
            lru.pop(key)
    assert 1 <= len(lru) <= 3 and lru.queued <= 4 * len(lru) + 128
    assert gone() is None                # the queue's stale pair did not keep it alive
    for k in list(lru.data):
        lru.pop(k)
    assert lru.bytes == 0 and len(lru) == 0
    lru.put(b"again", V())
    lru.clear()
    assert lru.bytes == 0 and lru.queued == 0 and len(lru) == 0


def test_lru_keeps_recently_used_entries():
    class V:
        size = 100
    probe = C.ByteLRU(10**6)
    probe.put(b"k0", V())
    per = probe.bytes                          # one entry with its key, as the LRU counts it
    assert per >= 100 + len(b"k0")
    lru = C.ByteLRU(9 * per + per // 2)
    for k in range(9):
        lru.put(b"k%d" % k, V())
    assert lru.get(b"k0") is not None          # touch the oldest
    lru.put(b"k9", V())
    lru.put(b"k10", V())
    assert b"k0" in lru.data and b"k1" not in lru.data
    assert lru.bytes <= lru.max_bytes and lru.evictions >= 1
    big = type("Big", (), {"size": 20 * per})()
    lru.put(b"big", big)                        # larger than the whole cache: not stored
    assert b"big" not in lru.data


def rrset_entry(name, rdtype, rank, rdatas, now=0.0, ttl=300):
    return C.RRsetEntry(W(name), rdtype, 1, ttl, now + ttl, rank, rdatas)


def test_glue_never_overrides_an_authoritative_answer_but_the_reverse_holds():
    rc = C.RRsetCache(1 << 20)
    assert rc.store(rrset_entry("ns.example.", 1, C.AUTH_ANSWER, [b"\x0a\x00\x00\x01"]))
    assert not rc.store(rrset_entry("ns.example.", 1, C.GLUE, [b"\x0a\x00\x00\x66"]))
    assert rc.get(W("NS.example."), 1, 1, 1.0).rdatas == (b"\x0a\x00\x00\x01",)
    rc2 = C.RRsetCache(1 << 20)
    rc2.store(rrset_entry("ns.example.", 1, C.GLUE, [b"\x0a\x00\x00\x66"]))
    assert rc2.store(rrset_entry("ns.example.", 1, C.AUTH_ANSWER, [b"\x0a\x00\x00\x01"]))
    assert rc2.get(W("ns.example."), 1, 1, 1.0).rank == C.AUTH_ANSWER
    # Once the better data has expired, lower-ranked data may replace it.
    assert rc.store(rrset_entry("ns.example.", 1, C.GLUE, [b"\x0a\x00\x00\x66"], now=400.0))


def test_store_records_groups_rrsets_with_min_ttl_clamp_and_rrsigs():
    lim = Limits(max_ttl=1000)
    rc = C.RRsetCache(1 << 20, lim)
    recs = [(W("a.example."), 1, 1, 5000, b"\x01\x01\x01\x01"),
            (W("A.example."), 1, 1, 2000, b"\x02\x02\x02\x02"),
            (W("a.example."), 1, 1, 2000, b"\x02\x02\x02\x02")]
    sig = (W("a.example."), 46, 1, 2000, b"\x00\x01" + b"\x00" * 30)
    rc.store_records(recs, C.AUTH_ANSWER, 0.0, [sig])
    e = rc.get(W("a.example."), 1, 1, 0.0)
    assert e.ttl == 1000 and len(e.rdatas) == 2 and e.rrsigs == (sig,)
    assert rc.get(W("a.example."), 1, 1, 1001.0) is None
    assert [r[3] for r in e.records(400.0)] == [600, 600]


_OWNERS = [W("a.example."), W("A.example."), W("b.example.")]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_OWNERS), st.sampled_from([1, 28]),
                          st.sampled_from([1, 3]), st.integers(0, 5000),
                          st.sampled_from([b"\x01", b"\x02", b"\x03"])), min_size=1, max_size=6))
def test_store_records_stores_what_grouping_says(recs):
    """Each rrset of the records (one owner case aside, type, class) is stored once with
    the smallest TTL, clamped, and its distinct rdatas in order: whether the records are one
    rrset or several."""
    lim = Limits(min_ttl=10, max_ttl=1000)
    rc = C.RRsetCache(1 << 20, lim)
    rc.store_records(recs, C.AUTH_ANSWER, 0.0)
    want: dict = {}
    for owner, rdtype, rdclass, ttl, rd in recs:
        g = want.setdefault((owner.lower(), rdtype, rdclass), [owner, ttl, []])
        g[1] = min(g[1], ttl)
        if rd not in g[2]:
            g[2].append(rd)
    assert len(rc.lru.data) == len(want)
    for (name, rdtype, rdclass), (owner, ttl, rdatas) in want.items():
        e = rc.get(name, rdtype, rdclass, 0.0)
        assert e.name == owner and e.rdatas == tuple(rdatas)
        assert e.ttl == min(max(ttl, 10), 1000) and e.rank == C.AUTH_ANSWER


def test_negative_ttl_is_min_of_soa_ttl_and_minimum_and_capped():
    soa = dns.rrset.from_text("example.", 900, "IN", "SOA", "ns. h. 1 2 3 4 120")
    soa_rec = (W("example."), 6, 1, 900, soa[0].to_digestable())
    rc = C.RRsetCache(1 << 20, Limits(max_negative_ttl=100))
    out = rc.store_negative(W("nx.example."), 1, 1, True, [soa_rec], C.AUTH_AUTHORITY, 0.0)
    assert out[0][3] == 100
    rc2 = C.RRsetCache(1 << 20)
    out = rc2.store_negative(W("nx.example."), 1, 1, True, [soa_rec], C.AUTH_AUTHORITY, 0.0)
    assert out[0][3] == 120
    # NXDOMAIN covers every type; NODATA only its own.
    assert rc2.get_negative(W("NX.example."), 28, 1, 10.0).negative == 3
    rc2.store_negative(W("nd.example."), 16, 1, False, [soa_rec], C.AUTH_AUTHORITY, 0.0)
    assert rc2.get_negative(W("nd.example."), 16, 1, 10.0).negative == 0
    assert rc2.get_negative(W("nd.example."), 1, 1, 10.0) is None
    assert rc2.get_negative(W("nx.example."), 1, 1, 121.0) is None


def _chains(lru) -> dict:
    """The name index of ``lru`` as {rrset key: entry}, walked down each owner's chain."""
    out = {}
    for name, e in lru.names.items():
        while e is not None:
            key = (name, e.rdtype, e.rdclass)
            assert key not in out
            out[key] = e
            e = e.sibling
    return out


def test_rrset_name_index_follows_every_store_eviction_and_removal():
    """The rrset cache finds its entries through its name index: the index must hold
    exactly the entries of the LRU, each under its owner, through stores, replacements,
    evictions, removals and clearing."""
    soa = dns.rrset.from_text("example.", 900, "IN", "SOA", "ns. h. 1 2 3 4 120")
    soa_rec = (W("example."), 6, 1, 900, soa[0].to_digestable())
    rc = C.RRsetCache(20_000)
    lru = rc.lru
    assert lru.names == {} and C.MessageCache(1 << 20).lru.names is None
    rng = random.Random(3)
    for i in range(400):
        name = W(f"h{rng.randrange(60)}.example.")
        if rng.random() < 0.3:
            rc.store_negative(name, 1, 1, True, [soa_rec], C.AUTH_AUTHORITY, 0.0)
        else:
            rc.store(rrset_entry(f"h{rng.randrange(60)}.example.", rng.choice([1, 2, 28]),
                                 C.AUTH_ANSWER, [bytes(4)] * rng.randrange(1, 4)))
        if i % 50 == 49:
            lru.pop(next(iter(lru.data)))
        assert _chains(lru) == dict(lru.data)
    assert lru.evictions > 0
    assert any(k[1] == C.NXDOMAIN_TYPE for k in lru.data)
    held = next(k for k in lru.data if k[1] == 1)
    assert rc.get(held[0].upper(), 1, 1, 0.0) is lru.data[held]
    absent = W("absent.example.")
    assert rc.get(absent, 1, 1, 0.0) is None and absent not in lru.names
    rc.store(rrset_entry("absent.example.", 1, C.AUTH_ANSWER, [bytes(4)]))
    assert rc.get(absent, 1, 1, 0.0) is lru.names[absent]
    assert rc.get(absent, 28, 1, 0.0) is None
    rc.lru.clear()
    assert lru.names == {}


def test_rrset_cache_spares_an_entry_read_since_it_was_stored():
    """Second chance: a read marks the entry instead of reordering the LRU, and the
    eviction that reaches a marked entry queues it again at the recent end instead."""
    probe = C.RRsetCache(1 << 20)
    probe.store(rrset_entry("h0.example.", 1, C.AUTH_ANSWER, [bytes(4)]))
    per = probe.lru.bytes
    rc = C.RRsetCache(4 * per + per // 2)
    for k in range(4):
        rc.store(rrset_entry(f"h{k}.example.", 1, C.AUTH_ANSWER, [bytes(4)]))
    assert rc.get(W("h0.example."), 1, 1, 0.0).referenced
    assert not rc.lru.data[(W("h1.example."), 1, 1)].referenced
    rc.store(rrset_entry("h4.example.", 1, C.AUTH_ANSWER, [bytes(4)]))
    owners = {k[0] for k in rc.lru.data}
    assert owners == {W(f"h{k}.example.") for k in (2, 3, 4, 0)}
    assert not rc.lru.data[(W("h0.example."), 1, 1)].referenced
    rc.store(rrset_entry("h5.example.", 1, C.AUTH_ANSWER, [bytes(4)]))
    assert W("h2.example.") not in rc.lru.names and W("h0.example.") in rc.lru.names


def test_stale_entries_only_within_the_window():
    rc = C.RRsetCache(1 << 20, Limits(stale_window=100))
    rc.store(rrset_entry("a.example.", 1, C.AUTH_ANSWER, [b"\x01\x01\x01\x01"]))
    assert rc.get(W("a.example."), 1, 1, 350.0) is None
    assert rc.get(W("a.example."), 1, 1, 350.0, stale_ok=True) is not None
    assert rc.get(W("a.example."), 1, 1, 401.0, stale_ok=True) is None
    e = MsgEntry(response_for(1, ttl=60)[1], 0.0, 100.0)
    assert e.expires == 60.0 and e.stale_until == 160.0


def test_infra_unreachable_server_is_held_down_then_ranked_behind_measured_ones():
    """Without this, a never-measured address costs nothing and is tried first again as
    soon as its hold-down ends."""
    lim = Limits(exploration=0.0)
    infra = C.InfraCache(lim)
    infra.record_rtt("10.0.0.1", 0.300)
    infra.record_unreachable("2001:db8::1", 1.0)
    addrs = ["2001:db8::1", "10.0.0.1"]
    assert infra.choose(addrs, 2.0) == "10.0.0.1"
    assert infra.choose(addrs, 2.0 + lim.server_holddown) == "10.0.0.1"
    assert infra.choose(["2001:db8::1", "2001:db8::2"], 2.0) == "2001:db8::2"  # never tried


def test_infra_prefers_fast_servers_backs_off_dead_ones_and_explores():
    lim = Limits(exploration=0.0)
    infra = C.InfraCache(lim)
    for _ in range(5):
        infra.record_rtt("10.0.0.1", 0.050)
        infra.record_rtt("10.0.0.2", 0.005)
    assert infra.choose(["10.0.0.1", "10.0.0.2"], 0.0) == "10.0.0.2"
    rto = infra.rto("10.0.0.2")
    infra.record_timeout("10.0.0.2", 1.0)
    assert infra.rto("10.0.0.2") == min(2 * rto, lim.max_rto)
    infra.record_timeout("10.0.0.2", 1.0)       # second in a row: held down
    assert infra.choose(["10.0.0.1", "10.0.0.2"], 2.0) == "10.0.0.1"
    # After the hold-down it is considered again (and wins once it answers fast).
    later = 2.0 + lim.server_holddown
    infra.record_rtt("10.0.0.2", 0.004)
    assert infra.choose(["10.0.0.1", "10.0.0.2"], later) == "10.0.0.2"
    # All held down: still choose one rather than nothing.
    for a in ("10.0.0.1", "10.0.0.2"):
        infra.record_timeout(a, later)
        infra.record_timeout(a, later)
    assert infra.choose(["10.0.0.1", "10.0.0.2"], later) in ("10.0.0.1", "10.0.0.2")

    explorer = C.InfraCache(Limits(exploration=0.5), rng=random.Random(7))
    explorer.record_rtt("fast", 0.001)
    explorer.record_rtt("slow", 0.2)
    picks = {explorer.choose(["fast", "slow"], 0.0) for _ in range(200)}
    assert picks == {"fast", "slow"}


def test_infra_asks_servers_never_measured_in_their_order_even_when_exploring():
    """Exploration is for servers already measured: a server never asked is tried first,
    in the order given (a stub's nameserver list, a forward zone's addresses), however
    often the random pick would fire."""
    explorer = C.InfraCache(Limits(exploration=1.0), rng=random.Random(3))
    assert {explorer.choose(["10.0.0.1", "10.0.0.2", "10.0.0.3"], 0.0)
            for _ in range(50)} == {"10.0.0.1"}
    explorer.record_rtt("10.0.0.1", 0.001)
    assert {explorer.choose(["10.0.0.1", "10.0.0.2", "10.0.0.3"], 0.0)
            for _ in range(50)} == {"10.0.0.2"}
    explorer.record_rtt("10.0.0.2", 0.002)
    explorer.record_rtt("10.0.0.3", 0.003)
    picks = {explorer.choose(["10.0.0.1", "10.0.0.2", "10.0.0.3"], 0.0) for _ in range(200)}
    assert picks == {"10.0.0.1", "10.0.0.2", "10.0.0.3"}


def test_infra_lameness_and_edns_memory_expire_after_the_host_ttl():
    infra = C.InfraCache(Limits(infra_host_ttl=900.0))
    infra.mark_lame("10.0.0.1", W("Example."), 100.0)
    assert infra.is_lame("10.0.0.1", W("example."), 100.0)
    assert infra.is_lame("10.0.0.1", W("example."), 999.0)
    assert not infra.is_lame("10.0.0.1", W("other."), 100.0)
    assert not infra.is_lame("10.0.0.1", W("example."), 1000.0)
    assert infra.info("10.0.0.1").lame == {}        # the expired mark is gone
    assert infra.edns("10.0.0.9", 0.0)
    infra.set_edns("10.0.0.9", False, 100.0)
    assert not infra.edns("10.0.0.9", 999.0)
    assert infra.edns("10.0.0.9", 1000.0)


def test_failures_expire_and_flush_forgets_by_name():
    cache = C.Cache(1 << 20, Limits(failure_ttl=5))
    cache.remember_failure((W("loop.example."), 1, 1), "cycle", 0.0)
    assert cache.failure((W("loop.example."), 1, 1), 4.0) == "cycle"
    assert cache.failure((W("loop.example."), 1, 1), 6.0) is None
    key, wire = response_for(3)
    cache.messages.store(key, wire, 0.0)
    cache.rrsets.store(rrset_entry("host3.example.com.", 1, C.AUTH_ANSWER, [b"\x01\x01\x01\x01"]))
    cache.rrsets.store(rrset_entry("other.example.com.", 1, C.AUTH_ANSWER, [b"\x01\x01\x01\x01"]))
    cache.flush(W("HOST3.example.com."))
    assert key not in cache.messages.table
    assert cache.rrsets.get(W("host3.example.com."), 1, 1, 0.0) is None
    assert cache.rrsets.get(W("other.example.com."), 1, 1, 0.0) is not None
    cache.flush()
    assert cache.bytes == 0


def test_failures_are_bounded_the_expired_and_oldest_forgotten_first():
    cache = C.Cache(1 << 20, Limits(failure_ttl=5, max_failures=3))
    keys = [(W(f"w{i}.dead.example."), 1, 1) for i in range(5)]
    for i, k in enumerate(keys):                    # a flood of names, one failure each
        cache.remember_failure(k, f"dead {i}", 0.0)
    assert len(cache.failures) == 3
    assert [cache.failure(k, 1.0) for k in keys] == [None, None, "dead 2", "dead 3", "dead 4"]
    cache.remember_failure(keys[0], "again", 6.0)   # the others expired at 5: gone with it
    assert list(cache.failures) == [keys[0]]
    none = C.Cache(1 << 20, Limits(max_failures=0))
    none.remember_failure(keys[0], "cycle", 0.0)
    assert none.failure(keys[0], 0.0) is None


def test_infra_pick_bounds_the_timeout_by_the_time_left_and_says_edns():
    infra = C.InfraCache(Limits(exploration=0.0))
    for _ in range(3):
        infra.record_rtt("10.0.0.1", 0.2)
    rto = infra.rto("10.0.0.1")
    assert infra.pick(["10.0.0.1"], 0.0, 10.0) == ("10.0.0.1", rto, True)
    assert infra.pick(["10.0.0.1"], 0.0, 0.05) == ("10.0.0.1", 0.05, True)
    assert infra.pick(["10.0.0.1"], 0.0, -1.0)[1] == 0.01      # at least 10 ms
    infra.set_edns("10.0.0.1", False, 0.0)
    assert infra.pick(["10.0.0.1"], 0.0, 10.0)[2] is False
    # An unmeasured server is asked first, with the initial RTO.
    assert infra.pick(["10.0.0.1", "10.0.0.2"], 0.0, 10.0) == ("10.0.0.2",
                                                               Limits().initial_rto, True)


def test_infra_server_table_is_bounded():
    infra = C.InfraCache(Limits().replace(infra_cache_numhosts=3))
    for i in range(5):
        infra.record_rtt(f"10.0.0.{i}", 0.01)
    assert list(infra.servers) == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=20), min_size=1, max_size=4), st.data())
def test_an_rrset_is_found_by_every_ascii_case_of_its_name(labels, data):
    """The rrset cache keys a name lower-cased as ``bytes.lower`` does, for every byte value
    and lengths around the word the scan for capitals reads: any case of the stored name
    finds the entry, and a name that differs in a byte other than by case does not."""
    name = b"".join(bytes([len(x)]) + x for x in labels) + b"\x00"
    rc = C.RRsetCache(1 << 20)
    assert rc.store(C.RRsetEntry(name, 1, 1, 300, 300.0, C.AUTH_ANSWER, [b"\x01\x02\x03\x04"]))
    for asked in (name, name.upper(), name.lower(), name.swapcase()):
        assert rc.get(asked, 1, 1, 1.0) is not None
    at = data.draw(st.integers(1, len(name) - 2))
    other = name[:at] + bytes([name[at] ^ data.draw(st.sampled_from([1, 0x40, 0x80]))]) + name[at + 1:]
    assert (rc.get(other, 1, 1, 1.0) is not None) == (other.lower() == name.lower())
