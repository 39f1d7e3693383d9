"""Streams-style framing for code that prefers ``await``: ``FramedStream`` on top of
``FrameProtocol``, with read and write flow control as asyncio's streams have."""
from __future__ import annotations

import asyncio
import collections
from typing import Any, Awaitable, Callable

from corenet.framing.protocol import FrameProtocol

DEFAULT_MAX_FRAME = 16 * 1024 * 1024
DEFAULT_LIMIT = 1024 * 1024
# What a queued frame costs beyond its payload, so that a flood of empty frames is
# bounded by ``limit`` too.
FRAME_OVERHEAD = 64


class _StreamProtocol(FrameProtocol):
    """Queues copies of frames for ``FramedStream``; pauses reading above ``limit``."""

    def __init__(self, header_size: int, byteorder: str, max_frame_size: int,
                 buffer_size: int, limit: int,
                 on_connected: Callable[[_StreamProtocol], None] | None = None) -> None:
        super().__init__(header_size, byteorder, max_frame_size, buffer_size=buffer_size)
        self._loop = asyncio.get_running_loop()
        self._limit = limit
        self._frames: collections.deque[bytes] = collections.deque()
        self._queued = 0
        self._reading_paused = False
        self._eof = False
        self._exc: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._writing_paused = False
        self._drain_waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._lost = False
        self._closed = self._loop.create_future()
        self._on_connected = on_connected

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._on_connected is not None:
            self._on_connected(self)
            self._on_connected = None

    def frame_received(self, frame: memoryview) -> None:
        self._frames.append(bytes(frame))
        self._queued += len(frame) + FRAME_OVERHEAD
        if self._queued > self._limit and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        pending = self.pending_frame()
        if pending is not None and self._exc is None:
            self._exc = asyncio.IncompleteReadError(pending[0], pending[1])
        self._eof = True
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        self._eof = True
        if exc is not None and self._exc is None:
            self._exc = exc
        self._wake()
        while self._drain_waiters:
            waiter = self._drain_waiters.popleft()
            if not waiter.done():
                if exc is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(exc)
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        while self._drain_waiters:
            waiter = self._drain_waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def _consumed(self, frame: bytes) -> None:
        self._queued -= len(frame) + FRAME_OVERHEAD
        if self._reading_paused and self._queued <= self._limit // 2:
            self._reading_paused = False
            if self.transport is not None:
                self.transport.resume_reading()


class FramedStream:
    """A framed connection: ``read_frame``/``write_frame``/``drain``/``close``.

    ``read_frame()`` returns a frame as ``bytes``, or None once the peer has closed cleanly
    between frames; it raises ``asyncio.IncompleteReadError`` if the peer closed inside a
    frame, ``FrameTooLarge`` for an oversized frame, or the connection's error.
    """

    def __init__(self, protocol: _StreamProtocol) -> None:
        self._protocol = protocol
        self._transport = protocol.transport

    # -- reading ---------------------------------------------------------------------------

    async def read_frame(self) -> bytes | None:
        p = self._protocol
        while not p._frames:
            if p._exc is not None:
                raise p._exc
            if p._eof:
                return None
            if p._waiter is not None:
                raise RuntimeError("read_frame() called while another coroutine is waiting")
            p._waiter = p._loop.create_future()
            try:
                await p._waiter
            finally:
                p._waiter = None
        frame = p._frames.popleft()
        p._consumed(frame)
        return frame

    def __aiter__(self) -> FramedStream:
        return self

    async def __anext__(self) -> bytes:
        frame = await self.read_frame()
        if frame is None:
            raise StopAsyncIteration
        return frame

    # -- writing ---------------------------------------------------------------------------

    def write_frame(self, payload: bytes | bytearray | memoryview) -> None:
        """Queue one frame; a mutable payload may be reused once this returns.

        Raises the connection's error (or ConnectionResetError) once it is lost."""
        p = self._protocol
        if p._lost:
            raise p._exc if p._exc is not None else ConnectionResetError("Connection lost")
        p.send_frame(payload)

    async def drain(self) -> None:
        """Wait until the write buffer is below its high-water mark."""
        p = self._protocol
        if p._lost:
            raise p._exc if p._exc is not None else ConnectionResetError("Connection lost")
        if self._transport.is_closing():
            await asyncio.sleep(0)  # let connection_lost run, as asyncio's drain does
            if p._lost:
                raise p._exc if p._exc is not None else ConnectionResetError("Connection lost")
        if not p._writing_paused:
            return
        waiter = p._loop.create_future()
        p._drain_waiters.append(waiter)
        await waiter

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def write_eof(self) -> None:
        self._transport.write_eof()

    # -- closing ---------------------------------------------------------------------------

    def close(self) -> None:
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._protocol._closed)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    async def __aenter__(self) -> FramedStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()
        await self.wait_closed()


def _factory(header_size: int, byteorder: str, max_frame_size: int, buffer_size: int,
             limit: int, on_connected=None) -> Callable[[], _StreamProtocol]:
    if limit <= 0:
        raise ValueError("limit must be positive")
    # Validate the framer options now, not in the first connection's protocol factory.
    FrameProtocol(header_size, byteorder, max_frame_size, buffer_size=buffer_size)
    return lambda: _StreamProtocol(header_size, byteorder, max_frame_size, buffer_size,
                                   limit, on_connected)


async def open_framed_connection(
    host: str | None = None, port: int | None = None, *, header_size: int = 4,
    byteorder: str = "big", max_frame_size: int = DEFAULT_MAX_FRAME,
    buffer_size: int = 256 * 1024, limit: int = DEFAULT_LIMIT, **kwargs: Any,
) -> FramedStream:
    """Connect (``loop.create_connection(host, port, **kwargs)``) and return a stream.

    ``limit`` bounds the bytes of frames received but not yet read before reading pauses.
    """
    loop = asyncio.get_running_loop()
    factory = _factory(header_size, byteorder, max_frame_size, buffer_size, limit)
    _, protocol = await loop.create_connection(factory, host, port, **kwargs)
    return FramedStream(protocol)


async def start_framed_server(
    handler: Callable[[FramedStream], Awaitable[None]], host: Any = None,
    port: int | None = None, *, header_size: int = 4, byteorder: str = "big",
    max_frame_size: int = DEFAULT_MAX_FRAME, buffer_size: int = 256 * 1024,
    limit: int = DEFAULT_LIMIT, **kwargs: Any,
) -> asyncio.Server:
    """Serve ``handler(stream)`` per connection (``loop.create_server(..., **kwargs)``).

    The stream is closed when the handler returns; an exception from the handler is
    reported to the loop's exception handler and closes that connection only.
    """
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task[None]] = set()

    async def serve(stream: FramedStream) -> None:
        try:
            await handler(stream)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            loop.call_exception_handler({
                "message": "unhandled exception in framed server handler",
                "exception": exc,
                "transport": stream._transport,
            })
        finally:
            stream.close()

    def connected(protocol: _StreamProtocol) -> None:
        task = loop.create_task(serve(FramedStream(protocol)))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    factory = _factory(header_size, byteorder, max_frame_size, buffer_size, limit, connected)
    return await loop.create_server(factory, host, port, **kwargs)
