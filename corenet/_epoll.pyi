# Type stub for the compiled module corenet._epoll: a thin binding of epoll(7).
from typing import Final, Protocol

EPOLLIN: Final[int]
EPOLLPRI: Final[int]
EPOLLOUT: Final[int]
EPOLLERR: Final[int]
EPOLLHUP: Final[int]
EPOLLRDNORM: Final[int]
EPOLLRDBAND: Final[int]
EPOLLWRNORM: Final[int]
EPOLLWRBAND: Final[int]
EPOLLMSG: Final[int]
EPOLLRDHUP: Final[int]
EPOLLEXCLUSIVE: Final[int]
EPOLLWAKEUP: Final[int]
EPOLLONESHOT: Final[int]
EPOLLET: Final[int]

class Epoll:
    """``register(fd, events, edge=, oneshot=, exclusive=)``; ``poll()`` returns ``(fd, events)``
    pairs. Errors are ``OSError``; use after ``close()`` is ``ValueError``."""

    def __init__(self, sizehint: int = -1) -> None: ...
    @property
    def closed(self) -> bool: ...
    def fileno(self) -> int: ...
    def close(self) -> None: ...
    def register(self, fd: int | _HasFileno, events: int = ..., *, edge: bool = False,
                 oneshot: bool = False, exclusive: bool = False) -> None: ...
    def modify(self, fd: int | _HasFileno, events: int, *, edge: bool = False,
               oneshot: bool = False) -> None: ...
    def unregister(self, fd: int | _HasFileno) -> None: ...
    def poll(self, timeout: float | None = None, maxevents: int = -1) -> list[tuple[int, int]]: ...
    def __enter__(self) -> Epoll: ...
    def __exit__(self, *exc: object) -> None: ...

class _HasFileno(Protocol):
    def fileno(self) -> int: ...
