"""Keeps ``rpz_transfer_stall.py`` working: one small transfer (the full measure, 10,000
rules, is run by hand; see the script's docstring and BENCHMARKS.md)."""
from __future__ import annotations

import rpz_transfer_stall as stall
from ci_policy import installed


def test_a_transferred_zone_lets_the_loop_turn(benchmark):
    installed("nsd", "nsd")
    benchmark.group = "rpz-transfer-stall"
    ((took, gaps, triggers),) = benchmark.pedantic(lambda: stall.measure(2000, 1), rounds=1,
                                                   iterations=1)
    benchmark.extra_info.update({"seconds": took, "longest_gap_ms": gaps[-1] * 1000,
                                 "wakeups": len(gaps)})
    assert triggers == 2000 and gaps and took > 0
