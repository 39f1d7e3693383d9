"""Unbound's ``dump_cache`` text, read by ``load_cache`` beside corenet's own format
(``resolver.cache.dump``), so a cache dumped from a running Unbound warms the resolver::

    START_RRSET_CACHE
    ;rrset [nsec_apex] TTL COUNT SIGCOUNT TRUST SECURITY
    RECORD...                       (COUNT records, then SIGCOUNT RRSIGs, zone-file lines)
    END_RRSET_CACHE
    START_MSG_CACHE
    msg NAME CLASS TYPE FLAGS QDCOUNT TTL SECURITY AN NS AR
    NAME CLASS TYPE FLAGS           (AN + NS + AR references to the rrsets above)
    END_MSG_CACHE
    EOF

TTLs are the seconds left at the dump. Each rrset goes to the rrset cache, its trust read
as the nearest rank of the cache's (:data:`UNBOUND_TRUST`); each message, built from the
rrsets it names, goes to the message cache for plain, EDNS and DO queries, as the response
the resolver would give (an additional section for an NS answer alone, the addresses Unbound
kept with it; DNSSEC records for DO only; AD kept for an answer Unbound validated secure).
As in Unbound, a message whose rrsets are not all there (``BADREF``, expired, ``BADRR``) is
skipped, and so is what Unbound found bogus.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

START, END = "START_RRSET_CACHE", "END_RRSET_CACHE"
MSG_START, MSG_END, EOF = "START_MSG_CACHE", "END_MSG_CACHE", "EOF"

#: Unbound's ``enum rrset_trust`` for the cache's ranks (``resolver.cache``): hints,
#: additional, glue, referral, answer without AA, authority and answer of an
#: authoritative reply, validated
UNBOUND_TRUST = {0: 0, 1: 3, 2: 1, 3: 2, 4: 5, 5: 7, 6: 8, 7: 11}
#: Unbound's ``enum sec_status``: bogus, secure
BOGUS, SECURE = 1, 5
#: the query variants a message is kept for (bits: 1 EDNS, 2 DO): plain, EDNS, EDNS+DO
VARIANTS = (0, 1, 3)
_DNSSEC = frozenset((dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3))
_ADDRESSES = frozenset((dns.rdatatype.A, dns.rdatatype.AAAA))


def rank_of(trust: int, security: int) -> int:
    """The cache's rank for Unbound's ``trust``: validated when Unbound found the rrset
    secure, else the rank whose Unbound trust is the highest not above it."""
    if security == SECURE:
        return 7
    fits = [(t, rank) for rank, t in UNBOUND_TRUST.items() if t <= trust and rank != 7]
    return max(fits)[1]


def is_unbound(text: str) -> bool:
    """Whether ``text`` is Unbound's dump (its first line ``START_RRSET_CACHE``)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip() == START
    return False


@dataclass
class RRset:
    ttl: int
    trust: int
    security: int
    records: list = field(default_factory=list)     # dnspython rdatas, with their TTLs
    sigs: list = field(default_factory=list)
    name: dns.name.Name = dns.name.root
    rdtype: int = 0
    rdclass: int = 1


@dataclass
class Msg:
    name: dns.name.Name
    rdtype: int
    rdclass: int
    flags: int
    ttl: int
    security: int
    sections: tuple                 # (answer, authority, additional): rrset keys or None


class _Lines:
    """The dump's lines with their numbers, for errors that name the line."""

    def __init__(self, text: str, error) -> None:
        self.lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)
                      if line.strip()]
        self.at = 0
        self.error = error

    def next(self, what: str) -> tuple[int, str]:
        if self.at >= len(self.lines):
            raise self.error(f"the dump ends where {what} was expected")
        self.at += 1
        return self.lines[self.at - 1]


class BadDump(ValueError):
    """A line of Unbound's dump that cannot be read; the message names its number."""


def parse(text: str, error: type[ValueError] = BadDump) -> tuple[dict, list[Msg]]:
    """Unbound's dump: (its rrsets by (name, type, class), its messages); raises
    ``error`` (a subclass of ValueError of its own) naming the first line it cannot
    read."""
    lines = _Lines(text, error)
    rrsets = dict(_section(lines, START, END, _rrset))
    msgs = _section(lines, MSG_START, MSG_END, _msg)
    rest = lines.lines[lines.at:]
    if rest and rest[0][1] != EOF:
        raise error(f"line {rest[0][0]}: {EOF} expected after {MSG_END}")
    if len(rest) > 1:
        raise error(f"line {rest[1][0]}: nothing expected after {EOF}")
    return {k: v for k, v in rrsets.items() if v is not None}, msgs


def _section(lines: _Lines, start: str, end: str, read) -> list:
    """The entries of a section: its ``start`` line, the entries ``read`` reads from their
    first line on, its ``end`` line."""
    _expect(lines, start)
    out = []
    while True:
        number, line = lines.next(end)
        if line == end:
            return out
        try:
            out.append(read(lines, line))
        except lines.error:
            raise                       # it names its own line
        except (ValueError, dns.exception.DNSException) as e:
            raise lines.error(f"line {number}: {e}") from None


def _expect(lines: _Lines, word: str) -> None:
    number, line = lines.next(word)
    if line != word:
        raise lines.error(f"line {number}: {word} expected")


def _key(name: dns.name.Name, rdtype: int, rdclass: int) -> tuple:
    return name.canonicalize(), rdtype, rdclass


def _rrset(lines: _Lines, head: str) -> tuple[tuple, RRset | None]:
    """An rrset from its ``;rrset`` line and its records' lines (None for one with a
    ``BADRR`` line, skipped as Unbound does)."""
    words = head.split()
    if words[:1] != [";rrset"]:
        raise ValueError(f"expected ';rrset' but got {head!r}")
    numbers = words[2:] if words[1:2] == ["nsec_apex"] else words[1:]
    if len(numbers) != 5 or not all(w.lstrip("-").isdigit() for w in numbers):
        raise ValueError(f"bad rrset spec {head!r}")
    ttl, count, sigcount, trust, security = map(int, numbers)
    if count < 0 or sigcount < 0 or count + sigcount == 0 or count + sigcount > 65535:
        raise ValueError(f"bad rrset spec {head!r}: no records or too many")
    rrset = RRset(ttl, trust, security)
    bad = False
    for i in range(count + sigcount):
        number, line = lines.next("a record")
        if line.startswith("BADRR"):
            bad = True
            continue
        try:
            name, rd, rttl = _record(line)
        except (ValueError, dns.exception.DNSException) as e:
            raise lines.error(f"line {number}: {e}") from None
        if i >= count:
            if rd.rdtype != dns.rdatatype.RRSIG:
                raise lines.error(f"line {number}: expected an RRSIG, got {line!r}")
            rrset.sigs.append((rd, rttl))
        else:
            if i == 0:
                rrset.name, rrset.rdtype, rrset.rdclass = name, rd.rdtype, rd.rdclass
            rrset.records.append((rd, rttl))
    if not rrset.records:               # signatures alone: nothing to serve
        bad = True
    return _key(rrset.name, rrset.rdtype, rrset.rdclass), (None if bad else rrset)


def _record(line: str) -> tuple[dns.name.Name, dns.rdata.Rdata, int]:
    """A zone-file line as Unbound writes it: ``NAME TTL CLASS TYPE RDATA``."""
    words = line.split(None, 4)
    if len(words) < 4:
        raise ValueError(f"cannot parse rr {line!r}")
    name = dns.name.from_text(words[0])
    ttl = int(words[1])
    rd = dns.rdata.from_text(dns.rdataclass.from_text(words[2]),
                             dns.rdatatype.from_text(words[3]),
                             words[4] if len(words) > 4 else "", origin=dns.name.root,
                             relativize=False)
    return name, rd, max(0, ttl)


def _question(words: list[str]) -> tuple[dns.name.Name, int, int]:
    """``NAME CLASS TYPE`` as a message line and a reference write them."""
    return (dns.name.from_text(words[0]), dns.rdatatype.from_text(words[2]),
            dns.rdataclass.from_text(words[1]))


def _msg(lines: _Lines, head: str) -> Msg:
    words = head.split()
    if words[:1] != ["msg"] or len(words) != 11:
        raise ValueError("expected: msg NAME CLASS TYPE FLAGS QDCOUNT TTL SECURITY AN NS AR")
    name, rdtype, rdclass = _question(words[1:4])
    flags, _qdcount, ttl, security, an, ns, ar = map(int, words[4:])
    sections = []
    for count in (an, ns, ar):
        refs = []
        for _ in range(count):
            number, line = lines.next("an rrset reference")
            if line.startswith("BADREF"):
                refs.append(None)
                continue
            ref = line.split()
            if len(ref) != 4 or not ref[3].isdigit():
                raise lines.error(f"line {number}: expected: NAME CLASS TYPE FLAGS")
            try:
                refs.append(_key(*_question(ref[:3])))
            except dns.exception.DNSException as e:
                raise lines.error(f"line {number}: {e}") from None
        sections.append(refs)
    return Msg(name, rdtype, rdclass, flags, max(0, ttl), security, tuple(sections))


def records(rrset: RRset) -> tuple[list, list]:
    """An rrset's records and signatures as the cache's record tuples (owner wire, type,
    class, TTL, rdata wire)."""
    owner = rrset.name.to_wire()
    return ([(owner, rd.rdtype, rd.rdclass, ttl, rd.to_wire()) for rd, ttl in rrset.records],
            [(owner, rd.rdtype, rd.rdclass, ttl, rd.to_wire()) for rd, ttl in rrset.sigs])


def _as_rrsets(rrset, do: bool) -> list:
    """A dumped rrset as the dnspython rrsets of a response: its records, and its RRSIGs
    for ``do``."""
    out = [dns.rrset.RRset(rrset.name, rrset.rdclass, rrset.rdtype)]
    for rd, ttl in rrset.records:
        out[0].add(rd, ttl)
    if do and rrset.sigs:
        out.append(dns.rrset.RRset(rrset.name, rrset.rdclass, dns.rdatatype.RRSIG,
                                   rrset.rdtype))
        for rd, ttl in rrset.sigs:
            out[1].add(rd, ttl)
    return out


def response(msg: Msg, rrsets: dict, variant: int, payload: int) -> bytes | None:
    """The response the resolver would keep for ``msg`` and this query variant (bits: 1
    EDNS, 2 DO), or None when an rrset it names is not in ``rrsets``."""
    do = bool(variant & 2)
    m = dns.message.Message(id=0)
    m.flags = (msg.flags & 0xFFF0 & ~(dns.flags.AD | dns.flags.CD)) | dns.flags.QR | \
        dns.flags.RD | (dns.flags.AD if msg.security == SECURE else 0)
    m.set_rcode(msg.flags & 0xF)
    m.question = [dns.rrset.RRset(msg.name, msg.rdclass, msg.rdtype)]
    for refs, section, answer in zip(msg.sections[:2], (m.answer, m.authority), (True, False)):
        for key in refs:
            rrset = rrsets.get(key) if key is not None else None
            if rrset is None:
                return None
            if not do and (rrset.rdtype in _DNSSEC if not answer else
                           rrset.rdtype == dns.rdatatype.RRSIG != msg.rdtype):
                continue
            section += _as_rrsets(rrset, do)
    for key in msg.sections[2]:         # all there; sent with an NS answer alone, as the
        rrset = rrsets.get(key) if key is not None else None  # resolver's (ns_addresses)
        if rrset is None:
            return None
        if msg.rdtype == dns.rdatatype.NS and rrset.rdtype in _ADDRESSES:
            m.additional += _as_rrsets(rrset, do)
    if variant & 1:
        m.use_edns(0, dns.flags.DO if do else 0, payload)
    return m.to_wire()
