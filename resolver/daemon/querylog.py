"""The query log (``log-queries``): one line per answered query on the ``resolver.queries``
logger at INFO, for example::

    client=127.0.0.1 name=www.example.com. type=A rcode=NOERROR flags=qr,rd,ra,ad udp 0.412ms cache=hit

It is made only when the setting is on; the listeners then answer every query on the Python
path (their cache hits in C are not logged), so a daemon with the log off pays nothing.
"""
from __future__ import annotations

import logging
import struct

import dns.exception
import dns.name
import dns.rcode
import dns.rdatatype

#: Header flag bits shown, in dig's order.
_FLAGS = ((0x8000, "qr"), (0x0400, "aa"), (0x0200, "tc"), (0x0100, "rd"), (0x0080, "ra"),
          (0x0020, "ad"), (0x0010, "cd"))


def describe(client, q: bytes, out: bytes, transport: str, seconds: float, hit: bool) -> str:
    """The log line for query ``q`` answered with ``out``."""
    try:
        name, used = dns.name.from_wire(q, 12)
        qname = name.to_text()
        qtype = dns.rdatatype.to_text(struct.unpack_from("!H", q, 12 + used)[0])
    except (dns.exception.DNSException, struct.error, ValueError, IndexError):
        qname, qtype = "(unreadable)", "-"
    flags = struct.unpack_from("!H", out, 2)[0] if len(out) >= 4 else 0
    try:
        rcode = dns.rcode.to_text(dns.rcode.Rcode(flags & 0x0F))
    except ValueError:
        rcode = str(flags & 0x0F)
    shown = ",".join(text for bit, text in _FLAGS if flags & bit) or "-"
    return (f"client={client or '-'} name={qname} type={qtype} rcode={rcode} flags={shown} "
            f"{transport} {seconds * 1000:.3f}ms cache={'hit' if hit else 'miss'}")


class QueryLog:
    """Called by the server for every answer it sends (see :func:`describe`)."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger("resolver.queries")
        self.logger.setLevel(logging.INFO)        # shown whatever the daemon's log level

    def __call__(self, client, q: bytes, out: bytes, transport: str, seconds: float,
                 hit: bool) -> None:
        self.logger.info("%s", describe(client, q, out, transport, seconds, hit))
