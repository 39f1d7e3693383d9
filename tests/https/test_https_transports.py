"""transport=, mounts= with transports, MockTransport, ASGITransport, event hooks, and a
client certificate (cert=) against a server that requires one; on every loop kind."""
from __future__ import annotations

import json
import socket
import ssl
import threading

import pytest

from corenet.https import (
    ASGITransport, AsyncBaseTransport, AsyncHTTPTransport, AsyncClient, HTTPStatusError,
    LocalProtocolError, MockTransport, ReadTimeout, Request, Response, TransportError,
    WSGITransport,
)
from https_pki import CLIENT_KEY_PASSWORD
from ports import free_port


def echo_handler(request: Request) -> Response:
    return Response(200, json={"method": request.method, "url": str(request.url),
                               "headers": request.headers.multi_items(),
                               "body": request.read().decode()})


def test_mock_transport_sees_the_request_the_client_builds(run):
    async def main():
        async with AsyncClient(transport=MockTransport(echo_handler), base_url="https://api.test",
                          headers={"X-Client": "1"}, params={"k": "v"}) as c:
            r = await c.post("/items", json={"a": 1}, params={"p": "2"})
            return r

    r = run(main())
    got = r.json()
    assert got["url"] == "https://api.test/items?k=v&p=2" and got["method"] == "POST"
    assert got["body"] == '{"a":1}'
    assert ["x-client", "1"] in got["headers"]  # httpx's multi_items: names lower-cased
    assert ["content-type", "application/json"] in got["headers"]
    assert r.request.url == "https://api.test/items?k=v&p=2" and r.url == r.request.url


def test_the_verbs_go_through_a_subclass_s_own_request(run):
    seen = []

    class Logged(AsyncClient):
        async def request(self, method, url, **kw):
            seen.append((method, kw))
            return await super().request(method, url, **kw)

    class Deeper(Logged):
        pass

    async def main():
        async with Deeper(transport=MockTransport(echo_handler)) as c:
            got = await c.get("https://api.test/g", params={"a": "1"})
            posted = await c.post("https://api.test/p", content=b"x")
            return got.json(), posted.json()

    got, posted = run(main())
    assert got["url"] == "https://api.test/g?a=1" and posted["body"] == "x"
    assert seen == [("GET", {"params": {"a": "1"}}), ("POST", {"content": b"x"})]


def test_the_verbs_go_through_request_patched_on_the_instance(run):
    seen = []

    async def main():
        async with AsyncClient(transport=MockTransport(echo_handler)) as c:
            real = c.request

            async def logged(method, url, **kw):
                seen.append(method)
                return await real(method, url, **kw)

            c.request = logged  # what a test's mock.patch.object(client, "request") does
            return (await c.delete("https://api.test/d")).json()

    assert run(main())["url"] == "https://api.test/d" and seen == ["DELETE"]


def test_mock_transport_async_handler_redirects_cookies_and_stream_body(run):
    seen = []

    async def handler(request: Request) -> Response:
        seen.append((request.method, str(request.url), request.headers.get("cookie"),
                     request.read()))
        if request.url.path == "/start":
            return Response(303, headers={"Location": "/end", "Set-Cookie": "s=1; Path=/"})
        return Response(200, text="done")

    async def body():
        yield b"part1,"
        yield b"part2"

    async def main():
        async with AsyncClient(transport=MockTransport(handler), follow_redirects=True) as c:
            r = await c.post("https://m.test/start", content=body())
            return r.text, [h.status_code for h in r.history], dict(c.cookies)

    text, history, jar = run(main())
    assert (text, history, jar) == ("done", [303], {"s": "1"})
    assert seen == [("POST", "https://m.test/start", None, b"part1,part2"),
                    ("GET", "https://m.test/end", "s=1", b"")]


def test_mock_transport_streamed_response(run):
    def handler(request):
        return Response(200, content=iter([b"a" * 10, b"b" * 10]))

    async def main():
        async with AsyncClient(transport=MockTransport(handler)) as c:
            async with c.stream("GET", "https://m.test/") as r:
                pieces = [p async for p in r.aiter_bytes(chunk_size=15)]
            whole = await c.get("https://m.test/")
            return pieces, whole.content

    pieces, whole = run(main())
    assert pieces == [b"a" * 10 + b"b" * 5, b"b" * 5] and whole == b"a" * 10 + b"b" * 10


def test_mounts_pick_the_most_specific_transport(env, run):
    def named(name):
        return MockTransport(lambda req: Response(200, text=name))

    mounts = {"all://": named("all"), "https://": named("https"),
              "https://example.com": named("example.com"),
              "all://*.example.org": named("example.org subdomains"),
              f"https://localhost:{env.raw_port}": AsyncHTTPTransport(verify=env.ca)}

    async def main():
        async with AsyncClient(mounts=mounts, transport=named("default")) as c:
            out = [(await c.get(u)).text for u in (
                "http://plain.test/", "https://other.test/", "https://example.com/x",
                "https://www.example.org/", "http://a.example.org/")]
            real = await c.get(env.raw + "/echo")
            return out, real.json()["path"]

    out, path = run(main())
    assert out == ["all", "https", "example.com", "example.org subdomains",
                   "example.org subdomains"]
    assert path == "/echo"  # a real network transport, mounted for one origin


def test_default_transport_is_used_when_no_mount_matches(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, mounts={
                "https://mocked.test": MockTransport(lambda r: Response(418)),
                f"http://127.0.0.1:{env.raw_plain_port}": None}) as c:
            mocked = await c.get("https://mocked.test/")
            real = await c.get(env.raw + "/echo")
            plain = await c.get(env.raw_plain + "/echo")
            return mocked.status_code, real.status_code, plain.status_code, c.pool.open_count

    assert run(main()) == (418, 200, 200, 2)


def test_transport_replaces_the_network_and_is_closed_with_the_client(run):
    class Counting(AsyncBaseTransport):
        def __init__(self):
            self.calls, self.closed = 0, 0

        async def handle_async_request(self, request):
            self.calls += 1
            return Response(204)

        async def aclose(self):
            self.closed += 1

    t, m = Counting(), Counting()

    async def main():
        async with AsyncClient(transport=t, mounts={"https://m.test": m}) as c:
            await c.get("https://a.test/")
            await c.get("https://m.test/")
            with pytest.raises(AttributeError, match="no connection pool"):
                c.pool
        return t.calls, t.closed, m.calls, m.closed

    assert run(main()) == (1, 1, 1, 1)
    with pytest.raises(ValueError, match="AsyncHTTPTransport"):
        AsyncClient(transport=t, mounts={"https://": "http://proxy.test:3128"})


def test_network_transport_handles_a_request_directly(env, run):
    async def main():
        async with AsyncHTTPTransport(verify=env.ca) as t:
            r = await t.handle_async_request(Request("GET", env.raw + "/echo?x=1",
                                                     {"X-A": "b"}))
            body = await r.aread()
            stalled = Request("GET", env.raw + "/stall-headers", extensions={
                "timeout": {"connect": 5, "read": 0.2, "write": 5, "pool": 5}})
            with pytest.raises(ReadTimeout, match="within 0.2 s"):  # httpx's timeout dict
                await t.handle_async_request(stalled)
            return r.status_code, json.loads(body)

    code, echo = run(main())
    assert code == 200 and echo["path"] == "/echo?x=1"
    assert ("X-A", "b") in [tuple(h) for h in echo["headers"]]


async def asgi_app(scope, receive, send):
    assert scope["type"] == "http"
    message = await receive()
    body = message["body"]
    if scope["path"] == "/boom":
        raise RuntimeError("app failed")
    payload = json.dumps({
        "method": scope["method"], "path": scope["path"],
        "query": scope["query_string"].decode(), "body": body.decode(),
        "host": dict(scope["headers"]).get(b"host", b"").decode(),
        "length": dict(scope["headers"]).get(b"content-length", b"").decode(),
    }).encode()
    await send({"type": "http.response.start", "status": 201,
                "headers": [(b"content-type", b"application/json"),
                            (b"set-cookie", b"asgi=1; Path=/")]})
    await send({"type": "http.response.body", "body": payload[:5], "more_body": True})
    await send({"type": "http.response.body", "body": payload[5:]})


def test_asgi_transport_calls_the_app(run):
    async def main():
        async with AsyncClient(transport=ASGITransport(asgi_app), base_url="http://testserver") as c:
            r = await c.put("/a%20b?q=1", content=b"hello")
            again = await c.get("/x")
            with pytest.raises(RuntimeError, match="app failed"):
                await c.get("/boom")
        async with AsyncClient(transport=ASGITransport(asgi_app, raise_app_exceptions=False)) as c:
            failed = await c.get("http://testserver/boom")
        return r, again, failed

    r, again, failed = run(main())
    assert r.status_code == 201 and r.json() == {
        "method": "PUT", "path": "/a b", "query": "q=1", "body": "hello",
        "host": "testserver", "length": "5"}
    assert ["asgi=1"] == [c for c in again.request.headers.get_list("cookie")]
    assert failed.status_code == 500


def wsgi_app(environ, start_response):
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if environ["PATH_INFO"] == "/error":
        start_response("500 Internal Server Error", [("Content-Type", "text/plain")])
        return [b"no"]
    start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
    return [environ["REQUEST_METHOD"].encode(), b" ", environ["PATH_INFO"].encode(), b" ",
            environ["QUERY_STRING"].encode(), b" ", body, b" ",
            environ.get("HTTP_X_TOKEN", "").encode()]


def test_wsgi_transport_on_the_async_client(run):
    async def main():
        async with AsyncClient(transport=WSGITransport(wsgi_app)) as c:
            ok = await c.post("http://app.test/p?x=1", content=b"data",
                              headers={"X-Token": "t"})
            err = await c.get("http://app.test/error")
            return ok.text, err.status_code

    assert run(main()) == ("POST /p x=1 data t", 500)


def test_event_hooks_see_every_hop_sync_and_async(run):
    log = []

    def on_request(request):
        log.append(("request", request.method, request.url.path))
        request.headers["X-Hooked"] = "yes"

    async def on_response(response):
        log.append(("response", response.status_code, response.request.headers["x-hooked"]))

    def handler(request):
        if request.url.path == "/a":
            return Response(302, headers={"Location": "/b"})
        return Response(200, text=request.headers["x-hooked"])

    async def main():
        async with AsyncClient(transport=MockTransport(handler), follow_redirects=True,
                          event_hooks={"request": [on_request],
                                       "response": [on_response]}) as c:
            r = await c.get("https://h.test/a")
            c.event_hooks["response"].append(lambda resp: resp.raise_for_status())
            with pytest.raises(HTTPStatusError):
                await c.get("https://h.test/a", follow_redirects=False)
            return r.text

    assert run(main()) == "yes"
    assert log[:4] == [("request", "GET", "/a"), ("response", 302, "yes"),
                       ("request", "GET", "/b"), ("response", 200, "yes")]
    with pytest.raises(ValueError, match="event_hooks"):
        AsyncClient(transport=MockTransport(handler), event_hooks={"requests": []})


@pytest.fixture(scope="module")
def mtls_port(pki):
    """A TLS server that requires a client certificate from the test CA and answers with
    the certificate's subject CN."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki["valid_cert"], pki["valid_key"])
    ctx.load_verify_locations(pki["ca"])
    ctx.verify_mode = ssl.CERT_REQUIRED
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(16)
    stop = threading.Event()

    def serve_one(conn):
        try:
            conn.settimeout(5)
            with ctx.wrap_socket(conn, server_side=True) as s:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        return
                    data += chunk
                cn = dict(x[0] for x in s.getpeercert()["subject"])["commonName"]
                s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close"
                          b"\r\n\r\n%s" % (len(cn), cn.encode()))
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def serve():
        ls.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = ls.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            threading.Thread(target=serve_one, args=(conn,), daemon=True).start()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield ls.getsockname()[1]
    stop.set()
    t.join(5)
    ls.close()


@pytest.mark.parametrize("form", ["pair", "one-file", "encrypted"])
def test_client_certificate(pki, mtls_port, run, form):
    cert = {"pair": (str(pki["client_cert"]), str(pki["client_key"])),
            "one-file": str(pki["client_both"]),
            "encrypted": (str(pki["client_cert"]), str(pki["client_key_encrypted"]),
                          CLIENT_KEY_PASSWORD)}[form]

    async def main():
        async with AsyncClient(verify=str(pki["ca"]), cert=cert) as c:
            return (await c.get(f"https://localhost:{mtls_port}/")).text

    assert run(main()) == "client.corenet.test"


def test_no_client_certificate_is_refused(pki, mtls_port, run):
    async def main():
        async with AsyncClient(verify=str(pki["ca"])) as c:
            await c.get(f"https://localhost:{mtls_port}/")

    # TLS 1.3: the server checks after the handshake, its alert comes as the request goes
    # out or as the response is awaited; or, when the request reached the server before it
    # closed (a race with its alert), its kernel resets the connection. Never a raw ssl
    # error.
    with pytest.raises(TransportError, match="certificate|closed|reset by peer"):
        run(main())
    with pytest.raises(ValueError, match="SSLContext"):
        AsyncClient(verify=ssl.create_default_context(), cert=str(pki["client_both"]))
    with pytest.raises(ssl.SSLError):
        AsyncClient(verify=str(pki["ca"]), cert=(str(pki["client_cert"]),
                                            str(pki["client_key_encrypted"]), "wrong"))


class SyncEcho:
    """An httpx-style sync transport (BaseTransport's interface)."""

    def __init__(self):
        self.threads, self.closed = set(), 0

    def handle_request(self, request):
        self.threads.add(threading.get_ident())
        return Response(200, text=f"{request.method} {request.read().decode()}")

    def close(self):
        self.closed += 1


def test_a_sync_base_transport_works_on_the_async_client(run):
    from corenet.https import BaseTransport

    class Echo(SyncEcho, BaseTransport):
        pass

    t, mounted = Echo(), SyncEcho()

    async def body():
        yield b"streamed"

    async def main():
        async with AsyncClient(transport=t, mounts={"https://m.test": mounted}) as c:
            a = await c.post("https://a.test/", content=body())
            b = await c.get("https://m.test/")
        return a.text, b.text

    assert run(main()) == ("POST streamed", "GET ")
    assert threading.get_ident() not in t.threads  # in a worker thread, not the loop's
    assert (t.closed, mounted.closed) == (1, 1)


def test_connect_to_and_the_target_and_version_a_request_asks_for(env, run):
    """connect_to sends the connection elsewhere, TLS and Host still naming the URL's host;
    extensions["target"] (httpcore's) goes as it is; extensions["http_version"] HTTP/1.0
    sends an HTTP/1.0 request line on a connection closed after it. What cannot be sent
    so is refused before a byte goes."""
    unused = free_port()
    url = f"https://localhost:{unused}"
    asked = []

    def where(host: str, port: int) -> tuple[str, int]:
        asked.append((host, port))
        return "127.0.0.1", env.raw_port

    async def chunks():
        yield b"x"

    async def main():
        got = []
        async with AsyncClient(transport=AsyncHTTPTransport(verify=env.ca,
                                                            connect_to=where)) as c:
            for ext in (None, {"target": b"/x/../echo"}, {"http_version": b"HTTP/1.0"},
                        None, {"http_version": "HTTP/1.1"}):
                r = await c.get(url + "/x/../echo", extensions=ext)
                got.append((r.json()["raw"].split("\r\n")[:2],
                            r.extensions["connection_reused"]))
            for ext, kw in (({"http_version": b"HTTP/2"}, {}),
                            ({"http_version": b"HTTP/1.0"}, {"content": chunks()}),
                            ({"target": "/a b"}, {})):
                with pytest.raises(LocalProtocolError):
                    await c.post(url + "/echo", extensions=ext, **kw)
        async with AsyncClient(verify=env.ca, http2=True) as c:
            with pytest.raises(LocalProtocolError, match="speaks HTTP/2"):
                await c.get(env.h2 + "/small.txt", extensions={"http_version": b"HTTP/1.0"})
        return got

    host = f"Host: localhost:{unused}"
    assert run(main()) == [(["GET /echo HTTP/1.1", host], False),
                           (["GET /x/../echo HTTP/1.1", host], True),
                           (["GET /echo HTTP/1.0", host], True),
                           (["GET /echo HTTP/1.1", host], False),  # the last one closed
                           (["GET /echo HTTP/1.1", host], True)]
    assert set(asked) == {("localhost", unused)}
