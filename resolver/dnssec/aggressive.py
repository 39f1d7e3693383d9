"""Aggressive use of the DNSSEC-validated cache (RFC 8198) for NSEC ranges.

Every NSEC that took part in a secure proof is kept (with its RRSIGs and the zone's signed
SOA) until its TTL runs out. A later question for a name those ranges prove absent (the name
and the wildcard at its closest encloser both covered) or for a type an NSEC at the name
does not list, is answered NXDOMAIN/NODATA from here, without asking the authorities: a
random-subdomain flood against a signed zone stops at the resolver. NSEC3 ranges are not
used (RFC 8198 allows it; hashing every flood name is the cost it would add).
"""
from __future__ import annotations

import bisect
from collections import OrderedDict

from resolver.dnssec import denial
from resolver.wire.codec import is_subdomain, parent


class _Zone:
    __slots__ = ("keys", "entries", "soa", "soa_expires")

    def __init__(self) -> None:
        self.keys: list = []                   # sorted canonical owner keys
        self.entries: dict = {}                # key -> (Nsec, records, expires)
        self.soa: list = []
        self.soa_expires = 0.0


class NsecCache:
    """Validated NSEC ranges per zone, bounded in zones and in ranges per zone."""

    def __init__(self, max_zones: int = 1000, max_per_zone: int = 2000) -> None:
        self.zones: OrderedDict[bytes, _Zone] = OrderedDict()
        self.max_zones = max_zones
        self.max_per_zone = max_per_zone

    def add(self, zone: bytes, nsec: denial.Nsec, records: list, soa: list,
            expires: float) -> None:
        lz = zone.lower()
        z = self.zones.get(lz)
        if z is None:
            z = self.zones[lz] = _Zone()
            while len(self.zones) > self.max_zones:
                self.zones.popitem(last=False)
        self.zones.move_to_end(lz)
        key = denial.canon(nsec.owner)
        if key not in z.entries:
            if len(z.keys) >= self.max_per_zone:
                return
            bisect.insort(z.keys, key)
        z.entries[key] = (nsec, records, expires)
        if soa:
            z.soa, z.soa_expires = soa, expires

    def _covering(self, z: _Zone, name: bytes, now: float):
        key = denial.canon(name)
        i = bisect.bisect_right(z.keys, key) - 1
        cands = [z.keys[i]] if i >= 0 else []
        if z.keys:
            cands.append(z.keys[-1])           # the last range wraps to the apex
        for k in cands:
            nsec, recs, exp = z.entries[k]
            if exp >= now and nsec.covers(name) and not nsec.matches(name) \
                    and nsec.may_deny(name):
                return nsec, recs, exp
        return None

    def _matching(self, z: _Zone, name: bytes, now: float):
        e = z.entries.get(denial.canon(name))
        if e is not None and e[2] >= now:
            return e
        return None

    def synthesize(self, name: bytes, qtype: int, now: float, zone_is_secure):
        """("nx" | "nodata", authority records) proven by cached ranges, else None.
        ``zone_is_secure(zone)`` says whether the zone's keys are still SECURE in cache."""
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
        if not zone_is_secure(zone) or z.soa_expires < now or not is_subdomain(lz, zone):
            return None
        m = self._matching(z, name, now)
        if m is not None:
            nsec, recs, exp = m
            if denial._nodata_types_ok(nsec.types, qtype, name):
                return "nodata", self._with_ttl(z.soa + recs, min(exp, z.soa_expires), now)
            return None
        cov = self._covering(z, name, now)
        if cov is None:
            return None
        wc = denial.wildcard_of(denial._nsec_ce(cov[0], name))
        if self._matching(z, wc, now) is not None:
            return None                          # a wildcard exists: it would answer
        wcov = self._covering(z, wc, now)
        if wcov is None:
            return None
        recs = cov[1] + (wcov[1] if wcov[1] is not cov[1] else [])
        return "nx", self._with_ttl(z.soa + recs, min(cov[2], wcov[2], z.soa_expires), now)

    @staticmethod
    def _with_ttl(records: list, expires: float, now: float) -> list:
        left = max(0, int(expires - now))
        return [(o, t, c, min(ttl, left), rd) for (o, t, c, ttl, rd) in records]

    def flush(self) -> None:
        self.zones.clear()
