"""The client against servers that misbehave on purpose (rawserver over TLS, the test PKI)
and callers whose headers contradict their body: framing, redirects, decoding bombs,
endless chunk extensions and trailers, truncation, early answers and closing. Every test
runs on each loop kind of the shared `loop` fixture."""
from __future__ import annotations

import asyncio
import time
import tracemalloc

import pytest

from corenet.https import (
    AsyncClient, DecodingError, InsecureRedirect, InvalidURL, Limits, LocalProtocolError,
    RemoteProtocolError,
)
from corenet.https.client import ParsedURL
from https_helpers import open_fds
from https_rawserver import pattern

SMUGGLED = b"hello" + b"GET /admin HTTP/1.1\r\nHost: localhost\r\n\r\n"


def wire_head(echo: dict) -> list[str]:
    """The request's header lines exactly as the server received them."""
    return echo["raw"].split("\r\n\r\n", 1)[0].split("\r\n")[1:]


def named(lines: list[str], name: str) -> list[str]:
    return [ln.split(":", 1)[1].strip() for ln in lines if ln.lower().startswith(name + ":")]


async def gen(*pieces: bytes):
    for p in pieces:
        yield p
        await asyncio.sleep(0)


# ---- 1. framing is the client's ----

@pytest.mark.parametrize("method, headers, content, match", [
    ("POST", {"Content-Length": "5"}, SMUGGLED,
     f"Content-Length: 5 was given, but the body is {len(SMUGGLED)} bytes"),
    ("POST", {"Transfer-Encoding": "chunked"}, b"hello",
     "Transfer-Encoding: chunked was given with a bytes body"),
    ("GET", {"Content-Length": "3"}, None, "Content-Length: 3 was given for a request "
     "without a body"),
    ("GET", {"Transfer-Encoding": "chunked"}, None, "without a body"),
    ("POST", {"Transfer-Encoding": "gzip, chunked"}, b"x", "'gzip, chunked' cannot be sent"),
    ("POST", {"Content-Length": "5", "Transfer-Encoding": "chunked"}, b"hello",
     "both Content-Length and Transfer-Encoding"),
    ("POST", [("Content-Length", "5"), ("Content-Length", "6")], b"hello",
     "invalid Content-Length"),
    ("POST", {"Content-Length": "+5"}, b"hello", "invalid Content-Length"),
    ("GET", [("Host", "a.example"), ("Host", "b.example")], None, "more than one Host"),
    ("GET", {"X-A\r\nX-Evil": "1"}, None, "invalid header name"),
    ("GET", {"X-A": "v\rX-Evil: 1"}, None, "CR, LF or NUL"),
    ("GET", {"X-A": "v\x00"}, None, "CR, LF or NUL"),
    ("GET", {"Host": "a\r\nX-Evil: 1"}, None, "CR, LF or NUL"),
])
def test_contradicting_or_unsafe_headers_refused_before_connecting(
        env, run, method, headers, content, match):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            with pytest.raises(LocalProtocolError, match=match):
                await c.request(method, env.raw + "/echo", headers=headers, content=content)
            return c.pool.connections_opened

    assert run(main()) == 0  # nothing reached the server


def test_smuggling_through_a_streamed_body_with_content_length(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            with pytest.raises(LocalProtocolError, match="longer than its Content-Length: 5"):
                await c.post(env.raw + "/echo", headers={"Content-Length": "5"},
                             content=gen(b"hello", b"GET /admin HTTP/1.1\r\n\r\n"))
            with pytest.raises(LocalProtocolError, match="ended after 5 bytes, short of"):
                await c.post(env.raw + "/echo", headers={"Content-Length": "9"},
                             content=gen(b"hel", b"lo"))
            after = (await c.get(env.raw + "/echo")).json()
            return after, c.pool.connections_opened

    after, opened = run(main())
    assert after["method"] == "GET" and after["path"] == "/echo"
    assert opened == 3  # each cut-short request cost its connection


def test_agreeing_framing_headers_sent_once(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            same_cl = (await c.post(env.raw + "/echo", headers={"content-length": "5"},
                                    content=b"hello")).json()
            te = (await c.post(env.raw + "/echo", headers={"Transfer-Encoding": "Chunked"},
                               content=gen(b"ab", b"cd"))).json()
            sized = (await c.put(env.raw + "/echo", headers={"Content-Length": "10"},
                                 content=gen(b"01234", b"56789"))).json()
            host = (await c.get(env.raw + "/echo", headers={"Host": "example.test"})).json()
            empty_post = (await c.post(env.raw + "/echo")).json()
            plain_get = (await c.get(env.raw + "/echo")).json()
            return same_cl, te, sized, host, empty_post, plain_get

    same_cl, te, sized, host, empty_post, plain_get = run(main())
    lines = wire_head(same_cl)
    assert named(lines, "content-length") == ["5"] and same_cl["body"] == "hello"
    lines = wire_head(te)
    assert named(lines, "transfer-encoding") == ["chunked"]
    assert named(lines, "content-length") == [] and te["body"] == "abcd"
    assert te["raw"].endswith("\r\n\r\n2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n")
    lines = wire_head(sized)  # a stream of known length goes out as is, not chunked
    assert named(lines, "content-length") == ["10"]
    assert named(lines, "transfer-encoding") == []
    assert sized["raw"].endswith("\r\n\r\n0123456789")
    assert named(wire_head(host), "host") == ["example.test"]
    assert named(wire_head(empty_post), "content-length") == ["0"]
    lines = wire_head(plain_get)
    assert named(lines, "content-length") == [] and named(lines, "transfer-encoding") == []
    assert named(lines, "host") == [f"localhost:{env.raw_port}"]


# ---- 2. redirects ----

def redirect(env, target: str, code: int = 302) -> str:
    return env.raw + f"/redirect?code={code}&to=" + target.encode().hex()


CREDS = {"Authorization": "Bearer s3cret", "Cookie": "session=abc",
         "Proxy-Authorization": "Basic cHJveHk6cHc=", "X-Other": "kept"}


def test_redirects_not_followed_unless_asked(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            default = await c.get(redirect(env, "/echo"))
            per_request = await c.get(redirect(env, "/echo"), follow_redirects=True)
        async with AsyncClient(verify=env.ca, follow_redirects=True) as c:
            per_client = await c.get(redirect(env, "/echo"))
        return default, per_request, per_client

    default, per_request, per_client = run(main())
    assert default.status_code == 302 and default.history == []
    assert default.headers["location"] == "/echo"
    for r in (per_request, per_client):
        assert r.status_code == 200 and [h.status_code for h in r.history] == [302]


@pytest.mark.parametrize("where, kept", [
    ("same origin", True), ("other port", False), ("other host", False),
])
def test_credentials_dropped_when_the_origin_changes(env, run, where, kept):
    target = {"same origin": f"https://localhost:{env.raw_port}/echo",
              "other port": f"https://localhost:{env.raw2_port}/echo",
              "other host": f"https://127.0.0.1:{env.raw_port}/echo"}[where]

    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True) as c:
            for code in (301, 307):
                r = await c.post(redirect(env, target, code), headers=CREDS,
                                 content=b"body")
                assert r.history[0].status_code == code
                seen.append(r.json())

    seen: list = []
    run(main())
    for echo in seen:
        lines = wire_head(echo)
        for name in ("authorization", "proxy-authorization"):
            assert named(lines, name) == ([CREDS[name.title()]] if kept else []), name
        # a Cookie header given by hand goes on no redirect, as httpx's: the jar decides
        assert named(lines, "cookie") == []
        assert named(lines, "x-other") == ["kept"]


def test_https_to_http_redirect_refused_unless_allowed(env, run):
    target = env.raw_plain + "/echo"

    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True) as c:
            with pytest.raises(InsecureRedirect, match="would send the request unencrypted") \
                    as info:
                await c.get(redirect(env, target), headers=CREDS)
            refused = info.value.response.status_code
        async with AsyncClient(verify=env.ca, follow_redirects=True,
                          allow_insecure_redirects=True) as c:
            allowed = await c.get(redirect(env, target), headers=CREDS)
        return refused, allowed

    refused, allowed = run(main())
    assert refused == 302
    assert allowed.status_code == 200 and allowed.url == target
    lines = wire_head(allowed.json())
    assert named(lines, "authorization") == [] and named(lines, "cookie") == []
    assert named(lines, "proxy-authorization") == []


# ---- 3. bounded decoding ----

def peak_during(run, coro, timeout: float = 30.0) -> tuple[object, int]:
    """(result or exception, peak bytes traced while `coro` ran)."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        try:
            result: object = run(coro, timeout)
        except Exception as exc:  # the caller checks which
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("kind", ["gzip", "gzip2", "br", "zstd"])
def test_decompression_bomb_read_whole_stops_at_the_limit(env, run, kind):
    limit = 8 << 20

    async def main():
        async with AsyncClient(verify=env.ca, limits=Limits(max_body_bytes=limit)) as c:
            await c.get(env.raw + f"/bomb?kind={kind}&mb=256")

    result, peak = peak_during(run, main())
    assert isinstance(result, RemoteProtocolError), result
    assert f"decoded response body exceeds {limit} bytes" in str(result)
    assert peak < 3 * limit, peak  # not the 256 MiB (or 256 GiB) it inflates to


@pytest.mark.parametrize("kind", ["gzip", "br", "zstd"])
def test_decompression_bomb_read_whole_is_decoded_as_it_comes(env, run, kind):
    """The server sends half of a bomb and holds back the rest: the limit is found in what
    came, not after a last byte that never comes (a ReadTimeout)."""
    async def main():
        async with AsyncClient(verify=env.ca, limits=Limits(max_body_bytes=8 << 20),
                          timeout=10) as c:
            await c.get(env.raw + f"/bomb-stall?kind={kind}&mb=64")

    with pytest.raises(RemoteProtocolError, match=f"decoded response body exceeds {8 << 20}"):
        run(main(), 30)


def test_default_whole_body_limit_is_64_mib(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            await c.get(env.raw + "/bomb?kind=zstd&mb=100")

    assert Limits().max_body_bytes == 64 << 20 and Limits().max_stream_bytes is None
    with pytest.raises(RemoteProtocolError, match=f"exceeds {64 << 20} bytes"):
        run(main(), 30)


@pytest.mark.parametrize("kind", ["gzip2", "br"])
def test_decompression_bomb_streamed_in_bounded_pieces(env, run, kind):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            async with c.stream("GET", env.raw + f"/bomb?kind={kind}&mb=256") as r:
                got = biggest = 0
                async for piece in r.aiter_bytes():
                    got += len(piece)
                    biggest = max(biggest, len(piece))
                    if got >= 32 << 20:
                        break
                return got, biggest

    result, peak = peak_during(run, main())
    got, biggest = result  # type: ignore[misc]
    assert got >= 32 << 20 and 0 < biggest <= Limits().max_decoded_chunk
    assert peak < 8 << 20, peak


@pytest.mark.parametrize("kind", ["gzip", "br", "zstd", "gzip,br", "zstd,gzip", "br,zstd"])
def test_codings_and_stacks_decoded_whole_and_streamed(env, run, kind):
    url = env.raw + f"/coded?kind={kind}&n=300000"

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            whole = await c.get(url)
            async with c.stream("GET", url) as r:
                streamed = [p async for p in r.aiter_bytes()]
            return whole, streamed

    whole, streamed = run(main())
    assert whole.headers["content-encoding"] == kind.replace(",", ", ")
    assert whole.content == pattern(300000)
    assert b"".join(streamed) == pattern(300000)
    assert max(map(len, streamed)) <= Limits().max_decoded_chunk


def test_installed_codings_are_advertised(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return (await c.get(env.raw + "/echo")).json()

    assert named(wire_head(run(main())), "accept-encoding") == ["gzip, deflate, br, zstd"]


def test_truncated_compressed_body_is_a_decoding_error(env, run):
    import gzip

    body = gzip.compress(b"x" * 10000)[:-12]
    raw = (b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n"
           % len(body) + body)

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            await c.get(env.raw + "/raw?" + raw.hex())

    with pytest.raises(DecodingError, match="truncated gzip body"):
        run(main())


def test_content_length_over_the_limit_fails_at_the_head(env, run):
    # The head promises 48 MiB and only 1,000 bytes follow before the server closes: a client
    # that judged the limit only while reading the body would report the short body instead.
    n = 48 << 20
    short = (b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n) + b"x" * 1000

    async def main():
        async with AsyncClient(verify=env.ca, limits=Limits(max_body_bytes=1 << 20)) as c:
            with pytest.raises(RemoteProtocolError, match="exceeds 1048576 bytes "
                                                          r"\(max_body_bytes\)"):
                await c.get(env.raw + "/raw?" + short.hex())
            async with c.stream("GET", env.raw + f"/big?n={n}") as r:
                size = 0
                async for piece in r.aiter_bytes():
                    size += len(piece)
            return size

    assert run(main(), 30) == n  # a stream has no limit by default


def test_a_stream_read_whole_fails_at_once_when_its_content_length_is_over_the_limit(env, run):
    # Read as it came, the body would fail after 1 MiB, without naming its Content-Length.
    async def main():
        async with AsyncClient(verify=env.ca, limits=Limits(max_body_bytes=1 << 20)) as c:
            async with c.stream("GET", env.raw + f"/big?n={8 << 20}") as r:
                assert r.headers["content-length"] == str(8 << 20)  # the head is given
                await r.aread()

    with pytest.raises(RemoteProtocolError, match=r"response body of 8388608 bytes "
                       r"\(Content-Length\) exceeds 1048576 bytes \(max_body_bytes\)"):
        run(main(), 30)


@pytest.mark.parametrize("route", [
    "/endless-extension", "/extension-each-chunk", "/endless-trailer",
])
def test_endless_chunk_extensions_and_trailers_are_cut(env, run, route):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            await c.get(env.raw + route)

    # The server would go on for 5 s and then close: a client without the limit would
    # report the cut-off body, not the limit.
    with pytest.raises(RemoteProtocolError, match=r"chunk extensions and trailers "
                       r"exceed 32768 bytes \(max_chunk_extension_bytes \+ "
                       r"max_trailer_bytes\)"):
        run(main())


def test_chunked_body_with_extension_and_trailer_keeps_the_connection(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            a = await c.get(env.raw + "/chunked-trailer")
            b = await c.get(env.raw + "/chunked-trailer")
            return a.content, b.content, c.pool.connections_opened

    assert run(main()) == (b"hello world", b"hello world", 1)


# ---- 4. truncation, early answers, closing ----

def test_close_delimited_body_needs_tls_close_notify(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            clean = await c.get(env.raw + "/close-delimited")
            with pytest.raises(RemoteProtocolError, match="without a TLS close_notify"):
                await c.get(env.raw + "/close-delimited-cut")
            plain = await c.get(env.raw_plain + "/close-delimited-cut")
            return clean.content, plain.content

    clean, plain = run(main())
    assert clean == b"until the end"
    assert plain == b"until the"  # plain TCP has nothing but the close to go by


@pytest.mark.parametrize("streamed", [False, True])
def test_http11_body_against_its_content_length_as_in_httpx(env, run, streamed):
    """HTTP/1.1: a body that ends (the server closes) short of its Content-Length is an
    error, read whole or streamed, in both clients. Bytes past it that come with it are an
    error in corenet (the body is not what the server declared); httpx gives the first 3
    bytes (README's table)."""
    import ssl

    import httpx

    async def body(c, url):
        async with c.stream("GET", url) as r:
            return b"".join([p async for p in r.aiter_bytes()]) if streamed \
                else await r.aread()

    async def main(c):
        async with c:
            try:
                short = await body(c, env.raw + "/short-body")
            except (RemoteProtocolError, httpx.RemoteProtocolError) as exc:
                short = exc
            try:
                long = await body(c, env.raw + "/long-body")
            except (RemoteProtocolError, httpx.RemoteProtocolError) as exc:
                long = exc
            return short, long

    ours = run(main(AsyncClient(verify=env.ca)))
    theirs = run(main(httpx.AsyncClient(verify=ssl.create_default_context(cafile=env.ca))))
    assert isinstance(ours[0], RemoteProtocolError) and "10 of 100" in str(ours[0])
    assert isinstance(theirs[0], httpx.RemoteProtocolError)
    assert isinstance(ours[1], RemoteProtocolError) and "more than the 3" in str(ours[1])
    assert theirs[1] == b"abc"


@pytest.mark.parametrize("streamed", [False, True])
def test_early_413_returned_while_the_body_is_still_being_sent(env, run, streamed):
    payload = bytes(48 << 20)  # far more than the socket buffers hold

    async def pieces():
        for i in range(0, len(payload), 1 << 20):
            yield payload[i:i + (1 << 20)]

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            start = time.monotonic()
            r = await c.post(env.raw + "/early-413?hold=8",
                             content=pieces() if streamed else payload)
            took = time.monotonic() - start
            return r, took, c.pool.idle_count

    r, took, idle = run(main(), 20)
    assert r.status_code == 413 and r.content == b"too large"
    assert took < 8.0  # before the server, holding the socket without reading, lets it go
    assert idle == 0  # the half-sent request leaves no reusable connection


def test_early_413_then_close(env, run):
    payload = bytes(48 << 20)

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return await c.post(env.raw + "/early-413?hold=0.3", content=payload)

    r = run(main(), 20)
    assert r.status_code == 413 and r.content == b"too large"


def test_aclose_aborts_a_connection_that_cannot_drain(env, run):
    payload = bytes(48 << 20)

    async def main():
        c = AsyncClient(verify=env.ca)
        task = asyncio.ensure_future(c.post(env.raw + "/no-read", content=payload))
        for _ in range(1500):  # connected (a loaded machine may take seconds to)
            if c.pool.connections_opened:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # the write buffers are full by now
        assert c.pool.connections_opened == 1 and not task.done()
        start = time.monotonic()
        await c.aclose()
        took = time.monotonic() - start
        fds = open_fds()
        with pytest.raises(RemoteProtocolError, match="client was closed"):
            await task
        return took, fds

    run(main(), 20)  # warm-up: lazily created loop descriptors
    before = open_fds()
    took, fds = run(main(), 20)
    assert fds == before  # right after aclose(), not after some grace period
    assert took < 10.0  # not waiting for a peer that reads nothing for 20 s


# ---- 5. international host names ----

@pytest.mark.parametrize("host, encoded", [
    ("faß.de", "xn--fa-hia.de"),  # IDNA 2008; IDNA 2003 would say fass.de
    ("Bücher.example", "xn--bcher-kva.example"),
    ("ＥＸＡＭＰＬＥ.com", "example.com"),  # UTS 46 maps full-width letters
    ("EXAMPLE.com", "example.com"),
    ("[::1]", "::1"),
])
def test_host_names_encoded_by_idna_2008_uts46(host, encoded):
    u = ParsedURL(f"https://{host}:8443/p")
    assert u.host == encoded
    assert u.host_line == f"Host: {'[::1]' if encoded == '::1' else encoded}:8443\r\n".encode()


@pytest.mark.parametrize("host", ["exa mple.com", "a\u200d.example", "☃.net", "xn--.com"])
def test_invalid_host_names_refused(host):
    with pytest.raises(InvalidURL):
        ParsedURL(f"https://{host}/")


def test_international_name_is_what_resolver_and_server_see(env, run):
    class Recorder:
        def __init__(self):
            self.asked: list[tuple[str, str]] = []

        async def resolve(self, qname, rdtype):
            self.asked.append((qname, rdtype))
            if rdtype != "A":
                raise LookupError("no AAAA")

            class A:
                address = "127.0.0.1"

            class Answer:
                class rrset(list):
                    ttl = 60

                rrset = rrset([A()])

            return Answer()

    rec = Recorder()

    async def main():
        async with AsyncClient(verify=False, resolver=rec) as c:
            return (await c.get(f"https://faß.de:{env.raw_port}/echo")).json()

    echo = run(main())
    assert sorted(rec.asked) == [("xn--fa-hia.de", "A"), ("xn--fa-hia.de", "AAAA")]
    assert named(wire_head(echo), "host") == [f"xn--fa-hia.de:{env.raw_port}"]


# ---- 6. Happy Eyeballs ----

class TableResolver:
    """Answers from a table {rdtype: [addresses]}; anything else is not found."""

    def __init__(self, table: dict):
        self.table = table

    async def resolve(self, qname, rdtype):
        addrs = self.table.get(rdtype)
        if not addrs:
            raise LookupError(f"no {rdtype} for {qname}")

        class Rdata:
            def __init__(self, address):
                self.address = address

        class Answer:
            class rrset(list):
                ttl = 60

            rrset = rrset(Rdata(a) for a in addrs)

        return Answer()


@pytest.mark.parametrize("v6", ["silent", "refused"])
def test_happy_eyeballs_races_past_a_bad_ipv6_address(env, run, v6, monkeypatch):
    import socket

    from corenet.https import network

    hole = filler = None
    try:
        socket.socket(socket.AF_INET6).close()
        socket.getaddrinfo("::1", 0, socket.AF_INET6)
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    if v6 == "silent":
        # Listening with a full backlog on [::1]: the kernel drops further SYNs, so a
        # connect there neither succeeds nor fails, as on a black-holed network.
        hole = socket.socket(socket.AF_INET6)
        hole.bind(("::1", env.raw_port))
        hole.listen(0)
        filler = socket.create_connection(("::1", env.raw_port), timeout=2)
    else:
        # A head start longer than the test could wait: only moving on at the refusal,
        # not when the head start ends, gets an answer in time.
        monkeypatch.setattr(network, "HAPPY_EYEBALLS_DELAY", 10.0)
    res = TableResolver({"AAAA": ["::1"], "A": ["127.0.0.1"]})

    async def main():
        async with AsyncClient(verify=env.ca, resolver=res) as c:
            start = time.monotonic()
            r = await c.get(f"https://localhost:{env.raw_port}/echo")
            took = time.monotonic() - start
            (conn,) = [x for conns in c.pool._idle.values() for x in conns]
            return r, took, conn.transport.get_extra_info("peername")[0]

    try:
        r, took, peer = run(main())
    finally:
        for s in (filler, hole):
            if s is not None:
                s.close()
    assert r.status_code == 200 and peer == "127.0.0.1"
    if v6 == "silent":
        # IPv6 had its 250 ms head start, then IPv4 won the race, long before IPv6's
        # connect would have timed out (5 s)
        assert 0.2 <= took < 4.0
    else:
        assert took < 10.0  # a refusal moves on at once, not after the head start


def test_aclose_stops_a_connection_still_being_made(env, run):
    from corenet.https import ConnectError

    async def main():
        c = AsyncClient(verify=env.ca)
        task = asyncio.ensure_future(c.get(f"https://localhost:{env.silent_port}/"))
        await asyncio.sleep(0.3)  # TCP is up, the TLS handshake waits for an answer
        assert not task.done()
        await c.aclose()
        fds = open_fds()
        with pytest.raises(ConnectError, match="client was closed while connecting"):
            await task
        return fds

    run(main())  # warm-up: lazily created loop descriptors
    before = open_fds()
    assert run(main()) == before
