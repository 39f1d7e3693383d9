"""One exchange with an authority as the coroutine path runs it: a UDP query, then what its
reply asks for. FORMERR to an EDNS query is asked again without EDNS (and remembered); a
truncated answer is asked again over TCP, and accepted only if it echoes the query's ID and
question."""
from __future__ import annotations

import struct
import time

from resolver.limits import EDNS_BUFFER_SIZE, Limits
from resolver.upstream.errors import UpstreamFailure
from resolver.upstream.tcp import tcp_exchange
from resolver.upstream.udp import UDPQuery, fresh_id as _fresh_id, needs_retry  # noqa: F401
from resolver.wire.codec import WireError, build_query, parse_response


def _matches(data: bytes, qid: int, question: bytes) -> bool:
    return (len(data) >= 12 + len(question)
            and data[0] == qid >> 8 and data[1] == qid & 0xFF
            and data[2] & 0x80
            and data[4] == 0 and data[5] == 1
            and data[12:12 + len(question)] == question)


_QTC = struct.Struct("!HH")


def question_of(qname: bytes, qtype: int, qclass: int) -> bytes:
    """The question section a reply must echo byte for byte."""
    return qname + _QTC.pack(qtype, qclass)


def udp_query(loop, addr: str, port: int, qname: bytes, qtype: int, qclass: int,
              question: bytes, edns: bool, do: bool, timeout: float, stats,
              limits: Limits) -> UDPQuery:
    """Sends one UDP query (fresh socket, so a fresh random port, and a fresh random ID): a
    ``resolver.upstream.udp.UDPQuery``; await its ``fut``, then ``close()`` it. Raises
    UpstreamFailure if it cannot be sent (or ``addr`` is not a numeric address)."""
    qid = _fresh_id()
    wire = build_query(qid, qname, qtype, qclass, edns=edns, do=do and edns,
                       payload=EDNS_BUFFER_SIZE)
    if stats is not None:
        stats.upstream_queries += 1
    return UDPQuery(loop, addr, port, wire, qid, question, timeout, stats, limits)


async def retry(q: UDPQuery, reply: bytes, parsed, rtt: float, port: int, qname: bytes,
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
