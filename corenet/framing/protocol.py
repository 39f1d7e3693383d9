"""``FrameProtocol``: the length-prefixed framer as an asyncio.BufferedProtocol to subclass."""
from __future__ import annotations

import asyncio
from typing import Any

from corenet.framing._receiver import FrameReceiver

DEFAULT_MAX_FRAME = 16 * 1024 * 1024
DEFAULT_BUFFER = 256 * 1024


class FrameProtocol(asyncio.BufferedProtocol):
    """A length-prefixed framer to subclass: ``[length][payload]`` with a 1, 2, 4 or
    8-byte unsigned length in either byte order.

    Override ``frame_received(frame)``: it is called once per complete frame with a
    memoryview into the framer's own receive buffer (no copy). The view is valid only
    during the call: its memory is reused for later frames, and the view object itself is
    reused for the next frame when nothing else holds it. To keep a frame, copy it
    (``bytes(frame)``) or parse what you need before returning; a kept view is never
    repointed, but the bytes behind it will be overwritten.

    Frames that fit ``buffer_size`` (per connection, allocated on the first read) are
    received in place, the buffer compacted only when the current frame or a useful read
    no longer fits at its end. A larger frame gets a buffer of exactly its length, and
    ``get_buffer`` hands the transport exactly its missing part, so the kernel writes it
    straight there. A length above ``max_frame_size`` raises ``FrameTooLarge`` out of
    ``buffer_updated`` before any memory is reserved for it: the transport then closes the
    connection and passes the error to ``connection_lost``. Frames already received are
    delivered even if ``frame_received`` pauses reading or closes the transport.

    ``frame_received`` is looked up once, at the first frame, and called as a bound method.
    ``send_frame(payload)`` writes a frame. Subclasses overriding ``__init__`` should call
    the base one (else the defaults apply); overriding ``connection_made`` must call it.

    The parsing lives in a Cython ``FrameReceiver`` the protocol owns, not in a base class:
    instances stay plain Python objects, whose attributes CPython accesses fastest.
    """

    transport: asyncio.Transport | None = None
    _framer: FrameReceiver | None = None

    def __init__(self, header_size: int = 4, byteorder: str = "big",
                 max_frame_size: int = DEFAULT_MAX_FRAME, *,
                 buffer_size: int = DEFAULT_BUFFER) -> None:
        self._framer = FrameReceiver(self, header_size, byteorder, max_frame_size,
                                     buffer_size)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        framer = self._framer
        if framer is None:  # a subclass __init__ did not call ours
            framer = self._framer = FrameReceiver(self)
        return framer.get_buffer(sizehint)

    def buffer_updated(self, nbytes: int) -> None:
        framer = self._framer
        if framer is None:
            raise ValueError("buffer_updated() before get_buffer()")
        framer.buffer_updated(nbytes)

    def frame_received(self, frame: memoryview) -> None:
        raise NotImplementedError("subclasses of FrameProtocol must define frame_received()")

    def send_frame(self, payload: bytes | bytearray | memoryview) -> None:
        """Write ``payload`` as one frame: header and payload go to ``transport.writelines``
        as two buffers, never concatenated here."""
        transport = self.transport
        if transport is None:
            raise RuntimeError("send_frame() before connection_made()")
        framer = self._framer
        if framer is None:
            framer = self._framer = FrameReceiver(self)
        transport.writelines((framer.header_for(payload), payload))

    def pending_frame(self) -> tuple[bytes, int | None] | None:
        """``(received, expected)`` for a frame begun but not finished, else None."""
        return None if self._framer is None else self._framer.pending_frame()

    def _option(name: str) -> Any:  # noqa: N805 - builds read-only properties below
        return property(lambda self: getattr(self._framer or FrameReceiver(self), name),
                        doc=f"The framer's {name}.")

    header_size = _option("header_size")
    byteorder = _option("byteorder")
    max_frame_size = _option("max_frame_size")
    buffer_size = _option("buffer_size")
    del _option
