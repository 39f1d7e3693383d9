"""The sans-IO exchange, fed bytes directly: no sockets, no loop."""
from __future__ import annotations

import gc

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from corenet.https.errors import LocalProtocolError, RemoteProtocolError
from corenet.https.exchange import (
    END, ConnectionClosedEarly, ResponseExchange, ResponseHead, encode_chunk,
    encode_header_lines, encode_request_line,
)
from corenet.https.limits import Limits


def feed_all(ex: ResponseExchange, data: bytes, step: int | None = None) -> list:
    events = []
    if step is None:
        events += ex.feed(data)
    else:
        for i in range(0, len(data), step):
            events += ex.feed(data[i:i + step])
    return events


def body_of(events: list) -> bytes:
    return b"".join(e for e in events if isinstance(e, bytes))


CL_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello"
CHUNKED = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
           b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nTrailer-X: t\r\n\r\n")


@pytest.mark.parametrize("step", [None, 1, 3, 7])
def test_content_length_any_split(step):
    ex = ResponseExchange("GET")
    events = feed_all(ex, CL_RESPONSE, step)
    head = events[0]
    assert isinstance(head, ResponseHead)
    assert head.status_code == 200 and head.reason == b"OK" and head.http_version == "1.1"
    assert head.headers == [(b"Content-Length", b"5"), (b"X-A", b"1"), (b"x-a", b"2")]
    assert body_of(events) == b"hello"
    assert events[-1] is END and ex.done and ex.reusable


@pytest.mark.parametrize("step", [None, 1, 4])
def test_chunked_with_trailers(step):
    ex = ResponseExchange("GET")
    events = feed_all(ex, CHUNKED, step)
    assert body_of(events) == b"hello world"
    assert events[-1] is END and ex.reusable
    # trailers are not reported as headers
    assert all(name != b"Trailer-X" for name, _ in events[0].headers)


BARE_LF = b"HTTP/1.1 200 OK\nContent-Length: 5\nX-A: 1\r\nX-B:  two\n\nhello"


@pytest.mark.parametrize("step", [None, 1, 2, 5])
def test_lines_ended_by_a_bare_lf_are_read_as_rfc_9112_lets_a_client(step):
    """A bare LF ends a line (RFC 9112 2.2), mixed with CRLF ones too, in any split."""
    ex = ResponseExchange("GET")
    events = feed_all(ex, BARE_LF, step)
    head = events[0]
    assert head.status_code == 200 and head.reason == b"OK"
    assert head.headers == [(b"Content-Length", b"5"), (b"X-A", b"1"), (b"X-B", b"two")]
    assert body_of(events) == b"hello" and events[-1] is END and ex.reusable
    after = ResponseExchange("GET", previous=ex)
    events = feed_all(after, b"HTTP/1.1 204 No\n\n", step)
    assert events[0].status_code == 204 and events[-1] is END


@pytest.mark.parametrize("step", [None, 1, 6])
@pytest.mark.parametrize("order", ["te-first", "cl-first"])
def test_transfer_encoding_frames_the_body_over_a_content_length_once(step, order):
    """Both came (RFC 9112 6.3): the chunks frame the body whatever Content-Length says, and
    the connection is not used again (a peer that frames a body two ways may desync it)."""
    te, cl = b"Transfer-Encoding: chunked\r\n", b"Content-Length: 50\r\n"
    raw = (b"HTTP/1.1 200 OK\r\n" + (te + cl if order == "te-first" else cl + te)
           + b"\r\n3\r\nabc\r\n0\r\n\r\n")
    ex = ResponseExchange("GET")
    events = feed_all(ex, raw, step)
    assert body_of(events) == b"abc" and events[-1] is END
    assert not ex.reusable
    head = ResponseExchange("HEAD")
    head.feed(raw)
    assert head.done and not head.reusable


@pytest.mark.parametrize("codings", [
    [b"gzip"], [b"gzip, chunked"], [b"chunked, gzip"], [b"chunked", b"gzip"],
    [b"chunked, chunked"], [b"gzip", b"chunked"],
])
@pytest.mark.parametrize("sized", [False, True])
def test_transfer_codings_other_than_chunked_alone_are_refused_as_httpx_does(codings, sized):
    """A body in a transfer coding this client does not undo (gzip, chunked twice), or
    framed by the close because chunked is not the last coding (RFC 9112 6.3), whatever
    Content-Length beside it says: RemoteProtocolError at the head, as httpx (h11) refuses
    every Transfer-Encoding but chunked; before, the close ended it as a Content-Length
    shortfall, or a raw chunked body was read as if unchunked. A HEAD, 204 or 304 response
    has no body to frame, and passes."""
    head = b"HTTP/1.1 200 OK\r\n" + b"".join(b"Transfer-Encoding: " + c + b"\r\n"
                                             for c in codings)
    head += (b"Content-Length: 5\r\n" if sized else b"") + b"\r\n"
    ex = ResponseExchange("GET")
    with pytest.raises(RemoteProtocolError, match="only chunked is supported"):
        ex.feed(head + b"5\r\nhello\r\n0\r\n\r\n")
    assert not ex.reusable
    with pytest.raises(RemoteProtocolError):
        ex.feed_eof()
    for method, status in (("HEAD", b"200 OK"), ("GET", b"204 No Content"),
                           ("GET", b"304 Not Modified")):
        ex = ResponseExchange(method)
        assert ex.feed(head.replace(b"200 OK", status))[-1] is END

    import h11
    c = h11.Connection(h11.CLIENT)
    c.send(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    c.receive_data(head + b"5\r\nhello\r\n0\r\n\r\n")
    with pytest.raises(h11.RemoteProtocolError):
        c.next_event()


def test_close_delimited_ends_at_eof_and_is_not_reusable():
    ex = ResponseExchange("GET")
    events = ex.feed(b"HTTP/1.1 200 OK\r\n\r\nsome")
    events += ex.feed(b" body")
    assert END not in events
    events += ex.feed_eof()
    assert body_of(events) == b"some body" and events[-1] is END
    assert not ex.reusable


@pytest.mark.parametrize("status", [204, 304])
def test_no_body_statuses(status):
    ex = ResponseExchange("GET")
    events = ex.feed(b"HTTP/1.1 %d X\r\nContent-Length: 10\r\n\r\n" % status
                     if status == 304 else b"HTTP/1.1 204 X\r\n\r\n")
    assert events[-1] is END and body_of(events) == b"" and ex.reusable


def test_head_response_has_no_body_even_with_content_length():
    ex = ResponseExchange("HEAD")
    events = ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    assert events[-1] is END and body_of(events) == b""
    assert ex.reusable


def test_head_response_followed_by_stray_body_is_not_reusable():
    ex = ResponseExchange("HEAD")
    events = ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    assert events[-1] is END and not ex.reusable


def test_interim_responses_are_skipped():
    ex = ResponseExchange("GET")
    events = ex.feed(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nLink: x\r\n\r\n"
                     b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok")
    heads = [e for e in events if isinstance(e, ResponseHead)]
    assert [h.status_code for h in heads] == [201]
    assert heads[0].headers == [(b"Content-Length", b"2")]
    assert body_of(events) == b"ok"


def test_too_many_interim_responses():
    ex = ResponseExchange("GET", Limits(max_interim_responses=3))
    with pytest.raises(RemoteProtocolError, match="interim"):
        ex.feed(b"HTTP/1.1 100 Continue\r\n\r\n" * 5)


def test_connection_close_and_http10_not_reusable():
    ex = ResponseExchange("GET")
    ex.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
    assert ex.done and not ex.reusable
    ex = ResponseExchange("GET")
    ex.feed(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert ex.done and not ex.reusable


def test_keep_alive_timeout_is_read():
    ex = ResponseExchange("GET")
    events = ex.feed(b"HTTP/1.1 200 OK\r\nKeep-Alive: max=5, timeout=7\r\n"
                     b"Content-Length: 0\r\n\r\n")
    assert events[0].keep_alive_timeout == 7.0


SURPLUS = "more than the 3 body bytes its Content-Length declared"


def test_bytes_past_the_content_length_are_an_error():
    """A body longer than its Content-Length is not the response the server declared."""
    ex = ResponseExchange("GET")
    with pytest.raises(RemoteProtocolError, match=SURPLUS):
        ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef")
    assert not ex.reusable
    with pytest.raises(RemoteProtocolError, match=SURPLUS):
        ex.feed(b"more")  # the exchange stays failed
    ex = ResponseExchange("GET")
    with pytest.raises(RemoteProtocolError, match=SURPLUS):  # a second response, pipelined
        ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 200 OK\r\n")
    assert not ex.reusable


def test_data_after_done_in_a_later_feed():
    ex = ResponseExchange("GET")
    ex.feed(CL_RESPONSE)
    assert ex.reusable
    with pytest.raises(RemoteProtocolError, match="more than the 5 body bytes"):
        ex.feed(b"HTTP/1.1 200 OK\r\n")
    assert not ex.reusable


@pytest.mark.parametrize("method, raw", [
    ("GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nxyz"),
    ("GET", b"HTTP/1.1 204 No Content\r\n\r\nxyz"),
    ("HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"),
])
def test_bytes_after_a_self_delimited_response_only_retire_the_connection(method, raw):
    """Without a Content-Length body there is no declared length to break: the response
    stands, and the connection carries no other."""
    ex = ResponseExchange(method)
    events = ex.feed(raw)
    assert events[-1] is END and not ex.reusable


@pytest.mark.parametrize("raw, match", [
    (b"HTTP/1.1 2x0 OK\r\n\r\n", "status"),
    (b"HTTQ/1.1 200 OK\r\n\r\n", "malformed"),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n", "malformed"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "malformed"),
    (b"HTTP/1.1 200 OK\r\nBad Header: x\r\n\r\n", "malformed"),
    (b"HTTP/1.1 101 Switching\r\n\r\n", "switched"),
])
def test_malformed_responses_raise_typed_errors(raw, match):
    ex = ResponseExchange("GET")
    with pytest.raises(RemoteProtocolError, match=match):
        ex.feed(raw)
    assert not ex.reusable
    with pytest.raises(RemoteProtocolError):  # the exchange stays dead
        ex.feed(b"more")


def test_content_length_shortfall_at_eof():
    ex = ResponseExchange("GET")
    ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    with pytest.raises(RemoteProtocolError, match="3 of 10"):
        ex.feed_eof()


def test_eof_mid_chunked_body():
    ex = ResponseExchange("GET")
    ex.feed(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
    with pytest.raises(RemoteProtocolError, match="chunked"):
        ex.feed_eof()


def test_eof_before_any_byte_is_retryable_kind():
    ex = ResponseExchange("GET")
    with pytest.raises(ConnectionClosedEarly):
        ex.feed_eof()
    ex = ResponseExchange("GET")
    ex.feed(b"HTTP/1.1 200")
    with pytest.raises(RemoteProtocolError) as info:
        ex.feed_eof()
    assert not isinstance(info.value, ConnectionClosedEarly)


def test_header_byte_limit_stops_an_endless_header_line():
    ex = ResponseExchange("GET", Limits(max_header_bytes=1000))
    ex.feed(b"HTTP/1.1 200 OK\r\nX: ")
    with pytest.raises(RemoteProtocolError, match="max_header_bytes"):
        for _ in range(100):  # bounded: would be 100 KB of one header
            ex.feed(b"a" * 1000)


def test_header_count_limit():
    ex = ResponseExchange("GET", Limits(max_header_count=10))
    with pytest.raises(RemoteProtocolError, match="max_header_count"):
        ex.feed(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(11)) + b"\r\n")


def test_body_limit():
    ex = ResponseExchange("GET", Limits(max_body_bytes=10))
    with pytest.raises(RemoteProtocolError, match="max_body_bytes"):
        ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n" + b"x" * 20)


def test_headers_and_body_in_one_feed_larger_than_header_limit():
    # The header limit must not refuse a body that arrives in the same read.
    ex = ResponseExchange("GET", Limits(max_header_bytes=100))
    body = b"y" * 5000
    events = ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + body)
    assert body_of(events) == body and events[-1] is END


def test_request_head_encoding():
    head = encode_request_line("GET", "/a?b=1") + encode_header_lines([("Host", "h"),
                                                                        ("X-Y", "z w")])
    assert head == b"GET /a?b=1 HTTP/1.1\r\nHost: h\r\nX-Y: z w\r\n"


@pytest.mark.parametrize("name, value", [
    ("X", "a\r\nInjected: 1"), ("X", "a\nb"), ("X", "a\rb"), ("X", "a\x00"),
    ("Bad Name", "v"), ("X:Y", "v"), ("", "v"), ("X", "caf\u00e9\u2603"),
])
def test_request_header_injection_refused(name, value):
    with pytest.raises(LocalProtocolError):
        encode_header_lines([(name, value)])


@pytest.mark.parametrize("method, target", [("GE T", "/"), ("GET", "/a b"), ("GET", "/\r\n")])
def test_bad_method_or_target(method, target):
    with pytest.raises(LocalProtocolError):
        encode_request_line(method, target)


def test_encode_chunk():
    assert b"".join(encode_chunk(b"x" * 26)) == b"1a\r\n" + b"x" * 26 + b"\r\n"


# ---- fuzzing the response path ----

def _check_events(events: list) -> None:
    heads = [e for e in events if isinstance(e, ResponseHead)]
    assert len(heads) <= 1
    if END in events:
        assert events.count(END) == 1 and events[-1] is END
    for e in events:
        assert isinstance(e, (ResponseHead, bytes)) or e is END


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600), st.integers(1, 64), st.sampled_from(["GET", "HEAD"]))
def test_fuzz_arbitrary_bytes(data, step, method):
    """Any bytes: events in order, or a RemoteProtocolError; never another exception."""
    ex = ResponseExchange(method, Limits(max_header_bytes=256, max_body_bytes=300))
    events: list = []
    try:
        events += feed_all(ex, data, step)
        events += ex.feed_eof()
    except RemoteProtocolError:
        assert not ex.reusable
        return
    _check_events(events)
    assert ex.done and not ex.reusable  # after EOF nothing is reusable


_status = st.sampled_from([b"200 OK", b"204 No Content", b"304 NM", b"404 Nope", b"100 C",
                           b"2000 X", b"-1 X", b"200", b"999 Z"])
_header = st.sampled_from([
    b"Content-Length: 5", b"Content-Length: 0", b"Content-Length: -1", b"Content-Length: 99999",
    b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip", b"Connection: close",
    b"Keep-Alive: timeout=x", b"X: \x00", b"X:\tv", b": novalue", b"Y: a\rb",
])
_body = st.one_of(st.binary(max_size=40), st.sampled_from([
    b"5\r\nhello\r\n0\r\n\r\n", b"ffffffffffffffffff\r\n", b"5\r\nhel", b"0\r\n\r\n",
    b"hello", b"-5\r\nhello\r\n",
]))


@settings(max_examples=400, deadline=None)
@given(_status, st.lists(_header, max_size=4), _body, st.integers(1, 32),
       st.booleans())
def test_fuzz_structured_responses(status, headers, body, step, eof):
    raw = b"HTTP/1.1 " + status + b"\r\n" + b"".join(h + b"\r\n" for h in headers) \
        + b"\r\n" + body
    ex = ResponseExchange("GET", Limits(max_body_bytes=1000))
    events: list = []
    try:
        events += feed_all(ex, raw, step)
        if eof:
            events += ex.feed_eof()
    except RemoteProtocolError:
        assert not ex.reusable
        return
    _check_events(events)
    if END in events:
        total = len(body_of(events))
        assert total <= 1000
        if ex.reusable:
            # a reusable connection must have consumed exactly one well-framed response
            assert not eof


def test_counted_body_split_across_feeds():
    ex = ResponseExchange("GET")
    events = ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab")
    events += ex.feed(memoryview(b"cdefg"))
    assert END not in events
    events += ex.feed(bytearray(b"hij"))
    assert body_of(events) == b"abcdefghij" and events[-1] is END and ex.reusable
    assert all(type(e) is bytes for e in events
               if not isinstance(e, ResponseHead) and e is not END)


def test_counted_body_with_extra_bytes_in_a_later_feed():
    ex = ResponseExchange("GET")
    ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
    with pytest.raises(RemoteProtocolError, match="more than the 4 body bytes"):
        ex.feed(b"cdEXTRA")
    assert not ex.reusable
    ex = ResponseExchange("GET")
    ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab")
    assert body_of(ex.feed(b"cd")) == b"cd" and ex.reusable
    with pytest.raises(RemoteProtocolError, match="more than the 4 body bytes"):
        ex.feed(b"X")
    assert not ex.reusable


def test_counted_body_limit_and_eof():
    # A body read whole fails at a head that promises more than its limit ...
    ex = ResponseExchange("GET", Limits(max_body_bytes=5))
    with pytest.raises(RemoteProtocolError, match=r"of 8 bytes \(Content-Length\) exceeds 5 "
                                                  r"bytes \(max_body_bytes\)"):
        ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
    # ... a stream when it gets there, and at once when it is then read whole
    ex = ResponseExchange("GET", Limits(max_body_bytes=5, max_stream_bytes=6), streaming=True)
    ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
    ex.feed(b"abc")
    with pytest.raises(RemoteProtocolError, match=r"body exceeds 6 bytes \(max_stream_bytes"):
        ex.feed(b"defgh")
    ex = ResponseExchange("GET", Limits(max_body_bytes=5), streaming=True)
    ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nabc")
    with pytest.raises(RemoteProtocolError, match=r"of 8 bytes \(Content-Length\) exceeds 5"):
        ex.set_streaming(False)
    # a head whose body is not read (HEAD, 304) is not judged by its Content-Length
    ex = ResponseExchange("HEAD", Limits(max_body_bytes=5))
    ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
    assert ex.done
    ex = ResponseExchange("GET", Limits(max_body_bytes=5))
    ex.feed(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 8\r\n\r\n")
    assert ex.done
    ex = ResponseExchange("GET")
    ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n")
    ex.feed(b"abc")
    with pytest.raises(RemoteProtocolError, match="3 of 8"):
        ex.feed_eof()


@pytest.mark.parametrize("length", [2**62, 2**62 + 1, 2**63 - 1, 2**63, 2**64 - 1])
def test_content_length_at_the_edges_of_64_bits(length):
    """A server's Content-Length is any number up to llhttp's 2^64 - 1: the body is read
    (counted here up to 2^62, beyond by llhttp) and a short one is an error that says both
    figures, never an overflow."""
    ex = ResponseExchange("GET", Limits(max_stream_bytes=None), streaming=True)
    events = ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\nabc" % length)
    events += ex.feed(b"defg")
    assert body_of(events) == b"abcdefg" and END not in events and not ex.done
    with pytest.raises(RemoteProtocolError, match=f"after 7 of {length} body bytes"):
        ex.feed_eof()
    ex = ResponseExchange("GET", Limits(max_body_bytes=5))
    with pytest.raises(RemoteProtocolError, match=f"of {length} bytes .*max_body_bytes"):
        ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\nabc" % length)


def test_content_length_past_64_bits_is_malformed():
    ex = ResponseExchange("GET")
    with pytest.raises(RemoteProtocolError, match="malformed response"):
        ex.feed(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\nabc" % 2**64)


def test_counted_body_keeps_connection_close():
    ex = ResponseExchange("GET")
    ex.feed(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 4\r\n\r\n")
    events = ex.feed(b"abcd")
    assert events[-1] is END and not ex.reusable


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=3000), st.lists(st.integers(1, 700), min_size=1,
                                                      max_size=20),
       st.booleans())
def test_fuzz_body_survives_buffer_reuse(body, cuts, chunked):
    """The connection feeds views of one reused buffer: whatever the split, the body
    events must be the exact body, never views that a later read overwrites."""
    if chunked:
        payload = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 97]), body[i:i + 97])
                           for i in range(0, len(body), 97)) + b"0\r\n\r\n"
        head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    else:
        payload = body
        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body)
    wire = head + payload
    shared = bytearray(1024)
    ex = ResponseExchange("GET")
    events: list = []
    pos = 0
    i = 0
    while pos < len(wire):
        n = min(cuts[i % len(cuts)], len(wire) - pos, len(shared))
        shared[:n] = wire[pos:pos + n]
        events += ex.feed(memoryview(shared)[:n])
        shared[:] = b"\xaa" * len(shared)  # the next read overwrites the buffer
        pos += n
        i += 1
    assert body_of(events) == body
    assert events[-1] is END and ex.reusable


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize("step", [1, 2, 5, 13])
def test_chunked_at_any_split_with_interim_and_leading_blank_lines(step):
    raw = (b"HTTP/1.1 100 Continue\r\n\r\n\r\n" + CHUNKED_HEAD +
           b"3;a=\"q\";b\r\nabc\r\n000A\r\n0123456789\r\n0\r\nX-T: 1\r\nY: 2\r\n\r\n")
    ex = ResponseExchange("GET")
    events = feed_all(ex, raw, step)
    assert body_of(events) == b"abc0123456789" and events[-1] is END and ex.reusable


@pytest.mark.parametrize("bad", [
    b"5\nhello\r\n",  # bare LF ends nothing
    b"5;a\rb\r\nhello\r\n",  # bare CR inside an extension
    b"5;a\nb\r\nhello\r\n",  # bare LF inside an extension
    b"-5\r\n",
    b"11111111111111111\r\n",  # more than 64 bits
    b"5\r\nhelloXY0\r\n\r\n",  # data not followed by CRLF
    b"0\r\nno colon\r\n\r\n",
    b"0\r\n folded: x\r\n\r\n",
])
def test_chunked_framing_errors(bad):
    ex = ResponseExchange("GET")
    with pytest.raises(RemoteProtocolError, match="malformed"):
        feed_all(ex, CHUNKED_HEAD + bad, 1)


def test_chunk_extensions_and_trailers_are_counted_across_feeds():
    limits = Limits(max_chunk_extension_bytes=60, max_trailer_bytes=40, max_header_count=3)
    ex = ResponseExchange("GET", limits)
    ex.feed(CHUNKED_HEAD)
    for _ in range(4):
        ex.feed(b"1;" + b"e" * 20 + b"\r\nx\r\n")  # 84 bytes of extensions: within 100
    with pytest.raises(RemoteProtocolError,
                       match=r"chunk extensions and trailers exceed 100 bytes"):
        for _ in range(3):  # at most the size of one chunk line past the limit
            ex.feed(b"1;" + b"e" * 20 + b"\r\nx\r\n")
    ex = ResponseExchange("GET", limits)
    ex.feed(CHUNKED_HEAD + b"0\r\nA: " + b"a" * 60)  # a trailer line that goes on
    with pytest.raises(RemoteProtocolError, match="exceed 100 bytes"):
        ex.feed(b"a" * 60)
    # Trailer fields are not kept (no per-field work): more of them than max_header_count
    # is fine within their bytes, and the body before them is whole.
    ex = ResponseExchange("GET", limits)
    events = ex.feed(CHUNKED_HEAD + b"1\r\nz\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n")
    assert body_of(events) == b"z" and events[-1] is END and ex.reusable


def test_many_small_chunks_are_not_mistaken_for_extensions():
    ex = ResponseExchange("GET", Limits(max_chunk_extension_bytes=0, max_trailer_bytes=0))
    events = []
    for i in range(2000):
        events += ex.feed(b"1\r\n%c\r\n" % (97 + i % 26) if i else CHUNKED_HEAD + b"1\r\na\r\n")
    events += ex.feed(b"0\r\n\r\n")
    assert len(body_of(events)) == 2000 and events[-1] is END


def test_body_limit_depends_on_streaming():
    limits = Limits(max_body_bytes=10, max_stream_bytes=None)
    ex = ResponseExchange("GET", limits, streaming=True)
    events = ex.feed(CHUNKED_HEAD + b"14\r\n" + b"x" * 20 + b"\r\n")
    assert body_of(events) == b"x" * 20  # a stream has no limit here
    with pytest.raises(RemoteProtocolError, match=r"exceeds 10 bytes \(max_body_bytes\)"):
        ex.set_streaming(False)  # read whole after all: over the limit already


def test_close_delimited_needs_a_clean_end():
    raw = b"HTTP/1.1 200 OK\r\n\r\nabc"
    ex = ResponseExchange("GET")
    ex.feed(raw)
    assert ex.feed_eof(clean=True)[-1] is END
    ex = ResponseExchange("GET")
    ex.feed(raw)
    with pytest.raises(RemoteProtocolError, match="without a TLS close_notify"):
        ex.feed_eof(clean=False)


@pytest.mark.parametrize("step", [1, 7, 130, 1000])
def test_long_chunk_lines_at_any_split(step):
    ext = b";sig=" + b"a" * 300
    raw = CHUNKED_HEAD + b"4" + ext + b"\r\nabcd\r\n0" + ext + b"\r\nX: " + b"t" * 200 + b"\r\n\r\n"
    ex = ResponseExchange("GET")
    events = feed_all(ex, raw, step)
    assert body_of(events) == b"abcd" and events[-1] is END and ex.reusable


def test_fields_that_frame_and_describe_the_body_are_found_in_any_case():
    ex = ResponseExchange("GET")
    events = ex.feed(b"HTTP/1.1 302 Found\r\nSERVER: x\r\nset-COOKIE: a=1\r\n"
                     b"LOCATION: /next\r\nContent-ENCODING: gzip\r\nkeep-ALIVE: timeout=9\r\n"
                     b"CONTENT-length: 3\r\nETag: \"e\"\r\n\r\nabc")
    head = events[0]
    assert (head.status_code, head.location, head.content_encoding, head.set_cookie,
            head.keep_alive_timeout) == (302, b"/next", b"gzip", True, 9.0)
    assert body_of(events) == b"abc" and events[-1] is END and ex.reusable
    assert [n for n, _ in head.headers] == [b"SERVER", b"set-COOKIE", b"LOCATION",
                                            b"Content-ENCODING", b"keep-ALIVE",
                                            b"CONTENT-length", b"ETag"]


def test_chunked_in_any_case_frames_the_body():
    ex = ResponseExchange("GET")
    events = ex.feed(b"HTTP/1.1 200 OK\r\nTRANSFER-ENCODING:  Chunked \r\n\r\n"
                     b"3\r\nabc\r\n0\r\n\r\n")
    assert body_of(events) == b"abc" and events[-1] is END
    assert events[0].set_cookie is False and events[0].location is None


@pytest.mark.parametrize("method,pieces,eof", [
    ("GET", [CL_RESPONSE], False),                                  # parsed whole
    ("GET", [CL_RESPONSE[:-5], CL_RESPONSE[-5:]], False),           # the body counted
    ("GET", [CHUNKED], False),
    ("HEAD", [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"], False),
    ("GET", [b"HTTP/1.1 200 OK\r\n\r\nsome body"], True),           # ended by EOF
], ids=["whole", "counted", "chunked", "head", "eof"])
def test_a_finished_exchange_is_freed_without_the_cycle_collector(method, pieces, eof):
    """The parser calls back into the exchange, which holds the parser: once the response
    is complete that cycle is broken, so the exchange, its parser and its head go when the
    last reference does (left to the cycle collector, they made it run full collections
    under load)."""
    gc.collect()
    gc.disable()
    try:
        ex = ResponseExchange(method)
        events = [e for piece in pieces for e in ex.feed(piece)]
        if eof:
            events += ex.feed_eof()
        assert events[-1] is END and ex.done
        # the next exchange of the connection, which may take over the parser
        nxt = ResponseExchange("GET", previous=ex)
        assert body_of(nxt.feed(CL_RESPONSE))
        del ex, events, nxt
        assert gc.collect() == 0
    finally:
        gc.enable()


@pytest.mark.parametrize("first", [
    ("GET", [CL_RESPONSE]),                              # ended inside llhttp: parser taken
    ("GET", [CL_RESPONSE[:-5], CL_RESPONSE[-5:]]),       # body counted: llhttp mid-body
    ("GET", [CHUNKED]),
    ("HEAD", [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"]),   # llhttp stopped
    ("GET", [b"HTTP/1.1 100 Continue\r\n\r\n" + CL_RESPONSE]),
], ids=["whole", "counted", "chunked", "head", "interim"])
@pytest.mark.parametrize("second", [
    [CL_RESPONSE], [CHUNKED], [CL_RESPONSE[:10], CL_RESPONSE[10:]],
    [b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + CHUNKED],
], ids=["whole", "chunked", "split", "interim"])
def test_each_exchange_of_a_connection_parses_its_own_response(first, second):
    """A connection's exchanges follow one another, each given the one before: whatever
    state llhttp was left in by the first (a complete message, a body it never saw, a
    HEAD stopped after the head), the second parses its response from the start."""
    method, pieces = first
    ex = ResponseExchange(method)
    events = [e for piece in pieces for e in ex.feed(piece)]
    assert events[-1] is END and ex.reusable
    for n in range(3):
        ex = ResponseExchange("GET", previous=ex)
        events = [e for piece in second for e in ex.feed(piece)]
        assert isinstance(events[0], ResponseHead) and events[0].status_code == 200
        assert events[-1] is END and ex.reusable
        assert body_of(events) == body_of(ResponseExchange("GET").feed(b"".join(second)))


def test_an_exchange_after_one_with_bytes_past_its_response_starts_afresh():
    """Bytes after a complete response stop llhttp (and make the connection unusable); an
    exchange given that one still parses its own response."""
    ex = ResponseExchange("GET")
    assert ex.feed(CHUNKED + b"HTTP/1.1 200 OK\r\n")[-1] is END
    assert ex.done and not ex.reusable
    nxt = ResponseExchange("GET", previous=ex)
    events = nxt.feed(CHUNKED)
    assert events[0].status_code == 200 and events[-1] is END


class _Anchor:
    """httptools with the per-field callbacks the exchange does without: what llhttp
    itself reports of a head."""

    def __init__(self) -> None:
        self.reason = b""
        self.fields: list[tuple[bytes, bytes]] = []
        self.heads: list[tuple[bytes, list]] = []

    def on_status(self, reason: bytes) -> None:
        self.reason += reason

    def on_header(self, name: bytes, value: bytes | None) -> None:
        self.fields.append((name, value or b""))

    def on_headers_complete(self) -> None:
        self.heads.append((self.reason, self.fields))
        self.reason, self.fields = b"", []


_TCHAR = st.sampled_from(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_VCHAR = st.sampled_from(bytes(range(0x21, 0x7F)) + b"\x80\xe9\xff")
_WS = st.sampled_from([b"", b" ", b"  ", b"\t", b" \t "])


@st.composite
def _heads(draw):
    """A response a server might send: empty lines, interim heads, then the final head
    (any protocol llhttp takes, any reason, fields with spaces and tabs around their
    values), and a body of its Content-Length."""
    def field():
        name = bytes(draw(st.lists(_TCHAR, min_size=1, max_size=12)))
        words = draw(st.lists(st.binary(min_size=1, max_size=6).map(
            lambda b: bytes(c for c in b if 0x21 <= c < 0x7F or c >= 0x80) or b"x"),
            max_size=3))
        return name + b":" + draw(_WS) + b" ".join(words) + draw(_WS) + b"\r\n"

    def head(status):
        # (after an HTTP/1.0 interim head llhttp expects the connection to close)
        proto = draw(st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"RTSP/1.0"]
                                     if status >= 200 else [b"HTTP/1.1"]))
        reason = draw(st.sampled_from([b"", b" ", b" OK", b" Not  Found", b" \xe9t\xe9"]))
        fields = b"".join(field() for _ in range(draw(st.integers(0, 6))))
        return draw(st.sampled_from([b"", b"\r\n"])) + proto + b" %d" % status + reason \
            + b"\r\n" + fields

    interim = b"".join(head(draw(st.sampled_from([100, 102, 103]))) + b"\r\n"
                       for _ in range(draw(st.integers(0, 2))))
    body = draw(st.binary(max_size=20))
    return interim + head(draw(st.sampled_from([200, 203, 404, 599]))) \
        + b"Content-Length: %d\r\n\r\n" % len(body) + body, body


@given(_heads(), st.integers(1, 64))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_the_head_read_from_the_bytes_is_what_llhttp_reports(response, step):
    """The exchange reads the head's reason, version and fields from the bytes once llhttp
    has accepted them: they are what httptools' own callbacks give for the same bytes, fed
    whole to it and in pieces of ``step`` to the exchange."""
    import httptools
    raw, body = response
    anchor = _Anchor()
    parser = httptools.HttpResponseParser(anchor)
    parser.feed_data(raw)
    reason, fields = anchor.heads[-1]
    ex = ResponseExchange("GET")
    events = feed_all(ex, raw, step)
    head = events[0]
    assert isinstance(head, ResponseHead)
    assert (head.status_code, head.reason, head.http_version, head.headers) == (
        parser.get_status_code(), reason, parser.get_http_version(), fields)
    assert body_of(events) == body and events[-1] is END


def test_interim_heads_count_against_max_header_count_and_are_not_kept():
    """Each head, interim ones included, counts against max_header_count on its own: an
    interim head with too many fields fails at once, before any final head comes."""
    interim = b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nLink: </b>\r\n\r\n"
    final = b"HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 0\r\n\r\n"
    ex = ResponseExchange("GET", Limits(max_header_count=2))
    head = feed_all(ex, interim + final, 5)[0]
    assert head.headers == [(b"A", b"1"), (b"Content-Length", b"0")]
    ex = ResponseExchange("GET", Limits(max_header_count=1))
    with pytest.raises(RemoteProtocolError, match="more than 1 headers"):
        ex.feed(interim)
