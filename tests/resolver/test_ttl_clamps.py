"""cache-min-ttl, cache-max-ttl and cache-max-negative-ttl (``Limits.min_ttl``, ``max_ttl``,
``max_negative_ttl``) on the fake network with a fake clock: TTLs are clamped where they are
stored, the client sees the clamped TTL, and the cache keeps data exactly that long."""
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
    w.clock.advance(99)
    assert w.resolve("nope.example.com.").rcode == 3 and w.asked() == []
    w.clock.advance(2)
    w.resolve("nope.example.com.")
    assert ("nope.example.com.", "A") in w.asked()


def test_min_ttl_applies_to_negative_answers_after_their_cap():
    """Unbound caps a negative answer's SOA at cache-max-negative-ttl and then raises every
    TTL to cache-min-ttl; the same order here, so min-ttl wins when it is the larger."""
    w = World(min_ttl=600, max_negative_ttl=100)
    res = w.resolve("nope.example.com.")
    assert res.rcode == 3 and ttls(res.authority, SOA) == {600}
    w.clock.advance(500)
    assert w.resolve("nope.example.com.").rcode == 3 and w.asked() == []


def test_clamps_bound_each_other():
    w = World(min_ttl=120, max_ttl=200)
    res = w.resolve("www.example.com.")          # 300 -> 200
    assert ttls(res.answer) == {200}
    res = w.resolve("svc.example.com.")          # 300 -> 200 as well
    assert ttls(res.answer) == {200}
    e = w.cache.rrsets.get(W("ns1.example.com."), 1, 1, w.clock())
    assert e is not None and e.ttl == 200       # 3600 in the zone
