"""Case-insensitive, multi-valued, order-keeping headers (the shape httpx users know)."""
from __future__ import annotations

from typing import Iterable, Iterator, Mapping, Union

HeaderTypes = Union["Headers", Mapping[str, str], Iterable[tuple[str, str]], None]


class Headers:
    """Headers as a list of (name, value) str pairs; `h["x"]` joins repeated values with ", "
    as RFC 9110 allows, `get_list` returns them apart (needed for Set-Cookie)."""

    __slots__ = ("_items", "_index")

    def __init__(self, headers: HeaderTypes = None) -> None:
        self._index: dict[str, list[str]] | None = None
        if headers is None:
            self._items: list[tuple[str, str]] = []
        elif isinstance(headers, Headers):
            self._items = list(headers._items)
        elif isinstance(headers, Mapping):
            self._items = [(str(k), str(v)) for k, v in headers.items()]
        else:
            self._items = [(str(k), str(v)) for k, v in headers]

    @classmethod
    def from_raw(cls, raw: list[tuple[bytes, bytes]]) -> "Headers":
        """Build from the parser's bytes pairs; latin-1 keeps every byte (RFC 9110 5.5)."""
        h = cls.__new__(cls)
        h._index = None
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

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self._idx().get(key.lower())
        return ", ".join(values) if values else default

    def get_list(self, key: str) -> list[str]:
        return list(self._idx().get(key.lower(), ()))

    def __getitem__(self, key: str) -> str:
        values = self._idx().get(key.lower())
        if not values:
            raise KeyError(key)
        return ", ".join(values)

    def __setitem__(self, key: str, value: str) -> None:
        lk = key.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != lk]
        self._items.append((key, str(value)))
        self._index = None

    def __delitem__(self, key: str) -> None:
        lk = key.lower()
        n = len(self._items)
        self._items = [(k, v) for k, v in self._items if k.lower() != lk]
        if len(self._items) == n:
            raise KeyError(key)
        self._index = None

    def add(self, key: str, value: str) -> None:
        self._items.append((key, str(value)))
        self._index = None

    def setdefault(self, key: str, value: str) -> str:
        cur = self.get(key)
        if cur is None:
            self.add(key, value)
            return value
        return cur

    def pop(self, key: str, default: str | None = None) -> str | None:
        value = self.get(key, default)
        if key.lower() in self._idx():
            del self[key]
        return value

    def update(self, other: HeaderTypes) -> None:
        for k, v in Headers(other)._items:
            self[k] = v

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._idx()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._idx())

    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for k, _ in self._items:
            seen.setdefault(k.lower(), None)
        return list(seen)

    def items(self) -> list[tuple[str, str]]:
        return [(k, ", ".join(v)) for k, v in self._idx().items()]

    def multi_items(self) -> list[tuple[str, str]]:
        return list(self._items)

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
        return f"Headers({self._items!r})"
