"""Each timeout against a server that stalls at that stage. The assertions are on the
error type and message, never on how long it took. A test of a limit on a later stage
(reading, a total deadline meant to end while reading) opens its connection first, with no
tight limit, so that a connection made slowly on a loaded machine is not what trips it."""
from __future__ import annotations

import asyncio

import pytest

from corenet.https import (
    AsyncClient, ConnectTimeout, PoolTimeout, ReadTimeout, Timeout, WriteTimeout,
)


async def _connected(c: AsyncClient, env, url: str) -> None:
    """A connection to ``url``'s server made and back in ``c``'s pool (a request without a
    tight limit): the next request to that server starts at sending."""
    if url.startswith(env.base):
        r = await c.get(env.base + "/small.txt", timeout=Timeout(30))
    else:
        r = await c.post(env.raw + "/echo", content=b"x", timeout=Timeout(30))
    assert r.status_code == 200


def test_timeout_settings():
    t = Timeout(2)
    assert (t.connect, t.read, t.write, t.pool, t.total) == (2.0, 2.0, 2.0, 2.0, None)
    t = Timeout(3, read=None, total=9)
    assert (t.connect, t.read, t.total) == (3.0, None, 9.0)
    assert Timeout.coerce(4) == Timeout(4.0)
    assert AsyncClient(timeout=1.5).timeout == Timeout(1.5)
    with pytest.raises(ValueError):
        Timeout(-1)


def test_connect_timeout_covers_a_stalled_tls_handshake(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, timeout=Timeout(5, connect=0.3)) as c:
            await c.get(f"https://localhost:{env.silent_port}/")

    with pytest.raises(ConnectTimeout, match="connecting to localhost"):
        run(main())


def test_read_timeout_when_no_response_comes(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, timeout=Timeout(5, read=0.3)) as c:
            await c.get(env.raw + "/stall-headers")

    with pytest.raises(ReadTimeout, match="no progress within 0.3 s"):
        run(main())


def test_total_deadline_stops_a_trickling_body(env, run):
    """Through nginx: a byte every 50 ms never trips the read timeout, the total does."""
    async def main():
        async with AsyncClient(verify=env.ca, timeout=Timeout(5, total=0.5)) as c:
            await _connected(c, env, env.base)
            await c.get(env.base + "/stall")

    with pytest.raises(ReadTimeout, match="total timeout of 0.5 s"):
        run(main())


def test_each_request_has_a_total_deadline_of_its_own(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, timeout=Timeout(5, total=0.3)) as c:
            await _connected(c, env, env.base)
            first = await c.get(env.base + "/small.txt")
            await asyncio.sleep(0.4)  # past the first request's total
            second = await c.get(env.base + "/small.txt")
            return first.status_code, second.status_code

    assert run(main()) == (200, 200)


def test_total_deadline_also_bounds_a_stream(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            await _connected(c, env, env.base)
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
        async with AsyncClient(verify=env.ca, timeout=Timeout(5, write=0.3)) as c:
            await c.post(env.raw + "/no-read", content=body)

    with pytest.raises(WriteTimeout, match="sending the request"):
        run(main(), timeout=20)


def test_pool_timeout_when_all_connections_stay_busy(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, max_connections=1,
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
        async with AsyncClient(verify=env.ca, max_connections=1, timeout=Timeout(5)) as c:
            results = await asyncio.gather(*(c.get(env.base + "/small.txt") for _ in range(6)))
            return [r.status_code for r in results], c.pool.connections_opened

    codes, opened = run(main())
    assert codes == [200] * 6 and opened == 1


NO_LIMITS = [None, Timeout(None), Timeout(5, connect=None), Timeout(5, read=None),
             Timeout(5, write=None), Timeout(5, pool=None), Timeout(None, total=30)]


@pytest.mark.parametrize("timeout", NO_LIMITS, ids=repr)
def test_a_stage_without_limit_completes_requests(env, run, timeout):
    """None for a stage is no limit: new connections, a body big enough to wait for the
    socket to drain, and reused connections all go through."""
    body = b"x" * (2 * 1024 * 1024)

    async def main():
        async with AsyncClient(verify=env.ca, timeout=timeout) as c:
            small = await c.get(env.base + "/small.txt")
            echo = await c.post(env.raw + "/echo", content=body)
            again = await c.get(env.base + "/small.txt", timeout=timeout)
            return (small.status_code, len(echo.json()["body"]), again.status_code,
                    again.extensions["connection_reused"])

    assert run(main(), timeout=30) == (200, len(body), 200, True)


def test_no_limit_settings():
    assert (Timeout(None).connect, Timeout(None).read, Timeout(None).write,
            Timeout(None).pool, Timeout(None).total) == (None,) * 5
    t = Timeout(5, connect=None)
    assert (t.connect, t.read, t.write, t.pool) == (None, 5.0, 5.0, 5.0)
    assert AsyncClient(timeout=None).timeout == Timeout(None)


@pytest.mark.parametrize("timeout, path, error, match", [
    (Timeout(None, read=0.3), "/stall-headers", ReadTimeout, "no progress within 0.3 s"),
    (Timeout(5, connect=None, read=0.3), "/stall-headers", ReadTimeout, "within 0.3 s"),
    (Timeout(None, connect=0.3), "silent", ConnectTimeout, "connecting to localhost"),
    (Timeout(None, total=0.4), "silent", ConnectTimeout, "total timeout of 0.4 s"),
    (Timeout(None, total=0.5), "/stall", ReadTimeout, "total timeout of 0.5 s"),
], ids=["read-only", "connect-none", "connect-only", "total-while-connecting", "total-only"])
def test_other_limits_still_apply_when_one_is_none(env, run, timeout, path, error, match):
    url = {"silent": f"https://localhost:{env.silent_port}/",
           "/stall": env.base + "/stall"}.get(path, env.raw + path)

    async def main():
        async with AsyncClient(verify=env.ca, timeout=timeout) as c:
            if error is ReadTimeout:
                await _connected(c, env, url)
            await c.get(url)

    with pytest.raises(error, match=match):
        run(main())


def test_write_limit_applies_when_read_has_none(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, timeout=Timeout(None, write=0.3)) as c:
            await c.post(env.raw + "/no-read", content=b"x" * (32 * 1024 * 1024))

    with pytest.raises(WriteTimeout, match="sending the request to localhost: no progress"):
        run(main(), timeout=20)
