"""The resolver's memory: whole answers in wire form, rrsets ranked by trust, negative answers,
per-server facts and remembered failures.

Every time is passed in (``now``), so the sans-IO iterator and its tests run on a fake clock.
The message and rrset stores are LRU-bounded in bytes; the server table is bounded in entries.
"""
from __future__ import annotations

import random
from collections import OrderedDict

from resolver import _rrstore
from resolver._infra import InfraCache, ServerInfo  # noqa: F401 (part of this module's API)
from resolver._rrstore import ByteLRU, RRsetEntry  # compiled: the miss path's stores
from resolver._iterstep import group as group_records
from resolver.limits import DEFAULT, Limits
from resolver.wire import MsgEntry

# RFC 2181 5.4.1 trust ranks, low to high. Data replaces cached data only at the same or a
# higher rank (or when the cached data has expired), so glue never overrides an answer.
HINT = 0
ADDITIONAL = 1          # additional section of an answer (not glue)
GLUE = 2                # additional section of a referral
REFERRAL = 3            # NS set in a referral's authority section (the parent's copy)
NONAUTH_ANSWER = 4      # answer section without AA
AUTH_AUTHORITY = 5      # authority section of an authoritative answer
AUTH_ANSWER = 6         # answer section with AA
VALIDATED = 7           # DNSSEC-secure (issue 7's validator sets it)


NXDOMAIN_TYPE = -1      # key type for "this name does not exist"


class RRsetCache:
    """rrsets for the iterator, keyed by (lower-cased name, type, class), trust-ranked."""

    def __init__(self, max_bytes: int, limits: Limits = DEFAULT) -> None:
        self.lru = ByteLRU(max_bytes)
        self.limits = limits

    def clamp(self, ttl: int, negative: bool = False) -> int:
        lim = self.limits
        ttl = min(max(ttl, lim.min_ttl), lim.max_ttl)
        return min(ttl, lim.max_negative_ttl) if negative else ttl

    def get(self, name: bytes, rdtype: int, rdclass: int, now: float,
            stale_ok: bool = False) -> RRsetEntry | None:
        key = (name.lower(), rdtype, rdclass)
        data = self.lru.data              # ByteLRU.get inlined: the iterator's busiest call
        e = data.get(key)
        if e is None:
            return None
        data.move_to_end(key)
        if e.expires < now:
            if stale_ok and e.expires + self.limits.stale_window >= now:
                return e
            return None
        return e

    def store(self, entry: RRsetEntry) -> bool:
        """Stores unless a fresh entry of a higher rank is there. True if stored."""
        return _rrstore.store_entry(self, entry)

    def store_records(self, records: list[tuple], rank: int, now: float,
                      rrsigs: list[tuple] = ()) -> None:
        """Groups record tuples into rrsets (one TTL each, the smallest: RFC 2181 5.2) and stores
        them, with the RRSIGs covering them (in C: ``resolver._rrstore``)."""
        _rrstore.store_records(self, records if type(records) is list else list(records),
                               rank, now, rrsigs)

    def store_negative(self, name: bytes, rdtype: int, rdclass: int, nxdomain: bool,
                       soa: list[tuple], rank: int, now: float) -> list[tuple]:
        """RFC 2308: the negative TTL is min(SOA TTL, SOA MINIMUM), capped. Returns the
        records with that TTL (as a client should see them)."""
        ttl = self.limits.failure_ttl
        for rec in soa:
            if rec[1] == 6 and len(rec[4]) >= 20:
                minimum = int.from_bytes(rec[4][-4:], "big")
                ttl = min(rec[3], minimum)
                break
        ttl = self.clamp(ttl, negative=True)
        soa = [(o, t, c, min(ttl, rt), rd) for (o, t, c, rt, rd) in soa]
        key_type = NXDOMAIN_TYPE if nxdomain else rdtype
        self.store(RRsetEntry(name, key_type, rdclass, ttl, now + ttl, rank, [], [],
                              3 if nxdomain else 0, soa))
        return soa

    def get_negative(self, name: bytes, rdtype: int, rdclass: int, now: float) -> RRsetEntry | None:
        e = self.get(name, NXDOMAIN_TYPE, rdclass, now)
        if e is None:
            e = self.get(name, rdtype, rdclass, now)
            if e is not None and e.negative is None:
                return None
        return e


class MessageCache:
    """Whole responses in wire form, keyed by wire.parse_query's key."""

    def __init__(self, max_bytes: int, limits: Limits = DEFAULT) -> None:
        self.lru = ByteLRU(max_bytes)
        self.limits = limits

    @property
    def table(self) -> dict:
        return self.lru.data

    def store(self, key: bytes, response: bytes, now: float,
              ttl_cap: int | None = None) -> MsgEntry:
        return _rrstore.store_message(self, key, response, now, ttl_cap)


class Cache:
    """All the stores, sharing one byte budget (messages 1/2, rrsets 1/2)."""

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, limits: Limits = DEFAULT,
                 rng: random.Random | None = None) -> None:
        self.limits = limits
        self.messages = MessageCache(max_bytes // 2, limits)
        self.rrsets = RRsetCache(max_bytes - max_bytes // 2, limits)
        self.infra = InfraCache(limits, rng=rng)
        self.failures: OrderedDict = OrderedDict()     # key -> (until, reason)

    @property
    def bytes(self) -> int:
        return self.messages.lru.bytes + self.rrsets.lru.bytes

    @property
    def evictions(self) -> int:
        return self.messages.lru.evictions + self.rrsets.lru.evictions

    def remember_failure(self, key, reason: str, now: float) -> None:
        self.failures[key] = (now + self.limits.failure_ttl, reason)
        self.failures.move_to_end(key)
        while len(self.failures) > 10000:
            self.failures.popitem(last=False)

    def failure(self, key, now: float) -> str | None:
        return _rrstore.failure(self, key, now)

    def flush(self, name: bytes | None = None) -> None:
        """Forget everything, or everything about ``name`` (all types) and answers for it."""
        if name is None:
            self.messages.lru.clear()
            self.rrsets.lru.clear()
            self.failures.clear()
            return
        lname = name.lower()
        for k in [k for k in self.rrsets.lru.data if k[0] == lname]:
            self.rrsets.lru.pop(k)
        for k in [k for k in self.messages.lru.data if k[:-5] == lname]:
            self.messages.lru.pop(k)
        for k in [k for k in self.failures if k[0] == lname]:
            del self.failures[k]
