"""The HTTP cache's revalidation round trip next to a full fetch of the same resource.

corenet.https against the local nginx over TLS (as benchmarks/test_https.py), on corenet's
loop and stock asyncio, for a 100 KiB and a 1 MiB body: GETs with no cache (every body
sent again), and GETs through a memory or a disk cache holding the resource, each sent
with `Cache-Control: no-cache` so that every one is a conditional request answered 304
and completed from the store. `CORENET_BENCH_SHORT=1` makes every case a few requests.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_https import _loop_factory, server  # noqa: E402,F401 (server: the nginx lab)

SHORT = os.environ.get("CORENET_BENCH_SHORT") == "1"
SIZES = {"100k": 100 * 1024, "1m": 1024 * 1024}
GETS = {"100k": 5 if SHORT else 200, "1m": 3 if SHORT else 50}  # per round
ROUNDS = 2 if SHORT else 10


@pytest.fixture(scope="module")
def lab(server):
    """The two bodies, added to the lab's document root."""
    for name, size in SIZES.items():
        (server["root"] / f"{name}.bin").write_bytes(os.urandom(size))
    return server


@pytest.mark.parametrize("loop_name", ["corenet", "asyncio"])
@pytest.mark.parametrize("store", ["none", "memory", "disk"])
@pytest.mark.parametrize("size", list(SIZES))
def test_revalidation_against_full_fetch(benchmark, lab, tmp_path, size, store, loop_name):
    from corenet.https import Cache, AsyncClient, DiskCache

    n = GETS[size]
    what = "full fetches" if store == "none" else f"304 revalidations, {store} cache"
    benchmark.group = f"https cache: {n} GETs of {size}"
    benchmark.name = f"{what}, {loop_name} loop"
    benchmark.extra_info["requests_per_round"] = n
    url = f"{lab['base']}/{size}.bin"
    cache = {"none": None, "memory": Cache(), "disk": DiskCache(tmp_path)}[store]
    headers = {"Cache-Control": "no-cache"} if cache is not None else None
    loop = _loop_factory(loop_name)()
    client = AsyncClient(verify=lab["ca"], cache=cache if cache is not None else False)

    async def work():
        total = 0
        for _ in range(n):
            r = await client.get(url, headers=headers)
            assert r.status_code == 200
            total += len(r.content)
        return total

    try:
        # The first round fills the store; every later GET must be a 304 completed from it.
        assert loop.run_until_complete(work()) == n * SIZES[size]
        if cache is not None:
            assert cache.stored == 1 and cache.revalidated == n - 1
        rounds = []

        def one_round():
            rounds.append(loop.run_until_complete(work()))

        benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1)
        if cache is not None:
            assert cache.revalidated == n - 1 + n * len(rounds) and cache.stored == 1
    finally:
        loop.run_until_complete(client.aclose())
        loop.close()
