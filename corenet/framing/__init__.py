"""Length-prefixed framing: ``[length][payload]`` with a 1, 2, 4 or 8-byte length.

``FrameProtocol`` is an ``asyncio.BufferedProtocol`` to subclass (zero-copy, frames as
memoryviews); ``open_framed_connection``/``start_framed_server`` give ``FramedStream``
objects for code that prefers ``await``. Both run on any asyncio loop.
"""
from __future__ import annotations

from corenet.framing._receiver import FrameReceiver, encode_header
from corenet.framing.protocol import FrameProtocol
from corenet.framing.errors import FrameTooLarge
from corenet.framing.streams import FramedStream, open_framed_connection, start_framed_server

__all__ = [
    "FrameProtocol",
    "FrameReceiver",
    "FrameTooLarge",
    "FramedStream",
    "encode_header",
    "open_framed_connection",
    "start_framed_server",
]
