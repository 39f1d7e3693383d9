"""A bounded soak: mixed load (hits, misses, NXDOMAIN, TCP, names behind a fault-injecting
authority) on a daemon with a small cache. Every query gets an answer (SERVFAIL counts)
within the client's timeout, memory stays within the cache bound plus a fixed overhead, and
no descriptor leaks. ``CORENET_SOAK_SECONDS`` sets the load time (default 8)."""
from __future__ import annotations

import asyncio
import itertools
import os
import random
import select
import socket
import threading
import time

import dns.message
import dns.query
import dns.rcode

from daemon_proc import Daemon
from dnslab import zones as Z
from dnslab.fake import FakeServer
from dnslab.scenarios import FAULTS, fault_authority

SECONDS = float(os.environ.get("CORENET_SOAK_SECONDS", "8"))
PAUSE = 0.004               # longest wait for replies between two UDP queries, s
CACHE = 2 * 1024 * 1024     # the daemon's cache bound, bytes
OVERHEAD = 48 * 1024 * 1024  # what a Python process may add on top of it under this load
CLIENT_TIMEOUT = 6.0        # the engine gives up at 4 s (Limits.max_query_time)


class FaultyTLD:
    """dnslab.fake on ns1.fault. in a thread of its own: every third query meets a fault."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.loop = asyncio.new_event_loop()
        self.server: FakeServer | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        auth = fault_authority()
        faults = itertools.cycle(list(FAULTS.values()))
        counter = itertools.count()

        def handler(seen):
            if seen.message is None or not seen.message.question:
                return None
            if next(counter) % 3 == 0:
                return next(faults)(seen, auth)
            return auth(seen.message)

        self.handler = handler

    def __enter__(self) -> "FaultyTLD":
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(
            FakeServer.start(Z.FAKE_TLD_1, self.port, self.handler), self.loop).result(10)
        return self

    def __exit__(self, *exc) -> None:
        if self.server is not None:
            asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


def _tcp_load(port: int, stop: threading.Event, results: list) -> None:
    rng = random.Random(7)
    while not stop.is_set():
        name = rng.choice(["www.example.com.", "big.example.com.", "www.fault.",
                           f"t{rng.randrange(10**6)}.example.net."])
        t0 = time.monotonic()
        try:
            r = dns.query.tcp(dns.message.make_query(name, "TXT" if "big" in name else "A"),
                              "127.0.0.1", port=port, timeout=CLIENT_TIMEOUT)
            results.append((time.monotonic() - t0, r.rcode()))
        except Exception as e:            # noqa: BLE001 - counted as a failure below
            results.append((time.monotonic() - t0, repr(e)))
        time.sleep(0.02)


def test_soak_with_a_faulty_authority(lab, tmp_path):
    with FaultyTLD(lab.port):
        # One client sends every query: a per-client miss budget (ip-ratelimit, off by
        # default) would drop some of its misses on a fast machine, by design, where this
        # test wants an answer to each one. The budget has its own tests.
        d = Daemon(tmp_path, lab, "--cache-size", str(CACHE), "--ip-ratelimit", "0").start()
        try:
            _soak(d)
        finally:
            assert d.stop() == 0, d.log_text()[-3000:]


def _soak(d: Daemon) -> None:
    rng = random.Random(11)
    for name in ("www.example.com.", "www.example.net.", "example.com."):
        d.ask(name)
    fds0 = d.fds()
    rss0 = d.rss()
    stop = threading.Event()
    tcp_results: list = []
    tcp = threading.Thread(target=_tcp_load, args=(d.port, stop, tcp_results))
    tcp.start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.setblocking(False)
    sent: dict[int, float] = {}
    latency: list[float] = []
    rcodes: dict[int, int] = {}
    qid = itertools.count(1)
    bulk = itertools.cycle(range(500))

    def pick() -> tuple[str, str]:
        x = rng.random()
        if x < 0.45:
            return rng.choice(["www.example.com.", "www.example.net.", "example.com."]), "A"
        if x < 0.70:
            return f"h{next(bulk):03d}.bulk.net.", "A"
        if x < 0.85:
            return f"nx{rng.randrange(10**6)}.example.com.", "A"
        return rng.choice(["www.fault."] + [f"n{i:03d}.fault." for i in range(100)]), "A"

    def drain(block: float) -> None:
        while select.select([sock], [], [], block)[0]:
            block = 0
            try:
                data = sock.recv(65535)
            except BlockingIOError:
                return
            i = (data[0] << 8) | data[1]
            t = sent.pop(i, None)
            if t is not None:
                latency.append(time.monotonic() - t)
                rcodes[data[3] & 0x0F] = rcodes.get(data[3] & 0x0F, 0) + 1

    t_end = time.monotonic() + SECONDS
    n = 0
    while time.monotonic() < t_end and n < 60000:
        name, rdtype = pick()
        i = next(qid) & 0xFFFF
        q = dns.message.make_query(name, rdtype)
        q.id = i
        sent[i] = time.monotonic()
        sock.sendto(q.to_wire(), ("127.0.0.1", d.port))
        n += 1
        drain(PAUSE)
    deadline = time.monotonic() + CLIENT_TIMEOUT
    while sent and time.monotonic() < deadline:
        drain(0.05)
    stop.set()
    tcp.join(CLIENT_TIMEOUT + 2)
    sock.close()
    assert n > 100
    assert not sent, (f"{len(sent)} of {n} UDP queries never answered; dropped: "
                      f"{d.stats()['dropped']}")
    assert max(latency) < CLIENT_TIMEOUT
    assert rcodes.get(dns.rcode.NOERROR, 0) > n / 2 and rcodes.get(dns.rcode.NXDOMAIN, 0) > 0
    bad = [r for r in tcp_results if not isinstance(r[1], int)]
    assert tcp_results and not bad, bad[:5]
    # Quiet again: nothing in flight, descriptors back to where they were.
    deadline = time.monotonic() + 10
    while True:
        stats = d.stats()
        if stats["inflight"] == 0 and d.fds() == fds0:
            break
        assert time.monotonic() < deadline, (stats["inflight"], d.fds(), fds0)
        time.sleep(0.1)
    assert stats["cache"]["bytes"] <= CACHE
    assert d.rss() - rss0 < CACHE + OVERHEAD, (rss0, d.rss())
    assert stats["engine"]["upstream_timeouts"] + stats["engine"]["dropped_malformed"] \
        + stats["engine"]["dropped_mismatched"] > 0, "the faults were met"
    assert stats["cache"]["evictions"] > 0 or stats["cache"]["bytes"] < CACHE
