"""One query over TCP to an authority: ``[2-byte big-endian length][message]``, the answer
framed the same, on any asyncio loop (a truncated UDP answer is asked again this way)."""
from __future__ import annotations

import asyncio
import struct

from resolver.upstream.errors import UpstreamFailure, UpstreamTimeout, failure


class _TCPQuery(asyncio.Protocol):
    def __init__(self, fut: asyncio.Future, max_size: int) -> None:
        self.fut = fut
        self.buf = bytearray()
        self.max_size = max_size

    def data_received(self, data: bytes) -> None:
        if self.fut.done():
            return
        self.buf += data
        if len(self.buf) >= 2:
            need = (self.buf[0] << 8) | self.buf[1]
            if need > self.max_size or need < 12:
                self.fut.set_exception(UpstreamFailure(f"bad TCP frame length {need}"))
            elif len(self.buf) >= 2 + need:
                self.fut.set_result(bytes(self.buf[2:2 + need]))

    def connection_lost(self, exc) -> None:
        if not self.fut.done():
            self.fut.set_exception(UpstreamFailure("TCP connection closed before the answer"))


async def tcp_exchange(addr: str, port: int, wire: bytes, timeout: float,
                       max_size: int = 65535) -> bytes:
    """One query over TCP: [2-byte big-endian length][message], the answer framed the same."""
    loop = asyncio.get_running_loop()
    fut = loop.create_future()

    async def go() -> bytes:
        transport, _ = await loop.create_connection(lambda: _TCPQuery(fut, max_size), addr, port)
        try:
            transport.writelines([struct.pack("!H", len(wire)), wire])
            return await fut
        finally:
            transport.close()

    try:
        return await asyncio.wait_for(go(), timeout)
    except asyncio.TimeoutError:
        raise UpstreamTimeout(addr) from None
    except OSError as exc:
        raise failure(addr, exc) from None
