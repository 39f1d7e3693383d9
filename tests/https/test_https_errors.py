"""The error tree is httpx's: each error's ancestors among httpx's names are the ones
httpx gives it; errors carry the request that failed."""
from __future__ import annotations

import inspect

import httpx
import pytest

import corenet.https as https
from corenet.https import (
    AsyncClient, ConnectError, ConnectTimeout, HTTPError, InvalidURL, ReadTimeout,
    RemoteProtocolError, RequestError, Response, ResponseNotRead, StreamClosed,
    StreamConsumed, StreamError, Timeout, TimeoutException, TLSError, TransportError,
    UnsupportedProtocol,
)

HTTPX_ERRORS = {name: cls for name, cls in vars(httpx).items()
                if inspect.isclass(cls) and issubclass(cls, Exception)}
# Kept apart from httpx on purpose: these are HTTPErrors too in corenet, so that
# `except HTTPError` catches all the client raises.
CORENET_EXTRA_BASES = {"InvalidURL": {"HTTPError"}, "StreamError": {"HTTPError"},
                       "StreamConsumed": {"HTTPError"}, "StreamClosed": {"HTTPError"},
                       "ResponseNotRead": {"HTTPError"}, "RequestNotRead": {"HTTPError"},
                       "UnsupportedProtocol": {"InvalidURL"}, "CookieConflict": {"HTTPError"}}


def httpx_ancestors(cls: type) -> set[str]:
    return {c.__name__ for c in cls.__mro__[1:] if c.__name__ in HTTPX_ERRORS}


def test_every_httpx_exception_is_here():
    assert sorted(n for n in HTTPX_ERRORS if not hasattr(https, n)) == []


@pytest.mark.parametrize("name", sorted(HTTPX_ERRORS))
def test_each_error_sits_where_httpx_puts_it(name):
    ours = getattr(https, name)
    want = httpx_ancestors(HTTPX_ERRORS[name]) | CORENET_EXTRA_BASES.get(name, set())
    assert httpx_ancestors(ours) == want


def test_the_tree_has_httpx_s_transport_errors():
    for name in ("RequestError", "TransportError", "TimeoutException", "ConnectTimeout",
                 "ReadTimeout", "WriteTimeout", "PoolTimeout", "NetworkError", "ConnectError",
                 "ReadError", "WriteError", "CloseError", "ProtocolError",
                 "LocalProtocolError", "RemoteProtocolError", "ProxyError",
                 "UnsupportedProtocol", "DecodingError", "TooManyRedirects",
                 "HTTPStatusError", "InvalidURL", "StreamError", "StreamConsumed",
                 "StreamClosed", "ResponseNotRead", "RequestNotRead", "CookieConflict"):
        assert issubclass(getattr(https, name), HTTPError), name
    assert not issubclass(ConnectTimeout, ConnectError)
    assert issubclass(TLSError, ConnectError)
    assert issubclass(StreamError, RuntimeError) and issubclass(InvalidURL, ValueError)


def test_connect_error_carries_the_request(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            with pytest.raises(ConnectError) as info:
                await c.get("https://127.0.0.1:1/x")  # nothing listens on port 1
            return info.value

    exc = run(main())
    assert exc.request.method == "GET" and exc.request.url == "https://127.0.0.1:1/x"


def test_a_refused_connection_says_so_in_httpx_s_words_and_keeps_the_os_error():
    said = []
    for module in (https, httpx):
        with module.Client() as c:
            with pytest.raises(module.ConnectError) as info:
                c.get("http://127.0.0.1:1/")  # nothing listens on port 1
        said.append(str(info.value))
        root = info.value.__cause__
        while root is not None and not isinstance(root, OSError):
            root = root.__cause__ or root.__context__
        assert isinstance(root, ConnectionRefusedError)
    assert "Connection refused" in said[0] and "Connection refused" in said[1]


def test_timeouts_are_not_connect_errors_and_carry_the_request(env, run):
    async def main():
        async with AsyncClient(verify=env.ca, timeout=Timeout(5, connect=0.2, read=0.2)) as c:
            try:
                await c.get(f"https://localhost:{env.silent_port}/")
            except ConnectError:
                raise AssertionError("a ConnectTimeout was caught as a ConnectError")
            except TimeoutException as exc:
                connect = exc
            with pytest.raises(ReadTimeout) as read:
                await c.post(env.raw + "/stall-headers", content=b"abc")
            return connect, read.value

    connect, read = run(main())
    assert isinstance(connect, ConnectTimeout) and connect.request.url.port == env.silent_port
    assert read.request.method == "POST" and read.request.content == b"abc"


def test_a_body_error_carries_the_request_of_the_stream(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            async with c.stream("GET", env.raw + "/big-short") as r:
                with pytest.raises(RemoteProtocolError) as info:
                    async for _ in r.aiter_bytes():
                        pass
            return info.value, r

    exc, r = run(main())
    assert isinstance(exc, TransportError) and exc.request is r.request


def test_unsupported_scheme_and_error_without_request(run):
    async def main():
        async with AsyncClient() as c:
            await c.get("ftp://localhost/")

    with pytest.raises(UnsupportedProtocol, match="unsupported protocol 'ftp://'") as info:
        run(main())
    assert isinstance(info.value, InvalidURL) and isinstance(info.value, TransportError)
    with pytest.raises(RuntimeError, match="request"):
        RequestError("no request here").request


def test_stream_errors_say_what_state_the_body_is_in(env, run):
    async def main():
        async with AsyncClient(verify=env.ca) as c:
            async with c.stream("GET", env.raw + "/echo") as r:
                with pytest.raises(ResponseNotRead):
                    r.content
                async for _ in r.aiter_bytes():
                    pass
                with pytest.raises(StreamConsumed):
                    await r.aread()
            async with c.stream("GET", env.raw + "/echo") as r2:
                await r2.aclose()
                with pytest.raises(StreamClosed):
                    await r2.aread()
            return r2.is_stream_consumed

    assert run(main()) is False
    with pytest.raises(StreamError):
        Response(200, content=iter([b"a stream"])).content


def test_a_reset_is_a_network_error_on_the_side_it_hit(env, run):
    """A TCP reset mid-body is a ReadError, one while the request goes out a WriteError,
    one before any response a ReadError: NetworkErrors, not protocol errors."""
    from corenet.https import NetworkError, ReadError, WriteError

    async def main():
        async with AsyncClient(verify=env.ca) as c:
            async with c.stream("GET", env.raw + "/reset-mid-body") as r:
                with pytest.raises(ReadError, match="failed while reading the response") as mid:
                    async for _ in r.aiter_bytes():
                        pass
            with pytest.raises(WriteError, match="sending the request to localhost") as sending:
                await c.post(env.raw + "/reset-while-sending", content=b"x" * (32 << 20))
            with pytest.raises(ReadError, match="before the response came") as before:
                await c.post(env.raw + "/reset-after-request", content=b"x")
            return mid.value, sending.value, before.value

    for exc in run(main(), timeout=20):
        assert isinstance(exc, NetworkError) and exc.request.url.path.startswith("/reset")
