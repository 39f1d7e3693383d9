"""Whole bodies of a known length land straight in their final bytes object (`_sink.pyx`):
the bytes must be exactly the server's, over TLS and plain TCP, whatever the record and
segment boundaries, and every way a server can get the length wrong must still end in a
clear error or a discarded connection."""
from __future__ import annotations

import tracemalloc

import pytest

from corenet.https import AsyncClient, RemoteProtocolError
from corenet.https._sink import BodySink
from corenet.https.limits import Limits


def pattern(n: int) -> bytes:
    block = bytes(range(251))
    return (block * (n // 251 + 1))[:n]


def base(env, scheme: str) -> str:
    return env.raw if scheme == "tls" else env.raw_plain


SCHEMES = ["tls", "plain"]


# ---- the sink on its own ----

def test_sink_fills_in_place_and_hands_out_the_bytes_once():
    s = BodySink(10)
    s.write(b"abc")
    mv = memoryview(s)
    assert (len(mv), mv.readonly) == (7, False)
    mv[:4] = b"defg"
    mv.release()
    s.advance(4)
    s.write(memoryview(b"hij"))
    assert (s.filled, s.left) == (10, 0)
    data = s.take()
    assert type(data) is bytes and data == b"abcdefghij"
    with pytest.raises(ValueError):
        s.take()  # taken already
    with pytest.raises(BufferError):
        memoryview(s)


def test_sink_refuses_overflow_an_early_take_and_a_live_view():
    s = BodySink(4)
    with pytest.raises(ValueError):
        s.write(b"12345")
    with pytest.raises(ValueError):
        s.advance(5)
    with pytest.raises(ValueError):
        s.advance(-1)
    s.write(b"12")
    with pytest.raises(ValueError, match="2 of 4"):
        s.take()
    s.write(b"34")
    mv = memoryview(s)  # an export that outlives the fill would let the bytes change
    with pytest.raises(BufferError):
        s.take()
    mv.release()
    assert s.take() == b"1234"
    with pytest.raises(ValueError):
        BodySink(-1)


def test_empty_sink():
    s = BodySink(0)
    s.write(b"")
    assert s.take() == b""


# ---- through the client ----

@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("n", [32 * 1024 - 1, 32 * 1024, 100_003, 3 * 1024 * 1024 + 7])
def test_whole_body_is_exact_at_every_size(env, run, scheme, n):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            a = await c.get(f"{base(env, scheme)}/big?n={n}")
            b = await c.get(f"{base(env, scheme)}/big?n={n}")  # again, on the kept connection
            return a.content, b.content, c.pool.connections_opened

    a, b, opened = run(main())
    assert a == pattern(n) and b == a
    assert opened == 1


@pytest.mark.parametrize("scheme", SCHEMES)
def test_streamed_and_whole_reads_of_one_body_agree(env, run, scheme):
    n = 1_000_000

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            async with c.stream("GET", f"{base(env, scheme)}/big?n={n}") as r:
                chunks = [ch async for ch in r.aiter_bytes()]
            whole = await c.get(f"{base(env, scheme)}/big?n={n}")
            return chunks, whole.content

    chunks, whole = run(main())
    assert len(chunks) > 1 and b"".join(chunks) == whole == pattern(n)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_body_cut_short_is_an_error_and_the_connection_is_dropped(env, run, scheme):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            with pytest.raises(RemoteProtocolError, match="200000 of 1000000"):
                await c.get(f"{base(env, scheme)}/big-short")
            state = (c.pool.open_count, c.pool.idle_count)
            after = await c.get(f"{base(env, scheme)}/big?n=50000")
            return state, after.content

    state, after = run(main())
    assert state == (0, 0)
    assert after == pattern(50000)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_bytes_past_the_body_never_reach_it_nor_the_next_response(env, run, scheme):
    """Bytes past a Content-Length body, sent with it, make the response an error, also
    when the body lands in its final buffer; the next request gets a fresh connection."""
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            with pytest.raises(RemoteProtocolError, match="more than the 100000 body bytes"):
                await c.get(f"{base(env, scheme)}/big?n=100000&extra=5000")
            b = await c.get(f"{base(env, scheme)}/echo")
            return b.json()["path"], c.pool.connections_opened

    path, opened = run(main())
    assert path == "/echo" and opened == 2  # the polluted connection was not reused


@pytest.mark.parametrize("scheme", SCHEMES)
def test_content_length_above_the_body_limit_is_refused(env, run, scheme):
    async def main():
        async with AsyncClient(verify=env.ca, limits=Limits(max_body_bytes=60_000)) as c:
            with pytest.raises(RemoteProtocolError, match="max_body_bytes"):
                await c.get(f"{base(env, scheme)}/big?n=100000")
            return (c.pool.open_count, c.pool.idle_count)

    assert run(main()) == (0, 0)


@pytest.mark.parametrize("scheme", SCHEMES)
def test_a_whole_body_is_held_once_not_as_chunks_plus_a_joined_copy(env, run, scheme):
    n = 8 * 1024 * 1024

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            await c.get(f"{base(env, scheme)}/big?n=1000")  # connection and buffers first
            tracemalloc.start()
            try:
                r = await c.get(f"{base(env, scheme)}/big?n={n}")
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
            return r.content, peak

    content, peak = run(main())
    assert content == pattern(n)
    # Chunks joined at the end would peak at two bodies; the sink holds one.
    assert peak < 1.25 * n, f"peak {peak} bytes for a {n}-byte body"
