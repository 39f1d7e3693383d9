"""Aggressive use of the DNSSEC-validated cache (RFC 8198): NSEC and NSEC3 ranges, and
wildcards.

Every NSEC or NSEC3 record that took part in a secure proof is kept (with its RRSIGs and,
for denials, the zone's signed SOA) until its TTL runs out, and so is every wildcard rrset
whose expansion validated. A later question is answered from these without asking the
authorities:

- NXDOMAIN, when the ranges prove the name and the wildcard at its closest encloser absent
  (NSEC: RFC 4035 5.4; NSEC3: the closest-encloser proof of RFC 5155 8.4);
- NODATA, when the record at the name (or at the wildcard that would match) does not list
  the type;
- a positive answer, when the name is proven absent and the wildcard at its closest encloser
  is cached with the type asked: the wildcard's records and RRSIGs, expanded to the name, with
  the proof that no closer name exists (RFC 8198 5.3). The validator checks that answer's
  signature like any other.

A random-subdomain flood against a signed zone stops at the resolver. NSEC3 opt-out ranges
prove nothing about names in them and are not kept; NSEC3 hashing for a synthesis is bounded
(``Limits.nsec3_max_hashes_per_synthesis``) and uses only the parameters of the proofs seen, whose iterations the
validator already held to ``Limits.nsec3_max_iterations``.
"""
from __future__ import annotations

import bisect
import hashlib
from collections import OrderedDict

from resolver.dnssec import denial
from resolver.wire.codec import is_subdomain, parent, ttl_left

from resolver.limits import DEFAULT as _LIMITS
NS, SOA, CNAME, DNAME = 2, 6, 5, 39


class _Zone:
    __slots__ = ("keys", "entries", "soa", "soa_expires", "n3keys", "n3", "n3params",
                 "wild")

    def __init__(self) -> None:
        self.keys: list = []                   # sorted canonical owner keys
        self.entries: dict = {}                # key -> (Nsec, records, expires)
        self.soa: list = []
        self.soa_expires = 0.0
        self.n3keys: list = []                 # sorted NSEC3 owner hashes
        self.n3: dict = {}                     # hash -> (Nsec3, records, expires)
        self.n3params: tuple | None = None     # (iterations, salt) of the chain kept
        self.wild: dict = {}                   # (lower wildcard, type) -> (recs, sigs, exp)


class _Hasher:
    """RFC 5155 hashes with one parameter set, memoised and bounded."""

    def __init__(self, params: tuple, max_hashes: int) -> None:
        self.iterations, self.salt = params
        self.max_hashes = max_hashes
        self.memo: dict[bytes, bytes] = {}

    def __call__(self, name: bytes) -> bytes:
        key = name.lower()
        d = self.memo.get(key)
        if d is None:
            if len(self.memo) >= self.max_hashes:
                raise _GiveUp()
            d = hashlib.sha1(key + self.salt).digest()
            for _ in range(self.iterations):
                d = hashlib.sha1(d + self.salt).digest()
            self.memo[key] = d
        return d


class _GiveUp(Exception):
    """The hash budget of one synthesis ran out: ask the authorities instead."""


class NsecCache:
    """Validated NSEC/NSEC3 ranges and wildcards per zone, bounded in zones and in entries
    per zone."""

    def __init__(self, max_zones: int = 1000, max_per_zone: int = 2000,
                 limits=_LIMITS) -> None:
        self.max_hashes = limits.nsec3_max_hashes_per_synthesis
        self.zones: OrderedDict[bytes, _Zone] = OrderedDict()
        self.max_zones = max_zones
        self.max_per_zone = max_per_zone

    def _zone(self, zone: bytes) -> _Zone:
        lz = zone.lower()
        z = self.zones.get(lz)
        if z is None:
            z = self.zones[lz] = _Zone()
            while len(self.zones) > self.max_zones:
                self.zones.popitem(last=False)
        self.zones.move_to_end(lz)
        return z

    def add(self, zone: bytes, nsec: denial.Nsec, records: list, soa: list,
            expires: float) -> None:
        z = self._zone(zone)
        key = denial.canon(nsec.owner)
        if key not in z.entries:
            if len(z.keys) >= self.max_per_zone:
                return
            bisect.insort(z.keys, key)
        z.entries[key] = (nsec, records, expires)
        self._soa(z, soa, expires)

    def add3(self, zone: bytes, nsec3: denial.Nsec3, records: list, soa: list,
             expires: float) -> None:
        """Keeps a validated NSEC3 record of ``zone`` (not an opt-out one: its range may
        hide unsigned delegations). A chain with other parameters replaces the one kept."""
        if nsec3.flags & denial.OPT_OUT or nsec3.alg != 1:
            return
        z = self._zone(zone)
        params = (nsec3.iterations, nsec3.salt)
        if z.n3params != params:
            z.n3keys, z.n3, z.n3params = [], {}, params
        if nsec3.hash not in z.n3:
            if len(z.n3keys) >= self.max_per_zone:
                return
            bisect.insort(z.n3keys, nsec3.hash)
        z.n3[nsec3.hash] = (nsec3, records, expires)
        self._soa(z, soa, expires)

    def add_wildcard(self, zone: bytes, wildcard: bytes, rdtype: int, records: list,
                     sigs: list, expires: float) -> None:
        """Keeps a validated wildcard rrset (owner ``*.<closest encloser>``) for synthesis."""
        z = self._zone(zone)
        key = (wildcard.lower(), rdtype)
        if key not in z.wild and len(z.wild) >= self.max_per_zone:
            return
        z.wild[key] = (records, sigs, expires)

    @staticmethod
    def _soa(z: _Zone, soa: list, expires: float) -> None:
        if soa:
            z.soa, z.soa_expires = soa, expires

    # ---- look-ups -------------------------------------------------------------------------
    def _covering(self, z: _Zone, name: bytes, now: float):
        key = denial.canon(name)
        i = bisect.bisect_right(z.keys, key) - 1
        cands = [z.keys[i]] if i >= 0 else []
        if z.keys:
            cands.append(z.keys[-1])           # the last range wraps to the apex
        for k in cands:
            nsec, recs, exp = z.entries[k]
            if exp >= now and nsec.proves_absent(name):
                return nsec, recs, exp
        return None

    def _matching(self, z: _Zone, name: bytes, now: float):
        e = z.entries.get(denial.canon(name))
        if e is not None and e[2] >= now:
            return e
        return None

    @staticmethod
    def _match3(z: _Zone, h: bytes, now: float):
        e = z.n3.get(h)
        return e if e is not None and e[2] >= now else None

    @staticmethod
    def _cover3(z: _Zone, h: bytes, now: float):
        i = bisect.bisect_left(z.n3keys, h) - 1
        cands = [z.n3keys[i]] if i >= 0 else []
        if z.n3keys:
            cands.append(z.n3keys[-1])         # the last range wraps to the first hash
        for k in cands:
            e = z.n3[k]
            if e[2] >= now and e[0].covers(h) and e[0].hash != h:
                return e
        return None

    def _wildcard_answer(self, z: _Zone, ce: bytes, name: bytes, qtype: int, now: float):
        """The cached wildcard at ``ce`` expanded to ``name``: (records, expires) or None.
        A wildcard CNAME answers every type (RFC 8198 5.3, RFC 4592 4.4), whatever type
        was asked when it was validated."""
        w = z.wild.get((denial.wildcard_of(ce).lower(), qtype))
        if (w is None or w[2] < now) and qtype != CNAME:
            w = z.wild.get((denial.wildcard_of(ce).lower(), CNAME))
        if w is None or w[2] < now:
            return None
        recs, sigs, exp = w
        return ([(name, t, c, ttl, rd) for (_o, t, c, ttl, rd) in recs]
                + [(name, t, c, ttl, rd) for (_o, t, c, ttl, rd) in sigs]), exp

    def synthesize(self, name: bytes, qtype: int, now: float, zone_is_secure):
        """("nx" | "nodata", authority records), ("answer", authority, answer records) or
        ("cname", authority, answer records, target) proven by cached ranges and
        wildcards, else None. ``zone_is_secure(zone)`` says
        whether the zone's keys are still SECURE in cache."""
        lz = name.lower()
        z, zone = None, None
        cur = lz
        while True:
            if cur in self.zones:
                z, zone = self.zones[cur], cur
                break
            if len(cur) <= 1:
                return None
            cur = parent(cur)
        if not zone_is_secure(zone) or not is_subdomain(lz, zone):
            return None
        out = self._from_nsec(z, name, qtype, now)
        if out is None and z.n3params is not None:
            try:
                out = self._from_nsec3(z, zone, name, qtype, now)
            except _GiveUp:
                return None
        if out is not None and out[0] == "answer" and qtype != CNAME:
            cname = [r for r in out[2] if r[1] == CNAME]
            if cname:       # a wildcard CNAME's expansion: its target is resolved next
                return "cname", out[1], out[2], cname[0][4]
        return out

    def _negative(self, z: _Zone, kind: str, recs: list, expires: float, now: float):
        if z.soa_expires < now or not z.soa:
            return None                        # a denial goes out with the zone's SOA
        return kind, self._with_ttl(z.soa + recs, min(expires, z.soa_expires), now)

    def _from_nsec(self, z: _Zone, name: bytes, qtype: int, now: float):
        if not z.keys:
            return None
        m = self._matching(z, name, now)
        if m is not None:
            nsec, recs, exp = m
            if denial.nodata_types_ok(nsec.types, qtype, name):
                return self._negative(z, "nodata", recs, exp, now)
            return None
        cov = self._covering(z, name, now)
        if cov is None:
            return None
        ce = denial.nsec_closest_encloser(cov[0], name)
        wc = denial.wildcard_of(ce)
        wm = self._matching(z, wc, now)
        if wm is not None:                      # a wildcard exists: it answers
            if qtype in wm[0].types or CNAME in wm[0].types:
                got = self._wildcard_answer(z, ce, name, qtype, now)
                if got is None:
                    return None
                exp = min(got[1], cov[2])
                return "answer", self._with_ttl(cov[1], exp, now), self._with_ttl(
                    got[0], exp, now)
            if denial.nodata_types_ok(wm[0].types, qtype, wc):
                recs = cov[1] + (wm[1] if wm[1] is not cov[1] else [])
                return self._negative(z, "nodata", recs, min(cov[2], wm[2]), now)
            return None
        got = self._wildcard_answer(z, ce, name, qtype, now)
        if got is not None:                    # the wildcard seen expanded, its NSEC not
            exp = min(got[1], cov[2])
            return "answer", self._with_ttl(cov[1], exp, now), self._with_ttl(got[0], exp,
                                                                                now)
        wcov = self._covering(z, wc, now)
        if wcov is None:
            return None
        recs = cov[1] + (wcov[1] if wcov[1] is not cov[1] else [])
        return self._negative(z, "nx", recs, min(cov[2], wcov[2]), now)

    def _from_nsec3(self, z: _Zone, zone: bytes, name: bytes, qtype: int, now: float):
        h = _Hasher(z.n3params, self.max_hashes)
        lz = zone.lower()
        # the ancestors of the name, closest first, down to the zone's apex
        chain = [name]
        while len(chain[-1]) > len(lz) and is_subdomain(parent(chain[-1]), lz):
            chain.append(parent(chain[-1]))
        m = self._match3(z, h(name), now)
        if m is not None:
            if denial.nodata_types_ok(m[0].types, qtype, name):
                return self._negative(z, "nodata", m[1], m[2], now)
            return None
        for i in range(1, len(chain)):
            ce = chain[i]
            nc = chain[i - 1]
            wild = self._wildcard_answer(z, ce, name, qtype, now)
            cem = self._match3(z, h(ce), now)
            if wild is None and cem is None:
                continue
            cov = self._cover3(z, h(nc), now)
            if cov is None:
                return None
            if wild is not None:               # nothing at or below nc; *.ce answers
                exp = min(wild[1], cov[2])
                return "answer", self._with_ttl(cov[1], exp, now), self._with_ttl(
                    wild[0], exp, now)
            if (NS in cem[0].types and SOA not in cem[0].types) or DNAME in cem[0].types:
                return None                    # a delegation or DNAME: not this zone's
            wch = h(denial.wildcard_of(ce))
            wm = self._match3(z, wch, now)
            if wm is not None:
                if qtype not in wm[0].types and denial.nodata_types_ok(
                        wm[0].types, qtype, denial.wildcard_of(ce)):
                    recs = _distinct(cem[1], cov[1], wm[1])
                    return self._negative(z, "nodata", recs, min(cem[2], cov[2], wm[2]), now)
                return None
            wcov = self._cover3(z, wch, now)
            if wcov is None:
                return None
            recs = _distinct(cem[1], cov[1], wcov[1])
            return self._negative(z, "nx", recs, min(cem[2], cov[2], wcov[2]), now)
        return None

    @staticmethod
    def _with_ttl(records: list, expires: float, now: float) -> list:
        left = ttl_left(expires, now)
        return [(o, t, c, min(ttl, left), rd) for (o, t, c, ttl, rd) in records]

    def flush(self) -> None:
        self.zones.clear()


def _distinct(*groups: list) -> list:
    out, seen = [], set()
    for g in groups:
        if id(g) not in seen:
            seen.add(id(g))
            out += g
    return out
