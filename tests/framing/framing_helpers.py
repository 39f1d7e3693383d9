"""Helpers for the framer tests: a collecting FrameProtocol and a direct feeder."""
from __future__ import annotations

import asyncio
import os

from corenet.framing import FrameProtocol, encode_header


class Collector(FrameProtocol):
    """Keeps a copy of every frame and records what connection_lost received."""

    def __init__(self, *args, expect: int | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.frames: list[bytes] = []
        self.expect = expect
        self.buffer_sizes: list[int] = []
        self.lost: list[BaseException | None] = []
        self.done: asyncio.Future | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self.done = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint: int):
        buf = super().get_buffer(sizehint)
        self.buffer_sizes.append(len(buf))
        return buf

    def frame_received(self, frame: memoryview) -> None:
        self.frames.append(bytes(frame))
        if self.expect is not None and len(self.frames) == self.expect and self.done:
            if not self.done.done():
                self.done.set_result(None)

    def connection_lost(self, exc) -> None:
        self.lost.append(exc)
        if self.done is not None and not self.done.done():
            self.done.set_result(None)


def encode(frames, header_size: int = 4, byteorder: str = "big") -> bytes:
    return b"".join(encode_header(len(f), header_size, byteorder) + f for f in frames)


def feed(proto: FrameProtocol, data: bytes, cuts=()) -> None:
    """Deliver ``data`` through get_buffer/buffer_updated, one read per piece between
    ``cuts`` (each read further limited by the size of the buffer handed out)."""
    points = sorted({c for c in cuts if 0 < c < len(data)}) + [len(data)]
    data = memoryview(data)
    pos = 0
    for point in points:
        while pos < point:
            buf = proto.get_buffer(-1)
            assert len(buf) > 0, "get_buffer handed out an empty buffer"
            n = min(len(buf), point - pos)
            buf[:n] = data[pos:pos + n]
            proto.buffer_updated(n)
            pos += n



def open_sockets() -> set[int]:
    """Descriptors of this process that are sockets: what a leaked connection leaves
    behind. (A loop may open other descriptors lazily, as uvloop does /dev/null, and
    close them with itself.)"""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("socket:"):
                found.add(int(name))
        except OSError:  # the listing's own descriptor, already gone
            pass
    return found
