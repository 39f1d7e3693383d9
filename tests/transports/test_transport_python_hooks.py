"""What Python-level code can hook: patches of asyncio's transport classes, and socket
subclasses handed to the loop (COMPATIBILITY.md, "Class patches and socket subclasses").

- ``get_extra_info`` is the one method asyncio's socket and datagram transports inherit
  from ``asyncio.BaseTransport`` rather than define: a patch of it on asyncio's classes
  reaches them, and it reaches corenet's, which inherit it too. The methods asyncio's
  transports define themselves (write, close...) ignore such a patch there as here.
- The ``sock_*`` methods call the socket object's own methods, as asyncio's do, so a
  subclass's ``recv``/``send``/``accept`` is called. A transport made on a subclass moves
  bytes through the descriptor, as uvloop's do: asyncio's calls the subclass's methods.
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


def test_a_transport_on_a_socket_subclass(loop, loop_kind, run):
    """Bytes flow either way; asyncio's transport calls the subclass's methods, corenet's
    (as uvloop's) reads and writes the descriptor."""
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
        if loop_kind == "asyncio":
            assert a.calls.get("recv", 0) >= 1
            assert a.calls.get("send", 0) + a.calls.get("sendmsg", 0) >= 1
        else:
            assert a.calls == {}
    finally:
        a.close()
        b.close()
