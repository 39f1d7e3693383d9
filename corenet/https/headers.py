"""Case-insensitive, multi-valued, order-keeping headers (the shape httpx users know)."""
from __future__ import annotations

from collections.abc import ItemsView, KeysView, ValuesView
from typing import Iterable, Iterator, Mapping, MutableMapping, Union

HeaderTypes = Union["Headers", Mapping[str, str], Mapping[bytes, bytes],
                    Iterable[tuple[Union[str, bytes], Union[str, bytes]]], None]
# Fields whose values a repr masks (httpx's), so that logging a request leaks no credentials.
SENSITIVE = frozenset({"authorization", "proxy-authorization"})
_MISSING = object()


def _text(value: str | bytes, what: str = "value") -> str:
    """A name or value as held: bytes as Latin-1 (each byte one character, so the
    bytes go back to the wire unchanged), str as given; TypeError in httpx's words."""
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, str):
        return value
    raise TypeError(f"Header {what} must be str or bytes, not {type(value)}")


def _set_value(value: object) -> str:
    """A value assigned (`h[k] = v`, `add`, `setdefault`): str or bytes as given, any other
    value but None as its str()."""
    if value is None:
        raise TypeError(f"Header value must be str or bytes, not {type(value)}")
    return _text(value) if isinstance(value, bytes) else str(value)


class Headers(MutableMapping[str, str]):
    """Headers as a list of (name, value) pairs, str or bytes as httpx takes them, held as
    they go on the wire (bytes as Latin-1); `h["x"]` joins repeated values with ", " as RFC
    9110 allows, `get_list` returns them apart (needed for Set-Cookie). Values are read in
    `encoding`, httpx's: ascii, else utf-8 when every field decodes as it, else
    iso-8859-1 (settable).

    A MutableMapping as httpx's, with its rules: `len()` counts every field (a repeated
    name as often as it comes), while `keys()`, `values()` and `items()` have one entry a
    name."""

    __slots__ = ("_items", "_index", "_encoding")

    def __init__(self, headers: HeaderTypes = None, encoding: str | None = None) -> None:
        self._index: dict[str, list[str]] | None = None
        self._encoding = encoding
        if headers is None:
            self._items: list[tuple[str, str]] = []
        elif isinstance(headers, Headers):
            self._items = list(headers._items)
            self._encoding = encoding or headers._encoding
        elif isinstance(headers, Mapping):
            self._items = [(_text(k, "name"), _text(v)) for k, v in headers.items()]
        else:
            self._items = [(_text(k, "name"), _text(v)) for k, v in headers]

    @property
    def encoding(self) -> str:
        """The encoding values are read in: httpx's choice (ascii, utf-8, else
        iso-8859-1) over the fields as they are on the wire, unless set."""
        if self._encoding is None:
            wire = "".join(k + v for k, v in self._items)
            if wire.isascii():
                self._encoding = "ascii"
            else:
                try:
                    wire.encode("latin-1").decode("utf-8")
                    self._encoding = "utf-8"
                except (UnicodeEncodeError, UnicodeDecodeError):
                    self._encoding = "iso-8859-1"
        return self._encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._encoding = value

    def _read(self, value: str) -> str:
        """A held value as read: in `encoding` (only a non-ASCII value can differ)."""
        if value.isascii():
            return value
        encoding = self.encoding
        if encoding in ("ascii", "iso-8859-1", "latin-1"):
            return value
        try:
            return value.encode("latin-1").decode(encoding)
        except (UnicodeEncodeError, UnicodeDecodeError):
            return value  # a str value given beyond Latin-1: as given

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> "Headers":
        """Build from the parser's bytes pairs; latin-1 keeps every byte (RFC 9110 5.5)."""
        h = cls.__new__(cls)
        h._index = None
        h._encoding = None
        h._items = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw]
        return h

    def frozen(self) -> tuple[tuple[str, str], ...]:
        """The (name, value) pairs as they are now, in order, as a tuple (hashable: the
        transport keys its encoded header blocks by it)."""
        return tuple(self._items)

    def _idx(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            for k, v in self._items:
                index.setdefault(k.lower(), []).append(v)
            self._index = index
        return index

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        values = self._idx().get(key.lower())
        return self._read(", ".join(values)) if values else default

    def get_list(self, key: str, split_commas: bool = False) -> list[str]:
        """The values of the fields named `key`, in order; with `split_commas` each
        value's comma-separated items too (httpx's)."""
        values = [self._read(v) for v in self._idx().get(key.lower(), ())]
        if not split_commas:
            return values
        return [item.strip() for v in values for item in v.split(",")]

    def __getitem__(self, key: str) -> str:
        values = self._idx().get(key.lower())
        if not values:
            raise KeyError(key)
        return self._read(", ".join(values))

    def __setitem__(self, key: str, value: str) -> None:
        """As httpx: the first field of that name takes the new name and value where it
        stands, the others go; a new name goes last."""
        lk = key.lower()
        items = self._items
        field = (key, _set_value(value))
        at = next((i for i, (k, _) in enumerate(items) if k.lower() == lk), None)
        if at is None:
            items.append(field)
        else:
            self._items = items[:at] + [field] + [
                (k, v) for k, v in items[at + 1:] if k.lower() != lk]
        self._index = None

    def __delitem__(self, key: str) -> None:
        lk = key.lower()
        n = len(self._items)
        self._items = [(k, v) for k, v in self._items if k.lower() != lk]
        if len(self._items) == n:
            raise KeyError(key)
        self._index = None

    def add(self, key: str, value: str) -> None:
        self._items.append((key, _set_value(value)))
        self._index = None

    def setdefault(self, key: str, default: str | None = None) -> str:
        """The value of `key`; when there is none, `default` is added and returned
        (None: TypeError, as a header needs a value)."""
        cur = self.get(key)
        if cur is None:
            self.add(key, default)  # type: ignore[arg-type]
            return self._read(_set_value(default))
        return cur

    def pop(self, key: str, default: object = _MISSING) -> str | None:  # type: ignore[override]
        """Removes every field named `key` and returns their values joined; KeyError when
        there is none, unless a `default` is given."""
        value = self.get(key)
        if value is None:
            if default is _MISSING:
                raise KeyError(key)
            return default  # type: ignore[return-value]
        del self[key]
        return value

    def update(self, other: HeaderTypes) -> None:  # type: ignore[override]
        """As httpx's: each name of `other` replaces all the fields of that name, its
        fields (every one, a repeated name too) going last."""
        new = Headers(other)._items
        names = {k.lower() for k, _ in new}
        self._items = [(k, v) for k, v in self._items if k.lower() not in names] + new
        self._index = None

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._idx()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> KeysView[str]:
        return self._idx().keys()

    def items(self) -> ItemsView[str, str]:
        return {k: self._read(", ".join(v)) for k, v in self._idx().items()}.items()

    def values(self) -> ValuesView[str]:
        return {k: self._read(", ".join(v)) for k, v in self._idx().items()}.values()

    def clear(self) -> None:
        self._items = []
        self._index = None

    def popitem(self) -> tuple[str, str]:
        """Removes the first name (all its values) and returns it with its values joined,
        as a MutableMapping's popitem does (and httpx's with it)."""
        if not self._items:
            raise KeyError("popitem(): the headers are empty")
        name = self._items[0][0].lower()
        value = self[name]
        del self[name]
        return name, value

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """The (name, value) pairs as bytes, names as given (Latin-1, as on the wire)."""
        return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self._items]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair in order, as httpx gives them: names lower-cased,
        values read in `encoding` (`raw` keeps the names as given)."""
        return [(k.lower(), self._read(v)) for k, v in self._items]

    def copy(self) -> "Headers":
        return Headers(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            try:
                other = Headers(other)  # type: ignore[arg-type]
            except Exception:
                return NotImplemented
        return sorted((k.lower(), v) for k, v in self._items) == sorted(
            (k.lower(), v) for k, v in other._items
        )

    def __repr__(self) -> str:
        """httpx's: names lower-cased, credentials masked, as a dict unless a name repeats."""
        items = [(k, "[secure]" if k in SENSITIVE else v) for k, v in self.multi_items()]
        as_dict = dict(items)
        encoding = "" if self.encoding == "ascii" else f", encoding={self.encoding!r}"
        return f"Headers({as_dict if len(as_dict) == len(items) else items!r}{encoding})"


def parse_links(values: Iterable[str]) -> list[dict[str, str]]:
    """The links of Link header fields (RFC 8288): for each ``<url>; name=value; ...``, a
    dict of its "url" and its parameters, names lower-cased, quoted values unquoted.
    What does not parse as a link is skipped, up to the next comma outside quotes."""
    links: list[dict[str, str]] = []
    for value in values:
        i, n = 0, len(value)
        while i < n:
            while i < n and value[i] in " \t,":
                i += 1
            if i >= n:
                break
            link: dict[str, str] | None = None
            if value[i] == "<":
                end = value.find(">", i + 1)
                if end >= 0:
                    link = {"url": value[i + 1:end].strip()}
                    i = end + 1
            while i < n and value[i] != ",":
                if value[i] == '"':  # skip a quoted string whole: it may hold , or ;
                    i = _quoted_end(value, i)
                    continue
                if value[i] == ";" and link is not None:
                    i = _param(value, i + 1, link)
                    continue
                i += 1
            if link is not None:
                links.append(link)
    return links


def _quoted_end(value: str, i: int) -> int:
    """Where the quoted string starting at value[i] ends (after its closing quote)."""
    i += 1
    while i < len(value):
        if value[i] == "\\":
            i += 2
        elif value[i] == '"':
            return i + 1
        else:
            i += 1
    return i


def _unquote(body: str) -> str:
    """A quoted string's content (after its opening quote, up to and with its closing one,
    which a cut-short value lacks), its backslash escapes undone."""
    out = []
    k, n = 0, len(body)
    while k < n:
        c = body[k]
        if c == "\\" and k + 1 < n:
            out.append(body[k + 1])
            k += 2
            continue
        if c == '"':
            break
        out.append(c)
        k += 1
    return "".join(out)


def _param(value: str, i: int, link: dict[str, str]) -> int:
    """Reads one `name[=value]` from value[i:] into `link`; returns where it ends."""
    n = len(value)
    start = i
    while i < n and value[i] not in "=;,":
        i += 1
    name = value[start:i].strip().lower()
    got = ""
    if i < n and value[i] == "=":
        i += 1
        while i < n and value[i] in " \t":
            i += 1
        if i < n and value[i] == '"':
            end = _quoted_end(value, i)
            got = _unquote(value[i + 1:end])
            i = end
        else:
            start = i
            while i < n and value[i] not in ";,":
                i += 1
            got = value[start:i].strip(" \t'")  # rel='next': single quotes taken off too
    if name and name not in link:  # RFC 8288 3.3: the first rel (and any name) counts
        link[name] = got
    return i
