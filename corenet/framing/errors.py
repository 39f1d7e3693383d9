"""Errors of the framer."""
from __future__ import annotations


class FrameTooLarge(ConnectionError, ValueError):
    """The peer announced a frame longer than ``max_frame_size``; the connection is closed.

    A ConnectionError, so asyncio transports treat it like other peer faults (passed to
    ``connection_lost``, logged only in debug mode: a peer cannot flood the error log), and a
    ValueError, since it is bad input.
    """

    def __init__(self, length: int, max_frame_size: int) -> None:
        super().__init__(
            f"peer announced a frame of {length} bytes, above max_frame_size={max_frame_size}"
        )
        self.length = length
        self.max_frame_size = max_frame_size
