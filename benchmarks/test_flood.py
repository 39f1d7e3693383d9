"""A cached name's latency while 64 client addresses flood the server with random names
that all miss, corenet-resolver next to Unbound in one run over the same NSD lab.

The flood is ``dns_load.c`` with 64 sockets, each bound to an address of its own
(127.0.2.1-64), keeping FLOOD_WINDOW queries in flight per socket for SECONDS (a query
unanswered for FLOOD_LOST_MS frees its slot, so drops do not slow it); every name is
new (``f<random>.example.com.``, NXDOMAIN from the lab), so each admitted query is a
recursion. A probe from yet another address (127.0.3.1) asks a cached name every PROBE_GAP
seconds and times each answer: its p50/p99 with and without the flood are the figures.
Both servers run with the same per-client miss budget (``ip-ratelimit: 1000``, corenet's
default; Unbound's is off by default) and their defaults otherwise. The server is pinned to
core 0, the flood and the probe to core 1: the flood at the lowest priority and the probe
at real-time priority (``dns_probe``), so that the probe measures the server rather than its
wait for the CPU; it also reports when each answer reached its socket, by the kernel's
timestamp.

``CORENET_BENCH_SHORT=1``: seconds, not minutes. Run: ``pytest -s benchmarks/test_flood.py``.
"""
from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pytest

from dns_probe import probe
from test_daemon import (LOAD_CORE, NO_IPV6, SECONDS, TWO_CORES, UNBOUND_RCVBUF, Daemon,
                         Unbound, _pin, _wire_queries, dns_load, lab53)  # noqa: F401

SOURCES = 64
FLOOD_WINDOW = 64
FLOOD_LOST_MS = 20       # a dropped query frees its slot after this: the flood keeps its pace
FLOOD_NAMES = 200_000
PROBE_GAP = 0.005
PROBE_NAME = "www.example.com."


def _probe(port: int, seconds: float) -> dict:
    return probe(port, seconds, gap=PROBE_GAP, name=PROBE_NAME)


def _flood_and_probe(exe: str, port: int, qfile: Path) -> dict:
    cmd = [exe, "127.0.0.1", str(port), str(qfile), str(SOURCES), str(FLOOD_WINDOW),
           str(SECONDS), "127.0.2.1", str(FLOOD_LOST_MS)]
    cmd = ["nice", "-n", "19"] + cmd         # the probe, on the same core, goes first
    if TWO_CORES:
        cmd = ["taskset", "-c", LOAD_CORE] + cmd
    quiet = _probe(port, 1.0)
    flood = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.2)                         # the flood under way
        loud = _probe(port, SECONDS - 0.4)
        out, err = flood.communicate(timeout=SECONDS + 60)
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    assert flood.returncode == 0, err + out
    words = out.split()
    f = dict(zip(words[::2], map(float, words[1::2])))
    return {"quiet": quiet, "flood": loud,
            "flood_sent_per_s": (f["completed"] + f["lost"]) / f["seconds"],
            "flood_answered_per_s": f["qps"]}


@pytest.mark.benchmark(group="daemon-flood")
def test_cached_latency_under_a_random_name_flood(benchmark, lab53, dns_load, tmp_path):
    rng = random.Random(5)
    qfile = _wire_queries(tmp_path / "flood.bin",
                          [(f"f{rng.getrandbits(48):012x}.example.com", "A")
                           for _ in range(FLOOD_NAMES)])
    ub = Unbound.start(tmp_path / "unbound", lab53, threads=1, extra="\n".join([
        "  ip-ratelimit: 1000", UNBOUND_RCVBUF]))
    results = {}
    try:
        d = Daemon(tmp_path / "corenet", lab53, *NO_IPV6, metrics=False).start()
        try:
            for name, port, pid in (("corenet-resolver", d.port, d.pid),
                                    ("unbound", ub.port, ub.proc.pid)):
                _pin(pid)
                assert _probe(port, 0.05)["lost"] == 0          # the probe's name is cached
                if name == "corenet-resolver":
                    before = d.stats()
                results[name] = _flood_and_probe(dns_load, port, qfile)
            st = d.stats()
            for when, s in (("before", before), ("after", st)):
                print(f"\n[flood] corenet {when} the flood: cache {s['cache']} gc "
                      f"{s.get('gc')} loop iterations {s.get('udp_iterations')}")
            dropped = st["dropped"]
            print("\n[flood] corenet engine", st["engine"], "inflight", st["inflight"])
        finally:
            d.stop()
    finally:
        ub.stop()
    ours, theirs = results["corenet-resolver"], results["unbound"]
    ratios = {k: ours["flood"][k] / theirs["flood"][k]
              for k in ("p50_ms", "p99_ms") if theirs["flood"][k]}
    print(f"\n[flood] corenet-resolver {ours}\n[flood] unbound {theirs}\n"
          f"[flood] corenet dropped {dropped}\n[flood] ratios corenet/unbound {ratios}")
    benchmark.extra_info.update({"corenet": ours, "unbound": theirs, "ratios": ratios,
                                 "corenet_dropped": dropped})
    benchmark.pedantic(lambda: None, rounds=1)
    probes = ours["flood"]
    assert probes["probes"] > 0 and probes["lost"] <= probes["probes"] / 10, probes
    shed = dropped.get("busy", 0) + dropped.get("ratelimit", 0) + dropped.get("overload", 0)
    assert shed > 0, "the flood never met a bound"
