"""What users hold: transports that are instances of asyncio's own classes.

The work is done by Cython engines (``_stream.StreamTransport``, ``_datagram.
DatagramTransport``) that epoll calls directly. A Cython class cannot also derive from
``asyncio.Transport`` (whose ``__slots__`` lay out the instance), so each engine has a face:
a small asyncio.Transport subclass holding the engine in a slot. The face's hot methods are
Cython functions that find the engine by that slot's offset, so ``transport.write(data)``
costs no extra Python frame and no memory per connection.

A face has a ``__dict__`` too, made only when something sets an attribute of its own (as
``unittest.mock.patch.object(transport, "write")`` does): the hot methods stay class
attributes, found by CPython's specialised method lookup.
"""
from __future__ import annotations

import asyncio
from asyncio import constants

from corenet import _datagram, _stream, _transport


class _Face:
    """What both faces do: hand every call to the engine. (The engine warns about a transport
    garbage collected while still open, as asyncio's do.)"""

    __slots__ = ()

    def __init__(self, engine) -> None:
        self._engine = engine

    close = _transport.face_close
    is_closing = _transport.face_is_closing
    # get_extra_info is asyncio's BaseTransport method, which reads this (see face_extra).
    _extra = property(_transport.face_extra)
    get_write_buffer_size = _transport.face_get_write_buffer_size

    def __repr__(self) -> str:
        e = self._engine
        state = "closing" if e.is_closing() else "open"
        return f"<corenet.{type(self).__name__} fd={e._fd} {state}>"

    def abort(self) -> None:
        self._engine.abort()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._engine.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._engine.set_write_buffer_limits(high, low)

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._engine.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._engine.get_protocol()

    @property
    def _sock(self):
        return self._engine._sock


class SocketTransport(_Face, asyncio.transports._FlowControlMixin, asyncio.Transport):
    """A TCP or Unix stream transport of corenet's loop.

    It is an ``asyncio.transports._FlowControlMixin`` too, as asyncio's socket transports
    are, because asyncio's sendfile fallback insists on it; the engine keeps the flow
    control state.
    """

    __slots__ = ("_engine", "__weakref__", "__dict__")
    _sendfile_compatible = constants._SendfileMode.TRY_NATIVE
    _start_tls_compatible = True

    write = _stream.face_write
    writelines = _stream.face_writelines
    pause_reading = _stream.face_pause_reading
    resume_reading = _stream.face_resume_reading
    is_reading = _stream.face_is_reading

    def write_eof(self) -> None:
        self._engine.write_eof()

    def can_write_eof(self) -> bool:
        return True

    # What asyncio's own helpers (sslproto, sendfile) and tests reach for.
    @property
    def _protocol_paused(self) -> bool:
        return self._engine._protocol_paused

    @property
    def _paused(self) -> bool:
        """Reading is paused (pause_reading), as in asyncio's socket transports."""
        return self._engine._reading_paused

    @property
    def _loop(self):
        return self._engine._loop

    def _force_close(self, exc) -> None:
        self._engine._force_close(exc)

    def _make_empty_waiter(self):
        return self._engine._make_empty_waiter()

    def _reset_empty_waiter(self) -> None:
        self._engine._reset_empty_waiter()


class DatagramTransport(_Face, asyncio.Transport, asyncio.DatagramTransport):
    """A UDP or Unix datagram transport of corenet's loop."""

    __slots__ = ("_engine", "__weakref__", "__dict__")

    sendto = _datagram.face_sendto


_stream.register_face(SocketTransport)
_datagram.register_face(DatagramTransport)


def make_stream(loop, sock, protocol, waiter=None, extra=None, server=None) -> SocketTransport:
    engine = _stream.StreamTransport(sock.fileno())
    face = SocketTransport(engine)
    engine._start(loop, sock, protocol, face, waiter, extra, server)
    return face


def make_datagram(loop, sock, protocol, address=None, waiter=None, extra=None) -> DatagramTransport:
    engine = _datagram.DatagramTransport(sock.fileno())
    face = DatagramTransport(engine)
    engine._start(loop, sock, protocol, face, address, waiter, extra)
    return face
