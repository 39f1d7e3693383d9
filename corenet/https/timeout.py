"""Timeout settings: httpx's four stage timeouts plus an overall deadline."""
from __future__ import annotations

_UNSET: object = object()


class Timeout:
    """`Timeout(5.0)` sets connect, read, write and pool to 5 s, as in httpx; keyword
    arguments override one stage. `total` bounds the whole request, body included, so a
    body trickling in forever still ends in an error (httpx has no such bound). None means
    no limit for that stage.

    When the total deadline is what runs out, the error is the one of the stage it
    interrupted (ConnectTimeout, PoolTimeout, ReadTimeout, WriteTimeout), its message
    naming the total, so `except ReadTimeout` catches a body that trickled too long."""

    __slots__ = ("connect", "read", "write", "pool", "total")

    def __init__(
        self,
        default: float | None = 5.0,
        *,
        connect: float | None | object = _UNSET,
        read: float | None | object = _UNSET,
        write: float | None | object = _UNSET,
        pool: float | None | object = _UNSET,
        total: float | None = None,
    ) -> None:
        def pick(v: object) -> float | None:
            v = default if v is _UNSET else v
            if v is not None and (not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"timeouts must be None or a non-negative number, not {v!r}")
            return None if v is None else float(v)  # type: ignore[arg-type]

        self.connect = pick(connect)
        self.read = pick(read)
        self.write = pick(write)
        self.pool = pick(pool)
        self.total = pick(total)

    @classmethod
    def coerce(cls, value: "Timeout | float | None") -> "Timeout":
        if isinstance(value, Timeout):
            return value
        return cls(value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timeout) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__
        )

    def __repr__(self) -> str:
        parts = ", ".join(f"{k}={getattr(self, k)!r}" for k in self.__slots__)
        return f"Timeout({parts})"
