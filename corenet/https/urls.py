"""The URL object of requests and responses (the attributes httpx users reach for)."""
from __future__ import annotations

import base64
import ipaddress
import re
from typing import Any, Iterator, Mapping, NamedTuple
from urllib.parse import unquote, urlencode, urljoin, urlsplit

from .errors import InvalidURL

_HOST_CHARS = re.compile(r"[a-z0-9_.-]+")


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
    replaces the client's values for it, where the client's name stood; the request's
    other names follow (values grouped by name, as httpx's QueryParams keeps them)."""
    merged: dict[Any, list[Any]] = {}
    for k, v in param_pairs(base):
        merged.setdefault(k, []).append(v)
    given: dict[Any, list[Any]] = {}
    for k, v in param_pairs(params):
        given.setdefault(k, []).append(v)
    merged.update(given)
    return [(k, v) for k, values in merged.items() for v in values]


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

    # httpx's answers to code written for its mutable QueryParams (before 0.18).
    def update(self, params: Any = None) -> None:
        raise RuntimeError("QueryParams are immutable since 0.18.0. "
                           "Use `q = q.merge(...)` to create an updated copy.")

    def __setitem__(self, key: str, value: str) -> None:
        raise RuntimeError("QueryParams are immutable since 0.18.0. "
                           "Use `q = q.set(key, value)` to create an updated copy.")

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
    """A path without its "." and ".." segments (RFC 3986 5.2.4), as curl and httpx send
    it: `/a/b/../c/./d` goes as `/a/c/d`, and `/a/b/..` as the directory `/a/`."""
    if "." not in path:
        return path
    segments = path.split("/")
    if "." not in segments and ".." not in segments:
        return path
    out: list[str] = []
    for segment in segments:
        if segment == "..":
            if out and out != [""]:
                out.pop()
        elif segment != ".":
            out.append(segment)
    if segments[-1] in (".", ".."):
        out.append("")
    return "/".join(out)


def basic_auth(username: str | bytes, password: str | bytes) -> str:
    """A Basic Authorization value (RFC 7617: text in UTF-8, bytes as they are)."""
    user = username.encode() if isinstance(username, str) else username
    pw = password.encode() if isinstance(password, str) else password
    return "Basic " + base64.b64encode(user + b":" + pw).decode("ascii")


def userinfo(parts: Any) -> tuple[str, str] | None:
    """user:password@ of a URL as the (user, password) pair it encodes, or None."""
    if parts.username is None:
        return None
    return unquote(parts.username), unquote(parts.password or "")


# What each part of a URL keeps as it is; any other character is percent-encoded (its
# UTF-8 bytes), as httpx encodes it after the WHATWG URL standard's percent-encode sets.
# "%" is kept, so an escape stays as written.
def _keeps(excluded: str) -> str:
    return "".join(c for c in map(chr, range(0x21, 0x7F)) if c not in excluded)


def _encoder(keeps: str) -> Any:
    needs_encoding = re.compile("[^" + re.escape(keeps) + "]").search

    def encode(text: str) -> str:
        if not needs_encoding(text):
            return text
        return "".join(c if c in keeps else "".join(f"%{b:02X}" for b in c.encode("utf-8"))
                       for c in text)
    return encode


_quote_fragment = _encoder(_keeps('"<>`'))
_quote_query = _encoder(_keeps('"#<>'))
_quote_path = _encoder(_keeps('"#<>?`{}'))
_quote_userinfo = _encoder(_keeps('"#<>?`{}/;=@[\\]^|'))
_quote_user = _encoder(_keeps('"#<>?`{}/;=@[\\]^|:'))  # a username or password alone

# scheme:, //authority, path, ?query, #fragment (RFC 3986 appendix B); each may be absent,
# and the scheme empty before its colon ("://host", as httpx reads it).
_URL_RE = re.compile(r"(?:([a-zA-Z][a-zA-Z0-9+.-]*)?:)?(?://([^/?#]*))?([^?#]*)"
                     r"(?:\?([^#]*))?(?:#(.*))?", re.S)
# userinfo@, host (an IPv6 literal in brackets), :port.
_AUTHORITY_RE = re.compile(r"(?:(.*)@)?(\[.*\]|[^:@]*):?(.*)", re.S)
# What a part given by keyword may hold.
_PART_RE = {"scheme": re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*)?"),
            "authority": re.compile(r"[^/?#]*"), "path": re.compile(r"[^?#]*"),
            "query": re.compile(r"[^#]*"), "fragment": re.compile(r".*", re.S),
            "userinfo": re.compile(r"[^@]*"), "host": re.compile(r"(\[.*\]|[^:]*)", re.S),
            "port": re.compile(r".*", re.S)}
_PLAIN_URL = re.compile(r"(https?)://([a-z0-9_-]+(?:\.[a-z0-9_-]+)*)(?::([1-9][0-9]{0,4}))?"
                        r"(/[" + re.escape(_keeps('"#<>?`{}')) + r"]*)?"
                        r"(?:\?([" + re.escape(_keeps('"#<>')) + r"]*))?").fullmatch
_IPV4_LIKE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: The port a URL of each scheme means when it names none (WHATWG's special schemes), which a
#: URL then leaves out
_SCHEME_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443, "ftp": 21}
_URL_KEYWORDS = {"scheme": str, "username": str, "password": str, "userinfo": bytes,
                 "host": str, "port": int, "netloc": bytes, "path": str, "query": bytes,
                 "raw_path": bytes, "fragment": str, "params": object}
MAX_URL_LENGTH = 65536


def default_port(scheme: str) -> int | None:
    """The port a URL of ``scheme`` means when it names none (443 for https, 80 for http),
    or None for a scheme without one."""
    return _SCHEME_PORTS.get(scheme)


def _refuse_controls(text: str, where: str = "URL") -> None:
    bad = _CONTROL.search(text)
    if bad:
        raise InvalidURL(f"Invalid non-printable ASCII character in {where}, {bad[0]!r} at "
                         f"position {bad.start()}.")


def _url_host(host: str) -> str:
    """A URL's host as it is kept and sent: an IPv4 or bracketed IPv6 literal checked (the
    IPv6 one kept as written, without its brackets), a name lower-cased and, when not
    ASCII, in IDNA 2008 with the UTS 46 mapping (`faß.de` is `xn--fa-hia.de`)."""
    if not host:
        return ""
    if _IPV4_LIKE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise InvalidURL(f"Invalid IPv4 address: {host!r}") from None
        return host
    if host[0] == "[" and host[-1] == "]":
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise InvalidURL(f"Invalid IPv6 address: {host!r}") from None
        return host[1:-1]
    name = host.lower()
    if not name.isascii() or "xn--" in name:
        try:
            import idna
        except ImportError:
            raise InvalidURL(f"host {host!r} is international and the idna package is not "
                             "installed to encode it") from None
        try:
            if name.isascii():
                idna.decode(name)  # an A-label must be valid punycode of a valid U-label
            else:
                name = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError) as exc:
            raise InvalidURL(f"Invalid IDNA hostname: {host!r} ({exc})") from None
    if not _HOST_CHARS.fullmatch(name):
        raise InvalidURL(f"Invalid host name: {host!r}")
    return name


def encode_host(host: str) -> str:
    """A host name or IP literal (without brackets) as it goes into DNS, SNI and the Host
    header; InvalidURL when it is none."""
    if ":" in host:
        return _url_host(f"[{host}]")
    if not host:
        raise InvalidURL("empty host name")
    return _url_host(host)


def _url_port(port: str | None, scheme: str) -> int | None:
    """A port as a number, None for none or the scheme's default."""
    if not port:
        return None
    if not (port.isascii() and port.isdigit()) or int(port) > 65535:
        raise InvalidURL(f"Invalid port: {port!r}")
    number = int(port)
    return None if number == _SCHEME_PORTS.get(scheme) else number


def _plain_parts(text: str) -> tuple | None:
    """The parts of a URL that needs no change (the common one: lower-case http(s), an
    ASCII name, no userinfo, dot segment or character to encode), None for another."""
    plain = _PLAIN_URL(text)
    if plain is None:
        return None
    scheme, host, port, path, query = plain.groups()
    if port is not None:
        if int(port) > 65535 or int(port) == _SCHEME_PORTS[scheme]:
            return None
        port = int(port)
    if "xn--" in host or _IPV4_LIKE.fullmatch(host) or (path and "/." in path) or \
            len(text) > MAX_URL_LENGTH:
        return None
    return scheme, "", host, port, path or "", query, None


def _url_parts(text: str, given: dict[str, Any]) -> tuple:
    """(scheme, userinfo, host, port, path, query, fragment) of a URL `text` with the
    parts in `given` (httpx's keywords, as text) put in place of its own, each checked,
    normalised and percent-encoded. A query or fragment is None when absent ("?" alone
    is an empty query)."""
    if len(text) > MAX_URL_LENGTH:
        raise InvalidURL("URL too long")
    _refuse_controls(text)
    if given:
        if "port" in given and isinstance(given["port"], int):
            given["port"] = str(given["port"])
        if "netloc" in given:
            given["host"], _, given["port"] = (given.pop("netloc") or "").partition(":")
        if "username" in given or "password" in given:
            user = _quote_user(given.pop("username", "") or "")
            password = _quote_user(given.pop("password", "") or "")
            given["userinfo"] = f"{user}:{password}" if password else user
        if "raw_path" in given:
            path, question, query = (given.pop("raw_path") or "").partition("?")
            given["path"], given["query"] = path, (query if question else None)
        host = given.get("host") or ""
        if ":" in host and not (host[0] == "[" and host[-1] == "]"):
            given["host"] = f"[{host}]"
        for key, value in given.items():
            if value is None:
                continue
            if len(value) > MAX_URL_LENGTH:
                raise InvalidURL(f"URL component '{key}' too long")
            _refuse_controls(value, f"URL {key} component")
            if not _PART_RE[key].fullmatch(value):
                raise InvalidURL(f"Invalid URL component '{key}'")
    matched = _URL_RE.match(text)
    assert matched is not None  # every part is optional
    scheme, authority, path, query, fragment = matched.groups()
    scheme = (given.get("scheme", scheme) or "").lower()
    authority = given.get("authority", authority) or ""
    path = given.get("path", path) or ""
    query = given.get("query", query)
    fragment = given.get("fragment", fragment)
    auth = _AUTHORITY_RE.match(authority)
    assert auth is not None
    userinfo = _quote_userinfo(given.get("userinfo", auth[1]) or "")
    host = _url_host(given.get("host", auth[2]) or "")
    port = _url_port(given.get("port", auth[3]), scheme)
    has_authority = bool(userinfo or host or port is not None)
    if has_authority and path and path[0] != "/":
        raise InvalidURL("For absolute URLs, path must be empty or begin with '/'")
    if scheme or has_authority:
        path = remove_dot_segments(path)
    elif path[:2] == "//":
        raise InvalidURL("Relative URLs cannot have a path starting with '//'")
    elif path[:1] == ":":
        raise InvalidURL("Relative URLs cannot have a path starting with ':'")
    return (scheme, userinfo, host, port, _quote_path(path),
            None if query is None else _quote_query(query),
            None if fragment is None else _quote_fragment(fragment))


def masked(url: "URL") -> str:
    """The URL's text with its password, if it has one, as ``[secure]`` (httpx's mask):
    what a log line or a repr shows."""
    scheme, userinfo, *rest = url._parts
    if ":" not in userinfo:
        return url._text
    return _url_text(scheme, userinfo.split(":")[0] + ":[secure]", *rest)


def _url_text(scheme: str, userinfo: str, host: str, port: int | None, path: str,
              query: str | None, fragment: str | None) -> str:
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc = f"{netloc}:{port}"
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    return "".join((f"{scheme}:" if scheme else "", f"//{netloc}" if netloc else "", path,
                    "" if query is None else f"?{query}",
                    "" if fragment is None else f"#{fragment}"))


class ParseResult(NamedTuple):
    """A URL's parts as httpx's parser gives them (``httpx._urlparse.urlparse``): checked,
    normalised and percent-encoded, as a URL keeps them; a query or fragment is None when
    absent, the port None when absent or the scheme's default."""
    scheme: str
    userinfo: str
    host: str
    port: int | None
    path: str
    query: str | None
    fragment: str | None

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.userinfo}@{self.netloc}" if self.userinfo else self.netloc

    def copy_with(self, **parts: str | None) -> "ParseResult":
        """These parts with ``parts`` (urlparse's keywords) put in place."""
        if not parts:
            return self
        return urlparse("", **{"scheme": self.scheme, "authority": self.authority,
                               "path": self.path, "query": self.query,
                               "fragment": self.fragment, **parts})

    def __str__(self) -> str:
        return _url_text(*self)


def urlparse(url: str = "", **parts: str | None) -> ParseResult:
    """``url`` parsed as URL() parses it (InvalidURL for what cannot be a URL), with the
    parts given as keywords (scheme, authority, userinfo, host, port, netloc, path, query,
    raw_path, fragment, username, password: text) put in place of its own."""
    return ParseResult(*_url_parts(url, parts))


class URL:
    """httpx's URL: parsed, checked, normalised and percent-encoded when made (InvalidURL
    for what cannot be a URL), its parts kept. `scheme` and `host` are lower-case, `host`
    of an international name in Unicode (`raw_host` is what goes on the wire, in IDNA);
    `port` is None when absent or the scheme's default; `path` is unquoted, `raw_path` is
    path and query as sent; `query` is bytes. Compares equal to the same URL as a str."""

    __slots__ = ("_parts", "_text")
    _parts: tuple
    _text: str

    def __init__(self, url: "URL | str" = "", **kwargs: Any) -> None:
        """`URL(text)`, or httpx's keywords, alone or over a text or URL: scheme,
        username, password, userinfo, host, port, netloc, path, query, params,
        raw_path, fragment."""
        if kwargs:
            for key, value in kwargs.items():
                if key not in _URL_KEYWORDS:
                    raise TypeError(f"{key!r} is an invalid keyword argument for URL()")
                kind = _URL_KEYWORDS[key]
                if value is not None and not isinstance(value, kind):
                    raise TypeError(f"Argument {key!r} must be {kind.__name__} but got "
                                    f"{type(value).__name__}")
                if isinstance(value, bytes):
                    kwargs[key] = value.decode("ascii")
            if "params" in kwargs:
                params = kwargs.pop("params")
                kwargs["query"] = str(QueryParams(params)) if params else None
        if isinstance(url, str):
            parts = None if kwargs else _plain_parts(url)
            if parts is not None:
                self._parts, self._text = parts, url
                return
            parts = _url_parts(url, kwargs)
        elif isinstance(url, URL):
            if not kwargs:
                self._parts, self._text = url._parts, url._text
                return
            scheme, userinfo, host, port, path, query, fragment = url._parts
            netloc = f"[{host}]" if ":" in host else host
            mine = {"scheme": scheme, "path": path, "query": query, "fragment": fragment,
                    "authority": (f"{userinfo}@" if userinfo else "") + netloc +
                    ("" if port is None else f":{port}")}
            parts = _url_parts("", {**mine, **kwargs})
        else:
            raise TypeError(f"Invalid type for url.  Expected str or httpx.URL, got "
                            f"{type(url)}: {url!r}")
        self._parts = parts
        self._text = _url_text(*parts)

    @property
    def scheme(self) -> str:
        return self._parts[0]

    @property
    def raw_scheme(self) -> bytes:
        return self._parts[0].encode("ascii")

    @property
    def userinfo(self) -> bytes:
        """user:password as written in the URL (percent-encoded), b"" for none."""
        return self._parts[1].encode("ascii")

    @property
    def username(self) -> str:
        return unquote(self._parts[1].partition(":")[0])

    @property
    def password(self) -> str:
        return unquote(self._parts[1].partition(":")[2])

    @property
    def host(self) -> str:
        host = self._parts[2]
        if host.startswith("xn--"):
            import idna

            return idna.decode(host)
        return host

    @property
    def raw_host(self) -> bytes:
        return self._parts[2].encode("ascii")

    @property
    def port(self) -> int | None:
        return self._parts[3]

    @property
    def netloc(self) -> bytes:
        """host[:port], the host in IDNA (what the Host header says)."""
        host, port = self._parts[2], self._parts[3]
        netloc = f"[{host}]" if ":" in host else host
        return (netloc if port is None else f"{netloc}:{port}").encode("ascii")

    @property
    def path(self) -> str:
        return unquote(self._parts[4] or "/")

    @property
    def query(self) -> bytes:
        return (self._parts[5] or "").encode("ascii")

    @property
    def params(self) -> QueryParams:
        """The query as a QueryParams (`url.params["page"]`)."""
        return QueryParams(self._parts[5] or "")

    @property
    def raw_path(self) -> bytes:
        """Path and query as they go in the request line."""
        path, query = self._parts[4] or "/", self._parts[5]
        return (path if query is None else f"{path}?{query}").encode("ascii")

    @property
    def fragment(self) -> str:
        return unquote(self._parts[6] or "")

    @property
    def is_absolute_url(self) -> bool:
        return bool(self._parts[0] and self._parts[2])

    @property
    def is_relative_url(self) -> bool:
        return not self.is_absolute_url

    def join(self, url: "URL | str") -> "URL":
        """The URL `url` refers to when found in this one's document (RFC 3986 5.2)."""
        return URL(urljoin(self._text, str(URL(url))))

    def copy_with(self, **changes: Any) -> "URL":
        """This URL with some of its parts replaced, given as URL()'s keywords (`port=None`
        for the scheme's default, `params=` replacing the query)."""
        return URL(self, **changes)

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
        return f"URL({masked(self)!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, URL):
            return self._text == other._text
        if isinstance(other, str):
            try:
                return self._text == URL(other)._text
            except InvalidURL:
                return False
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._text)
