"""The second-level cache: whole answers in Redis, shared by the workers of a host and by
hosts behind one load balancer.

A client query the local message cache cannot answer asks Redis before it is resolved
(``Lookup``): a fresh entry there fills the local cache and answers; none (or Redis slow,
down or busy) resolves as usual, and the answer is written to Redis once it has been handed
to the client, never on its way. The conventions are those of Unbound's ``cachedb``:

- the key is a SHA-256 of the secret seed and the message cache's key (the lower-cased
  name, type, class and the EDNS/DO/CD variant), so resolvers share answers only with the
  same seed and nobody can find an entry from a name alone;
- the value is a small header (format, DNSSEC status, UNIX time stored, TTL, how long it
  may be served at all) and the wire answer; TTLs are aged on read from the time stored,
  and a secure answer is never served, stale or not, past the signatures it relied on;
- only NOERROR and NXDOMAIN answers with a TTL are written; SERVFAIL, answers that failed
  validation and CD answers (which may hold data that failed it) are not;
- nothing read is trusted beyond its stored status: an entry not stored as secure loses
  its AD bit, and one that does not parse or answers another question is dropped (counted).

``corenet-resolver flush NAME`` deletes the name's entries here too (``SharedCache.forget``):
those of every type this process holds for it and of the common types (``FORGET_TYPES``),
in each variant that is ever written. Keys are digests, so Redis cannot be searched by name;
an entry of a rarer type that only another process holds stays until it expires. A flush of
everything leaves Redis alone: it is every host's cache.

Failures cost one look-up's budget (``redis-timeout``) and are counted; after one, Redis is
skipped for a back-off that doubles while it keeps failing (``Limits.shared_cache_backoff``),
then tried again by the next query, on a fresh connection.
"""
from __future__ import annotations

import asyncio
import hashlib
import logging
import struct
import time
from typing import Any, Callable

from resolver.cache.redis_link import RedisLink
from resolver.limits import DEFAULT as DEFAULT_LIMITS, Limits
from resolver.resolution import Drive
from resolver.response import entry_answer, miss_key, stale_answer
from resolver.wire.codec import MsgEntry, WireError, cache_key

log = logging.getLogger("resolver.cache.shared")

#: The value's header: format version, DNSSEC status, UNIX time stored, TTL when stored,
#: and how long after it was stored a secure answer may be served at all, stale included
#: (no longer than its signatures, RFC 4035 5.3.3, nor than its writer would serve it;
#: 2**32-1 for other answers).
HEADER = struct.Struct("!BBdII")
VERSION = 2
INSECURE, SECURE = 0, 1

#: The types whose entries ``forget`` deletes for a name whether or not this process holds
#: them: A, NS, CNAME, SOA, PTR, MX, TXT, AAAA, SRV, NAPTR, DNAME, DS, DNSKEY, SVCB, HTTPS, CAA.
FORGET_TYPES = (1, 2, 5, 6, 12, 15, 16, 28, 33, 35, 39, 43, 48, 64, 65, 257)
#: The variants (EDNS 1, DO 2) written; CD answers (4) never are.
WRITTEN_VARIANTS = range(4)

#: What ``SharedCache.counters`` counts (the daemon's stats and metrics show them).
COUNTERS = ("lookups", "hits", "misses", "stale", "timeouts", "errors", "skipped", "busy",
            "bad", "writes", "write_errors", "writes_dropped", "recoveries")


class BadEntry(ValueError):
    """A value read from the shared cache that cannot be used."""


def shared_key(seed: bytes, msg_key: bytes) -> bytes:
    """The Redis key of a message cache key."""
    return hashlib.sha256(len(seed).to_bytes(2, "big") + seed + msg_key).digest()


def pack(e: MsgEntry, wall_now: float, now: float) -> bytes:
    """The value for a local entry: its status (AD in the wire means validated), the UNIX
    time it was stored and its TTL, then the wire answer."""
    status = SECURE if e.wire[3] & 0x20 else INSECURE
    usable = (int(min(max(e.stale_until - e.stored_at, 0.0), 0xFFFFFFFF)) if status == SECURE
              else 0xFFFFFFFF)
    return HEADER.pack(VERSION, status, wall_now - (now - e.stored_at), e.ttl, usable) + e.wire


def unpack(value: bytes, msg_key: bytes, wall_now: float, now: float, stale_window: float,
           max_ttl: int, max_value: int = DEFAULT_LIMITS.shared_cache_max_value) -> MsgEntry:
    """The local entry for a value read under ``msg_key``, aged by the time since it was
    stored (its ``expires`` may be past). Raises BadEntry for anything that is not an
    answer to that question in this format."""
    if not HEADER.size + 12 <= len(value) <= max_value:
        raise BadEntry("size")
    version, status, stored, ttl, usable = HEADER.unpack_from(value)
    if version != VERSION or status not in (INSECURE, SECURE):
        raise BadEntry("format")
    wire = value[HEADER.size:]
    if not wire[2] & 0x80 or (wire[3] & 0x0F) not in (0, 3) or wire[4:6] != b"\x00\x01":
        raise BadEntry("not an answer")
    if status != SECURE and wire[3] & 0x20:
        wire = wire[:3] + bytes((wire[3] & 0xDF,)) + wire[4:]     # never secure unless it was
    try:
        e = MsgEntry(wire, now, stale_window, max_ttl)
    except (WireError, ValueError) as exc:
        raise BadEntry(f"wire: {exc}") from None
    q = wire[12:e.qend]
    if q[:-4].lower() != msg_key[:-5] or q[-4:] != msg_key[-5:-1]:
        raise BadEntry("another question")
    age = min(max(0.0, wall_now - stored), 1e9)
    e.ttl = min(e.ttl, ttl)
    e.stored_at = now - age
    e.expires = e.stored_at + e.ttl
    e.stale_until = min(e.expires + stale_window, e.stored_at + usable)
    e.expires = min(e.expires, e.stale_until)
    return e


class SharedCache:
    """One process's link to the shared cache: ``start`` is what ``resolution.start`` calls
    for a local miss; ``counters`` what it has seen."""

    def __init__(self, link: RedisLink, seed: str, timeout: float, store_expired: bool = False,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.link = link
        self.seed = seed.encode()
        self.timeout = timeout
        self.store_expired = store_expired
        self.where = link.where
        self.limits = limits
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.backoff = 0.0              # seconds of the current back-off, 0 when healthy
        self.down_until = 0.0           # time.monotonic() until which Redis is skipped
        self.writes: dict[bytes, asyncio.Future] = {}

    @classmethod
    def from_config(cls, cfg) -> "SharedCache":
        """A client for ``cfg``'s Redis (no connection is made before the first query)."""
        timeout = cfg.redis_timeout / 1000.0
        link = RedisLink(path=cfg.redis_server_path or None, host=cfg.redis_server_host,
                         port=cfg.redis_server_port, connect_timeout=max(timeout, 0.001),
                         password=cfg.redis_server_password, db=cfg.redis_logical_db)
        return cls(link, cfg.cachedb_secret_seed, timeout, cfg.cachedb_store_expired,
                   cfg.limits)

    # ---- health ---------------------------------------------------------------------------
    def usable(self) -> bool:
        """Whether to ask Redis now (not within a back-off)."""
        return time.monotonic() >= self.down_until

    def _failed(self, what: str, exc: BaseException | None = None) -> None:
        self.counters[what] += 1
        now = time.monotonic()
        if now < self.down_until:
            return                      # failures of queries already in flight: one back-off
        first, longest = self.limits.shared_cache_backoff, self.limits.shared_cache_max_backoff
        self.backoff = min(max(self.backoff * 2, first), longest)
        self.down_until = now + self.backoff
        log.warning("shared cache (%s) failed (%s): skipped for %.2fs", self.where,
                    "timeout" if exc is None else exc, self.backoff)

    def _ok(self) -> None:
        if self.backoff:
            self.backoff = 0.0
            self.counters["recoveries"] += 1
            log.info("shared cache (%s) answers again", self.where)

    # ---- commands -------------------------------------------------------------------------
    def _send(self, loop, timeout: float, args: tuple,
              then: Callable[[Any], None]) -> asyncio.Future | None:
        """Sends the command ``args``; ``then(reply)`` is called with its reply, or with
        None when it failed (counted: a timeout or an error starts a back-off, and a timeout
        ends the connection, so that the next command is sent on a new one). None, with
        nothing sent, when ``limits.shared_cache_commands`` wait already. Cancel the Future
        returned to stop waiting: ``then`` is not called."""
        if self.link.outstanding >= self.limits.shared_cache_commands:
            return None
        sent = self.link.send(loop, *args)
        timer = loop.call_later(timeout, _time_out, sent)
        sent.add_done_callback(lambda f: self._replied(f, timer, then))
        return sent

    def _replied(self, sent: asyncio.Future, timer, then: Callable[[Any], None]) -> None:
        timer.cancel()
        if sent.cancelled():
            return
        exc = sent.exception()
        if exc is None:
            self._ok()
            then(sent.result())
            return
        if isinstance(exc, TimeoutError):
            self._failed("timeouts")
            self.link.abort("a command timed out")
        else:
            self._failed("errors", exc)
        then(None)

    # ---- reading --------------------------------------------------------------------------
    def start(self, r, loop, query: bytes, miss: tuple, done) -> "Lookup":
        return Lookup(self, r, loop, query, miss, done)

    def fill(self, r, msg_key: bytes, value: bytes) -> MsgEntry | None:
        """Puts a value read from Redis into the local message cache if it is fresh, or
        (with ``store_expired``) expired but within the serve-stale window: then it is
        answered only if resolving fails. The entry if fresh, else None."""
        now = r.clock()
        lv = r.lv
        try:
            e = unpack(value, msg_key, time.time(), now, lv.stale_window, lv.max_ttl,
                       self.limits.shared_cache_max_value)
        except BadEntry as exc:
            self.counters["bad"] += 1
            log.debug("shared cache: unusable entry (%s)", exc)
            return None
        messages = r.cache.messages
        if e.expires >= now:
            messages.lru.put(msg_key, e)
            return e
        if self.store_expired and e.stale_until >= now and messages.table.get(msg_key) is None:
            self.counters["stale"] += 1
            messages.lru.put(msg_key, e)
        return None

    # ---- writing --------------------------------------------------------------------------
    def offer(self, r, loop, msg_key: bytes, since: float) -> None:
        """Writes the local entry under ``msg_key`` to Redis if it was stored at or after
        ``since`` (the answer resolved for this query, not a stale one) and may be shared."""
        e = r.cache.messages.table.get(msg_key)
        if e is None or e.stored_at < since or e.ttl == 0 or e.rcode not in (0, 3):
            return
        if msg_key[-1] & 4 or not self.usable():
            return                      # CD answers are not shared; Redis in a back-off
        key = shared_key(self.seed, msg_key)
        if key in self.writes:
            return
        if len(self.writes) >= self.limits.shared_cache_pending_writes:
            self.counters["writes_dropped"] += 1
            return
        now = r.clock()
        keep = e.expires - now + (r.lv.stale_window if self.store_expired else 0.0)
        if keep <= 0:
            return
        value = pack(e, time.time(), now)
        sent = self._send(loop, max(self.timeout, self.limits.shared_cache_write_timeout),
                          (b"SET", key, value, b"PX", max(1, int(keep * 1000))),
                          lambda reply, k=key: self._written(k, reply))
        if sent is None:
            self.counters["writes_dropped"] += 1
            return
        self.writes[key] = sent

    def _written(self, key: bytes, reply) -> None:
        self.writes.pop(key, None)
        if reply is None:
            self.counters["write_errors"] += 1
        else:
            self.counters["writes"] += 1

    # ---- forgetting ----------------------------------------------------------------------
    async def forget(self, r, name: bytes) -> int | None:
        """Deletes the entries for ``name`` (wire form): those of the message cache keys
        ``r`` holds for it and those of FORGET_TYPES in every written variant, in class IN.
        A write of one of them still pending is no longer waited for; sent before the
        delete, on the same connection, it is done before it. The number deleted, or None
        if Redis could not be reached (counted)."""
        name = name.lower()
        keys = {shared_key(self.seed, k) for k in r.cache.messages.table if k[:-5] == name}
        keys.update(shared_key(self.seed, cache_key(name, t, 1, v))
                    for t in FORGET_TYPES for v in WRITTEN_VARIANTS)
        for k in keys:
            sent = self.writes.pop(k, None)
            if sent is not None:
                sent.cancel()
        loop = asyncio.get_running_loop()
        deleted = loop.create_future()
        sent = self._send(loop, max(self.timeout, self.limits.shared_cache_write_timeout),
                          (b"DEL", *keys), deleted.set_result)
        if sent is None:
            self.counters["busy"] += 1
            return None
        try:
            return await deleted
        except asyncio.CancelledError:
            sent.cancel()
            raise

    async def close(self, grace: float = 0.5) -> None:
        """Lets pending writes finish (at most ``grace`` seconds), then closes the
        connection."""
        pending = list(self.writes.values())
        if pending:
            await asyncio.wait(pending, timeout=grace)
        for sent in list(self.writes.values()):
            sent.cancel()                   # not counted as failures: given up
        self.writes.clear()
        self.link.close()


def _time_out(sent: asyncio.Future) -> None:
    if not sent.done():
        sent.set_exception(TimeoutError())


class Lookup:
    """One client query's miss with a shared cache: Redis first, then a :class:`Drive`.
    Like a Drive, it calls ``done(lookup, response)`` once, ``done(lookup, None)`` if
    cancelled, and has ``finished``, ``cancel``, ``failed_chain`` and ``stale``."""

    __slots__ = ("shared", "r", "loop", "query", "miss", "done", "key", "t0", "sent", "drive",
                 "finished")

    def __init__(self, shared: SharedCache, r, loop, query: bytes, miss: tuple, done) -> None:
        self.shared, self.r, self.loop, self.query, self.miss, self.done = (
            shared, r, loop, query, miss, done)
        self.key = miss_key(miss)
        self.t0 = r.clock()
        self.sent = self.drive = None
        self.finished = False
        if not shared.usable():
            shared.counters["skipped"] += 1
            self._resolve()
            return
        shared.counters["lookups"] += 1
        self.sent = shared._send(loop, shared.timeout,
                                 (b"GET", shared_key(shared.seed, self.key)), self._got)
        if self.sent is None:
            shared.counters["busy"] += 1        # too many commands waiting: no back-off
            self._got(None)

    def _got(self, value: bytes | None) -> None:
        self.sent = None
        if self.finished:
            return
        shared = self.shared
        try:
            e = shared.fill(self.r, self.key, value) if value is not None else None
        except Exception:                   # a bug, not Redis: resolved all the same
            log.exception("shared cache look-up failed")
            shared.counters["errors"] += 1
            e = None
        if e is None:
            shared.counters["misses"] += 1
            self._resolve()
            return
        shared.counters["hits"] += 1
        self.finished = True
        self.done(self, entry_answer(self.query, self.miss, e, self.r.clock()))

    def _resolve(self) -> None:
        self.drive = Drive(self.r, self.loop, self.query, self.miss, self._resolved)

    def _resolved(self, drive, out) -> None:
        if self.finished:
            return
        self.finished = True
        self.drive = drive          # a Drive may end within its making, before _resolve has it
        self.done(self, out)
        if out is not None:           # after the answer has been handed on
            try:
                self.shared.offer(self.r, self.loop, self.key, self.t0)
            except Exception:
                log.exception("shared cache write failed")
                self.shared.counters["write_errors"] += 1

    def stale(self) -> bytes | None:
        """As a Drive's ``stale``, while Redis is asked or the resolution runs: the local
        cache's expired answer in its stale window (or a fresh one stored meanwhile), for
        RFC 8767's client response timer; None once finished."""
        if self.finished:
            return None
        return stale_answer(self.r, self.query, self.miss)

    def failed_chain(self) -> bytes | None:
        """Its Drive's ``failed_chain``: a SERVFAIL with the CNAME/DNAME chain the
        resolution had followed before it failed; None when Redis answered or no Drive
        followed a link."""
        return None if self.drive is None else self.drive.failed_chain()

    def cancel(self) -> None:
        """Stops waiting (the resolution stops if nobody else waits); ``done(None)``."""
        if self.finished:
            return
        self.finished = True
        if self.sent is not None:
            self.sent.cancel()
            self.sent = None
        if self.drive is not None:
            self.drive.cancel()
        self.done(self, None)
