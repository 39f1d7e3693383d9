"""The network stream under the client's connections, and the connection kind that takes it
over once it is up (`pool.connection_over`): what the server sent before the takeover is
read by the kind, not lost and not mistaken for an answer."""
from __future__ import annotations

import asyncio
import socket
import struct

import pytest

from corenet.https import ConnectError
from corenet.https.connection import HTTPConnection
from corenet.https.h2 import H2Connection
from corenet.https.limits import DEFAULT_LIMITS
from corenet.https.network import NetworkStream
from corenet.https.pool import connection_over

_SETTINGS = 0x4
_MAX_CONCURRENT_STREAMS = 0x3


def settings_frame(*settings: tuple[int, int]) -> bytes:
    payload = b"".join(struct.pack(">HI", ident, value) for ident, value in settings)
    return struct.pack(">I", len(payload))[1:] + bytes([_SETTINGS, 0]) + b"\0\0\0\0" + payload


async def stream_with_early_bytes(early: bytes, scheme: str = "http"):
    """A stream up over a socket pair whose server end wrote `early` before anything was
    asked; returns (stream, server socket) once those bytes reached the stream."""
    loop = asyncio.get_running_loop()
    client, server = socket.socketpair()
    server.sendall(early)
    stream = NetworkStream(loop, (scheme, "localhost", 80), DEFAULT_LIMITS)
    await loop.create_unix_connection(lambda: stream, sock=client)
    for _ in range(200):  # bounded: loopback delivers at once
        if len(stream._early) >= len(early):
            break
        await asyncio.sleep(0.005)
    return stream, server


def test_h2c_reads_the_servers_settings_sent_before_the_takeover(run):
    """A server may send its SETTINGS before the client's preface: the HTTP/2 connection
    that takes the stream over applies them."""
    async def main():
        frame = settings_frame((_MAX_CONCURRENT_STREAMS, 7))
        stream, server = await stream_with_early_bytes(frame)
        try:
            assert bytes(stream._early) == frame  # still waiting for a connection kind
            conn = connection_over(stream, http1=False, http2=True)
            assert isinstance(conn, H2Connection) and conn.multiplexed
            assert conn.h2.max_concurrent == 7
            assert conn.can_take() and not conn.closed
            server.settimeout(2)
            preface = server.recv(24)
            conn.close()
            return preface
        finally:
            server.close()

    assert run(main()) == b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def test_http11_closes_a_stream_whose_server_spoke_first(run):
    """Bytes before any request are no answer to trust: the HTTP/1.1 connection that
    takes the stream over closes it and is never pooled."""
    async def main():
        stream, server = await stream_with_early_bytes(b"HTTP/1.1 200 OK\r\n\r\n")
        try:
            conn = connection_over(stream, http1=True, http2=True)
            assert isinstance(conn, HTTPConnection) and not conn.multiplexed
            return conn.closed, conn.broken, conn.is_idle_usable()
        finally:
            server.close()

    assert run(main()) == (True, True, False)


def test_early_bytes_are_bounded(run):
    """A server that streams bytes at a stream nobody has taken over yet is cut off past a
    response head's worth (max_header_bytes), not buffered without end."""
    async def main():
        limit = DEFAULT_LIMITS.max_header_bytes
        loop = asyncio.get_running_loop()
        client, server = socket.socketpair()
        stream = NetworkStream(loop, ("http", "localhost", 80), DEFAULT_LIMITS)
        await loop.create_unix_connection(lambda: stream, sock=client)
        server.setblocking(False)
        sent = 0
        try:
            for _ in range(400):  # bounded
                if stream.closed:
                    break
                try:
                    sent += server.send(b"x" * 16384)
                except BlockingIOError:
                    pass
                await asyncio.sleep(0.002)
            return stream.closed, len(stream._early), limit, sent
        finally:
            server.close()

    closed, kept, limit, sent = run(main())
    assert closed and sent > limit
    assert kept <= limit + 256 * 1024  # at most one receive past the bound


def test_an_alpn_protocol_neither_kind_speaks_is_a_connect_error():
    class Chose:
        def selected_alpn_protocol(self):
            return "spdy/3"

    stream = NetworkStream.__new__(NetworkStream)
    stream.ssl_object = Chose()
    stream.origin = ("https", "example.test", 443)
    with pytest.raises(ConnectError, match="negotiated ALPN 'spdy/3'"):
        connection_over(stream, http1=True, http2=True)
