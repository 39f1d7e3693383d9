"""Queries to authoritative servers over UDP and TCP, on any asyncio loop.

Each UDP query gets its own connected socket (so a fresh kernel-chosen random source port) and
a fresh random ID. A datagram is accepted only from the address asked, with that ID, QR set and
the question section byte-for-byte equal to the one sent (case-sensitive, so 0x20 case
randomisation can be switched on later); anything else is counted and ignored while the
query keeps waiting. FORMERR to an EDNS query is retried without EDNS (and remembered);
a truncated answer is retried over TCP with the 2-byte length prefix.
"""
from __future__ import annotations

import _socket
import asyncio
import errno
import socket
import struct
import time

from resolver.upstream import udp
from resolver.upstream.udp import fresh_id as _fresh_id, needs_retry  # noqa: F401 (re-exported)
from resolver.limits import DEFAULT, EDNS_BUFFER_SIZE, Limits
from resolver.wire.codec import WireError, build_query, parse_response

_DGRAM_NB = socket.SOCK_DGRAM | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC


class UpstreamTimeout(Exception):
    """No acceptable reply within the timeout."""


class UpstreamFailure(Exception):
    """The server could not be asked (refused, reset, oversized or broken TCP reply...)."""


class UpstreamUnreachable(UpstreamFailure):
    """This host has no way to the server (no route, no such address family): the kernel
    refused the send at once, so it cost no time, and retrying soon is pointless."""


#: What the kernel says, at once, when a host cannot reach an address at all (typically an
#: IPv6 address on a host without IPv6 connectivity).
UNREACHABLE_ERRNOS = frozenset((errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL,
                                errno.EAFNOSUPPORT))


def failure(addr: str, exc: OSError) -> UpstreamFailure:
    """The UpstreamFailure (an UpstreamUnreachable if it is one) for ``exc`` asking ``addr``."""
    kind = UpstreamUnreachable if exc.errno in UNREACHABLE_ERRNOS else UpstreamFailure
    return kind(f"{addr}: {exc}")


udp.configure(UpstreamFailure, UpstreamTimeout, UpstreamUnreachable, UNREACHABLE_ERRNOS)


def _family(addr: str) -> int:
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def _matches(data: bytes, qid: int, question: bytes) -> bool:
    return (len(data) >= 12 + len(question)
            and data[0] == qid >> 8 and data[1] == qid & 0xFF
            and data[2] & 0x80
            and data[4] == 0 and data[5] == 1
            and data[12:12 + len(question)] == question)


class _UDPQuery:
    """One UDP query in flight: a connected socket of our own (the kernel picks a random
    ephemeral source port and drops datagrams from any other address before they reach us),
    watched with ``add_reader`` rather than wrapped in a transport: a query is one send and
    (usually) one receive, and a transport with its protocol costs more than the whole
    exchange. ``fut`` gets (reply wire, wire.Parsed); ``close()`` must follow, also on
    cancellation. A plain object, so that awaiting it costs no coroutine of its own."""

    __slots__ = ("fut", "sock", "fd", "timer", "loop", "addr", "qid", "question", "stats",
                 "limits", "wire")

    def __init__(self, loop, addr: str, port: int, wire: bytes, qid: int, question: bytes,
                 timeout: float, stats, limits: Limits) -> None:
        # The C-level socket, created non-blocking: no Python-level socket.socket __init__
        # and no separate ioctl for setblocking(False).
        try:
            sock = _socket.socket(_family(addr), _DGRAM_NB)
        except OSError as exc:          # EAFNOSUPPORT: no IPv6 on this host
            raise failure(addr, exc) from None
        try:
            sock.connect((addr, port))
            sock.send(wire)
        except OSError as exc:
            sock.close()
            raise failure(addr, exc) from None
        self.loop, self.addr, self.qid, self.question, self.wire = loop, addr, qid, question, wire
        self.stats, self.limits = stats, limits
        self.sock = sock
        self.fut = loop.create_future()
        self.fd = fd = sock.fileno()
        loop.add_reader(fd, self._readable)
        self.timer = loop.call_later(timeout, self._expire)

    def _expire(self) -> None:
        if not self.fut.done():
            self.fut.set_exception(UpstreamTimeout(self.addr))

    def _readable(self) -> None:
        fut, recv, stats = self.fut, self.sock.recv, self.stats
        while not fut.done():
            try:
                data = recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:       # ICMP unreachable on the connected socket
                fut.set_exception(failure(self.addr, exc))
                return
            if not _matches(data, self.qid, self.question):
                if stats is not None:
                    stats.dropped_mismatched += 1
                continue
            # Parsed here so that a malformed datagram (an off-path forgery that guessed the
            # ID, or a broken server) is dropped and the real answer still awaited.
            try:
                parsed = parse_response(data, self.limits.max_pointer_jumps,
                                        self.limits.max_records_per_section)
            except WireError:
                if stats is not None:
                    stats.dropped_malformed += 1
                continue
            fut.set_result((data, parsed))

    def close(self) -> None:
        if self.sock is not None:
            self.timer.cancel()
            self.loop.remove_reader(self.fd)
            self.sock.close()
            self.sock = None


async def udp_exchange(addr: str, port: int, wire: bytes, qid: int, question: bytes,
                       timeout: float, stats=None, limits: Limits = DEFAULT) -> tuple:
    """(reply wire, its wire.Parsed) of the first acceptable datagram (see _UDPQuery)."""
    q = _UDPQuery(asyncio.get_running_loop(), addr, port, wire, qid, question, timeout,
                  stats, limits)
    try:
        return await q.fut
    finally:
        q.close()


class _TCPQuery(asyncio.Protocol):
    def __init__(self, fut: asyncio.Future, max_size: int) -> None:
        self.fut = fut
        self.buf = bytearray()
        self.max_size = max_size

    def data_received(self, data: bytes) -> None:
        if self.fut.done():
            return
        self.buf += data
        if len(self.buf) >= 2:
            need = (self.buf[0] << 8) | self.buf[1]
            if need > self.max_size or need < 12:
                self.fut.set_exception(UpstreamFailure(f"bad TCP frame length {need}"))
            elif len(self.buf) >= 2 + need:
                self.fut.set_result(bytes(self.buf[2:2 + need]))

    def connection_lost(self, exc) -> None:
        if not self.fut.done():
            self.fut.set_exception(UpstreamFailure("TCP connection closed before the answer"))


async def tcp_exchange(addr: str, port: int, wire: bytes, timeout: float,
                       max_size: int = 65535) -> bytes:
    """One query over TCP: [2-byte big-endian length][message], the answer framed the same."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    async def go() -> bytes:
        transport, _ = await loop.create_connection(lambda: _TCPQuery(fut, max_size), addr, port)
        try:
            transport.writelines([struct.pack("!H", len(wire)), wire])
            return await fut
        finally:
            transport.close()

    try:
        return await asyncio.wait_for(go(), timeout)
    except asyncio.TimeoutError:
        raise UpstreamTimeout(addr) from None
    except OSError as exc:
        raise failure(addr, exc) from None


_QTC = struct.Struct("!HH")


def question_of(qname: bytes, qtype: int, qclass: int) -> bytes:
    """The question section a reply must echo byte for byte."""
    return qname + _QTC.pack(qtype, qclass)


def udp_query(loop, addr: str, port: int, qname: bytes, qtype: int, qclass: int,
              question: bytes, edns: bool, do: bool, timeout: float, stats,
              limits: Limits) -> _UDPQuery:
    """Sends one UDP query (fresh socket, so a fresh random port, and a fresh random ID):
    a ``resolver.upstream.udp.UDPQuery``, or a ``_UDPQuery`` for a non-numeric address;
    await its ``fut``, then ``close()`` it. Raises UpstreamFailure if it cannot be sent."""
    qid = _fresh_id()
    wire = build_query(qid, qname, qtype, qclass, edns=edns, do=do and edns,
                       payload=EDNS_BUFFER_SIZE)
    if stats is not None:
        stats.upstream_queries += 1
    try:
        # The same exchange in C (no Python socket object); numeric addresses only.
        return udp.UDPQuery(loop, addr, port, wire, qid, question, timeout, stats,
                                  limits)
    except ValueError:
        return _UDPQuery(loop, addr, port, wire, qid, question, timeout, stats, limits)


async def exchange(addr: str, port: int, qname: bytes, qtype: int, qclass: int, *,
                   timeout: float, edns: bool = True, do: bool = True,
                   limits: Limits = DEFAULT, stats=None, infra=None,
                   loop: asyncio.AbstractEventLoop | None = None) -> tuple[bytes, float, object]:
    """Asks one server; returns (reply wire, rtt of the UDP exchange, wire.Parsed reply).

    Raises UpstreamTimeout or UpstreamFailure. Retries without EDNS on FORMERR and over TCP
    on TC, each at most once.
    """
    question = question_of(qname, qtype, qclass)
    if loop is None:
        loop = asyncio.get_running_loop()
    t0 = time.monotonic()
    q = udp_query(loop, addr, port, qname, qtype, qclass, question, edns, do, timeout, stats,
                  limits)
    try:
        reply, parsed = await q.fut
    finally:
        q.close()
    rtt = time.monotonic() - t0
    if needs_retry(reply, edns):
        return await retry(q, reply, parsed, rtt, port, qname, qtype, qclass, timeout=timeout,
                           edns=edns, do=do, limits=limits, stats=stats, infra=infra,
                           loop=loop)
    return reply, rtt, parsed


async def retry(q: _UDPQuery, reply: bytes, parsed, rtt: float, port: int, qname: bytes,
                qtype: int, qclass: int, *, timeout: float, edns: bool, do: bool,
                limits: Limits, stats, infra, loop) -> tuple[bytes, float, object]:
    """The rest of an exchange whose first UDP reply ``needs_retry``: FORMERR to EDNS is
    asked once more without EDNS (and remembered in ``infra``); a truncated reply is asked
    again over TCP."""
    addr, question = q.addr, q.question
    if edns and (reply[3] & 0x0F) == 1:
        if infra is not None:
            infra.set_edns(addr, False)
        t0 = time.monotonic()
        q = udp_query(loop, addr, port, qname, qtype, qclass, question, False, do, timeout,
                      stats, limits)
        try:
            reply, parsed = await q.fut
        finally:
            q.close()
        rtt = time.monotonic() - t0
    if reply[2] & 0x02:
        if stats is not None:
            stats.upstream_tcp += 1
        reply = await tcp_exchange(addr, port, q.wire, limits.tcp_timeout,
                                   limits.max_tcp_message)
        if not _matches(reply, q.qid, question):
            raise UpstreamFailure(f"{addr}: TCP answer does not match the query")
        try:
            parsed = parse_response(reply, limits.max_pointer_jumps,
                                    limits.max_records_per_section)
        except WireError:
            if stats is not None:
                stats.dropped_malformed += 1
            raise UpstreamFailure(f"{addr}: malformed TCP answer") from None
    return reply, rtt, parsed
