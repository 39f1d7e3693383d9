"""FrameProtocol over real sockets, on every loop of the shared ``loop`` fixture."""
from __future__ import annotations

import asyncio
import socket

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from corenet.framing import FrameProtocol, FrameTooLarge, encode_header
from framing_helpers import Collector, encode, open_sockets

NO_FIXTURE_RESET = settings(
    max_examples=15, deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)


async def connected_pair(loop, proto):
    """A socketpair whose one end is served by ``proto`` on ``loop``; the other end is
    returned non-blocking for the test to write with ``loop.sock_sendall``."""
    a, b = socket.socketpair()
    b.setblocking(False)
    transport, _ = await loop.create_connection(lambda: proto, sock=a)
    return transport, b


async def send_in_pieces(loop, sock, data: bytes, cuts) -> None:
    points = sorted({c for c in cuts if 0 < c < len(data)}) + [len(data)]
    pos = 0
    for point in points:
        await loop.sock_sendall(sock, data[pos:point])
        pos = point
        await asyncio.sleep(0)  # let the reader see this piece on its own


def test_send_frame_passes_header_and_payload_as_two_buffers():
    class FakeTransport:
        def __init__(self):
            self.calls = []

        def writelines(self, buffers):
            self.calls.append(list(buffers))

    p = Collector(2, "little")
    t = FakeTransport()
    FrameProtocol.connection_made(p, t)  # the base one: Collector's wants a running loop
    payload = b"payload"
    p.send_frame(payload)
    p.send_frame(memoryview(b"xy"))
    assert len(t.calls) == 2
    header, body = t.calls[0]
    assert header == b"\x07\x00" and body is payload  # no copy, no concatenation
    assert t.calls[1][0] == b"\x02\x00" and bytes(t.calls[1][1]) == b"xy"
    with pytest.raises(ValueError):
        p.send_frame(b"z" * 65536)  # does not fit a 2-byte header


def test_send_frame_before_connection_made():
    with pytest.raises(RuntimeError):
        Collector().send_frame(b"x")


def test_frames_over_tcp_both_ways(loop, run):
    async def main():
        server_lost = loop.create_future()

        class Echo(FrameProtocol):
            def frame_received(self, frame):
                self.send_frame(bytes(frame))

            def connection_lost(self, exc):
                server_lost.set_result(exc)

        server = await loop.create_server(lambda: Echo(2), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        frames = [b"", b"a", b"hello" * 1000, bytes(range(256)) * 200]
        client = Collector(2, expect=len(frames))
        transport, _ = await loop.create_connection(lambda: client, "127.0.0.1", port)
        for f in frames:
            client.send_frame(f)
        await client.done
        assert client.frames == frames
        transport.close()
        assert await server_lost is None  # the server saw a clean close
        server.close()
        await server.wait_closed()
        for _ in range(10):  # let the client's connection_lost run
            if client.lost:
                break
            await asyncio.sleep(0)
        assert client.lost == [None]

    before = open_sockets()
    run(main())
    assert open_sockets() <= before


def test_large_frame_over_a_socket_lands_in_its_own_buffer(loop, run):
    async def main():
        proto = Collector(expect=2, buffer_size=64 * 1024)
        transport, w = await connected_pair(loop, proto)
        big = bytes(range(256)) * 4096  # 1 MiB
        await loop.sock_sendall(w, encode([big, b"after"]))
        await proto.done
        assert proto.frames == [big, b"after"]
        # while in the large frame, every region handed out is what is missing of it
        inside = [s for s in proto.buffer_sizes if s != 64 * 1024]
        assert inside and max(inside) < len(big)
        assert inside == sorted(inside, reverse=True)
        transport.close()
        w.close()

    run(main())


def test_too_large_closes_with_the_error_in_connection_lost(loop, run):
    async def main():
        proto = Collector(1, max_frame_size=100)
        transport, w = await connected_pair(loop, proto)
        await loop.sock_sendall(w, encode([b"fine"], 1) + b"\xc8" + b"x" * 50)
        await proto.done
        await asyncio.sleep(0)
        assert proto.frames == [b"fine"]
        assert len(proto.lost) == 1 and isinstance(proto.lost[0], FrameTooLarge)
        assert proto.lost[0].length == 200
        assert transport.is_closing()
        # the peer sees the connection end
        assert await asyncio.wait_for(loop.sock_recv(w, 10), 5) == b""
        w.close()

    before = open_sockets()
    run(main())
    assert open_sockets() <= before


def test_exception_in_frame_received_closes_with_it(loop, run):
    class Failing(Collector):
        def frame_received(self, frame):
            super().frame_received(frame)
            if bytes(frame) == b"bad":
                raise KeyError("handler bug")

    async def main():
        reports = []
        loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
        proto = Failing(1)
        transport, w = await connected_pair(loop, proto)
        await loop.sock_sendall(w, encode([b"ok", b"bad", b"never"], 1))
        await proto.done
        for _ in range(10):
            if proto.lost:
                break
            await asyncio.sleep(0)
        assert proto.frames == [b"ok", b"bad"]
        assert len(proto.lost) == 1 and isinstance(proto.lost[0], KeyError)
        assert any(isinstance(r.get("exception"), KeyError) for r in reports)
        w.close()

    before = open_sockets()
    run(main())
    assert open_sockets() <= before


def test_mutable_payload_can_be_reused_after_send(loop, run):
    async def main():
        a, b = socket.socketpair()
        b.setblocking(False)
        sender = Collector()
        transport, _ = await loop.create_connection(lambda: sender, sock=a)
        payload = bytearray(b"original")
        sender.send_frame(payload)
        payload[:] = b"CHANGED!"
        got = b""
        while len(got) < 12:
            chunk = await asyncio.wait_for(loop.sock_recv(b, 100), 5)
            assert chunk
            got += chunk
        assert got == encode_header(8) + b"original"
        transport.close()
        b.close()

    run(main())


@NO_FIXTURE_RESET
@given(frames=st.lists(st.binary(max_size=5000), min_size=1, max_size=20),
       cut_seed=st.lists(st.integers(0, 100_000), max_size=15),
       header=st.sampled_from([(1, "big"), (2, "little"), (4, "big"), (8, "little")]))
def test_random_streams_through_sockets(loop, run, frames, cut_seed, header):
    hs, bo = header
    if hs == 1:
        frames = [f[:255] for f in frames]
    data = encode(frames, hs, bo)
    cuts = [c % len(data) for c in cut_seed]

    async def main():
        proto = Collector(hs, bo, expect=len(frames), buffer_size=1024)
        transport, w = await connected_pair(loop, proto)
        await send_in_pieces(loop, w, data, cuts)
        await proto.done
        assert proto.frames == frames
        transport.close()
        w.close()

    run(main())
