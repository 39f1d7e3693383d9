"""The streams-style API: FramedStream, open_framed_connection, start_framed_server."""
from __future__ import annotations

import asyncio
import socket

import pytest

from corenet.framing import (FrameTooLarge, FramedStream, encode_header,
                             open_framed_connection, start_framed_server)
from framing_helpers import open_sockets


async def echo(stream: FramedStream) -> None:
    async for frame in stream:
        stream.write_frame(frame)
        await stream.drain()


async def serve(handler, **kw):
    server = await start_framed_server(handler, "127.0.0.1", 0, **kw)
    return server, server.sockets[0].getsockname()[1]


def test_echo_round_trip(loop, run):
    async def main():
        server, port = await serve(echo, header_size=2)
        async with server:
            stream = await open_framed_connection("127.0.0.1", port, header_size=2)
            frames = [b"", b"x", b"y" * 60000, bytes(range(256))]
            for f in frames:
                stream.write_frame(f)
            await stream.drain()
            got = [await stream.read_frame() for _ in frames]
            assert got == frames
            assert all(type(f) is bytes for f in got)
            stream.close()
            await stream.wait_closed()
            assert stream.is_closing()

    before = open_sockets()
    run(main())
    assert open_sockets() <= before


def test_clean_eof_gives_none_and_ends_iteration(loop, run):
    async def main():
        async def two_then_close(stream):
            stream.write_frame(b"one")
            stream.write_frame(b"two")

        server, port = await serve(two_then_close)
        async with server:
            stream = await open_framed_connection("127.0.0.1", port)
            assert [f async for f in stream] == [b"one", b"two"]
            assert await stream.read_frame() is None
            stream.close()
            await stream.wait_closed()

    run(main())


def test_eof_inside_a_frame_is_an_incomplete_read(loop, run):
    async def main():
        got = loop.create_future()

        async def reader(stream):
            try:
                got.set_result([await stream.read_frame(), await stream.read_frame()])
            except Exception as exc:  # noqa: BLE001 - the test inspects it
                got.set_result(exc)

        server, port = await serve(reader)
        async with server:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(encode_header(3) + b"abc" + encode_header(10) + b"12345")
            await w.drain()
            w.close()
            result = await got
            assert isinstance(result, asyncio.IncompleteReadError)
            assert result.partial == encode_header(10) + b"12345"
            assert result.expected == 14
            await w.wait_closed()

    run(main())


def test_oversized_frame_reaches_read_frame(loop, run):
    async def main():
        got = loop.create_future()

        async def reader(stream):
            frames = []
            try:
                while True:
                    frames.append(await stream.read_frame())
            except Exception as exc:  # noqa: BLE001
                got.set_result((frames, exc))

        server, port = await serve(reader, max_frame_size=10)
        async with server:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(encode_header(2) + b"ok" + encode_header(11) + b"x" * 11)
            frames, exc = await got
            assert frames == [b"ok"]
            assert isinstance(exc, FrameTooLarge) and exc.length == 11
            assert await r.read() == b""  # server closed the connection
            w.close()
            await w.wait_closed()

    run(main())


def test_read_flow_control_pauses_and_resumes(loop, run):
    async def main():
        release = asyncio.Event()
        result = loop.create_future()

        async def slow(stream):
            transport = stream._transport
            # wait until the peer's 200 frames cannot all be queued
            for _ in range(500):
                if not transport.is_reading():
                    break
                await asyncio.sleep(0.01)
            paused = not transport.is_reading()
            await release.wait()
            frames = [await stream.read_frame() for _ in range(200)]
            result.set_result((paused, frames, transport.is_reading()))

        server, port = await serve(slow, limit=4096)
        async with server:
            stream = await open_framed_connection("127.0.0.1", port)
            frames = [bytes([i]) * 500 for i in range(200)]
            for f in frames:
                stream.write_frame(f)
            await stream.drain()
            await asyncio.sleep(0.05)
            release.set()
            paused, got, reading_after = await result
            assert paused
            assert got == frames
            assert reading_after
            stream.close()
            await stream.wait_closed()

    run(main(), timeout=20)


def test_drain_waits_for_a_slow_reader(loop, run):
    async def main():
        done = loop.create_future()

        async def count(stream):
            n = 0
            async for frame in stream:
                n += len(frame)
                if n >= 32 * 1024 * 1024:
                    done.set_result(n)
                    return

        server, port = await serve(count)
        async with server:
            stream = await open_framed_connection("127.0.0.1", port)
            chunk = b"d" * (1024 * 1024)
            for _ in range(32):
                stream.write_frame(chunk)
                await stream.drain()
            assert await done == 32 * 1024 * 1024
            stream.close()
            await stream.wait_closed()

    run(main(), timeout=30)


def test_handler_exception_is_reported_and_server_keeps_serving(loop, run):
    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))

        async def picky(stream):
            frame = await stream.read_frame()
            if frame == b"boom":
                raise RuntimeError("handler failed")
            stream.write_frame(frame.upper())

        server, port = await serve(picky)
        async with server:
            bad = await open_framed_connection("127.0.0.1", port)
            bad.write_frame(b"boom")
            assert await bad.read_frame() is None  # closed by the server
            good = await open_framed_connection("127.0.0.1", port)
            good.write_frame(b"fine")
            assert await good.read_frame() == b"FINE"
            for s in (bad, good):
                s.close()
                await s.wait_closed()
        assert any(isinstance(c.get("exception"), RuntimeError) for c in errors)

    run(main())


def test_two_concurrent_readers_are_refused(loop, run):
    async def main():
        a, b = socket.socketpair()
        try:
            stream = await open_framed_connection(sock=a)
            first = asyncio.ensure_future(stream.read_frame())
            await asyncio.sleep(0)
            with pytest.raises(RuntimeError):
                await stream.read_frame()
            b.sendall(encode_header(2) + b"hi")
            assert await first == b"hi"
            stream.close()
            await stream.wait_closed()
        finally:
            b.close()

    run(main())


def test_drain_after_connection_lost_raises(loop, run):
    async def main():
        a, b = socket.socketpair()
        stream = await open_framed_connection(sock=a)
        b.close()
        assert await stream.read_frame() is None
        await asyncio.sleep(0)
        stream.close()
        await stream.wait_closed()
        with pytest.raises(ConnectionError):
            await stream.drain()
        with pytest.raises(ConnectionError):
            stream.write_frame(b"late")

    run(main())


def test_bad_options_fail_before_connecting(loop, run):
    async def main():
        with pytest.raises(ValueError):
            await open_framed_connection("127.0.0.1", 9, header_size=3)
        with pytest.raises(ValueError):
            await start_framed_server(echo, "127.0.0.1", 0, limit=0)

    before = open_sockets()
    run(main())
    assert open_sockets() <= before
