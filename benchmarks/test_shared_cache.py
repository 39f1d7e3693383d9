"""The shared (Redis) cache's gain and cost, in one run over the DNS lab and Debian's
redis-server:

- upstream: the same query stream (distinct bulk.net names, each asked several times from
  fresh source ports, which SO_REUSEPORT spreads over the workers) against 1 and 2 workers,
  with and without the shared cache, each from cold caches (Redis emptied): the queries
  sent to authorities for the whole stream, and per distinct name;
- cost: the client-seen latency (median) of a recursion (delegations warm, with its Redis
  miss before it), a Redis hit (the same names on a second daemon) and a local hit (the
  same names again), each daemon one worker.

Figures go to ``extra_info`` and the terminal. ``CORENET_BENCH_SHORT=1``: seconds.
Run: ``pytest benchmarks/test_shared_cache.py``.
"""
from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "resolver"))

from daemon_proc import Daemon  # noqa: E402
from dnslab import Lab  # noqa: E402
from redis_proc import Redis  # noqa: E402

SHORT = bool(os.environ.get("CORENET_BENCH_SHORT"))
NAMES = 12 if SHORT else 100          # distinct names in the stream
ASKS = 4 if SHORT else 8              # times each is asked
COST_NAMES = 10 if SHORT else 200


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    lab = Lab.start(tmp_path_factory.mktemp("lab"))
    redis = Redis(tmp_path_factory.mktemp("redis")).start()
    try:
        yield lab, redis
    finally:
        redis.stop()
        lab.stop()


def _config(path: Path, redis: Redis) -> str:
    path.write_text(f'cachedb-backend = "redis"\nredis-server-path = "{redis.socket}"\n'
                    f'cachedb-secret-seed = "bench"\nredis-timeout = 100\n')
    return str(path)


def _ask(d: Daemon, name: str) -> float:
    q = dns.message.make_query(name, "A", use_edns=False)
    t0 = time.perf_counter()
    r = dns.query.udp(q, "127.0.0.1", port=d.port, timeout=5)
    took = time.perf_counter() - t0
    assert r.rcode() == dns.rcode.NOERROR and r.answer, name
    return took


def _stream(lab, redis, tmp_path: Path, workers: int, shared: bool) -> dict:
    redis.client().flushall()
    args = ["--workers", str(workers), "--ip-ratelimit", "0"]
    if shared:
        args += ["--config", _config(tmp_path / f"w{workers}.toml", redis)]
    d = Daemon(tmp_path / f"w{workers}-{'shared' if shared else 'local'}", lab, *args).start()
    try:
        for i in range(NAMES):
            for _ in range(ASKS):
                _ask(d, f"h{i:03d}.bulk.net.")
            if shared:                       # let the write land before the next name
                time.sleep(0.01)
        s = d.stats()
    finally:
        d.stop()
    up = s["engine"]["upstream_queries"]
    return {"upstream_queries": up, "per_name": round(up / NAMES, 2),
            "shared_hits": s.get("shared_cache", {}).get("hits", 0)}


@pytest.mark.benchmark(group="shared-cache")
def test_upstream_queries_with_and_without_the_shared_cache(benchmark, env, tmp_path):
    lab, redis = env
    results: dict[str, dict] = {}

    def run():
        for workers in (1, 2):
            for shared in (False, True):
                key = f"{workers}w-{'shared' if shared else 'local'}"
                results[key] = _stream(lab, redis, tmp_path, workers, shared)

    benchmark.pedantic(run, rounds=1, iterations=1)
    ratios = {f"{w}w": round(results[f"{w}w-shared"]["upstream_queries"]
                             / max(1, results[f"{w}w-local"]["upstream_queries"]), 3)
              for w in (1, 2)}
    benchmark.extra_info.update({"results": results, "upstream_shared_over_local": ratios})
    print(f"\nshared cache, upstream queries for {NAMES} names x {ASKS}: {results}; "
          f"shared/local: {ratios}")
    # One worker: the shared cache changes nothing upstream (a retried query aside); two:
    # the second worker to see a name finds it in Redis.
    assert abs(results["1w-shared"]["upstream_queries"]
               - results["1w-local"]["upstream_queries"]) <= 2
    assert results["2w-shared"]["shared_hits"] > 0
    assert results["2w-shared"]["upstream_queries"] < results["2w-local"]["upstream_queries"]


@pytest.mark.benchmark(group="shared-cache")
def test_redis_hit_next_to_local_hit_and_recursion(benchmark, env, tmp_path):
    lab, redis = env
    redis.client().flushall()
    conf = _config(tmp_path / "c.toml", redis)
    a = Daemon(tmp_path / "a", lab, "--config", conf, "--ip-ratelimit", "0").start()
    b = Daemon(tmp_path / "b", lab, "--config", conf, "--ip-ratelimit", "0").start()
    lat: dict[str, list[float]] = {"recursion": [], "redis_hit": [], "local_hit": []}
    names = [f"h{100 + i:03d}.bulk.net." for i in range(COST_NAMES)]

    def run():
        _ask(a, "h099.bulk.net.")                   # delegations warm on a
        for n in names:
            lat["recursion"].append(_ask(a, n))
        time.sleep(0.2)                             # the writes land
        for n in names:
            lat["redis_hit"].append(_ask(b, n))
        for n in names:
            lat["local_hit"].append(_ask(b, n))

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
        sb = b.stats()
    finally:
        a.stop()
        b.stop()
    med = {k: round(statistics.median(v) * 1e6) for k, v in lat.items()}
    ratios = {"redis_hit_over_local_hit": round(med["redis_hit"] / med["local_hit"], 2),
              "recursion_over_redis_hit": round(med["recursion"] / med["redis_hit"], 2)}
    benchmark.extra_info.update({"median_us": med, "ratios": ratios})
    print(f"\nshared cache, median client-seen latency (us): {med}; {ratios}")
    assert sb["shared_cache"]["hits"] == COST_NAMES
    assert sb["engine"]["upstream_queries"] == 0
