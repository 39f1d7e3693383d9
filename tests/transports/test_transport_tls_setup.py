"""What a TLS connection is given when it is made: ssl= servers with failing handshakes and
failing protocol factories, flow-control limits of its own, and the receive buffer that the
connections of one thread share (records go into each connection's MemoryBIO at once)."""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import ssl

import pytest

from looptools import CORENET_KINDS, make_loop
from transport_helpers import Echo, Recorder


async def _echo_server(loop, pki, factory=Echo):
    srv = await loop.create_server(factory, "127.0.0.1", 0, ssl=pki.server_context())
    return srv, srv.sockets[0].getsockname()[1]


async def _echo_once(loop, pki, port: int, payload: bytes) -> bytes:
    tr, pr = await loop.create_connection(Recorder, "localhost", port, ssl=pki.client_context())
    tr.write(payload)
    got = await pr.wait_bytes(len(payload))
    tr.close()
    await pr.lost
    return got


def test_failed_handshakes_close_their_connection_and_the_server_goes_on(loop, run, pki,
                                                                          fd_check):
    """Plain text where a ClientHello belongs, and a connection closed before any: each is
    closed by the server, which then still serves a real TLS client."""

    async def main():
        srv, port = await _echo_server(loop, pki)
        tr, pr = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"GET / HTTP/1.0\r\n\r\n" * 20)
        await asyncio.wait_for(pr.lost, 5)        # the server closed it
        assert bytes(pr.data) == b""              # nothing was echoed in the clear
        tr, pr = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.close()
        await pr.lost
        payload = os.urandom(100_000)
        assert await _echo_once(loop, pki, port, payload) == payload
        srv.close()
        await srv.wait_closed()
        await asyncio.sleep(0.05)                 # the server's side of the closes

    run(main())
    fd_check()


# Python 3.11's asyncio reports this in debug mode only and leaves the accepted socket to
# the garbage collector.
@pytest.mark.parametrize("loop_kind", CORENET_KINDS)
def test_a_failing_protocol_factory_is_reported_and_its_connection_closed(loop, run, pki,
                                                                           fd_check):
    errors = []
    loop.set_exception_handler(lambda lp, context: errors.append(context))
    calls = []

    def factory():
        calls.append(1)
        if len(calls) == 1:
            raise ZeroDivisionError("no protocol for this one")
        return Echo()

    async def main():
        srv, port = await _echo_server(loop, pki, factory)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.setblocking(False)
            reader = loop.create_future()
            loop.add_reader(s.fileno(), lambda: reader.done() or reader.set_result(None))
            try:
                await asyncio.wait_for(reader, 5)
            finally:
                loop.remove_reader(s.fileno())
            try:
                assert s.recv(100) == b""         # closed, not left hanging
            except ConnectionResetError:
                pass
        assert await _echo_once(loop, pki, port, b"next") == b"next"
        srv.close()
        await srv.wait_closed()
        await asyncio.sleep(0.05)

    run(main())
    fd_check()
    failures = [c for c in errors if isinstance(c.get("exception"), ZeroDivisionError)]
    assert len(failures) == 1
    assert failures[0]["message"] == "Error on transport creation for incoming connection"


def test_write_buffer_limits_are_each_connections_own(loop, run, pki):
    async def main():
        srv, port = await _echo_server(loop, pki)
        ctx = pki.client_context()
        a, _ = await loop.create_connection(Recorder, "localhost", port, ssl=ctx)
        b, _ = await loop.create_connection(Recorder, "localhost", port, ssl=ctx)
        default = b.get_write_buffer_limits()
        assert a.get_write_buffer_limits() == default
        low, high = default                       # asyncio's order
        assert high > low > 0
        a.set_write_buffer_limits(high=4096, low=1024)
        assert a.get_write_buffer_limits() == (1024, 4096)
        assert b.get_write_buffer_limits() == default
        c, _ = await loop.create_connection(Recorder, "localhost", port, ssl=ctx)
        assert c.get_write_buffer_limits() == default
        for tr in (a, b, c):
            tr.close()
        srv.close()
        await srv.wait_closed()
        await asyncio.sleep(0.05)

    run(main())


def _echo_in_own_loop(kind: str, pki, payloads: list[bytes]) -> list[bytes]:
    """A TLS echo server and client on a loop of this thread: what came back."""
    loop = make_loop(kind)
    try:
        async def main():
            srv, port = await _echo_server(loop, pki)
            tr, pr = await loop.create_connection(Recorder, "localhost", port,
                                                  ssl=pki.client_context())
            out = []
            for p in payloads:
                pr.data.clear()
                tr.write(p)
                out.append(await pr.wait_bytes(len(p)))
            tr.close()
            await pr.lost
            srv.close()
            await srv.wait_closed()
            return out

        return loop.run_until_complete(asyncio.wait_for(main(), 30))
    finally:
        loop.close()


def test_connections_in_several_threads_receive_their_own_bytes(loop_kind, pki):
    """Loops in four threads echo different data at once, every record through the receive
    buffer of its own thread: each gets back exactly what it sent."""
    per_thread = [[os.urandom(n) for n in (1, 5000, 300_000, 17, 70_000)] for _ in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: _echo_in_own_loop(loop_kind, pki, p), per_thread,
                                timeout=60))
    assert results == per_thread


def test_connections_of_a_thread_share_one_receive_buffer(corenet_kind, pki):
    """The buffer a connection receives into is its thread's, not allocated per connection."""
    from corenet import tls

    loop = make_loop(corenet_kind)
    try:
        ctx = pki.server_context()
        a = tls.SSLProtocol(loop, Echo(), ctx, None, server_side=True)
        b = tls.SSLProtocol(loop, Echo(), ctx, None, server_side=True)
        buf = a.get_buffer(-1)
        assert b.get_buffer(65536) is buf
        assert len(buf) >= 16 * 1024 + 256       # a whole TLS record fits
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            other = pool.submit(lambda: tls.SSLProtocol(loop, Echo(), ctx, None,
                                                        server_side=True).get_buffer(-1))
            assert other.result(10) is not buf
    finally:
        loop.close()


def test_a_record_split_across_reads_is_reassembled(loop, run, pki, fd_check):
    """The client sends one TLS record a byte at a time: the server reads each byte into
    the shared buffer and must keep what it has in its own BIO until the record is whole."""

    async def main():
        srv, port = await _echo_server(loop, pki)
        ctx = pki.client_context()
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while True:
            try:
                obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                writer.write(outgoing.read())
                incoming.write(await reader.read(65536))
        writer.write(outgoing.read())
        message = b"one record, sent byte by byte"
        obj.write(message)
        record = outgoing.read()
        for i in range(len(record)):
            writer.write(record[i:i + 1])
            await writer.drain()
            await asyncio.sleep(0)
        got = b""
        while len(got) < len(message):
            try:
                got += obj.read(65536)
            except ssl.SSLWantReadError:
                incoming.write(await asyncio.wait_for(reader.read(65536), 5))
        assert got == message
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        await asyncio.sleep(0.05)

    run(main())
    fd_check()
