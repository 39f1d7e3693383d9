"""A reply read as BIND's dig reads it, at its best effort: the records it holds up to
where it ends, the octets after its end counted rather than refused, a message cut short
read as far as it goes (what dig calls malformed), a record whose data dnspython refuses
kept as the octets it is."""
from __future__ import annotations

import struct
from typing import NamedTuple


class BadPacket(Exception):
    """A reply dig cannot read at all (``;; Got bad packet: WHY``): why, in BIND's words,
    and the reply."""

    def __init__(self, why: str, wire: bytes = b"") -> None:
        super().__init__(why)
        self.why, self.wire = why, wire


class Read(NamedTuple):
    """A reply read: the message, the octets after where the reading ended (dig's "extra
    bytes at end"), and whether it ended before the header's counts did (malformed)."""
    message: object
    extra: int
    malformed: bool


class _Short(Exception):
    """The reply ends inside an item: read as far as the item before."""


#: BIND's words for what stops it reading a name
_NAME_ERRORS = {"BadPointer": "bad compression pointer", "BadLabelType": "bad label type",
                "PointerChainTooLong": "bad compression pointer",
                "NameTooLong": "name too long"}


#: the size of an address record's data (shorter: BIND's parser runs out of data)
_ADDRESS_SIZE = {1: 4, 28: 16}


def read_reply(wire: bytes) -> Read:
    """``wire`` as dig reads a reply (at least a header: the caller says a shorter one).
    Raises :class:`BadPacket` for what dig cannot read at all (a bad compression pointer,
    a label of a bad type)."""
    import dns.exception
    import dns.flags
    import dns.message
    import dns.wire

    counts = struct.unpack("!HHHH", wire[4:12])
    try:                                  # the usual case: dnspython reads it all
        # a TSIG read, not checked (dig_tsig checks it against the key)
        m = dns.message.from_wire(wire, ignore_trailing=True, keyring=False)
        extra, malformed = len(wire) - _end(wire, counts), False
    except (dns.exception.DNSException, ValueError, KeyError):
        m, extra, malformed = None, 0, True
    if m is not None and extra >= 0:
        m.wire = wire
        return Read(m, extra, malformed)

    p = dns.wire.Parser(wire, 12)
    flags = struct.unpack("!H", wire[2:4])[0]
    m = dns.message.Message(id=struct.unpack("!H", wire[:2])[0])
    m.flags = dns.flags.Flag(flags)
    m.wire = wire
    try:
        for _ in range(counts[0]):
            name = _name(p)
            rdtype, rdclass = _struct(p, "!HH")
            m.find_rrset(m.question, name, rdclass, rdtype, create=True, force_unique=True)
        for section, count in zip((m.answer, m.authority, m.additional), counts[1:]):
            for _ in range(count):
                _record(m, p, section)
        malformed = False
    except _Short:
        malformed = True
    except BadPacket as e:
        raise BadPacket(e.why, wire) from None
    m.wire_counts = counts
    return Read(m, p.remaining(), malformed)


def _name(p):
    """The name at ``p``'s position, ``p`` past it; :class:`_Short` (``p`` where it was)
    when the reply ends inside it, :class:`BadPacket` when it cannot be read."""
    import dns.exception
    import dns.name
    start = p.current
    try:
        return p.get_name(decompress=True)
    except dns.name.NameTooLong:
        raise BadPacket("name too long") from None
    except dns.exception.FormError as e:
        why = _NAME_ERRORS.get(type(e).__name__)
        if why is not None:
            raise BadPacket(why) from None
        p.seek(start)
        raise _Short from None


def _struct(p, fmt: str) -> tuple:
    if p.remaining() < struct.calcsize(fmt):
        raise _Short
    return p.get_struct(fmt)


def _record(m, p, section) -> None:
    """One record of ``section`` read at ``p`` into ``m``; its data as the octets it is
    when dnspython refuses them."""
    import dns.exception
    import dns.rdata
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset

    name = _name(p)
    rdtype, rdclass, ttl, rdlen = _struct(p, "!HHIH")
    if p.remaining() < rdlen:
        raise _Short
    start = p.current
    try:
        with p.restrict_to(rdlen):
            rd = dns.rdata.from_wire_parser(rdclass, rdtype, p, None)
    except Exception as e:
        if (type(e) is dns.exception.FormError and e.__cause__ is None
                or _ADDRESS_SIZE.get(rdtype, rdlen) > rdlen):
            p.seek(start)                 # the data ran out before its type's end
            raise _Short from None
        # dnspython's refusal of what the data says: kept as the octets it is
        rd = dns.rdata.GenericRdata(rdclass, rdtype, p.wire[start:start + rdlen])
    p.seek(start + rdlen)
    if rdtype == dns.rdatatype.OPT:
        m.opt = dns.rrset.from_rdata(name, ttl, rd)
        return
    rrset = m.find_rrset(section, name, dns.rdataclass.RdataClass.make(rdclass),
                         dns.rdatatype.RdataType.make(rdtype), rd.covers(), None, True)
    rrset.add(rd, ttl if ttl <= 0x7FFFFFFF else 0)


def _end(wire: bytes, counts: tuple[int, ...]) -> int:
    """Where the message the header counts ends in ``wire``, or past its end when it
    does not (then dnspython could not have read it)."""
    at = 12
    for n, fixed in zip(counts, (4, 10, 10, 10)):
        for _ in range(n):
            at = _past_name(wire, at)
            if at + fixed > len(wire):
                return len(wire) + 1
            if fixed == 10:
                at += struct.unpack("!H", wire[at + 8:at + 10])[0]
            at += fixed
    return at


def _past_name(wire: bytes, at: int) -> int:
    """Where the (possibly compressed) name at ``at`` ends in ``wire``."""
    while at < len(wire):
        count = wire[at]
        if count >= 0xC0:
            return at + 2
        if count == 0:
            return at + 1
        at += count + 1
    return len(wire) + 1


def hex_dump(wire: bytes) -> str:
    """dig's dump of a reply it cannot read: its size, then 16 octets a line in hex and as
    characters (``.`` for one that does not print)."""
    lines = [f"{len(wire)} bytes"]
    for i in range(0, len(wire), 16):
        chunk = wire[i:i + 16]
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append("".join(f"{b:02x} " for b in chunk).ljust(48) + " " * 9 + text)
    return "".join(line + "\n" for line in lines)
