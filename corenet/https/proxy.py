"""Proxies: `proxy="http://user:pw@host:port"` (or https://, TLS to the proxy itself; or
socks5:// and socks5h://, a SOCKS5 tunnel for every origin: `socks`), and
the HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY variables when `trust_env` is on.
https:// URLs go through a CONNECT tunnel (the TLS session is end to end, the proxy sees
only host and port); http:// URLs are forwarded by the proxy (absolute-form requests).
`mounts=` chooses a proxy, or none, per URL pattern."""
from __future__ import annotations

import urllib.request
import warnings
from typing import Any

from .errors import InvalidURL
from .headers import Headers
from .urls import URL, basic_auth, encode_host, split_url, userinfo


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
        self.port = port or _DEFAULT_PORTS[scheme]
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
_DEFAULT_PORTS = {"http": 80, "https": 443, "socks5": 1080, "socks5h": 1080}


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
        return True
    except UnicodeEncodeError:
        return False


_USED = ("http", "https", "all")  # the variables a request may take its proxy from


def env_proxies() -> dict[str, str]:
    """The proxy variables of the environment, by scheme ("http", "https", "all", "no").
    One naming a proxy of another kind (socks4://...) is left out with a warning: the
    requests it would carry go direct rather than each failing."""
    env = urllib.request.getproxies_environment()
    for key in _USED:
        url = env.get(key)
        if url is None:
            continue
        scheme = url.partition("://")[0].lower() if "://" in url else "http"
        if scheme not in PROXY_SCHEMES:
            del env[key]
            warnings.warn(f"{key}_proxy names a {scheme} proxy, which corenet.https does "
                          "not support; it is ignored", RuntimeWarning, stacklevel=3)
    return env


def proxy_from_env(env: dict[str, str], scheme: str, host_port: str) -> Proxy | None:
    url = env.get(scheme) or env.get("all")
    if not url or _bypassed(env, scheme, host_port):
        return None
    return Proxy(url)


def _bypassed(env: dict[str, str], scheme: str, host_port: str) -> bool:
    """NO_PROXY's rule: urllib's for names and addresses, and as httpx, an entry with a
    scheme (``http://127.0.0.1``) read as a mount pattern that goes direct."""
    entries = [e.strip() for e in env.get("no", "").split(",")]
    with_scheme = [e for e in entries if "://" in e]
    if with_scheme:
        host, _, port_text = host_port.rpartition(":")
        host = host.strip("[]").lower()
        port = int(port_text) if port_text.isdigit() else -1
        for entry in with_scheme:
            try:
                if Mount(entry, None).matches(scheme, host, port):
                    return True
            except InvalidURL:
                continue
        env = dict(env, no=",".join(e for e in entries if "://" not in e))
    # proxy_bypass_environment: urllib's NO_PROXY rule, public but not in typeshed
    return bool(urllib.request.proxy_bypass_environment(  # type: ignore[attr-defined]
        host_port, env))


class Mount:
    """One `mounts=` key: "all://", "https://" (or "all://*", "https://*"),
    "all://example.org", "https://*.example.org" (subdomains only), "all://*example.org"
    (the domain and its subdomains), with an
    optional ":port"; and what it selects: a transport (anything with
    `handle_async_request`, or a sync `handle_request`), or a proxy for the client's network transport (None:
    straight to the server)."""
    __slots__ = ("scheme", "host", "suffix", "port", "proxy", "transport")

    def __init__(self, pattern: str, proxy: Any) -> None:
        scheme, sep, rest = pattern.partition("://")
        if not sep or not scheme:
            raise InvalidURL(f"mount pattern {pattern!r} must look like 'https://' or "
                             "'all://host[:port]'")
        self.scheme = scheme.lower()
        rest = rest.rstrip("/")
        host, colon, port = rest.rpartition(":") if ":" in rest else (rest, "", "")
        host = host.lower()
        try:
            self.port = int(port) if colon else None
        except ValueError:
            raise InvalidURL(f"bad port in mount pattern {pattern!r}") from None
        # "*.x": strict subdomains (kept as ".x"); "*x": x and its subdomains; "*" (as
        # none): every host; else exact.
        if host == "*":
            host = ""
        self.suffix = host.startswith("*")
        if host.startswith("*."):
            self.host = "." + encode_host(host[2:])
        elif host:
            self.host = encode_host(host.lstrip("*"))
        else:
            self.host = ""
        if hasattr(proxy, "handle_async_request") or hasattr(proxy, "handle_request"):
            self.transport, self.proxy = proxy, None
        else:
            self.transport = None
            self.proxy = proxy if proxy is None or isinstance(proxy, Proxy) else Proxy(proxy)

    def priority(self) -> tuple[bool, int, bool]:
        """More specific first: a port, then a longer host, then a named scheme."""
        return (self.port is not None, len(self.host), self.scheme != "all")

    def matches(self, scheme: str, host: str, port: int) -> bool:
        if self.scheme not in ("all", scheme) or self.port not in (None, port):
            return False
        if not self.host:
            return True
        if self.suffix:
            if self.host.startswith("."):
                return host.endswith(self.host)
            return host == self.host or host.endswith("." + self.host)
        return host == self.host


def parse_mounts(mounts: dict | None) -> list[Mount]:
    out = [Mount(k, v) for k, v in (mounts or {}).items()]
    out.sort(key=Mount.priority, reverse=True)
    return out
