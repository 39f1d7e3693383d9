"""Unix stream sockets: create_unix_server/connection, stale socket files, the abstract
namespace."""
from __future__ import annotations

import errno
import os
import socket
import sys
import uuid

import pytest

from transport_helpers import Echo, Recorder


@pytest.fixture
def sock_path(tmp_path):
    return str(tmp_path / "s.sock")


async def unix_roundtrip(loop, path, payload=b"over unix") -> Recorder:
    tr, pr = await loop.create_unix_connection(Recorder, path)
    tr.write(payload)
    assert await pr.wait_bytes(len(payload)) == payload
    return pr


def test_unix_echo_and_extra_info(loop, run, sock_path, fd_check):
    async def main():
        srv = await loop.create_unix_server(Echo, sock_path)
        assert srv.sockets[0].getsockname() == sock_path
        pr = await unix_roundtrip(loop, sock_path)
        assert pr.transport.get_extra_info("peername") == sock_path
        assert pr.transport.get_extra_info("socket").family == socket.AF_UNIX
        pr.transport.close()
        await pr.lost
        assert pr.lost_calls == [None]
        srv.close()
        await srv.wait_closed()

    run(main())
    fd_check()


def test_stale_socket_file_is_replaced(loop, run, sock_path):
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(sock_path)
    stale.close()
    assert os.path.exists(sock_path)

    async def main():
        srv = await loop.create_unix_server(Echo, sock_path)
        pr = await unix_roundtrip(loop, sock_path)
        pr.transport.close()
        await pr.lost
        srv.close()
        await srv.wait_closed()

    run(main())


# asyncio 3.13 added create_unix_server(cleanup_socket=True): closing the server removes the
# socket file it bound. Before 3.13 the file stays.
CLEANS_UP_SOCKET_FILE = sys.version_info >= (3, 13)


def test_closing_the_server_removes_its_socket_file_as_asyncio_does(loop, run, tmp_path):
    bound, kept, taken = (str(tmp_path / n) for n in ("bound.sock", "kept.sock", "taken.sock"))

    async def main():
        for path in (bound, taken):
            srv = await loop.create_unix_server(Echo, path)
            pr = await unix_roundtrip(loop, path)
            pr.transport.close()
            await pr.lost
            if path == taken:
                # Another socket now owns the path: closing must leave its file alone.
                os.unlink(path)
                other = socket.socket(socket.AF_UNIX)
                other.bind(path)
            srv.close()
            await srv.wait_closed()
        if CLEANS_UP_SOCKET_FILE:
            srv = await loop.create_unix_server(Echo, kept, cleanup_socket=False)
            srv.close()
            await srv.wait_closed()
            assert os.path.exists(kept)
        other.close()

    run(main())
    assert os.path.exists(bound) != CLEANS_UP_SOCKET_FILE
    assert os.path.exists(taken)


def test_regular_file_in_the_way_is_an_error(loop, run, sock_path):
    with open(sock_path, "w") as f:
        f.write("not a socket")

    async def main():
        with pytest.raises(OSError) as info:
            await loop.create_unix_server(Echo, sock_path)
        assert info.value.errno == errno.EADDRINUSE

    run(main())
    with open(sock_path) as f:
        assert f.read() == "not a socket"


def test_abstract_namespace(loop, run):
    name = "\0corenet-test-" + uuid.uuid4().hex

    async def main():
        srv = await loop.create_unix_server(Echo, name)
        assert srv.sockets[0].getsockname() in (name, name.encode())
        pr = await unix_roundtrip(loop, name, b"abstract")
        pr.transport.close()
        await pr.lost
        srv.close()
        await srv.wait_closed()

    run(main())


def test_unix_connection_refused(loop, run, sock_path, fd_check):
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)  # a socket file with no listener behind it
    s.close()

    async def main():
        with pytest.raises(ConnectionRefusedError):
            await loop.create_unix_connection(Recorder, sock_path)

    run(main())
    fd_check()


def test_unix_server_with_sock(loop, run, sock_path):
    async def main():
        lsock = socket.socket(socket.AF_UNIX)
        lsock.bind(sock_path)
        lsock.setblocking(False)
        srv = await loop.create_unix_server(Echo, sock=lsock)
        pr = await unix_roundtrip(loop, sock_path)
        pr.transport.close()
        await pr.lost
        srv.close()
        await srv.wait_closed()

    run(main())
