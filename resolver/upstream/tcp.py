"""One query over TCP to an authority, by callbacks, on any asyncio loop: the query as
``[2-byte big-endian length][message]``, the answer framed the same (a truncated UDP answer
is asked again this way).

The answer is accepted only with the query's ID, QR set and its question byte for byte, and
only if it parses; ``on_done(query)`` is called once with ``reply``/``parsed`` or ``error``
(``UpstreamTimeout`` at the timeout, ``UpstreamFailure`` for anything else). ``close()``
ends it early without calling back.
"""
from __future__ import annotations

import asyncio
import struct

from resolver.upstream.errors import UpstreamFailure, UpstreamTimeout, failure
from resolver.upstream.udp import source_for
from resolver.wire.codec import WireError, parse_response


def check_answer(addr: str, reply: bytes, qid: int, question: bytes, max_jumps: int,
                 max_records: int, stats, kind: str):
    """The parsed ``reply`` to the query ``qid`` asking ``question`` (its wire, as sent),
    received over a stream (``kind``, "TCP" or "TLS"): accepted only with that ID, QR set
    and the question byte for byte, and only if it parses; else UpstreamFailure (a
    malformed answer counted in ``stats``)."""
    q = question
    if not (len(reply) >= 12 + len(q) and reply[0] == qid >> 8 and reply[1] == qid & 0xFF
            and reply[2] & 0x80 and reply[4:6] == b"\x00\x01" and reply[12:12 + len(q)] == q):
        raise UpstreamFailure(f"{addr}: {kind} answer does not match the query")
    try:
        return parse_response(reply, max_jumps, max_records)
    except WireError:
        if stats is not None:
            stats.dropped_malformed += 1
        raise UpstreamFailure(f"{addr}: malformed {kind} answer") from None


class TCPQuery(asyncio.Protocol):
    """One TCP exchange (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, addr: str, port: int, wire: bytes,
                 qid: int, question: bytes, timeout: float, limits, on_done, stats=None,
                 source: str | tuple[str, ...] | None = None) -> None:
        self.addr, self.wire, self.qid, self.question = addr, wire, qid, question
        self.max_size = limits.max_tcp_message
        self.max_jumps = limits.max_pointer_jumps
        self.max_records = limits.max_records_per_section
        self.on_done = on_done
        self.stats = stats
        self.reply: bytes | None = None
        self.parsed = None
        self.error: Exception | None = None
        self.finished = False
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.timer = loop.call_later(timeout, self._expire)
        # ``source``: the address(es) the socket may be bound to (udp.source_for chooses)
        bound = source_for(source, addr)
        local = None if bound is None else (bound, 0)
        self.connecting = asyncio.ensure_future(
            loop.create_connection(lambda: self, addr, port, local_addr=local), loop=loop)
        self.connecting.add_done_callback(self._connected)

    # ---- the connection --------------------------------------------------------------------
    def _connected(self, fut: asyncio.Future) -> None:
        if fut.cancelled() or self.finished:
            return
        exc = fut.exception()
        if exc is not None:
            self._finish(error=failure(self.addr, exc) if isinstance(exc, OSError)
                         else UpstreamFailure(f"{self.addr}: {exc!r}"))

    def connection_made(self, transport) -> None:
        self.transport = transport
        if self.finished:
            transport.close()
            return
        transport.writelines([struct.pack("!H", len(self.wire)), self.wire])

    def data_received(self, data: bytes) -> None:
        if self.finished:
            return
        self.buf += data
        if len(self.buf) < 2:
            return
        need = (self.buf[0] << 8) | self.buf[1]
        if need > self.max_size or need < 12:
            self._finish(error=UpstreamFailure(f"{self.addr}: bad TCP frame length {need}"))
        elif len(self.buf) >= 2 + need:
            self._answer(bytes(self.buf[2:2 + need]))

    def connection_lost(self, exc) -> None:
        self.transport = None
        if not self.finished:
            self._finish(error=UpstreamFailure(
                f"{self.addr}: TCP connection closed before the answer"))

    # ---- the outcome -----------------------------------------------------------------------
    def _answer(self, reply: bytes) -> None:
        try:
            self.parsed = check_answer(self.addr, reply, self.qid, self.question,
                                       self.max_jumps, self.max_records, self.stats, "TCP")
        except UpstreamFailure as exc:
            self._finish(error=exc)
            return
        self.reply = reply
        self._finish()

    def _expire(self) -> None:
        if not self.finished:
            self._finish(error=UpstreamTimeout(self.addr))

    def _finish(self, error: Exception | None = None) -> None:
        self.error = error
        self.close()
        self.on_done(self)

    def close(self) -> None:
        """Ends the exchange (idempotent); ``on_done`` is not called for it."""
        self.finished = True
        self.timer.cancel()
        if not self.connecting.done():
            self.connecting.cancel()
        if self.transport is not None:
            self.transport.close()
