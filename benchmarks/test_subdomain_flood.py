"""Upstream queries per miss under a random-subdomain flood below a deep name,
corenet-resolver next to Unbound in one run over the same NSD lab (on port 53).

The lab's example.com. gets one more name, ``a.b.c.d.example.com.`` (an A record), so
``d.``, ``c.d.`` and ``b.c.d.example.com.`` are empty non-terminals. The flood asks
``r<random>.a.b.c.d.example.com.`` A: every name new, every answer NXDOMAIN. Each server
starts with an empty cache and is asked one name at a time: the first miss (the cold start:
root, referrals and QNAME-minimisation probes down the path), then WARM more misses, then
MEASURED misses, whose upstream queries divided by MEASURED are the figure. Then, from a
fresh server again, the flood as it comes: BURST misses sent at once (the path not known
yet), then BURST more (the path known).

Upstream queries are counted at the authorities, the same way for both servers: every NSD
of the lab runs with a control socket and ``Lab.queries_received`` sums their
``num.queries`` (``nsd-control stats_noreset``) before and after each phase, once the count
has stopped moving. Only one resolver runs at a time, so the count is exactly what it sent.

Both servers with their defaults: corenet's QNAME minimisation is on in relaxed mode,
Unbound has ``qname-minimisation: yes`` (relaxed too). IPv6 is off for both (the lab has no
IPv6), and corenet's per-client miss budget is off, since the misses come from one client
back to back. Once the path is known the counts do not depend on load, so corenet's are
asserted: at most MAX_PER_MISS upstream queries per miss, one at a time and in a burst. The
cold burst's count depends on how the misses interleave with the first replies (which
probes are still in flight to be shared, which are cached already), so it is recorded.

``CORENET_BENCH_SHORT=1``: fewer misses. Run: ``pytest -s benchmarks/test_subdomain_flood.py``.
"""
from __future__ import annotations

import random
import socket
import time

import dns.message
import dns.query
import dns.rcode
import pytest

# test_daemon puts tests/resolver (the lab) on the path
from test_daemon import NO_IPV6, NO_RATELIMIT, SHORT, Daemon, Unbound
from dnslab import zones  # noqa: E402
from dnslab.unbound import lab_on_port_53  # noqa: E402

DEEP = "a.b.c.d.example.com."
WARM = 10 if SHORT else 50           # misses after the first, before the measured ones
MEASURED = 100 if SHORT else 2000
BURST = 50                           # misses sent at once from one socket
MAX_PER_MISS = 1.5                   # the target for corenet once the path is known
SETTLE_GAP = 0.1                     # seconds between two reads of the lab's count
SETTLE_MAX = 5.0


@pytest.fixture(scope="module")
def deep_lab(tmp_path_factory):
    texts = zones.zone_texts()
    texts["example.com."] += f"{DEEP} {zones.TTL} IN A 192.0.2.62\n"
    lab = lab_on_port_53(tmp_path_factory.mktemp("deeplab"), zone_texts=texts, control=True)
    yield lab
    lab.stop()


def _settled(lab) -> int:
    """The lab's query count once two reads SETTLE_GAP apart agree (a resolver may send a
    query after it has answered its client, e.g. for a name server's address)."""
    last = lab.queries_received()
    deadline = time.monotonic() + SETTLE_MAX
    while time.monotonic() < deadline:
        time.sleep(SETTLE_GAP)
        now = lab.queries_received()
        if now == last:
            return now
        last = now
    return last


def _ask_all(port: int, names: list[str]) -> None:
    for name in names:
        q = dns.message.make_query(name, "A")
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=10)
        assert r.rcode() == dns.rcode.NXDOMAIN, (name, dns.rcode.to_text(r.rcode()))


def _burst(port: int, names: list[str], timeout: float = 20.0) -> None:
    """``names`` sent at once from one socket; every one must be answered NXDOMAIN."""
    want = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for i, name in enumerate(names):
            q = dns.message.make_query(name, "A")
            q.id = i
            want[i] = name
            s.sendto(q.to_wire(), ("127.0.0.1", port))
        deadline = time.monotonic() + timeout
        while want:
            left = deadline - time.monotonic()
            assert left > 0, f"no answer within {timeout} s for {sorted(want.values())[:5]}..."
            s.settimeout(left)
            try:
                r = dns.message.from_wire(s.recv(4096))
            except socket.timeout:
                continue
            name = want.pop(r.id, None)
            assert name is not None and r.question[0].name.to_text() == name, r
            assert r.rcode() == dns.rcode.NXDOMAIN, (name, dns.rcode.to_text(r.rcode()))


def _count_bursts(lab, c0: int, port: int, names: list[str]) -> dict:
    """Upstream queries per miss of a burst of BURST misses at a fresh server (counted from
    ``c0``), and of the next burst."""
    _burst(port, names[:BURST])
    c1 = _settled(lab)
    _burst(port, names[BURST:])
    c2 = _settled(lab)
    return {"cold_burst_per_miss": (c1 - c0) / BURST, "next_burst_per_miss": (c2 - c1) / BURST}


def _count(lab, c0: int, port: int, names: list[str]) -> dict:
    """Upstream queries of the first miss (counted from ``c0``, the lab's count before the
    server started), per miss of the warm-up, and per measured miss."""
    _ask_all(port, names[:1])
    c1 = _settled(lab)
    _ask_all(port, names[1:1 + WARM])
    c2 = _settled(lab)
    _ask_all(port, names[1 + WARM:])
    c3 = _settled(lab)
    return {"first_miss": c1 - c0, "warm_up_per_miss": (c2 - c1) / WARM,
            "per_miss": (c3 - c2) / MEASURED, "measured_misses": MEASURED,
            "measured_queries": c3 - c2}


@pytest.mark.benchmark(group="daemon-subdomain-flood")
def test_upstream_queries_per_miss_below_a_deep_name(benchmark, deep_lab, tmp_path):
    rng = random.Random(28)
    results = {}

    def fresh(which: str, where: str):
        if which == "unbound":
            return Unbound.start(tmp_path / where, deep_lab, threads=1)
        return Daemon(tmp_path / where, deep_lab, *NO_IPV6, *NO_RATELIMIT, metrics=False).start()

    def run():
        for which in ("corenet-resolver", "unbound"):
            names = [f"r{rng.getrandbits(48):012x}.{DEEP}" for _ in range(1 + WARM + MEASURED)]
            c0 = _settled(deep_lab)
            server = fresh(which, f"{which}-one")
            try:
                results[which] = _count(deep_lab, c0, server.port, names)
            finally:
                server.stop()
            names = [f"b{rng.getrandbits(48):012x}.{DEEP}" for _ in range(2 * BURST)]
            c0 = _settled(deep_lab)
            server = fresh(which, f"{which}-burst")
            try:
                results[which].update(_count_bursts(deep_lab, c0, server.port, names))
            finally:
                server.stop()

    benchmark.pedantic(run, rounds=1, iterations=1)
    ours, theirs = results["corenet-resolver"], results["unbound"]
    print(f"\n[subdomain flood below {DEEP}] upstream queries\n"
          f"[subdomain flood] corenet-resolver {ours}\n[subdomain flood] unbound {theirs}")
    benchmark.extra_info.update({"corenet": ours, "unbound": theirs})
    for r in (ours, theirs):
        # every miss is a new name: at least one query each, and the first walks the path
        assert r["per_miss"] >= 1.0 and r["first_miss"] > r["per_miss"], r
    assert ours["per_miss"] <= MAX_PER_MISS, ours
    assert ours["next_burst_per_miss"] <= MAX_PER_MISS, ours
