"""The figures of what the daemon holds outside its caches, which ``stats`` prints under
Unbound's names (``mem.mod.iterator``, ``mem.mod.validator``, ``mem.streamwait``,
``mem.http.query_buffer``, ``mem.http.response_buffer``): the walk that sizes a table
(``resolver.memory``), each table it is given, and the bytes stream connections hold,
seen rise while a client does not read or has sent half a request, and fall back to zero
once it has read or sent the rest, through the daemon's server in the test's process on
every loop kind."""
from __future__ import annotations

import asyncio
import socket
import struct
import sys
import time
import types

import dns.message
import pytest

from ports import free_port
from resolver import memory
from resolver.daemon import metrics, unbound_stats
from resolver.daemon.config import build
from resolver.daemon.server import Server
from resolver.dnssec.sig import Key
from resolver.zones import LocalZone, Zones

getsizeof = sys.getsizeof


def test_every_object_a_table_reaches_counts_once():
    a = b"x" * 1000
    inner = (a, b"y" * 10)
    table = [a, a, inner]
    exact = getsizeof(table) + getsizeof(a) + getsizeof(inner) + getsizeof(inner[1])
    assert memory.held(table) == exact
    other = [a]
    assert memory.held(table, other) == exact + getsizeof(other)     # a, once
    assert memory.held([len, int, sys]) == getsizeof([len, int, sys])  # shared: not entered


def test_a_long_table_is_sized_from_a_sample_of_it(monkeypatch):
    """A table of 100,000 entries costs about as much to size as one of ``SAMPLE``, and
    the figure is within 2% of what walking every entry gives."""
    table = {10**6 + i: bytes(50 + i % 7) for i in range(100_000)}
    exact = getsizeof(table) + sum(getsizeof(k) + getsizeof(v) for k, v in table.items())
    sized = []

    def counting(obj):
        sized.append(obj)
        return getsizeof(obj)
    monkeypatch.setattr(memory, "sys", types.SimpleNamespace(getsizeof=counting))
    figure = memory.held(table)
    assert len(sized) == 1 + 2 * memory.SAMPLE
    assert abs(figure - exact) < exact * 0.02, (figure, exact)


def test_a_key_counts_its_rdata_which_it_does_not_show_the_collector():
    head = bytes([1, 1, 3, 13])
    assert getsizeof(Key(head + bytes(164))) - getsizeof(Key(head + bytes(64))) == 100


def test_the_validator_figure_covers_each_of_its_tables():
    import resolver

    r = resolver.Resolver(validate=False)
    assert memory.validator_bytes(r.dnssec) == 0          # no validator, as Unbound's
    r = resolver.Resolver()
    v = r.dnssec
    size = 20_000
    for fill in (lambda blob: v.zones.__setitem__(b"\x01a\x00", blob),
                 lambda blob: v.keys.__setitem__(b"\x01b\x00", Key(bytes([1, 1, 3, 13]) + blob)),
                 lambda blob: v.bogus.__setitem__((b"\x01c\x00", 1), (0.0, blob, 0)),
                 lambda blob: v.no_cuts.__setitem__(b"\x01d\x00" + blob, 0.0),
                 lambda blob: v.nsec_cache.zones.__setitem__(b"\x01e\x00", [blob]),
                 lambda blob: v.anchors.__setitem__(b"\x01f\x00", [blob])):
        before = memory.validator_bytes(v)
        fill(bytes(size))                                   # a new object each time
        assert memory.validator_bytes(v) >= before + size


def test_the_iterator_figure_grows_with_the_servers_it_measured():
    import resolver

    r = resolver.Resolver()
    before = memory.iterator_bytes(r)
    assert before > 0                                      # the root hints at least
    for i in range(100):
        r.cache.infra.record_rtt(f"192.0.2.{i}", 0.01)
    assert memory.iterator_bytes(r) > before + 100 * 40


#: A local name whose answer is about 4 KB: 2,000 of them are more than the kernel's socket
#: buffers take (``net.ipv4.tcp_wmem``'s largest, 4 MiB by default).
BIG = "big.test."
BIG_TXT = " ".join(f'"{c * 250}"' for c in "abcdefghijklmnop")
ZONES = Zones(local=[LocalZone("test.", "static", (
    "test. SOA ns.test. admin.test. 1 3600 600 86400 120", f"{BIG} 60 TXT {BIG_TXT}"))])
ASKED = 2000


async def _serve(lab) -> Server:
    import resolver

    cfg = build(None, {"listen": [f"127.0.0.1:{free_port()}"], "root_hints": None,
                       "upstream_port": lab.port, "do_not_query_localhost": False,
                       "http_listen": [f"127.0.0.1:{free_port()}"],
                       "extended_statistics": True})
    r = resolver.Resolver(lab.root_hints, port=lab.port, cache_size=cfg.cache_size,
                          do_not_query_localhost=False, zones=ZONES)
    s = Server(cfg, resolver=r)
    await s.start()
    return s


async def _until(what, want, seconds: float = 10.0):
    """Polls ``what()`` until ``want(value)`` (at most ``seconds``); the last value."""
    end = time.monotonic() + seconds
    while True:
        value = what()
        if want(value) or time.monotonic() > end:
            return value
        await asyncio.sleep(0.02)


async def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    loop = asyncio.get_running_loop()
    out = b""
    while len(out) < n:
        got = await asyncio.wait_for(loop.sock_recv(sock, n - len(out)), 10)
        assert got, "the server closed the connection"
        out += got
    return out


def _printed(s: Server) -> dict[str, int]:
    lines = unbound_stats.render(s.stats(), extended=True).splitlines()
    return {k: int(v) for k, v in (line.split("=", 1) for line in lines)
            if k.startswith("mem.")}


def test_answers_a_client_does_not_read_are_the_stream_wait(run, lab, loop_kind):
    async def go():
        s = await _serve(lab)
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        try:
            await loop.sock_connect(sock, s.addresses[0])
            wire = dns.message.make_query(BIG, "TXT").to_wire()
            await loop.sock_sendall(sock, (struct.pack("!H", len(wire)) + wire) * ASKED)
            waiting = await _until(lambda: s.stats()["memory"]["stream_wait"],
                                   lambda n: n > 100_000)
            assert waiting > 100_000
            printed = _printed(s)
            assert printed["mem.streamwait"] > 100_000
            assert printed["mem.http.query_buffer"] == printed["mem.http.response_buffer"] == 0
            assert 'memory_bytes{part="stream_wait"}' in metrics.render(s.stats())
            # the client reads every answer: nothing waits any more
            for _ in range(ASKED):
                n = struct.unpack("!H", await _recv_exactly(sock, 2))[0]
                body = await _recv_exactly(sock, n)
            assert dns.message.from_wire(body).answer[0][0].strings[0] == b"a" * 250
            assert await _until(lambda: s.stats()["memory"]["stream_wait"],
                                lambda n: n == 0) == 0
        finally:
            sock.close()
            await s.stop(1.0)
    run(go(), timeout=90)


def test_half_a_doh_request_is_the_http_query_buffer(run, lab, loop_kind):
    async def go():
        s = await _serve(lab)
        reader, writer = await asyncio.open_connection(*s.cfg.http_listen[0])
        wire = dns.message.make_query(BIG, "TXT").to_wire()
        head = (b"POST /dns-query HTTP/1.1\r\nHost: test\r\n"
                b"Content-Type: application/dns-message\r\nContent-Length: %d\r\n\r\n"
                % len(wire))
        try:
            writer.write(head + wire[:9])
            held = await _until(lambda: s.stats()["memory"]["http_query_buffer"],
                                lambda n: n == 9)
            assert held == 9
            assert _printed(s)["mem.http.query_buffer"] == 9
            writer.write(wire[9:])
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert answer.startswith(b"HTTP/1.1 200")
            memory_now = await _until(lambda: s.stats()["memory"],
                                      lambda m: m["http_query_buffer"] == 0
                                      and m["http_response_buffer"] == 0)
            assert (memory_now["http_query_buffer"], memory_now["http_response_buffer"]) \
                == (0, 0)
        finally:
            writer.close()
            await s.stop(1.0)
    run(go(), timeout=60)
