"""Each timeout against a server that stalls at that stage. The assertions are on the
error type and message, never on how long it took."""
from __future__ import annotations

import asyncio

import pytest

from corenet.https import (
    Client, ConnectTimeout, PoolTimeout, ReadTimeout, Timeout, WriteTimeout,
)


def test_timeout_settings():
    t = Timeout(2)
    assert (t.connect, t.read, t.write, t.pool, t.total) == (2.0, 2.0, 2.0, 2.0, None)
    t = Timeout(3, read=None, total=9)
    assert (t.connect, t.read, t.total) == (3.0, None, 9.0)
    assert Timeout.coerce(4) == Timeout(4.0)
    assert Client(timeout=1.5).timeout == Timeout(1.5)
    with pytest.raises(ValueError):
        Timeout(-1)


def test_connect_timeout_covers_a_stalled_tls_handshake(env, run):
    async def main():
        async with Client(verify=env.ca, timeout=Timeout(5, connect=0.3)) as c:
            await c.get(f"https://localhost:{env.silent_port}/")

    with pytest.raises(ConnectTimeout, match="connecting to localhost"):
        run(main())


def test_read_timeout_when_no_response_comes(env, run):
    async def main():
        async with Client(verify=env.ca, timeout=Timeout(5, read=0.3)) as c:
            await c.get(env.raw + "/stall-headers")

    with pytest.raises(ReadTimeout, match="no progress within 0.3 s"):
        run(main())


def test_total_deadline_stops_a_trickling_body(env, run):
    """Through nginx: a byte every 50 ms never trips the read timeout, the total does."""
    async def main():
        async with Client(verify=env.ca, timeout=Timeout(5, total=0.5)) as c:
            await c.get(env.base + "/stall")

    with pytest.raises(ReadTimeout, match="total timeout of 0.5 s"):
        run(main())


def test_total_deadline_also_bounds_a_stream(env, run):
    async def main():
        async with Client(verify=env.ca) as c:
            async with c.stream("GET", env.base + "/stall",
                                timeout=Timeout(5, total=0.5)) as r:
                got = 0
                async for chunk in r.aiter_bytes():
                    got += len(chunk)
                return got

    with pytest.raises(ReadTimeout, match="total timeout"):
        run(main())


def test_write_timeout_when_server_does_not_read(env, run):
    body = b"x" * (32 * 1024 * 1024)

    async def main():
        async with Client(verify=env.ca, timeout=Timeout(5, write=0.3)) as c:
            await c.post(env.raw + "/no-read", content=body)

    with pytest.raises(WriteTimeout, match="sending the request"):
        run(main(), timeout=20)


def test_pool_timeout_when_all_connections_stay_busy(env, run):
    async def main():
        async with Client(verify=env.ca, max_connections=1,
                          timeout=Timeout(5, pool=0.2)) as c:
            async with c.stream("GET", env.base + "/stall"):
                with pytest.raises(PoolTimeout, match="waiting for a free connection"):
                    await c.get(env.base + "/small.txt")
            # the busy connection was given back (discarded): the pool works again
            r = await c.get(env.base + "/small.txt")
            return r.status_code, c.pool.open_count

    assert run(main()) == (200, 1)


def test_pool_waiter_gets_a_released_connection(env, run):
    async def main():
        async with Client(verify=env.ca, max_connections=1, timeout=Timeout(5)) as c:
            results = await asyncio.gather(*(c.get(env.base + "/small.txt") for _ in range(6)))
            return [r.status_code for r in results], c.pool.connections_opened

    codes, opened = run(main())
    assert codes == [200] * 6 and opened == 1
