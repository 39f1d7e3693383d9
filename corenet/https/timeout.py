"""Timeout settings: httpx's four stage timeouts plus an overall deadline."""
from __future__ import annotations

_UNSET: object = object()


class Timeout:
    """`Timeout(5.0)` (or `timeout=5.0`) sets connect, read, write and pool to 5 s, as in
    httpx, which also takes a Timeout to copy or a (connect, read[, write[, pool]]) tuple;
    keyword arguments override one stage. Without that first argument all four stages must
    be given (ValueError otherwise, as in httpx); `DEFAULT_TIMEOUT` is 5 s each. `total`
    bounds the whole request, body included, so a body trickling in forever still ends in
    an error (httpx has no such bound). None means no limit for that stage.

    When the total deadline is what runs out, the error is the one of the stage it
    interrupted (ConnectTimeout, PoolTimeout, ReadTimeout, WriteTimeout), its message
    naming the total, so `except ReadTimeout` catches a body that trickled too long."""

    __slots__ = ("connect", "read", "write", "pool", "total")

    def __init__(
        self,
        timeout: "Timeout | tuple | float | None | object" = _UNSET,
        *,
        connect: float | None | object = _UNSET,
        read: float | None | object = _UNSET,
        write: float | None | object = _UNSET,
        pool: float | None | object = _UNSET,
        total: float | None | object = _UNSET,
    ) -> None:
        # httpx's other forms of the first argument: a Timeout to copy (httpx's own too),
        # or a tuple of (connect, read, write, pool); keyword arguments still override one
        # stage.
        given: dict[str, object] = {}
        if isinstance(timeout, Timeout):
            given = {k: getattr(timeout, k) for k in self.__slots__}
            timeout = None
        elif hasattr(timeout, "as_dict"):
            given = dict(getattr(timeout, "as_dict")())
            timeout = None
        elif isinstance(timeout, tuple):
            # as httpx: (connect, read[, write[, pool]]), the stages left out without limit
            if not 2 <= len(timeout) <= 4:
                raise ValueError("a timeout tuple is (connect, read[, write[, pool]]), not "
                                 f"{timeout!r}")
            given = dict(zip(("connect", "read", "write", "pool"), (*timeout, None, None)))
            timeout = None
        given.setdefault("total", None)
        if timeout is _UNSET:
            if _UNSET in (connect, read, write, pool):
                raise ValueError("httpx.Timeout must either include a default, or set all "
                                 "four parameters explicitly.")
            timeout = None
        default = timeout

        def pick(v: object, stage: str = "") -> float | None:
            if v is _UNSET:
                v = given.get(stage, default)
            if v is not None and (not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f"timeouts must be None or a non-negative number, not {v!r}")
            return v  # type: ignore[return-value]  # as given, as httpx keeps it

        self.connect = pick(connect, "connect")
        self.read = pick(read, "read")
        self.write = pick(write, "write")
        self.pool = pick(pool, "pool")
        self.total = pick(total, "total")

    @classmethod
    def coerce(cls, value: "Timeout | tuple | dict | float | None") -> "Timeout":
        """A Timeout from any form a timeout is given in, httpx's request extension (a
        dict of connect, read, write, pool and, here, total) included."""
        if isinstance(value, Timeout):
            return value
        if isinstance(value, dict):
            return cls(None, **{k: value[k] for k in cls.__slots__ if k in value})
        return cls(value)

    def as_dict(self) -> dict[str, float | None]:
        """httpx's form, as a request's "timeout" extension carries it to a transport:
        connect, read, write and pool, and total when it is set."""
        d = {"connect": self.connect, "read": self.read, "write": self.write,
             "pool": self.pool}
        if self.total is not None:
            d["total"] = self.total
        return d

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timeout) and all(
            getattr(self, k) == getattr(other, k) for k in self.__slots__
        )

    def __repr__(self) -> str:
        """httpx's: `Timeout(timeout=5.0)` when the four stages agree, else each stage;
        then the total, when there is one."""
        if self.connect == self.read == self.write == self.pool:
            parts = f"timeout={self.connect}"
        else:
            parts = (f"connect={self.connect}, read={self.read}, write={self.write}, "
                     f"pool={self.pool}")
        if self.total is not None:
            parts += f", total={self.total}"
        return f"{type(self).__name__}({parts})"


#: A client's timeout unless told otherwise, as httpx's: 5 s for each stage, no total.
DEFAULT_TIMEOUT = Timeout(5.0)
