"""The message cache as text, for ``dump_cache`` and ``load_cache``.

One line per cached answer::

    msg NAME TYPE CLASS VARIANT TTL STATUS RCODE MESSAGE

``VARIANT`` is the query variant the answer was kept for (bits: 1 EDNS, 2 DO, 4 CD),
``TTL`` the seconds it has left, ``STATUS`` its DNSSEC status (``secure``: validated, served
with AD; ``insecure``: not proven secure, served without AD), ``RCODE`` its rcode, and
``MESSAGE`` the answer in wire form (base64) with its TTLs as they stand now. Loading sets
the AD bit from ``STATUS``, so what was secure is secure again and nothing else is. Lines
starting with ``;`` and blank lines are ignored. The rrset cache is not dumped: the
iterator learns its rrsets again on the next miss.
"""
from __future__ import annotations

import array
import base64
import binascii
import struct

import dns.exception
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype

from resolver.wire.codec import WireError, ttl_left, ttl_offsets

HEADER = "; corenet-resolver cache dump 1"
START, END = "START_MSG_CACHE", "END_MSG_CACHE"
STATUSES = ("secure", "insecure")
AD = 0x20                       # the AD bit, in the message's fourth byte


class DumpError(ValueError):
    """A line of a cache dump that cannot be read; the message names its number."""


def _aged(wire: bytes, age: int) -> bytes:
    """``wire`` with every TTL lowered by ``age`` seconds (not below 0)."""
    offsets, _, _ = ttl_offsets(wire)
    out = bytearray(wire)
    for off in array.array("H", offsets):
        ttl = int.from_bytes(out[off:off + 4], "big")
        out[off:off + 4] = max(0, ttl - age).to_bytes(4, "big")
    return bytes(out)


def dump(cache, now: float) -> list[str]:
    """The lines of every unexpired answer of ``cache`` (``resolver.cache.Cache``)."""
    lines = [HEADER, START]
    for key, e in list(cache.messages.lru.data.items()):
        left = ttl_left(e.expires, now)
        if left <= 0:
            continue
        name = dns.name.from_wire(key[:-5], 0)[0]
        qtype, qclass, variant = struct.unpack("!HHB", key[-5:])
        wire = _aged(e.wire, int(now - e.stored_at))
        status = "secure" if wire[3] & AD else "insecure"
        lines.append(f"msg {name} {dns.rdatatype.to_text(qtype)} "
                     f"{dns.rdataclass.to_text(qclass)} {variant} {left} {status} "
                     f"{dns.rcode.to_text(e.rcode)} {base64.b64encode(wire).decode()}")
    lines.append(END)
    return lines


def parse(text: str) -> list[tuple[bytes, int, bytes]]:
    """The entries of a dump, as (message cache key, TTL left, wire with AD set from the
    status); raises DumpError naming the first bad line."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(";") or line in (START, END, "EOF"):
            continue
        parts = line.split()
        try:
            if len(parts) != 9 or parts[0] != "msg":
                raise ValueError("expected: msg NAME TYPE CLASS VARIANT TTL STATUS RCODE "
                                 "MESSAGE")
            _, name, qtype, qclass, variant_text, ttl_text, status, _rcode, b64 = parts
            if status not in STATUSES:
                raise ValueError(f"status {status!r} is not one of {', '.join(STATUSES)}")
            variant, ttl = int(variant_text), int(ttl_text)
            if not 0 <= variant <= 7:
                raise ValueError(f"variant {variant} is not in 0..7")
            if ttl < 0:
                raise ValueError(f"TTL {ttl} is negative")
            lname = dns.name.from_text(name).canonicalize().to_wire() or b"\x00"
            key = lname + struct.pack("!HHB", _code(dns.rdatatype, qtype, "type"),
                                      _code(dns.rdataclass, qclass, "class"), variant)
            wire = bytearray(base64.b64decode(b64, validate=True))
            ttl_offsets(bytes(wire))                # the message must read
            if len(wire) < 12 or not wire[2] & 0x80:
                raise ValueError("the message is not a response")
            msg = dns.message.from_wire(bytes(wire))
            if (len(msg.question) != 1 or msg.question[0].name.canonicalize().to_wire()
                    != lname or struct.pack("!HH", msg.question[0].rdtype,
                                            msg.question[0].rdclass) != key[-5:-1]):
                raise ValueError(f"the message answers another question than {name} "
                                 f"{qtype} {qclass}")
            wire[3] = wire[3] | AD if status == "secure" else wire[3] & ~AD
        except (ValueError, WireError, binascii.Error, dns.exception.DNSException) as e:
            raise DumpError(f"line {number}: {e}") from None
        out.append((key, ttl, bytes(wire)))
    return out


def _code(module, text: str, what: str) -> int:
    try:
        return module.from_text(text)
    except dns.exception.DNSException:
        raise ValueError(f"unknown {what} {text!r}") from None


def load(cache, entries, now: float) -> int:
    """Stores ``parse``'s entries in ``cache``; returns how many (those with TTL 0 are
    skipped)."""
    from resolver.cache.store import store_message

    n = 0
    for key, ttl, wire in entries:
        if ttl > 0:
            store_message(cache.messages, key, wire, now, ttl)
            n += 1
    return n
