"""DNSSEC validation cost, next to its peers in the same run.

- CPU per validated cache miss: distinct secure names (``hNNN.bench.net.``, ECDSA P-256, one
  new RRSIG each; the chain's keys are cached after the first) resolved from the root of the
  signed lab by corenet with validation on, with validation off, and by Unbound validating
  with the same trust anchor (its CPU read from /proc; needs the lab on port 53, else skipped).
- Cached queries with validation on: ``resolve_cached`` of a secure answer with DO, next to
  the same with validation off: a hit must not revalidate (asserted: no signature checked).

``CORENET_BENCH_SHORT=1`` keeps each to a few seconds at most.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import pytest

import resolver
from resolver.wire.codec import build_query, from_text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "resolver"))

SHORT = bool(os.environ.get("CORENET_BENCH_SHORT"))
NAMES = 40 if SHORT else 300
BATCH = 50 if SHORT else 500


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """(lab, anchor, on_port_53) - the signed lab, on port 53 when it is free (for Unbound)."""
    import dnssec_lab
    from dnslab import Lab, LabError
    from dnslab import zones as Z
    from dnslab.nsd import NSD
    from dnslab.ports import bind_all

    if not os.path.exists(NSD):
        pytest.skip("nsd (Debian package 'nsd') is not installed")
    missing = dnssec_lab.tools_missing()
    if missing:
        pytest.skip(f"{missing} not installed")
    tmp = tmp_path_factory.mktemp("dnssec-bench")
    zones, servers, anchor = dnssec_lab.build(tmp / "keys")
    port = None
    try:
        for s in bind_all(sorted(set(Z.ALL_ADDRESSES)), 53):
            s.close()
        port = 53
    except OSError:
        pass
    try:
        lab = Lab.start(tmp / "lab", port=port, zone_texts=zones, servers=servers)
    except LabError:
        lab = Lab.start(tmp / "lab2", zone_texts=zones, servers=servers)
    try:
        yield lab, anchor, tmp
    finally:
        lab.stop()


def _names() -> list[str]:
    return [f"h{i:03d}.bench.net." for i in range(NAMES)]


def _proc_cpu(pid: int) -> float:
    """CPU seconds of every thread of ``pid`` (schedstat: nanoseconds, unlike the 10 ms
    ticks of /proc/PID/stat, which are too coarse for a short run)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total / 1e9


@pytest.mark.benchmark(group="dnssec-cold")
@pytest.mark.parametrize("impl", ["corenet, validating", "corenet, validation off",
                                  "unbound, validating", "unbound, validation off"])
def test_cpu_per_validated_miss(benchmark, signed, impl):
    lab, anchor, tmp = signed
    names = _names()
    queries = [build_query(i, from_text(n), 1, rd=True, edns=True, do=True)
               for i, n in enumerate(names)]
    cpu: list[float] = []
    if impl.startswith("unbound"):
        from dnslab.unbound import UNBOUND, Unbound
        if lab.port != 53 or not os.path.exists(UNBOUND):
            pytest.skip("Unbound needs the lab on port 53 (taken here) and the unbound package")
        runs = iter(range(100))
        validate = impl.endswith("validating")
        extra = ('  module-config: "validator iterator"\n'
                 f'  trust-anchor-file: "{anchor}"') if validate else ""

        def one_round():
            ub = Unbound.start(tmp / f"unbound{validate}{next(runs)}", lab, extra=extra)
            try:
                # warm the chain of trust (root, net., bench.net. keys), as for corenet below
                dns.query.udp(dns.message.make_query("ns.bench.net.", "A", want_dnssec=True),
                              ub.address, port=ub.port, timeout=5)
                c0 = _proc_cpu(ub.proc.pid)
                for q in queries:
                    r = dns.query.udp(dns.message.from_wire(q), ub.address, port=ub.port,
                                      timeout=5)
                    assert bool(r.flags & dns.flags.AD) == validate
                cpu.append((_proc_cpu(ub.proc.pid) - c0) / len(queries))
            finally:
                ub.stop()
    else:
        validate = impl.endswith("validating")

        def one_round():
            loop = asyncio.new_event_loop()

            async def go():
                r = resolver.Resolver(lab.root_hints, port=lab.port, trust_anchor=anchor,
                                      validate=validate, do_not_query_localhost=False)
                await r.resolve_message(dns.message.make_query("ns.bench.net.", "A",
                                                               want_dnssec=True))
                c0 = time.process_time()
                for q in queries:
                    out = await r.resolve_message(q)
                    assert bool(out[3] & 0x20) == validate and out[3] & 0x0F == 0
                cpu.append((time.process_time() - c0) / len(queries))
                await r.close()

            try:
                loop.run_until_complete(go())
            finally:
                loop.close()

    benchmark.pedantic(one_round, rounds=1 if SHORT else 3, iterations=1)
    benchmark.extra_info.update(names=len(names),
                                cpu_us_per_miss=round(min(cpu) * 1e6, 1))


@pytest.mark.benchmark(group="dnssec-cached")
@pytest.mark.parametrize("validate", [True, False], ids=["validating", "validation off"])
def test_cached_hits_do_not_revalidate(benchmark, signed, validate):
    lab, anchor, _ = signed
    loop = asyncio.new_event_loop()
    r = resolver.Resolver(lab.root_hints, port=lab.port, trust_anchor=anchor, validate=validate,
                          do_not_query_localhost=False)
    q = build_query(1, from_text("www.example.com."), 1, rd=True, edns=True, do=True)
    try:
        first = loop.run_until_complete(r.resolve_message(q))
        assert bool(first[3] & 0x20) == validate
        checks = r.dnssec.stats.sig_checks if validate else 0
        hit = r.resolve_cached

        def run():
            for _ in range(BATCH):
                hit(q)

        assert hit(q) is not None
        benchmark.extra_info["per_call"] = BATCH
        benchmark(run)
        if validate:
            assert r.dnssec.stats.sig_checks == checks, "a cache hit must not revalidate"
    finally:
        loop.run_until_complete(r.close())
        loop.close()
