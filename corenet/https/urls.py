"""The URL object of requests and responses (the attributes httpx users reach for)."""
from __future__ import annotations

import base64
import ipaddress
import re
from typing import Any, Iterator, Mapping
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit, urlunsplit

from .errors import InvalidURL

_DEFAULT_PORTS = {"https": 443, "http": 80}
# What a path keeps unescaped (RFC 3986 pchar and "/"; "%" keeps escapes as they are), and
# what URL.copy_with may change.
PATH_SAFE = "/%:@!$&'()*+,;=-._~"
_URL_PARTS = frozenset({"scheme", "username", "password", "host", "port", "netloc", "path",
                        "query", "params", "raw_path", "fragment"})
_HOST_CHARS = re.compile(r"[a-z0-9_.-]+")


def encode_host(host: str) -> str:
    """A URL's host as it goes into DNS, SNI and the Host header: an IP literal as is, a
    name lower-cased and, when not ASCII, encoded by IDNA 2008 with the UTS 46 mapping
    (what browsers and httpx reach: "faß.de" is "xn--fa-hia.de", not "fass.de")."""
    if ":" in host:
        try:
            return str(ipaddress.IPv6Address(host))
        except ValueError:
            raise InvalidURL(f"invalid IPv6 address {host!r}") from None
    if not host.isascii() or "xn--" in host.lower():
        try:
            import idna
        except ImportError:
            raise InvalidURL(f"host {host!r} is international and the idna package is not "
                             "installed to encode it") from None
        try:
            if host.isascii():
                idna.decode(host)  # an A-label must be valid punycode of a valid U-label
            else:
                host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise InvalidURL(f"invalid international host name {host!r}: {exc}") from None
    host = host.lower()
    if not _HOST_CHARS.fullmatch(host):
        raise InvalidURL(f"invalid host name {host!r}")
    return host


def param_pairs(params: Any) -> list[tuple[Any, Any]]:
    """Query parameters given as a mapping, a sequence of pairs or a query string, as
    (name, value) pairs, a list value standing for the name repeated."""
    if not params:
        return []
    if isinstance(params, (str, bytes)):
        from urllib.parse import parse_qsl

        text = params.decode("ascii") if isinstance(params, bytes) else params
        return parse_qsl(text, keep_blank_values=True)
    items = params.items() if hasattr(params, "items") else params
    out = []
    for k, v in items:
        if isinstance(v, (list, tuple)):
            out += [(k, x) for x in v]
        else:
            out.append((k, v))
    return out


def merge_params(base: Any, params: Any) -> list[tuple[Any, Any]]:
    """httpx's rule for a client's and a request's parameters: a name the request gives
    replaces the client's values for it; the others are kept, the client's first."""
    given = param_pairs(params)
    names = {k for k, _ in given}
    return [(k, v) for k, v in param_pairs(base) if k not in names] + given


def _param_text(value: Any) -> str:
    if value is True or value is False:
        return "true" if value else "false"  # as httpx writes them
    return "" if value is None else str(value)


def encode_params(params: Any) -> str:
    return urlencode([(_param_text(k), _param_text(v)) for k, v in param_pairs(params)])


class QueryParams(Mapping[str, str]):
    """httpx's QueryParams: the query of a URL as an immutable multi-valued mapping, its
    values grouped by name in the order names first appear (as httpx keeps them).
    `qp["a"]` and `get` give a name's first value, `get_list` all of them, `multi_items`
    every pair; `set`, `add`, `remove` and `merge` return a new QueryParams. Takes a query
    string, a mapping (a list value standing for the name repeated), pairs, or keyword
    arguments; values become text as in a request's `params=`."""

    __slots__ = ("_values",)
    _values: dict[str, list[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if len(args) > 1 or (args and kwargs):
            raise TypeError("QueryParams takes one query (a str, mapping or pairs) or "
                            "keyword arguments")
        given = args[0] if args else kwargs
        values: dict[str, list[str]] = {}
        if isinstance(given, QueryParams):
            values = {k: list(v) for k, v in given._values.items()}
        else:
            for k, v in param_pairs(given):
                values.setdefault(_param_text(k), []).append(_param_text(v))
        self._values = values

    def _copy(self, values: dict[str, list[str]]) -> "QueryParams":
        made = QueryParams.__new__(QueryParams)
        made._values = values
        return made

    def __getitem__(self, key: str) -> str:
        return self._values[key][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def get_list(self, key: str) -> list[str]:
        return list(self._values.get(key, ()))

    def multi_items(self) -> list[tuple[str, str]]:
        return [(k, v) for k, vs in self._values.items() for v in vs]

    def set(self, key: str, value: Any = None) -> "QueryParams":
        """A copy in which `key` has this one value."""
        return self._copy({**self._values, _param_text(key): [_param_text(value)]})

    def add(self, key: str, value: Any = None) -> "QueryParams":
        values = {k: list(v) for k, v in self._values.items()}
        values.setdefault(_param_text(key), []).append(_param_text(value))
        return self._copy(values)

    def remove(self, key: str) -> "QueryParams":
        return self._copy({k: v for k, v in self._values.items() if k != key})

    def merge(self, params: Any = None) -> "QueryParams":
        """A copy with `params` on top: a name they give has their values instead."""
        return self._copy({**self._values, **QueryParams(params)._values})

    def __str__(self) -> str:
        return encode_params(self.multi_items())

    def __repr__(self) -> str:
        return f"QueryParams({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, QueryParams):
            try:
                other = QueryParams(other)
            except (TypeError, ValueError):
                return NotImplemented
        return sorted(self.multi_items()) == sorted(other.multi_items())

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.multi_items())))


def with_params(url: str, params: Any) -> str:
    """`url` with `params` added to its query (before any fragment)."""
    extra = encode_params(params)
    if not extra:
        return url
    url, hash_, fragment = url.partition("#")
    return f"{url}{'&' if '?' in url else '?'}{extra}{hash_}{fragment}"


def split_url(url: str, what: str = "URL") -> tuple[Any, int | None]:
    """urlsplit's parts and port, a malformed URL or port being InvalidURL."""
    try:
        parts = urlsplit(url)
        return parts, parts.port
    except ValueError as exc:
        raise InvalidURL(f"invalid {what} {url!r}: {exc}") from None


def remove_dot_segments(path: str) -> str:
    """An absolute path without its "." and ".." segments (RFC 3986 5.2.4), as curl and
    httpx send it: `/a/b/../c/./d` goes as `/a/c/d`."""
    if "." not in path:
        return path
    segments = path.split("/")
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if len(out) > 1:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments[-1] in (".", ".."):
        out.append("")  # "/a/b/.." is the directory "/a/"
    return "/".join(out) or "/"


def basic_auth(username: str | bytes, password: str | bytes) -> str:
    """A Basic Authorization value (RFC 7617: text in UTF-8, bytes as they are)."""
    user = username.encode() if isinstance(username, str) else username
    pw = password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(user + b":" + pw).decode("ascii")


def userinfo_auth(parts: Any) -> str | None:
    """user:password@ of a URL as a Basic Authorization value (never sent as is)."""
    if parts.username is None:
        return None
    return basic_auth(unquote(parts.username), unquote(parts.password or ""))


# A character a URL cannot hold as it is (RFC 3986): httpx percent-encodes it, and puts an
# international host name in IDNA, when the URL is made.
_TO_ENCODE = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")
_SUB_DELIMS = "!$&'()*+,;="
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _quoted(part: str, safe: str) -> str:
    """`part` percent-encoded as httpx does: UTF-8, every % kept as it is."""
    return quote(part, safe=safe + "%")


def _encoded(text: str) -> str:
    """A URL's text with what it cannot hold percent-encoded (spaces, non-ASCII, quotes...)
    by part, as httpx encodes each, and an international host in IDNA; a control
    character is refused (InvalidURL, httpx's words)."""
    bad = _CONTROL.search(text)
    if bad:
        raise InvalidURL(f"Invalid non-printable ASCII character in URL, {bad[0]!r} at "
                         f"position {bad.start()}.")
    parts = urlsplit(text)
    netloc = parts.netloc
    if netloc:
        userinfo, at, hostport = netloc.rpartition("@")
        host, colon, port = hostport.rpartition(":") if not hostport.endswith("]") and \
            ":" in hostport else (hostport, "", "")
        if not host.isascii():
            host = encode_host(host)
        netloc = (_quoted(userinfo, _SUB_DELIMS + ":") + at if at else "") + host + colon + port
    return urlunsplit((parts.scheme, netloc, _quoted(parts.path, _SUB_DELIMS + ":@/"),
                       _quoted(parts.query, _SUB_DELIMS + ":/?[]@"),
                       _quoted(parts.fragment, _SUB_DELIMS + ":/?[]@")))


class URL:
    """An absolute URL, parsed on first use. `host` is lower-case and, for an international
    name, in Unicode (`raw_host` is what goes on the wire); `port` is None when it is the
    scheme's default; `path` is unquoted, `raw_path` is path and query as sent; `query` is
    bytes, as in httpx. Compares equal to the same URL as a str."""

    __slots__ = ("_text", "_parts")

    def __init__(self, url: "URL | str" = "", **kwargs: Any) -> None:
        """`URL(text)`, or httpx's keywords, alone or over a text: scheme, username,
        password, host, port, netloc, path, query, params, raw_path, fragment."""
        self._text = str(url)
        self._parts: Any = None
        if kwargs:
            self._text = self.copy_with(**kwargs)._text
        elif _TO_ENCODE.search(self._text):  # rare: the common URL is left as given
            self._text = _encoded(self._text)

    def _split(self) -> Any:
        parts = self._parts
        if parts is None:
            parts = self._parts = urlsplit(self._text)
        return parts

    @property
    def scheme(self) -> str:
        return self._split().scheme.lower()

    @property
    def raw_host(self) -> bytes:
        return (self._split().hostname or "").encode("ascii", "replace")

    @property
    def host(self) -> str:
        host = self._split().hostname or ""
        if "xn--" in host:
            try:
                import idna

                return idna.decode(host)
            except Exception:
                return host
        return host

    @property
    def port(self) -> int | None:
        port = self._split().port
        return None if port == _DEFAULT_PORTS.get(self.scheme) else port

    @property
    def netloc(self) -> bytes:
        return self._split().netloc.rpartition("@")[2].encode("ascii", "replace")

    @property
    def username(self) -> str:
        return unquote(self._split().username or "")

    @property
    def password(self) -> str:
        return unquote(self._split().password or "")

    @property
    def path(self) -> str:
        return unquote(self._split().path or "/")

    @property
    def query(self) -> bytes:
        return self._split().query.encode("ascii", "replace")

    @property
    def raw_path(self) -> bytes:
        parts = self._split()
        path = parts.path or "/"
        return (f"{path}?{parts.query}" if parts.query else path).encode("ascii", "replace")

    @property
    def fragment(self) -> str:
        return unquote(self._split().fragment)

    @property
    def params(self) -> QueryParams:
        """The query as a QueryParams (`url.params["page"]`)."""
        return QueryParams(self._split().query)

    @property
    def raw_scheme(self) -> bytes:
        return self.scheme.encode("ascii")

    @property
    def userinfo(self) -> bytes:
        """user:password as written in the URL (still percent-encoded), b"" for none."""
        netloc = self._split().netloc
        return netloc.rpartition("@")[0].encode("ascii", "replace") if "@" in netloc else b""

    @property
    def is_absolute_url(self) -> bool:
        return bool(self._split().scheme and self._split().netloc)

    @property
    def is_relative_url(self) -> bool:
        return not self.is_absolute_url

    def join(self, url: "URL | str") -> "URL":
        """The URL `url` refers to when found in this one's document (RFC 3986 5.2)."""
        return URL(urljoin(self._text, str(url)))

    def copy_with(self, **changes: Any) -> "URL":
        """This URL with some of its parts replaced, as httpx's: scheme, username,
        password, host, port (None: the scheme's default), netloc, path, query (bytes or
        str, as sent), params (replacing the query), raw_path (path and query) and
        fragment."""
        unknown = set(changes) - _URL_PARTS
        if unknown:
            raise TypeError(f"copy_with() got unexpected arguments {sorted(unknown)}")
        parts = self._split()
        scheme = changes.get("scheme", parts.scheme)
        path, query, fragment = parts.path, parts.query, parts.fragment
        if "netloc" in changes:  # host and port, as the netloc property gives them
            raw = changes["netloc"]
            netloc = raw.decode("ascii") if isinstance(raw, bytes) else raw
            if self.userinfo:
                netloc = f"{self.userinfo.decode('ascii')}@{netloc}"
        else:
            user = changes.get("username", unquote(parts.username or ""))
            password = changes.get("password", unquote(parts.password or ""))
            host = changes.get("host", parts.hostname or "")
            if "host" in changes and host:
                host = encode_host(host.strip("[]"))
            port = changes["port"] if "port" in changes else parts.port
            netloc = f"[{host}]" if ":" in host else host  # an IPv6 literal
            if port is not None and port != _DEFAULT_PORTS.get(scheme.lower()):
                netloc += f":{int(port)}"
            if user or password:
                auth = quote(user, safe="")
                if password:
                    auth += ":" + quote(password, safe="")
                netloc = f"{auth}@{netloc}"
        if "raw_path" in changes:
            raw = changes["raw_path"]
            path, _, query = (raw.decode("ascii") if isinstance(raw, bytes) else raw
                              ).partition("?")
        if "path" in changes:
            path = quote(changes["path"], safe=PATH_SAFE)
        if "query" in changes:
            q = changes["query"]
            query = q.decode("ascii") if isinstance(q, bytes) else q
        if "params" in changes:
            query = str(QueryParams(changes["params"]))
        if "fragment" in changes:
            fragment = quote(changes["fragment"], safe=PATH_SAFE + "?")
        return URL(urlunsplit((scheme, netloc, path, query, fragment)))

    def copy_set_param(self, key: str, value: Any = None) -> "URL":
        return self.copy_with(params=self.params.set(key, value))

    def copy_add_param(self, key: str, value: Any = None) -> "URL":
        return self.copy_with(params=self.params.add(key, value))

    def copy_remove_param(self, key: str) -> "URL":
        return self.copy_with(params=self.params.remove(key))

    def copy_merge_params(self, params: Any) -> "URL":
        return self.copy_with(params=self.params.merge(params))

    def __str__(self) -> str:
        return self._text

    def __repr__(self) -> str:
        """httpx's: a password in the URL is masked, so that logging it leaks nothing."""
        text = self._text
        netloc = self._split().netloc
        userinfo, at, _ = netloc.rpartition("@")
        if at and ":" in userinfo:
            masked = userinfo.split(":", 1)[0] + ":[secure]"
            text = text.replace(netloc, masked + netloc[len(userinfo):], 1)
        return f"URL({text!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (URL, str)):
            return self._text == str(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._text)
