"""Fuzzing the whole response path through a real TLS socket: whatever bytes the server
sends (then closing), the client returns a Response or raises an HTTPError, in bounded time,
and keeps no descriptor."""
from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings, strategies as st

from corenet.https import AsyncClient, HTTPError, Timeout
from https_helpers import open_fds

_status = st.sampled_from([b"HTTP/1.1 200 OK", b"HTTP/1.0 204 No", b"HTTP/1.1 304 NM",
                           b"HTTP/1.1 301 Moved", b"HTTP/1.1 100 Continue", b"HTTP/1.1 2x0 X",
                           b"HTTP/1.1 500 Oops", b"HTTP/9.9 200 OK"])
_header = st.sampled_from([
    b"Content-Length: 3", b"Content-Length: 99", b"Content-Length: x",
    b"Transfer-Encoding: chunked", b"Content-Encoding: gzip", b"Content-Encoding: deflate",
    b"Connection: close", b"Location: /raw?", b"Location: https://[::1", b"X: \x01",
    b"Keep-Alive: timeout=0",
])
_body = st.sampled_from([b"", b"abc", b"3\r\nabc\r\n0\r\n\r\n", b"zz\r\n", b"\x1f\x8b\x08",
                         b"abcdef", b"0\r\n\r\n"])
GOOD = {
    b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\n\r\nabc",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
}
_structured = st.builds(
    lambda s, hs, b: s + b"\r\n" + b"".join(h + b"\r\n" for h in hs) + b"\r\n" + b,
    _status, st.lists(_header, max_size=4), _body)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(_structured, st.binary(max_size=64)))
@example(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
@example(b"HTTP/1.1 200 OK\r\n\r\nabc")
@example(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
def test_fuzz_responses_through_tls(env, run, data):
    async def main():
        async with AsyncClient(verify=env.ca, timeout=Timeout(2, total=3),
                          max_redirects=2) as c:
            try:
                r = await c.get(f"{env.raw}/raw?{data.hex()}")
            except HTTPError:
                return None
            assert 100 <= r.status_code <= 999
            assert isinstance(r.content, bytes)
            return r

    before = open_fds()
    r = run(main())
    if data in GOOD:  # the explicit examples: the fuzz does reach successful responses
        assert r is not None and r.content == b"abc"
    assert open_fds() <= before
