"""loop.sock_* calls: data integrity, waiting, cancellation, errors."""
import asyncio
import os
import socket
import tempfile

import pytest

from looptools import open_fds


def test_recv_waits_for_data(loop, run, pair):
    a, b = pair

    async def main():
        loop.call_later(0.02, b.send, b"late")
        return await loop.sock_recv(a, 100)

    assert run(main()) == b"late"


def test_ping_pong_many_rounds(loop, run, pair):
    a, b = pair

    async def echo():
        for _ in range(200):
            data = await loop.sock_recv(b, 100)
            await loop.sock_sendall(b, data)

    async def main():
        t = loop.create_task(echo())
        for i in range(200):
            msg = f"m{i}".encode()
            await loop.sock_sendall(a, msg)
            assert await loop.sock_recv(a, 100) == msg
        await t

    run(main())


def test_sendall_large_payload_arrives_intact(loop, run, pair):
    a, b = pair
    payload = os.urandom(4 * 1024 * 1024)

    async def reader():
        chunks, n = [], 0
        buf = bytearray(65536)
        while n < len(payload):
            k = await loop.sock_recv_into(b, buf)
            chunks.append(bytes(buf[:k]))
            n += k
        return b"".join(chunks)

    async def main():
        t = loop.create_task(reader())
        await loop.sock_sendall(a, payload)
        return await t

    assert run(main()) == payload


def test_cancelled_recv_loses_no_data(loop, run, pair):
    a, b = pair

    async def main():
        t = loop.create_task(loop.sock_recv(a, 100))
        await asyncio.sleep(0.01)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        b.send(b"kept")
        return await loop.sock_recv(a, 100)

    assert run(main()) == b"kept"


def test_recv_timeout_via_wait_for(loop, run, pair):
    a, _ = pair

    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(loop.sock_recv(a, 10), 0.05)

    run(main())


def test_udp_sendto_recvfrom(loop, run):
    s1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for s in (s1, s2):
        s.setblocking(False)
        s.bind(("127.0.0.1", 0))
    try:
        async def main():
            await loop.sock_sendto(s1, b"dgram", s2.getsockname())
            data, addr = await loop.sock_recvfrom(s2, 100)
            assert addr == s1.getsockname()
            await loop.sock_sendto(s2, b"back", addr)
            buf = bytearray(10)
            n, addr2 = await loop.sock_recvfrom_into(s1, buf)
            return data, bytes(buf[:n]), addr2

        data, back, addr2 = run(main())
        assert data == b"dgram" and back == b"back" and addr2 == s2.getsockname()
    finally:
        s1.close()
        s2.close()


def test_connect_accept_and_refused(loop, run):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.setblocking(False)
    port = srv.getsockname()[1]

    async def main():
        c = socket.socket()
        c.setblocking(False)
        accept = loop.create_task(loop.sock_accept(srv))
        await loop.sock_connect(c, ("localhost", port))  # a name: resolved by the loop
        conn, addr = await accept
        assert conn.gettimeout() == 0
        assert addr == c.getsockname()
        await loop.sock_sendall(conn, b"hello")
        got = await loop.sock_recv(c, 10)
        conn.close()
        c.close()
        return got

    try:
        assert run(main()) == b"hello"
    finally:
        srv.close()

    async def refused():
        c = socket.socket()
        c.setblocking(False)
        try:
            with pytest.raises(ConnectionRefusedError):
                await loop.sock_connect(c, ("127.0.0.1", port))
        finally:
            c.close()

    run(refused())


@pytest.mark.parametrize("kind", ["regular file", "BytesIO"])
def test_sock_sendfile(loop, run, pair, kind):
    """From offset 1000 to the end. A regular file goes through os.sendfile; a file with no
    descriptor (BytesIO) falls back to reads and sends, or with fallback=False raises
    SendfileNotAvailableError. Either way the file is left positioned after what was sent."""
    import io
    a, b = pair
    payload = os.urandom(300_000)
    if kind == "BytesIO":
        f = io.BytesIO(payload)
    else:
        f = tempfile.TemporaryFile()
        f.write(payload)
        f.flush()
        f.seek(0)

    async def reader(n):
        out = bytearray()
        while len(out) < n:
            out += await loop.sock_recv(b, 65536)
        return bytes(out)

    async def main():
        if kind == "BytesIO":
            with pytest.raises(asyncio.SendfileNotAvailableError):
                await loop.sock_sendfile(a, io.BytesIO(payload), fallback=False)
        t = loop.create_task(reader(len(payload) - 1000))
        sent = await loop.sock_sendfile(a, f, 1000)
        return sent, await t, f.tell()

    with f:
        sent, got, pos = run(main())
    assert sent == len(payload) - 1000
    assert got == payload[1000:]
    assert pos == len(payload)


def test_ssl_socket_and_blocking_socket_rejected(loop, run):
    import ssl
    ctx = ssl.create_default_context()
    s = ctx.wrap_socket(socket.socket(), do_handshake_on_connect=False, server_hostname="x")
    try:
        with pytest.raises(TypeError):
            run(loop.sock_recv(s, 1))
    finally:
        s.close()
    loop.set_debug(True)
    blocking = socket.socket()
    try:
        with pytest.raises(ValueError):
            run(loop.sock_recv(blocking, 1))
    finally:
        blocking.close()
        loop.set_debug(False)


def test_sock_connect_checks_the_socket_before_resolving(loop, run):
    """In debug mode a blocking socket is refused before the address is looked up."""
    looked_up = []

    async def getaddrinfo(*args, **kw):
        looked_up.append(args)
        raise OSError("no name resolution in this test")

    loop.getaddrinfo = getaddrinfo
    loop.set_debug(True)
    blocking = socket.socket()
    try:
        with pytest.raises(ValueError, match="the socket must be non-blocking"):
            run(loop.sock_connect(blocking, ("name.invalid", 80)))
        blocking.setblocking(False)
        with pytest.raises(OSError, match="no name resolution"):
            run(loop.sock_connect(blocking, ("name.invalid", 80)))
    finally:
        blocking.close()
        loop.set_debug(False)
        del loop.getaddrinfo
    assert len(looked_up) == 1


def test_sock_ops_leak_no_descriptors(loop, run):
    before = open_fds()

    async def main():
        for _ in range(30):
            a, b = socket.socketpair()
            a.setblocking(False)
            b.setblocking(False)
            t = loop.create_task(loop.sock_recv(a, 10))
            await asyncio.sleep(0)
            await loop.sock_sendall(b, b"x")
            assert await t == b"x"
            a.close()
            b.close()

    run(main())
    assert open_fds() <= before


def test_sock_connect_with_a_port_given_as_a_string(loop, run):
    """asyncio reads a numeric string port as its number, with no getaddrinfo; a service
    name goes through getaddrinfo. Both must connect."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    port = srv.getsockname()[1]

    async def main():
        c = socket.socket()
        c.setblocking(False)
        try:
            await loop.sock_connect(c, ("127.0.0.1", str(port)))
            assert c.getpeername() == ("127.0.0.1", port)
        finally:
            c.close()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setblocking(False)
        try:
            await loop.sock_connect(u, ("127.0.0.1", "domain"))   # a service name: 53
            assert u.getpeername() == ("127.0.0.1", 53)
            await loop.sock_connect(u, (b"127.0.0.1", "54"))
            assert u.getpeername() == ("127.0.0.1", 54)
        finally:
            u.close()

    try:
        run(main())
    finally:
        srv.close()


def test_sock_connect_ipv6_literal_with_a_string_port(loop, run):
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.setblocking(False)
    try:
        run(loop.sock_connect(u, ("::1", "5432", 0, 0)))
        assert u.getpeername()[:2] == ("::1", 5432)
    finally:
        u.close()


def test_sock_connect_with_an_unknown_service_name_fails_as_getaddrinfo_does(loop, run):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.setblocking(False)
    try:
        with pytest.raises(socket.gaierror):
            run(loop.sock_connect(u, ("127.0.0.1", "no-such-service-name")))
    finally:
        u.close()
