"""Headers, decoding and Response behaviour, without sockets."""
from __future__ import annotations

import gzip
import zlib

import pytest

from corenet.https import Headers, HTTPStatusError, Response
from corenet.https.decoder import Decoder
from corenet.https.errors import DecodingError, RemoteProtocolError, StreamConsumed


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
    assert Headers._from_raw([(b"X-Bin", b"caf\xe9")])["x-bin"] == "caf\u00e9"


def test_decoder_gzip_deflate_and_chained():
    raw = b"payload " * 1000
    d = Decoder("gzip", 1 << 20)
    out = b"".join(d.decode(gzip.compress(raw)[i:i + 100])
                   for i in range(0, len(gzip.compress(raw)), 100)) + d.flush()
    assert out == raw
    for data in (zlib.compress(raw), zlib.compress(raw)[2:-4]):  # zlib-wrapped and raw
        d = Decoder("deflate", 1 << 20)
        assert d.decode(data) + d.flush() == raw
    d = Decoder("deflate, gzip", 1 << 20)  # applied in order: deflate first, then gzip
    assert d.decode(gzip.compress(zlib.compress(raw))) + d.flush() == raw
    assert not Decoder("identity", 10) and not Decoder("br", 10)


def test_decoder_limits_a_compression_bomb():
    bomb = gzip.compress(b"\0" * (4 << 20))
    d = Decoder("gzip", 1 << 20)
    with pytest.raises(RemoteProtocolError, match="max_body_bytes"):
        d.decode(bomb)
        d.flush()


def test_decoder_rejects_garbage():
    with pytest.raises(DecodingError):
        Decoder("gzip", 1 << 20).decode(b"not gzip at all")


def test_response_text_charset_json_and_status():
    r = Response(200, headers=Headers({"Content-Type": "text/plain; charset=ISO-8859-1"}),
                 content="caf\u00e9".encode("latin-1"))
    assert r.encoding == "iso8859-1" and r.text == "caf\u00e9"
    assert Response(200, content=b'{"a": [1]}').json() == {"a": [1]}
    assert Response(204, content=b"").reason_phrase == "No Content"
    with pytest.raises(HTTPStatusError, match="Server error '503"):
        Response(503, content=b"").raise_for_status()


def test_unread_streamed_response_content_is_an_error():
    r = Response(200, headers=Headers())
    with pytest.raises(StreamConsumed, match="aread"):
        r.content
