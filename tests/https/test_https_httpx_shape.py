"""What an httpx user reaches for on day one: the URL object, base_url=, aiter_text() and
aiter_lines(), auth= and cookies, against rawserver over TLS on every loop kind."""
from __future__ import annotations

import os
import threading

import pytest
from hypothesis import given, settings, strategies as st

from corenet.https import (URL, AsyncClient, Headers, Limits, RemoteProtocolError, Request,
                           Response, StreamConsumed)
from corenet.https.auth import Auth, BasicAuth, BearerAuth
from test_https_hostile import named, redirect, wire_head


def test_url_object_on_requests_and_responses(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return await c.get(env.raw + "/echo?a=1&b=%20x", params={"c": "d"})

    r = run(main())
    assert isinstance(r.url, URL) and r.url is r.request.url
    assert r.url == f"{env.raw}/echo?a=1&b=%20x&c=d"  # equal to its text
    assert (r.url.scheme, r.url.host, r.url.port) == ("https", "localhost", env.raw_port)
    assert r.url.path == "/echo" and r.url.query == b"a=1&b=%20x&c=d"
    assert r.url.raw_path == b"/echo?a=1&b=%20x&c=d"
    assert r.url.join("/other").path == "/other"
    u = URL("https://xn--fa-hia.de:443/a%20b")
    assert (u.host, u.raw_host, u.port, u.path) == ("faß.de", b"xn--fa-hia.de", None, "/a b")


def test_base_url_paths_are_appended(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, base_url=env.raw + "/api") as c:
            rel = await c.get("/v1/items")
            bare = await c.get("x")
            absolute = await c.get(env.raw + "/echo")
            return rel, bare, absolute

    rel, bare, absolute = run(main())
    assert rel.url == env.raw + "/api/v1/items" and rel.status_code == 404
    assert bare.url == env.raw + "/api/x"
    assert absolute.json()["path"] == "/echo"


def test_aiter_text_and_lines_across_chunk_boundaries(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            async with c.stream("GET", env.raw + "/lines") as r:
                lines = [ln async for ln in r.aiter_lines()]
            async with c.stream("GET", env.raw + "/lines") as r:
                text = "".join([t async for t in r.aiter_text()])
            return lines, text

    lines, text = run(main())
    assert lines == ["line one", "line twö", "", "last"]
    assert text == "line one\r\nline twö\r\n\nlast"


def test_aiter_lines_bounds_a_line_without_end(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, limits=Limits(max_line_length=1000)) as c:
            async with c.stream("GET", env.raw + "/bomb?kind=gzip&mb=1") as r:
                async for _ in r.aiter_lines():
                    pass

    with pytest.raises(RemoteProtocolError, match="longer than 1000 characters"):
        run(main())


class TokenAuth(Auth):
    """A challenge-response scheme: the first try learns the nonce from the 401."""

    def auth_flow(self, request):
        response = yield request
        if response.status_code == 401:
            nonce = response.headers["www-authenticate"].split("nonce=")[1]
            request.headers["Authorization"] = f"Token {nonce}"
            yield request


def test_auth_tuple_callable_bearer_and_flow(env, run):
    def sign(request):
        request.headers["X-Signed"] = request.method + " " + request.url.path
        return request

    async def main():
        async with AsyncClient(verify=env.ca, auth=("al ice", "s3cret")) as c:
            basic = (await c.get(env.raw + "/echo")).json()
            func = (await c.get(env.raw + "/echo", auth=sign)).json()
            bearer = (await c.get(env.raw + "/echo", auth=BearerAuth("t0k"))).json()
            none = (await c.get(env.raw + "/echo", auth=None)).json()
            flow = await c.get(env.raw + "/challenge", auth=TokenAuth())
            return basic, func, bearer, none, flow

    basic, func, bearer, none, flow = run(main())
    assert named(wire_head(basic), "authorization") == [
        BasicAuth("al ice", "s3cret")._header] == ["Basic YWwgaWNlOnMzY3JldA=="]
    assert named(wire_head(func), "x-signed") == ["GET /echo"]
    assert named(wire_head(func), "authorization") == []
    assert named(wire_head(bearer), "authorization") == ["Bearer t0k"]
    assert named(wire_head(none), "authorization") == []
    assert flow.status_code == 200 and flow.content == b"welcome"
    assert [h.status_code for h in flow.history] == [401]


def test_auth_does_not_follow_a_redirect_to_another_origin(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True, auth=("u", "p")) as c:
            return (await c.get(redirect(env, f"https://127.0.0.1:{env.raw_port}/echo"))).json()

    assert named(wire_head(run(main())), "authorization") == []


def set_cookie(env, *cookies: str, to: str = "", base: str = "") -> str:
    q = "&".join(f"c{i}={c.encode().hex()}" for i, c in enumerate(cookies))
    if to:
        q += "&to=" + to.encode().hex()
    return (base or env.raw) + "/set-cookie?" + q


def test_cookie_jar_stores_and_sends_by_its_rules(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, cookies={"preset": "1"}) as c:
            await c.get(set_cookie(env, "a=1; Path=/", "b=2; Path=/elsewhere",
                                   "s=3; Secure; Path=/"))
            same = (await c.get(env.raw + "/echo")).json()
            plain = (await c.get(set_cookie(env, "p=4", base=f"http://localhost:"
                                            f"{env.raw_plain_port}")))
            plain_echo = (await c.get(f"http://localhost:{env.raw_plain_port}/echo")).json()
            other_host = (await c.get(f"https://127.0.0.1:{env.raw_port}/echo")).json()
            with pytest.warns(DeprecationWarning, match="per-request cookies"):
                extra = (await c.get(env.raw + "/echo", cookies={"once": "x"})).json()
            return same, plain, plain_echo, other_host, extra, c.cookies

    same, plain, plain_echo, other_host, extra, jar = run(main())
    assert plain.status_code == 200

    def sent(echo):
        return sorted(v for line in named(wire_head(echo), "cookie") for v in line.split("; "))

    assert sent(same) == ["a=1", "preset=1", "s=3"]  # not b (path), s over https
    assert sent(plain_echo) == ["a=1", "p=4", "preset=1"]  # no Secure cookie over http
    assert sent(other_host) == ["preset=1"]  # a, s, p belong to localhost
    assert sent(extra) == ["a=1", "once=x", "p=4", "preset=1", "s=3"]
    assert "once" not in jar and jar["a"] == "1"


def test_redirect_carries_only_the_cookies_the_jar_allows(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True) as c:
            other_port = (await c.get(set_cookie(
                env, "k=v; Path=/", to=f"https://localhost:{env.raw2_port}/echo"),
                headers={"Cookie": "manual=1"})).json()
            other_host = (await c.get(set_cookie(
                env, "k=v; Path=/", to=f"https://127.0.0.1:{env.raw_port}/echo"))).json()
            return other_port, other_host

    other_port, other_host = run(main())
    # Cookies are per host, not per port (RFC 6265 8.5): the jar's k goes on, the
    # caller's own Cookie header does not.
    assert named(wire_head(other_port), "cookie") == ["k=v"]
    assert named(wire_head(other_host), "cookie") == []


def parse_multipart(echo: dict) -> list:
    """The parts as the standard library's MIME parser reads the body the server got."""
    import email.parser
    import email.policy

    ctype = named(wire_head(echo), "content-type")[0]
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + echo["body"].encode("latin-1"))
    return [(p.get_param("name", header="content-disposition"), p.get_filename(),
             p.get_content_type(), p.get_payload(decode=True)) for p in msg.iter_parts()]


def test_files_and_data_as_multipart_form(env, run, tmp_path):
    path = tmp_path / "report.csv"
    path.write_bytes(b"a,b\r\n1,2\r\n")

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            with open(path, "rb") as f:
                r = await c.post(env.raw + "/echo", data={"title": "x", "tags": ["p", "q"]},
                                 files={"upload": f,
                                        "blob": ("b.bin", b"\x00\xff--", "application/x-b"),
                                        "note": ("n\"a\r\nme.txt", "text body")})
            return r.json()

    echo = run(main())
    assert parse_multipart(echo) == [
        ("title", None, "text/plain", b"x"), ("tags", None, "text/plain", b"p"),
        ("tags", None, "text/plain", b"q"),
        ("upload", "report.csv", "text/csv", b"a,b\r\n1,2\r\n"),
        ("blob", "b.bin", "application/x-b", b"\x00\xff--"),
        ("note", "n%22a%0D%0Ame.txt", "text/plain", b"text body"),  # cannot break out
    ]
    lines = wire_head(echo)
    assert named(lines, "content-length") == [str(len(echo["body"].encode("latin-1")))]


class ReadLog:
    """A binary file object that records the size each read() asked for."""

    def __init__(self, f):
        self.f, self.asked, self.name = f, [], f.name

    def read(self, n=-1):
        self.asked.append(n)
        return self.f.read(n)

    def seek(self, *a):
        return self.f.seek(*a)

    def tell(self):
        return self.f.tell()

    def fileno(self):
        return self.f.fileno()


def test_a_file_in_a_multipart_body_is_sent_as_it_is_read(env, run, tmp_path):
    """A file object goes out in chunks as it is read, never read whole into memory, with
    the body's Content-Length (a regular file's size is known); sent again whole on a 307."""
    from corenet.https.multipart import FILE_CHUNK

    path = tmp_path / "big.bin"
    data = os.urandom(FILE_CHUNK * 5 + 123)
    path.write_bytes(data)

    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True) as c:
            with open(path, "rb") as raw:
                f = ReadLog(raw)
                echo = (await c.post(env.raw + "/echo", files={"up": f})).json()
                asked = list(f.asked)
                again = await c.post(env.base + "/r307", data={"k": "v"}, files={"up": f})
            return echo, asked, again

    echo, asked, again = run(main())
    assert parse_multipart(echo) == [("up", "big.bin", "application/octet-stream", data)]
    assert named(wire_head(echo), "content-length") == [str(len(echo["body"].encode("latin-1")))]
    assert asked and all(0 < n <= FILE_CHUNK for n in asked), asked
    # the 307 sent the body again, whole: nginx saw its full length
    method, _, length = again.text.strip().split("|")
    assert (method, again.history[0].status_code) == ("POST", 307)
    assert int(length) > len(data)


def test_a_pipe_in_a_multipart_body_goes_chunked_and_once(env, run):
    """A file that cannot seek (a pipe) has no size to send: the body goes chunked, and a
    redirect that would send it again is StreamConsumed rather than a truncated body."""
    data = os.urandom(200_000)

    def piped():
        rfd, wfd = os.pipe()
        writer = threading.Thread(target=lambda: (os.write(wfd, data), os.close(wfd)))
        writer.start()
        return os.fdopen(rfd, "rb"), writer

    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True) as c:
            pipe, writer = piped()
            with pipe:
                echo = (await c.post(env.raw + "/echo", files={"up": ("p.bin", pipe)})).json()
            writer.join(5)
            pipe, writer = piped()
            with pipe:
                try:
                    await c.post(env.base + "/r307", files={"up": ("p.bin", pipe)})
                    again = None
                except StreamConsumed as exc:
                    again = exc
            writer.join(5)
            return echo, again

    echo, again = run(main())
    assert parse_multipart(echo) == [("up", "p.bin", "application/octet-stream", data)]
    assert named(wire_head(echo), "transfer-encoding") == ["chunked"]
    assert named(wire_head(echo), "content-length") == []
    assert isinstance(again, StreamConsumed)


def proxy_log(env, run) -> list:
    async def main():
        async with AsyncClient(verify=env.ca, trust_env=False) as c:
            return (await c.get(env.raw + "/proxy-log")).json()

    return run(main())


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_https_through_a_connect_tunnel(env, run, scheme):
    port = env.proxy_port if scheme == "http" else env.proxy_tls_port
    proxy = f"{scheme}://pu:pp@localhost:{port}"

    async def main():
        async with AsyncClient(verify=env.ca, proxy=proxy) as c:
            a = await c.get(env.raw + "/echo", headers={"Authorization": "Bearer origin"})
            b = await c.get(env.raw + "/echo")
            return a, b, c.pool.connections_opened

    before = len(proxy_log(env, run))
    a, b, opened = run(main())
    log = proxy_log(env, run)[before:]
    assert log == [["CONNECT", f"localhost:{env.raw_port}", "Basic cHU6cHA="]]  # one tunnel
    assert opened == 1 and b.extensions["connection_reused"]
    echo = a.json()
    assert echo["path"] == "/echo"  # origin-form inside the tunnel
    assert named(wire_head(echo), "authorization") == ["Bearer origin"]
    assert named(wire_head(echo), "proxy-authorization") == []  # never past the proxy


def test_http_forwarded_by_the_proxy(env, run):
    async def main():
        async with AsyncClient(proxy=f"http://pu:pp@127.0.0.1:{env.proxy_port}") as c:
            return (await c.get(env.raw_plain + "/echo?x=1")).json()

    before = len(proxy_log(env, run))
    echo = run(main())
    assert proxy_log(env, run)[before:] == [
        ["GET", f"{env.raw_plain}/echo?x=1", "Basic cHU6cHA="]]
    assert echo["path"] == "/echo?x=1"
    assert named(wire_head(echo), "host") == [f"127.0.0.1:{env.raw_plain_port}"]


@pytest.mark.parametrize("target", ["tunnel", "forwarded"])
def test_proxy_object_with_auth_and_headers_as_httpx(env, run, target):
    """httpx's Proxy(url, auth=, headers=): the credentials and the headers go to the
    proxy, with the CONNECT or the forwarded request, never further. (Which of the URL's
    credentials and auth= wins: test_https_httpx_details, beside httpx.)"""
    from corenet.https import Proxy

    proxy = Proxy(f"http://127.0.0.1:{env.proxy_port}", auth=("pu", "pp"),
                  headers={"Proxy-Tag": "tenant-7"})
    url = env.raw + "/echo" if target == "tunnel" else env.raw_plain + "/echo"

    async def main():
        async with AsyncClient(verify=env.ca, proxy=proxy) as c:
            return (await c.get(url)).json()

    before = len(proxy_log(env, run))
    echo = run(main())
    method, logged = ("CONNECT", f"localhost:{env.raw_port}") if target == "tunnel" else \
        ("GET", url)
    assert proxy_log(env, run)[before:] == [[method, logged, "Basic cHU6cHA=", "tenant-7"]]
    assert named(wire_head(echo), "proxy-tag") == []
    assert named(wire_head(echo), "proxy-authorization") == []
    for bad in ({"X": "a\r\nHost: evil"}, {"Bad Name": "v"}, {"X": "\u0101"}):
        with pytest.raises(ValueError, match="invalid proxy header"):
            Proxy("http://127.0.0.1:1", headers=bad)


def test_proxy_refusal_is_a_proxy_error(env, run):
    from corenet.https import ProxyError

    async def main():
        async with AsyncClient(verify=env.ca, proxy=f"http://pu:wrong@127.0.0.1:{env.proxy_port}") as c:
            await c.get(env.raw + "/echo")

    with pytest.raises(ProxyError, match="refused the tunnel to localhost: 407 Proxy "
                                         "Authentication Required"):
        run(main())


def test_proxy_from_the_environment_and_no_proxy(env, run, monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{env.proxy_port}")

    async def fetch(**kw):
        async with AsyncClient(verify=env.ca, **kw) as c:
            return (await c.get(env.raw + "/echo")).status_code

    def tunnels(fn) -> int:
        before = len(proxy_log(env, run))
        assert fn() == 200
        return len(proxy_log(env, run)) - before

    assert tunnels(lambda: run(fetch())) == 1
    assert tunnels(lambda: run(fetch(trust_env=False))) == 0
    monkeypatch.setenv("NO_PROXY", "example.org,localhost")
    assert tunnels(lambda: run(fetch())) == 0


@pytest.mark.parametrize("alg, want", [
    ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1")])
def test_digest_auth_matches_rfc_7616_vectors(alg, want):
    """RFC 7616 3.9.1's example through the whole flow, its client nonce put in place of
    the random one under httpx's name for it (``_get_client_nonce``), as httpx's own test
    does."""
    from corenet.https.auth import DigestAuth

    cnonce = b"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
    asked = []
    auth = DigestAuth("Mufasa", "Circle of Life")
    auth._get_client_nonce = lambda count, nonce: asked.append((count, nonce)) or cnonce
    flow = auth.sync_auth_flow(Request("GET", "https://www.example.com/dir/index.html"))
    assert "Authorization" not in next(flow).headers
    nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
    challenge = (f'Digest realm="http-auth@example.org", qop="auth, auth-int", '
                 f'algorithm={alg}, nonce="{nonce}", '
                 'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"')
    header = flow.send(Response(401, headers={"WWW-Authenticate": challenge}))\
        .headers["Authorization"]
    assert f'response="{want}"' in header and "nc=00000001" in header
    assert f'cnonce="{cnonce.decode()}"' in header and asked == [(1, nonce.encode())]


@pytest.mark.parametrize("alg", ["MD5", "SHA-256"])
def test_digest_auth_answers_the_challenge(env, run, alg):
    from corenet.https.auth import DigestAuth

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            good = await c.get(env.raw + f"/digest?alg={alg}", auth=DigestAuth("dg", "pw"))
            bad = await c.get(env.raw + f"/digest?alg={alg}", auth=DigestAuth("dg", "no"))
            return good, bad

    good, bad = run(main())
    assert good.status_code == 200 and good.content == b"digest ok"
    assert [h.status_code for h in good.history] == [401]
    assert bad.status_code == 401  # answered once, not in a loop


def test_limits_carries_the_pool_limits_under_httpx_names(env, run):
    import asyncio

    async def main():
        async with AsyncClient(verify=env.ca, limits=Limits(max_connections=1,
                                                       max_keepalive_connections=0)) as c:
            rs = await asyncio.gather(*(c.get(env.raw + "/echo") for _ in range(4)))
            one = (c.pool.max_connections, c.pool.max_keepalive, c.pool.connections_opened,
                   c.pool.idle_count, [r.status_code for r in rs])
        async with AsyncClient(verify=env.ca, limits=Limits(max_connections=1),
                          max_connections=3, keepalive_expiry=None) as c:
            other = (c.pool.max_connections, c.pool.max_keepalive, c.pool.keepalive_expiry)
        return one, other

    one, other = run(main())
    assert one == (1, 0, 4, 0, [200] * 4)  # one at a time, none kept
    assert other == (3, 20, None)  # the client's own arguments win


def test_url_credentials_follow_a_same_origin_redirect_only(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, follow_redirects=True) as c:
            same = await c.get(f"https://u:p@localhost:{env.raw_port}/redirect?to="
                               + b"/echo".hex())
            other = await c.get(f"https://u:p@localhost:{env.raw_port}/redirect?to="
                                + f"https://localhost:{env.raw2_port}/echo".encode().hex())
            return same.json(), other.json()

    same, other = run(main())
    assert named(wire_head(same), "authorization") == ["Basic dTpw"]
    assert named(wire_head(other), "authorization") == []


def test_aiter_chunk_size_as_in_httpx(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            url = env.raw + "/coded?kind=gzip&n=100000"
            async with c.stream("GET", url) as r:
                sizes = [len(p) async for p in r.aiter_bytes(chunk_size=30000)]
            async with c.stream("GET", url) as r:
                raw = [len(p) async for p in r.aiter_raw(chunk_size=1000)]
            async with c.stream("GET", env.raw + "/lines") as r:
                text = [t async for t in r.aiter_text(chunk_size=4)]
            return sizes, raw, text

    sizes, raw, text = run(main())
    assert sizes == [30000, 30000, 30000, 10000]
    assert all(n == 1000 for n in raw[:-1]) and 0 < raw[-1] <= 1000
    assert "".join(text) == "line one\r\nline twö\r\n\nlast"
    assert all(len(t) == 4 for t in text[:-1])


def test_build_request_and_send(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, base_url=env.raw) as c:
            req = c.build_request("post", "/echo", params={"q": "1"}, json={"a": 1})
            req.headers["X-Added"] = "later"
            r = await c.send(req)
            streamed = await c.send(c.build_request("GET", "/echo"), stream=True)
            try:
                body = await streamed.aread()
            finally:
                await streamed.aclose()
            return req, r, body

    req, r, body = run(main())
    assert req.method == "POST" and req.url == env.raw + "/echo?q=1"
    echo = r.json()
    assert echo["method"] == "POST" and echo["path"] == "/echo?q=1" and echo["body"] == '{"a":1}'
    assert named(wire_head(echo), "x-added") == ["later"]
    assert b'"method": "GET"' in body


@pytest.mark.parametrize("answer, match", [
    (b"HTTP/1.1 200 OK\r\nX-Filler: " + b"x" * 100000, "exceeds 65536 bytes"),
    (b"HTTP/1.1 200 OK\r\n\r\nsurprise", "bytes after its answer to CONNECT"),
    (b"SSH-2.0-OpenSSH\r\n\r\n", "malformed answer from the proxy"),
    (b"HTTP/1.1 200 OK\r\n", "closed the connection before the tunnel"),
])
def test_misbehaving_proxy_is_a_proxy_error(env, run, answer, match):
    import socket
    import threading

    from corenet.https import ProxyError

    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(5)

    def serve():
        try:
            conn, _ = ls.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)
                conn.sendall(answer)
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()

    async def main():
        async with AsyncClient(verify=env.ca, proxy=f"http://127.0.0.1:{ls.getsockname()[1]}") as c:
            await c.get(env.raw + "/echo")

    try:
        with pytest.raises(ProxyError, match=match):
            run(main())
    finally:
        t.join(5)
        ls.close()


def test_client_cookies_can_be_assigned(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            c.cookies = {"k": "v"}
            return (await c.get(env.raw + "/echo")).json(), c.cookies

    echo, jar = run(main())
    assert named(wire_head(echo), "cookie") == ["k=v"] and jar["k"] == "v"


def test_codes_are_httpx_codes():
    import httpx

    from corenet.https import codes

    for name, member in httpx.codes.__members__.items():
        assert getattr(codes, name) == member, name
        assert getattr(codes, name.lower()) == member, name.lower()
    assert str(codes.OK) == "200" and codes(404) is codes.NOT_FOUND
    assert codes.get_reason_phrase(404) == httpx.codes.get_reason_phrase(404) == "Not Found"
    assert codes.get_reason_phrase(599) == ""
    for value in (100, 199, 200, 204, 299, 301, 399, 400, 404, 499, 500, 599):
        for test in ("is_informational", "is_success", "is_redirect", "is_client_error",
                     "is_server_error", "is_error"):
            assert getattr(codes, test)(value) == getattr(httpx.codes, test)(value), \
                (test, value)
    from http import HTTPStatus

    for name, member in httpx.codes.__members__.items():      # each code's phrase: httpx's,
        ours = getattr(codes, name).phrase                     # or this Python's newer one
        assert ours == member.phrase or ours == HTTPStatus(member).phrase, name
    r = Response(codes.IM_A_TEAPOT)
    assert r.status_code == 418 and r.reason_phrase == httpx.Response(418).reason_phrase
    assert r.is_client_error
    for code, headers in ((300, {}), (301, {}), (304, {}), (302, {"location": "/x"}),
                          (307, {"location": "/x"}), (200, {"location": "/x"})):
        ours, theirs = Response(code, headers=headers), httpx.Response(code, headers=headers)
        assert (ours.is_redirect, ours.has_redirect_location) == \
            (theirs.is_redirect, theirs.has_redirect_location), code


LINK_HEADERS = [
    '<https://api.example/items?page=2>; rel="next", <https://api.example/items?page=9>; '
    'rel="last"',
    "<https://example/a>; rel=prev",
    '<https://example/b>; title="the b"',
    '<https://example/c>; rel="next"; type="text/html", <https://example/d>',
    "",
]


@pytest.mark.parametrize("value", LINK_HEADERS)
def test_links_as_httpx_has_them(value):
    import httpx

    headers = {"Link": value} if value else {}
    assert Response(200, headers=headers).links == httpx.Response(200, headers=headers).links


def test_links_keep_quoted_commas_and_skip_what_does_not_parse():
    r = Response(200, headers=[("Link", '<https://e/1>; title="a, b; c"; rel="next"'),
                               ("Link", 'junk, <https://e/2>; REL=last; rel=ignored'),
                               ("Link", '<https://e/3>; title="say \\"hi\\""; rel=up, <open')])
    assert r.links == {
        "next": {"url": "https://e/1", "title": "a, b; c", "rel": "next"},
        "last": {"url": "https://e/2", "rel": "last"},  # the first rel counts (RFC 8288)
        "up": {"url": "https://e/3", "title": 'say "hi"', "rel": "up"},
    }


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='<>;,="\\ ab\t', max_size=60))
def test_link_parsing_ends_on_any_text(value):
    """Whatever a server sends in Link, reading it ends, without an error, with links
    that each have a URL."""
    for link in Response(200, headers={"Link": value}).links.values():
        assert "url" in link and ">" not in link["url"]


def test_num_bytes_downloaded_counts_the_body_as_received(env, run):
    """As in httpx: the bytes of the body as they came, before decoding (nginx gzips
    /gz/text.txt)."""
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            whole = await c.get(env.base + "/gz/text.txt")
            async with c.stream("GET", env.base + "/gz/text.txt") as s:
                raw = [piece async for piece in s.aiter_raw()]
            return whole, s, raw

    whole, streamed, raw = run(main())
    assert whole.headers["content-encoding"] == "gzip"
    assert streamed.num_bytes_downloaded == len(b"".join(raw)) < len(whole.content)
    assert whole.num_bytes_downloaded == streamed.num_bytes_downloaded
    assert Response(200, content=b"abc").num_bytes_downloaded == 3


def test_transport_retries_connecting_as_httpx(run):
    """retries= makes a refused connection again: at once, then after 0.5 s, so a server
    that starts listening in between is reached; without it the refusal is the answer.
    A TLS failure is not tried again."""
    import asyncio
    import socket

    from corenet.https import AsyncHTTPTransport, ConnectError, TLSError

    def free() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    async def answer(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def serve_later(port: int):
        await asyncio.sleep(0.2)
        return await asyncio.start_server(answer, "127.0.0.1", port)

    async def attempt(retries: int):
        port = free()
        starting = asyncio.ensure_future(serve_later(port))
        try:
            async with AsyncClient(transport=AsyncHTTPTransport(retries=retries)) as c:
                r = await c.get(f"http://127.0.0.1:{port}/")
            return r.status_code, r.content
        except ConnectError as exc:
            return type(exc)
        finally:
            (await starting).close()

    assert run(attempt(2)) == (200, b"ok")  # refused, refused, then reached at 0.5 s
    assert run(attempt(0)) is ConnectError
    assert run(attempt(1)) is ConnectError  # its one retry comes at once, still refused

    async def not_tls():
        accepted = []

        async def garbage(reader, writer):
            accepted.append(1)
            writer.write(b"this is not TLS\r\n" * 20)
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(garbage, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with AsyncClient(transport=AsyncHTTPTransport(retries=3)) as c:
                with pytest.raises(TLSError):
                    await c.get(f"https://127.0.0.1:{port}/")
        finally:
            server.close()
        return len(accepted)

    assert run(not_tls()) == 1
    with pytest.raises(ValueError, match="retries"):
        AsyncHTTPTransport(retries=-1)


_PARAM_TEXT = st.text(alphabet="ab &=é+%/", max_size=6)


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(_PARAM_TEXT, _PARAM_TEXT), max_size=6),
       key=_PARAM_TEXT, value=_PARAM_TEXT,
       other=st.dictionaries(_PARAM_TEXT, _PARAM_TEXT, max_size=3))
def test_query_params_are_httpx_query_params(pairs, key, value, other):
    """The same pairs, text and answers as httpx.QueryParams, before and after each of
    its copy-making operations, and from the query string it writes."""
    import httpx

    from corenet.https import QueryParams

    ours, theirs = QueryParams(pairs), httpx.QueryParams(pairs)
    for a, b in [(ours, theirs), (ours.set(key, value), theirs.set(key, value)),
                 (ours.add(key, value), theirs.add(key, value)),
                 (ours.remove(key), theirs.remove(key)), (ours.merge(other), theirs.merge(other)),
                 (QueryParams(str(ours)), httpx.QueryParams(str(theirs)))]:
        assert a.multi_items() == b.multi_items() and str(a) == str(b)
        assert dict(a) == dict(b) and len(a) == len(b) and list(a) == list(b)
        assert (key in a) == (key in b) and a.get(key) == b.get(key)
        assert a.get_list(key) == b.get_list(key)
    assert ours == QueryParams(list(reversed(pairs))) and hash(ours) == hash(
        QueryParams(list(reversed(pairs))))


def test_url_params_in_a_mock_transport_handler(run):
    from corenet.https import MockTransport, QueryParams

    def handler(request):
        params = request.url.params
        assert isinstance(params, QueryParams)
        return Response(200, json={"page": params.get("page"), "tags": params.get_list("tag")})

    async def main():
        async with AsyncClient(transport=MockTransport(handler)) as c:
            r = await c.get("https://api.test/items?tag=a", params={"page": 2, "tag": ["b"]})
            return r.json(), r.url.params

    body, params = run(main())
    # params= adds to the URL's query, as requests (and httpx before 0.28) do
    assert body == {"page": "2", "tags": ["a", "b"]}
    assert params == QueryParams("tag=a&page=2&tag=b") and str(params) == "tag=a&tag=b&page=2"


async def _echo_peer(reader, writer):
    """A one-request HTTP/1.1 server that answers with how the client reached it."""
    head = await reader.readuntil(b"\r\n\r\n")
    peer = writer.get_extra_info("peername")
    host = [ln.split(b":", 1)[1].strip() for ln in head.split(b"\r\n")
            if ln.lower().startswith(b"host:")]
    body = f"{peer[0] if isinstance(peer, tuple) else 'unix'} {host[0].decode()}".encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    writer.close()


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_transport_over_a_unix_socket(run, pki, tmp_path, scheme):
    """uds= (httpx's): connections go to the socket; the URL's host is still the Host
    header and, over https, the name the certificate must carry."""
    import asyncio
    import ssl

    from corenet.https import AsyncHTTPTransport, ConnectError, TLSError

    path = str(tmp_path / "api.sock")
    server_ssl = None
    if scheme == "https":
        server_ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        server_ssl.load_cert_chain(pki["valid_cert"], pki["valid_key"])

    async def main(host: str):
        server = await asyncio.start_unix_server(_echo_peer, path, ssl=server_ssl)
        try:
            transport = AsyncHTTPTransport(uds=path, verify=str(pki["ca"]))
            async with AsyncClient(transport=transport) as c:
                return (await c.get(f"{scheme}://{host}/v1/info")).text
        finally:
            server.close()

    assert run(main("localhost")) == "unix localhost"
    if scheme == "https":
        with pytest.raises(TLSError):
            run(main("elsewhere.test"))  # the certificate names localhost only

    async def missing():
        async with AsyncClient(transport=AsyncHTTPTransport(uds=str(tmp_path / "none"))) as c:
            await c.get(f"{scheme}://localhost/")

    with pytest.raises(ConnectError, match="none"):
        run(missing())


def test_transport_from_a_local_address(run):
    """local_address= (httpx's): the connection is made from that address, and only to
    addresses of its family."""
    import asyncio

    from corenet.https import AsyncHTTPTransport, ConnectError

    async def main(local: str):
        server = await asyncio.start_server(_echo_peer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with AsyncClient(transport=AsyncHTTPTransport(local_address=local)) as c:
                return (await c.get(f"http://127.0.0.1:{port}/")).text
        finally:
            server.close()

    assert run(main("127.0.0.2")).startswith("127.0.0.2 ")
    assert run(main("127.0.0.3")).startswith("127.0.0.3 ")
    with pytest.raises(ConnectError, match="no IPv6 address"):
        run(main("::1"))


def test_use_client_default_means_the_clients_setting(run):
    """httpx's USE_CLIENT_DEFAULT, passed through by wrapper code: the client's redirects,
    auth and timeout (a sentinel the client did not know would be no Timeout), exactly as
    if the argument were not given."""
    from corenet.https import USE_CLIENT_DEFAULT, MockTransport

    def handler(request):
        if request.url.path == "/start":
            return Response(302, headers={"Location": "/end"})
        return Response(200, json={"auth": request.headers.get("authorization")})

    async def main():
        async with AsyncClient(transport=MockTransport(handler), follow_redirects=True,
                          auth=("al", "pw"), timeout=3) as c:
            r = await c.get("https://api.test/start", follow_redirects=USE_CLIENT_DEFAULT,
                            auth=USE_CLIENT_DEFAULT, timeout=USE_CLIENT_DEFAULT)
            plain = await c.get("https://api.test/start", follow_redirects=False, auth=None)
            return r, plain

    r, plain = run(main())
    assert r.status_code == 200 and r.json() == {"auth": "Basic YWw6cHc="}
    assert len(r.history) == 1 and plain.status_code == 302
    assert repr(USE_CLIENT_DEFAULT) == "USE_CLIENT_DEFAULT"


def test_request_extensions_as_httpx(env, run):
    """extensions= go with the Request to the transport on every hop, with the request's
    timeout in httpx's form; their "timeout" is the request's timeout when none is
    given, from request() and from build_request() alike."""
    from corenet.https import MockTransport, ReadTimeout

    seen = []

    def handler(request):
        seen.append((request.url.path, dict(request.extensions)))
        if request.url.path == "/a":
            return Response(307, headers={"Location": "/b"})
        return Response(200)

    async def mocked():
        async with AsyncClient(transport=MockTransport(handler), follow_redirects=True) as c:
            await c.get("https://api.test/a", extensions={"trace_id": "t1"})
            req = c.build_request("GET", "https://api.test/c", timeout=2,
                                  cookies={"s": "1"}, extensions={"tag": "x"})
            return req, await c.send(req)

    req, resp = run(mocked())
    default = {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}  # DEFAULT_TIMEOUT
    assert seen[:2] == [("/a", {"trace_id": "t1", "timeout": default}),
                        ("/b", {"trace_id": "t1", "timeout": default})]
    assert req.headers["cookie"] == "s=1" and resp.status_code == 200
    assert seen[2] == ("/c", {"tag": "x", "timeout": {"connect": 2.0, "read": 2.0,
                                                      "write": 2.0, "pool": 2.0}})

    async def stalled(how: str):
        async with AsyncClient(verify=env.ca, timeout=30) as c:
            if how == "request":
                await c.get(env.raw + "/stall-headers",
                            extensions={"timeout": {"read": 0.3, "connect": 5}})
            else:
                await c.send(c.build_request("GET", env.raw + "/stall-headers", timeout=0.3))

    for how in ("request", "build_request"):
        with pytest.raises(ReadTimeout):
            run(stalled(how), timeout=10)  # the client's 30 s would outlast the test's bound


def test_timeout_takes_httpx_forms():
    import httpx

    from corenet.https import Timeout

    for args, kw in [((), {"timeout": 10}), (((1, 2, 3, 4),), {}), ((None,), {}),
                     ((5,), {"read": None}), ((httpx.Timeout(3),), {}), (((3.05, 27),), {}),
                     (((1, 2, 3),), {})]:
        theirs = httpx.Timeout(*args, **kw).as_dict()
        assert Timeout(*args, **kw).as_dict() == theirs, (args, kw)
        assert Timeout.coerce(theirs).as_dict() == theirs
    copied = Timeout(Timeout(3, total=9), read=1)
    assert (copied.connect, copied.read, copied.total) == (3.0, 1.0, 9.0)
    assert Timeout(2, total=5).as_dict()["total"] == 5.0
    for bad in ((1,), (1, 2, 3, 4, 5)):
        with pytest.raises(ValueError, match="tuple"):
            Timeout(bad)


URLS = ["https://u:p@a.example:8443/p/q?x=1&x=2#f", "http://b.example/", "https://[::1]:9/a",
        "https://c.example/d%20e?q=a+b"]
URL_CHANGES = [{"scheme": "http"}, {"host": "other.example"}, {"host": "faß.de"},
               {"port": 8080}, {"port": None}, {"path": "/a b"}, {"query": b"y=2"},
               {"params": {"z": "3"}}, {"fragment": "g"}, {"raw_path": b"/r?s=1"},
               {"username": "v", "password": "w x"}, {"netloc": b"n.example:81"}]


@pytest.mark.parametrize("url", URLS)
def test_url_copies_as_httpx(url):
    import httpx

    ours, theirs = URL(url), httpx.URL(url)
    for change in URL_CHANGES:
        assert str(ours.copy_with(**change)) == str(theirs.copy_with(**change)), change
    for op, args in [("copy_set_param", ("x", "9")), ("copy_add_param", ("x", "9")),
                     ("copy_remove_param", ("x",)), ("copy_merge_params", ({"k": "v"},))]:
        assert str(getattr(ours, op)(*args)) == str(getattr(theirs, op)(*args)), op
    for attr in ("userinfo", "raw_scheme", "is_absolute_url", "is_relative_url"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    refusals = []
    for made in (ours, theirs):
        with pytest.raises(TypeError) as info:
            made.copy_with(colour="blue")
        refusals.append(str(info.value))
    assert refusals[0] == refusals[1]


def test_headers_mapping_methods_as_httpx():
    import httpx

    pairs = [("Accept", "a"), ("X-Two", "1"), ("x-two", "2"), ("Host", "h")]
    ours, theirs = Headers(pairs), httpx.Headers(pairs)
    assert list(ours.values()) == list(theirs.values()) and ours.raw == theirs.raw
    assert ours.popitem() == theirs.popitem() == ("accept", "a")
    assert list(ours.items()) == list(theirs.items())
    ours.clear()
    theirs.clear()
    assert len(ours) == len(theirs) == 0 and ours.raw == []
    with pytest.raises(KeyError):
        ours.popitem()


def test_transport_socket_options_are_set_before_connecting(run, tmp_path):
    """socket_options= (httpx's): set on each socket before it connects. A maximum
    segment size given to the client's socket is in its SYN, so the server's end of the
    connection uses it: a proof that setting it after the connection would not give."""
    import asyncio
    import socket

    from corenet.https import AsyncHTTPTransport

    async def main(options, addresses):
        seen = []

        async def answer(reader, writer):
            sock = writer.get_extra_info("socket")
            if sock.family != socket.AF_UNIX:
                seen.append(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG))
            await _echo_peer(reader, writer)

        if addresses == "unix":
            server = await asyncio.start_unix_server(answer, str(tmp_path / "s.sock"))
            url = "http://localhost/"
            transport = AsyncHTTPTransport(uds=str(tmp_path / "s.sock"),
                                           socket_options=options)
        else:
            server = await asyncio.start_server(answer, "127.0.0.1", 0)
            url = f"http://localhost:{server.sockets[0].getsockname()[1]}/"
            transport = AsyncHTTPTransport(socket_options=options)
        try:
            async with AsyncClient(transport=transport) as c:
                return (await c.get(url)).status_code, seen
        finally:
            server.close()

    small = [(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 600)]
    status, seen = run(main(small, "tcp"))
    assert status == 200 and seen and seen[0] <= 600
    status, seen = run(main(None, "tcp"))
    assert status == 200 and seen[0] > 600  # loopback's own, far larger
    assert run(main([(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)], "unix"))[0] == 200
    with pytest.raises(ValueError, match="socket option"):
        AsyncHTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE)])


def test_byte_streams_are_closed_once_read_or_when_the_response_is(run):
    """A handler's streamed body (httpx's byte-stream classes, or any iterable with close
    or aclose): closed once read whole, and when the response is closed early."""
    from corenet.https import (AsyncByteStream, ByteStream, MockTransport, SyncByteStream,
                               Client)

    closed = []

    class Pieces(AsyncByteStream):
        def __init__(self, name):
            self.name = name

        async def __aiter__(self):
            for i in range(3):
                yield b"piece%d " % i

        async def aclose(self):
            closed.append(self.name)

    class SyncPieces(SyncByteStream):
        def __iter__(self):
            yield b"sync "
            yield b"pieces"

        def close(self):
            closed.append("sync")

    def handler(request):
        if request.url.path == "/one":
            return Response(200, stream=ByteStream(b"one piece"))
        if request.url.path == "/sync":
            return Response(200, stream=SyncPieces())
        return Response(200, stream=Pieces(request.url.path))

    async def main():
        async with AsyncClient(transport=MockTransport(handler)) as c:
            whole = (await c.get("https://api.test/whole")).content
            async with c.stream("GET", "https://api.test/early") as r:
                async for first in r.aiter_raw():
                    break
            one = (await c.get("https://api.test/one")).content
            return whole, first, one

    whole, first, one = run(main())
    assert (whole, first, one) == (b"piece0 piece1 piece2 ", b"piece0 ", b"one piece")
    assert closed == ["/whole", "/early"]
    with Client(transport=MockTransport(handler)) as c:
        assert c.get("https://api.test/sync").text == "sync pieces"
    assert closed[-1] == "sync"


def test_netrc_auth_as_httpx(run, tmp_path):
    import base64

    from corenet.https import MockTransport, NetRCAuth

    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.test login al password s3cret\n"
                     "machine other.test login bo password pw\n")
    netrc.chmod(0o600)

    def handler(request):
        return Response(200, json={"auth": request.headers.get("authorization")})

    async def main(host):
        async with AsyncClient(transport=MockTransport(handler), auth=NetRCAuth(netrc)) as c:
            return (await c.get(f"https://{host}/x")).json()["auth"]

    assert run(main("api.test")) == "Basic " + base64.b64encode(b"al:s3cret").decode()
    assert run(main("unknown.test")) is None
    with pytest.raises(FileNotFoundError):
        NetRCAuth(tmp_path / "missing")


def _rfc3986_remove_dot_segments(inp: str) -> str:
    """RFC 3986 5.2.4 as the RFC writes it (a buffer and rules A to E): the oracle."""
    out = ""
    while inp:
        if inp.startswith("../"):
            inp = inp[3:]
        elif inp.startswith("./"):
            inp = inp[2:]
        elif inp.startswith("/./"):
            inp = "/" + inp[3:]
        elif inp == "/.":
            inp = "/"
        elif inp.startswith("/../") or inp == "/..":
            inp = "/" + inp[4:]
            out = out[:out.rfind("/")] if "/" in out else ""
        elif inp in (".", ".."):
            inp = ""
        else:
            end = inp.find("/", 1 if inp.startswith("/") else 0)
            end = len(inp) if end < 0 else end
            out, inp = out + inp[:end], inp[end:]
    return out or "/"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", ".", "..", "", "c.d", "...", "%2E"]), max_size=8))
def test_dot_segments_removed_as_rfc_3986_says(segments):
    from corenet.https.urls import remove_dot_segments

    path = "/" + "/".join(segments)
    assert remove_dot_segments(path) == _rfc3986_remove_dot_segments(path)


def test_request_path_goes_without_dot_segments(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            return await c.get(env.raw + "/x/../y/./../echo?a=/../b")

    r = run(main())
    assert r.json()["path"] == "/echo?a=/../b"  # the query is not a path
    assert r.url == env.raw + "/echo?a=/../b"
