"""The daemon's stats for one fixed mix of client queries (resolver.daemon.server.Server.stats):
hits, misses, NXDOMAIN, truncation, a qtype above 255, RD-clear probes, NOTIMP, short
packets, responses, an oversized datagram and an oversized TCP frame, clients outside the
ACL, over UDP (the C listener on corenet's loop, the DatagramProtocol on stock asyncio), TCP
(framer hits and the dispatch) and DNS over plain HTTP. Every verdict counter, drop reason,
answer count, the resolutions' times and the queries' shape (``extended-statistics``) is
compared with the figures the mix must give, path by path."""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from dataclasses import replace

import dns.asyncquery
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from ports import free_port
from resolver.daemon import proxy_protocol
from resolver.daemon.admission import DROP_REASONS, RECURSION_BOUNDS, Counters, histogram_bucket
from resolver.daemon.config import build
from resolver.daemon.server import Server


def _query(name: str, rdtype: str = "A", rd: bool = True, status: bool = False):
    q = dns.message.make_query(name, rdtype)
    if not rd:
        q.flags &= ~dns.flags.RD
    if status:
        q.set_opcode(dns.opcode.STATUS)
    return q


def _as_response(wire: bytes, size: int = 0) -> bytes:
    """``wire`` with QR set, padded with zeros to ``size`` bytes."""
    out = wire[:2] + bytes([wire[2] | 0x80]) + wire[3:]
    return out + b"\0" * max(0, size - len(out))


def _frame(wire: bytes) -> bytes:
    return struct.pack("!H", len(wire)) + wire


def _expected(fast_udp: bool) -> dict:
    """What the mix in ``test_stats_of_a_fixed_mix`` must count. The C UDP listener counts
    the qtype of the queries Unbound counts (its hits and the answers the door makes, not
    a header rejected nor the ACL's refusals; above 255 as 0) and its REFUSED answers in no
    latency bucket; the Python paths count every answer's qtype and latency. A header
    rejected (NOTIMP here) is counted apart, neither as a query nor by rcode, as Unbound
    counts it. An oversized datagram is a drop of its own only where the listener
    reads into a fixed buffer (the C listener); on asyncio this one is a response."""
    return {
        "queries": {"udp:0": 7, "udp:3": 2, "udp:5": 2,
                    "tcp:0": 3, "tcp:5": 2, "http:0": 1, "http:5": 2},
        "header_errors": 2,         # the NOTIMP over UDP and over TCP
        "qtypes": ({"0": 1, "1": 13, "16": 2, "28": 1, "257": 1} if fast_udp else
                   {"1": 14, "16": 2, "28": 1, "257": 2}),
        "answers_timed": 17 if fast_udp else 19,
        "recursions_timed": 5,      # the misses: www A, big TXT, nope A, www CAA, www AAAA
        # extended-statistics: the queries past the ACL and the header checks, as sent
        # (not NOTIMP, short or responses, nor the clients outside the ACL)
        "shape": {"flags": {"QR": 0, "AA": 0, "TC": 0, "RD": 13, "RA": 0, "Z": 0, "AD": 0,
                            "CD": 0},
                  "opcodes": {"0": 16}, "classes": {"1": 16}, "edns_present": 0,
                  "edns_do": 0, "ipv6": 0},
        "dropped": ({"short": 2, "response": 2, "oversize": 1, "send_error": 0,
                     "tcp_oversize": 1} if fast_udp else
                    {"short": 2, "response": 3, "tcp_oversize": 1}),
        "refused_acl": 6,
        "truncated": 2,
        "tcp": {"open": 0, "accepted": 9, "rejected": 0, "idle_closed": 0, "shed_idle": 0,
                "write_stalled": 0, "close_stalled": 0, "fast_hits": 2},
        "cache_hits": 8,
        "inflight": 0,
    }


def _observed(stats: dict, fast_hits_base: int) -> dict:
    return {
        "queries": stats["queries"],
        "header_errors": stats["header_errors"],
        "qtypes": stats["qtypes"],
        "answers_timed": sum(stats["latency_counts"]),
        "recursions_timed": sum(stats["recursion_counts"]),
        "shape": stats["query_shape"],
        "dropped": stats["dropped"],
        "refused_acl": stats["refused_acl"],
        "truncated": stats["truncated"],
        "tcp": stats["tcp"],
        "cache_hits": stats["engine"]["cache_hits"] - fast_hits_base,
        "inflight": stats["inflight"],
    }


async def _doh(host: str, port: int, queries) -> list:
    """The answers to ``queries`` POSTed on one plain HTTP/1.1 connection, in turn."""
    reader, writer = await asyncio.open_connection(host, port)
    out = []
    try:
        for q in queries:
            wire = q.to_wire()
            writer.write(b"POST /dns-query HTTP/1.1\r\nHost: test\r\n"
                         b"Content-Type: application/dns-message\r\nAccept: "
                         b"application/dns-message\r\nContent-Length: %d\r\n\r\n" % len(wire)
                         + wire)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head.startswith(b"HTTP/1.1 200"), head
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            out.append(dns.message.from_wire(
                await asyncio.wait_for(reader.readexactly(length), 5)))
    finally:
        writer.close()
    return out


def test_stats_of_a_fixed_mix(run, lab, loop_kind):
    async def go():
        cfg = build(None, {"listen": [f"127.0.0.1:{free_port()}"], "root_hints": None,
                           "upstream_port": lab.port, "do_not_query_localhost": False,
                           "http_listen": [f"127.0.0.1:{free_port()}"],
                           "extended_statistics": True})
        import resolver
        s = Server(cfg, resolver=resolver.Resolver(lab.root_hints, port=lab.port,
                                                   cache_size=cfg.cache_size,
                                                   do_not_query_localhost=False))
        await s.start()
        host, port = s.addresses[0]
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

        async def udp(q, rcode: int, tc: bool = False):
            r = await dns.asyncquery.udp(q, host, port=port, timeout=5,
                                         raise_on_truncation=False)
            assert r.id == q.id and r.rcode() == rcode and bool(r.flags & dns.flags.TC) == tc
            return r

        async def tcp(q, rcode: int):
            r = await dns.asyncquery.tcp(q, host, port=port, timeout=5)
            assert r.id == q.id and r.rcode() == rcode
            return r

        try:
            assert s.fast_udp == (loop_kind != "asyncio")
            engine_hits_before = s.stats()["engine"]["cache_hits"]
            www = _query("www.example.com.")
            # UDP, a client in the ACL
            for _ in range(2):                                  # miss, hit
                await udp(www, dns.rcode.NOERROR)
            for _ in range(2):                                  # miss, hit: both truncated
                await udp(_query("big.example.com.", "TXT"), dns.rcode.NOERROR, tc=True)
            for _ in range(2):                                  # miss, hit
                await udp(_query("nope.example.com."), dns.rcode.NXDOMAIN)
            for _ in range(2):                                  # miss, hit of qtype 257
                await udp(_query("www.example.com.", "CAA"), dns.rcode.NOERROR)
            await udp(_query("h300.bulk.net.", rd=False), dns.rcode.REFUSED)   # a probe
            await udp(_query("www.example.com.", status=True), dns.rcode.NOTIMP)
            raw.sendto(b"\x12\x34\x01\x00\x00", (host, port))             # short
            raw.sendto(_as_response(www.to_wire()), (host, port))         # a response
            raw.sendto(_as_response(www.to_wire(), 5000), (host, port))   # oversized
            await udp(www, dns.rcode.NOERROR)       # a hit read after the three drops
            # TCP, a client in the ACL
            await tcp(www, dns.rcode.NOERROR)                               # framer hit
            await tcp(_query("www.example.com.", "AAAA"), dns.rcode.NOERROR)   # miss
            await tcp(_query("h300.bulk.net.", rd=False), dns.rcode.REFUSED)
            await tcp(_query("www.example.com.", status=True), dns.rcode.NOTIMP)
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(_frame(b"\x12\x34\x01\x00\x00") + _frame(_as_response(www.to_wire()))
                         + _frame(www.to_wire()))           # short, response, then a hit
            n = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))[0]
            r = dns.message.from_wire(await asyncio.wait_for(reader.readexactly(n), 5))
            assert r.id == www.id and r.answer
            writer.close()
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(struct.pack("!H", 60000) + b"\0" * 100)   # above tcp-max-query
            assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
            writer.close()
            # DNS over HTTP, a client in the ACL: a hit, a probe
            web = cfg.http_listen[0]
            got = await _doh(*web, [www, _query("h300.bulk.net.", rd=False)])
            assert [r.rcode() for r in got] == [dns.rcode.NOERROR, dns.rcode.REFUSED]
            # Clients outside the ACL
            s.set_allow(replace(s.cfg, allow=(ipaddress.ip_network("10.0.0.0/8"),)))
            await udp(www, dns.rcode.REFUSED)
            await tcp(www, dns.rcode.REFUSED)
            assert [r.rcode() for r in await _doh(*web, [www])] == [dns.rcode.REFUSED]
            for _ in range(200):                    # the server sees the last connections end
                if s.counters.tcp_connections == 0:
                    break
                await asyncio.sleep(0.01)
            assert _observed(s.stats(), engine_hits_before) == _expected(s.fast_udp)
        finally:
            raw.close()
            await s.stop(1.0)
    run(go(), timeout=60)


def test_every_drop_reason_has_its_counter_in_the_block():
    c = Counters()
    for reason in DROP_REASONS:
        c.drop(reason)
    assert c.dropped == dict.fromkeys(DROP_REASONS, 1)       # each its own counter
    assert {f"proxy_{r}" for r in proxy_protocol.REASONS} <= set(DROP_REASONS)
    with pytest.raises(ValueError):
        c.drop("no such reason")
    assert c.dropped == dict.fromkeys(DROP_REASONS, 1)


@pytest.mark.parametrize("seconds, lower, upper", [
    (0.0, 0.0, 1e-06), (9e-07, 0.0, 1e-06), (1e-06, 1e-06, 2e-06), (0.0015, 0.001024, 0.002048),
    (0.3, 0.262144, 0.524288), (0.6, 0.524288, 1.0), (1.0, 1.0, 2.0), (3.0, 2.0, 4.0),
    (300000.0, 262144.0, 524288.0), (1e9, 262144.0, 524288.0),
])
def test_a_resolution_time_falls_in_unbound_s_histogram_bucket(seconds, lower, upper):
    """A bucket holds the times from its lower bound up to the next one's (Unbound's
    ``timehist``: the first bucket whose upper bound is above the time), the last one any
    longer time too; the bounds themselves are checked against a real Unbound's keys in
    test_unbound_control."""
    bounds = [*RECURSION_BOUNDS, 524288.0]
    i = histogram_bucket(seconds)
    assert (bounds[i], bounds[i + 1]) == (lower, upper)
