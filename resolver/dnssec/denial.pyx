"""Authenticated denial of existence: NSEC (RFC 4035 5.4, RFC 6840 4) and NSEC3 (RFC 5155 8).

Each proof takes NSEC/NSEC3 records whose signatures the caller has already checked and
returns SECURE or INSECURE (NSEC3 opt-out, too many iterations, unknown hash), or raises
:class:`~resolver.dnssec.sig.Bogus`. NSEC3 hashing is charged to a per-proof budget
(CVE-2023-50868: a closest-encloser search on a long name with many iterations).
"""
from __future__ import annotations

import base64
import hashlib
import struct

from resolver.dnssec.sig import EDE_NSEC_MISSING, Bogus
from resolver.wire.codec import is_subdomain, parent, strip_to
from resolver.wire.names cimport skip_name

INSECURE, SECURE = 1, 2
NS, SOA, CNAME, DNAME, DS, NSEC, NSEC3 = 2, 6, 5, 39, 43, 47, 50
OPT_OUT = 0x01


# ---- names ----------------------------------------------------------------------------------

def labels(name: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(name) and name[pos]:
        out.append(name[pos + 1:pos + 1 + name[pos]])
        pos += 1 + name[pos]
    return out


def canon(name: bytes) -> tuple:
    """Sort key for RFC 4034 6.1 canonical order."""
    return tuple(l.lower() for l in reversed(labels(name)))


def common_ancestor(a: bytes, b: bytes) -> bytes:
    la, lb = canon(a), canon(b)
    k = 0
    while k < len(la) and k < len(lb) and la[k] == lb[k]:
        k += 1
    return _from_canon(la[:k])


def _from_canon(c: tuple) -> bytes:
    return b"".join(bytes([len(l)]) + l for l in reversed(c)) + b"\x00"


def wildcard_of(name: bytes) -> bytes:
    return b"\x01*" + name


def types_of(bitmap: bytes) -> set[int]:
    """The types in an NSEC/NSEC3 type bitmap (RFC 4034 4.1.2)."""
    out, pos = set(), 0
    while pos + 2 <= len(bitmap):
        window, n = bitmap[pos], bitmap[pos + 1]
        chunk = bitmap[pos + 2:pos + 2 + n]
        for i, byte in enumerate(chunk):
            for bit in range(8):
                if byte & (0x80 >> bit):
                    out.add(window * 256 + i * 8 + bit)
        pos += 2 + n
    return out


def _child_toward(ancestor: bytes, name: bytes) -> bytes:
    """The name one label below ``ancestor`` on the way to ``name``."""
    cur = name
    while len(parent(cur)) > len(ancestor):
        cur = parent(cur)
    return cur


# ---- NSEC -----------------------------------------------------------------------------------

class Nsec:
    __slots__ = ("owner", "next", "types")

    def __init__(self, owner: bytes, rdata: bytes) -> None:
        end = skip_name(<const unsigned char*>rdata, len(rdata), 0)
        if end < 0:         # a malformed next name: all of it, with no type bitmap
            end = len(rdata)
        self.owner, self.next, self.types = owner, rdata[:end], types_of(rdata[end:])

    def matches(self, name: bytes) -> bool:
        return canon(self.owner) == canon(name)

    def covers(self, name: bytes) -> bool:
        o, n, x = canon(self.owner), canon(self.next), canon(name)
        if o < n:
            return o < x < n
        return x > o or x < n           # the last NSEC of the zone wraps to the apex

    def proves_absent(self, name: bytes) -> bool:
        """The NSEC shows that ``name`` does not exist: it covers it, may speak for it, and
        its next name is not below it (that would make ``name`` an empty non-terminal,
        which exists: RFC 4035 5.4, as Unbound's name error proof)."""
        return (self.covers(name) and not self.matches(name) and self.may_deny(name)
                and not (is_subdomain(self.next, name) and canon(self.next) != canon(name)))

    def may_deny(self, name: bytes) -> bool:
        """RFC 6840 4.1: an NSEC at a delegation (NS without SOA) or at a DNAME says nothing
        about names below it."""
        if is_subdomain(name, self.owner) and not self.matches(name):
            if (NS in self.types and SOA not in self.types) or DNAME in self.types:
                return False
        return True


def _nsec_cover(nsecs: list[Nsec], name: bytes) -> Nsec | None:
    for n in nsecs:
        if n.proves_absent(name):
            return n
    return None


def nsec_closest_encloser(n: Nsec, name: bytes) -> bytes:
    """The closest encloser of ``name`` that the NSEC ``n`` covering it shows: the longer of
    the names ``name`` shares with the NSEC's owner and with its next name."""
    a, b = common_ancestor(name, n.owner), common_ancestor(name, n.next)
    return a if len(a) >= len(b) else b


def nsec_nxdomain(nsecs: list[Nsec], name: bytes) -> int:
    n = _nsec_cover(nsecs, name)
    if n is None:
        raise Bogus("no NSEC proves the name does not exist", EDE_NSEC_MISSING)
    wc = wildcard_of(nsec_closest_encloser(n, name))
    if any(x.matches(wc) for x in nsecs):
        raise Bogus("NXDOMAIN but the NSEC shows a wildcard that should have matched")
    if _nsec_cover(nsecs, wc) is None:
        raise Bogus("no NSEC proves the wildcard does not exist", EDE_NSEC_MISSING)
    return SECURE


def nodata_types_ok(types: set[int], qtype: int, name: bytes) -> bool:
    """Whether an NSEC at ``name`` with the type bitmap ``types`` denies ``qtype`` there: the
    type and CNAME absent, and the NSEC from the side of the zone cut that owns the type."""
    if qtype in types or CNAME in types:
        return False
    if qtype == DS:
        return SOA not in types or name == b"\x00"        # a child-side NSEC cannot deny DS
    return not (NS in types and SOA not in types)       # nor a parent-side one other types


def nsec_nodata(nsecs: list[Nsec], name: bytes, qtype: int) -> int:
    for n in nsecs:
        if n.matches(name):
            if not nodata_types_ok(n.types, qtype, name):
                raise Bogus("the NSEC for the name lists the type asked or a CNAME")
            return SECURE
    for n in nsecs:        # empty non-terminal: the next name lies below the name asked
        if (n.covers(name) and n.may_deny(name) and is_subdomain(n.next, name)
                and canon(n.next) != canon(name)):
            return SECURE
    n = _nsec_cover(nsecs, name)
    if n is not None:      # wildcard NODATA
        wc = wildcard_of(nsec_closest_encloser(n, name))
        for x in nsecs:
            if x.matches(wc) and nodata_types_ok(x.types, qtype, wc):
                return SECURE
    raise Bogus("no NSEC proves there is no data of this type", EDE_NSEC_MISSING)


def nsec_no_ds(nsecs: list[Nsec], name: bytes) -> int:
    """An insecure delegation: the NSEC at the cut has NS and neither DS nor SOA."""
    for n in nsecs:
        if n.matches(name):
            if DS in n.types:
                raise Bogus("NSEC says the DS exists")
            if NS not in n.types or SOA in n.types:
                raise Bogus("the NSEC does not show a delegation without DS", EDE_NSEC_MISSING)
            return INSECURE
    raise Bogus("no NSEC for the delegation proves the DS absent", EDE_NSEC_MISSING)


def nsec_cut(nsecs: list[Nsec], name: bytes) -> int:
    """What the denial of ``name``/DS says of a zone cut there: INSECURE when the NSEC at
    ``name`` shows a delegation without DS, SECURE when it proves there is none (the name
    holds other data, or is an empty non-terminal); Bogus otherwise."""
    for n in nsecs:
        if n.matches(name):
            if DS in n.types or SOA in n.types:
                raise Bogus("the NSEC does not deny the DS from the parent's side")
            return INSECURE if NS in n.types else SECURE
    return nsec_nodata(nsecs, name, DS)


def nsec_wildcard(nsecs: list[Nsec], owner: bytes, sig_labels: int) -> int:
    """A wildcard-expanded answer (RFC 4035 5.3.4, RFC 4592 4.4): an NSEC covers the name
    asked, so it does not exist itself, and the closest encloser that NSEC shows is the
    wildcard's parent, the name the RRSIG's label count leaves: no name between them
    exists, so the wildcard could have produced this answer."""
    ce = strip_to(owner, sig_labels)
    for n in nsecs:
        if n.proves_absent(owner) and canon(nsec_closest_encloser(n, owner)) == canon(ce):
            return SECURE
    if _nsec_cover(nsecs, owner) is not None:
        raise Bogus("wildcard answer whose NSEC shows another closest encloser than its "
                    "RRSIG's label count", EDE_NSEC_MISSING)
    raise Bogus("wildcard answer without an NSEC proving no closer match", EDE_NSEC_MISSING)


# ---- NSEC3 ----------------------------------------------------------------------------------

class Nsec3:
    __slots__ = ("owner", "hash", "zone", "alg", "flags", "iterations", "salt", "next", "types")

    def __init__(self, owner: bytes, rdata: bytes) -> None:
        self.owner = owner
        label = owner[1:1 + owner[0]].upper()
        self.zone = owner[1 + owner[0]:].lower()
        self.hash = base64.b32hexdecode(label + b"=" * (-len(label) % 8))
        self.alg, self.flags, self.iterations, slen = struct.unpack_from("!BBHB", rdata)
        self.salt = rdata[5:5 + slen]
        pos = 5 + slen
        hlen = rdata[pos]
        self.next = rdata[pos + 1:pos + 1 + hlen]
        self.types = types_of(rdata[pos + 1 + hlen:])
        if len(self.next) != hlen or len(rdata) < pos + 1:
            raise ValueError("short NSEC3 rdata")

    def covers(self, h: bytes) -> bool:
        if self.hash < self.next:
            return self.hash < h < self.next
        return h > self.hash or h < self.next


class Nsec3Proof:
    """NSEC3 records of one zone and one parameter set, with a budgeted, memoised hash."""

    def __init__(self, records: list[Nsec3], zone: bytes, limits, counter) -> None:
        usable = [r for r in records if r.alg == 1 and r.flags & ~OPT_OUT == 0
                  and r.zone == zone.lower()]
        self.zone = zone.lower()
        self.records: list[Nsec3] = []
        self.too_costly = False
        if usable:
            p = (usable[0].iterations, usable[0].salt)
            self.records = [r for r in usable if (r.iterations, r.salt) == p]
            self.iterations, self.salt = p
            self.too_costly = self.iterations > limits.nsec3_max_iterations
        self.limits, self.counter = limits, counter
        self.done = 0
        self._memo: dict[bytes, bytes] = {}

    def h(self, name: bytes) -> bytes:
        key = name.lower()
        d = self._memo.get(key)
        if d is None:
            if self.done >= self.limits.nsec3_max_hashes_per_proof:
                raise Bogus(f"NSEC3 hash budget ({self.limits.nsec3_max_hashes_per_proof} "
                            "names per proof) exhausted")
            if self.counter.nsec3_hashes >= self.limits.nsec3_max_hashes_per_query:
                raise Bogus(f"NSEC3 hash budget ({self.limits.nsec3_max_hashes_per_query} "
                            "names per query) exhausted")
            self.done += 1
            self.counter.nsec3_hashes += 1
            salt = self.salt
            d = hashlib.sha1(key + salt).digest()
            for _ in range(self.iterations):
                d = hashlib.sha1(d + salt).digest()
            self._memo[key] = d
        return d

    def match(self, name: bytes) -> Nsec3 | None:
        h = self.h(name)
        for r in self.records:
            if r.hash == h:
                return r
        return None

    def cover(self, name: bytes) -> Nsec3 | None:
        h = self.h(name)
        for r in self.records:
            if r.covers(h) and r.hash != h:
                return r
        return None

    def closest_encloser(self, name: bytes):
        """(closest encloser, next closer, NSEC3 covering the next closer) - RFC 5155 8.3.
        An NSEC3 at a delegation (NS without SOA) or a DNAME is never the closest encloser
        of a name below it (RFC 5155 8.3, RFC 6840 4.1): the zone below the cut, not this
        one, speaks for those names, so such a "proof" could make a signed child's names
        look absent or insecure."""
        sc, prev = name, None
        while is_subdomain(sc, self.zone):
            m = self.match(sc)
            if m is not None:
                if (NS in m.types and SOA not in m.types) or DNAME in m.types:
                    raise Bogus("NSEC3 closest encloser is a delegation or DNAME")
                if prev is None:
                    return sc, None, None
                cov = self.cover(prev)
                if cov is None:
                    raise Bogus("no NSEC3 covers the next closer name", EDE_NSEC_MISSING)
                return sc, prev, cov
            if len(sc) <= len(self.zone):
                break
            prev, sc = sc, parent(sc)
        raise Bogus("no NSEC3 closest encloser proof", EDE_NSEC_MISSING)

    def _usable(self) -> bool:
        return bool(self.records) and not self.too_costly

    def nxdomain(self, name: bytes) -> int:
        if not self._usable():
            return INSECURE
        ce, nc, cov = self.closest_encloser(name)
        if nc is None:
            raise Bogus("NXDOMAIN but an NSEC3 matches the name")
        if self.cover(wildcard_of(ce)) is None:
            raise Bogus("no NSEC3 proves the wildcard does not exist", EDE_NSEC_MISSING)
        return INSECURE if cov.flags & OPT_OUT else SECURE

    def nodata(self, name: bytes, qtype: int) -> int:
        if not self._usable():
            return INSECURE
        m = self.match(name)
        if m is not None:
            if not nodata_types_ok(m.types, qtype, name):
                raise Bogus("the NSEC3 for the name lists the type asked or a CNAME")
            return SECURE
        ce, nc, cov = self.closest_encloser(name)
        opt_out = cov is not None and cov.flags & OPT_OUT
        w = self.match(wildcard_of(ce))
        if w is not None and nodata_types_ok(w.types, qtype, wildcard_of(ce)):
            # wildcard NODATA (RFC 5155 8.7); under an opt-out span, no AD (9.2)
            return INSECURE if opt_out else SECURE
        if opt_out:
            # RFC 5155 8.6 (and 9.2 for other types, as Unbound): the name may sit in an
            # unsigned delegation the opt-out span leaves out; insecure, not bogus
            return INSECURE
        raise Bogus("no NSEC3 proves there is no data of this type", EDE_NSEC_MISSING)

    def no_ds(self, name: bytes) -> int:
        """INSECURE when ``name`` is proven a delegation without DS (or inside an opt-out span);
        Bogus otherwise."""
        if not self._usable():
            return INSECURE
        m = self.match(name)
        if m is not None:
            if DS in m.types:
                raise Bogus("NSEC3 says the DS exists")
            if NS not in m.types or SOA in m.types:
                raise Bogus("the NSEC3 does not show a delegation without DS", EDE_NSEC_MISSING)
            return INSECURE
        ce, nc, cov = self.closest_encloser(name)
        if cov is not None and cov.flags & OPT_OUT:
            return INSECURE
        raise Bogus("no NSEC3 proves the DS absent", EDE_NSEC_MISSING)

    def cut(self, name: bytes) -> int:
        """``nsec_cut`` with NSEC3: INSECURE for a delegation without DS at ``name`` (its
        NSEC3 shows NS without DS, or an opt-out span covers it), SECURE when its NSEC3
        shows no delegation; Bogus otherwise."""
        if not self._usable():
            return INSECURE
        m = self.match(name)
        if m is not None:
            if DS in m.types or SOA in m.types:
                raise Bogus("the NSEC3 does not deny the DS from the parent's side")
            return INSECURE if NS in m.types else SECURE
        ce, nc, cov = self.closest_encloser(name)
        if cov is not None and cov.flags & OPT_OUT:
            return INSECURE
        raise Bogus("no NSEC3 proves the DS absent", EDE_NSEC_MISSING)

    def wildcard(self, owner: bytes, sig_labels: int) -> int:
        """A wildcard-expanded answer (RFC 5155 8.8): the closest encloser is the name the
        RRSIG's label count leaves, and an NSEC3 covers the next closer name, so no name
        between them exists. Under an opt-out span, no AD (9.2)."""
        if not self._usable():
            return INSECURE
        ce = strip_to(owner, sig_labels)
        nc = _child_toward(ce, owner)
        cov = self.cover(nc)
        if cov is None:
            raise Bogus("wildcard answer without an NSEC3 covering the next closer name",
                        EDE_NSEC_MISSING)
        return INSECURE if cov.flags & OPT_OUT else SECURE
