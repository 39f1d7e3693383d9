"""Resolver engine benchmarks, each next to its peer in the same run.

- cached ``resolve_message`` on wire bytes (sync hit path and the awaited call) vs
  ``dns.message.from_wire`` of the same response;
- cached ``resolve`` vs dnspython's async stub resolver answering from its own cache;
- cold resolution of distinct names through the NSD lab (p50/p99 per name and CPU per cache
  miss in ``extra_info``) vs dnspython's stub asking the names' authoritative server directly.

``CORENET_BENCH_SHORT=1`` keeps each to a few seconds at most.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import dns.asyncresolver
import dns.message
import dns.resolver
import dns.rrset
import pytest

import resolver
from resolver.cache.answer import parse_query
from resolver.wire.codec import build_query, from_text

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / d) for d in ("resolver", "")]

SHORT = bool(os.environ.get("CORENET_BENCH_SHORT"))
BATCH = 50 if SHORT else 500
COLD_NAMES = 40 if SHORT else 300


def cached_pair():
    """A resolver holding one typical answer (CNAME + A rrset + NS + glue) and its query."""
    q = dns.message.make_query("www.example.com.", "A", use_edns=0)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.RA
    r.answer.append(dns.rrset.from_text("www.example.com.", 3600, "IN", "CNAME", "web.example.com."))
    r.answer.append(dns.rrset.from_text("web.example.com.", 3600, "IN", "A", "192.0.2.1", "192.0.2.2"))
    r.authority.append(dns.rrset.from_text("example.com.", 3600, "IN", "NS", "ns1.example.com.",
                                           "ns2.example.com."))
    r.additional.append(dns.rrset.from_text("ns1.example.com.", 3600, "IN", "A", "192.0.2.53"))
    r.additional.append(dns.rrset.from_text("ns2.example.com.", 3600, "IN", "A", "192.0.2.54"))
    wire = r.to_wire()
    res = resolver.Resolver([("a.root.", "127.0.0.1")])
    res.cache.messages.store(parse_query(q.to_wire())[0], wire, res.clock())
    return res, q.to_wire(), wire


@pytest.mark.benchmark(group="resolver-cached-message")
@pytest.mark.parametrize("impl", ["resolve_cached", "await resolve_message", "dnspython from_wire"])
def test_cached_message(benchmark, impl):
    res, query, response = cached_pair()
    benchmark.extra_info["per_call"] = BATCH
    if impl == "resolve_cached":
        hit = res.resolve_cached

        def run():
            for _ in range(BATCH):
                hit(query)
        assert dns.message.from_wire(hit(query)).answer
    elif impl == "await resolve_message":
        loop = asyncio.new_event_loop()

        async def many():
            for _ in range(BATCH):
                await res.resolve_message(query)

        def run():
            loop.run_until_complete(many())
        run()
    else:
        parse = dns.message.from_wire

        def run():
            for _ in range(BATCH):
                parse(response)
    try:
        benchmark(run)
    finally:
        if impl == "await resolve_message":
            loop.close()


@pytest.fixture(scope="module")
def fake_world():
    from scenario import FakeServers, root_hints, small_internet

    loop = asyncio.new_event_loop()
    net = small_internet(prefix="127.54")
    fs = FakeServers(net)
    port = loop.run_until_complete(fs.start(sorted(net.served)))
    try:
        yield loop, port, root_hints("127.54")
    finally:
        loop.run_until_complete(fs.stop())
        loop.close()


@pytest.mark.benchmark(group="resolver-cached-resolve")
@pytest.mark.parametrize("impl", ["corenet resolver", "dnspython stub + cache"])
def test_cached_resolve(benchmark, fake_world, impl):
    loop, port, hints = fake_world
    if impl == "corenet resolver":
        r = resolver.Resolver(hints, port=port, do_not_query_localhost=False)
        resolve = r.resolve
    else:
        stub = dns.asyncresolver.Resolver(configure=False)
        stub.nameservers = ["127.54.3.1"]           # example.com's authoritative server
        stub.port = port
        stub.cache = dns.resolver.Cache()
        resolve = stub.resolve

    async def many():
        for _ in range(BATCH):
            ans = await resolve("www.example.com.", "A")
        return ans

    first = loop.run_until_complete(many())
    assert first[0].address == "192.0.2.1"
    benchmark.extra_info["per_call"] = BATCH
    benchmark(lambda: loop.run_until_complete(many()))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    from dnslab import Lab
    from dnslab.nsd import NSD

    if not os.path.exists(NSD):
        pytest.skip("nsd (Debian package 'nsd') is not installed: scripts/setup.sh installs it")
    the_lab = Lab.start(tmp_path_factory.mktemp("benchlab"))
    try:
        yield the_lab
    finally:
        the_lab.stop()


def _percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


@pytest.mark.benchmark(group="resolver-cold")
@pytest.mark.parametrize("impl", ["corenet resolve_message (wire, from the root)",
                                  "corenet resolve (dnspython Answer, from the root)",
                                  "dnspython stub (straight to the authority)"])
def test_cold_resolution(benchmark, lab, impl):
    from dnslab import bulk_names
    from dnslab import zones as Z

    names = [n for n, _ in bulk_names()][:COLD_NAMES]
    queries = {n: build_query(i, from_text(n), 1, rd=True, edns=False) for i, n in enumerate(names)}
    loop = asyncio.new_event_loop()
    lat: list[float] = []
    cpu: list[float] = []

    async def cold_run():
        if impl.startswith("corenet resolve_message"):
            r = resolver.Resolver(lab.root_hints, port=lab.port, do_not_query_localhost=False)

            async def resolve(name, rdtype):
                out = await r.resolve_message(queries[name])
                assert out[3] & 0x0F == 0
        elif impl.startswith("corenet"):
            r = resolver.Resolver(lab.root_hints, port=lab.port, do_not_query_localhost=False)
            resolve = r.resolve
        else:
            stub = dns.asyncresolver.Resolver(configure=False)
            stub.nameservers = [Z.BULK]
            stub.port = lab.port
            resolve = stub.resolve
        c0 = time.process_time()
        for name in names:
            t0 = time.perf_counter()
            await resolve(name, "A")
            lat.append(time.perf_counter() - t0)
        cpu.append((time.process_time() - c0) / len(names))

    try:
        benchmark.pedantic(lambda: loop.run_until_complete(cold_run()),
                           rounds=1 if SHORT else 3, iterations=1)
    finally:
        loop.close()
    benchmark.extra_info.update(
        names=len(names), p50_ms=round(_percentile(lat, 0.5) * 1e3, 3),
        p99_ms=round(_percentile(lat, 0.99) * 1e3, 3),
        cpu_us_per_name=round(sum(cpu) / len(cpu) * 1e6, 1))
