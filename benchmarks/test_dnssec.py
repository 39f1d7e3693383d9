"""DNSSEC validation cost, next to its peers in the same run.

- CPU per validated cache miss: distinct secure names (``hNNN.bench.net.``, ECDSA P-256, one
  new RRSIG each; the chain's keys are cached after the first) asked one at a time over UDP
  of the ``corenet-resolver`` daemon and of Unbound (one worker / one thread each, the same
  trust anchor, the same client), validating and with validation off: the server's CPU per
  miss from /proc (needs the lab on port 53, where Unbound asks, else skipped). Then more new
  names in a burst (dnsperf, 50 outstanding, DO set): the CPU per miss of a busy server,
  where one wake-up serves several misses. The library
  in-process (``Resolver.resolve_message`` on corenet's loop and on stock asyncio's) is a
  row of its own: it has no client socket to serve.
- Cached queries with validation on: ``resolve_cached`` of a secure answer with DO, next to
  the same with validation off: a hit must not revalidate (asserted: no signature checked).

``CORENET_BENCH_SHORT=1`` keeps each to a few seconds at most.
"""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import dns.flags
import dns.message
import dns.query
import pytest

import resolver
from resolver.wire.codec import build_query, from_text

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / d) for d in ("resolver", "")]

SHORT = bool(os.environ.get("CORENET_BENCH_SHORT"))
NAMES = 40 if SHORT else 300
BURST_NAMES = 100 if SHORT else 1000
BATCH = 50 if SHORT else 500
BURST_OUTSTANDING = 50


@pytest.fixture(scope="module")
def signed(tmp_path_factory):
    """(lab, anchor, on_port_53) - the signed lab, on port 53 when it is free (for Unbound)."""
    import dnssec_lab
    from dnslab import Lab, LabError
    from dnslab import zones as Z
    from dnslab.nsd import NSD
    from ports import bind_all

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


def _names(first: int = 0, n: int = NAMES) -> list[str]:
    import dnssec_lab
    return dnssec_lab.bench_names()[first:first + n]


def _pin(pid: int) -> None:
    """The server on core 0, away from this process (the client) when there are two cores."""
    if (os.cpu_count() or 1) >= 2:
        subprocess.run(["taskset", "-a", "-p", "-c", "0", str(pid)], capture_output=True,
                       check=False)


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


def _ask_all(queries: list[bytes], port: int, validate: bool) -> None:
    for q in queries:
        r = dns.query.udp(dns.message.from_wire(q), "127.0.0.1", port=port, timeout=5)
        assert r.rcode() == 0 and bool(r.flags & dns.flags.AD) == validate, r


def _burst(names: list[str], port: int, pid: int, workdir: Path) -> float:
    """Server CPU seconds for ``names`` asked by dnsperf with BURST_OUTSTANDING in flight
    (DO set), dnsperf on the other core; every name must be answered."""
    import re

    datafile = workdir / "burst.txt"
    datafile.write_text("".join(f"{n} A\n" for n in names))
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(datafile), "-n", "1",
           "-q", str(BURST_OUTSTANDING), "-t", "10", "-D"]
    if (os.cpu_count() or 1) >= 2:
        cmd = ["taskset", "-c", "1"] + cmd
    c0 = _proc_cpu(pid)
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    cpu = _proc_cpu(pid) - c0
    assert r.returncode == 0, r.stderr + r.stdout
    m = re.search(r"Queries completed:\s+(\d+)", r.stdout)
    assert m and int(m.group(1)) == len(names), r.stdout
    assert re.search(r"NOERROR (\d+)", r.stdout).group(1) == str(len(names)), r.stdout
    return cpu


def _warm(port: int) -> None:
    """The chain of trust (root, net., bench.net. keys) and bench.net.'s delegation."""
    dns.query.udp(dns.message.make_query("ns.bench.net.", "A", want_dnssec=True),
                  "127.0.0.1", port=port, timeout=5)


@pytest.mark.benchmark(group="dnssec-cold")
@pytest.mark.parametrize("impl", ["corenet-resolver, validating",
                                  "corenet-resolver, validation off",
                                  "unbound, validating", "unbound, validation off"])
def test_cpu_per_validated_miss(benchmark, signed, impl):
    """Each round a fresh server, warmed with the chain's keys, then every name once."""
    from daemon_proc import Daemon
    from dnslab.unbound import UNBOUND, Unbound

    lab, anchor, tmp = signed
    if lab.port != 53 or not os.path.exists(UNBOUND):
        pytest.skip("Unbound needs the lab on port 53 (taken here) and the unbound package")
    queries = [build_query(i, from_text(n), 1, rd=True, edns=True, do=True)
               for i, n in enumerate(_names())]
    validate = impl.endswith("validating")
    burst_names = _names(NAMES, BURST_NAMES)
    runs = iter(range(100))
    cpu: list[float] = []
    burst: list[float] = []

    def one_round():
        w = tmp / f"{impl.replace(' ', '').replace(',', '-')}{next(runs)}"
        if impl.startswith("unbound"):
            extra = ('  module-config: "validator iterator"\n'
                     f'  trust-anchor-file: "{anchor}"') if validate else ""
            server = Unbound.start(w, lab, extra=extra + "\n  ip-ratelimit: 0")
            port, pid = server.port, server.proc.pid
        else:
            args = ["--no-ipv6", "--ip-ratelimit", "0", "--trust-anchor", str(anchor)]
            if not validate:
                args.append("--no-validate")
            server = Daemon(w, lab, *args, metrics=False).start()
            port, pid = server.port, server.pid
        try:
            _pin(pid)
            _warm(port)
            c0 = _proc_cpu(pid)
            _ask_all(queries, port, validate)
            cpu.append((_proc_cpu(pid) - c0) / len(queries))
            burst.append(_burst(burst_names, port, pid, w) / len(burst_names))
        finally:
            server.stop()

    benchmark.pedantic(one_round, rounds=1 if SHORT else 3, iterations=1)
    benchmark.extra_info.update(names=len(queries), cpu_us_per_miss=round(min(cpu) * 1e6, 1),
                                burst_names=len(burst_names),
                                cpu_us_per_miss_burst=round(min(burst) * 1e6, 1))
    print(f"\n[dnssec-cold] {impl}: {min(cpu) * 1e6:.1f} us CPU per miss one at a time, "
          f"{min(burst) * 1e6:.1f} us in a burst of {BURST_OUTSTANDING} "
          f"(best of {len(cpu)})")


@pytest.mark.benchmark(group="dnssec-cold")
@pytest.mark.parametrize("loop_kind", ["corenet", "asyncio"])
@pytest.mark.parametrize("validate", [True, False], ids=["validating", "validation off"])
def test_cpu_per_validated_miss_in_process(benchmark, signed, loop_kind, validate):
    """The library resolving in the caller's process: no client socket, CPU of the process."""
    lab, anchor, _ = signed
    queries = [build_query(i, from_text(n), 1, rd=True, edns=True, do=True)
               for i, n in enumerate(_names())]
    cpu: list[float] = []

    def one_round():
        if loop_kind == "corenet":
            import corenet
            loop = corenet.new_event_loop()
        else:
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
    benchmark.extra_info.update(names=len(queries), cpu_us_per_miss=round(min(cpu) * 1e6, 1))
    print(f"\n[dnssec-cold] in-process on {loop_kind}'s loop, "
          f"{'validating' if validate else 'validation off'}: {min(cpu) * 1e6:.1f} us CPU per "
          f"miss (best of {len(cpu)})")


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
