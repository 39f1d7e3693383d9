"""loop.create_connection: address lists, happy eyeballs, sock=, local_addr=, timeouts."""
from __future__ import annotations

import asyncio
import socket

import pytest

from transport_helpers import Echo, HangingListener, Recorder, closed_port

TCP = (socket.SOCK_STREAM, socket.IPPROTO_TCP, "")


def fake_resolver(loop, addrs):
    """Makes ``loop.getaddrinfo`` answer with ``addrs`` ((family, sockaddr) pairs)."""
    asked = []

    async def getaddrinfo(host, port, *, family=0, type=0, proto=0, flags=0):
        asked.append((host, port))
        return [(fam, *TCP, sa) for fam, sa in addrs]

    loop.getaddrinfo = getaddrinfo
    return asked


async def echo_roundtrip(proto: Recorder, payload: bytes = b"ping") -> None:
    proto.transport.write(payload)
    assert (await proto.wait_bytes(len(payload)))[:len(payload)] == payload


def test_name_resolved_through_loop_getaddrinfo(loop, run):
    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        asked = fake_resolver(loop, [(socket.AF_INET, ("127.0.0.1", port))])
        tr, pr = await loop.create_connection(Recorder, "echo.example.test", port)
        assert asked == [("echo.example.test", port)]
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        await echo_roundtrip(pr)
        tr.close()
        await pr.lost
        srv.close()
        await srv.wait_closed()

    run(main())


def test_every_address_tried_in_turn(loop, run, fd_check):
    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        fake_resolver(loop, [(socket.AF_INET, ("127.0.0.1", closed_port())),
                             (socket.AF_INET, ("127.0.0.1", closed_port())),
                             (socket.AF_INET, ("127.0.0.1", port))])
        tr, pr = await loop.create_connection(Recorder, "svc.test", 1)
        assert tr.get_extra_info("peername") == ("127.0.0.1", port)
        await echo_roundtrip(pr)
        tr.close()
        await pr.lost
        srv.close()
        await srv.wait_closed()

    run(main())
    fd_check()


def test_all_addresses_refused_reports_every_error(loop, run, fd_check):
    p1, p2 = closed_port(), closed_port()

    async def main():
        fake_resolver(loop, [(socket.AF_INET, ("127.0.0.1", p1)),
                             (socket.AF_INET, ("127.0.0.1", p2))])
        with pytest.raises(OSError) as info:
            await loop.create_connection(Recorder, "svc.test", 1)
        assert str(p1) in str(info.value) and str(p2) in str(info.value)

    run(main())
    fd_check()


def test_connect_refused(loop, run, fd_check):
    async def main():
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, "127.0.0.1", closed_port())

    run(main())
    fd_check()


def test_connect_timeout_leaves_no_socket(loop, run, fd_check):
    hang = HangingListener()
    try:
        async def main():
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(loop.create_connection(Recorder, *hang.addr), 0.2)

        run(main())
    finally:
        hang.close()
    fd_check()


def test_happy_eyeballs_skips_a_hanging_address(loop, run, fd_check):
    hang = HangingListener()
    try:
        async def main():
            srv = await loop.create_server(Echo, "127.0.0.1", 0)
            port = srv.sockets[0].getsockname()[1]
            fake_resolver(loop, [(socket.AF_INET, hang.addr),
                                 (socket.AF_INET, ("127.0.0.1", port))])
            tr, pr = await loop.create_connection(Recorder, "svc.test", 1,
                                                  happy_eyeballs_delay=0.05)
            assert tr.get_extra_info("peername") == ("127.0.0.1", port)
            await echo_roundtrip(pr)
            tr.close()
            await pr.lost
            srv.close()
            await srv.wait_closed()

        run(main())
    finally:
        hang.close()
    fd_check()


def test_interleave_alternates_families(loop, run):
    """[hanging v4, accepting v4, accepting v6] with interleave=1 is tried as v4, v6, v4:
    the v6 server must win (without interleaving the second v4 one would)."""
    hang = HangingListener()
    try:
        async def main():
            srv4 = await loop.create_server(Echo, "127.0.0.1", 0)
            srv6 = await loop.create_server(Echo, "::1", 0)
            p4 = srv4.sockets[0].getsockname()[1]
            p6 = srv6.sockets[0].getsockname()[1]
            fake_resolver(loop, [(socket.AF_INET, hang.addr),
                                 (socket.AF_INET, ("127.0.0.1", p4)),
                                 (socket.AF_INET6, ("::1", p6, 0, 0))])
            tr, pr = await loop.create_connection(Recorder, "svc.test", 1,
                                                  happy_eyeballs_delay=0.05, interleave=1)
            assert tr.get_extra_info("peername")[:2] == ("::1", p6)
            tr.close()
            await pr.lost
            # interleave=0 keeps the given order: the second v4 address comes first.
            tr, pr = await loop.create_connection(Recorder, "svc.test", 1,
                                                  happy_eyeballs_delay=0.05, interleave=0)
            assert tr.get_extra_info("peername") == ("127.0.0.1", p4)
            tr.close()
            await pr.lost
            for s in (srv4, srv6):
                s.close()
                await s.wait_closed()

        run(main())
    finally:
        hang.close()


def test_sock_argument(loop, run, fd_check):
    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0)
        addr = srv.sockets[0].getsockname()
        sock = socket.create_connection(addr)
        sock.setblocking(False)
        tr, pr = await loop.create_connection(Recorder, sock=sock)
        assert tr.get_extra_info("socket").fileno() == sock.fileno()
        assert tr.get_extra_info("peername") == addr
        await echo_roundtrip(pr, b"through a given socket")
        tr.close()
        await pr.lost
        assert sock.fileno() == -1, "the transport owns and closes the socket"
        srv.close()
        await srv.wait_closed()

    run(main())
    fd_check()


def test_sock_with_host_is_an_error(loop, run):
    async def main():
        with socket.socket() as s:
            with pytest.raises(ValueError):
                await loop.create_connection(Recorder, "127.0.0.1", 1, sock=s)

    run(main())


def test_local_addr(loop, run):
    async def main():
        peers = []

        class Peer(Echo):
            def connection_made(self, transport):
                peers.append(transport.get_extra_info("peername"))
                super().connection_made(transport)

        srv = await loop.create_server(Peer, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(Recorder, "127.0.0.1", port,
                                              local_addr=("127.0.0.2", 0))
        await echo_roundtrip(pr)
        assert tr.get_extra_info("sockname")[0] == "127.0.0.2"
        assert peers[0][0] == "127.0.0.2"
        assert peers[0] == tr.get_extra_info("sockname")
        tr.close()
        await pr.lost
        srv.close()
        await srv.wait_closed()

    run(main())


def test_local_addr_in_use_is_reported(loop, run, fd_check):
    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        with socket.socket() as taken:
            taken.bind(("127.0.0.3", 0))
            taken.listen(1)
            with pytest.raises(OSError):
                await loop.create_connection(Recorder, "127.0.0.1", port,
                                             local_addr=taken.getsockname())
        srv.close()
        await srv.wait_closed()

    run(main())
    fd_check()


def test_ports_given_as_strings(loop, run, fd_check):
    """create_server, create_connection and create_datagram_endpoint read a numeric string
    port as asyncio does."""

    async def main():
        server = await loop.create_server(Echo, "127.0.0.1", "0")
        port = server.sockets[0].getsockname()[1]
        try:
            transport, proto = await loop.create_connection(Recorder, "127.0.0.1", str(port))
            assert transport.get_extra_info("peername") == ("127.0.0.1", port)
            await echo_roundtrip(proto)
            transport.close()
            await proto.lost
        finally:
            server.close()
            await server.wait_closed()
        local, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, local_addr=("127.0.0.1", "0"))
        lport = local.get_extra_info("sockname")[1]
        remote, _ = await loop.create_datagram_endpoint(
            asyncio.DatagramProtocol, remote_addr=("127.0.0.1", str(lport)))
        try:
            assert remote.get_extra_info("peername") == ("127.0.0.1", lport)
        finally:
            remote.close()
            local.close()
        await asyncio.sleep(0)

    run(main())
    fd_check()
