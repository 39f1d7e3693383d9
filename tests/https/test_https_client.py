"""The client against real nginx over TLS (and rawserver for what nginx cannot do), on
every loop kind of the shared `loop` fixture."""
from __future__ import annotations

import asyncio
import contextlib
import gc
import socket
import ssl
import time

import pytest

import corenet.https.connection as conn_mod
from corenet.https import (
    AsyncClient, Client, ConnectError, DecodingError, HTTPStatusError, Limits, LocalProtocolError,
    RemoteProtocolError, TLSError, TooManyRedirects,
)
from https_servers import SMALL, TEXT
from https_helpers import open_fds, server_holds, until


def test_get_keepalive_reuses_one_connection(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            rs = [await c.get(env.base + "/small.txt") for _ in range(5)]
            return rs, c.pool.connections_opened

    rs, opened = run(main())
    assert all(r.status_code == 200 and r.content == SMALL for r in rs)
    assert rs[0].http_version == "HTTP/1.1" and rs[0].reason_phrase == "OK"
    assert rs[0].headers["content-length"] == "1024"
    assert [r.extensions["connection_reused"] for r in rs] == [False, True, True, True, True]
    assert opened == 1


def test_large_download_whole_and_streamed(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            whole = await c.get(env.base + "/large.bin")
            sizes = []
            async with c.stream("GET", env.base + "/large.bin") as r:
                parts = []
                async for chunk in r.aiter_bytes():
                    sizes.append(len(chunk))
                    parts.append(chunk)
            return whole, b"".join(parts), sizes

    whole, streamed, sizes = run(main())
    assert whole.content == env.large
    assert streamed == env.large
    assert len(sizes) > 1  # it really arrived in pieces
    assert whole.elapsed.total_seconds() > 0


def test_a_contexts_own_sslobject_class_reads_and_writes(env, run):
    calls = {"read": 0, "write": 0}

    class Counted(ssl.SSLObject):
        def read(self, *args):
            calls["read"] += 1
            return super().read(*args)

        def write(self, data):
            calls["write"] += 1
            return super().write(data)

    ctx = ssl.create_default_context(cafile=env.ca)
    ctx.sslobject_class = Counted

    async def main():
        async with AsyncClient(verify=ctx) as c:
            small = await c.get(env.base + "/small.txt")
            large = await c.get(env.base + "/large.bin")
            return small, large

    small, large = run(main())
    assert small.content == SMALL and large.content == env.large
    assert type(small.extensions["ssl_object"]) is Counted
    assert calls["write"] == 2 and calls["read"] >= 2


def test_gzip_is_decoded(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return await c.get(env.base + "/gz/text.txt")

    r = run(main())
    assert r.headers["content-encoding"] == "gzip"
    assert r.content == TEXT
    assert r.text.startswith("line 00000")


def test_deflate_is_decoded(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return await c.get(env.raw + "/deflate")

    assert run(main()).content == b"deflated " * 100


def test_chunked_route_is_chunked_on_the_wire_and_decoded(env, run):
    ctx = ssl.create_default_context(cafile=env.ca)
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(b"GET /chunked.shtml HTTP/1.1\r\nHost: localhost\r\n"
                      b"Connection: close\r\n\r\n")
            wire = b""
            for _ in range(1000):
                data = s.recv(65536)
                if not data:
                    break
                wire += data
    head = wire.split(b"\r\n\r\n", 1)[0].lower()
    assert b"transfer-encoding: chunked" in head and b"content-length" not in head

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return await c.get(env.base + "/chunked.shtml")

    r = run(main())
    assert r.text.startswith("<p>start</p>") and r.text.count("<p>tail</p>") == 50


def test_redirect_chain_relative_locations(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True) as c:
            return await c.get(env.base + "/r/3")

    r = run(main())
    assert r.status_code == 200 and r.content == SMALL
    assert [h.status_code for h in r.history] == [301, 302, 302]
    assert r.url == env.base + "/small.txt"
    assert r.history[0].url == env.base + "/r/3"


def test_redirect_limit(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True, max_redirects=3) as c:
            await c.get(env.base + "/loop")

    with pytest.raises(TooManyRedirects, match="Exceeded maximum allowed redirects"):
        run(main())


def test_redirect_not_followed_when_disabled(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=False) as c:
            return await c.get(env.base + "/r/1")

    r = run(main())
    assert r.status_code == 302 and r.headers["location"] == "/small.txt"


@pytest.mark.parametrize("route, expect", [
    ("/r302", "GET||"), ("/r303", "GET||"), ("/r307", "POST||5"), ("/r308", "POST||5"),
])
def test_redirect_method_rules(env, run, route, expect):
    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True) as c:
            return await c.post(env.base + route, content=b"hello")

    r = run(main())
    assert r.text.strip() == expect
    assert r.history[0].status_code == int(route[2:])


def test_authorization_dropped_across_origins_only(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True) as c:
            same = await c.get(env.base + "/r302", headers={"Authorization": "Bearer s"})
            cross = await c.get(env.base + "/cross", headers={"Authorization": "Bearer s"})
            return same, cross

    same, cross = run(main())
    assert same.text.strip() == "GET|Bearer s|"
    assert cross.text.strip() == "GET||"
    assert cross.url.host == "127.0.0.1" and cross.url.scheme == "https"


def test_etag_304_has_no_body_and_keeps_the_connection(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            first = await c.get(env.base + "/small.txt")
            again = await c.get(env.base + "/small.txt",
                                headers={"If-None-Match": first.headers["etag"]})
            after = await c.get(env.base + "/small.txt")
            return first, again, after, c.pool.connections_opened

    first, again, after, opened = run(main())
    assert again.status_code == 304 and again.content == b""
    assert after.content == SMALL and opened == 1


def test_head_has_no_body_and_keeps_the_connection(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            h = await c.head(env.base + "/large.bin")
            g = await c.get(env.base + "/small.txt")
            return h, g, c.pool.connections_opened

    h, g, opened = run(main())
    assert h.status_code == 200 and h.content == b""
    assert h.headers["content-length"] == str(len(env.large))
    assert g.content == SMALL and opened == 1


def test_connection_close_is_honoured(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            a = await c.get(env.base + "/close")
            b = await c.get(env.base + "/close")
            return a, b, c.pool.connections_opened, c.pool.idle_count

    a, b, opened, idle = run(main())
    assert a.headers["connection"] == "close" and b.text == "bye\n"
    assert opened == 2 and idle == 0


def test_json_text_params_and_status(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            echo = await c.post(env.raw + "/echo", params={"q": "a b", "n": [1, 2]},
                                json={"k": "v"})
            missing = await c.get(env.base + "/nope")
            return echo, missing

    echo, missing = run(main())
    body = echo.json()
    assert body["path"] == "/echo?q=a+b&n=1&n=2"
    assert body["body"] == '{"k":"v"}'
    assert ["Content-Type", "application/json"] in body["headers"]
    assert echo.raise_for_status() is echo
    assert missing.status_code == 404
    with pytest.raises(HTTPStatusError, match="404") as info:
        missing.raise_for_status()
    assert info.value.response is missing


def test_streamed_chunked_upload(env, run):
    async def gen():
        for i in range(5):
            yield b"part%d;" % i
            await asyncio.sleep(0)

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return (await c.put(env.raw + "/echo", content=gen())).json()

    body = run(main())
    assert body["method"] == "PUT"
    assert body["body"] == "part0;part1;part2;part3;part4;"
    assert ["Transfer-Encoding", "chunked"] in body["headers"]


def test_header_injection_refused_before_any_connection(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            with pytest.raises(LocalProtocolError, match="CR, LF"):
                await c.get(env.base + "/small.txt", headers={"X-A": "v\r\nX-Evil: 1"})
            return c.pool.connections_opened

    assert run(main()) == 0


# ---- TLS ----

def test_tls_expired_certificate(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            await c.get(f"https://localhost:{env.expired_port}/small.txt")

    with pytest.raises(TLSError) as info:
        run(main())
    assert "expired" in info.value.reason


def test_tls_wrong_hostname(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            await c.get(f"https://localhost:{env.wrongname_port}/small.txt")

    with pytest.raises(TLSError) as info:
        run(main())
    assert "Hostname mismatch" in info.value.reason and "localhost" in str(info.value)


def test_tls_unknown_ca_is_refused_by_default(env, run):
    async def main():
        async with AsyncClient() as c:
            await c.get(env.base + "/small.txt")

    with pytest.raises(TLSError) as info:
        run(main())
    assert "local issuer" in info.value.reason


def test_verify_false_must_be_explicit(env, run):
    async def main():
        async with AsyncClient(verify=False) as c:
            return await c.get(f"https://localhost:{env.expired_port}/small.txt")

    assert run(main()).content == SMALL


@pytest.mark.parametrize("version", ["TLSv1.2", "TLSv1.3"])
def test_tls_session_resumption(env, run, version):
    ctx = ssl.create_default_context(cafile=env.ca)
    ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, version.replace(".", "_"))
    ctx.set_alpn_protocols(["http/1.1"])

    async def main():
        # max_keepalive=0: every request opens (and closes) its own connection
        async with AsyncClient(verify=ctx, max_keepalive=0) as c:
            out = []
            for _ in range(3):
                r = await c.get(env.base + "/small.txt")
                so = r.extensions["ssl_object"]
                out.append((so.version(), so.session_reused, so.selected_alpn_protocol()))
            return out, c.pool.connections_opened

    out, opened = run(main())
    assert opened == 3
    assert [v for v, _, _ in out] == [version] * 3
    assert [reused for _, reused, _ in out] == [False, True, True]
    assert out[0][2] == "http/1.1"


def test_default_context_is_built_once_with_tls12_minimum():
    c = AsyncClient()
    assert c.ssl_context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert c.ssl_context.verify_mode == ssl.CERT_REQUIRED and c.ssl_context.check_hostname
    assert c.ssl_context is c.ssl_context


# ---- resolver ----

class _Rdata:
    def __init__(self, address):
        self.address = address


class _Answer:
    def __init__(self, addresses):
        self.rrset = [_Rdata(a) for a in addresses]


class FakeResolver:
    def __init__(self, table):
        self.table = table
        self.calls = []

    async def resolve(self, qname, rdtype):
        self.calls.append((qname, rdtype))
        addrs = self.table.get((qname, rdtype))
        if not addrs:
            raise LookupError(f"no {rdtype} for {qname}")
        return _Answer(addrs)


def test_names_resolved_through_resolver(env, run):
    res = FakeResolver({("localhost", "A"): ["127.0.0.1"]})

    async def main():
        async with AsyncClient(verify=env.ca, resolver=res) as c:
            return await c.get(env.base + "/small.txt")

    assert run(main()).content == SMALL
    assert sorted(res.calls) == [("localhost", "A"), ("localhost", "AAAA")]  # both at once


def test_resolver_failure_is_a_connect_error(env, run):
    res = FakeResolver({})

    async def main():
        async with AsyncClient(verify=env.ca, resolver=res) as c:
            await c.get(env.base + "/small.txt")

    with pytest.raises(ConnectError, match="cannot resolve 'localhost'"):
        run(main())
    assert ("localhost", "AAAA") in res.calls


def test_connection_refused_is_a_connect_error(run):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: refused

        async def main():
            async with AsyncClient() as c:
                await c.get(f"https://127.0.0.1:{port}/")

        with pytest.raises(ConnectError, match="cannot connect to 127.0.0.1"):
            run(main())


# ---- bad input through sockets ----

@pytest.mark.parametrize("route, match", [
    ("/bad-status", "status line"),
    ("/bad-chunk", "chunk"),
    ("/short-body", "10 of 100"),
    ("/endless-headers", "max_header_bytes"),
    ("/many-headers", "max_header_count"),
])
def test_bad_responses_raise_and_discard_the_connection(env, run, route, match):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            with pytest.raises(RemoteProtocolError, match=match):
                await c.get(env.raw + route)
            state = (c.pool.open_count, c.pool.idle_count)
            ok = await c.get(env.raw + "/echo")  # the client is still usable
            return state, ok

    (open_, idle), ok = run(main())
    assert (open_, idle) == (0, 0)
    assert ok.status_code == 200


def test_body_longer_than_content_length_is_an_error_and_connection_dropped(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            with pytest.raises(RemoteProtocolError, match="more than the 3 body bytes"):
                await c.get(env.raw + "/long-body")
            b = await c.get(env.raw + "/echo")
            return b, c.pool.connections_opened

    b, opened = run(main())
    assert b.json()["path"] == "/echo" and opened == 2


def test_close_delimited_and_interim(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return await c.get(env.raw + "/close-delimited"), await c.get(env.raw + "/interim")

    cd, interim = run(main())
    assert cd.content == b"until the end" and cd.http_version == "HTTP/1.0"
    assert interim.status_code == 200 and interim.content == b"final"


def test_bad_gzip_is_a_decoding_error(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            await c.get(env.raw + "/bad-gzip")

    with pytest.raises(DecodingError, match="gzip"):
        run(main())


def test_a_body_that_fails_to_decode_costs_its_connection(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            with pytest.raises(DecodingError) as failed:
                await c.get(env.raw + "/bad-gzip")
            idle = c.pool.idle_count
            after = await c.get(env.raw + "/echo")
            return failed.value, idle, after, c.pool.connections_opened

    error, idle, after, opened = run(main())
    assert error.request.url.path == "/bad-gzip"
    assert idle == 0 and after.status_code == 200 and opened == 2


def test_idempotent_request_retried_once_when_server_closes_reused_connection(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            a = await c.get(env.raw + "/flaky")
            b = await c.get(env.raw + "/flaky")  # server closes this one unanswered
            opened = c.pool.connections_opened
            await c.post(env.raw + "/flaky", content=b"x")  # reused, closed: not retried
            return a, b, opened

    with pytest.raises(RemoteProtocolError, match="without sending a response"):
        run(main())

    async def main2():
        async with AsyncClient(verify=env.ca) as c:
            a = await c.get(env.raw + "/flaky")
            b = await c.get(env.raw + "/flaky")
            return a, b, c.pool.connections_opened

    a, b, opened = run(main2())
    assert a.content == b.content == b"flaky ok"
    assert opened == 2


def test_idle_connection_closed_by_server_is_not_used_even_for_post(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            await c.get(env.raw + "/close-soon")
            # The server closes the idle connection meanwhile. A blocking sleep keeps the
            # loop from seeing the FIN, so only the check at reuse time can notice it.
            time.sleep(0.5)
            (idle,) = [x for conns in c.pool._idle.values() for x in conns]
            assert not idle.closed
            r = await c.post(env.raw + "/echo", content=b"payload")
            return r, c.pool.connections_opened

    r, opened = run(main())
    assert r.json()["body"] == "payload" and opened == 2


def test_idle_connection_is_probed_only_after_a_pause(env, run, monkeypatch):
    """A connection taken again at once (requests one after another) costs no readiness
    probe; one idle past PROBE_AFTER_IDLE is asked of the kernel before it is used.
    The threshold is raised for the test so that a busy machine's pause between two
    requests one after another cannot pass for idleness."""
    monkeypatch.setattr(conn_mod, "PROBE_AFTER_IDLE", 0.5)
    probes = []
    real = conn_mod.select.select

    def counting(r, w, x, timeout=None):
        probes.append(r)
        return real(r, w, x, timeout)

    monkeypatch.setattr(conn_mod.select, "select", counting)

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            for _ in range(20):
                await c.get(env.base + "/small.txt")
            at_once = len(probes)
            await asyncio.sleep(conn_mod.PROBE_AFTER_IDLE * 2)
            await c.get(env.base + "/small.txt")
            return at_once, len(probes), c.pool.connections_opened

    assert run(main()) == (0, 1, 1)


def test_server_keep_alive_timeout_is_honoured(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            await c.get(env.raw + "/keepalive-timeout")  # Keep-Alive: timeout=1
            await asyncio.sleep(0.7)
            await c.get(env.raw + "/echo")
            return c.pool.connections_opened

    assert run(main()) == 2


def test_concurrent_requests_share_a_bounded_pool(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, max_connections=4) as c:
            rs = await asyncio.gather(*(c.get(env.base + "/small.txt") for _ in range(40)))
            return rs, c.pool.connections_opened, c.pool.open_count

    rs, opened, open_now = run(main())
    assert all(r.content == SMALL for r in rs)
    assert opened <= 4 and open_now <= 4


def test_no_descriptor_leak_across_errors(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            for route in ("/bad-status", "/short-body", "/bad-chunk"):
                with pytest.raises(RemoteProtocolError):
                    await c.get(env.raw + route)
            await c.get(env.base + "/small.txt")
            async with c.stream("GET", env.base + "/large.bin") as r:
                async for _ in r.aiter_bytes():
                    break  # abandon the body mid-way
        await asyncio.sleep(0.05)

    run(main())  # warm up lazily created loop descriptors
    before = open_fds()
    run(main())
    assert open_fds() == before


def test_slow_stream_reader_applies_back_pressure(env, run):
    from corenet.https import Limits

    async def main():
        async with AsyncClient(verify=env.ca, limits=Limits(read_buffer_high=64 * 1024)) as c:
            async with c.stream("GET", env.base + "/large.bin") as r:
                parts = []
                async for chunk in r.aiter_bytes():
                    parts.append(chunk)
                    await asyncio.sleep(0.001)  # slower than the network
            again = await c.get(env.base + "/small.txt")
            return b"".join(parts), again, c.pool.connections_opened

    body, again, opened = run(main(), timeout=30)
    assert body == env.large
    assert again.content == SMALL and opened == 1  # the connection survived a full stream


def test_cancelled_request_does_not_leak_its_connection(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, max_connections=1) as c:
            task = asyncio.ensure_future(c.get(env.raw + "/stall-headers"))
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            r = await c.get(env.base + "/small.txt")  # the only slot is free again
            return r.content, c.pool.open_count

    content, open_count = run(main())
    assert content == SMALL and open_count == 1


def test_userinfo_in_url_becomes_basic_auth(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return await c.get(f"https://al%20ice:s3cret@localhost:{env.raw_port}/echo")

    body = run(main()).json()
    assert ["Authorization", "Basic YWwgaWNlOnMzY3JldA=="] in body["headers"]
    assert body["path"] == "/echo"


@pytest.mark.parametrize("url, match", [
    ("ftp://localhost/", "unsupported protocol 'ftp://'"),
    ("https:///nohost", "missing an 'http://' or 'https://' protocol"),  # httpcore's words
    ("https://localhost:99999/", "Invalid port"),
])
def test_invalid_urls(run, url, match):
    """An unsupported scheme is UnsupportedProtocol, which is also an InvalidURL."""
    from corenet.https import InvalidURL

    async def main():
        async with AsyncClient() as c:
            await c.get(url)

    with pytest.raises(InvalidURL, match=match):
        run(main())


def test_sni_is_sent_and_tcp_nodelay_set(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            r = await c.get(env.base + "/sni")
            (conn,) = [x for conns in c.pool._idle.values() for x in conns]
            sock = conn.transport.get_extra_info("socket")
            return r.text, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)

    text, nodelay = run(main())
    assert text.split("|")[0] == "localhost"
    assert nodelay != 0


def test_server_sees_the_resumed_session(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, max_keepalive=0) as c:
            return [(await c.get(env.base + "/sni")).text for _ in range(2)]

    first, second = run(main())
    assert first.endswith("|.") and second.endswith("|r")  # nginx: "r" when resumed


def test_large_request_body_arrives_whole(env, run):
    payload = bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4: several write pieces

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return (await c.post(env.raw + "/echo", content=payload)).json()

    body = run(main())
    assert body["body"].encode("latin-1") == payload
    assert ["Content-Length", str(len(payload))] in body["headers"]


def test_closing_the_client_closes_a_stream_left_open(env, run):
    async def main():
        c = AsyncClient(verify=env.ca)
        cm = c.stream("GET", env.base + "/large.bin")
        r = await cm.__aenter__()  # the user never reads nor closes it
        await c.aclose()
        with pytest.raises(RemoteProtocolError):
            await r.aread()
        await asyncio.sleep(0.05)
        return c.pool.open_count

    run(main())  # warm-up: lazily created loop descriptors
    before = open_fds()
    assert run(main()) == 0
    assert open_fds() == before


def test_idle_http11_connection_closed_on_a_timer(env, run):
    async def main():
        await until(lambda: server_holds(env.port) == 0)
        base = server_holds(env.port)
        async with AsyncClient(verify=env.ca, limits=Limits(keepalive_expiry=0.4)) as c:
            await asyncio.gather(*(c.get(env.base + "/small.txt") for _ in range(3)))
            held = (c.pool.open_count, c.pool.idle_count)
            closed = await until(lambda: c.pool.open_count == 0)
            seen = await until(lambda: server_holds(env.port) == base)
            return held, closed, seen, c.pool.idle_count

    held, closed, seen, idle = run(main())
    assert held == (3, 3)
    assert closed and seen and idle == 0



@contextlib.contextmanager
def collector_off():
    """The cycle collector off for the block; the list it yields is filled, as the block
    ends, with the types of the corenet.https objects the block left in reference cycles
    (found by one collection)."""
    left: list[str] = []
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield left
        gc.collect()
        left += sorted({type(o).__qualname__ for o in gc.garbage
                        if type(o).__module__.startswith("corenet.https")})
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "http2"])
def test_requests_leave_nothing_to_the_cycle_collector(env, run, http2):
    """Each request's exchange, parser, response and body are freed as their last reference
    goes (requests at once, streamed, an error status): under many requests at once,
    objects left in cycles made the collector run full collections, the client's longest
    waits."""
    base = env.h2 if http2 else env.base

    async def main():
        async with AsyncClient(verify=env.ca, http2=http2) as c:
            await c.get(base + "/small.txt")                # the connection made first
            with collector_off() as left:
                for _ in range(5):
                    rs = await asyncio.gather(*(c.get(base + "/small.txt") for _ in range(8)))
                    assert all(r.content == SMALL for r in rs)
                    async with c.stream("GET", base + "/gz/text.txt") as r:
                        async for _ in r.aiter_bytes():
                            pass
                    assert (await c.get(base + "/nothere")).status_code == 404
                del rs, r
            return left

    assert run(main()) == []


def test_the_sync_client_leaves_nothing_to_the_cycle_collector(env):
    with Client(verify=env.ca) as c:
        c.get(env.base + "/small.txt")
        with collector_off() as left:
            for _ in range(10):
                assert c.get(env.base + "/small.txt").content == SMALL
    assert left == []


def test_a_response_is_awaited_polling_on_corenet_s_loop(env, run, loop, loop_kind):
    """Once a request is out, the connection asks corenet's loop to poll for its response
    before sleeping, with ``Limits.response_poll`` as the limit; with 0 the loop is not
    asked. (What the loop does when asked: tests/loop/test_poll_before_sleeping.py.)
    Other loops have no such call and serve the same requests."""
    asked: list[float] = []
    poll = getattr(loop, "poll_before_sleeping", None)
    assert (poll is not None) == loop_kind.startswith("corenet")
    if poll is not None:
        def recording(limit: float) -> None:
            asked.append(limit)
            poll(limit)
        loop.poll_before_sleeping = recording

    async def main(limit: float) -> None:
        async with AsyncClient(verify=env.ca, limits=Limits(response_poll=limit)) as c:
            for _ in range(30):
                r = await c.get(env.base + "/small.txt")
                assert r.content == SMALL

    run(main(0.5))
    assert asked == ([0.5] * 30 if poll is not None else [])
    run(main(0.0))
    assert len(asked) == (30 if poll is not None else 0)
