"""Length-prefixed framing: ``[length][payload]`` with a 1, 2, 4 or 8-byte length.

``FrameProtocol`` is an ``asyncio.BufferedProtocol`` to subclass (zero-copy, frames as
memoryviews); ``open_framed_connection``/``start_framed_server`` give ``FramedStream``
objects for code that prefers ``await``. Both run on any asyncio loop.
"""
from __future__ import annotations

from corenet.framing._protocol import FrameProtocol, encode_header
from corenet.framing.errors import FrameTooLarge
from corenet.framing.streams import FramedStream, open_framed_connection, start_framed_server

__all__ = [
    "FrameProtocol",
    "FrameTooLarge",
    "FramedStream",
    "encode_header",
    "open_framed_connection",
    "start_framed_server",
]
