"""The cache's byte bound is real memory: filled past its bound with the shapes a resolver
stores (whole answers, address rrsets, signed rrsets, delegations, negative entries), the
Python heap it holds (traced by tracemalloc) stays within 1.3 times ``cache_size``, and the
accounting is not so pessimistic that the cache holds much less than it was given."""
from __future__ import annotations

import gc
import random
import tracemalloc

import dns.message
import dns.name
import dns.rrset
import pytest

from resolver.cache.answer import parse_query
from resolver.cache.store import Cache, store_message, store_records

BOUND = 4 * 1024 * 1024
RANK = 3


TAG = b"h0000000"


def _owner(depth: int) -> dns.name.Name:
    return dns.name.from_text(".".join([TAG.decode()] + [f"l{d}" for d in range(depth)])
                              + ".example.com.")


def _message_templates() -> list[tuple[bytes, bytes]]:
    """Client queries and responses of several sizes (1 to 8 addresses, an authority
    section or not, names 3 to 5 labels deep) whose first label is ``TAG``."""
    out = []
    for depth in range(3):
        for n in (1, 2, 4, 8):
            for authority in (False, True):
                q = dns.message.make_query(_owner(depth), "A", use_edns=True)
                r = dns.message.make_response(q)
                r.answer.append(dns.rrset.from_text(_owner(depth), 300, "IN", "A",
                                                    *[f"192.0.2.{k + 1}" for k in range(n)]))
                if authority:
                    r.authority.append(dns.rrset.from_text(
                        "example.com.", 300, "IN", "NS", "ns1.example.com.", "ns2.example.com."))
                out.append((q.to_wire(), r.to_wire()))
    return out


def _owners() -> list[bytes]:
    return [_owner(depth).to_wire() for depth in range(3)]


def _records(owner: bytes, rng: random.Random):
    """Record tuples and RRSIGs as the iterator stores them: addresses, delegations, a
    signed rrset."""
    kind = rng.random()
    if kind < 0.5:
        return [(owner, 1, 1, 300, bytes([192, 0, 2, k])) for k in range(rng.choice([1, 2, 4]))], []
    if kind < 0.8:
        return [(owner, 2, 1, 3600, b"\x03ns%d\x07example\x03net\x00" % k)
                for k in range(rng.choice([2, 4]))], []
    sig = (owner, 46, 1, 300, bytes([0, 28]) + bytes(16) + bytes(64 + rng.randrange(2) * 192))
    return [(owner, 28, 1, 300, bytes(16))], [sig]


def _traced(fill) -> tuple[int, Cache]:
    cache = Cache(BOUND)
    tracemalloc.start()
    try:
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        fill(cache)
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - base, cache
    finally:
        tracemalloc.stop()


def _fill_messages(cache: Cache) -> None:
    rng = random.Random(1)
    templates = _message_templates()
    lru = cache.messages.lru
    for i in range(200_000):
        q, r = rng.choice(templates)
        tag = b"h%07d" % i
        q, r = q.replace(TAG, tag), r.replace(TAG, tag)
        store_message(cache.messages, parse_query(q)[0], r, 1000.0)
        if lru.evictions > 2 * len(lru.data):
            return
    raise AssertionError("the message cache never filled")


def _fill_rrsets(cache: Cache) -> None:
    rng = random.Random(2)
    owners = _owners()
    soa = [(b"\x07example\x03com\x00", 6, 1, 3600, b"\x02ns\xc0\x00\x05admin\xc0\x00" + bytes(20))]
    lru = cache.rrsets.lru
    for i in range(200_000):
        owner = rng.choice(owners).replace(TAG, b"h%07d" % i)
        if rng.random() < 0.1:
            cache.rrsets.store_negative(owner, 1, 1, True, soa, RANK, 1000.0)
        else:
            recs, sigs = _records(owner, rng)
            store_records(cache.rrsets, recs, RANK, 1000.0, sigs)
        if lru.evictions > 2 * len(lru.data):
            return
    raise AssertionError("the rrset cache never filled")


@pytest.mark.parametrize("fill", [_fill_messages, _fill_rrsets], ids=["messages", "rrsets"])
def test_a_full_cache_holds_what_its_bound_says(fill):
    held, cache = _traced(fill)
    part = cache.messages.lru if fill is _fill_messages else cache.rrsets.lru
    assert part.evictions > 0 and part.bytes <= part.max_bytes
    ratio = held / part.max_bytes
    print(f"{len(part.data)} entries, {held} bytes held for a bound of {part.max_bytes}: {ratio:.2f}x")
    assert ratio <= 1.3, f"{held} bytes held for a bound of {part.max_bytes} ({ratio:.2f}x)"
    assert ratio >= 0.7, f"accounting too pessimistic: {ratio:.2f}x of the bound used"


# ---- the daemon: resident memory once its cache is full ------------------------------------

DAEMON_CACHE = 8 * 1024 * 1024


def _flood_names(d, first: int, count: int, window: int = 48) -> int:
    """Asks ``count`` distinct wildcard names over UDP, ``window`` at a time; returns how
    many got NOERROR. Bounded: each query waits at most 3 s, the whole at most 120 s."""
    import select
    import socket
    import time

    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    sock.setblocking(False)
    template = dns.message.make_query("h0000000.wild.example.com.", "A").to_wire()
    sent: dict[int, float] = {}
    ok = 0
    i = 0
    deadline = time.monotonic() + 120
    try:
        while (i < count or sent) and time.monotonic() < deadline:
            while i < count and len(sent) < window:
                qid = (first + i) & 0xFFFF
                q = qid.to_bytes(2, "big") + template[2:].replace(TAG, b"h%07d" % (first + i))
                sock.sendto(q, ("127.0.0.1", d.port))
                sent[qid] = time.monotonic()
                i += 1
            if select.select([sock], [], [], 0.2)[0]:
                while True:
                    try:
                        data = sock.recv(4096)
                    except BlockingIOError:
                        break
                    if sent.pop(int.from_bytes(data[:2], "big"), None) is not None:
                        ok += (data[3] & 0x0F) == 0
            now = time.monotonic()
            for qid in [k for k, t in sent.items() if now - t > 3.0]:
                del sent[qid]
    finally:
        sock.close()
    return ok


def test_daemon_resident_memory_follows_the_cache_size(lab, tmp_path):
    """Past a warm-up (the fixed overhead: interpreter, modules, sockets, the lab's
    delegations), filling the cache twice over adds at most 1.3 times ``cache-size`` of
    resident memory."""
    from daemon_proc import Daemon

    d = Daemon(tmp_path, lab, "--cache-size", str(DAEMON_CACHE), "--ip-ratelimit", "0").start()
    try:
        assert _flood_names(d, 0, 2000) >= 1900
        rss0 = d.rss()
        answered = _flood_names(d, 2000, 30000)
        stats = d.stats()
        rss1 = d.rss()
        grown = rss1 - rss0
        print(f"\nfixed overhead {rss0 / 2**20:.1f} MiB; after {answered} more names "
              f"{rss1 / 2**20:.1f} MiB (+{grown / 2**20:.1f} MiB for a cache of "
              f"{DAEMON_CACHE / 2**20:.0f} MiB), cache {stats['cache']}")
        assert answered >= 28500
        assert stats["cache"]["evictions"] > 0, "the cache never filled"
        assert grown <= 1.3 * DAEMON_CACHE, (grown, DAEMON_CACHE)
    finally:
        assert d.stop() == 0, d.log_text()[-3000:]
