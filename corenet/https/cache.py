"""An HTTP cache (RFC 9111) for one client: private, in memory, off unless asked
(`AsyncClient(cache=True)`).

GET responses that say how long they stay fresh (Cache-Control max-age, Expires, or a
Last-Modified to guess from) or how to check them (ETag, Last-Modified) are kept: a fresh
one is served without a request, a stale one is revalidated with If-None-Match or
If-Modified-Since and a 304 completes the stored response. Vary is honoured; no-store
(request or response) keeps a response out, no-cache makes every use a revalidation;
private responses are kept, this cache being the user's own, though never served to a
request with other credentials (Authorization, or Cookie unless the response is public).
`DiskCache` (diskcache.py) keeps the same entries in a directory. An unsafe request
(POST, PUT, DELETE, PATCH) that succeeds drops what is stored for its URL.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from email.utils import parsedate_to_datetime
from typing import Any

from .headers import Headers
from .models import Request, Response

# Statuses a cache may store without explicit freshness (RFC 9110 15.1, "heuristically
# cacheable"); others are not stored here at all.
_CACHEABLE = frozenset({200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501})
# A 304's fields replace the stored ones, except those that describe the stored body.
_KEEP_ON_304 = frozenset({b"content-length", b"transfer-encoding", b"content-encoding"})
# A guessed lifetime (10 % of the time since Last-Modified) is capped at a day.
_HEURISTIC_MAX = 24 * 3600.0


def directives(value: str | None) -> dict[str, str | None]:
    """Cache-Control as {directive: argument or None}, names lower-cased."""
    out: dict[str, str | None] = {}
    for part in (value or "").split(","):
        name, eq, arg = part.strip().partition("=")
        if name:
            out[name.lower()] = arg.strip().strip('"') if eq else None
    return out


def _seconds(value: str | None) -> float | None:
    try:
        return float(int(value)) if value is not None else None  # type: ignore[arg-type]
    except ValueError:
        return None


def _date(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


class Entry:
    """One stored response: what a cache store (memory, disk) keeps and gives back."""

    __slots__ = ("status", "reason", "version", "headers", "content", "vary",
                 "request_time", "response_time")

    def __init__(self, resp: Response, vary: dict[str, str | None], request_time: float,
                 response_time: float) -> None:
        self.status = resp.status_code
        self.reason = resp.raw_reason
        self.version = resp.http_version.removeprefix("HTTP/")
        self.headers = list(resp.raw_headers or [(k.encode("latin-1"), v.encode("latin-1"))
                                                  for k, v in resp.headers.frozen()])
        self.content = resp.content
        self.vary = vary
        self.request_time = request_time
        self.response_time = response_time

    def header(self, name: bytes) -> str | None:
        for k, v in self.headers:
            if k.lower() == name:
                return v.decode("latin-1")
        return None

    def lifetime(self) -> float:
        cc = directives(self.header(b"cache-control"))
        if "no-cache" in cc:
            return 0.0
        max_age = _seconds(cc.get("max-age"))
        if max_age is not None:
            return max_age
        date = _date(self.header(b"date")) or self.response_time
        expires = self.header(b"expires")
        if expires is not None:
            when = _date(expires)
            return max(0.0, when - date) if when is not None else 0.0  # invalid: stale
        modified = _date(self.header(b"last-modified"))
        if modified is not None and self.status in _CACHEABLE:
            return min(_HEURISTIC_MAX, max(0.0, (date - modified) / 10))
        return 0.0

    def age(self, now: float) -> float:
        """RFC 9111 4.2.3."""
        date = _date(self.header(b"date"))
        apparent = max(0.0, self.response_time - date) if date is not None else 0.0
        corrected = (_seconds(self.header(b"age")) or 0.0) + (
            self.response_time - self.request_time)
        return max(apparent, corrected) + (now - self.response_time)

    def response(self, request: Request, now: float, revalidated: bool) -> Response:
        headers = [(k, v) for k, v in self.headers if k.lower() != b"age"]
        headers.append((b"Age", str(int(self.age(now))).encode()))
        resp = Response(self.status, reason=self.reason, http_version=self.version,
                        raw_headers=headers, request=request, content=self.content)
        resp.extensions = {"from_cache": True, "revalidated": revalidated}
        return resp

    def update(self, not_modified: Response, request_time: float,
               response_time: float) -> None:
        fresh = not_modified.raw_headers or []
        names = {k.lower() for k, _ in fresh} - _KEEP_ON_304
        self.headers = [(k, v) for k, v in self.headers if k.lower() not in names]
        self.headers += [(k, v) for k, v in fresh if k.lower() in names]
        self.request_time = request_time
        self.response_time = response_time


def storable(headers: Headers, resp: Response, request_time: float,
             response_time: float) -> Entry | None:
    """The entry to keep for `resp` (the answer to a request with `headers`), or None
    when it must not or need not be kept."""
    if resp.status_code not in _CACHEABLE:
        return None
    if "no-store" in directives(headers.get("cache-control")):
        return None
    rh = resp.headers
    cc = directives(rh.get("cache-control"))
    if "no-store" in cc:
        return None
    if not ("max-age" in cc or "expires" in rh or "etag" in rh or "last-modified" in rh):
        return None  # neither freshness nor a way to check it: nothing to gain
    vary_names = [v.strip().lower() for v in (rh.get("vary") or "").split(",") if v.strip()]
    if "*" in vary_names:
        return None
    # Stored per credentials too, as if Vary named Authorization: one client may act
    # for several users, and one user's answer must not be served to another. Cookies
    # are credentials as well, unless the response says it is the same for everyone.
    vary_names.append("authorization")
    if "public" not in cc:
        vary_names.append("cookie")
    return Entry(resp, {n: headers.get(n) for n in vary_names}, request_time,
                  response_time)


class Cache:
    """In-memory store, least recently used URL first out when it holds more than
    `max_entries` URLs or `max_bytes` of bodies; a body over `max_entry_bytes` is not
    kept. `hits` (served without a request), `revalidated` (served after a 304) and
    `stored` count what it did."""

    def __init__(self, max_entries: int = 1024, max_bytes: int = 64 * 1024 * 1024,
                 max_entry_bytes: int = 8 * 1024 * 1024) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self._entries: OrderedDict[str, list[Entry]] = OrderedDict()
        self._bytes = 0
        self.hits = self.revalidated = self.stored = 0

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def lookup(self, url: str, headers: Headers) -> Entry | None:
        variants = self._entries.get(url)
        if not variants:
            return None
        self._entries.move_to_end(url)
        for entry in variants:
            if all(headers.get(name) == value for name, value in entry.vary.items()):
                return entry
        return None

    def store(self, url: str, headers: Headers, resp: Response, request_time: float,
              response_time: float) -> None:
        if len(resp.content) > self.max_entry_bytes:
            return
        entry = storable(headers, resp, request_time, response_time)
        if entry is not None and self._keep(url, entry):
            self.stored += 1

    def _keep(self, url: str, entry: Entry) -> bool:
        """Put `entry` in the store, in place of the variant it replaces; False when it
        could not be kept."""
        old = self._entries.pop(url, [])
        self._bytes -= sum(len(e.content) for e in old)
        variants = [e for e in old if e.vary != entry.vary] + [entry]
        self._entries[url] = variants
        self._bytes += sum(len(e.content) for e in variants)
        while self._entries and (len(self._entries) > self.max_entries
                                 or self._bytes > self.max_bytes):
            _, gone = self._entries.popitem(last=False)
            self._bytes -= sum(len(e.content) for e in gone)
        return True

    def invalidate(self, url: str) -> None:
        self._bytes -= sum(len(e.content) for e in self._entries.pop(url, []))

    def updated(self, url: str, entry: Entry) -> None:
        """`entry` was completed by a 304; the memory store holds it already."""


def coerce_cache(cache: Any) -> Cache | None:
    if cache is None or cache is False:
        return None
    if cache is True:
        return Cache()
    if isinstance(cache, Cache):
        return cache
    raise TypeError("cache must be True, False or a Cache (or DiskCache), not "
                    f"{type(cache).__name__}")


def now() -> float:
    return time.time()
