"""Headers, decoding and Response behaviour, without sockets."""
from __future__ import annotations

import gzip
import os
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from corenet.https import Headers, HTTPStatusError, Request, Response
from corenet.https.limits import DEFAULT_LIMITS
from corenet.https.decoder import Decoder
from corenet.https.errors import DecodingError, RemoteProtocolError, ResponseNotRead


def test_headers_case_insensitive_and_multi_valued():
    h = Headers([("Set-Cookie", "a=1"), ("content-type", "text/plain"), ("set-cookie", "b=2")])
    assert h["SET-COOKIE"] == "a=1, b=2"
    assert h.get_list("set-cookie") == ["a=1", "b=2"]
    assert "Content-Type" in h and h.get("missing") is None
    h["Content-Type"] = "application/json"
    assert h.get_list("content-type") == ["application/json"]
    del h["set-cookie"]
    assert "set-cookie" not in h and len(h) == 1
    assert h == {"content-type": "application/json"}
    assert Headers.from_raw([(b"X-Bin", b"caf\xe9")])["x-bin"] == "caf\u00e9"


def decode_all(d: Decoder, *parts: bytes) -> bytes:
    out = [piece for part in parts for piece in d.decode(part)]
    return b"".join(out + list(d.flush()))


@pytest.mark.parametrize("coding", ["gzip", "zstd"])
def test_empty_gzip_members_and_zstd_frames_before_the_data(coding):
    """Members (gzip) or frames (zstd) that hold nothing, one after another in one read,
    end nothing: the data of those after them is decoded, neither dropped nor taken for a
    truncated body."""
    if coding == "zstd":
        from backports import zstd
        pack = zstd.compress
    else:
        pack = gzip.compress
    body = pack(b"") + pack(b"") + pack(b"hello") + pack(b"") + pack(b" world")
    assert decode_all(Decoder(coding, 1 << 20, 1024), body) == b"hello world"
    assert decode_all(Decoder(coding, 1 << 20, 1024), *[body[i:i + 3] for i in
                                                        range(0, len(body), 3)]) \
        == b"hello world"
    assert decode_all(Decoder(coding, 1 << 20, 1024), pack(b"") + pack(b"")) == b""


def test_decoder_gzip_deflate_and_chained():
    raw = b"payload " * 1000
    packed = gzip.compress(raw)
    d = Decoder("gzip", 1 << 20, 1024)
    assert decode_all(d, *(packed[i:i + 100] for i in range(0, len(packed), 100))) == raw
    for data in (zlib.compress(raw), zlib.compress(raw)[2:-4]):  # zlib-wrapped and raw
        assert decode_all(Decoder("deflate", 1 << 20, 1024), data) == raw
    d = Decoder("deflate, gzip", 1 << 20, 1024)  # applied in order: deflate, then gzip
    assert decode_all(d, gzip.compress(zlib.compress(raw))) == raw
    assert decode_all(Decoder("gzip", None, 1024), gzip.compress(b"ab") + gzip.compress(b"cd")) \
        == b"abcd"  # two gzip members
    assert not Decoder("identity", 10, 10) and not Decoder("compress", 10, 10)
    assert not Decoder("gzip, compress", 10, 10)  # one unknown coding: left undecoded


def _framed(kind: str, raw: bytes, level: int) -> bytes:
    """raw compressed by the standard library's zlib, as a server would send it."""
    if kind == "gzip":
        return gzip.compress(raw, level)
    wbits = {"zlib": zlib.MAX_WBITS, "raw": -zlib.MAX_WBITS}[kind]
    c = zlib.compressobj(level, zlib.DEFLATED, wbits)
    return c.compress(raw) + c.flush()


@settings(max_examples=150, deadline=None)
@given(raw=st.binary(max_size=3000) | st.text(alphabet="ab \n", max_size=20000).map(str.encode),
       kind=st.sampled_from(["gzip", "zlib", "raw"]), level=st.integers(0, 9),
       cuts=st.lists(st.integers(0, 25000), max_size=6), piece=st.integers(1, 5000))
def test_decoder_gives_back_what_zlib_compressed(raw, kind, level, cuts, piece):
    """Whatever the framing, level, split of the input and size of the pieces asked for,
    the body comes back whole, in pieces no larger than asked, and a cut-short stream of
    more than its header is an error (what the inflater in use must agree on with the
    compressor of the standard library, which servers' zlib shares)."""
    packed = _framed(kind, raw, level)
    bounds = sorted({min(c, len(packed)) for c in cuts} | {0, len(packed)})
    parts = [packed[a:b] for a, b in zip(bounds, bounds[1:])]
    d = Decoder("gzip" if kind == "gzip" else "deflate", None, piece)
    pieces = [p for part in parts for p in d.decode(part)] + list(d.flush())
    assert b"".join(pieces) == raw
    assert all(0 < len(p) <= piece for p in pieces)
    if len(packed) > 20:
        with pytest.raises(DecodingError, match="truncated"):
            decode_all(Decoder("gzip" if kind == "gzip" else "deflate", None, piece),
                       packed[:-9])


def test_decoder_pieces_are_bounded_and_made_lazily():
    bomb = gzip.compress(gzip.compress(b"\0" * (64 << 20)))  # 64 MiB from a few KiB
    d = Decoder("gzip, gzip", None, 4096)
    pieces = d.decode(bomb)
    first = [next(pieces) for _ in range(10)]
    assert all(len(p) == 4096 for p in first)  # pulled one at a time, never inflated whole


def test_decoder_limits_a_compression_bomb():
    bomb = gzip.compress(b"\0" * (4 << 20))
    d = Decoder("gzip", 1 << 20, 64 << 10)
    with pytest.raises(RemoteProtocolError, match="max_body_bytes"):
        decode_all(d, bomb)
    assert d._size == (1 << 20) + 1  # inflated one byte past the limit, no further


def test_decoder_rejects_garbage_and_truncation():
    with pytest.raises(DecodingError, match="invalid gzip"):
        decode_all(Decoder("gzip", 1 << 20, 1024), b"not gzip at all")
    with pytest.raises(DecodingError, match="truncated gzip"):
        decode_all(Decoder("gzip", 1 << 20, 1024), gzip.compress(b"x" * 1000)[:-5])
    assert decode_all(Decoder("gzip", 1 << 20, 1024)) == b""  # no body at all: fine


def test_response_text_charset_json_and_status():
    r = Response(200, headers=Headers({"Content-Type": "text/plain; charset=ISO-8859-1"}),
                 content="caf\u00e9".encode("latin-1"))
    assert r.encoding == "iso-8859-1" and r.text == "caf\u00e9"
    assert Response(200, content=b'{"a": [1]}').json() == {"a": [1]}
    assert Response(204, content=b"").reason_phrase == "No Content"
    request = Request("GET", "https://example.com/")
    with pytest.raises(HTTPStatusError, match="Server error '503"):
        Response(503, content=b"", request=request).raise_for_status()


def test_unread_streamed_response_content_is_an_error():
    r = Response(200, content=iter([b"not", b" read"]))
    with pytest.raises(ResponseNotRead, match="without having called `read"):
        r.content


def test_zstd_window_is_capped_as_rfc_9659_asks():
    from backports import zstd

    data = os.urandom(1 << 20) * 40  # repeats 1 MiB apart: a 32 MiB window pays
    packed = zstd.compress(data, options={zstd.CompressionParameter.window_log: 25})
    with pytest.raises(DecodingError, match="too much memory"):
        decode_all(Decoder("zstd", None, 64 << 10), packed)  # default: 2**23 = 8 MiB
    assert decode_all(Decoder("zstd", None, 64 << 10, zstd_window_log_max=25), packed) == data


def test_brotli_and_zstd_concatenated_frames_and_garbage():
    import brotli
    from backports import zstd

    two = zstd.compress(b"one ") + zstd.compress(b"two")
    assert decode_all(Decoder("zstd", None, 1024), two) == b"one two"
    with pytest.raises(DecodingError, match="invalid br"):
        decode_all(Decoder("br", None, 1024), b"\xff\xff not brotli")
    with pytest.raises(DecodingError, match="truncated br"):
        decode_all(Decoder("br", None, 1024), brotli.compress(os.urandom(5000))[:-3])


def test_cookie_jar_has_any_follows_sets_and_deletes():
    from corenet.https import Cookies

    jar = Cookies()
    assert not jar.has_any() and not jar
    jar.set("a", "1", domain="example.com")
    assert jar.has_any() and jar
    jar.delete("a", domain="example.com")
    assert not jar.has_any()  # the emptied domain and path dicts left behind count for none


def test_cookie_jar_is_bounded_per_domain_and_in_all(monkeypatch):
    from corenet.https import cookies as cookies_mod
    from corenet.https.cookies import Cookies

    jar = Cookies()
    jar.extract("https://a.example/", [f"c{i}=v" for i in range(500)])  # one response
    assert len(jar) == cookies_mod.MAX_PER_DOMAIN
    assert "c499" in jar and "c0" not in jar  # the newest kept
    monkeypatch.setattr(cookies_mod, "MAX_TOTAL", 250)
    jar.extract("https://b.example/", [f"d{i}=v" for i in range(100)])
    assert len(jar) == 250 and "d99" in jar


@pytest.mark.parametrize("code", [101, 200, 204, 300, 301, 302, 304, 404, 503])
@pytest.mark.parametrize("location", [None, "/next"])
def test_status_predicates_as_httpx(code, location):
    import httpx

    headers = {"Location": location} if location else None
    ours, theirs = Response(code, headers=headers), httpx.Response(code, headers=headers)
    for name in ("is_informational", "is_success", "is_redirect", "is_client_error",
                 "is_server_error", "is_error", "has_redirect_location"):
        assert getattr(ours, name) is getattr(theirs, name), name


@pytest.mark.parametrize("code, kind", [(101, "Informational response"),
                                        (301, "Redirect response"), (304, "Redirect response"),
                                        (418, "Client error"), (500, "Server error")])
def test_raise_for_status_raises_for_all_but_2xx(code, kind):
    from corenet.https import Request

    req = Request("GET", "https://example.org/a")
    r = Response(code, headers={"Location": "/b"}, request=req)
    with pytest.raises(HTTPStatusError, match=f"{kind} '{code} ") as info:
        r.raise_for_status()
    assert info.value.response is r and info.value.request is req
    ok = Response(201, request=req)
    assert ok.raise_for_status() is ok  # chains


def test_hand_made_response_takes_httpx_arguments():
    import gzip

    r = Response(200, json={"a": "é"})
    assert r.headers["content-type"] == "application/json" and r.json() == {"a": "é"}
    assert r.headers["content-length"] == str(len(r.content))
    t = Response(404, text="nöpe", headers=[("X-A", "1")])
    assert (t.text, t.encoding, t.headers["x-a"]) == ("nöpe", "utf-8", "1")
    assert t.headers["content-type"] == "text/plain; charset=utf-8"
    assert Response(200, html="<p/>").headers["content-type"].startswith("text/html")
    assert Response(200).content == b"" and Response(200, content="x").content == b"x"
    z = Response(200, content=gzip.compress(b"plain" * 100), headers={"Content-Encoding": "gzip"})
    assert z.content == b"plain" * 100
    with pytest.raises(TypeError):
        Response(200, content=12)


def test_elapsed_is_a_timedelta_fixed_at_the_close_and_settable():
    import datetime

    from corenet.https.exchange import ResponseHead

    now = [10.0]
    head = ResponseHead(200, b"OK", "1.1", [(b"Content-Length", b"1")])
    r = Response.from_head(head, Request("GET", "https://example.test/"), {}, 10.0,
                           lambda: now[0], DEFAULT_LIMITS)
    assert r.headers["content-length"] == "1" and r.reason_phrase == "OK"
    with pytest.raises(RuntimeError, match="after the response has been read or closed"):
        r.elapsed  # noqa: B018  (not closed yet, as httpx)
    now[0] = 10.25
    r.take_body([b"x"])
    now[0] = 99.0
    assert r.elapsed == datetime.timedelta(seconds=0.25)  # the close's, not the reading's
    r.elapsed = datetime.timedelta(seconds=3)
    assert r.elapsed.total_seconds() == 3


def test_streamed_hand_made_response_reads_through_aiter(run):
    async def pieces():
        yield b"ab"
        yield b""
        yield b"cd"

    async def main():
        r = Response(200, content=pieces())
        got = [p async for p in r.aiter_bytes()]
        s = Response(200, content=iter([b"x", b"y"]))
        return got, await s.aread(), s.is_stream_consumed

    assert run(main()) == ([b"ab", b"cd"], b"xy", True)


def test_default_encoding_and_charset():
    body = "naïve".encode("latin-1")
    assert Response(200, content=body, default_encoding="latin-1").text == "naïve"
    calls = []

    def guess(content):
        calls.append(content)
        return "latin-1"

    r = Response(200, content=body, default_encoding=guess)
    assert r.text == "naïve" and calls == [body]
    named = Response(200, content="naïve".encode(), default_encoding="latin-1",
                     headers={"Content-Type": "text/plain; charset=utf-8"})
    assert named.text == "naïve" and named.charset_encoding == "utf-8"  # the header wins
    assert Response(200, content=b"x", default_encoding=lambda c: None).encoding == "utf-8"
    r = Response(200, content=body)
    r.encoding = "latin-1"
    assert r.text == "naïve"


def test_response_cookies_and_cookies_mapping():
    from collections.abc import MutableMapping

    from corenet.https import CookieConflict, Cookies, Request

    r = Response(200, headers=[("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Domain=x.org")],
                 request=Request("GET", "https://www.example.org/p"))
    assert dict(r.cookies) == {"a": "1"}  # b's domain is not the response's: refused
    c = Cookies()
    assert isinstance(c, MutableMapping)
    c["k"] = "v"
    c.set("k", "w", domain="example.org")
    assert len(c) == 2 and sorted(c) == ["k"]
    with pytest.raises(CookieConflict):
        c["k"]
    with pytest.raises(KeyError):  # still a KeyError, as before
        c.get("k")
    assert c.get("k", domain="example.org") == "w"
    c.delete("k", domain="example.org")
    assert c["k"] == "v" and c.get("missing", "d") == "d"
    c.update(r.cookies)
    c.update({"z": "26"})
    assert sorted(c.items()) == [("a", "1"), ("k", "v"), ("z", "26")]
    assert [x.domain for x in c.jar if x.name == "a"] == ["www.example.org"]  # kept
    c.clear("www.example.org")
    assert sorted(c) == ["k", "z"]
    req = Request("GET", "https://other.example/")
    c.set_cookie_header(req)
    assert req.headers["cookie"] in ("k=v; z=26", "z=26; k=v")
    c.clear()
    assert not c and len(c) == 0
    with pytest.raises(KeyError):
        del c["nothing"]


def test_request_takes_httpx_arguments():
    from corenet.https import Request

    r = Request("POST", "https://example.org/a?x=1", params={"y": [1, 2], "t": True},
                json={"k": 1})
    assert str(r.url) == "https://example.org/a?x=1&y=1&y=2&t=true"
    assert r.read() == b'{"k":1}' and r.headers["content-type"] == "application/json"
    assert Request("GET", "https://e.org/").read() == b""
    s = Request("PUT", "https://e.org/", content=iter([b"a", b"b"]))
    assert s.read() == b"ab" and s.content == b"ab"
    assert Request("GET", "https://e.org/", headers={"A": "1"}).extensions == {}
