"""Details an httpx user meets, each beside the installed httpx: credentials masked in the
reprs of Headers and URL, Cookies falsy once empty, the catch-all mount keys, ALPN on an
SSLContext given as verify= with http2=True; Headers' bytes and encoding; multipart
bodies; redirects; streams and hand-made bodies; ASGI headers; auth flows and Digest; a
subclass's send() and build_request(); a Request's content, cookies, stream and repr;
Timeout's repr; raise_for_status()'s words; sync transports wrapping the network one."""
from __future__ import annotations

import hashlib
import io
import json
import re
import ssl
import typing
import warnings

import httpx
import pytest

import corenet.https as https
from https_helpers import reply_server


@pytest.mark.parametrize("headers", [
    {"Authorization": "Bearer t0ken", "Proxy-Authorization": "Basic cHU6cHA=", "Accept": "*/*"},
    [("authorization", "a"), ("X-Twice", "1"), ("x-twice", "2")],
    [],
])
def test_headers_repr_masks_credentials_as_httpx_does(headers):
    ours = repr(https.Headers(headers))
    assert ours == repr(httpx.Headers(headers))
    assert "t0ken" not in ours and "cHU6cHA=" not in ours


@pytest.mark.parametrize("url", [
    "https://alice:s3cret@api.test:8443/p?q=1#frag",
    "https://alice@api.test/",
    "http://:pw@api.test/",
    "https://api.test/a:b@c",
])
def test_url_repr_masks_the_password_as_httpx_does(url):
    ours = repr(https.URL(url))
    assert ours == repr(httpx.URL(url))
    assert "s3cret" not in ours and ":pw@" not in ours


def test_request_repr_shows_no_password():
    r = https.Request("GET", "https://u:hunter2@api.test/")
    assert "hunter2" not in repr(r.url)


def test_cookies_are_falsy_once_the_last_is_deleted():
    def states(module):
        jar = module.Cookies()
        seen = [bool(jar)]
        jar.set("a", "1", domain="api.test")
        jar.set("b", "2", domain="api.test", path="/x")
        seen.append(bool(jar))
        jar.delete("a")
        seen.append(bool(jar))
        jar.delete("b")
        seen.append(bool(jar))
        return seen

    assert states(https) == states(httpx) == [False, True, True, False]


def test_a_client_sends_no_cookie_once_its_jar_is_emptied(run):
    sent = []

    def handler(request):
        sent.append(request.headers.get("cookie"))
        return https.Response(200)

    async def main():
        async with https.AsyncClient(transport=https.MockTransport(handler)) as c:
            c.cookies.set("a", "1", domain="api.test")
            await c.get("https://api.test/")
            c.cookies.delete("a")
            await c.get("https://api.test/")
            return bool(c.cookies)

    assert run(main()) is False and sent == ["a=1", None]


@pytest.mark.parametrize("keys", [("http://*", "all://*"), ("all://*", "https://*"),
                                  ("http://", "all://*")])
def test_catch_all_mount_keys_route_as_httpx_s(keys):
    def routed(module, client):
        def named(name):
            return module.MockTransport(lambda request: module.Response(200, text=name))

        mounts = {key: named(key) for key in keys}
        with client(mounts=mounts, transport=named("default")) as c:
            return [c.get(url).text for url in ("http://a.test/", "https://b.test:8443/")]

    assert routed(https, https.Client) == routed(httpx, httpx.Client)


def test_http2_with_an_ssl_context_offers_h2_as_httpx_does(env, run):
    async def versions():
        ours, theirs = [], []
        for http2 in (True, False):
            ctx = ssl.create_default_context(cafile=env.ca)
            async with https.AsyncClient(verify=ctx, http2=http2) as c:
                ours.append((await c.get(env.h2 + "/small.txt")).http_version)
            ctx = ssl.create_default_context(cafile=env.ca)
            async with httpx.AsyncClient(verify=ctx, http2=http2) as c:
                theirs.append((await c.get(env.h2 + "/small.txt")).http_version)
        return ours, theirs

    ours, theirs = run(versions())
    assert ours == theirs == ["HTTP/2", "HTTP/1.1"]


def test_an_ssl_context_that_offered_h2_speaks_http1_when_http2_is_off(env, run):
    ctx = ssl.create_default_context(cafile=env.ca)
    ctx.set_alpn_protocols(["h2", "http/1.1"])

    async def main():
        async with https.AsyncClient(verify=ctx) as c:
            return (await c.get(env.h2 + "/small.txt")).http_version

    assert run(main()) == "HTTP/1.1"


# ---- Headers as httpx's: bytes or str, their encoding, where a set field goes ----

HEADER_CASES = [
    [(b"Content-Encoding", b"gzip"), (b"X-Two", b"a"), (b"x-two", b"b")],
    [(b"X-Name", "caf\u00e9".encode("utf-8"))],
    [(b"X-Name", "caf\u00e9".encode("latin-1"))],
    {"Accept": "*/*", "X-Str": "plain"},
    [("X-Mixed", b"bytes"), (b"X-Other", "str")],
]


@pytest.mark.parametrize("given", HEADER_CASES)
def test_headers_read_as_httpx_s(given):
    ours, theirs = https.Headers(given), httpx.Headers(given)
    assert ours.encoding == theirs.encoding
    assert ours.multi_items() == theirs.multi_items()
    assert dict(ours.items()) == dict(theirs.items())
    assert ours.raw == theirs.raw
    assert repr(ours) == repr(theirs)
    for name in theirs.keys():
        assert ours[name] == theirs[name] and ours.get_list(name) == theirs.get_list(name)


def test_headers_encoding_can_be_set_as_in_httpx():
    given = [(b"X-Name", "caf\u00e9".encode("utf-8"))]
    ours, theirs = https.Headers(given), httpx.Headers(given)
    ours.encoding = theirs.encoding = "iso-8859-1"
    assert ours["x-name"] == theirs["x-name"] == "caf\u00c3\u00a9"


def test_setting_a_header_keeps_its_place_as_in_httpx():
    given = [("A", "1"), ("B", "2"), ("b", "3"), ("C", "4")]
    ours, theirs = https.Headers(given), httpx.Headers(given)
    for h in (ours, theirs):
        h["b"] = "new"
        h["D"] = "last"
    assert ours.multi_items() == theirs.multi_items() == [
        ("a", "1"), ("b", "new"), ("c", "4"), ("d", "last")]
    assert ours.raw == theirs.raw


def test_a_hand_made_response_with_bytes_headers_is_decoded():
    import gzip

    body = gzip.compress(b"hello")
    headers = [(b"Content-Encoding", b"gzip"), (b"Content-Type", b"text/plain")]
    ours = https.Response(200, headers=headers, content=body)
    theirs = httpx.Response(200, headers=headers, content=body)
    assert ours.text == theirs.text == "hello"


@pytest.mark.parametrize("ctype", [None, "text/plain", "text/plain; charset=ISO-8859-1",
                                   'text/html; charset="Shift_JIS"', "text/plain; charset=bogus",
                                   "application/json; charset=utf-8"])
@pytest.mark.parametrize("body", [b"", b"a\nb\r\nc\rd\n", "caf\u00e9".encode("latin-1"),
                                  "\u65e5\u672c".encode("shift_jis"), b'{"a": 1}'])
def test_a_response_s_charset_encoding_text_and_lines_as_httpx_s(ctype, body):
    """The charset as the header names it (lower-cased, known or not), the encoding used
    (an unknown charset passes to the default), the text, the lines and text chunks of a
    stream, and json(), beside httpx for the same response."""
    def seen(mod) -> dict:
        headers = {"content-type": ctype} if ctype else {}

        def handler(request):
            return mod.Response(200, content=body, headers=headers)

        out = {}
        with mod.Client(transport=mod.MockTransport(handler)) as c:
            r = c.get("https://example.com/")
            out.update(charset=r.charset_encoding, encoding=r.encoding, text=r.text)
            try:
                out["json"] = r.json()
            except ValueError as e:
                out["json"] = type(e).__name__
            with c.stream("GET", "https://example.com/") as r:
                out["lines"] = list(r.iter_lines())
            with c.stream("GET", "https://example.com/") as r:
                out["text"] = list(r.iter_text(3))
        return out

    assert seen(https) == seen(httpx)


# ---- multipart as httpx's: the caller's boundary, the default filename, rewinding ----

BOUNDARY = {"Content-Type": "multipart/form-data; boundary=fixed-Boundary-42"}


@pytest.mark.parametrize("files", [
    {"f": b"raw bytes"},
    {"f": ("report.csv", b"a,b\n1,2\n")},
    {"f": ("notes.txt", b"hi", "text/x-custom")},
    [("f", ("a.bin", b"\x00\x01")), ("f", ("b.json", b"{}"))],
    {"f": ("n", b"x", None, {"X-Part": "1"})},
    {"f": io.BytesIO(b"a file object, sent as it is read"), "g": b"bytes"},
    [("f", ("a.bin", io.BytesIO(b"1" * 70_000), "application/x-a")), ("f", b"2")],
])
def test_multipart_bodies_are_httpx_s_byte_for_byte(files):
    data = {"field": "value", "many": ["1", "2"]}
    ours = https.Request("POST", "https://api.test/", headers=BOUNDARY, data=data, files=files)
    theirs = httpx.Request("POST", "https://api.test/", headers=BOUNDARY, data=data,
                           files=files)
    assert ours.read() == theirs.read()
    assert ours.headers["content-type"] == theirs.headers["content-type"]
    assert ours.headers["content-length"] == theirs.headers["content-length"]


@pytest.mark.parametrize("data, files", [
    ({"flag": True, "none": None, "num": 1.5, "list": [False, 2]}, {"f": b"x"}),
    ({"f": "v"}, {"up": ('he said "hi"\\\x1a\x1b\x1c\r\n.txt', b"x")}),
])
def test_multipart_values_and_awkward_file_names_are_httpx_s_byte_for_byte(data, files):
    """Form values as httpx writes them (true, empty for None), and a file name's quote,
    backslash and control characters escaped as httpx's HTML5 rule does."""
    ours = https.Request("POST", "https://api.test/", headers=BOUNDARY, data=data, files=files)
    theirs = httpx.Request("POST", "https://api.test/", headers=BOUNDARY, data=data,
                           files=files)
    assert ours.read() == theirs.read()


@pytest.mark.parametrize("data", [{b"bytes-name": "v"}, {1: "v"}, {"n": object()},
                                  {"n": {"a": 1}}])
def test_multipart_fields_of_other_types_are_a_type_error_as_in_httpx(data):
    for mod in (https, httpx):
        with pytest.raises(TypeError, match="Invalid type for (name|value)"):
            mod.Request("POST", "https://api.test/", data=data, files={"f": b"x"}).read()


def test_a_file_object_is_read_from_its_start_and_named_as_httpx_names_it(tmp_path):
    import io

    bodies = []
    for module in (https, httpx):
        path = tmp_path / "just-written.txt"
        with open(path, "w+b") as f:
            f.write(b"written, not yet rewound")
            named = module.Request("POST", "https://api.test/", headers=BOUNDARY,
                                   files={"f": f}).read()
        anonymous = io.BytesIO(b"in memory")
        anonymous.read()
        unnamed = module.Request("POST", "https://api.test/", headers=BOUNDARY,
                                 files={"f": anonymous}).read()
        bodies.append((named, unnamed))
    assert bodies[0] == bodies[1]
    named, unnamed = bodies[0]
    assert b'filename="just-written.txt"' in named and b"written, not yet rewound" in named
    assert b'filename="upload"' in unnamed and b"in memory" in unnamed


def test_a_text_mode_file_is_refused_as_httpx_refuses_it(tmp_path):
    import io

    path = tmp_path / "t.txt"
    path.write_text("text")
    for text in (lambda: open(path), lambda: io.StringIO("text")):
        errors = []
        for module in (https, httpx):
            with text() as f, pytest.raises(TypeError) as info:
                module.Request("POST", "https://api.test/", files={"f": f})
            errors.append(str(info.value))
        assert errors[0] == errors[1]


def test_the_client_takes_the_boundary_from_its_headers(run):
    bodies = []

    def handler(request):
        bodies.append((request.headers["content-type"], request.read()))
        return https.Response(200)

    async def main():
        async with https.AsyncClient(transport=https.MockTransport(handler)) as c:
            await c.post("https://api.test/", headers=BOUNDARY, files={"f": b"x"})

    run(main())
    want = httpx.Request("POST", "https://api.test/", headers=BOUNDARY, files={"f": b"x"})
    assert bodies == [(BOUNDARY["Content-Type"], want.read())]


# ---- redirects and extensions as httpx's ----

def redirecting(request):
    if request.url.path == "/start":
        return https.Response(302, headers={"Location": "/next"})
    if request.url.path == "/to-fragment":
        return https.Response(301, headers={"Location": "/there#loc"})
    if request.url.path == "/loop":
        return https.Response(302, headers={"Location": "/loop"})
    return https.Response(200, text=str(request.url))


def httpx_redirecting(request):
    r = redirecting(request)
    return httpx.Response(r.status_code, headers=list(r.headers.raw), content=r.content)


def test_redirect_defaults_and_next_request_as_httpx(run):
    async def ours():
        async with https.AsyncClient(transport=https.MockTransport(redirecting)) as c:
            r = await c.post("https://api.test/start", content=b"x")
            followed = await c.get("https://api.test/start#frag", follow_redirects=True)
            moved = await c.get("https://api.test/to-fragment#old", follow_redirects=True)
            with pytest.raises(https.TooManyRedirects):
                await c.get("https://api.test/loop", follow_redirects=True)
            return (c.max_redirects, r.next_request.method, str(r.next_request.url),
                    str(followed.url), str(moved.url))

    async def theirs():
        async with httpx.AsyncClient(transport=httpx.MockTransport(httpx_redirecting)) as c:
            r = await c.post("https://api.test/start", content=b"x")
            followed = await c.get("https://api.test/start#frag", follow_redirects=True)
            moved = await c.get("https://api.test/to-fragment#old", follow_redirects=True)
            return (c.max_redirects, r.next_request.method, str(r.next_request.url),
                    str(followed.url), str(moved.url))

    assert run(ours()) == run(theirs()) == (
        20, "GET", "https://api.test/next", "https://api.test/next#frag",
        "https://api.test/there#loc")


def bad_locations(module):
    def handler(request):
        where = {"/no-host": "https://:443/", "/no-host-port": "http://:8080/x?y",
                 "/emoji": "https://\U0001F607/", "/bracket": "http://[bad",
                 "/port": "http://api.test:99999/"}.get(request.url.path)
        if where is not None:
            return module.Response(302, headers=[(b"location", where.encode())])
        return module.Response(200, text=str(request.url))
    return handler


@pytest.mark.parametrize("path", ["/no-host", "/no-host-port", "/emoji", "/bracket", "/port"])
def test_a_location_that_is_no_url_is_the_server_s_error_as_in_httpx(run, path):
    """A Location in absolute form without a host means the request's host; one that is no
    URL at all is RemoteProtocolError, an HTTPError (a bare ValueError escaped before)."""
    async def followed(module):
        async with module.AsyncClient(transport=module.MockTransport(
                bad_locations(module))) as c:
            try:
                r = await c.get(f"http://api.test{path}", follow_redirects=True)
            except module.HTTPError as e:
                return type(e).__name__, str(e).startswith("Invalid URL in location header")
            return r.status_code, str(r.url), len(r.history)

    ours, theirs = run(followed(https)), run(followed(httpx))
    assert ours == {"/no-host": (200, "https://api.test/", 1),
                    "/no-host-port": (200, "http://api.test:8080/x?y", 1)}.get(
        path, ("RemoteProtocolError", True))
    # README's differences: httpx percent-encodes "[bad" into a host and takes the port
    # (to fail when it connects)
    assert ours == theirs or path in ("/bracket", "/port")


def test_a_redirect_followed_has_no_next_request(run):
    async def main():
        async with https.AsyncClient(transport=https.MockTransport(redirecting)) as c:
            r = await c.get("https://api.test/start", follow_redirects=True)
            return r.next_request, r.history[0].status_code

    assert run(main()) == (None, 302)


def test_extensions_carry_the_http_version_as_httpx_s(env, run):
    async def main():
        async with https.AsyncClient(verify=env.ca, http2=True) as c:
            one = await c.get(env.base + "/small.txt")
            two = await c.get(env.h2 + "/small.txt")
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=env.ca),
                                     http2=True) as c:
            theirs = [(await c.get(url)).extensions["http_version"]
                      for url in (env.base + "/small.txt", env.h2 + "/small.txt")]
        return [one.extensions["http_version"], two.extensions["http_version"]], theirs

    ours, theirs = run(main())
    assert ours == theirs == [b"HTTP/1.1", b"HTTP/2"]


# ---- streams, hand-made bodies, ASGI, auth flows, as httpx's ----

@pytest.mark.parametrize("kw", [{"content": b"abc"}, {"json": {"a": [1, 2]}}, {},
                                {"data": {"k": "v w"}}])
def test_request_stream_gives_the_body_as_httpx_s(kw):
    ours = https.Request("POST", "https://api.test/", **kw)
    theirs = httpx.Request("POST", "https://api.test/", **kw)
    assert b"".join(ours.stream) == b"".join(theirs.stream) == theirs.read()


def test_response_stream_and_sync_reads_of_a_hand_made_body_as_httpx_s():
    for module in (https, httpx):
        assert b"".join(module.Response(200, content=b"whole").stream) == b"whole"
    ours = https.Response(200, content=iter([b"a", b"", b"bc"]))
    theirs = httpx.Response(200, content=iter([b"a", b"", b"bc"]))
    assert ours.read() == theirs.read() == b"abc"
    ours = https.Response(200, content=iter([b"x", b"yz"]))
    theirs = httpx.Response(200, content=iter([b"x", b"yz"]))
    assert list(ours.iter_bytes()) == list(theirs.iter_bytes()) == [b"x", b"yz"]


def _outcome(step):
    try:
        return step()
    except Exception as exc:
        return type(exc).__name__


def _hand_made_generator_stream(module, reads: str):
    """What reading a hand-made response's generator body gives, step by step: ``stream``
    read through, ``read`` read whole, then its stream read again."""
    closed = []

    def gen():
        try:
            yield b"Hello, "
            yield b"world!"
        finally:
            closed.append(True)

    r = module.Response(200, content=gen())
    kinds = (isinstance(r.stream, typing.Iterable), isinstance(r.stream, typing.AsyncIterable))
    first = _outcome(lambda: b"".join(r.stream) if reads == "stream" else r.read())
    return kinds, first, _outcome(lambda: list(r.stream)), dict(r.headers), bool(closed)


@pytest.mark.parametrize("reads", ["stream", "read"])
def test_a_hand_made_generator_body_is_streamed_once_as_in_httpx(reads):
    """A generator gives its bytes once: a second pass over the response's stream is
    StreamConsumed (it gave nothing before), and the stream is sync-only, as httpx's."""
    ours = _hand_made_generator_stream(https, reads)
    theirs = _hand_made_generator_stream(httpx, reads)
    assert ours == theirs == ((True, False), b"Hello, world!", "StreamConsumed",
                              {"transfer-encoding": "chunked"}, True)


def test_a_hand_made_async_generator_body_is_streamed_once_as_in_httpx(run):
    async def gen():
        yield b"a"
        yield b"bc"

    async def steps(module):
        r = module.Response(200, content=gen())
        kinds = (isinstance(r.stream, typing.Iterable),
                 isinstance(r.stream, typing.AsyncIterable))
        body = b"".join([piece async for piece in r.stream])
        try:
            async for _ in r.stream:
                pass
        except module.StreamConsumed:
            return kinds, body, "StreamConsumed"
        return kinds, body, None

    assert run(steps(https)) == run(steps(httpx)) == ((False, True), b"abc", "StreamConsumed")


def test_a_hand_made_list_body_can_be_streamed_again_as_in_httpx():
    for module in (https, httpx):
        r = module.Response(200, content=[b"a", b"bc"])
        assert list(r.stream) == list(r.stream) == [b"a", b"bc"]


def test_a_streamed_response_s_stream_is_its_raw_body(run):
    async def main():
        t = https.MockTransport(lambda r: https.Response(200, content=b"raw body"))
        async with https.AsyncClient(transport=t) as c:
            async with c.stream("GET", "https://api.test/") as r:
                return b"".join([p async for p in r.stream])

    assert run(main()) == b"raw body"


@pytest.mark.parametrize("url", ["http://testserver/p?q=1", "https://h.test:8443/a%20b?x=%2F",
                                 "https://h.test/", "http://h.test:80/"])
def test_an_asgi_app_s_scope_is_httpx_s(run, url):
    async def app(scope, receive, send):
        picked = {k: scope[k] for k in ("server", "client", "root_path", "http_version",
                                        "raw_path", "path", "query_string", "scheme",
                                        "method", "type")}
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": repr(picked).encode()})

    async def scope(module):
        async with module.AsyncClient(transport=module.ASGITransport(app=app)) as c:
            return (await c.get(url)).text

    assert run(scope(https)) == run(scope(httpx))


def test_asgi_str_headers_as_httpx_takes_them(run):
    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200,
                    "headers": [("x-str", "yes"), (b"x-bytes", b"too")]})
        await send({"type": "http.response.body", "body": b"ok"})

    async def main():
        async with https.AsyncClient(transport=https.ASGITransport(app)) as c:
            ours = await c.get("http://testserver/")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app)) as c:
            theirs = await c.get("http://testserver/")
        return [ours.headers.get(k) for k in ("x-str", "x-bytes")], [
            theirs.headers.get(k) for k in ("x-str", "x-bytes")]

    ours, theirs = run(main())
    assert ours == theirs == ["yes", "too"]


class TokenAuth:
    """An auth whose async flow awaits (a token fetch, say): only async_auth_flow runs."""

    def __init__(self, module):
        class Flow(module.Auth):
            def auth_flow(self, request):
                raise AssertionError("the client runs async_auth_flow")

            async def async_auth_flow(self, request):
                request.headers["Authorization"] = "Token from-await"
                response = yield request
                assert response.status_code == 200

            def sync_auth_flow(self, request):
                request.headers["Authorization"] = "Token from-sync"
                yield request

        self.auth = Flow()


def _echo_auth(request):
    return https.Response(200, text=request.headers.get("authorization", ""))


def test_clients_run_httpx_s_auth_flow_methods(run):
    async def main():
        async with https.AsyncClient(transport=https.MockTransport(_echo_auth)) as c:
            ours = (await c.get("https://api.test/", auth=TokenAuth(https).auth)).text
        async with httpx.AsyncClient(transport=httpx.MockTransport(
                lambda r: httpx.Response(200, text=r.headers.get("authorization", "")))) as c:
            theirs = (await c.get("https://api.test/", auth=TokenAuth(httpx).auth)).text
        return ours, theirs

    assert run(main()) == ("Token from-await", "Token from-await")
    with https.Client(transport=https.MockTransport(_echo_auth)) as c:
        assert c.get("https://api.test/", auth=TokenAuth(https).auth).text == "Token from-sync"


def digest_server(algorithm, challenge=None):
    """A MockTransport handler that asks for Digest with `algorithm` and checks the
    answer as RFC 7616 computes it (qop=auth)."""
    import hashlib

    h = {"MD5": hashlib.md5, "SHA": hashlib.sha1, "SHA-256": hashlib.sha256,
         "SHA-512": hashlib.sha512}[algorithm]

    def hx(text):
        return h(text.encode()).hexdigest()

    def handler(module):
        def answer(request):
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Digest "):
                return module.Response(401, headers={"WWW-Authenticate": challenge or (
                    f'Digest realm="r", qop="auth", nonce="n0", algorithm={algorithm}')})
            got = dict((k, q or v) for k, q, v in re.findall(
                r'(\w+)=(?:"([^"]*)"|([^\s,]+))', auth))
            want = hx(f"{hx('u:r:p')}:n0:{got['nc']}:{got['cnonce']}:auth:"
                      f"{hx(request.method + ':' + got['uri'])}")
            return module.Response(200 if got["response"] == want else 403)
        return answer

    return handler


@pytest.mark.parametrize("algorithm", ["MD5", "SHA", "SHA-256", "SHA-512"])
def test_digest_algorithms_as_httpx_s(algorithm):
    codes = []
    for module in (https, httpx):
        handler = digest_server(algorithm)(module)
        with module.Client(transport=module.MockTransport(handler)) as c:
            codes.append(c.get("https://api.test/p", auth=module.DigestAuth("u", "p"))
                         .status_code)
    assert codes == [200, 200]


def test_a_malformed_digest_challenge_is_a_protocol_error_as_in_httpx():
    for module in (https, httpx):
        handler = digest_server("MD5", challenge='Digest qop="auth"')(module)
        with module.Client(transport=module.MockTransport(handler)) as c:
            with pytest.raises(module.ProtocolError, match="Malformed Digest"):
                c.get("https://api.test/p", auth=module.DigestAuth("u", "p"))


@pytest.mark.parametrize("qop, error", [("auth-int", NotImplementedError),
                                         ("not-auth", "ProtocolError"),
                                         ("auth-int, other", "ProtocolError")])
def test_a_digest_challenge_without_qop_auth_is_an_error_as_in_httpx(qop, error):
    challenge = f'Digest realm="r", qop="{qop}", nonce="n0"'
    for module in (https, httpx):
        handler = digest_server("MD5", challenge=challenge)(module)
        with module.Client(transport=module.MockTransport(handler)) as c:
            with pytest.raises(getattr(module, error) if isinstance(error, str) else error):
                c.get("https://api.test/p", auth=module.DigestAuth("u", "p"))


# ---- the client's life and attributes, as httpx's ----

def recording(module, log):
    class Recording(module.MockTransport):
        async def __aenter__(self):
            log.append("enter")
            return self

        async def __aexit__(self, *exc):
            log.append("exit")

    return Recording(lambda request: module.Response(200, text=request.url.path))


def test_the_client_s_with_enters_its_transports_and_is_opened_once(run):
    async def life(module):
        log, errors = [], []
        client = module.AsyncClient(transport=recording(module, log),
                                    mounts={"https://m.test": recording(module, log)})
        async with client:
            try:
                async with client:
                    pass
            except RuntimeError as exc:
                errors.append(str(exc))
        for attempt in (client.get("https://x.test/"), client.__aenter__()):
            try:
                await attempt
            except RuntimeError as exc:
                errors.append(str(exc))
        return log, errors

    assert run(life(https)) == run(life(httpx)) == (
        ["enter", "enter", "exit", "exit"],
        ["Cannot open a client instance more than once.",
         "Cannot send a request, as the client has been closed.",
         "Cannot reopen a client instance, once it has been closed."])


def test_assigned_client_attributes_are_converted_as_httpx_s(run):
    def attributes(module):
        c = module.AsyncClient()
        c.timeout = 3.5
        c.auth = ("user", "pw")
        c.headers = {"X-Mine": "1"}
        c.base_url = "https://api.test/v1"
        with pytest.raises(TypeError):
            c.auth = 42
        return (c.timeout == module.Timeout(3.5), type(c.auth).__name__,
                c.headers["x-mine"], "user-agent" in c.headers, str(c.base_url))

    assert attributes(https) == attributes(httpx) == (
        True, "BasicAuth", "1", True, "https://api.test/v1/")


def test_hooks_assigned_into_event_hooks_are_called_as_in_httpx(run):
    async def called(module):
        seen = []

        async def hook(request):
            seen.append(request.url.path)

        t = module.MockTransport(lambda request: module.Response(200))
        async with module.AsyncClient(transport=t) as c:
            c.event_hooks["request"] = [hook]
            await c.get("https://api.test/hooked")
        return seen

    assert run(called(https)) == run(called(httpx)) == ["/hooked"]


def test_the_sync_client_s_with_enters_and_leaves_its_transport_as_httpx_s():
    logs = []
    for module in (https, httpx):
        log = []

        class Recording(module.BaseTransport):
            def __enter__(self):
                log.append("enter")
                return self

            def __exit__(self, *exc):
                log.append("exit")

            def handle_request(self, request):
                return module.Response(200)

        with module.Client(transport=Recording()) as c:
            c.get("https://api.test/")
        logs.append(log)
    assert logs[0] == logs[1] == ["enter", "exit"]


@pytest.mark.parametrize("kw", [
    {"scheme": "https", "host": "a.test", "path": "/x"},
    {"scheme": "https", "host": "a.test", "port": 8443, "path": "/p", "query": b"q=1"},
    {"scheme": "http", "host": "a.test", "path": "/", "params": {"k": "v", "n": 2}},
    {"scheme": "https", "host": "A.Test", "path": "/x", "fragment": "top"},
    {"scheme": "https", "host": "a.test", "username": "u", "password": "p w", "path": "/"},
    {"scheme": "https", "host": "::1", "path": "/"},
])
def test_url_from_httpx_s_keywords(kw):
    assert str(https.URL(**kw)) == str(httpx.URL(**kw))


def test_url_keywords_over_a_text_as_httpx_s():
    for kw in ({"params": {"a": "1"}}, {"path": "/y"}, {"fragment": "f"}):
        assert str(https.URL("https://a.test/x", **kw)) == str(httpx.URL("https://a.test/x", **kw))


# ---- a request's headers complete once made, as httpx's ----

@pytest.mark.parametrize("args, kw", [
    (("GET", "https://a.test/"), {}),
    (("POST", "https://a.test:8443/p"), {}),
    (("POST", "https://a.test/"), {"content": b"abc"}),
    (("PUT", "http://[::1]:80/"), {"json": {"a": 1}}),
    (("POST", "https://a.test/"), {"content": iter([b"a"])}),
    (("GET", "https://a.test/"), {"headers": {"Host": "other"}}),
    (("POST", "https://a.test/"), {"data": {"a": "b"}, "headers": {"X": "1"}}),
    (("POST", "https://a.test/"), {"content": "text"}),
])
def test_request_headers_are_complete_once_made_as_httpx_s(args, kw):
    assert https.Request(*args, **kw).headers.multi_items() == \
        httpx.Request(*args, **kw).headers.multi_items()


def test_hooks_and_mock_handlers_see_the_complete_headers_as_in_httpx(run):
    async def seen(module):
        got = []

        async def hook(request):
            got.append(("hook", request.headers.get("host"), request.headers.get("content-length")))

        def handler(request):
            got.append(("handler", request.headers.get("host"),
                        request.headers.get("content-length")))
            if request.url.path == "/start":
                return module.Response(307, headers={"Location": "https://b.test:8443/next"})
            return module.Response(200)

        async with module.AsyncClient(transport=module.MockTransport(handler),
                                      event_hooks={"request": [hook]}) as c:
            await c.post("https://a.test/start", content=b"xyz", follow_redirects=True)
        return got

    assert run(seen(https)) == run(seen(httpx)) == [
        ("hook", "a.test", "3"), ("handler", "a.test", "3"),
        ("hook", "b.test:8443", "3"), ("handler", "b.test:8443", "3")]


def test_a_generator_request_body_streams_once_as_in_httpx():
    def gen():
        yield b"a"

    for module in (https, httpx):
        r = module.Request("POST", "https://a.test/", content=gen())
        assert b"".join(r.stream) == b"a"
        with pytest.raises(module.StreamConsumed):
            b"".join(r.stream)
        listed = module.Request("POST", "https://a.test/", content=[b"x", b"y"])
        assert b"".join(listed.stream) == b"".join(listed.stream) == b"xy"


@pytest.mark.parametrize("text", [
    "https://example.org/a b", "https://exämple.org/päth?q=ä b#frä g",
    "https://a.test/x?q=a b&r=%zz", 'https://a.test/"quoted"<>', "https://us er:pä@a.test/",
    "https://a.test:8443/é", "https://a.test/ok?plain=1", "https://a.test/a%20b c",
    "https://a.test/a%zz b", "https://a.test/%é", "https://[::1]:8443/a b",
])
def test_a_url_is_percent_encoded_and_idna_d_when_made_as_httpx_s(text):
    assert str(https.URL(text)) == str(httpx.URL(text))


@pytest.mark.parametrize("text", ["https://a.test/a\nb", "https://a.test/\x7f", "https://a.\x00test/"])
def test_a_control_character_is_refused_when_made_as_httpx_refuses_it(text):
    errors = []
    for module in (https, httpx):
        with pytest.raises(module.InvalidURL) as info:
            module.URL(text)
        errors.append(str(info.value))
    assert errors[0] == errors[1]


def _signed_echo(mod):
    def handler(request):
        return mod.Response(200, json={"method": request.method, "url": str(request.url),
                                       "signed": request.headers.get("x-signed"),
                                       "cookie": request.headers.get("cookie")})
    return handler


@pytest.mark.parametrize("override", ["send", "build_request"])
def test_an_async_subclass_s_send_and_build_request_see_every_verb_as_httpx_s(run, override):
    """An SDK's AsyncClient subclass that signs requests in send() or build_request():
    the verbs, request() and stream() reach it, as they do in httpx."""
    def client_class(mod):
        seen = []

        class Signing(mod.AsyncClient):
            if override == "send":
                async def send(self, request, **kw):
                    seen.append(("send", request.method, sorted(kw)))
                    request.headers["X-Signed"] = request.method.lower()
                    return await super().send(request, **kw)
            else:
                def build_request(self, method, url, **kw):
                    seen.append(("build", method, sorted(kw)))
                    request = super().build_request(method, url, **kw)
                    request.headers["X-Signed"] = method.lower()
                    return request
        return Signing, seen

    async def main(mod):
        cls, seen = client_class(mod)
        async with cls(transport=mod.MockTransport(_signed_echo(mod))) as c:
            got = [(await c.get("https://api.test/g", params={"a": "1"})).json(),
                   (await c.post("https://api.test/p", json={"x": 1})).json(),
                   (await c.request("DELETE", "https://api.test/d", cookies={"k": "v"})).json()]
            async with c.stream("PUT", "https://api.test/s", content=b"body") as r:
                got.append(json_of(await r.aread()))
        return got, seen

    def json_of(body):
        return json.loads(body)

    with pytest.warns(DeprecationWarning):      # for per-request cookies, in both
        theirs = run(main(httpx))
    with pytest.warns(DeprecationWarning):
        ours = run(main(https))
    assert ours == theirs   # the responses, and what the override was called with
    assert [(kind, m) for kind, m, _ in ours[1]] == \
        [(override.replace("build_request", "build"), m) for m in ("GET", "POST", "DELETE", "PUT")]
    assert [r["signed"] for r in ours[0]] == ["get", "post", "delete", "put"]
    if override == "send":  # stream() asks send() for a streamed response, as httpx does
        assert ours[1][-1][2] == ["auth", "follow_redirects", "stream"]


@pytest.mark.parametrize("override", ["send", "build_request"])
def test_a_sync_subclass_s_send_and_build_request_see_every_verb_as_httpx_s(override):
    def client_class(mod):
        seen = []

        class Signing(mod.Client):
            if override == "send":
                def send(self, request, **kw):
                    seen.append(("send", request.method, sorted(kw)))
                    request.headers["X-Signed"] = request.method.lower()
                    return super().send(request, **kw)
            else:
                def build_request(self, method, url, **kw):
                    seen.append(("build", method, sorted(kw)))
                    request = super().build_request(method, url, **kw)
                    request.headers["X-Signed"] = method.lower()
                    return request
        return Signing, seen

    def main(mod):
        cls, seen = client_class(mod)
        with cls(transport=mod.MockTransport(_signed_echo(mod))) as c:
            got = [c.get("https://api.test/g").json(), c.patch("https://api.test/p").json()]
            with c.stream("GET", "https://api.test/s") as r:
                got.append(r.read() and r.json())
            assert r.is_closed
        return got, seen

    ours, theirs = main(https), main(httpx)
    assert ours == theirs
    assert [r["signed"] for r in ours[0]] == ["get", "patch", "get"]


def test_send_patched_on_the_instance_sees_the_verbs_as_httpx_s(run):
    """`mock.patch.object(client, "send", wraps=client.send)`: a test's way to watch what
    an SDK sends; the verbs go through the patched send, in the async and sync clients."""
    from unittest import mock

    async def watch_async(mod):
        async with mod.AsyncClient(transport=mod.MockTransport(_signed_echo(mod))) as c:
            with mock.patch.object(c, "send", wraps=c.send) as sent:
                await c.get("https://api.test/a")
                async with c.stream("GET", "https://api.test/b"):
                    pass
            await c.get("https://api.test/c")     # unpatched again
            return [str(call.args[0].url if call.args else call.kwargs["request"].url)
                    for call in sent.call_args_list]

    def watch_sync(mod):
        with mod.Client(transport=mod.MockTransport(_signed_echo(mod))) as c:
            with mock.patch.object(c, "send", wraps=c.send) as sent:
                c.post("https://api.test/a")
            c.get("https://api.test/c")
            return [str(call.args[0].url) for call in sent.call_args_list]

    assert run(watch_async(https)) == run(watch_async(httpx)) == \
        ["https://api.test/a", "https://api.test/b"]
    assert watch_sync(https) == watch_sync(httpx) == ["https://api.test/a"]


@pytest.mark.parametrize("args, kw", [
    ((5.0,), {}), ((None,), {}), ((1,), {"connect": 2}), ((None,), {"read": 3.5}),
    (((1, 2, 3, 4),), {}), ((10,), {"pool": None}),
])
def test_a_timeout_s_repr_is_httpx_s(args, kw):
    assert repr(https.Timeout(*args, **kw)) == repr(httpx.Timeout(*args, **kw))


def test_a_total_timeout_is_shown_after_httpx_s_stages():
    assert repr(https.Timeout(5.0, total=30)) == "Timeout(timeout=5.0, total=30)"
    assert repr(https.Timeout(5.0, read=1, total=30)) == \
        "Timeout(connect=5.0, read=1, write=5.0, pool=5.0, total=30)"


@pytest.mark.parametrize("kw", [{"pool": 5.0}, {"connect": 1, "read": 2, "write": 3}, {}])
def test_a_timeout_without_a_default_needs_all_four_stages_as_in_httpx(kw):
    with pytest.raises(ValueError):
        httpx.Timeout(**kw)
    with pytest.raises(ValueError, match="all four"):
        https.Timeout(**kw)
    four = {"connect": 1, "read": 2, "write": 3, "pool": 4}
    assert repr(https.Timeout(**four)) == repr(httpx.Timeout(**four))


@pytest.mark.parametrize("kw", [{}, {"max_connections": 10}, {"keepalive_expiry": None},
                                {"max_connections": 1, "max_keepalive_connections": 0}])
def test_limits_repr_is_httpx_s_for_the_pool_fields(kw):
    full = {"max_connections": 100, "max_keepalive_connections": 20, **kw}
    assert repr(https.Limits(**full)) == repr(httpx.Limits(**full))
    # a limit of corenet's own shows only when it is not its default
    assert repr(https.Limits(**full, max_body_bytes=5)) == \
        repr(httpx.Limits(**full))[:-1] + ", max_body_bytes=5)"


@pytest.mark.parametrize("url, kw", [
    ("http://user:pa%20ss@proxy.test:3128", {}),
    ("http://proxy.test:3128", {}),
    ("http://wrong:creds@proxy.test:3128", {"auth": ("pu", "pp")}),
    ("https://proxy.test:8443", {"headers": {"X-Proxy-Tag": "t"}}),
])
def test_a_proxy_s_url_auth_headers_and_repr_are_httpx_s(url, kw):
    ours, theirs = https.Proxy(url, **kw), httpx.Proxy(url, **kw)
    assert ours.auth == theirs.auth
    assert str(ours.url) == str(theirs.url)
    assert dict(ours.headers) == dict(theirs.headers)
    assert repr(ours) == repr(theirs)
    assert "pa ss" not in repr(ours) and "pp" not in repr(ours)


def test_elapsed_before_the_response_is_read_raises_as_in_httpx(env, run):
    async def streamed(mod):
        ctx = ssl.create_default_context(cafile=str(env.ca))
        async with mod.AsyncClient(verify=ctx) as c:
            async with c.stream("GET", env.raw + "/echo") as r:
                with pytest.raises(RuntimeError, match="read or closed"):
                    r.elapsed  # noqa: B018
                await r.aread()
                return r.elapsed.total_seconds()

    assert 0 < run(streamed(https)) < 30
    assert 0 < run(streamed(httpx)) < 30


def test_per_request_cookies_warn_as_in_httpx_and_client_cookies_do_not(run):
    def handler(request):
        return https.Response(200, json={"cookie": request.headers.get("cookie")})

    def their_handler(request):
        return httpx.Response(200, json={"cookie": request.headers.get("cookie")})

    def sync(mod, h):
        with mod.Client(transport=mod.MockTransport(h), cookies={"c": "1"}) as c:
            with pytest.warns(DeprecationWarning) as caught:
                got = c.get("https://api.test/", cookies={"r": "2"}).json()
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                c.get("https://api.test/")              # the client's cookies: no warning
                with c.stream("GET", "https://api.test/", cookies={"s": "3"}) as r:
                    r.read()                            # stream(): none, as in httpx
        return got, [str(w.message) for w in caught]

    async def in_async(mod, h):
        async with mod.AsyncClient(transport=mod.MockTransport(h)) as c:
            with pytest.warns(DeprecationWarning) as caught:
                await c.get("https://api.test/", cookies={"r": "2"})
        return [str(w.message) for w in caught]

    assert sync(https, handler) == sync(httpx, their_handler)
    assert run(in_async(https, handler)) == run(in_async(httpx, their_handler))


def test_requests_and_responses_pickle_as_httpx_s(run):
    """Bytes bodies survive; a streamed one stays with the original: the copy's read is
    StreamClosed, its content not read yet, as in httpx."""
    import pickle

    async def agen():
        yield b"Hello, "
        yield b"world!"

    async def shape(mod):
        out = []
        req = pickle.loads(pickle.dumps(mod.Request("POST", "https://a.test/p?q=1",
                                                    headers={"X": "1"}, content=b"abc")))
        out.append((req.method, str(req.url), dict(req.headers), req.content))
        req = pickle.loads(pickle.dumps(mod.Request("POST", "https://a.test/", content=agen())))
        with pytest.raises(mod.StreamClosed):
            await req.aread()
        with pytest.raises(mod.RequestNotRead):
            req.content  # noqa: B018
        out.append(dict(req.headers))
        resp = pickle.loads(pickle.dumps(mod.Response(200, content=agen())))
        with pytest.raises(mod.ResponseNotRead):
            resp.content  # noqa: B018
        with pytest.raises(mod.StreamClosed):
            await resp.aread()
        out.append((resp.is_closed, resp.is_stream_consumed, resp.num_bytes_downloaded,
                    dict(resp.headers)))
        resp = mod.Response(200, content=agen(), request=mod.Request("GET", "https://a.test/"))
        await resp.aread()
        resp = pickle.loads(pickle.dumps(resp))
        out.append((resp.is_closed, resp.is_stream_consumed, resp.content,
                    resp.num_bytes_downloaded, str(resp.request.url), resp.extensions))
        return out

    assert run(shape(https)) == run(shape(httpx))


def test_a_response_from_the_network_pickles_with_its_body(env, run):
    import pickle

    async def main():
        async with https.AsyncClient(verify=env.ca) as c:
            r = await c.get(env.raw + "/echo", headers={"X-Tag": "p"})
            async with c.stream("GET", env.raw + "/echo") as unread:
                copy = pickle.loads(pickle.dumps(unread))
            return r, pickle.loads(pickle.dumps(r)), copy

    async def over_h2():
        async with https.AsyncClient(verify=env.ca, http2=True) as c:
            r = await c.get(env.h2 + "/small.txt")
            return r, pickle.loads(pickle.dumps(r))

    r, copy, unread = run(main())
    assert (copy.status_code, copy.content, copy.headers, str(copy.url)) == \
        (r.status_code, r.content, r.headers, str(r.url))
    assert "\r\nX-Tag: p\r\n" in copy.json()["raw"] and copy.extensions == {}
    assert copy.elapsed == r.elapsed
    with pytest.raises(https.StreamClosed):
        unread.read()
    r, copy = run(over_h2())
    assert r.http_version == copy.http_version == "HTTP/2"
    assert (copy.content, copy.headers) == (r.content, r.headers)


def _bodies():
    async def agen():
        yield b"a"
        yield b"sync"
    return [("none", {}), ("bytes", {"content": b"raw"}), ("str", {"content": "caf\u00e9"}),
            ("json", {"json": {"k": [1, None]}}), ("form", {"data": {"a": "1 2"}}),
            ("iterable", {"content": iter([b"x", b"y"])}), ("async", {"content": agen()})]


def test_a_request_s_content_is_httpx_s(run):
    """`request.content`: the body's bytes (b"" for none); a stream's RequestNotRead until
    read() or aread(), then its bytes, as in httpx."""
    async def contents(mod):
        out = []
        for kind, kw in _bodies():
            r = mod.Request("POST", "https://api.test/", **kw)
            try:
                before = r.content
            except mod.RequestNotRead as e:
                before = type(e).__name__
            read = await r.aread() if kind == "async" else r.read()
            out.append((kind, before, read, r.content))
        return out

    assert run(contents(https)) == run(contents(httpx))


def test_a_mock_handler_sees_the_body_as_httpx_s_does(run):
    async def seen(mod):
        got = []

        def handler(request):
            got.append((request.method, request.content))
            return mod.Response(204)

        async def body():
            yield b"p"
            yield b"q"

        async with mod.AsyncClient(transport=mod.MockTransport(handler)) as c:
            await c.get("https://api.test/")
            await c.post("https://api.test/", content=body())
            await c.put("https://api.test/", json=[1])
        return got

    assert run(seen(https)) == run(seen(httpx)) == \
        [("GET", b""), ("POST", b"pq"), ("PUT", b"[1]")]


def test_a_request_s_repr_is_httpx_s():
    for args in (("GET", "https://api.test/a?b=1"), ("post", "https://api.test:8443/")):
        assert repr(https.Request(*args)) == repr(httpx.Request(*args))


@pytest.mark.parametrize("status, headers", [
    (101, {}), (302, {"Location": "/next"}), (303, {}), (304, {}), (404, {}), (451, {}),
    (503, {"Retry-After": "1"}), (99, {}), (600, {}),
])
def test_raise_for_status_says_what_httpx_says(status, headers):
    def raised(mod):
        r = mod.Response(status, headers=headers,
                         request=mod.Request("GET", "https://api.test/p?q=1"))
        with pytest.raises(mod.HTTPStatusError) as e:
            r.raise_for_status()
        return str(e.value), e.value.response.status_code, str(e.value.request.url)

    assert raised(https) == raised(httpx)


@pytest.mark.parametrize("kw", [
    {"cookies": {"a": "1", "b": "2"}},
    {"cookies": {"a": "1"}, "headers": {"Cookie": "mine=1"}},
    {"stream": [b"x", b"y"], "headers": {"X-Kept": "1"}},
    {"content": b"abc", "cookies": {"k": "v"}},
])
def test_a_request_made_with_cookies_or_a_stream_is_httpx_s(kw):
    """`Request(cookies=...)` adds the Cookie header; `Request(stream=...)` adds no header
    for its body, as httpx; either sends what it holds."""
    def made(mod):
        args = dict(kw)
        if "stream" in args:
            args["stream"] = mod.ByteStream(b"".join(args["stream"]))
        r = mod.Request("POST", "https://api.test/p", **args)
        return r.headers.multi_items(), r.read()

    assert made(https) == made(httpx)


def test_a_sync_transport_wrapping_the_network_one_works_as_httpx_s(env):
    """A sync transport of the kind SDKs write (logging, retrying) around
    `HTTPTransport()`, whose handle_request() and close() it calls, under the sync
    Client: the same responses as with httpx's."""
    def fetch(mod):
        seen = []

        class Logging(mod.BaseTransport):
            def __init__(self):
                self.inner = mod.HTTPTransport(verify=ssl.create_default_context(cafile=env.ca))

            def handle_request(self, request):
                seen.append(request.url.path)
                return self.inner.handle_request(request)

            def close(self):
                seen.append("closed")
                self.inner.close()

        with mod.Client(transport=Logging()) as c:
            got = [(r.status_code, r.content) for r in
                   (c.get(f"{env.base}/small.txt"), c.get(f"{env.base}/large.bin"),
                    c.get(f"{env.base}/missing"))]
        return got, seen

    ours, theirs = fetch(https), fetch(httpx)
    assert ours == theirs
    assert ours[0][1] == (200, env.large) and ours[1][-1] == "closed"


def test_the_network_transport_serves_sync_or_async_callers_not_both(run, env):
    ctx = ssl.create_default_context(cafile=env.ca)

    async def use(t):
        async with https.AsyncClient(transport=t) as c:
            return (await c.get(f"{env.base}/small.txt")).status_code

    async def keep(t):
        c = https.AsyncClient(transport=t)
        return c, (await c.get(f"{env.base}/small.txt")).status_code

    served = https.HTTPTransport(verify=ctx)
    client, status = run(keep(served))
    assert status == 200
    with pytest.raises(RuntimeError, match="already serves an event loop"):
        served.handle_request(https.Request("GET", f"{env.base}/small.txt"))
    run(client.aclose())
    with pytest.raises(RuntimeError, match="closed"):
        served.handle_request(https.Request("GET", f"{env.base}/small.txt"))
    with https.HTTPTransport(verify=ctx) as sync_only:
        r = sync_only.handle_request(https.Request("GET", f"{env.base}/small.txt"))
        assert r.status_code == 200 and r.is_closed and len(r.content) > 0
        with pytest.raises(RuntimeError, match="serves sync calls"):
            run(use(sync_only))


def test_mock_and_wsgi_transports_answer_sync_calls_as_httpx_s():
    def wsgi_app(environ, start_response):
        start_response("201 Created", [("Content-Type", "text/plain")])
        return [environ["PATH_INFO"].encode(), b" ", environ["wsgi.input"].read()]

    def answers(mod):
        mock = mod.MockTransport(lambda r: mod.Response(200, json={"got": r.content.decode()}))
        wsgi = mod.WSGITransport(app=wsgi_app)
        out = []
        for t in (mock, wsgi):
            r = t.handle_request(mod.Request("POST", "https://api.test/w", content=b"body"))
            r.read()
            out.append((r.status_code, r.content))
            t.close()
        return out

    assert answers(https) == answers(httpx) == [(200, b'{"got":"body"}'), (201, b"/w body")]


def test_an_auth_flow_signing_the_body_sees_httpx_s_content(run):
    """A signing Auth (requires_request_body) hashes `request.content`: b"" for a GET,
    the encoded JSON, a stream's bytes once read; and sends the request again on a 401."""
    def probe(mod):
        class Sign(mod.Auth):
            requires_request_body = True

            def auth_flow(self, request):
                request.headers["X-Digest"] = hashlib.sha256(request.content).hexdigest()
                response = yield request
                if response.status_code == 401:
                    request.headers["X-Retry"] = "1"
                    yield request

        def handler(request):
            if "x-retry" not in request.headers:
                return mod.Response(401)
            return mod.Response(200, json={"d": request.headers["x-digest"],
                                           "body": request.content.decode()})

        async def body():
            yield b"ab"
            yield b"c"

        async def main():
            async with mod.AsyncClient(transport=mod.MockTransport(handler), auth=Sign()) as c:
                return [(await c.get("https://a.test/")).json(),
                        (await c.post("https://a.test/", json={"k": 1})).json(),
                        (await c.post("https://a.test/", content=body())).json()]

        with mod.Client(transport=mod.MockTransport(handler), auth=Sign()) as c:
            sync = [c.post("https://a.test/", content=iter([b"x", b"y"])).json()]
        return run(main()) + sync

    ours = probe(https)
    assert ours == probe(httpx)
    assert [r["body"] for r in ours] == ["", '{"k":1}', "abc", "xy"]
    assert ours[0]["d"] == hashlib.sha256(b"").hexdigest()


def test_the_public_names_of_httpx_s_objects_are_here():
    """Every public name of httpx's clients, responses, URLs, query parameters, headers
    and cookies, on the objects as made (instance attributes included), bar URL.raw
    (deprecated in httpx)."""
    def made(mod):
        client, sync_client = mod.AsyncClient(), mod.Client()
        sync_client.close()
        return {"AsyncClient": client, "Client": sync_client,
                "Response": mod.Response(200, request=mod.Request("GET", "https://a.test/")),
                "Request": mod.Request("GET", "https://a.test/"),
                "URL": mod.URL("https://u:p@a.test:8443/p?q=1#f"),
                "QueryParams": mod.QueryParams("a=1"), "Headers": mod.Headers({"a": "1"}),
                "Cookies": mod.Cookies(), "Timeout": mod.Timeout(1)}

    ours, theirs = made(https), made(httpx)
    missing = {k: sorted(n for n in dir(theirs[k]) if not n.startswith("_")
                         and not hasattr(ours[k], n)) for k in theirs}
    assert {k: v for k, v in missing.items() if v} == {"URL": ["raw"]}


def test_query_params_refuse_changes_as_httpx_s_do():
    for mod in (https, httpx):
        q = mod.QueryParams("a=1")
        with pytest.raises(RuntimeError, match="immutable"):
            q.update({"b": "2"})
        with pytest.raises(RuntimeError, match="immutable"):
            q["b"] = "2"


def test_a_sync_client_s_max_redirects_is_its_async_client_s():
    with https.Client(max_redirects=3) as c:
        assert c.max_redirects == 3
        c.max_redirects = 5
        assert c.async_client.max_redirects == 5


def _outcome(call):
    """What `call()` gives: its value, or the name of the exception it raises."""
    try:
        return call()
    except Exception as exc:
        return type(exc).__name__


@pytest.mark.parametrize("probe", [
    lambda m: repr(m.Cookies([("a", "1"), ("b", "2")])),
    lambda m: m.Headers([("a", "1, 2"), ("a", "3")]).get_list("a", split_commas=True),
    lambda m: m.Response(200, headers={"Link": "<https://e.com/2>; rel='next'"}).links,
    lambda m: dict(m.Response(200, content=iter([b"a"])).headers),
    lambda m: m.Response(200, content=b"x").request,
    lambda m: m.Response(500, content=b"x").raise_for_status(),
])
def test_hand_made_objects_as_httpx_s_own_tests_have_them(probe):
    """What httpx's own model tests check of its hand-made objects: Cookies from a list
    of pairs and their repr, get_list(split_commas=), single-quoted link parameters, the
    Transfer-Encoding of a streamed hand-made response, and RuntimeError for a response's
    request (or raise_for_status()) when none was given."""
    assert _outcome(lambda: probe(https)) == _outcome(lambda: probe(httpx))


def test_a_hand_made_stream_read_or_closed_and_the_encoding_after_text_as_httpx_s():
    for mod in (https, httpx):
        consumed = mod.Response(200, content=iter([b"a", b"b"]))
        assert b"".join(consumed.iter_bytes()) == b"ab"
        with pytest.raises(mod.StreamConsumed):
            consumed.read()
        closed = mod.Response(200, content=iter([b"a"]))
        closed.close()
        with pytest.raises(mod.StreamClosed):
            closed.read()
        r = mod.Response(200, content=b"caf\xc3\xa9")
        assert r.text == "caf\u00e9"
        with pytest.raises(ValueError, match="after `text` has been accessed"):
            r.encoding = "latin-1"


@pytest.mark.parametrize("url", ["http://", "https:///path", "invalid://example.org",
                                 "/relative", "example.org"])
def test_a_url_the_network_cannot_take_is_unsupported_protocol_as_in_httpx(url):
    """No scheme, no host, or a scheme no transport takes: UnsupportedProtocol from both
    clients before anything is sent."""
    for mod in (https, httpx):
        with mod.Client() as client:
            with pytest.raises(mod.UnsupportedProtocol):
                client.get(url)


def test_a_transport_mounted_for_a_scheme_of_its_own_gets_its_requests_as_in_httpx():
    def app(name):
        return lambda request: (https if isinstance(request, https.Request) else httpx
                                ).Response(200, json={"app": name, "url": str(request.url)})

    for mod in (https, httpx):
        client = mod.Client(transport=mod.MockTransport(app("default")),
                            mounts={"custom://": mod.MockTransport(app("mounted"))})
        with client:
            assert client.get("https://www.example.com").json()["app"] == "default"
            got = client.get("custom://www.example.com/x?y=1").json()
            assert got == {"app": "mounted", "url": "custom://www.example.com/x?y=1"}


@pytest.mark.parametrize("reads", [True, False])
@pytest.mark.parametrize("retry", ["digest", "redirect"])
def test_a_generator_body_wanted_twice_is_replayed_once_read_else_stream_consumed(
        retry, reads, run):
    """A Digest challenge or a 307 redirect needs the body again. Read into memory by the
    transport (a MockTransport reads it before its handler runs), it is sent again, as in
    httpx; streamed by a transport that keeps nothing (as a network transport sends it),
    the generator gave it once: StreamConsumed, as in httpx. Never sent empty (as it was
    here before)."""
    def exchange(mod):
        seen = []

        def answer(request):
            if retry == "redirect" and request.url.path == "/first":
                return mod.Response(307, headers={"Location": "/second"})
            if retry == "digest" and "authorization" not in request.headers:
                return mod.Response(401, headers={
                    "WWW-Authenticate": 'Digest realm="r", nonce="n1", qop="auth"'})
            return mod.Response(200)

        def app(request):
            seen.append(request.content)
            return answer(request)

        class Streamed(mod.AsyncBaseTransport):
            async def handle_async_request(self, request):
                seen.append(b"".join([piece async for piece in request.stream]))
                return answer(request)

        async def body():
            yield b"the request body"

        async def main():
            transport = mod.MockTransport(app) if reads else Streamed()
            async with mod.AsyncClient(transport=transport, follow_redirects=True) as client:
                auth = mod.DigestAuth("u", "p") if retry == "digest" else None
                try:
                    await client.post("https://example.org/first", content=body(), auth=auth)
                except mod.StreamConsumed:
                    return "StreamConsumed", seen
                return "sent", seen

        return run(main())

    ours, theirs = exchange(https), exchange(httpx)
    assert ours == theirs, (ours, theirs)
    assert ours == (("sent", [b"the request body"] * 2) if reads
                    else ("StreamConsumed", [b"the request body"]))


def test_digest_answers_the_last_challenge_at_once_and_counts_a_new_nonce_from_1(run):
    """As httpx's DigestAuth: a later request answers the last challenge without a 401
    first (nc 2 for the same nonce); a new nonce from a 401 starts again at nc 1."""
    def exchange(mod):
        state = {"nonce": "n1", "fail_next": False}
        seen = []

        def app(request):
            header = request.headers.get("authorization", "")
            nc = re.search(r"nc=(\w+)", header)
            seen.append(nc.group(1) if nc else None)
            if not header or state["fail_next"]:
                state["fail_next"] = False
                return mod.Response(401, headers={
                    "WWW-Authenticate": f'Digest realm="r", nonce="{state["nonce"]}", qop="auth"'})
            return mod.Response(200)

        async def main():
            auth = mod.DigestAuth("u", "p")
            async with mod.AsyncClient(transport=mod.MockTransport(app)) as client:
                await client.get("https://example.org/", auth=auth)
                await client.get("https://example.org/", auth=auth)
                state.update(nonce="n2", fail_next=True)
                await client.get("https://example.org/", auth=auth)
            return seen

        return run(main())

    assert exchange(https) == exchange(httpx) == [None, "00000001", "00000002", "00000003",
                                                  "00000001"]


def test_the_version_and_a_bad_header_value_s_error_as_httpx_s():
    import corenet

    assert https.__version__ == corenet.__version__ and isinstance(httpx.__version__, str)
    for mod in (https, httpx):
        with pytest.raises(TypeError, match=re.escape(
                "Header value must be str or bytes, not <class 'NoneType'>")):
            mod.Headers({"a": None})


def test_redirects_history_as_httpx_s_and_authorization_kept_within_its_origin():
    """Each response of a redirect chain carries the ones before it as its history, as
    httpx's. Authorization goes to no other origin: not to another host (as httpx), nor
    from http to https on the same host, where httpx sends it again (README: differences)."""
    def seen(mod):
        def app(request):
            path, host = request.url.path, request.url.host
            if path.startswith("/hop"):
                n = int(path[4:])
                if n < 3:
                    return mod.Response(302, headers={"Location": f"/hop{n + 1}"})
                return mod.Response(200)
            if path == "/up":
                where = {"http": "https://example.org/up", "https": None}[request.url.scheme]
                if where:
                    return mod.Response(302, headers={"Location": where})
            if path == "/away" and host == "example.org":
                return mod.Response(302, headers={"Location": "https://other.org/away"})
            return mod.Response(200, text=request.headers.get("authorization", "none"))

        with mod.Client(transport=mod.MockTransport(app), follow_redirects=True) as client:
            r = client.get("https://example.org/hop0")
            chain = [len(h.history) for h in r.history]
            up = client.get("http://example.org/up", headers={"Authorization": "abc"}).text
            away = client.get("https://example.org/away",
                              headers={"Authorization": "abc"}).text
        return chain, up, away

    assert seen(https) == ([0, 1, 2], "none", "none")
    assert seen(httpx) == ([0, 1, 2], "abc", "none")


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "GET", "HEAD"])
def test_the_request_after_a_redirect_is_httpx_s(code, method):
    """The method, body and body headers of the request a redirect makes, and a Cookie
    header given by hand (dropped: the jar decides), side by side with httpx."""
    def seen(mod):
        second = []

        def app(request):
            if request.url.path == "/from":
                return mod.Response(code, headers={"Location": "/to"})
            second.append((request.method, request.read(),
                           request.headers.get("content-type"),
                           request.headers.get("content-length"),
                           request.headers.get("cookie")))
            return mod.Response(200)

        with mod.Client(transport=mod.MockTransport(app), follow_redirects=True) as client:
            body = {} if method in ("GET", "HEAD") else {"content": b"payload"}
            client.request(method, "https://example.org/from", **body,
                           headers={"Content-Type": "text/plain", "Cookie": "by=hand"})
        return second

    assert seen(https) == seen(httpx)


@pytest.mark.parametrize("kind", ["BytesIO", "file", "generator"])
def test_a_file_as_content_is_sent_with_its_length_as_httpx_s(kind, tmp_path):
    """A file object given as content= goes with a Content-Length (servers that refuse a
    chunked upload take it), read as it is sent; a generator's length is unknown: chunked."""
    path = tmp_path / "body"
    path.write_bytes(b"file data " * 1000)

    def body():
        if kind == "BytesIO":
            return io.BytesIO(path.read_bytes())
        if kind == "file":
            return open(path, "rb")
        return (piece for piece in (b"a", b"b"))

    def seen(mod):
        def app(request):
            return mod.Response(200, json={"length": request.headers.get("content-length"),
                                           "chunked": request.headers.get("transfer-encoding"),
                                           "size": len(request.read())})

        with mod.Client(transport=mod.MockTransport(app)) as client:
            content = body()
            try:
                return client.post("https://example.org/", content=content).json()
            finally:
                if hasattr(content, "close"):
                    content.close()

    ours = seen(https)
    assert ours == seen(httpx)
    assert (ours["length"] is None) == (kind == "generator")


@pytest.mark.parametrize("client_params, params", [
    ({"a": "1", "b": "2"}, {"b": "9", "c": "3", "a": "7"}),
    ({"a": ["1", "2"], "z": "0"}, {"a": "3"}),
    ([("x", "1"), ("y", "2"), ("x", "3")], {"y": "4"}),
])
def test_merged_params_keep_httpx_s_order(client_params, params):
    """The order of merged parameters matters to a signed URL: the client's names where
    they stood, a name the request gives with the request's values, the request's new
    names after."""
    def seen(mod):
        with mod.Client(transport=mod.MockTransport(lambda r: mod.Response(200, text=str(r.url))),
                        params=client_params) as client:
            return client.get("https://example.org/p", params=params).text

    assert seen(https) == seen(httpx)


def test_client_params_are_query_params_and_a_challenge_s_cookie_goes_back_as_httpx_s():
    for mod in (https, httpx):
        client = mod.Client(params={"a": "1"})
        assert isinstance(client.params, mod.QueryParams) and str(client.params) == "a=1"
        client.params = [("b", "2"), ("b", "3")]
        assert str(client.params) == "b=2&b=3"

    def cookie_sent(mod):
        flow = mod.DigestAuth("u", "p").sync_auth_flow(mod.Request("GET", "https://e.org/"))
        next(flow)
        challenge = mod.Response(401, request=mod.Request("GET", "https://e.org/"), headers=[
            ("WWW-Authenticate", 'Digest realm="r", nonce="n", qop="auth"'),
            ("Set-Cookie", "session=xyz; Path=/")])
        return flow.send(challenge).headers.get("cookie")

    assert cookie_sent(https) == cookie_sent(httpx) == "session=xyz"


@pytest.mark.parametrize("data", [{"a": True, "b": None, "c": [1.5, False], "d": ("x", "y")},
                                  b"raw bytes", "some text"])
def test_form_data_and_data_as_raw_content_as_httpx_s(data):
    """data= is encoded as httpx encodes it: True as "true", None as "", lists and tuples
    as the name repeated; bytes or text given as data= are sent as the content, with
    httpx's DeprecationWarning (old code does it)."""
    def made(mod):
        import warnings

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = mod.Request("POST", "https://example.org/", data=data)
        return (r.content, r.headers.get("content-type"), r.headers.get("content-length"),
                [type(w.message).__name__ for w in caught])

    assert made(https) == made(httpx)


def test_an_async_transport_reads_a_sync_body_s_stream(run):
    """Both clients send a sync iterable body; a transport written for httpx's async
    interface reads `request.stream` with `async for`, which takes it too (httpx's
    AsyncClient refuses such a body outright)."""
    class Reading(https.AsyncBaseTransport):
        async def handle_async_request(self, request):
            return https.Response(200, content=b"".join(
                [piece async for piece in request.stream]))

    def body():
        yield b"sync "
        yield b"pieces"

    async def main():
        async with https.AsyncClient(transport=Reading()) as client:
            return (await client.post("https://example.org/", content=body())).content

    assert run(main()) == b"sync pieces"
    with pytest.raises(RuntimeError, match="sync iterator on an async stream"):
        async def agen():
            yield b"x"
        iter(https.Request("POST", "https://example.org/", content=agen()).stream)


def test_every_name_httpx_exports_is_here():
    """What `from httpx import *` and `httpx.NAME` code reaches: every name of httpx's
    __all__ but its package metadata and its command-line entry point (httpx[cli])."""
    assert sorted(n for n in httpx.__all__ if not hasattr(https, n)) == [
        "__description__", "__title__", "main"]


@pytest.mark.parametrize("verify", [True, False, "file", "directory"])
def test_create_ssl_context_as_httpx_s(verify, tmp_path):
    """httpx.create_ssl_context(verify, cert, trust_env): verification on or off, a CA
    file, a directory of CA files."""
    import certifi

    if verify == "file":
        verify = certifi.where()
    elif verify == "directory":
        verify = str(tmp_path)
    for mod in (https, httpx):
        ctx = mod.create_ssl_context(verify=verify, trust_env=False)
        assert isinstance(ctx, ssl.SSLContext)
        assert (ctx.verify_mode, ctx.check_hostname) == (
            (ssl.CERT_NONE, False) if verify is False else (ssl.CERT_REQUIRED, True))


def test_digest_answers_a_challenge_in_advance_only_to_its_own_origin(run):
    """The last challenge is answered at once on later requests to the origin that sent
    it, never to another one (where httpx would send it)."""
    seen = []

    def app(request):
        seen.append((request.url.host, "authorization" in request.headers))
        if "authorization" not in request.headers:
            return https.Response(401, headers={
                "WWW-Authenticate": 'Digest realm="r", nonce="n1", qop="auth"'})
        return https.Response(200)

    async def main():
        auth = https.DigestAuth("u", "p")
        async with https.AsyncClient(transport=https.MockTransport(app), auth=auth) as client:
            await client.get("https://a.example/")
            await client.get("https://a.example/again")
            await client.get("https://b.example/")

    run(main())
    assert seen == [("a.example", False), ("a.example", True), ("a.example", True),
                    ("b.example", False), ("b.example", True)]


@pytest.mark.parametrize("method", ["POST", "GET"])
@pytest.mark.parametrize("body", [{}, {"data": {}}, {"files": {}}, {"json": {}},
                                  {"content": b""}, {"content": ""}, {"data": {"a": "1"}},
                                  {"content": "x"}, {"content": "iterator"}])
def test_a_request_s_headers_for_its_body_are_httpx_s(method, body):
    """Empty form data and an empty body are no body (no Content-Type, Content-Length: 0
    only where httpx puts it); the others framed as httpx frames them."""
    def headers(module):
        kw = {k: iter([b"a", b"b"]) if v == "iterator" else v for k, v in body.items()}
        return list(module.Request(method, "https://www.example.com", **kw).headers.items())
    assert headers(https) == headers(httpx)


@pytest.mark.parametrize("content", [123, 1.5, object(), {"a": "b"}])
def test_content_of_another_type_is_a_type_error_as_in_httpx(content):
    for module in (httpx, https):
        with pytest.raises(TypeError):
            module.Request("POST", "https://www.example.com", content=content)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf")])
def test_json_without_a_json_form_is_a_value_error_as_in_httpx(value):
    for module in (httpx, https):
        with pytest.raises(ValueError, match="Out of range float values"):
            module.Request("POST", "https://a.test/", json={"x": value})
        with pytest.raises(ValueError, match="Out of range float values"):
            module.Response(200, json=[value])
    with https.Client() as client, pytest.raises(ValueError, match="Out of range float"):
        client.build_request("POST", "https://a.test/", json={"x": value})


@pytest.mark.parametrize("http2", [False, True])
def test_response_request_is_the_request_sent_with_its_host_as_in_httpx(env, run, http2):
    """`send(req)` answers with `response.request is req`; a verb's response's request has
    the headers it went with, Host first (a client's request leaves Host to the wire until
    it is looked at); a POST's has its Content-Length."""
    url = (env.h2 if http2 else env.base) + "/small.txt"

    async def main(mod):
        ctx = ssl.create_default_context(cafile=str(env.ca))
        async with mod.AsyncClient(verify=ctx, http2=http2) as c:
            req = c.build_request("GET", url, headers={"X-One": "1"})
            sent = await c.send(req)
            got = await c.get(url)
            posted = await c.post(url.replace("/small.txt", "/"), content=b"abc")
        host = url.split("/")[2]
        return (sent.request is req, sent.request.headers.get("x-one"),
                got.request.headers.get("host") == host,
                next(iter(got.request.headers.keys())),
                posted.request.headers.get("content-length"))

    assert run(main(https)) == run(main(httpx)) == (True, "1", True, "host", "3")


def test_a_sync_send_answers_with_the_request_it_was_given_as_httpx(env):
    for mod in (https, httpx):
        ctx = ssl.create_default_context(cafile=str(env.ca))
        with mod.Client(verify=ctx) as c:
            req = c.build_request("GET", env.base + "/small.txt")
            r = c.send(req)
            assert r.request is req, mod
            assert c.get(env.base + "/small.txt").request.headers["host"] == \
                env.base.split("/")[2], mod


def test_hooks_and_auth_flows_get_the_request_send_was_given_as_in_httpx(run):
    """The request hook, the auth flow and the response's `request` are the object
    `send()` was given: what the flow sets on it is what went out."""
    async def main(mod):
        seen = []

        async def hook(request):
            seen.append(request is req)

        def handler(request):
            return mod.Response(200, json={"auth": request.headers.get("authorization")})

        async with mod.AsyncClient(transport=mod.MockTransport(handler),
                                   event_hooks={"request": [hook]}) as c:
            req = c.build_request("GET", "https://api.test/")
            r = await c.send(req, auth=("u", "p"))
        return seen, r.request is req, req.headers.get("authorization"), r.json()["auth"]

    ours, theirs = run(main(https)), run(main(httpx))
    assert ours == theirs
    assert ours[:2] == ([True], True) and ours[2] == ours[3] == "Basic dTpw"


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\nContent-Length: 2\nX-A: b\n\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\nX-A: b\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n"
    b"2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"2\r\nok\r\n0\r\n\r\n",
], ids=["bare-lf", "mixed-lf", "te-then-cl", "cl-then-te"])
def test_a_response_rfc_9112_lets_a_client_read_is_read_as_by_httpx(reply):
    """Lines ended by a bare LF, and Transfer-Encoding beside a Content-Length, which old
    servers and embedded devices send: status, headers and body as httpx reads them."""
    port, thread = reply_server(reply, 2)
    seen = []
    for mod in (https, httpx):
        with mod.Client() as c:
            r = c.get(f"http://127.0.0.1:{port}/")
            seen.append((r.status_code, r.headers.get("x-a"), r.content))
    thread.join(10)
    assert seen[0] == seen[1]
    assert seen[0][0] == 200 and seen[0][2] == b"ok"


def test_the_raw_bytes_of_a_response_read_are_gone_as_in_httpx():
    """A response read by ``get()``: ``iter_raw()`` raises StreamConsumed (only the decoded
    body is kept), ``iter_bytes()`` gives the body again, as httpx's."""
    port, thread = reply_server(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 2)
    seen = []
    for mod in (https, httpx):
        with mod.Client() as c:
            r = c.get(f"http://127.0.0.1:{port}/")
            with pytest.raises(mod.StreamConsumed) as caught:
                list(r.iter_raw())
            seen.append((str(caught.value), list(r.iter_bytes())))
    thread.join(10)
    assert seen[0] == seen[1]
    assert seen[0][1] == [b"ok"]


def test_a_content_length_given_goes_where_it_was_given_as_httpx_sends_it():
    """A caller's Content-Length (one, plain digits) is sent in its place among the
    headers, not moved after them; without one the client's goes last: the same head
    httpx sends, line for line, but the User-Agent and what httpx adds by default."""
    heads: list[bytes] = []
    port, thread = reply_server(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n", 4, heads)
    url = f"http://127.0.0.1:{port}/"
    for mod in (https, httpx):
        with mod.Client(headers={"User-Agent": "a/1"}) as c:
            c.post(url, content=b"abc", headers=[("X-A", "1"), ("Content-Length", "3"),
                                                 ("X-B", "2")])
            c.post(url, content=b"abc", headers=[("X-A", "1")])
    thread.join(10)

    def lines(head):
        drop = (b"accept", b"accept-encoding", b"connection")
        return [x for x in head.split(b"\r\n")
                if x.split(b":")[0].lower() not in drop]
    ours, theirs = [lines(h) for h in heads[:2]], [lines(h) for h in heads[2:]]
    assert ours == theirs
    assert ours[0][-3:] == [b"X-A: 1", b"Content-Length: 3", b"X-B: 2"]
    assert ours[1][-1] == b"Content-Length: 3"


def _gen():
    yield b"ab"


def _redirect_loop(request):
    return type(request).__module__.startswith("httpx") and httpx.Response(
        302, headers={"location": "/again"}) or https.Response(302, headers={"location": "/again"})


def _streamed_twice(mod):
    r = mod.Response(200, content=_gen())
    return list(r.iter_raw()) + list(r.iter_raw())


def _raw_after_read(mod):
    r = mod.Response(200, content=_gen())
    r.read()
    return list(r.iter_raw())


def _closed_then_iterated(mod):
    r = mod.Response(200, content=_gen())
    r.close()
    return list(r.iter_bytes())


def _cookie_twice(mod):
    c = mod.Cookies()
    c.set("a", "1", domain="x.example")
    c.set("a", "2", domain="y.example")
    return c["a"]


@pytest.mark.parametrize("case", [
    lambda m: m.Client().get("ftp://example.invalid/"),
    lambda m: m.Client().get("example.com/x"),
    lambda m: m.Client().get("https:///x"),
    lambda m: m.Client(base_url="ftp://x").get("/y"),
    lambda m: m.Response(200, content=_gen()).content,
    lambda m: m.Request("POST", "https://a.example/", content=_gen()).content,
    _streamed_twice,
    _raw_after_read,
    _closed_then_iterated,
    _cookie_twice,
    lambda m: m.Timeout(),
    lambda m: m.Timeout(connect=1.0),
    lambda m: m.Client(auth=5),
    lambda m: m.Request("POST", "https://a.example/", content=5),
    lambda m: m.Client(transport=m.MockTransport(_redirect_loop), follow_redirects=True,
                       max_redirects=3).get("https://a.example/"),
    lambda m: m.StreamConsumed(),
    lambda m: m.StreamClosed(),
    lambda m: m.ResponseNotRead(),
    lambda m: m.RequestNotRead(),
], ids=["unsupported", "no-scheme", "no-host", "base-url", "response-not-read",
        "request-not-read", "consumed-twice", "raw-after-read", "closed", "cookie-conflict",
        "timeout-default", "timeout-partial", "auth", "content-type", "redirects",
        "consumed-made", "closed-made", "response-not-read-made", "request-not-read-made"])
def test_errors_say_what_httpx_s_say(case):
    """The same misuse raises the same exception with httpx's very words (code that
    matches on them, `pytest.raises(match=...)` in a test suite, keeps working); an error
    made without a message says httpx's."""
    def outcome(mod):
        try:
            got = case(mod)
        except Exception as e:  # noqa: BLE001 - the exception is what is compared
            return type(e).__name__, str(e)
        if isinstance(got, BaseException):
            return type(got).__name__, str(got)
        return "no error", None
    assert outcome(https) == outcome(httpx)
