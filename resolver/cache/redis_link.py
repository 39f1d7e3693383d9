"""One process's connection to the shared cache's Redis, its commands pipelined.

Redis answers a connection's commands in the order they came, so one connection carries
every look-up, write and delete of a process: a command is written without waiting for the
replies before it (those sent in one turn of the loop together, in one write), and each
reply resolves the Future of the oldest command still waiting. There is no pool and no task per command; the protocol itself (RESP)
is hiredis's: ``pack_command`` writes a command, its ``Reader`` reads the replies.

A command sent while the connection is being made is written once it is made. When the
connection fails, is closed by the server or is aborted (``abort``: the caller gave up on a
command that did not come back in time), every command waiting on it fails with
ConnectionError and the next command makes a new one. A command whose caller stopped waiting
(its Future cancelled) still has its reply read, and dropped, in its turn.
"""
from __future__ import annotations

import asyncio
import collections

try:
    import hiredis
except ImportError as exc:          # the extra not installed
    raise ImportError("the shared cache (cachedb-backend = \"redis\") needs hiredis: "
                      "pip install 'corenet-io[cachedb]'") from exc


class RedisReplyError(Exception):
    """Redis answered a command with an error; the message is its text."""


class _Connection(asyncio.Protocol):
    """One connection: the commands written on it and waiting for their replies, in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop, where: str = "redis") -> None:
        self.loop = loop
        self.where = where
        self.transport: asyncio.Transport | None = None
        self.unsent: list[bytes] = []           # commands not written yet
        self.flushing = False                   # a write of them is scheduled
        # each command's Future; None for those that open the connection (AUTH, SELECT)
        self.waiting: collections.deque[asyncio.Future | None] = collections.deque()
        self.reader = hiredis.Reader()
        self.lost = False

    def send(self, command: bytes, reply: asyncio.Future | None) -> None:
        """Queues ``command``: the commands sent within one turn of the loop (a burst of
        misses read at once) go out together, in one write, at its end. ``reply`` None:
        a command that opens the connection, which Redis must not refuse."""
        self.waiting.append(reply)
        self.unsent.append(command)
        if self.transport is not None and not self.flushing:
            self.flushing = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flushing = False
        if self.transport is not None and self.unsent:
            unsent, self.unsent = self.unsent, []
            self.transport.writelines(unsent)

    def connection_made(self, transport) -> None:
        if self.lost:
            transport.abort()
            return
        self.transport = transport
        self.flush()

    def data_received(self, data: bytes) -> None:
        reader, waiting = self.reader, self.waiting
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(ConnectionError(f"redis sent what is not RESP: {exc}"))
                return
            if reply is False:
                return
            if not waiting:
                self.abort(ConnectionError("redis sent a reply to no command"))
                return
            fut = waiting.popleft()
            if fut is None:                     # AUTH or SELECT: refused, no use going on
                if isinstance(reply, hiredis.ReplyError):
                    self.abort(ConnectionError(f"{self.where} refused the connection's "
                                               f"opening: {reply}"))
                    return
                continue
            if fut.done():                      # its caller stopped waiting
                continue
            if isinstance(reply, hiredis.ReplyError):
                fut.set_exception(RedisReplyError(str(reply)))
            else:
                fut.set_result(reply)

    def eof_received(self) -> bool:
        return False                            # the transport closes: connection_lost

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.fail(ConnectionError(f"connection to redis lost: {exc}" if exc else
                                  "redis closed the connection"))

    def fail(self, exc: Exception) -> None:
        """Every command waiting fails with ``exc``; the connection takes no more."""
        self.lost = True
        self.unsent.clear()
        waiting, self.waiting = self.waiting, collections.deque()
        for fut in waiting:
            if fut is not None and not fut.done():
                fut.set_exception(exc)

    def abort(self, exc: Exception) -> None:
        if self.transport is not None:
            self.transport.abort()
            self.transport = None
        self.fail(exc)


class RedisLink:
    """Commands to one Redis server (``path``: its Unix socket; else ``host``, ``port``),
    pipelined on one connection made on first use and again after a failure, within
    ``connect_timeout`` seconds. Each connection's first commands are ``AUTH password``
    with a ``password`` and ``SELECT db`` with a ``db`` other than 0: when Redis refuses
    one, the connection is aborted and the commands after it fail (ConnectionError, with
    Redis's reason)."""

    def __init__(self, *, path: str | None = None, host: str = "127.0.0.1", port: int = 6379,
                 connect_timeout: float = 1.0, password: str | None = None,
                 db: int = 0) -> None:
        self.path, self.host, self.port = path, host, port
        self.connect_timeout = connect_timeout
        self.conn: _Connection | None = None
        self.connecting: set[asyncio.Task] = set()
        self.where = f"redis at {path}" if path else f"redis at {host}:{port}"
        self.opening = [hiredis.pack_command(c) for c in (
            *((("AUTH", password),) if password else ()), *((("SELECT", db),) if db else ()))]

    @property
    def outstanding(self) -> int:
        """Commands sent and not yet answered (or failed)."""
        return 0 if self.conn is None else len(self.conn.waiting)

    def send(self, loop: asyncio.AbstractEventLoop, *args: bytes | str | int) -> asyncio.Future:
        """Sends the command ``args``: a Future of its reply (bytes, an int, None for a
        missing key, a list), or of RedisReplyError or ConnectionError. Cancel it to stop
        waiting."""
        conn = self.conn
        if conn is None or conn.lost:
            conn = self.conn = _Connection(loop, self.where)
            task = loop.create_task(self._connect(loop, conn))
            self.connecting.add(task)
            task.add_done_callback(self.connecting.discard)
            for command in self.opening:
                conn.send(command, None)
        reply = loop.create_future()
        conn.send(hiredis.pack_command(args), reply)
        return reply

    async def _connect(self, loop: asyncio.AbstractEventLoop, conn: _Connection) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                if self.path:
                    await loop.create_unix_connection(lambda: conn, self.path)
                else:
                    await loop.create_connection(lambda: conn, self.host, self.port)
        except TimeoutError:
            conn.abort(ConnectionError(f"cannot connect to {self.where}: timed out"))
        except OSError as exc:
            conn.abort(ConnectionError(f"cannot connect to {self.where}: {exc}"))

    def abort(self, why: str) -> None:
        """Ends the connection: every command waiting on it fails (ConnectionError)."""
        conn, self.conn = self.conn, None
        if conn is not None:
            conn.abort(ConnectionError(why))

    def close(self) -> None:
        self.abort("closed")
        for task in list(self.connecting):
            task.cancel()
