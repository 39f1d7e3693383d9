"""The framer receives in place: 100 MiB through a socket allocates well under 1 MiB."""
from __future__ import annotations

import asyncio
import socket
import threading
import tracemalloc

from corenet.framing import FrameProtocol, encode_header

FRAME = 16 * 1024
TOTAL = 100 * 1024 * 1024


class Counter(FrameProtocol):
    def __init__(self, done: asyncio.Future) -> None:
        super().__init__(buffer_size=64 * 1024)
        self.done = done
        self.frames = 0
        self.nbytes = 0
        self.bad = 0

    def frame_received(self, frame: memoryview) -> None:
        self.frames += 1
        self.nbytes += len(frame)
        if frame[0] != self.frames % 251:  # each frame's first byte numbers it
            self.bad += 1

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(exc)


def test_receiving_100_mib_allocates_under_1_mib(loop, run):
    count = TOTAL // FRAME
    # 251 distinct frames, repeated: built before tracing, sent by a thread that
    # allocates nothing while it runs
    frames = [encode_header(FRAME) + bytes([i % 251]) + b"\xaa" * (FRAME - 1)
              for i in range(1, 252)]
    blob = memoryview(b"".join(frames))
    a, b = socket.socketpair()

    def send() -> None:
        try:
            sent = 0
            while sent < count:
                n = min(251, count - sent)
                b.sendall(blob[:n * (FRAME + 4)])
                sent += n
        finally:
            b.close()

    sender = threading.Thread(target=send)

    async def main():
        done = loop.create_future()
        transport, proto = await loop.create_connection(lambda: Counter(done), sock=a)
        sender.start()
        exc = await done
        return exc, proto

    tracemalloc.start()
    try:
        exc, proto = run(main(), timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        sender.join(10)
    assert exc is None
    assert proto.frames == count and proto.nbytes == count * FRAME
    assert proto.bad == 0
    # the 64 KiB receive buffer and small change: no per-read bytes (asyncio's Protocol
    # path would hold 256 KiB chunks), no growing buffer, no per-frame copies kept
    assert peak < 128 * 1024, f"peak {peak} bytes"
