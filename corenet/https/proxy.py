"""Proxies: `proxy="http://user:pw@host:port"` (or https://, TLS to the proxy itself; or
socks5:// and socks5h://, a SOCKS5 tunnel for every origin: `socks`), and
the HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY variables when `trust_env` is on.
https:// URLs go through a CONNECT tunnel (the TLS session is end to end, the proxy sees
only host and port); http:// URLs are forwarded by the proxy (absolute-form requests).
`mounts=` chooses a proxy, or none, per URL pattern."""
from __future__ import annotations

import ipaddress
import urllib.request
import warnings
from typing import Any

from .errors import InvalidURL
from .headers import Headers
from .urls import URL, basic_auth, default_port, encode_host, split_url, userinfo


class Proxy:
    """A proxy as httpx's `Proxy(url, auth=(user, password), headers={...})`: credentials
    in the URL (which win, as in httpx) or in `auth`, and `headers` sent to the proxy with
    each CONNECT and each request it forwards. As in httpx, `url` is the proxy's URL
    without the credentials, `auth` the (user, password) pair or None, `headers` the
    Headers given."""

    __slots__ = ("url", "scheme", "host", "port", "auth", "headers", "lines", "socks")

    def __init__(self, url: URL | str, *, auth: tuple[str, str] | None = None,
                 headers: Any = None) -> None:
        text = str(url)
        if "://" not in text:
            text = "http://" + text  # the variables are often written host:port
        parts, port = split_url(text, "proxy URL")
        scheme = parts.scheme.lower()
        if scheme not in PROXY_SCHEMES:
            raise InvalidURL(f"unsupported proxy scheme {parts.scheme!r} in {text!r} "
                             "(http, https, socks5 and socks5h proxies only)")
        if not parts.hostname:
            raise InvalidURL(f"no host in proxy URL {text!r}")
        self.scheme = scheme
        # SOCKS5 (socks5h:// as well: the proxy resolves the origin's name either way, as
        # with httpx): a tunnel for http:// and https:// origins alike; the headers are
        # HTTP proxies' only.
        self.socks = scheme.startswith("socks")
        self.host = encode_host(parts.hostname)
        self.port = port or default_port(scheme) or SOCKS_PORT
        self.url = URL(f"{scheme}://{parts.hostname}:{self.port}")
        auth = userinfo(parts) or auth
        self.auth = None if auth is None else (auth[0], auth[1])
        self.headers = Headers(headers)
        # The header lines for the proxy, as they go on the wire (in Latin-1, a line break
        # or NUL refused: a header must not smuggle another).
        lines: list[tuple[str, str]] = []
        if not self.socks:          # a SOCKS proxy is sent no HTTP header
            if auth is not None:
                lines.append(("Proxy-Authorization", basic_auth(*auth)))
            lines += self.headers.frozen()
        for name, value in lines:
            if (not name or any(c in name for c in ":\r\n\0 \t")
                    or any(c in value for c in "\r\n\0")
                    or not (name + value).isascii() and not _latin1(name + value)):
                raise ValueError(f"invalid proxy header {name!r}: {value!r}")
        self.lines = "".join(f"{name}: {value}\r\n" for name, value in lines)

    def __repr__(self) -> str:
        shown = [repr(str(self.url))]
        if self.auth is not None:
            shown.append(f"auth={(self.auth[0], '********')!r}")   # the password masked
        if self.headers:
            shown.append(f"headers={dict(self.headers)!r}")
        return f"Proxy({', '.join(shown)})"


PROXY_SCHEMES = ("http", "https", "socks5", "socks5h")
#: A SOCKS proxy's port when its URL names none (RFC 1928)
SOCKS_PORT = 1080


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
        return True
    except UnicodeEncodeError:
        return False


def get_environment_proxies() -> dict[str, str | None]:
    """The proxy variables of the environment as httpx reads them: mount patterns, each to
    a proxy URL or None (direct). HTTP_PROXY, HTTPS_PROXY and ALL_PROXY are "http://",
    "https://" and "all://" (a value without a scheme is an http:// proxy; one naming a
    kind of proxy this client has not, socks4://, is left out with a warning: the requests
    it would carry go direct rather than each failing). Each NO_PROXY entry goes direct:
    one with a scheme is a pattern as written, an address "all://ADDR" (a network,
    192.168.0.0/16, its addresses), "localhost" itself, a name "all://*NAME" (the name and
    its subdomains; ".NAME" and "*.NAME": its subdomains only); "*" among them: no proxy
    at all."""
    env = urllib.request.getproxies_environment()
    mounts: dict[str, str | None] = {}
    for key in ("http", "https", "all"):
        url = env.get(key)
        if not url:
            continue
        if "://" not in url:
            url = "http://" + url  # the variables are often written host:port
        scheme = url.partition("://")[0].lower()
        if scheme not in PROXY_SCHEMES:
            warnings.warn(f"{key}_proxy names a {scheme} proxy, which corenet.https does "
                          "not support; it is ignored", RuntimeWarning, stacklevel=3)
            continue
        mounts[f"{key}://"] = url
    for entry in (e.strip() for e in env.get("no", "").split(",")):
        if entry == "*":
            return {}
        if not entry:
            continue
        address = entry[1:-1] if entry[:1] == "[" and entry[-1:] == "]" else entry
        if "://" in entry:
            mounts[entry] = None
        elif _network(address) is not None:
            mounts[f"all://[{address}]" if ":" in address else f"all://{address}"] = None
        elif entry.lower() == "localhost" or entry[:1] == "*":
            mounts[f"all://{entry}"] = None
        else:
            mounts[f"all://*{entry}"] = None
    return mounts


def environment_mounts() -> "list[Mount]":
    """``get_environment_proxies`` as mounts. A NO_PROXY entry that makes no pattern
    ("exa mple.com") is left out with a warning, rather than every client failing; a proxy
    URL that is none raises InvalidURL, as httpx's does: its requests are not sent direct."""
    out = []
    for pattern, proxy in get_environment_proxies().items():
        try:
            out.append(Mount(pattern, proxy))
        except InvalidURL as exc:
            if proxy is not None:
                raise
            warnings.warn(f"NO_PROXY: the pattern {pattern!r} is ignored: {exc}",
                          RuntimeWarning, stacklevel=3)
    return out


def _network(text: str) -> "ipaddress.IPv4Network | ipaddress.IPv6Network | None":
    """``text`` as an address or a network ("10.0.0.0/8", "::1"), None when it is neither."""
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


class URLPattern:
    """A URL pattern of ``mounts=`` and of the proxy variables, as httpx's: "all://" (or
    "": every URL), "https://" (or "https://*"), "all://example.org", "https://*.example.org"
    (its subdomains only), "all://*example.org" (the name and its subdomains), an address
    ("all://[::1]", or a network: "all://10.0.0.0/8"), each with an optional ":port".
    ``matches(url)``; sorted, the more specific first: a port, then a longer host, then a
    named scheme."""
    __slots__ = ("pattern", "scheme", "host", "suffix", "network", "port", "priority")

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        scheme, sep, rest = pattern.partition("://") if pattern else ("all", "://", "")
        if not sep or not scheme:
            raise InvalidURL(f"mount pattern {pattern!r} must look like 'https://' or "
                             "'all://host[:port]'")
        self.scheme = scheme.lower()
        rest = rest.rstrip("/")
        if rest.startswith("["):
            host, bracket, port = rest[1:].partition("]")
            colon = port[:1]
            if not bracket or port and colon != ":":
                raise InvalidURL(f"bad IPv6 address in mount pattern {pattern!r}")
            port = port[1:]
        else:
            host, colon, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
        host = host.lower()
        try:
            self.port = int(port) if colon else None
        except ValueError:
            raise InvalidURL(f"bad port in mount pattern {pattern!r}") from None
        # "*.x": strict subdomains (kept as ".x"); "*x": x and its subdomains; "*" (as
        # none): every host; an address or network: the addresses in it; else exact.
        if host == "*":
            host = ""
        self.suffix = host.startswith("*")
        self.network = _network(host) if "/" in host else None
        if self.network is not None:
            self.host = str(self.network)
        elif host.startswith("*."):
            self.host = "." + encode_host(host[2:])
        elif host:
            self.host = encode_host(host.lstrip("*"))
        else:
            self.host = ""
        self.priority = (self.port is None, -len(self.host), self.scheme == "all")

    def matches(self, url: URL | str) -> bool:
        """Whether ``url`` (a URL or its text) is one of this pattern's."""
        u = URL(url)
        return self.matches_origin(u.scheme, u.raw_host.decode("ascii"),
                                   u.port or default_port(u.scheme) or -1)

    def matches_origin(self, scheme: str, host: str, port: int) -> bool:
        """Whether the origin ``scheme``://``host``:``port`` (host as sent, in IDNA; the
        port given even when the scheme's default) is one of this pattern's."""
        if self.scheme not in ("all", scheme) or self.port not in (None, port):
            return False
        if not self.host:
            return True
        if self.network is not None:
            address = _network(host)
            return address is not None and address.num_addresses == 1 and \
                address.network_address in self.network
        if self.suffix:
            if self.host.startswith("."):
                return host.endswith(self.host)
            return host == self.host or host.endswith("." + self.host)
        return host == self.host

    def __lt__(self, other: "URLPattern") -> bool:
        return self.priority < other.priority

    def __eq__(self, other: object) -> bool:
        return isinstance(other, URLPattern) and self.pattern == other.pattern

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __repr__(self) -> str:
        return f"URLPattern({self.pattern!r})"


class Mount:
    """One ``mounts=`` entry: its URLPattern and what it selects, a transport (anything
    with `handle_async_request`, or a sync `handle_request`), or a proxy for the client's
    network transport (None: straight to the server)."""
    __slots__ = ("pattern", "proxy", "transport")

    def __init__(self, pattern: str, proxy: Any) -> None:
        self.pattern = URLPattern(pattern)
        if hasattr(proxy, "handle_async_request") or hasattr(proxy, "handle_request"):
            self.transport, self.proxy = proxy, None
        else:
            self.transport = None
            self.proxy = proxy if proxy is None or isinstance(proxy, Proxy) else Proxy(proxy)

    def matches(self, scheme: str, host: str, port: int) -> bool:
        return self.pattern.matches_origin(scheme, host, port)


def parse_mounts(mounts: dict | None) -> list[Mount]:
    """The ``mounts=`` entries, the more specific first."""
    return sorted((Mount(k, v) for k, v in (mounts or {}).items()),
                  key=lambda m: m.pattern.priority)
