"""corenet under httpx: httpx's own clients with corenet's transport, against nginx and
rawserver, beside httpx's default transport where both can answer. Async tests run on every
loop kind (stock asyncio and corenet's)."""
from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest
import respx

from corenet.https.httpx_transport import AsyncCorenetTransport, CorenetTransport


def ctx(env) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=env.ca)


def test_async_client_over_corenet_http1(env, run):
    async def upload():
        for part in (b"one ", b"two ", b"three"):
            await asyncio.sleep(0)
            yield part

    seen = []

    async def hook(response):
        seen.append(response.status_code)

    async def main():
        t = AsyncCorenetTransport(verify=env.ca)
        async with httpx.AsyncClient(transport=t, event_hooks={"response": [hook]},
                                     base_url=env.raw, params={"k": "v"},
                                     cookies={"c": "1"}) as c:
            got = await c.get("/echo", headers={"X-A": "1"})
            posted = await c.post("/echo", content=upload())
            return got, posted, t.network.pool.connections_opened

    got, posted, opened = run(main())
    assert isinstance(got, httpx.Response) and got.http_version == "HTTP/1.1"
    echo = got.json()
    assert echo["method"] == "GET" and echo["path"] == "/echo?k=v"
    names = [k.lower() for k, _ in echo["headers"]]
    assert names.count("host") == 1 and ["X-A", "1"] in echo["headers"]
    assert ["Cookie", "c=1"] in echo["headers"]
    up = posted.json()
    assert up["body"] == "one two three" and ["Transfer-Encoding", "chunked"] in up["headers"]
    assert seen == [200, 200] and opened == 1  # one kept-alive connection for both


def test_streaming_down_and_decoding_match_httpx_s_own(env, run):
    async def fetch(transport):
        async with httpx.AsyncClient(transport=transport) as c:
            async with c.stream("GET", env.raw + "/big?n=300000") as r:
                sizes = [len(p) async for p in r.aiter_bytes(chunk_size=65536)]
                body_read = r.num_bytes_downloaded
            gz = await c.get(env.base + "/gz/small.txt", headers={"Accept-Encoding": "gzip"})
            deflated = await c.get(env.raw + "/deflate")
            return sizes, body_read, gz.headers.get("content-encoding"), gz.text, deflated.text

    ours = run(main_of(fetch, AsyncCorenetTransport(verify=env.ca)))
    theirs = run(main_of(fetch, httpx.AsyncHTTPTransport(verify=ctx(env))))
    assert ours == theirs
    assert ours[0][:4] == [65536] * 4 and sum(ours[0]) == 300000 and ours[2] == "gzip"


async def main_of(fetch, transport):
    return await fetch(transport)


def test_http2_multiplexed_over_one_connection(env, run):
    async def main():
        t = AsyncCorenetTransport(verify=env.ca, http2=True)
        async with httpx.AsyncClient(transport=t) as c:
            rs = await asyncio.gather(*(c.get(env.h2 + "/small.txt") for _ in range(8)))
            posted = await c.post(env.h2 + "/echo", content=b"x" * 1000)
            return rs, posted, t.network.pool.connections_opened

    rs, posted, opened = run(main())
    assert {r.http_version for r in rs} == {"HTTP/2"} and opened == 1
    assert len({r.content for r in rs}) == 1 and all(r.status_code == 200 for r in rs)
    assert posted.text.startswith("POST||1000")


def test_sync_client_over_corenet(env):
    def upload():
        yield b"sync "
        yield b"body"

    t = CorenetTransport(verify=env.ca)
    with httpx.Client(transport=t, base_url=env.raw) as c:
        got = c.post("/echo", content=upload()).json()
        with c.stream("GET", "/big?n=100000") as r:
            sizes = [len(p) for p in r.iter_bytes(chunk_size=30000)]
        thread = t._pool._portal.thread
        assert thread.is_alive()
    assert not thread.is_alive()  # closing the client ends the transport's loop
    assert got["body"] == "sync body" and sizes == [30000, 30000, 30000, 10000]


def test_timeouts_are_httpx_s_exceptions(env, run):
    async def main():
        t = AsyncCorenetTransport(verify=env.ca, limits=httpx.Limits(max_connections=1))
        async with httpx.AsyncClient(transport=t) as c:
            with pytest.raises(httpx.ReadTimeout):
                await c.get(env.raw + "/stall-headers", timeout=httpx.Timeout(5, read=0.2))
            with pytest.raises(httpx.ConnectTimeout):
                await c.get(f"https://localhost:{env.silent_port}/",
                            timeout=httpx.Timeout(5, connect=0.2))
            async with c.stream("GET", env.raw + "/big?n=100000"):
                with pytest.raises(httpx.PoolTimeout):  # the one connection is taken
                    await c.get(env.raw + "/echo", timeout=httpx.Timeout(5, pool=0.2))
            return (await c.get(env.raw + "/echo")).status_code

    assert run(main()) == 200


@pytest.mark.parametrize("path, error", [
    ("/bad-chunk", httpx.RemoteProtocolError),
    ("/short-body", httpx.RemoteProtocolError),
    ("/bad-status", httpx.RemoteProtocolError),
])
def test_errors_are_httpx_s_as_httpx_raises_them(env, run, path, error):
    async def fetch(transport):
        async with httpx.AsyncClient(transport=transport) as c:
            try:
                await c.get(env.raw + path)
            except httpx.HTTPError as exc:
                return type(exc)
            return None

    ours = run(main_of(fetch, AsyncCorenetTransport(verify=env.ca)))
    theirs = run(main_of(fetch, httpx.AsyncHTTPTransport(verify=ctx(env))))
    assert ours is theirs is error


@pytest.mark.parametrize("where", ["expired", "refused"])
def test_connect_errors_are_httpx_s(env, run, where):
    url = {"expired": f"https://localhost:{env.expired_port}/",
           "refused": "https://127.0.0.1:1/"}[where]

    async def fetch(transport):
        async with httpx.AsyncClient(transport=transport) as c:
            with pytest.raises(httpx.HTTPError) as info:
                await c.get(url)
            return type(info.value), info.value.request.url

    assert run(main_of(fetch, AsyncCorenetTransport(verify=env.ca))) == run(
        main_of(fetch, httpx.AsyncHTTPTransport(verify=ctx(env)))) == (httpx.ConnectError,
                                                                      httpx.URL(url))


def test_a_cancelled_request_gives_its_connection_back(env, run):
    async def main():
        t = AsyncCorenetTransport(verify=env.ca, limits=httpx.Limits(max_connections=1))
        async with httpx.AsyncClient(transport=t, timeout=5) as c:
            task = asyncio.ensure_future(c.get(env.raw + "/stall-headers"))
            for _ in range(500):        # its connection made (a loaded machine takes a while)
                if t.network.pool.connections_opened:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.05)   # and its request sent
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # the pool's one connection is free again: this does not wait for it
            r = await c.get(env.raw + "/echo", timeout=httpx.Timeout(5, pool=0.5))
            return r.status_code, t.network.pool.connections_opened

    assert run(main()) == (200, 2)  # the stalled connection was dropped, a new one made


def test_pool_limits_hold_concurrent_requests(env, run):
    async def main():
        t = AsyncCorenetTransport(verify=env.ca, limits=httpx.Limits(max_connections=2))
        async with httpx.AsyncClient(transport=t) as c:
            rs = await asyncio.gather(*(c.get(env.raw + "/echo") for _ in range(10)))
            return [r.status_code for r in rs], t.network.pool.connections_opened

    codes, opened = run(main())
    assert codes == [200] * 10 and opened == 2


def test_auth_and_redirects_are_httpx_s(env, run):
    async def main():
        t = AsyncCorenetTransport(verify=env.ca)
        async with httpx.AsyncClient(transport=t, follow_redirects=True) as c:
            r = await c.get(env.base + "/r/3")
            d = await c.get(env.raw + "/digest", auth=httpx.DigestAuth("dg", "pw"))
            return [h.status_code for h in r.history], r.text, d.text

    history, text, digest = run(main())
    assert history == [301, 302, 302] and text and digest == "digest ok"


def test_respx_mocks_requests_sent_through_corenet(env, run):
    async def main():
        async with httpx.AsyncClient(transport=AsyncCorenetTransport(verify=env.ca)) as c:
            with respx.mock(using="httpx") as mock:
                route = mock.get("https://api.test/users").respond(200, json=[1, 2])
                got = (await c.get("https://api.test/users")).json()
                calls = route.call_count
            real = (await c.get(env.raw + "/echo")).status_code  # unmocked: the network
            return got, calls, real

    assert run(main()) == ([1, 2], 1, 200)


def test_pytest_httpx_mocks_requests_sent_through_corenet(httpx_mock, env):
    httpx_mock.add_response(url="https://api.test/items", json={"n": 3})
    with httpx.Client(transport=CorenetTransport(verify=env.ca)) as c:
        assert c.get("https://api.test/items").json() == {"n": 3}

    async def main():
        async with httpx.AsyncClient(transport=AsyncCorenetTransport(verify=env.ca)) as c:
            return (await c.get("https://api.test/items")).json()

    httpx_mock.add_response(url="https://api.test/items", json={"n": 4})
    assert asyncio.run(main()) == {"n": 4}
