"""Sockets handed to the loop (connect_accepted_socket) and files sent through a transport
(loop.sendfile)."""
from __future__ import annotations

import asyncio
import os
import socket

import pytest

from transport_helpers import Echo, Recorder, stop_server, tcp_pair


def test_connect_accepted_socket(loop, run, fd_check):
    async def main():
        lsock = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(lsock.getsockname())
        client.setblocking(False)
        conn, _ = lsock.accept()
        lsock.close()
        conn.setblocking(False)
        tr, pr = await loop.connect_accepted_socket(Echo, conn)
        assert isinstance(tr, asyncio.Transport)
        assert tr.get_extra_info("peername") == client.getsockname()
        await loop.sock_sendall(client, b"handed over")
        assert await loop.sock_recv(client, 100) == b"handed over"
        client.shutdown(socket.SHUT_WR)
        assert await loop.sock_recv(client, 100) == b""  # the echo protocol closes on EOF
        client.close()
        await asyncio.sleep(0.01)
        assert tr.is_closing() and pr.lost_calls == 1

    run(main())
    fd_check()


def test_connect_accepted_socket_rejects_a_listener(loop, run):
    async def main():
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen(1)
            # Not a connected stream socket: asyncio still wraps it, but a datagram socket
            # is refused outright.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as d:
            with pytest.raises(ValueError):
                await loop.connect_accepted_socket(Echo, d)

    run(main())


@pytest.fixture
def data_file(tmp_path):
    payload = os.urandom(3 * 1024 * 1024 + 123)
    path = tmp_path / "payload.bin"
    path.write_bytes(payload)
    return path, payload


@pytest.mark.parametrize("offset,count", [(0, None), (1000, None), (77, 2_000_000)])
def test_sendfile(loop, run, data_file, offset, count):
    path, payload = data_file

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        try:
            with open(path, "rb") as f:
                sent = await loop.sendfile(tr, f, offset, count)
                expected = payload[offset:offset + count] if count else payload[offset:]
                assert sent == len(expected)
                assert f.tell() == offset + sent
            tr.write(b"|trailer")  # the transport is usable again afterwards
            data = await sp.wait_bytes(len(expected) + 8)
            assert data == expected + b"|trailer"
        finally:
            tr.close()
            await pr.lost
            await stop_server(srv)

    run(main())


def test_sendfile_native_without_fallback(loop, run, data_file):
    """fallback=False: stock asyncio sends a file through a TCP transport with os.sendfile
    (no copy through user space); a drop-in loop must too."""
    path, payload = data_file

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        try:
            with open(path, "rb") as f:
                sent = await loop.sendfile(tr, f, fallback=False)
            assert sent == len(payload)
            assert await sp.wait_bytes(len(payload)) == payload
        finally:
            tr.close()
            await pr.lost
            await stop_server(srv)

    run(main())


def test_write_during_sendfile_is_refused(loop, run, data_file):
    path, payload = data_file

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        sp.transport.pause_reading()
        # Small fixed socket buffers, so the 3 MiB file cannot all sit in the kernel while
        # the reader is paused (autotuned buffers on loopback reach several MiB).
        tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sp.transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        try:
            with open(path, "rb") as f:
                task = asyncio.ensure_future(loop.sendfile(tr, f))
                await asyncio.sleep(0.02)
                assert not task.done()
                with pytest.raises(RuntimeError):
                    tr.write(b"interleaved")
                sp.transport.resume_reading()
                assert await task == len(payload)
            assert await sp.wait_bytes(len(payload)) == payload
        finally:
            sp.transport.resume_reading()
            tr.close()
            await pr.lost
            await stop_server(srv)

    run(main())
