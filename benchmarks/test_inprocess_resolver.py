"""The in-process resolver next to the stub resolvers applications use today, in one run.

All on corenet's loop, over the NSD lab on port 53:

- corenet: ``resolver.Resolver`` recursing from the lab's root hints, in the process;
- dnspython: ``dns.asyncresolver.Resolver`` (with its cache, for the cached row) asking an
  Unbound that recurses over the same lab;
- aiodns (c-ares): ``aiodns.DNSResolver`` asking the same Unbound.

Rows: cached names (one name asked again and again, after a first look-up), cold names
(distinct names of a known zone and of new zones; each resolver gets its own names, so
nobody's cache helps another), and ``loop.getaddrinfo`` through the resolver next to the
loop's thread-pool getaddrinfo of ``localhost`` (its cheapest case: glibc reads
``/etc/hosts``, no network). Each row reports look-ups per second and latency p50/p99 in
``extra_info`` and on the terminal, with the ratios to corenet. Nothing here asserts a time.
``CORENET_BENCH_SHORT=1``: a few hundred look-ups per row.
"""
from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from pathlib import Path

import aiodns
import dns.asyncresolver
import dns.resolver
import pytest

import corenet
import resolver
from resolver.getaddrinfo import uninstall

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / d) for d in ("resolver", "")]

from dnslab import bulk_names, many_zone_names  # noqa: E402
from dnslab.unbound import Unbound, lab_on_port_53  # noqa: E402
from ports import free_port  # noqa: E402

SHORT = bool(os.environ.get("CORENET_BENCH_SHORT"))
CACHED = 300 if SHORT else 20000
COLD = 30 if SHORT else 150          # names per resolver (half new zones, half a known zone)
NAME = "www.example.com"


@pytest.fixture(scope="module")
def lab53(tmp_path_factory):
    lab = lab_on_port_53(tmp_path_factory.mktemp("lab53-inprocess"))
    yield lab
    lab.stop()


@pytest.fixture(scope="module")
def unbound(lab53, tmp_path_factory):
    ub = Unbound.start(tmp_path_factory.mktemp("unbound-inprocess"), lab53, port=free_port(),
                       extra="  prefetch: no\n  ratelimit: 0\n  ip-ratelimit: 0")
    yield ub
    ub.stop()


def _peers(lab, ub) -> dict:
    """name -> async lookup(name) returning the A addresses."""
    ours = resolver.Resolver(lab.root_hints, port=lab.port, do_not_query_localhost=False)
    stub = dns.asyncresolver.Resolver(configure=False)
    stub.nameservers = [ub.address]
    stub.port = ub.port
    stub.cache = dns.resolver.Cache()
    cares = aiodns.DNSResolver(nameservers=[f"{ub.address}:{ub.port}"])

    async def corenet_lookup(name):
        return sorted(rd.address for rd in await ours.resolve(name, "A"))

    async def dnspython_lookup(name):
        return sorted(rd.address for rd in await stub.resolve(name, "A"))

    async def aiodns_lookup(name):
        result = await cares.query_dns(name, "A")
        return sorted(r.data.addr for r in result.answer if r.type == 1)

    return {"corenet": corenet_lookup, "dnspython": dnspython_lookup, "aiodns": aiodns_lookup}


def _percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


async def _timed(lookup, names: list[str]) -> dict:
    lat = []
    t0 = time.perf_counter()
    for n in names:
        s = time.perf_counter()
        await lookup(n)
        lat.append(time.perf_counter() - s)
    total = time.perf_counter() - t0
    return {"lookups": len(names), "per_s": len(names) / total,
            "p50_us": _percentile(lat, 50) * 1e6, "p99_us": _percentile(lat, 99) * 1e6}


def _report(row: str, results: dict, benchmark) -> None:
    base = results["corenet"]["per_s"]
    ratios = {k: round(base / v["per_s"], 2) for k, v in results.items() if k != "corenet"}
    print(f"\n[{row}] {results}\n[{row}] corenet lookups/s over each peer's {ratios}")
    benchmark.extra_info.update({"results": results, "corenet_over": ratios})


def _run(coro):
    loop = corenet.new_event_loop()
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


@pytest.mark.benchmark(group="inprocess-resolver")
def test_cached_names(benchmark, lab53, unbound):
    async def go():
        peers = _peers(lab53, unbound)
        out = {}
        for who, lookup in peers.items():
            first = await lookup(NAME)
            assert first == ["192.0.2.1", "192.0.2.11"], (who, first)
            out[who] = await _timed(lookup, [NAME] * CACHED)
        return out

    results = benchmark.pedantic(lambda: _run(go()), rounds=1, iterations=1)
    _report("cached", results, benchmark)


@pytest.mark.benchmark(group="inprocess-resolver")
def test_cold_names(benchmark, lab53, unbound):
    new_zones = [n for n, _ in many_zone_names()]
    bulk = [n for n, _ in bulk_names()]
    half = COLD // 2

    async def go():
        peers = _peers(lab53, unbound)
        out = {}
        for k, (who, lookup) in enumerate(peers.items()):
            names = new_zones[k * half:(k + 1) * half] + bulk[k * half:(k + 1) * half]
            out[who] = await _timed(lookup, names)
        return out

    results = benchmark.pedantic(lambda: _run(go()), rounds=1, iterations=1)
    _report("cold", results, benchmark)


@pytest.mark.benchmark(group="inprocess-resolver")
def test_getaddrinfo_through_the_resolver(benchmark, lab53, tmp_path):
    hosts = tmp_path / "hosts"
    hosts.write_text("")
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("")

    async def go():
        loop = asyncio.get_running_loop()
        own = loop.getaddrinfo

        async def thread_pool(name):
            return await own("localhost", 443, family=socket.AF_INET, type=socket.SOCK_STREAM)

        r = resolver.Resolver(lab53.root_hints, port=lab53.port, do_not_query_localhost=False)
        resolver.install(loop, r, hosts=hosts, resolv_conf=resolv)
        try:
            async def through(name):
                return await loop.getaddrinfo(name, 443, family=socket.AF_INET,
                                              type=socket.SOCK_STREAM)
            got = await through(NAME)
            assert sorted(sa[0] for *_, sa in got) == ["192.0.2.1", "192.0.2.11"]
            n = CACHED // 4
            return {"corenet": await _timed(through, [NAME] * n),
                    "thread-pool getaddrinfo (localhost)": await _timed(thread_pool,
                                                                       [NAME] * n)}
        finally:
            uninstall(loop)

    results = benchmark.pedantic(lambda: _run(go()), rounds=1, iterations=1)
    _report("getaddrinfo", results, benchmark)
