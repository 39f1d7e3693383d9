"""A scriptable authoritative server (UDP and TCP, asyncio) for faults NSD cannot make.

Its behaviour is a function of each query: ``handler(seen) -> action(s)``, where an action
is a ``Reply`` (optionally delayed, truncated, with a wrong ID or question, or sent from
another address), ``Garbage`` bytes, ``Silence``, or on TCP ``CloseMidFrame``/``Close``.
A bare ``dns.message.Message`` means ``Reply(message)``; ``None`` means silence. It
records every query it saw (``queries``) and counts what it sent (``sent``), so a test can
assert that a resolver gave up on it, remembered it, or never asked it at all.

    srv = await FakeServer.start("127.0.0.30", lab.port, serve(zone_authority))
    ...
    await srv.close()

Runs on whatever loop is running, through asyncio's public API only.
"""
from __future__ import annotations

import asyncio
import logging
import struct
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from .authority import ZoneAuthority, response

log = logging.getLogger("dnslab.fake")


@dataclass
class Seen:
    """One query as the fake received it."""

    wire: bytes
    message: dns.message.Message | None  # None when it did not parse
    transport: str  # "udp" or "tcp"
    peer: tuple[str, int]

    @property
    def qname(self) -> str | None:
        """The question name exactly as sent (case kept), or None."""
        if self.message is None or not self.message.question:
            return None
        return self.message.question[0].name.to_text()

    @property
    def qtype(self) -> str | None:
        if self.message is None or not self.message.question:
            return None
        return dns.rdatatype.to_text(self.message.question[0].rdtype)

    @property
    def edns(self) -> bool:
        return self.message is not None and self.message.edns >= 0

    @property
    def do(self) -> bool:
        return self.message is not None and bool(self.message.ednsflags & dns.flags.DO)


@dataclass
class Reply:
    """Send ``message`` (a response, or raw wire bytes sent as they are).

    ``tc``: set TC and drop every record (as a server whose answer does not fit).
    Responses larger than the query's EDNS buffer (512 without EDNS) are truncated so on
    UDP anyway. ``wrong_id``/``wrong_question`` ("name", "type" or "case") spoil the
    match; ``from_address`` sends it over UDP from a second socket at that address.
    """

    message: dns.message.Message | bytes
    delay: float = 0.0
    tc: bool = False
    wrong_id: bool = False
    wrong_question: str | None = None
    from_address: str | None = None


@dataclass
class Garbage:
    data: bytes
    delay: float = 0.0


@dataclass
class Silence:
    pass


@dataclass
class CloseMidFrame:
    """TCP: send the length prefix and the first half of ``message``, then close."""

    message: dns.message.Message | bytes
    delay: float = 0.0


@dataclass
class Close:
    """TCP: close the connection without answering."""

    delay: float = 0.0


Action = Reply | Garbage | Silence | CloseMidFrame | Close
Handler = Callable[[Seen], "Action | dns.message.Message | Iterable | None"]


def serve(*authorities: ZoneAuthority | Callable[[dns.message.Message], dns.message.Message]) -> Handler:
    """A handler answering normally from zones (the one with the longest matching origin)."""

    def handler(seen: Seen):
        if seen.message is None or not seen.message.question:
            return None
        name = seen.message.question[0].name
        best = None
        for auth in authorities:
            origin = getattr(auth, "origin", dns.name.root)
            if name.is_subdomain(origin) and (best is None or len(origin) > len(best[0])):
                best = (origin, auth)
        if best is None:
            return response(seen.message, rcode=dns.rcode.REFUSED, aa=False)
        return best[1](seen.message)

    return handler


def _swap_case(name: dns.name.Name) -> dns.name.Name:
    return dns.name.Name(tuple(label.swapcase() for label in name.labels))


class FakeServer:
    def __init__(self, address: str, port: int, handler: Handler) -> None:
        self.address = address
        self.port = port
        self.handler = handler
        self.queries: list[Seen] = []
        self.sent: Counter[str] = Counter()
        self.errors: list[BaseException] = []  # exceptions raised by the handler
        self._udp: asyncio.DatagramTransport | None = None
        self._alt: dict[str, asyncio.DatagramTransport] = {}
        self._tcp: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    @classmethod
    async def start(cls, address: str, port: int, handler: Handler, *, tcp: bool = True) -> "FakeServer":
        self = cls(address, port, handler)
        loop = asyncio.get_running_loop()
        self._udp, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=(address, port))
        if tcp:
            self._tcp = await asyncio.start_server(self._on_tcp, address, port, reuse_address=True)
        return self

    # -- what tests read ----------------------------------------------------------

    def count(self, *, qname: str | None = None, qtype: str | None = None,
              transport: str | None = None) -> int:
        """Queries seen, optionally only those for a name (case-insensitive), type, transport."""
        n = 0
        for s in self.queries:
            if qname is not None and (s.qname or "").lower() != qname.lower():
                continue
            if qtype is not None and s.qtype != qtype:
                continue
            if transport is not None and s.transport != transport:
                continue
            n += 1
        return n

    @property
    def qnames(self) -> list[str]:
        return [s.qname or "?" for s in self.queries]

    async def close(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._udp is not None:
            self._udp.close()
        for t in self._alt.values():
            t.close()
        for w in list(self._writers):
            w.close()
        if self._tcp is not None:
            self._tcp.close()
            await self._tcp.wait_closed()

    # -- receiving ------------------------------------------------------------------

    def _seen(self, wire: bytes, transport: str, peer) -> tuple[Seen, list[Action]]:
        try:
            msg = dns.message.from_wire(wire)
        except (dns.exception.DNSException, ValueError):
            msg = None
        seen = Seen(wire, msg, transport, tuple(peer[:2]))
        self.queries.append(seen)
        try:
            result = self.handler(seen)
        except Exception as e:  # a broken script must fail its test, not hang it
            log.exception("fake handler failed")
            self.errors.append(e)
            result = None
        if result is None:
            actions: list[Action] = [Silence()]
        elif isinstance(result, (dns.message.Message, Reply, Garbage, Silence, CloseMidFrame, Close)):
            actions = [result]
        else:
            actions = list(result)
        return seen, [Reply(a) if isinstance(a, dns.message.Message) else a for a in actions]

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_udp(self, wire: bytes, peer) -> None:
        seen, actions = self._seen(wire, "udp", peer)
        for a in actions:
            self._spawn(self._do_udp(seen, a, peer))

    async def _do_udp(self, seen: Seen, a: Action, peer) -> None:
        delay = getattr(a, "delay", 0.0)
        if delay:
            await asyncio.sleep(delay)
        if isinstance(a, Silence):
            self.sent["silence"] += 1
        elif isinstance(a, Garbage):
            self._udp.sendto(a.data, peer)
            self.sent["garbage"] += 1
        elif isinstance(a, Reply):
            data = self._render(seen, a, udp=True)
            transport = self._udp
            if a.from_address is not None:
                transport = await self._alt_socket(a.from_address)
                self.sent["other-address"] += 1
            transport.sendto(data, peer)
            self.sent["reply"] += 1
        elif isinstance(a, CloseMidFrame):  # nothing to close on UDP: send the first half
            data = self._wire(a.message)
            self._udp.sendto(data[: len(data) // 2], peer)
            self.sent["half"] += 1
        elif isinstance(a, Close):
            self.sent["silence"] += 1

    async def _alt_socket(self, address: str) -> asyncio.DatagramTransport:
        if address not in self._alt:
            loop = asyncio.get_running_loop()
            try:
                t, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                           local_addr=(address, self.port))
            except OSError:
                t, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                           local_addr=(address, 0))
            self._alt[address] = t
        return self._alt[address]

    async def _on_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        peer = writer.get_extra_info("peername")
        try:
            for _ in range(10000):  # bounded: no test sends more frames than this
                head = await reader.readexactly(2)
                (n,) = struct.unpack("!H", head)
                wire = await reader.readexactly(n)
                seen, actions = self._seen(wire, "tcp", peer)
                for a in actions:
                    if await self._do_tcp(seen, a, writer):
                        return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _do_tcp(self, seen: Seen, a: Action, writer: asyncio.StreamWriter) -> bool:
        """Perform one action on a TCP connection; True when it closed the connection."""
        delay = getattr(a, "delay", 0.0)
        if delay:
            await asyncio.sleep(delay)
        if isinstance(a, Silence):
            self.sent["silence"] += 1
        elif isinstance(a, Garbage):
            writer.write(struct.pack("!H", len(a.data)) + a.data)
            self.sent["garbage"] += 1
        elif isinstance(a, Reply):
            data = self._render(seen, a, udp=False)
            writer.write(struct.pack("!H", len(data)) + data)
            self.sent["reply"] += 1
        elif isinstance(a, CloseMidFrame):
            data = self._wire(a.message)
            writer.write(struct.pack("!H", len(data)) + data[: len(data) // 2])
            await writer.drain()
            writer.close()
            self.sent["half"] += 1
            return True
        elif isinstance(a, Close):
            writer.close()
            self.sent["closed"] += 1
            return True
        await writer.drain()
        return False

    # -- building replies -----------------------------------------------------------

    @staticmethod
    def _wire(message: dns.message.Message | bytes) -> bytes:
        return message if isinstance(message, (bytes, bytearray)) else message.to_wire()

    def _render(self, seen: Seen, a: Reply, *, udp: bool) -> bytes:
        if isinstance(a.message, (bytes, bytearray)):
            return bytes(a.message)
        m = a.message
        if a.wrong_id or a.wrong_question or a.tc:
            m = dns.message.from_wire(m.to_wire())  # a copy; the script may reuse its message
        if a.wrong_id:
            m.id = (m.id + 1) & 0xFFFF
        if a.wrong_question and m.question:
            q = m.question[0]
            if a.wrong_question == "name":
                name = dns.name.Name((b"spoofed",) + q.name.labels)
                rdtype = q.rdtype
            elif a.wrong_question == "type":
                name = q.name
                rdtype = dns.rdatatype.TXT if q.rdtype != dns.rdatatype.TXT else dns.rdatatype.A
            elif a.wrong_question == "case":
                name, rdtype = _swap_case(q.name), q.rdtype
            else:
                raise ValueError(f"wrong_question must be name, type or case, not {a.wrong_question!r}")
            m.question = [dns.rrset.RRset(name, q.rdclass, rdtype)]
            for rr in m.answer:
                if rr.name == q.name:
                    rr.name = name
        if a.tc:
            return self._truncated(m)
        data = m.to_wire()
        if udp:
            limit = 512
            if seen.message is not None and seen.message.edns >= 0:
                limit = max(512, seen.message.payload)
            if len(data) > limit:
                return self._truncated(m)
        return data

    @staticmethod
    def _truncated(m: dns.message.Message) -> bytes:
        t = dns.message.from_wire(m.to_wire())
        t.flags |= dns.flags.TC
        t.answer, t.authority, t.additional = [], [], []
        return t.to_wire()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: FakeServer) -> None:
        self.server = server

    def datagram_received(self, data: bytes, addr) -> None:
        self.server._on_udp(data, addr)

    def error_received(self, exc: Exception) -> None:  # ICMP from a client that went away
        pass
