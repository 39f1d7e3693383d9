"""What Python-level code can hook: patches of asyncio's transport classes, and socket
subclasses handed to the loop (COMPATIBILITY.md, "Class patches and socket subclasses").

- ``get_extra_info`` is the one method asyncio's socket and datagram transports inherit
  from ``asyncio.BaseTransport`` rather than define: a patch of it on asyncio's classes
  reaches them, and it reaches corenet's, which inherit it too. The methods asyncio's
  transports define themselves (write, close...) ignore such a patch there as here.
- The ``sock_*`` methods call the socket object's own methods, as asyncio's do, so a
  subclass's ``recv``/``send``/``accept`` is called. A transport made on a subclass whose
  class overrides its I/O methods moves bytes through them, as asyncio's does (uvloop's
  use the descriptor); a plain socket's transport keeps the direct system calls.
"""
from __future__ import annotations

import asyncio
import socket
from unittest import mock

import pytest

from transport_helpers import Echo, Recorder


@pytest.mark.parametrize("patched", ["asyncio.Transport.get_extra_info",
                                     "asyncio.BaseTransport.get_extra_info"])
def test_a_patch_of_get_extra_info_on_asyncio_s_class_reaches_the_transports(loop, run, patched):
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        dgram, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol,
                                                       local_addr=("127.0.0.1", 0))
        try:
            assert transport.get_extra_info("peername") == ("127.0.0.1", port)
            with mock.patch(patched, return_value="patched") as fake:
                assert transport.get_extra_info("peername") == "patched"
                assert dgram.get_extra_info("sockname") == "patched"
                assert fake.call_count == 2
            assert transport.get_extra_info("peername") == ("127.0.0.1", port)
            assert transport.get_extra_info("socket").fileno() == transport.get_extra_info(
                "socket").fileno() >= 0
            assert transport.get_extra_info("no such thing", 7) == 7
        finally:
            transport.close()
            dgram.close()
            await proto.lost
            server.close()
            await server.wait_closed()

    run(main())


def test_a_patch_of_write_on_asyncio_s_class_reaches_no_socket_transport(loop, run):
    """asyncio's socket transport defines write(), as corenet's does: neither sees it."""
    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport, proto = await loop.create_connection(Recorder, "127.0.0.1", port)
        try:
            with mock.patch("asyncio.Transport.write") as fake:
                transport.write(b"ping")
                assert await proto.wait_bytes(4) == b"ping"
            assert fake.call_count == 0
        finally:
            transport.close()
            await proto.lost
            server.close()
            await server.wait_closed()

    run(main())


class CountingSocket(socket.socket):
    """Counts the calls of its Python methods that move bytes or connections."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def recv(self, *args):
        self._count("recv")
        return super().recv(*args)

    def recv_into(self, *args):
        self._count("recv_into")
        return super().recv_into(*args)

    def send(self, *args):
        self._count("send")
        return super().send(*args)

    def sendmsg(self, *args):
        self._count("sendmsg")
        return super().sendmsg(*args)

    def accept(self):
        self._count("accept")
        return super().accept()


def counting_pair() -> tuple[CountingSocket, CountingSocket]:
    a, b = socket.socketpair()
    pair = []
    for s in (a, b):
        c = CountingSocket(s.family, s.type, s.proto, fileno=s.detach())
        c.setblocking(False)
        pair.append(c)
    return pair[0], pair[1]


def test_sock_methods_call_a_socket_subclass_s_methods(loop, run):
    a, b = counting_pair()
    listener = CountingSocket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)

    async def main():
        await loop.sock_sendall(a, b"hello")
        assert await loop.sock_recv(b, 5) == b"hello"
        recv = loop.create_task(loop.sock_recv(b, 5))      # waits: called when readable
        await asyncio.sleep(0.01)
        await loop.sock_sendall(a, b"again")
        assert await recv == b"again"
        buf = bytearray(3)
        await loop.sock_sendall(a, b"abc")
        assert await loop.sock_recv_into(b, buf) == 3
        client = socket.socket()
        client.setblocking(False)
        accept = loop.create_task(loop.sock_accept(listener))
        await loop.sock_connect(client, listener.getsockname())
        conn, _ = await accept
        conn.close()
        client.close()

    try:
        run(main())
        assert a.calls == {"send": 3}
        assert b.calls == {"recv": 3, "recv_into": 1}   # the waiting one: tried, then ready
        assert listener.calls["accept"] >= 1
    finally:
        a.close()
        b.close()
        listener.close()


def test_a_transport_on_a_socket_subclass(loop, run):
    """Bytes flow either way through the subclass's own methods, on every loop."""
    a, b = counting_pair()

    async def main():
        transport, proto = await loop.create_connection(Recorder, sock=a)
        try:
            transport.write(b"to b")
            got = b""
            while len(got) < 4:
                got += await loop.sock_recv(b, 10)
            assert got == b"to b"
            await loop.sock_sendall(b, b"to a")
            assert await proto.wait_bytes(4) == b"to a"
        finally:
            transport.close()
            await proto.lost

    try:
        run(main())
        assert a.calls.get("recv", 0) >= 1
        assert a.calls.get("send", 0) + a.calls.get("sendmsg", 0) >= 1
    finally:
        a.close()
        b.close()


class Buffered(asyncio.BufferedProtocol):
    def __init__(self) -> None:
        self.buf = bytearray(7)
        self.got = bytearray()
        self.lost = asyncio.get_running_loop().create_future()

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.got += self.buf[:nbytes]

    def connection_lost(self, exc):
        self.lost.set_result(exc)


def test_a_buffered_protocol_reads_through_recv_into_and_queued_writes_through_send(loop,
                                                                                     run):
    """A BufferedProtocol's reads call the subclass's recv_into; a write the peer cannot
    take at once is queued and sent, to its last byte, through the subclass's send."""
    a, b = counting_pair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    big = bytes(range(256)) * 4096                 # 1 MiB: far more than the buffers hold

    async def main():
        transport, proto = await loop.create_connection(Buffered, sock=a)
        try:
            await loop.sock_sendall(b, b"0123456789abcdef")
            for _ in range(500):
                if len(proto.got) >= 16:
                    break
                await asyncio.sleep(0.005)
            assert bytes(proto.got) == b"0123456789abcdef"
            transport.write(big)
            got = bytearray()
            while len(got) < len(big):
                got += await loop.sock_recv(b, 65536)
            assert got == big
        finally:
            transport.close()
            assert await proto.lost is None

    try:
        run(main())
        assert a.calls.get("recv_into", 0) >= 3       # 16 bytes into a 7-byte buffer
        assert a.calls.get("send", 0) + a.calls.get("sendmsg", 0) >= 2
    finally:
        a.close()
        b.close()


class FailingSocket(CountingSocket):
    def recv(self, *args):
        self._count("recv")
        raise ConnectionResetError(104, "reset by the subclass")


def test_an_error_a_socket_subclass_raises_ends_the_transport(loop, run):
    """What the subclass's recv raises is the transport's read error, as in asyncio:
    connection_lost gets it."""
    a0, b = socket.socketpair()
    a = FailingSocket(a0.family, a0.type, a0.proto, fileno=a0.detach())
    a.setblocking(False)

    async def main():
        transport, proto = await loop.create_connection(Recorder, sock=a)
        await loop.sock_sendall(b, b"x")
        exc = await asyncio.wait_for(proto.lost, 5)
        assert isinstance(exc, ConnectionResetError) and "subclass" in str(exc)
        assert transport.is_closing()

    try:
        run(main())
        assert a.calls["recv"] >= 1
    finally:
        a.close()
        b.close()
