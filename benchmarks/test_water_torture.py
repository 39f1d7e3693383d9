"""Water torture against a dead authority, corenet-resolver next to Unbound in one run over the
same NSD lab (on port 53).

The lab's example.com. delegates ``torture.example.com.`` to ``ns.torture.example.com.`` at
DEAD_ADDR, where a listener (a process of its own) reads every datagram, counts it and never
answers. A flood process sends random names under that zone (``w<random>.torture.example.com.``
A) at RATE a second from SOURCES client addresses (127.0.2.1-64), reading and discarding what
comes back; meanwhile a probe from 127.0.3.1 asks a cached name every PROBE_GAP seconds and
times each answer (``dns_probe``: at real-time priority, as it shares the load's core), and another client (127.0.4.1) asks a new name under the healthy
example.com every HEALTHY_GAP seconds (an NXDOMAIN within HEALTHY_TIMEOUT is answered). Both
servers with their defaults (corenet's IPv6 off, as the lab's Unbound's), one worker or thread
each, the server pinned to core 0 and the load to core 1 when there are two. corenet starts
with a descriptor soft limit of FD_SOFT (the hard limit unchanged), as under systemd's
default ``LimitNOFILE=1024:524288``: what it raises the limit to is recorded.

Recorded for each: the cached probe's p50/p99/max, queries the dead server received, the
server's CPU over the flood (share of one core), peak descriptors (sampled from /proc every
SAMPLE_GAP), peak RSS (VmHWM; and the RSS before the flood), the healthy names answered;
and corenet's loop iterations (the daemon's histogram and longest), where the expiry of the
dead server's timeouts would show as long ones. The figures are printed and go to
``extra_info``; on a shared machine they are indicative. Asserted: the dead server gets no more
queries from corenet than from Unbound, and corenet answers every healthy name.

``CORENET_BENCH_SHORT=1``: a few seconds. Run: ``pytest -s benchmarks/test_water_torture.py``.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import random
import resource
import socket
import threading
import time

import dns.exception
import dns.message
import dns.rcode
import pytest

from dns_probe import probe
from test_daemon import LOAD_CORE, NO_IPV6, SHORT, TWO_CORES, Daemon, Unbound, _pin
from dnslab import zones  # noqa: E402
from dnslab.unbound import lab_on_port_53  # noqa: E402
from loadgen import cpu_seconds  # noqa: E402

DEAD_ADDR = "127.0.9.1"
DEAD_ZONE = "torture.example.com."
SECONDS = 3 if SHORT else 10
RATE = 5000                   # flood queries a second, spread over SOURCES addresses
SOURCES = 64
TICK = 0.01                   # the flood sends RATE * TICK queries every TICK
PROBE_NAME = "www.example.com."
PROBE_GAP = 0.005
HEALTHY_GAP = 0.075
HEALTHY_TIMEOUT = 2.0
SAMPLE_GAP = 0.05
FD_SOFT = 1024                # corenet's descriptor soft limit at start


@pytest.fixture(scope="module")
def torture_lab(tmp_path_factory):
    texts = zones.zone_texts()
    texts["example.com."] += (f"{DEAD_ZONE} {zones.TTL} IN NS ns.{DEAD_ZONE}\n"
                              f"ns.{DEAD_ZONE} {zones.TTL} IN A {DEAD_ADDR}\n")
    lab = lab_on_port_53(tmp_path_factory.mktemp("torturelab"), zone_texts=texts)
    yield lab
    lab.stop()


def _dead_server(count, ready, stop) -> None:
    """Reads every datagram on DEAD_ADDR:53, counts it, never answers."""
    os.nice(5)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((DEAD_ADDR, 53))
    s.settimeout(0.1)
    ready.set()
    n = 0
    while not stop.is_set():
        try:
            s.recv(4096)
        except socket.timeout:
            count.value = n
            continue
        n += 1
        if n % 64 == 0:
            count.value = n
    count.value = n
    s.close()


def _flood(port: int, seconds: float, seed: int, sent) -> None:
    """RATE random names a second under DEAD_ZONE from SOURCES addresses, paced by TICK;
    replies are read and dropped so no socket buffer fills."""
    os.nice(10)
    if TWO_CORES:
        os.sched_setaffinity(0, {int(LOAD_CORE)})
    rng = random.Random(seed)
    socks = []
    for i in range(SOURCES):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((f"127.0.2.{i + 1}", 0))
        s.setblocking(False)
        socks.append(s)
    per_tick = max(1, int(RATE * TICK))
    dest = ("127.0.0.1", port)
    n = 0
    t0 = time.monotonic()
    end = t0 + seconds
    tick = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        for _ in range(per_tick):
            q = dns.message.make_query(f"w{rng.getrandbits(48):012x}.{DEAD_ZONE}", "A")
            try:
                socks[n % SOURCES].sendto(q.to_wire(), dest)
            except BlockingIOError:
                pass
            n += 1
        for s in socks:
            try:
                while True:
                    s.recv(4096)
            except (BlockingIOError, InterruptedError):
                pass
        tick += 1
        delay = t0 + tick * TICK - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    sent.value = n
    for s in socks:
        s.close()


def _probe(port: int, seconds: float) -> dict:
    return probe(port, seconds, gap=PROBE_GAP, name=PROBE_NAME)


def _healthy(port: int, seconds: float, rng: random.Random, out: dict) -> None:
    """A new name under example.com. every HEALTHY_GAP, whatever the earlier ones' fate: how
    many were answered (NXDOMAIN) within HEALTHY_TIMEOUT of being asked."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.4.1", 0))
    s.settimeout(0.005)
    sent: dict[int, float] = {}
    asked = answered = 0
    end = time.monotonic() + seconds
    next_at = time.monotonic()
    for i in range(int(seconds / HEALTHY_GAP) + 1):
        if time.monotonic() >= end:
            break
        q = dns.message.make_query(f"h{rng.getrandbits(48):012x}.example.com.", "A")
        q.id = i
        sent[i] = time.monotonic()
        asked += 1
        s.sendto(q.to_wire(), ("127.0.0.1", port))
        next_at += HEALTHY_GAP
        answered += _collect(s, sent, next_at)
    answered += _collect(s, sent, time.monotonic() + HEALTHY_TIMEOUT)
    s.close()
    out.update(asked=asked, answered=answered)


def _collect(s: socket.socket, sent: dict, until: float) -> int:
    """Answers read until ``until`` (or until none is awaited): NXDOMAIN ones in time."""
    n = 0
    while sent and time.monotonic() < until:
        try:
            r = dns.message.from_wire(s.recv(4096))
        except (socket.timeout, dns.exception.DNSException):
            continue
        t = sent.pop(r.id, None)
        if (t is not None and r.rcode() == dns.rcode.NXDOMAIN
                and time.monotonic() - t <= HEALTHY_TIMEOUT):
            n += 1
    while time.monotonic() < until and not sent:
        time.sleep(min(0.005, max(0.0, until - time.monotonic())))
    return n


def _sampler(pid: int, stop: threading.Event, out: dict) -> None:
    peak = 0
    while not stop.is_set():
        try:
            peak = max(peak, len(os.listdir(f"/proc/{pid}/fd")))
        except OSError:
            break
        stop.wait(SAMPLE_GAP)
    out["peak_fds"] = peak


def _hwm(pid: int, field: str = "VmHWM") -> float:
    """The process's peak RSS (or another /proc status field in kB), MiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _fd_limit(pid: int) -> int | None:
    """The process's descriptor soft limit now (/proc/PID/limits)."""
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    return None


def _torture(port: int, pid: int, count, seed: int) -> dict:
    rng = random.Random(seed)
    assert _probe(port, 0.05)["lost"] == 0            # the probe's name is cached
    rss_before = _hwm(pid, "VmRSS")
    before_dead, cpu0, t0 = count.value, cpu_seconds(pid), time.monotonic()
    sent = mp.Value("q", 0)
    flood = mp.Process(target=_flood, args=(port, SECONDS, seed, sent), daemon=True)
    stop = threading.Event()
    fds: dict = {}
    healthy: dict = {}
    sampler = threading.Thread(target=_sampler, args=(pid, stop, fds), daemon=True)
    asker = threading.Thread(target=_healthy, args=(port, SECONDS - 0.2, rng, healthy),
                             daemon=True)
    flood.start()
    sampler.start()
    asker.start()
    try:
        time.sleep(0.1)
        probe = _probe(port, SECONDS - 0.3)
        flood.join(SECONDS + 30)
        asker.join(SECONDS + 30)
    finally:
        if flood.is_alive():
            flood.kill()
        stop.set()
        sampler.join(5)
    elapsed = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    time.sleep(0.3)                                   # what was sent last reaches the listener
    return {"probe": probe, "flood_sent": sent.value,
            "dead_server_queries": count.value - before_dead,
            "cpu_share": round(cpu / elapsed, 3), "peak_fds": fds.get("peak_fds"),
            "peak_rss_mib": _hwm(pid), "rss_before_mib": rss_before, "healthy": healthy,
            "fd_limit": _fd_limit(pid)}


@pytest.mark.benchmark(group="daemon-water-torture")
def test_water_torture_against_a_dead_authority(benchmark, torture_lab, tmp_path):
    count, ready, stop = mp.Value("q", 0), mp.Event(), mp.Event()
    dead = mp.Process(target=_dead_server, args=(count, ready, stop), daemon=True)
    dead.start()
    assert ready.wait(10), "the dead server's listener did not start"
    results = {}
    try:
        ub = Unbound.start(tmp_path / "unbound", torture_lab, threads=1)
        try:
            hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
            hard_text = "unlimited" if hard == resource.RLIM_INFINITY else str(hard)
            d = Daemon(tmp_path / "corenet", torture_lab, *NO_IPV6, metrics=False,
                       wrap=("prlimit", f"--nofile={FD_SOFT}:{hard_text}", "--")).start()
            try:
                for name, port, pid, seed in (("corenet-resolver", d.port, d.pid, 1),
                                              ("unbound", ub.port, ub.proc.pid, 2)):
                    _pin(pid)
                    results[name] = _torture(port, pid, count, seed)
                st = d.stats()
                engine, iterations = st["engine"], st.get("udp_iterations")
            finally:
                d.stop()
        finally:
            ub.stop()
    finally:
        stop.set()
        dead.join(5)
    ours, theirs = results["corenet-resolver"], results["unbound"]
    print(f"\n[water torture] {RATE}/s under {DEAD_ZONE} from {SOURCES} addresses for "
          f"{SECONDS} s\n[water torture] corenet-resolver {ours}\n[water torture] unbound "
          f"{theirs}\n[water torture] corenet engine {engine}\n[water torture] corenet loop "
          f"iterations {iterations}")
    benchmark.extra_info.update({"corenet": ours, "unbound": theirs,
                                 "corenet_engine": engine, "corenet_iterations": iterations})
    benchmark.pedantic(lambda: None, rounds=1)
    assert ours["dead_server_queries"] <= theirs["dead_server_queries"], (ours, theirs)
    assert ours["healthy"]["answered"] == ours["healthy"]["asked"] > 0, ours
    assert ours["probe"]["lost"] == 0, ours
