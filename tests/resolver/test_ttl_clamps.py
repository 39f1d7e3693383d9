"""cache-min-ttl, cache-max-ttl, cache-max-negative-ttl and cache-min-negative-ttl
(``Limits.min_ttl``, ``max_ttl``, ``max_negative_ttl``, ``min_negative_ttl``) on the fake
network with a fake clock: TTLs are clamped where they are stored, the client sees the
clamped TTL, and the cache keeps data exactly that long. The order of the clamps on a
negative answer is checked beside a real Unbound in test_ttl_clamps_unbound.py."""
from __future__ import annotations

from resolver.cache import Cache
from resolver.hints import parse_root_hints
from resolver.iterator import Iterator
from resolver.limits import Limits
from scenario import FakeClock, W, drive, root_hints, small_internet

SOA = 6


class World:
    def __init__(self, **limits) -> None:
        self.net = small_internet()
        self.clock = FakeClock()
        self.limits = Limits(exploration=0.0, **limits)
        self.cache = Cache(1 << 22, self.limits)
        self.hints = parse_root_hints(root_hints())

    def resolve(self, name: str, rdtype: int = 1):
        self.net.log.clear()
        it = Iterator(W(name), rdtype, 1, self.cache, self.hints, self.clock,
                      limits=self.limits)
        return drive(it, self.net, self.clock)

    def asked(self) -> list:
        return self.net.queries()


def ttls(records, rdtype=None) -> set[int]:
    return {r[3] for r in records if rdtype is None or r[1] == rdtype}


def assert_negative_kept_for(w: World, name: str, seconds: int) -> None:
    """``name``'s NXDOMAIN, resolved just now, is answered from the cache for ``seconds``
    and asked again after."""
    w.clock.advance(seconds - 1)
    assert w.resolve(name).rcode == 3 and w.asked() == []
    w.clock.advance(2)
    w.resolve(name)
    assert (name, "A") in w.asked()


def test_without_clamps_the_zone_owners_ttls_are_kept():
    w = World()
    res = w.resolve("www.example.com.")
    assert res.rcode == 0 and ttls(res.answer) == {300}


def test_min_ttl_raises_low_ttls_in_the_answer_and_in_the_cache():
    w = World(min_ttl=600)
    res = w.resolve("www.example.com.")          # the zone says 300
    assert res.rcode == 0 and ttls(res.answer) == {600}
    w.clock.advance(500)                         # past the owner's TTL, within the minimum
    again = w.resolve("www.example.com.")
    assert again.rcode == 0 and w.asked() == [], "kept for cache-min-ttl, not asked again"
    assert ttls(again.answer) == {100}
    w.clock.advance(101)
    w.resolve("www.example.com.")
    assert ("www.example.com.", "A") in w.asked(), "asked again once the minimum ran out"


def test_max_ttl_lowers_high_ttls():
    w = World(max_ttl=60)
    res = w.resolve("www.example.com.")
    assert ttls(res.answer) == {60}
    w.clock.advance(30)
    assert w.resolve("www.example.com.").rcode == 0 and w.asked() == []
    w.clock.advance(31)
    w.resolve("www.example.com.")
    # the answer and the delegations (86400 s in the zones) expired alike
    asked = w.asked()
    assert ("www.example.com.", "A") in asked and ("com.", "A") in asked


def test_negative_answers_are_capped_by_max_negative_ttl():
    w = World(max_negative_ttl=100)
    res = w.resolve("nope.example.com.")         # SOA minimum 300
    assert res.rcode == 3 and ttls(res.authority, SOA) == {100}
    assert_negative_kept_for(w, "nope.example.com.", 100)


def test_max_negative_ttl_caps_negative_answers_after_min_ttl():
    """Unbound raises a negative answer's SOA to cache-min-ttl, then caps it at
    cache-max-negative-ttl: the negative bound is the more specific, and wins."""
    w = World(min_ttl=600, max_negative_ttl=100)
    res = w.resolve("nope.example.com.")
    assert res.rcode == 3 and ttls(res.authority, SOA) == {100}
    assert_negative_kept_for(w, "nope.example.com.", 100)
    assert ttls(w.resolve("www.example.com.").answer) == {600}   # positive: min-ttl


def test_min_negative_ttl_raises_negative_answers_only():
    """cache-min-negative-ttl (Unbound 1.21's): negative answers are kept at least that
    long, over cache-max-ttl and cache-max-negative-ttl; positive ones keep their TTL."""
    w = World(min_negative_ttl=900, max_negative_ttl=100, max_ttl=600)
    res = w.resolve("nope.example.com.")         # SOA minimum 300
    assert res.rcode == 3 and ttls(res.authority, SOA) == {900}
    nodata = w.resolve("www.example.com.", 16)
    assert nodata.rcode == 0 and not nodata.answer and ttls(nodata.authority, SOA) == {900}
    assert ttls(w.resolve("www.example.com.").answer) == {300}
    assert_negative_kept_for(w, "nope.example.com.", 900)


def test_min_negative_ttl_takes_the_place_of_min_ttl_for_negative_answers():
    """Set, cache-min-negative-ttl replaces cache-min-ttl for negative answers: a lower one
    lets them keep the zone's shorter negative TTL."""
    w = World(min_ttl=600, min_negative_ttl=30)
    assert ttls(w.resolve("nope.example.com.").authority, SOA) == {300}
    assert ttls(w.resolve("www.example.com.").answer) == {600}
    w = World(min_ttl=600)
    assert ttls(w.resolve("nope.example.com.").authority, SOA) == {600}


def test_clamps_bound_each_other():
    w = World(min_ttl=120, max_ttl=200)
    res = w.resolve("www.example.com.")          # 300 -> 200
    assert ttls(res.answer) == {200}
    res = w.resolve("svc.example.com.")          # 300 -> 200 as well
    assert ttls(res.answer) == {200}
    e = w.cache.rrsets.get(W("ns1.example.com."), 1, 1, w.clock())
    assert e is not None and e.ttl == 200       # 3600 in the zone


def test_a_remaining_ttl_is_counted_one_way_on_both_cache_paths():
    """An rrset entry's TTL left (``ttl_left``) is what a cached message's TTLs are lowered
    by (the seconds fully passed since it was stored): a name answered from either cache
    within the second it was stored carries its whole TTL."""
    import math

    from resolver.wire.codec import ttl_left

    for stored in (0.0, 1234.1, 1_700_000_000.25):
        for ttl in (1, 300, 3600):
            for passed in (0.0, 0.2, 0.999, 1.0, 1.5, ttl - 0.5, ttl, ttl + 3.0):
                now = stored + passed
                message_path = max(0, ttl - math.floor(now - stored))
                assert ttl_left(stored + ttl, now) == message_path, (stored, ttl, passed)
    w = World()
    w.resolve("alias.example.com.")              # the CNAME and its target: rrsets
    w.clock.advance(0.5)
    again = w.resolve("www.example.com.")        # the target, answered from the rrset cache
    assert w.asked() == [] and ttls(again.answer) == {300}
