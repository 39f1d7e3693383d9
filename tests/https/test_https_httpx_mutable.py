"""What httpx lets its users change or read and code built on it relies on, each beside the
installed httpx: Headers as a MutableMapping, the attributes hooks and auth flows assign
(a response's stream and headers, a request's stream and extensions), the reason phrase of
a status line without one, the network stream in a response's extensions, the client's
open/closed rules, `build_request`'s timeout, a network-path reference under `base_url`,
the lower-case names of `codes`."""
from __future__ import annotations

import collections.abc
import socket
import ssl

import httpx
import pytest
from https_helpers import reply_server

import corenet.https as https

MODULES = [https, httpx]


def _outcome(call):
    """What a call gives: its value (views as lists), or its exception's type."""
    try:
        value = call()
    except Exception as exc:  # noqa: BLE001 - the type is what is compared
        return type(exc).__name__
    if isinstance(value, (collections.abc.KeysView, collections.abc.ValuesView,
                          collections.abc.ItemsView)):
        return list(value)
    return value


def _headers_behaviour(module):
    def fresh():
        return module.Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X", "1")])

    seen = []
    h = fresh()
    seen += [len(h), bool(module.Headers()), list(h), _outcome(h.keys),
             _outcome(h.values), _outcome(h.items), dict(h),
             isinstance(h, collections.abc.MutableMapping)]
    for name, args in [("pop", ("missing",)), ("pop", ("missing", "d")), ("pop", ("x",)),
                       ("pop", ("set-cookie",)), ("setdefault", ("x", "9")),
                       ("setdefault", ("n", "v")), ("get", ("nope",)), ("popitem", ())]:
        h = fresh()
        seen.append((name, args, _outcome(lambda: getattr(h, name)(*args)),
                     h.multi_items()))
    h = module.Headers([("A", "1"), ("B", "2"), ("a", "3")])
    h.update(module.Headers([("a", "x"), ("a", "y"), ("C", "z")]))
    seen.append(h.multi_items())
    h = module.Headers([("A", "1"), ("B", "2"), ("a", "3")])
    h["a"] = "q"
    seen += [h.multi_items(), len(h)]
    return seen


def test_headers_are_a_mutable_mapping_with_httpx_s_rules():
    """len() counts every field, pop() of a missing name is a KeyError, setdefault takes
    one argument, update() replaces each name's fields with all of the new ones."""
    ours = _headers_behaviour(https)
    assert ours == _headers_behaviour(httpx)
    assert ours[0] == 3 and ours[8][2] == "KeyError"


def test_a_header_set_to_none_is_a_type_error():
    with pytest.raises(TypeError, match="must be str or bytes"):
        https.Headers({"a": "1"}).setdefault("b")
    with pytest.raises(TypeError, match="must be str or bytes"):
        https.Headers()["b"] = None  # type: ignore[assignment]


def test_the_lower_case_names_of_codes_are_ints_as_httpx_s():
    for name in ("not_found", "ok", "im_a_teapot", "too_many_requests"):
        ours, theirs = getattr(https.codes, name), getattr(httpx.codes, name)
        assert type(ours) is type(theirs) is int
        assert ours == theirs and repr(ours) == repr(theirs)
    assert https.codes.NOT_FOUND.phrase == httpx.codes.NOT_FOUND.phrase


def _assigned(module):
    req = module.Request("POST", "https://api.test/", content=b"old body")
    req.extensions = {"timeout": {"connect": 1.0, "read": 2.0, "write": 3.0, "pool": 4.0}}
    req.stream = module.ByteStream(b"new")
    req.headers["Content-Length"] = "3"
    resp = module.Response(200, content=b"body", request=req)
    resp.headers = module.Headers({"X-New": "1"})
    resp.stream = module.ByteStream(b"ignored: the body was read")
    return (req.extensions, b"".join(req.stream), resp.headers.multi_items(), resp.content,
            b"".join(resp.stream))


def test_attributes_httpx_lets_users_assign_can_be_assigned():
    assert _assigned(https) == _assigned(httpx)


def _auth_flow_replacing_the_body(module):
    class Resign(module.Auth):
        def auth_flow(self, request):
            request.stream = module.ByteStream(b"signed")
            request.headers["Content-Length"] = "6"
            yield request

    sent = []

    def handler(request):
        sent.append((b"".join(request.stream), request.headers["content-length"]))
        return module.Response(200)

    with module.Client(transport=module.MockTransport(handler), auth=Resign()) as c:
        c.post("https://api.test/", content=b"the first body")
    return sent


def test_an_auth_flow_that_replaces_the_request_stream_sends_the_new_body():
    assert _auth_flow_replacing_the_body(https) == _auth_flow_replacing_the_body(httpx) \
        == [(b"signed", "6")]


def _counting(module, inner, counts):
    """A response hook's wrapper of `response.stream` (of the byte-stream kind httpx checks
    it is), counting what is read through it."""
    if isinstance(inner, module.AsyncByteStream):
        class Counting(module.AsyncByteStream):
            async def __aiter__(self):
                async for piece in inner:
                    counts.append(len(piece))
                    yield piece

            async def aclose(self):
                await inner.aclose()
    else:
        class Counting(module.SyncByteStream):  # type: ignore[no-redef]
            def __iter__(self):
                for piece in inner:
                    counts.append(len(piece))
                    yield piece

            def close(self):
                inner.close()
    return Counting()


def test_a_sync_hook_wrapping_a_streamed_response_s_stream_reads_the_body_through_it(env):
    def fetch(module, verify):
        counts = []

        def wrap(response):
            if response.request.url.params.get("wrap"):
                response.stream = _counting(module, response.stream, counts)

        with module.Client(verify=verify, event_hooks={"response": [wrap]}) as c:
            first = c.get(env.base + "/small.txt")
            with c.stream("GET", env.base + "/small.txt?wrap=1") as r:
                streamed = b"".join(r.iter_bytes())
            second = c.get(env.base + "/small.txt")
        return first.content, streamed, second.content, sum(counts), second

    ours = fetch(https, env.ca)
    theirs = fetch(httpx, ssl.create_default_context(cafile=env.ca))
    assert ours[:4] == theirs[:4]
    assert ours[3] == len(ours[1]) > 0
    assert ours[4].extensions["connection_reused"]  # the wrapped reads released it


def test_an_async_hook_wrapping_a_streamed_response_s_stream_reads_the_body_through_it(
        env, run):
    async def fetch(module, verify):
        counts = []

        async def wrap(response):
            if response.request.url.params.get("wrap"):
                response.stream = _counting(module, response.stream, counts)

        async with module.AsyncClient(verify=verify, http2=True,
                                      event_hooks={"response": [wrap]}) as c:
            got = []
            for url in (env.base, env.h2):
                got.append((await c.get(url + "/small.txt")).content)
                async with c.stream("GET", url + "/small.txt?wrap=1") as r:
                    got.append(b"".join([p async for p in r.aiter_bytes()]))
            last = await c.get(env.h2 + "/small.txt")
        return got, sum(counts), last

    ours = run(fetch(https, env.ca))
    theirs = run(fetch(httpx, ssl.create_default_context(cafile=env.ca)))
    assert ours[:2] == theirs[:2]
    assert ours[1] == len(ours[0][1]) + len(ours[0][3]) > 0
    assert ours[2].extensions["connection_reused"]


@pytest.mark.parametrize("status_line", [b"HTTP/1.1 200", b"HTTP/1.1 200 ", b"HTTP/1.1 200 OK",
                                         b"HTTP/1.1 404 Gone Away", b"HTTP/1.0 299"])
def test_the_reason_phrase_is_the_status_line_s_as_in_httpx(status_line):
    reply = status_line + b"\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    port, thread = reply_server(reply, 2)
    seen = []
    for module in MODULES:
        with module.Client() as c:
            r = c.get(f"http://127.0.0.1:{port}/")
            seen.append((r.reason_phrase, r.extensions["reason_phrase"], repr(r)))
    thread.join(10)
    assert seen[0] == seen[1]


def test_without_a_status_line_the_reason_phrase_is_the_code_s(env, run):
    async def phrase(module, verify):
        async with module.AsyncClient(verify=verify, http2=True) as c:
            r = await c.get(env.h2 + "/small.txt")
        return r.http_version, r.reason_phrase, module.Response(404).reason_phrase

    assert run(phrase(https, env.ca)) == \
        run(phrase(httpx, ssl.create_default_context(cafile=env.ca))) == \
        ("HTTP/2", "OK", "Not Found")


@pytest.mark.parametrize("http2", [False, True])
def test_the_network_stream_extension_answers_as_httpcore_s(env, run, http2):
    async def extra(module, verify):
        async with module.AsyncClient(verify=verify, http2=http2) as c:
            r = await c.get((env.h2 if http2 else env.base) + "/small.txt")
            stream = r.extensions["network_stream"]
            ssl_object = stream.get_extra_info("ssl_object")
            sock = stream.get_extra_info("socket")
            return (ssl_object.version() is not None, ssl_object.selected_alpn_protocol(),
                    stream.get_extra_info("server_addr")[:2],
                    stream.get_extra_info("client_addr")[0],
                    isinstance(sock, socket.socket) or hasattr(sock, "fileno"),
                    stream.get_extra_info("is_readable"))

    ours = run(extra(https, env.ca))
    assert ours == run(extra(httpx, ssl.create_default_context(cafile=env.ca)))
    assert ours[2] == ("127.0.0.1", env.h2_port if http2 else env.port)


def _lifecycle(module):
    said = []
    c = module.Client(transport=module.MockTransport(lambda r: module.Response(200)),
                      event_hooks={"request": []})
    c.get("https://api.test/")
    for attempt in (lambda: c.__enter__(), c.close, lambda: c.__enter__()):
        try:
            attempt()
            said.append("ok")
        except RuntimeError as exc:
            said.append(str(exc))
    return said


def test_a_client_that_has_sent_or_is_closed_cannot_be_entered_as_in_httpx():
    assert _lifecycle(https) == _lifecycle(httpx) == [
        "Cannot open a client instance more than once.", "ok",
        "Cannot reopen a client instance, once it has been closed."]


def _built(module, url, **kw):
    c = module.Client(timeout=7.0, base_url="http://a.test/api", params={"a": "1"})
    req = c.build_request("GET", url, **kw)
    c.close()
    return str(req.url), req.extensions


@pytest.mark.parametrize("kw", [{}, {"timeout": 3.0}, {"timeout": None}])
def test_build_request_carries_the_timeout_as_httpx_s(kw):
    assert _built(https, "/x", **kw) == _built(httpx, "/x", **kw)


@pytest.mark.parametrize("url", ["//b.test/x", "//b.test/x/y?q=2", "//b.test", "//b.test?q=2",
                                 "//b.test/x#f"])
def test_a_network_path_reference_is_under_base_url_as_in_httpx(url):
    def built(module):
        with module.Client(base_url="http://a.test/api") as c:
            return str(c.build_request("GET", url).url)

    assert built(https) == built(httpx)


@pytest.mark.parametrize("kw", [{"json": {"a": 1}}, {"text": "t"}, {"html": "<p>"},
                                {"content": b"raw"}])
def test_a_hand_made_response_s_headers_are_in_httpx_s_order(kw):
    assert https.Response(200, **kw).headers.multi_items() == \
        httpx.Response(200, **kw).headers.multi_items()


def test_a_body_read_after_its_client_is_closed_is_a_read_error_as_in_httpx():
    body = b"x" * 200_000  # more than the socket buffers: still on the wire when closed
    port, thread = reply_server(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
                                + body, 2)
    for module in MODULES:
        client = module.Client()
        with client.stream("GET", f"http://127.0.0.1:{port}/") as r:
            client.close()
            with pytest.raises(module.ReadError):
                r.read()
        assert r.is_closed
    thread.join(10)
