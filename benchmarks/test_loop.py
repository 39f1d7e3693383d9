"""Loop micro-benchmarks, stock asyncio / uvloop / rloop / corenet side by side (pytest-benchmark).

The figures in BENCHMARKS.md come from ``benchmarks/loop_report.py`` (fresh process per cell,
interleaved rounds); this file keeps the same workloads running in CI's short mode.
"""
import os

import pytest

from loop_workloads import LOOPS, WORKLOADS, new_loop

SHORT = bool(os.environ.get("CORENET_BENCH_SHORT"))


def _available(kind):
    try:
        new_loop(kind).close()
    except ImportError as exc:
        pytest.skip(f"{kind} is not installed: {exc}")


@pytest.mark.parametrize("kind", LOOPS + ["corenet-level"])
@pytest.mark.parametrize("name", list(WORKLOADS))
def test_loop_workload(benchmark, name, kind):
    _available(kind)
    fn, n = WORKLOADS[name]
    if SHORT:
        n = max(1, n // 100)
    benchmark.group = f"loop:{name}"
    benchmark.extra_info["ops_per_round"] = n
    loop = new_loop(kind)
    try:
        benchmark.pedantic(fn, args=(loop, n), rounds=1 if SHORT else 5, iterations=1,
                           warmup_rounds=0 if SHORT else 1)
    finally:
        loop.close()
