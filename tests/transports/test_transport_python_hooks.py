"""What Python-level code can hook: patches of asyncio's transport classes, and socket
subclasses handed to the loop (COMPATIBILITY.md, "Class patches and socket subclasses").

- ``get_extra_info`` is the one method asyncio's socket and datagram transports inherit
  from ``asyncio.BaseTransport`` rather than define: a patch of it on asyncio's classes
  reaches them, and it reaches corenet's, which inherit it too. The methods asyncio's
  transports define themselves (write, close...) ignore such a patch there as here.
- The ``sock_*`` methods call the socket object's own methods, as asyncio's do, so a
  subclass's ``recv``/``send``/``accept`` is called. A stream or datagram transport made
  on a subclass whose class overrides its I/O methods moves bytes through them, as
  asyncio's does (uvloop's use the descriptor); a plain socket's transport keeps the
  direct system calls.
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


def _counted(name: str):
    """A socket method that counts its call, then does what ``socket.socket``'s does."""
    base = getattr(socket.socket, name)

    def method(self, *args):
        self._count(name)
        return base(self, *args)

    method.__name__ = name
    return method


class CountingSocket(socket.socket):
    """Counts the calls of its Python methods that move bytes, datagrams or connections."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: dict[str, int] = {}

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    recv = _counted("recv")
    recv_into = _counted("recv_into")
    recvfrom = _counted("recvfrom")
    recvfrom_into = _counted("recvfrom_into")
    recvmsg = _counted("recvmsg")
    send = _counted("send")
    sendto = _counted("sendto")
    sendmsg = _counted("sendmsg")
    accept = _counted("accept")


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


@pytest.mark.parametrize("failure", ["data_received", "get_buffer", "empty buffer",
                                     "buffer_updated"])
def test_a_protocol_callback_failing_on_a_socket_subclass(loop, run, failure):
    """A read through the subclass's own method that the protocol then fails to take ends
    the transport with asyncio's message, and connection_lost gets what was raised."""
    a, b = counting_pair()
    message = {"data_received": "Fatal error: protocol.data_received() call failed.",
               "buffer_updated": "Fatal error: protocol.buffer_updated() call failed."
               }.get(failure, "Fatal error: protocol.get_buffer() call failed.")

    class Failing(Buffered):
        def get_buffer(self, sizehint):
            if failure == "get_buffer":
                raise ValueError("no buffer")
            return bytearray() if failure == "empty buffer" else self.buf

        def buffer_updated(self, nbytes):
            raise ValueError("not taken")

    class FailingPlain(asyncio.Protocol):
        def __init__(self) -> None:
            self.lost = asyncio.get_running_loop().create_future()

        def data_received(self, data):
            raise ValueError("not taken")

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        factory = FailingPlain if failure == "data_received" else Failing
        transport, proto = await loop.create_connection(factory, sock=a)
        await loop.sock_sendall(b, b"data")
        exc = await asyncio.wait_for(proto.lost, 5)
        expected = RuntimeError if failure == "empty buffer" else ValueError
        assert type(exc) is expected
        assert [(c["message"], c["exception"]) for c in errors] == [(message, exc)]
        assert transport.is_closing()

    try:
        run(main())
        read = "recv" if failure == "data_received" else "recv_into"
        assert a.calls.get(read, 0) == (0 if failure in ("get_buffer", "empty buffer") else 1)
    finally:
        a.close()
        b.close()


class Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.got: list[tuple[bytes, object]] = []
        self.errors: list[Exception] = []
        self.lost = self.loop.create_future()
        self.changed = asyncio.Event()

    def datagram_received(self, data, addr) -> None:
        self.got.append((data, addr))
        self.changed.set()

    def error_received(self, exc) -> None:
        self.errors.append(exc)
        self.changed.set()

    def connection_lost(self, exc) -> None:
        self.lost.set_result(exc)

    async def until(self, done) -> None:
        """Until ``done()`` holds (bounded: asyncio.wait_for around it)."""
        while not done():
            self.changed.clear()
            await self.changed.wait()


async def recv_datagrams(loop, sock: socket.socket, n: int) -> list[bytes]:
    got = []
    for _ in range(n):
        got.append(await asyncio.wait_for(loop.sock_recv(sock, 100), 5))
    return got


def udp_pair(cls=CountingSocket) -> tuple[socket.socket, socket.socket]:
    """A non-blocking UDP socket of class ``cls`` and a plain one, both bound on loopback."""
    a = cls(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (a, b):
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
    return a, b


@pytest.mark.parametrize("connected", [False, True])
def test_a_datagram_transport_on_a_socket_subclass(loop, run, connected):
    """Datagrams come in through the subclass's recvfrom and go out through its sendto (send
    when connected), the methods asyncio's datagram transport calls; its other datagram
    methods are not called, here as there."""
    a, b = udp_pair()
    if connected:
        a.connect(b.getsockname())

    async def main():
        transport, proto = await loop.create_datagram_endpoint(Datagrams, sock=a)
        try:
            for i in range(3):
                b.sendto(b"in%d" % i, a.getsockname())
            await asyncio.wait_for(proto.until(lambda: len(proto.got) == 3), 5)
            assert proto.got == [(b"in%d" % i, b.getsockname()) for i in range(3)]
            for i in range(2):
                transport.sendto(b"out%d" % i, None if connected else b.getsockname())
            assert await recv_datagrams(loop, b, 2) == [b"out0", b"out1"]
        finally:
            transport.close()
        assert await proto.lost is None

    try:
        run(main())
        sent = "send" if connected else "sendto"
        assert a.calls.pop(sent) == 2
        assert a.calls.pop("recvfrom") >= 3
        assert a.calls == {}
    finally:
        a.close()
        b.close()


class FlakyDatagramSocket(CountingSocket):
    """Its first recvfrom raises ``ConnectionRefusedError``; its first sendto of b"queued"
    ``BlockingIOError`` and every sendto of b"denied" ``PermissionError``."""

    def recvfrom(self, *args):
        self._count("recvfrom")
        if self.calls["recvfrom"] == 1:
            raise ConnectionRefusedError(111, "refused by the subclass")
        return socket.socket.recvfrom(self, *args)

    def sendto(self, data, *args):
        self._count("sendto")
        if data == b"queued" and self.calls["sendto"] == 1:
            raise BlockingIOError(11, "full, says the subclass")
        if data == b"denied":
            raise PermissionError(1, "denied by the subclass")
        return socket.socket.sendto(self, data, *args)


def test_what_a_datagram_socket_subclass_raises_goes_where_asyncio_puts_it(loop, run):
    """An OSError of the subclass's recvfrom goes to error_received and the endpoint keeps
    reading; a sendto that would block queues the datagram, sent again through sendto when
    the socket is writable; a failed one goes to error_received, raised from sendto's call."""
    a, b = udp_pair(FlakyDatagramSocket)

    async def main():
        transport, proto = await loop.create_datagram_endpoint(Datagrams, sock=a)
        try:
            b.sendto(b"first", a.getsockname())
            await asyncio.wait_for(proto.until(lambda: proto.errors), 5)
            assert [type(e) for e in proto.errors] == [ConnectionRefusedError]
            b.sendto(b"second", a.getsockname())
            await asyncio.wait_for(proto.until(lambda: proto.got), 5)
            assert [d for d, _ in proto.got] in ([b"first"], [b"first", b"second"])
            transport.sendto(b"queued", b.getsockname())
            assert transport.get_write_buffer_size() >= len(b"queued")
            assert await recv_datagrams(loop, b, 1) == [b"queued"]
            assert transport.get_write_buffer_size() == 0
            transport.sendto(b"denied", b.getsockname())
            assert [type(e) for e in proto.errors] == [ConnectionRefusedError, PermissionError]
            transport.sendto(b"last", b.getsockname())
            assert await recv_datagrams(loop, b, 1) == [b"last"]
        finally:
            transport.close()
        assert await proto.lost is None

    try:
        run(main())
        assert a.calls["sendto"] == 4        # queued (tried twice), denied, last
    finally:
        a.close()
        b.close()


class BrokenDatagramSocket(CountingSocket):
    def recvfrom(self, *args):
        self._count("recvfrom")
        raise RuntimeError("the subclass is broken")


def test_a_datagram_socket_subclass_raising_what_is_no_oserror_ends_the_transport(loop, run):
    a, b = udp_pair(BrokenDatagramSocket)

    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        transport, proto = await loop.create_datagram_endpoint(Datagrams, sock=a)
        b.sendto(b"x", a.getsockname())
        exc = await asyncio.wait_for(proto.lost, 5)
        assert type(exc) is RuntimeError and "broken" in str(exc)
        assert [(c["message"], c["exception"]) for c in errors] == [
            ("Fatal read error on datagram transport", exc)]
        assert transport.is_closing() and proto.got == [] and proto.errors == []

    try:
        run(main())
        assert a.calls == {"recvfrom": 1}
    finally:
        a.close()
        b.close()
