"""Per-origin pool of connections, with TLS sessions kept per origin. An HTTP/1.1
connection is checked out by one request at a time and comes back idle; an HTTP/2 one
(`conn.multiplexed`) is shared: one per origin, handed to every request while it has a free
stream (the server's SETTINGS_MAX_CONCURRENT_STREAMS), requests beyond waiting for one.
Either kind is idle when no request uses it, and the keep-alive limits apply to both alike:
at most `max_keepalive` idle connections are kept, an idle one is closed once it has been
idle for `keepalive_expiry` (on a timer, whether or not another request comes; a
connection carrying a request is never idle, so never cut), and the longest idle one of any
origin is closed to make room for a new connection."""
from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, Callable, Coroutine

from corenet.tls import TLSSession

from .connection import HTTPConnection
from .errors import ConnectError, PoolTimeout
from .h2 import H2Connection
from .network import NetworkStream, expire

Origin = tuple[str, str, int]


#: What pools forgot in a child after fork: the parent's connections, never touched here.
_PARENTS: list[tuple] = []


class Pool:
    """`max_connections` bounds open connections (busy + idle) across all origins;
    `max_keepalive` bounds idle ones (HTTP/2 ones with no stream open count too); an idle
    connection older than `keepalive_expiry`, or past the server's `Keep-Alive: timeout=`,
    or that the server has closed (GOAWAY for HTTP/2), is dropped at acquire time instead
    of being used; one timer closes idle connections as they pass `keepalive_expiry`."""

    def __init__(self, max_connections: int = 100, max_keepalive: int = 20,
                 keepalive_expiry: float | None = 5.0, reuse_tls_sessions: bool = True) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.max_connections = max_connections
        self.max_keepalive = max_keepalive
        self.keepalive_expiry = keepalive_expiry
        self._h1_origins: set[Origin] = set()  # answered HTTP/1.1 to an offer of h2
        self.http2 = False
        self._sessions: dict[Origin, TLSSession | ssl.SSLSession] = {}
        self.reuse_tls_sessions = reuse_tls_sessions
        self.closed = False
        self.connections_opened = 0
        self._no_connections()

    def _no_connections(self) -> None:
        """The pool's connections and what waits on them, none yet."""
        self._idle: dict[Origin, list[HTTPConnection]] = {}
        self._idle_count = 0
        self._total = 0
        self._busy: set[HTTPConnection] = set()  # checked out, closed too by aclose()
        # Multiplexed connections by origin (busy or idle), and the origins whose first
        # connection is being made while HTTP/2 may come of it: other requests wait for it
        # rather than open connections of their own.
        self._shared: dict[Origin, list] = {}
        self._shared_idle: set = set()  # of those, the ones with no stream: counted idle
        self._opening: dict[Origin, bool] = {}
        self._draining: set = set()  # taken out of the pool, their last streams running
        self._connecting: set[asyncio.Task] = set()  # cancelled by aclose()
        self._waiters: deque[asyncio.Future] = deque()
        self._sweep: asyncio.TimerHandle | None = None  # the idle-expiry timer, when armed
        self._sweep_at = 0.0

    def forget_after_fork(self) -> None:
        """In a child after ``fork``: every connection is the parent's (its socket, its TLS
        state, its loop), so this pool forgets them all, unused and unclosed, and the
        parent's go on; they are held for the child's life so that no finalizer of theirs
        runs here (the TLS sessions, plain data, are kept for resumption)."""
        _PARENTS.append((self._idle, self._busy, self._shared, self._draining,
                         self._connecting, self._waiters, self._sweep))
        self._no_connections()

    @property
    def idle_count(self) -> int:
        return self._idle_count

    @property
    def open_count(self) -> int:
        return self._total

    def session_for(self, origin: Origin) -> TLSSession | ssl.SSLSession | None:
        return self._sessions.get(origin)

    def _keep_session(self, conn: HTTPConnection) -> None:
        if not self.reuse_tls_sessions:
            return
        s = conn.session()
        if s is not None:
            self._sessions[conn.origin] = s

    def take(self, origin: Origin) -> HTTPConnection | None:
        """A pooled connection to `origin` ready for a request (checked out, as from
        `acquire`), or None: then `acquire` makes one or waits. Never waits itself."""
        if self.closed:
            return None
        return self._pooled(origin)[0]

    def _pooled(self, origin: Origin) -> tuple[HTTPConnection | None, bool]:
        """(a pooled connection to `origin`, checked out; or None, and whether a request
        should wait for one rather than open a connection of its own)."""
        wait_for = False
        shared = self._shared.get(origin)
        if shared:
            for conn in list(shared):
                exp = self.keepalive_expiry
                if not conn.usable() or (conn.active == 0 and exp is not None
                                         and conn.loop.time() - conn.idle_since > exp):
                    self._unshare(conn)
                    continue
                if conn.can_take():
                    if conn.active == 0:
                        self._shared_idle.discard(conn)
                        self._idle_count -= 1
                    conn.active += 1
                    return conn, False
            # Every stream is taken: wait for one.
            wait_for = bool(self._shared.get(origin))
        if not wait_for and self.http2 and origin in self._opening:
            wait_for = True  # the origin's first connection is being made
        idle = None if wait_for else self._idle.get(origin)
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            exp = self.keepalive_expiry
            if (exp is not None and conn.loop.time() - conn.idle_since > exp) \
                    or not conn.is_idle_usable():
                self._drop(conn)
                continue
            self._busy.add(conn)
            return conn, False
        return None, wait_for

    async def acquire(
        self, origin: Origin, connect: Callable[[], Coroutine[Any, Any, HTTPConnection]],
        timeout: float | None, timeout_message: Callable[[], str], fresh: bool = False,
    ) -> tuple[HTTPConnection, bool]:
        """Return (connection, reused): a pooled one (`fresh`: never), else a new one
        once there is room. `timeout_message` is called only on a timeout."""
        loop = end = None  # looked up once needed: a pooled connection needs neither
        while True:
            if self.closed:
                raise RuntimeError("the client is closed")
            wait_for = False
            if not fresh:
                pooled, wait_for = self._pooled(origin)
                if pooled is not None:
                    return pooled, True
            if not wait_for and self._total >= self.max_connections and self._idle_count:
                self._evict_one()
            if not wait_for and self._total < self.max_connections:
                self._total += 1
                first = (self.http2 and origin not in self._opening
                         and origin not in self._h1_origins)
                if first:
                    self._opening[origin] = True
                # A task of its own, so that aclose() can stop it without cancelling the
                # caller's task (whose code would take it for its own cancellation).
                task = asyncio.get_running_loop().create_task(connect())
                self._connecting.add(task)
                try:
                    conn = await task
                except BaseException as exc:
                    self._total -= 1
                    self._wake_one()
                    if not task.done():
                        task.cancel()  # the caller was cancelled: stop connecting too
                    if isinstance(exc, asyncio.CancelledError) and task.cancelled() \
                            and self.closed and not asyncio.current_task().cancelling():
                        raise ConnectError(f"the client was closed while connecting to "
                                           f"{origin[1]}") from None
                    raise
                finally:
                    self._connecting.discard(task)
                    if first:
                        del self._opening[origin]
                        self._wake_all()
                self.connections_opened += 1
                if first and not conn.multiplexed:
                    if len(self._h1_origins) >= 512:
                        self._h1_origins.clear()
                    self._h1_origins.add(origin)  # no need to wait for its first connection
                if conn.multiplexed:
                    shared: Any = conn  # an h2.H2Connection
                    shared.active = 1
                    shared.on_unusable = self._wake_all
                    self._shared.setdefault(origin, []).append(conn)
                else:
                    self._busy.add(conn)
                return conn, False
            if loop is None:
                loop = asyncio.get_running_loop()
                end = None if timeout is None else loop.time() + timeout
            fut = loop.create_future()
            self._waiters.append(fut)
            h = None
            if end is not None:
                h = loop.call_at(end, expire, fut)
            try:
                ok = await fut
            except asyncio.CancelledError:
                if fut.done() and not fut.cancelled() and fut.result() is True:
                    self._wake_one()  # we were handed a free slot: pass it on
                raise
            finally:
                if h is not None:
                    h.cancel()
                try:
                    self._waiters.remove(fut)
                except ValueError:
                    pass
            if ok is False:
                raise PoolTimeout(timeout_message())

    def release(self, conn: HTTPConnection, reusable: bool) -> None:
        if conn.multiplexed:
            self._release_shared(conn, reusable)
            return
        if conn not in self._busy:
            return  # already given back, or closed by aclose()
        self._busy.discard(conn)
        so = conn.ssl_object
        if conn.requests == 1 and so is not None:
            # After the first response was read, so a TLS 1.3 ticket has been processed.
            # A TLS 1.2 session that just resumed is still good and is kept as is; TLS 1.3
            # takes the fresh ticket each time, since a client should not use one ticket
            # twice (RFC 8446, appendix C.4).
            if not (so.session_reused and so.version() == "TLSv1.2"):
                self._keep_session(conn)
        if reusable and not self.closed and self._idle_count < self.max_keepalive:
            now = conn.idle_since = conn.loop.time()
            self._idle.setdefault(conn.origin, []).append(conn)
            self._idle_count += 1
            exp = self.keepalive_expiry
            if exp is not None and (self._sweep is None or self._sweep_at > now + exp):
                self._arm_sweep(conn.loop, now)  # not set, or set for later than this expiry
        else:
            conn.close()
            self._total -= 1
        if self._waiters:
            self._wake_one()

    def _release_shared(self, conn: Any, reusable: bool) -> None:
        """A stream of a multiplexed connection is over (`reusable`: the connection is
        fine as far as that stream could tell)."""
        if conn.active <= 0:
            return  # closed by aclose(), or given back twice
        conn.active -= 1
        if conn.requests == 1:
            self._keep_session(conn)
        if conn.active == 0:
            conn.idle_since = conn.loop.time()
            if self.closed or not conn.usable() or self._idle_count >= self.max_keepalive:
                self._unshare(conn)
            else:
                self._shared_idle.add(conn)
                self._idle_count += 1
                self._arm_sweep(conn.loop, conn.idle_since)
        self._wake_all()

    def _unshare(self, conn: Any) -> None:
        """Take a multiplexed connection out of the pool: no new stream goes to it, and it
        closes once the streams still on it are over (at once if none are)."""
        conns = self._shared.get(conn.origin)
        if conns is None or conn not in conns:
            if conn.active == 0:
                self._draining.discard(conn)
                conn.close()
            return
        conns.remove(conn)
        if not conns:
            del self._shared[conn.origin]
        if conn in self._shared_idle:
            self._shared_idle.discard(conn)
            self._idle_count -= 1
        self._total -= 1
        conn.broken = True
        if conn.active == 0:
            conn.close()
        else:
            self._draining.add(conn)
        self._wake_all()

    def _wake_all(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(True)

    def _drop(self, conn: HTTPConnection) -> None:
        conn.close()
        self._total -= 1

    def _evict_one(self) -> None:
        """Close the longest-idle connection of any origin to make room for a new one."""
        oldest: HTTPConnection | None = None
        for conns in self._idle.values():
            if conns and (oldest is None or conns[0].idle_since < oldest.idle_since):
                oldest = conns[0]
        for conn in self._shared_idle:
            if oldest is None or conn.idle_since < oldest.idle_since:
                oldest = conn
        if oldest is None:
            return
        if oldest.multiplexed:
            self._unshare(oldest)
            return
        self._idle[oldest.origin].remove(oldest)
        self._idle_count -= 1
        self._drop(oldest)

    def _arm_sweep(self, loop: asyncio.AbstractEventLoop, idle_since: float) -> None:
        """Make sure the timer fires by the time a connection idle since `idle_since`
        expires (one timer for the pool, set for the earliest expiry)."""
        exp = self.keepalive_expiry
        if exp is None or self.closed:
            return
        due = idle_since + exp
        if self._sweep is not None:
            if self._sweep_at <= due:
                return
            self._sweep.cancel()
        self._sweep_at = due
        self._sweep = loop.call_at(due, self._expire_idle, loop)

    def _expire_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close the idle connections that have been idle for `keepalive_expiry`, and set
        the timer for the next one to expire."""
        self._sweep = None
        exp = self.keepalive_expiry
        if exp is None or self.closed:
            return
        now = loop.time()
        nxt: float | None = None
        for origin, conns in list(self._idle.items()):
            keep = []
            for conn in conns:
                if now - conn.idle_since >= exp:
                    self._idle_count -= 1
                    self._drop(conn)
                else:
                    keep.append(conn)
                    if nxt is None or conn.idle_since < nxt:
                        nxt = conn.idle_since
            if keep:
                self._idle[origin] = keep
            else:
                del self._idle[origin]
        for conn in list(self._shared_idle):
            if now - conn.idle_since >= exp:
                self._unshare(conn)
            elif nxt is None or conn.idle_since < nxt:
                nxt = conn.idle_since
        if nxt is not None:
            self._arm_sweep(loop, nxt)
        self._wake_all()  # room for a new connection, if a request waits for one

    def _wake_one(self) -> None:
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(True)
                return

    async def aclose(self) -> None:
        """Close every connection, idle or still checked out (a stream left open): a
        request still using one then fails with a RemoteProtocolError. A connection whose
        server is not reading is aborted rather than left waiting to drain, and aclose
        returns once every socket is closed, so no descriptor outlives the client."""
        self.closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        closing = [conn for conns in self._idle.values() for conn in conns]
        closing += self._busy
        closing += [conn for conns in self._shared.values() for conn in conns]
        self._total += len(self._draining)  # not counted any more, but closed here too
        closing += self._draining
        self._draining.clear()
        self._shared.clear()
        self._shared_idle.clear()
        for conn in closing:
            conn.close("the client was closed")
        self._total -= len(closing)
        self._idle.clear()
        self._idle_count = 0
        self._busy.clear()
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(True)
        connecting = list(self._connecting)
        for task in connecting:
            task.cancel()  # a half-made connection closes its socket as it unwinds
        if connecting:
            await asyncio.wait(connecting, timeout=_CLOSE_WAIT)
            await asyncio.sleep(0)  # their transports' close callbacks
        if closing:
            await asyncio.gather(*(conn.wait_closed(_CLOSE_WAIT) for conn in closing))


def connection_over(stream: NetworkStream, http1: bool = True,
                    http2: bool = False) -> HTTPConnection | H2Connection:
    """The connection kind that takes over a stream that is up, as the server chose in
    ALPN: HTTP/2 for h2 (when `http2`), or when HTTP/2 is the only protocol allowed and
    ALPN chose none (h2c to an http:// origin: prior knowledge); else HTTP/1.1 (or
    HTTP/1.0, when a context of the caller's offered http/1.0)."""
    so = stream.ssl_object
    proto = None if so is None else so.selected_alpn_protocol()
    if http2 and (proto == "h2" or proto is None and not http1):
        return H2Connection(stream)
    if proto not in (None, "http/1.1", "http/1.0"):
        raise ConnectError(f"{stream.origin[1]} negotiated ALPN {proto!r}, not http/1.1")
    return HTTPConnection(stream)


# The longest aclose() waits for a transport to report its socket closed (it is normally
# the next loop iteration: a connection that cannot drain is aborted, not closed).
_CLOSE_WAIT = 1.0
