"""The daemon under a descriptor limit it cannot raise (soft and hard 256): it fits its
bounds (misses in flight, upstream sockets, TCP clients) to the limit at start and says so
once, and a flood then meets those bounds, never EMFILE: names under a zone whose servers
never answer or refuse (each holding an upstream socket until its timeout), and more TCP
connections than it may hold, while a cached name is asked and answered throughout."""
from __future__ import annotations

import random
import socket
import time

import dns.message
import dns.rcode
import pytest

from daemon_proc import Daemon

LIMIT = 256
FLOOD = 3000                   # names under the dead zone, sent within about a second
TCP_CLIENTS = 160              # more than the limit leaves for TCP clients
DEAD_ZONE = "alldead.com."     # the lab's: one silent server, one refusing


@pytest.fixture
def limited(lab, tmp_path):
    d = Daemon(tmp_path, lab, "--ip-ratelimit", "0",
               wrap=("prlimit", f"--nofile={LIMIT}:{LIMIT}", "--")).start()
    yield d
    assert d.stop() == 0, d.log_text()[-3000:]


def _probe(port: int) -> bool:
    """A cached name asked once over UDP: answered (NOERROR with an answer) within 2 s."""
    q = dns.message.make_query("www.example.com.", "A")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2.0)
        s.sendto(q.to_wire(), ("127.0.0.1", port))
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            try:
                r = dns.message.from_wire(s.recv(4096))
            except socket.timeout:
                return False
            if r.id == q.id:
                return r.rcode() == dns.rcode.NOERROR and bool(r.answer)
    return False


def test_a_flood_under_a_low_descriptor_limit_meets_the_bounds_not_emfile(limited):
    d = limited
    log = d.log_text()
    assert log.count("is below the") == 1, log           # said once, naming what it lowered
    for bound in ("max-inflight 10000 to", "max-upstream-sockets 1024 to",
                  "tcp-max-connections 1000 to"):
        assert bound in log, log
    assert d.ask("www.example.com.").answer               # cached from here on
    rng = random.Random(7)
    flood = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(4)]
    clients: list[socket.socket] = []
    probes, answered, peak = 0, 0, d.fds()
    try:
        for s in flood:
            s.setblocking(False)
        sent = 0
        t_end = time.monotonic() + 20                     # a bound on the whole run
        while (sent < FLOOD or len(clients) < TCP_CLIENTS) and time.monotonic() < t_end:
            for _ in range(100):
                if sent >= FLOOD:
                    break
                q = dns.message.make_query(f"w{rng.getrandbits(48):012x}.{DEAD_ZONE}", "A")
                try:
                    flood[sent % len(flood)].sendto(q.to_wire(), ("127.0.0.1", d.port))
                except BlockingIOError:
                    pass
                sent += 1
            for _ in range(10):
                if len(clients) < TCP_CLIENTS:
                    c = socket.socket()
                    c.settimeout(5)
                    c.connect(("127.0.0.1", d.port))
                    clients.append(c)
            for s in flood:                               # answers read and dropped
                try:
                    while True:
                        s.recv(4096)
                except (BlockingIOError, InterruptedError):
                    pass
            probes += 1
            answered += _probe(d.port)
            peak = max(peak, d.fds())
            time.sleep(0.03)
        for _ in range(20):                               # the flood's timeouts come back
            probes += 1
            answered += _probe(d.port)
            peak = max(peak, d.fds())
            time.sleep(0.05)
    finally:
        for s in flood + clients:
            s.close()
    assert sent == FLOOD and len(clients) == TCP_CLIENTS
    assert d.alive(), d.log_text()[-3000:]
    assert answered == probes, (answered, probes)
    assert peak < LIMIT, peak
    st = d.stats()
    engine, dropped = st["engine"], st.get("dropped", {})
    # the flood met a bound: misses shed at max-inflight, or upstream sockets at their cap
    assert dropped.get("overload", 0) + engine["upstream_capped"] + dropped.get(
        "jostled", 0) > 0, st
    text = d.log_text()
    assert "Too many open files" not in text and "EMFILE" not in text, text[-3000:]
    assert d.ask("www.example.com.").answer                # and it still serves
