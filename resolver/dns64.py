"""DNS64 (RFC 6147), sans-IO: IPv6 addresses synthesised from IPv4 ones for IPv6-only
clients behind a NAT64, as Unbound's ``dns64`` module does.

- :func:`embed` and :func:`extract`: an IPv4 address in and out of an IPv6 prefix at the
  RFC 6052 2.2 lengths (/32, /40, /48, /56, /64, /96), bits 64-71 (the "u" octet) zero;
- :class:`Dns64`: the decision for one AAAA result (:meth:`Dns64.target`: which name's A
  records to ask, or none) and the answer made from the A result (:meth:`Dns64.synthesize`);
  for a PTR question under the prefix's ``ip6.arpa`` the ``in-addr.arpa`` name to ask
  instead (:meth:`Dns64.ptr_target`) and the answer made from it (:meth:`Dns64.ptr_answer`,
  a CNAME to that name followed by its answer, as Unbound gives).

It never resolves anything itself: the driver (``resolver.resolution.resolve_client``) asks
the questions it names and hands back their Results. A synthesised answer carries no DNSSEC
verdict (RFC 6147 5.5: never AD); one made from A records that failed validation stays BOGUS,
so it is SERVFAIL unless the client set CD.
"""
from __future__ import annotations

import ipaddress
from typing import Iterable

import dns.exception
import dns.name
import dns.reversename

from resolver.iterator import (A, AAAA, BOGUS, CNAME, NOERROR, RRSIG, SOA, UNCHECKED,
                               Result)

PTR = 12
IN = 1
#: RFC 6052 2.2: the prefix lengths an IPv4 address can be embedded after
PREFIX_LENGTHS = (32, 40, 48, 56, 64, 96)
DEFAULT_PREFIX = "64:ff9b::/96"
#: RFC 6147 5.1.4: AAAA records in these ranges are treated as absent (IPv4-mapped addresses)
EXCLUDED = (ipaddress.IPv6Network("::ffff:0:0/96"),)
#: RFC 6147 5.1.7: the TTL bound of a synthesised AAAA when no SOA came with the AAAA answer
NO_SOA_TTL = 600
_U_OCTET = 0xFF << 56           # bits 64-71 of an IPv6 address, as an integer mask


def parse_prefix(text) -> ipaddress.IPv6Network:
    """An RFC 6052 prefix (``64:ff9b::/96``): a length RFC 6052 2.2 allows, no bits set past
    it, and bits 64-71 zero (RFC 6052 2.2, the "u" octet). Raises ValueError saying why."""
    try:
        net = ipaddress.IPv6Network(str(text), strict=True)
    except ValueError as e:
        raise ValueError(f"{text!r} is not an IPv6 prefix: {e}") from None
    if "/" not in str(text):
        raise ValueError(f"{text!r}: give the prefix length (/32, /40, /48, /56, /64 or /96)")
    if net.prefixlen not in PREFIX_LENGTHS:
        raise ValueError(f"{text!r}: the prefix length must be one of /32, /40, /48, /56, /64 "
                         f"or /96 (RFC 6052 2.2), not /{net.prefixlen}")
    if int(net.network_address) & _U_OCTET:
        raise ValueError(f"{text!r}: bits 64 to 71 of the prefix must be zero (RFC 6052 2.2)")
    return net


def embed(prefix: ipaddress.IPv6Network, v4) -> ipaddress.IPv6Address:
    """The IPv4-embedded IPv6 address of ``v4`` under ``prefix`` (RFC 6052 2.2): the 32 bits
    follow the prefix, skipping bits 64-71; the suffix is zero."""
    x = int(ipaddress.IPv4Address(v4))
    out = int(prefix.network_address)
    length = prefix.prefixlen
    if length == 96:
        return ipaddress.IPv6Address(out | x)
    before = 64 - length                    # IPv4 bits that fit before the u octet
    after = 32 - before
    out |= (x >> after) << 64               # ending at bit 63
    out |= (x & ((1 << after) - 1)) << (56 - after)      # from bit 72 on
    return ipaddress.IPv6Address(out)


def extract(prefix: ipaddress.IPv6Network, v6) -> ipaddress.IPv4Address | None:
    """The IPv4 address embedded in ``v6`` under ``prefix``, or None when ``v6`` is not in
    the prefix or its u octet is not zero (RFC 6052 2.2)."""
    addr = ipaddress.IPv6Address(v6)
    if addr not in prefix:
        return None
    x = int(addr)
    length = prefix.prefixlen
    if length == 96:
        return ipaddress.IPv4Address(x & 0xFFFFFFFF)
    if x & _U_OCTET:
        return None
    before = 64 - length
    after = 32 - before
    hi = (x >> 64) & ((1 << before) - 1)
    lo = (x >> (56 - after)) & ((1 << after) - 1)
    return ipaddress.IPv4Address((hi << after) | lo)


def _lower(name: bytes) -> bytes:
    return name.lower()


def _under(name: bytes, zone: bytes) -> bool:
    """``name`` is ``zone`` or below it (lower-cased wire names)."""
    if name == zone or zone == b"\x00":
        return True
    if not name.endswith(zone):
        return False
    i = 0                                   # the suffix must start on a label boundary
    while i < len(name) - len(zone):
        i += 1 + name[i]
    return i == len(name) - len(zone)


def _chain_end(qname: bytes, answer: list) -> bytes:
    """The name the CNAME records of ``answer`` lead ``qname`` to (lower-cased), bounded by
    the records there are."""
    cur = _lower(qname)
    for _ in range(len(answer) + 1):
        for rec in answer:
            if rec[1] == CNAME and _lower(rec[0]) == cur:
                cur = _lower(rec[4])
                break
        else:
            return cur
    return cur


def _negative_ttl(authority: list) -> int | None:
    """The negative TTL the AAAA answer's SOA gives (RFC 2308 5: the smaller of the SOA's TTL
    and its MINIMUM field), or None without a SOA."""
    for rec in authority:
        if rec[1] == SOA and len(rec[4]) >= 4:
            return min(rec[3], int.from_bytes(rec[4][-4:], "big"))
    return None


class Dns64:
    """DNS64 settings and decisions (see the module docstring).

    ``prefix``: the RFC 6052 prefix (``dns64-prefix``); ``synthall``: synthesise even where
    AAAA records exist (``dns64-synthall``); ``ignore_aaaa``: names at and below which the
    AAAA records are ignored and synthesis used (``dns64-ignore-aaaa``), as text or wire."""

    def __init__(self, prefix=DEFAULT_PREFIX, synthall: bool = False,
                 ignore_aaaa: Iterable = ()) -> None:
        self.prefix = (prefix if isinstance(prefix, ipaddress.IPv6Network)
                       else parse_prefix(prefix))
        self.synthall = bool(synthall)
        self.ignore_aaaa = tuple(_wire(n) for n in ignore_aaaa)
        rev = dns.reversename.from_address(str(self.prefix.network_address))
        nibbles = self.prefix.prefixlen // 4            # the labels the prefix fixes
        #: the prefix's reverse zone (lower-cased wire): PTR questions below it are mapped
        self.ptr_zone = rev.split(nibbles + 3)[1].to_wire().lower()     # + ip6.arpa.

    def __repr__(self) -> str:
        return (f"Dns64(prefix={str(self.prefix)!r}, synthall={self.synthall}, "
                f"ignore_aaaa={[dns.name.from_wire(n, 0)[0].to_text() for n in self.ignore_aaaa]})")

    # ---- AAAA --------------------------------------------------------------------------------
    def target(self, qname: bytes, res: Result) -> bytes | None:
        """The name whose A records make the answer to the AAAA question ``qname``, given
        its own result ``res``, or None when ``res`` is the answer: synthesis follows a
        NOERROR answer (never NXDOMAIN, SERVFAIL or another error: RFC 6147 5.1.2, 5.1.3,
        5.1.4; never a BOGUS one) that has no AAAA at the end of its CNAME chain, or only
        AAAA in the excluded range ::ffff:0:0/96 (5.1.4); always with ``synthall`` or for a
        name under ``ignore_aaaa``."""
        if res.rcode != NOERROR or res.security == BOGUS:
            return None
        end = _chain_end(qname, res.answer)
        if self.synthall or self._ignored(qname):
            return end
        for rec in res.answer:
            if rec[1] == AAAA and len(rec[4]) == 16 and _lower(rec[0]) == end:
                addr = ipaddress.IPv6Address(rec[4])
                if not any(addr in net for net in EXCLUDED):
                    return None
        return end

    def _ignored(self, qname: bytes) -> bool:
        if not self.ignore_aaaa:
            return False
        name = _lower(qname)
        return any(_under(name, zone) for zone in self.ignore_aaaa)

    def synthesize(self, qname: bytes, aaaa: Result, a: Result) -> Result:
        """The answer to the AAAA question from its own result ``aaaa`` and the A result of
        the chain's end ``a``: the CNAME chain (with its signatures), then one AAAA per A
        record, each ``embed``-ed, with the TTL RFC 6147 5.1.7 gives: the smaller of the A
        record's and the AAAA answer's negative TTL (``NO_SOA_TTL`` without a SOA). Without
        A records (or when the A question failed) the AAAA result stands. Never SECURE
        (RFC 6147 5.5); BOGUS when the A records were."""
        addrs = [rec for rec in a.answer if rec[1] == A and len(rec[4]) == 4]
        if a.rcode != NOERROR or not addrs:
            return aaaa
        neg = _negative_ttl(aaaa.authority)
        cap = NO_SOA_TTL if neg is None else neg
        answer = [rec for rec in aaaa.answer
                  if rec[1] != AAAA and not (rec[1] == RRSIG and rec[4][:2] == b"\x00\x1c")]
        seen = {(_lower(rec[0]), rec[4]) for rec in answer}
        answer += [rec for rec in a.answer if rec[1] == CNAME
                   and (_lower(rec[0]), rec[4]) not in seen]
        for rec in addrs:
            answer.append((rec[0], AAAA, IN, min(rec[3], cap),
                           embed(self.prefix, rec[4]).packed))
        security = BOGUS if a.security == BOGUS else UNCHECKED
        return Result(NOERROR, answer, [], security=security, ede=a.ede if security else None,
                      reason=a.reason if security else None)

    # ---- PTR -----------------------------------------------------------------------------------
    def ptr_target(self, qname: bytes) -> bytes | None:
        """The ``in-addr.arpa`` name to ask for the PTR question ``qname`` (RFC 6147 5.3.1),
        when it is a whole address's ``ip6.arpa`` name under the prefix; else None."""
        lowered = _lower(qname)
        if not lowered.endswith(self.ptr_zone) or len(lowered) != 74:    # 32 nibbles
            return None
        try:
            addr = dns.reversename.to_address(dns.name.from_wire(lowered, 0)[0])
            v4 = extract(self.prefix, addr)
        except (ValueError, dns.exception.DNSException):
            return None
        if v4 is None:
            return None
        return dns.reversename.from_address(str(v4)).to_wire()

    def ptr_answer(self, qname: bytes, target: bytes, res: Result) -> Result:
        """The answer to the PTR question ``qname`` from the result ``res`` of its
        ``in-addr.arpa`` name ``target``: a CNAME from ``qname`` to ``target``, then that
        result's records and rcode (as Unbound answers). The CNAME's TTL is the smallest of
        the result's records' (``NO_SOA_TTL`` when it has none). No DNSSEC verdict is kept:
        the CNAME is made here."""
        ttls = [rec[3] for rec in res.answer + res.authority]
        cname = (qname, CNAME, IN, min(ttls, default=NO_SOA_TTL), target)
        security = BOGUS if res.security == BOGUS else UNCHECKED
        return Result(res.rcode, [cname] + list(res.answer), list(res.authority), res.reason,
                      res.time_exhausted, security, res.ede)


def _wire(name) -> bytes:
    """A name given as text, a dnspython Name or wire bytes, as lower-cased wire."""
    if isinstance(name, bytes):
        return name.lower()
    if not isinstance(name, dns.name.Name):
        name = dns.name.from_text(str(name))
    return name.to_wire().lower()


def make(value) -> Dns64 | None:
    """``Resolver(dns64=...)``: None or False (off), True (the default prefix), a prefix
    text, or a :class:`Dns64`."""
    if value is None or value is False:
        return None
    if value is True:
        return Dns64()
    if isinstance(value, Dns64):
        return value
    return Dns64(value)
