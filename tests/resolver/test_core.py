"""The resolver's C-field core (resolver.state): the counters keep the dataclass behaviour
callers used, and the limits the miss path copies follow every change of ``limits``."""
from __future__ import annotations

import dataclasses

import pytest

import resolver
from resolver.api import Stats
from resolver.limits import DEFAULT

HINTS = [("a.root-servers.net.", "127.0.0.1")]


def test_stats_count_compare_and_print_like_the_dataclass():
    s = Stats(cache_hits=3)
    s.cache_misses += 2
    d = s.as_dict()
    assert (d["cache_hits"], d["cache_misses"], d["servfail"]) == (3, 2, 0)
    assert list(d) == [f for f in Stats._fields]
    assert s == Stats(cache_hits=3, cache_misses=2) and s != Stats()
    assert repr(Stats()).startswith("Stats(client_queries=0, upstream_queries=0,")
    with pytest.raises(TypeError, match="no counter 'hits'"):
        Stats(hits=1)
    with pytest.raises(TypeError):
        hash(s)


def test_resolver_counters_are_stats_and_reject_other_objects():
    r = resolver.Resolver(HINTS, port=1)
    assert isinstance(r.stats, Stats) and r.stats.client_queries == 0
    with pytest.raises(TypeError):
        r.stats = {"client_queries": 0}


def test_copied_limits_follow_every_assignment():
    r = resolver.Resolver(HINTS, port=1)
    assert r.limits is DEFAULT and r.lv.limits is DEFAULT
    mine = DEFAULT.replace(max_query_time=1.5, max_pointer_jumps=7, prefetch_min_hits=9)
    r.limits = mine
    assert r.limits is mine
    assert (r.lv.max_query_time, r.lv.max_pointer_jumps, r.lv.prefetch_min_hits) == (1.5, 7, 9)
    # every copied value is the Limits field of the same name
    copied = [n for n in dir(r.lv) if not n.startswith("_") and n != "limits"]
    assert len(copied) >= 14
    for name in copied:
        assert getattr(r.lv, name) == getattr(mine, name), name
    r.limits = DEFAULT
    assert r.lv.max_query_time == DEFAULT.max_query_time


def test_limits_stay_frozen_so_their_copies_stay_true():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULT.max_query_time = 1.0


def test_resolver_counters_cannot_be_replaced_by_none():
    r = resolver.Resolver(HINTS, port=1)
    with pytest.raises(TypeError, match="not NoneType"):
        r.stats = None
    fresh = Stats()
    r.stats = fresh
    assert r.stats is fresh
