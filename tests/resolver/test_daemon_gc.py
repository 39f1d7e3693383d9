"""The daemon under a stream of new names: the objects its cyclic collector tracks do not
grow with the cache, and ``stats`` shows the collector's passes and how long the loop
worked after each UDP wake-up (what a cached name waits behind)."""
from __future__ import annotations

import gc

from resolver.daemon.metrics import GCPasses, merge

from test_cache_memory import _flood_names


def test_gc_passes_are_counted_and_timed():
    passes = GCPasses()
    gc.callbacks.append(passes)
    try:
        gc.collect()
        gc.collect(0)
    finally:
        gc.callbacks.remove(passes)
    assert passes.count[2] >= 1 and passes.count[0] >= 1
    assert passes.seconds[2] > 0 and 0 < passes.longest[2] <= passes.seconds[2]


def test_merged_workers_keep_the_longest_not_the_sum():
    one = {"udp_iterations": {"bounds_ms": [0.5, 1.0], "counts": [3, 1, 0], "max_ms": 2.0},
           "gc": {"passes": [4, 1, 0], "seconds": [0.1, 0.2, 0.0], "longest_ms": [1.0, 5.0, 0.0],
                  "tracked": 10}}
    two = {"udp_iterations": {"bounds_ms": [0.5, 1.0], "counts": [1, 0, 2], "max_ms": 7.0},
           "gc": {"passes": [1, 0, 1], "seconds": [0.1, 0.0, 0.3], "longest_ms": [3.0, 0.0, 9.0],
                  "tracked": 5}}
    m = merge([one, two])
    assert m["udp_iterations"]["counts"] == [4, 1, 2] and m["udp_iterations"]["max_ms"] == 7.0
    assert m["gc"]["passes"] == [5, 1, 1] and m["gc"]["longest_ms"] == [3.0, 5.0, 9.0]
    assert m["gc"]["tracked"] == 15


def test_new_names_leave_no_tracked_objects_in_the_daemon(lab, tmp_path):
    from daemon_proc import Daemon

    d = Daemon(tmp_path, lab, "--ip-ratelimit", "0").start()
    try:
        assert _flood_names(d, 0, 500) >= 480             # delegations and servers known
        before = d.stats()
        answered = _flood_names(d, 500, 3000)
        after = d.stats()
        assert answered >= 2900
        grown = after["gc"]["tracked"] - before["gc"]["tracked"]
        cached = after["cache"]["messages"] - before["cache"]["messages"]
        print(f"\n{cached} more answers cached, {grown} more tracked objects; "
              f"gc {after['gc']}; loop iterations {after['udp_iterations']}")
        assert cached >= 2900 and after["cache"]["evictions"] == 0
        # each answer adds at least a message and an rrset entry: were either tracked, the
        # growth would be above one per name
        assert grown < cached / 10, (grown, cached)
        its = after["udp_iterations"]
        assert len(its["counts"]) == len(its["bounds_ms"]) + 1
        assert sum(its["counts"]) > sum(before["udp_iterations"]["counts"])
        assert its["max_ms"] > 0
        text = d.metrics()
        tracked = [line for line in text.splitlines()
                   if line.startswith("corenet_resolver_gc_tracked_objects ")]
        assert len(tracked) == 1 and 0 < int(tracked[0].split()[1]) < 1000, tracked
        assert 'corenet_resolver_gc_collections_total{generation="2"}' in text
    finally:
        assert d.stop() == 0, d.log_text()[-3000:]
