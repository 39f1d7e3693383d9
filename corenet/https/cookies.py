"""A client's cookies: `http.cookiejar.CookieJar` underneath (its rules for domains, paths,
Secure, expiry and the rest), with the dict-like face httpx users know."""
from __future__ import annotations

import http.cookiejar
import urllib.request
from collections.abc import MutableMapping
from typing import Any, Iterator, Mapping

from .errors import CookieConflict


# A server can set cookies without end (a few hundred per response, response after
# response) and the standard jar keeps them all: these caps bound it. RFC 6265 6.1 asks a
# user agent to hold at least 50 per domain and 3000 in all; browsers keep about 180 per
# domain. Past a cap, the domain's (or the jar's) oldest cookies go first.
MAX_PER_DOMAIN = 180
MAX_TOTAL = 3000


class Cookies(MutableMapping):
    """httpx's Cookies: a mutable mapping of name to value over a CookieJar (`jar`).
    `.set(name, value, domain="", path="/")`, `.get(name, default, domain=, path=)`
    (CookieConflict when several cookies match), `.delete(name, domain=, path=)`,
    `.clear(domain=, path=)`, `.update(cookies)` (keeping each cookie's domain and path),
    `.extract_cookies(response)`, `.set_cookie_header(request)`."""

    def __init__(self, cookies: "Cookies | Mapping[str, str] | http.cookiejar.CookieJar | None"
                 = None) -> None:
        if isinstance(cookies, http.cookiejar.CookieJar):
            self.jar = cookies
            return
        self.jar = http.cookiejar.CookieJar()
        if isinstance(cookies, Cookies):
            for c in cookies.jar:
                self.jar.set_cookie(c)
        elif isinstance(cookies, list):
            for name, value in cookies:  # httpx takes a list of (name, value) pairs too
                self.set(name, value)
        elif cookies:
            for name, value in cookies.items():
                self.set(name, value)

    def set(self, name: str, value: str, domain: str = "", path: str = "/") -> None:
        self.jar.set_cookie(http.cookiejar.Cookie(
            version=0, name=name, value=value, port=None, port_specified=False,
            domain=domain, domain_specified=bool(domain),
            domain_initial_dot=domain.startswith("."), path=path, path_specified=True,
            secure=False, expires=None, discard=True, comment=None, comment_url=None,
            rest={}, rfc2109=False))

    def get(self, name: str, default: str | None = None,  # type: ignore[override]
            domain: str | None = None, path: str | None = None) -> str | None:
        found = [c.value for c in self.jar if c.name == name
                 and (domain is None or c.domain == domain) and (path is None or c.path == path)]
        if len(found) > 1:
            raise CookieConflict(f"Multiple cookies exist with name={name}")
        return found[0] if found else default

    def delete(self, name: str, domain: str | None = None, path: str | None = None) -> None:
        for c in [c for c in self.jar if c.name == name and (domain is None or c.domain == domain)
                  and (path is None or c.path == path)]:
            self.jar.clear(c.domain, c.path, c.name)

    def clear(self, domain: str | None = None, path: str | None = None) -> None:
        """Every cookie, or those of `domain` (and `path` within it)."""
        if path is not None and domain is None:
            raise ValueError("clear(path=...) needs the domain too")
        if domain is None:
            self.jar.clear()
        else:
            try:
                self.jar.clear(domain, path)
            except KeyError:
                pass  # nothing stored there

    def update(self, cookies: Any = None, **kw: str) -> None:  # type: ignore[override]
        """Add `cookies` (a mapping, a CookieJar or Cookies, each cookie keeping its
        domain and path)."""
        for c in Cookies(cookies).jar:
            self.jar.set_cookie(c)
        for name, value in kw.items():
            self.set(name, value)

    def extract_cookies(self, response: Any) -> None:
        """Store what `response` sets (its Set-Cookie headers), under its URL's rules."""
        set_cookie = response.headers.get_list("set-cookie")
        if set_cookie:
            self.extract(str(response.url), set_cookie)

    def set_cookie_header(self, request: Any) -> None:
        """Give `request` the Cookie header the jar's rules allow for its URL."""
        cookie = self.header_for(str(request.url))
        if cookie:
            request.headers["Cookie"] = cookie

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __setitem__(self, name: str, value: str) -> None:
        self.set(name, value)

    def __delitem__(self, name: str) -> None:
        if name not in self:
            raise KeyError(name)  # a mapping's contract (httpx passes silently)
        self.delete(name)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Cookies):
            return sorted((c.domain, c.path, c.name, c.value) for c in self.jar) == sorted(
                (c.domain, c.path, c.name, c.value) for c in other.jar)
        return super().__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __contains__(self, name: object) -> bool:
        return any(c.name == name for c in self.jar)

    def __iter__(self) -> Iterator[str]:
        return iter({c.name: None for c in self.jar})

    def __len__(self) -> int:
        return len(self.jar)

    def __bool__(self) -> bool:
        return self.has_any()

    def __repr__(self) -> str:
        return ("<Cookies["
                + ", ".join(f"<Cookie {c.name}={c.value} for {c.domain} />" for c in self.jar)
                + "]>")

    # ---- used by the client ----
    def has_any(self) -> bool:
        """Whether the jar holds a cookie. Every request asks, and CookieJar's own len()
        walks every cookie under a lock: this stops at the first of its domain -> path ->
        name dicts that holds one (a deleted cookie leaves its emptied dicts behind)."""
        cookies = getattr(self.jar, "_cookies", None)
        if cookies is None:
            return len(self.jar) > 0
        return bool(cookies) and any(names for paths in cookies.values()
                                     for names in paths.values())

    def header_for(self, url: str) -> str | None:
        """The Cookie header the jar's rules allow for a request to `url`."""
        req = urllib.request.Request(url)
        self.jar.add_cookie_header(req)
        return req.get_header("Cookie")

    def extract(self, url: str, set_cookie: list[str]) -> None:
        """Store what a response from `url` set (its Set-Cookie header lines)."""
        self.jar.extract_cookies(_Headers(set_cookie),  # type: ignore[arg-type]
                                 urllib.request.Request(url))
        self._bound()

    def _bound(self) -> None:
        by_domain: dict[str, list[Any]] = {}
        every = list(self.jar)  # oldest first within a domain and path
        for c in every:
            by_domain.setdefault(c.domain, []).append(c)
        gone = [c for cs in by_domain.values() for c in cs[:max(0, len(cs) - MAX_PER_DOMAIN)]]
        left = len(every) - len(gone)
        if left > MAX_TOTAL:
            ids = {id(c) for c in gone}
            gone += [c for c in every if id(c) not in ids][:left - MAX_TOTAL]
        for c in gone:
            try:
                self.jar.clear(c.domain, c.path, c.name)
            except KeyError:
                pass


class _Headers:
    """The `response.info().get_all()` that CookieJar.extract_cookies asks for."""

    def __init__(self, set_cookie: list[str]) -> None:
        self._set_cookie = set_cookie

    def info(self) -> "_Headers":
        return self

    def get_all(self, name: str, default: Any = None) -> Any:
        if name.lower() == "set-cookie" and self._set_cookie:
            return self._set_cookie
        return default
