"""HTTP/2 (`http2=True`) against nginx over TLS: ALPN, one multiplexed connection per
origin, bodies both ways, and HTTP/1.1 when the server does not offer h2."""
from __future__ import annotations

import asyncio

from corenet.https import AsyncClient, Limits
from https_helpers import server_holds, until
from https_servers import SMALL, TEXT


def test_get_speaks_h2_and_reuses_one_connection(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, http2=True) as c:
            rs = [await c.get(env.h2 + "/small.txt") for _ in range(5)]
            return rs, c.pool.connections_opened

    rs, opened = run(main())
    assert all(r.status_code == 200 and r.content == SMALL for r in rs)
    assert rs[0].http_version == "HTTP/2"
    assert rs[0].headers["content-length"] == "1024"
    assert [r.extensions["connection_reused"] for r in rs] == [False, True, True, True, True]
    assert opened == 1


def test_concurrent_requests_share_one_connection(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, http2=True) as c:
            rs = await asyncio.gather(*(c.get(env.h2 + "/small.txt") for _ in range(50)))
            return rs, c.pool.connections_opened

    rs, opened = run(main())
    assert all(r.content == SMALL and r.http_version == "HTTP/2" for r in rs)
    assert opened == 1
    assert len({r.extensions["stream_id"] for r in rs}) == 50


def test_large_download_whole_and_streamed(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, http2=True) as c:
            whole = await c.get(env.h2 + "/large.bin")
            parts = []
            async with c.stream("GET", env.h2 + "/large.bin") as r:
                async for chunk in r.aiter_bytes():
                    parts.append(chunk)
            again = await c.get(env.h2 + "/small.txt")
            return whole, b"".join(parts), len(parts), again, c.pool.connections_opened

    whole, streamed, pieces, again, opened = run(main())
    assert whole.content == env.large and streamed == env.large
    assert pieces > 1
    assert again.content == SMALL and opened == 1


def test_post_bytes_and_streamed_body(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, http2=True) as c:
            a = await c.post(env.h2 + "/echo", content=b"x" * 100_000)

            async def gen():
                for _ in range(10):
                    yield b"y" * 50_000

            b = await c.post(env.h2 + "/echo", content=gen(),
                             headers={"Content-Length": "500000"})
            e = await c.get(env.h2 + "/echo")
            return a, b, e

    a, b, e = run(main())
    assert a.text == "POST||100000\n"
    assert b.text == "POST||500000\n"
    assert e.text == "GET||\n"


def test_gzip_redirects_and_closing_stream_early(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, http2=True, follow_redirects=True) as c:
            gz = await c.get(env.h2 + "/gz/text.txt")
            red = await c.get(env.h2 + "/r/3")
            async with c.stream("GET", env.h2 + "/large.bin") as r:
                first = await r.aiter_raw().__anext__()
            after = await c.get(env.h2 + "/small.txt")
            return gz, red, first, after, c.pool.connections_opened

    gz, red, first, after, opened = run(main())
    assert gz.content == TEXT and gz.headers["content-encoding"] == "gzip"
    assert red.content == SMALL and len(red.history) == 3
    assert first and after.content == SMALL
    assert opened == 1  # a stream reset, not the connection


def test_http11_when_server_does_not_offer_h2(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, http2=True) as c:
            rs = await asyncio.gather(*(c.get(env.base + "/small.txt") for _ in range(3)))
            return rs

    rs = run(main())
    assert all(r.http_version == "HTTP/1.1" and r.content == SMALL for r in rs)


def test_abandoned_streams_give_their_window_back(env, run):
    # Each abandoned download leaves up to a stream window (4 MiB) received and unread;
    # the connection window (16 MiB) would be spent after four of them if they kept it.
    async def main():
        async with AsyncClient(verify=env.ca, http2=True) as c:
            for _ in range(8):
                async with c.stream("GET", env.h2 + "/large.bin") as r:
                    async for _chunk in r.aiter_raw():
                        await asyncio.sleep(0.01)  # let the server fill the window
                        break
            last = await c.get(env.h2 + "/large.bin")
            return last, c.pool.connections_opened

    last, opened = run(main(), timeout=30)
    assert last.content == env.large and opened == 1


def test_h2_through_a_connect_tunnel(env, run):
    async def main():
        proxy = f"http://127.0.0.1:{env.proxy_port}"
        async with AsyncClient(verify=env.ca, http2=True, proxy=proxy) as c:
            rs = await asyncio.gather(*(c.get(env.h2 + "/small.txt") for _ in range(5)))
            return rs, c.pool.connections_opened

    rs, opened = run(main())
    assert all(r.http_version == "HTTP/2" and r.content == SMALL for r in rs)
    assert opened == 1


def test_no_timeouts_at_all(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, http2=True, timeout=None) as c:
            return await c.get(env.h2 + "/small.txt")

    r = run(main())
    assert r.http_version == "HTTP/2" and r.content == SMALL


# ---- the pool's keep-alive limits, for HTTP/2 as for HTTP/1.1 ----

def test_h2_connection_idle_past_keepalive_expiry_is_closed_not_used(env, run):
    async def main():
        limits = Limits(keepalive_expiry=0.3)
        async with AsyncClient(verify=env.ca, http2=True, limits=limits) as c:
            a = await c.get(env.h2 + "/small.txt")
            b = await c.get(env.h2 + "/small.txt")  # within the expiry: the same connection
            await asyncio.sleep(0.6)
            d = await c.get(env.h2 + "/small.txt")
            return [r.extensions["connection_reused"] for r in (a, b, d)], \
                a.extensions["ssl_object"], d.extensions["ssl_object"], \
                c.pool.connections_opened, c.pool.open_count

    reused, first, last, opened, open_now = run(main())
    assert reused == [False, True, False]
    assert first is not last
    assert opened == 2
    assert open_now == 1  # the expired one was closed, not left beside the new one


def test_h2_idle_connections_kept_at_most_max_keepalive(env, run):
    # Two origins on the one server (localhost and 127.0.0.1): one HTTP/2 connection each.
    other = f"https://127.0.0.1:{env.h2_port}"

    async def main(keep):
        limits = Limits(max_keepalive_connections=keep)
        async with AsyncClient(verify=env.ca, http2=True, limits=limits) as c:
            await c.get(env.h2 + "/small.txt")
            await c.get(other + "/small.txt")
            counts = (c.pool.open_count, c.pool.idle_count)
            again = await c.get(env.h2 + "/small.txt")
            return counts, again.http_version, c.pool.connections_opened

    assert run(main(2)) == ((2, 2), "HTTP/2", 2)
    # One kept: the second connection to go idle is closed at once.
    assert run(main(1)) == ((1, 1), "HTTP/2", 2)
    # None kept: every connection closes when its last stream ends.
    assert run(main(0)) == ((0, 0), "HTTP/2", 3)


def test_idle_h2_connection_evicted_for_another_origin(env, run):
    other = f"https://127.0.0.1:{env.h2_port}"

    async def main():
        limits = Limits(max_connections=1, keepalive_expiry=None)
        async with AsyncClient(verify=env.ca, http2=True, limits=limits, timeout=5) as c:
            a = await c.get(env.h2 + "/small.txt")
            b = await c.get(other + "/small.txt")  # needs the one slot the first holds idle
            return a.content, b.content, b.http_version, c.pool.open_count

    a, b, version, open_now = run(main())
    assert a == b == SMALL and version == "HTTP/2"
    assert open_now == 1



def test_idle_h2_connection_closed_on_a_timer_without_another_request(env, run):
    async def main():
        await until(lambda: server_holds(env.h2_port) == 0)
        base = server_holds(env.h2_port)
        limits = Limits(keepalive_expiry=0.4)
        async with AsyncClient(verify=env.ca, http2=True, limits=limits) as c:
            r = await c.get(env.h2 + "/small.txt")
            held = (c.pool.open_count, c.pool.idle_count, server_holds(env.h2_port))
            # No request follows: the pool's timer closes the connection on its own.
            closed = await until(lambda: c.pool.open_count == 0)
            seen = await until(lambda: server_holds(env.h2_port) == base)
            after = (c.pool.open_count, c.pool.idle_count, server_holds(env.h2_port))
            again = await c.get(env.h2 + "/small.txt")
            return (r.http_version, base, held, closed, seen, after,
                    again.extensions["connection_reused"], c.pool.connections_opened)

    version, base, held, closed, seen, after, reused, opened = run(main())
    assert version == "HTTP/2"
    assert held == (1, 1, base + 1)
    assert closed and seen  # our pool let it go, and nginx saw the close
    assert after == (0, 0, base)
    assert reused is False and opened == 2


def test_h2_stream_in_flight_outlives_keepalive_expiry(env, run):
    # /stall trickles its body a byte per 50 ms: the stream stays open for several
    # expiry periods and must not be cut, while a connection with no stream would be.
    async def main():
        limits = Limits(keepalive_expiry=0.2)
        async with AsyncClient(verify=env.ca, http2=True, limits=limits, timeout=10) as c:
            await c.get(env.h2 + "/small.txt")  # the connection goes idle once: timer armed
            got = 0
            async with c.stream("GET", env.h2 + "/stall") as r:
                loop = asyncio.get_running_loop()
                end = loop.time() + 1.0
                async for chunk in r.aiter_raw():
                    got += len(chunk)
                    if loop.time() > end:
                        break
                during = (c.pool.open_count, r.http_version)
            closed = await until(lambda: c.pool.open_count == 0)
            return got, during, closed, c.pool.connections_opened

    got, during, closed, opened = run(main())
    assert got >= 10  # a byte each 50 ms for a second, across five expiry periods
    assert during == (1, "HTTP/2")
    assert closed and opened == 1
