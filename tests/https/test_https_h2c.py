"""HTTP/2 only (`http2=True, http1=False`, as in httpx): with prior knowledge to http://
origins (h2c, RFC 9113 3.3) and h2 alone in ALPN to https ones, against nginx; and the
clear errors where it cannot be spoken."""
from __future__ import annotations

import asyncio

import pytest

from corenet.https import (
    AsyncClient, ConnectError, ReadError, RemoteProtocolError, Client, UnsupportedProtocol,
)
from https_servers import SMALL


def test_h2c_multiplexes_requests_on_one_connection(env, run):
    async def main():
        async with AsyncClient(http2=True, http1=False) as c:
            first = await c.get(env.h2c + "/small.txt")
            rs = await asyncio.gather(*(c.get(env.h2c + "/small.txt") for _ in range(20)))
            big = await c.get(env.h2c + "/large.bin")
            posted = await c.post(env.h2c + "/echo", content=b"x" * 70_000)
            return first, rs, big, posted, c.pool.connections_opened

    first, rs, big, posted, opened = run(main())
    assert first.http_version == "HTTP/2" and first.content == SMALL
    assert all(r.http_version == "HTTP/2" and r.content == SMALL for r in rs)
    assert len({r.extensions["stream_id"] for r in rs}) == 20
    assert big.content == env.large
    assert posted.text == "POST||70000\n"
    assert opened == 1


def test_h2c_from_the_sync_client(env):
    with Client(http2=True, http1=False) as c:
        r = c.get(env.h2c + "/small.txt")
    assert r.http_version == "HTTP/2" and r.content == SMALL


def test_http_urls_stay_http11_unless_http1_is_off(env, run):
    """http2=True alone never speaks h2c: an http:// origin gets HTTP/1.1, as in httpx."""
    async def main():
        async with AsyncClient(http2=True) as c:
            return await c.get(env.raw_plain + "/echo")

    r = run(main())
    assert r.http_version == "HTTP/1.1" and r.status_code == 200


def test_h2_only_over_tls(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, http2=True, http1=False) as c:
            ok = await c.get(env.h2 + "/small.txt")
            try:
                await c.get(env.base + "/small.txt")  # this port offers HTTP/1.1 only
            except ConnectError as exc:
                return ok, exc
            return ok, None

    ok, refused = run(main())
    assert ok.http_version == "HTTP/2" and ok.content == SMALL
    # nginx ends a handshake that has no protocol in common (no_application_protocol).
    assert refused is not None and "no application protocol" in str(refused).lower()


def test_h2c_to_a_server_that_speaks_http11_is_a_clear_error(env, run):
    """The server answers the connection preface with an HTTP/1.1 error and closes: the
    request fails on what came back (not HTTP/2), or on the reset when the server's
    kernel threw away our unread frames (then the answer is lost with them)."""
    async def main():
        async with AsyncClient(http2=True, http1=False, timeout=5) as c:
            await c.get(env.raw_plain + "/echo")

    with pytest.raises((RemoteProtocolError, ReadError)):
        run(main())


def test_h2c_through_a_forwarding_proxy_is_refused(env, run):
    async def main():
        async with AsyncClient(http2=True, http1=False,
                          proxy=f"http://127.0.0.1:{env.proxy_port}") as c:
            await c.get(env.h2c + "/small.txt")

    with pytest.raises(UnsupportedProtocol, match="prior knowledge"):
        run(main())


def test_no_protocol_left_is_a_value_error():
    with pytest.raises(ValueError, match="http1=False"):
        AsyncClient(http1=False)
