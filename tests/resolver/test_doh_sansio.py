"""The DoH engines without sockets: an h2 (or raw HTTP/1.1) client talks to H2Server (on
nghttp2) / H1Server in memory. Stream resets past the request budget, streams taken before
it ran out answered before GOAWAY, heads and bodies over the limits, bad requests answered
with their status, an answer as one DATA frame ending its stream, flow control on the
answer, HTTP/1.1 pipelining in order and its request budget; and fuzzed bytes and requests,
which end in queries, statuses or GOAWAY, never in an exception."""
from __future__ import annotations

import base64

import dns.message
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.daemon.doh import H2_PREFACE, H1Server
from resolver.daemon.h2_server import H2Server


def pair(max_streams=100, max_requests=1000, max_size=4096):
    server = H2Server(b"/dns-query", max_size, max_streams, max_requests, 8192)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    ready = server.receive(client.data_to_send())
    assert ready == []
    client.receive_data(server.data_to_send())
    return server, client


def headers(method="POST"):
    return [(":method", method), (":path", "/dns-query"), (":scheme", "https"),
            (":authority", "dns.test"), ("content-type", "application/dns-message")]


def exchange(server, client):
    """Client bytes to the server and back: (queries ready, client events)."""
    ready = server.receive(client.data_to_send())
    events = client.receive_data(server.data_to_send())
    return ready, events


Q = dns.message.make_query("www.example.com.", "A", id=0).to_wire()


def test_request_budget_refuses_streams_and_sends_goaway():
    server, client = pair(max_requests=3)
    for i in range(5):               # open and reset at once, as a rapid-reset flood does
        sid = 1 + 2 * i
        client.send_headers(sid, headers())
        client.reset_stream(sid)
    ready, events = exchange(server, client)
    assert ready == []
    assert server.closing and server.refused == 2
    goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway and goaway[0].last_stream_id == 5


def test_body_over_the_limit_is_413_and_the_stream_is_reset():
    server, client = pair(max_size=100)
    client.send_headers(1, headers())
    client.send_data(1, b"\x00" * 150)
    ready, events = exchange(server, client)
    assert ready == []
    statuses = [dict(e.headers)[b":status"] for e in events
                if isinstance(e, h2.events.ResponseReceived)]
    assert statuses == [b"413"] and server.errors == [413]
    assert any(isinstance(e, h2.events.StreamReset) for e in events)
    client.send_headers(3, headers())                 # the connection goes on
    client.send_data(3, Q, end_stream=True)
    ready, _ = exchange(server, client)
    assert ready == [(3, Q)]


def test_answer_waits_for_the_clients_flow_control_window():
    server, client = pair()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10})
    client.send_headers(1, headers())
    client.send_data(1, Q, end_stream=True)
    ready, _ = exchange(server, client)
    assert ready == [(1, Q)]
    answer = bytes(range(256)) * 2
    server.respond(1, answer)
    got = b""
    for _ in range(200):
        events = client.receive_data(server.data_to_send())
        ended = any(isinstance(e, h2.events.StreamEnded) for e in events)
        for e in events:
            if isinstance(e, h2.events.DataReceived):
                assert len(e.data) <= 10            # never past the window
                got += e.data
                if not ended:
                    client.increment_flow_control_window(e.flow_controlled_length,
                                                         stream_id=1)
        if ended:
            break
        server.receive(client.data_to_send())
    assert got == answer


def test_http11_pipelined_requests_answered_in_order_within_the_budget():
    server = H1Server(b"/dns-query", 4096, 2, 8192)
    req = (b"POST /dns-query HTTP/1.1\r\nHost: x\r\nContent-Type: application/dns-message\r\n"
           b"Content-Length: %d\r\n\r\n" % len(Q)) + Q
    ready = server.receive(req * 3)
    assert ready == [(1, Q)]                      # one at a time
    assert server.respond(1, b"A" * 12) == [(2, Q)]
    assert server.respond(2, b"B" * 12) == []     # the budget: no third
    out = server.data_to_send()
    assert out.count(b"HTTP/1.1 200") == 2 and out.index(b"AAAA") < out.index(b"BBBB")
    assert b"connection: close" in out.lower() and server.closing
    assert b"\r\nserver:" not in out.lower()       # hide-http-user-agent: yes


def test_streams_taken_before_the_budget_ran_out_are_answered_before_goaway():
    # Stream 1's head comes in the same read as a whole stream 3, past a budget of one
    # request: 3 is not taken, 1 (taken) is still answered, and only then does GOAWAY
    # name it as the last stream processed.
    server, client = pair(max_requests=1)
    client.send_headers(1, headers())
    client.send_headers(3, headers())
    client.send_data(3, Q, end_stream=True)
    ready, events = exchange(server, client)
    assert ready == [] and server.refused == 1 and not server.closing
    assert not any(isinstance(e, (h2.events.ConnectionTerminated, h2.events.StreamReset))
                   for e in events)
    client.send_data(1, Q, end_stream=True)
    ready, _ = exchange(server, client)
    assert ready == [(1, Q)]
    server.respond(1, b"A" * 12)
    assert server.closing
    events = client.receive_data(server.data_to_send())
    kinds = [type(e) for e in events]
    assert [e.stream_id for e in events if isinstance(e, h2.events.ResponseReceived)] == [1]
    assert kinds.index(h2.events.StreamEnded) < kinds.index(h2.events.ConnectionTerminated)
    goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert goaway[0].last_stream_id == 1
    assert goaway[0].error_code == h2.errors.ErrorCodes.NO_ERROR


def test_an_answer_within_the_window_is_one_data_frame_ending_the_stream():
    server, client = pair()
    client.send_headers(1, headers())
    client.send_data(1, Q, end_stream=True)
    ready, _ = exchange(server, client)
    assert ready == [(1, Q)]
    answer = dns.message.make_response(dns.message.from_wire(Q)).to_wire()
    server.respond(1, answer)
    events = client.receive_data(server.data_to_send())
    [head] = [e for e in events if isinstance(e, h2.events.ResponseReceived)]
    assert dict(head.headers)[b"content-length"] == str(len(answer)).encode()
    assert dict(head.headers)[b"cache-control"] == b"max-age=0"
    [data] = [e for e in events if isinstance(e, h2.events.DataReceived)]
    assert data.data == answer and data.stream_ended is not None


def _statuses(events) -> list[bytes]:
    return [dict(e.headers)[b":status"] for e in events
            if isinstance(e, h2.events.ResponseReceived)]


def test_a_head_over_the_limit_is_431_and_the_connection_goes_on():
    server = H2Server(b"/dns-query", 4096, 100, 1000, 400)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    server.receive(client.data_to_send())
    client.receive_data(server.data_to_send())
    client.send_headers(1, headers() + [("x-padding", "p" * 300)], end_stream=True)
    ready, events = exchange(server, client)
    assert ready == [] and _statuses(events) == [b"431"] and server.errors == [431]
    client.send_headers(3, headers())
    client.send_data(3, Q, end_stream=True)
    assert exchange(server, client)[0] == [(3, Q)]


def test_an_announced_length_over_the_limit_is_413_before_the_body():
    server, client = pair(max_size=100)
    client.send_headers(1, headers() + [("content-length", "5000")])
    ready, events = exchange(server, client)
    assert ready == [] and _statuses(events) == [b"413"]
    assert any(isinstance(e, h2.events.StreamReset) for e in events)   # still sending


def test_http11_head_gets_its_status_without_a_body_and_the_connection_goes_on():
    """A HEAD is no DNS query (405), answered with the headers alone, as a HEAD response
    must be (h11 refused the error's body with LocalProtocolError, out of ``receive``)."""
    server = H1Server(b"/dns-query", 4096, 10, 8192)
    wire = base64.urlsafe_b64encode(Q).rstrip(b"=")
    assert server.receive(b"HEAD /dns-query?dns=" + wire + b" HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /dns-query?dns=" + wire + b" HTTP/1.1\r\nHost: x\r\n\r\n") \
        == [(2, Q)]
    out = server.data_to_send()
    assert out.startswith(b"HTTP/1.1 405") and out.endswith(b"\r\n\r\n")
    assert server.errors == [405] and not server.closing
    server.respond(2, b"A" * 12)
    assert server.data_to_send().startswith(b"HTTP/1.1 200")


def test_http2_head_gets_its_status_without_a_body():
    """The same over HTTP/2: headers and an empty end of stream, which a client library
    (python-h2) takes; a 405 body there made it fail the connection (InvalidBodyLengthError)."""
    server, client = pair()
    client.send_headers(1, [(":method", "HEAD"), (":path", "/dns-query?dns=AAAB"),
                            (":scheme", "https"), (":authority", "dns.test")], end_stream=True)
    client.send_headers(3, [(":method", "GET"), (":path", "/elsewhere"),
                            (":scheme", "https"), (":authority", "dns.test")], end_stream=True)
    ready, events = exchange(server, client)
    assert ready == [] and server.errors == [405, 404]
    bodies: dict = {}
    for e in events:
        if isinstance(e, h2.events.DataReceived):
            bodies[e.stream_id] = bodies.get(e.stream_id, b"") + e.data
    assert bodies.get(1, b"") == b"" and bodies[3].startswith(b"404")
    assert sorted(_statuses(events)) == [b"404", b"405"]


def test_get_with_the_query_in_the_path_and_bad_requests_get_their_status():
    server, client = pair()
    wire = base64.urlsafe_b64encode(Q).rstrip(b"=").decode()
    client.send_headers(1, [(":method", "GET"), (":path", f"/dns-query?dns={wire}"),
                            (":scheme", "https"), (":authority", "dns.test")], end_stream=True)
    client.send_headers(3, [(":method", "GET"), (":path", "/elsewhere?dns=" + wire),
                            (":scheme", "https"), (":authority", "dns.test")], end_stream=True)
    client.send_headers(5, [(":method", "PUT"), (":path", "/dns-query"),
                            (":scheme", "https"), (":authority", "dns.test")], end_stream=True)
    client.send_headers(7, headers()[:4] + [("content-type", "text/plain")])
    client.send_data(7, Q, end_stream=True)
    ready, events = exchange(server, client)
    assert ready == [(1, Q)]
    assert sorted(_statuses(events)) == [b"404", b"405", b"415"]
    assert sorted(server.errors) == [404, 405, 415]


def test_a_stream_reset_before_its_answer_gets_none_and_costs_nothing_later():
    server, client = pair()
    client.send_headers(1, headers())
    client.send_data(1, Q, end_stream=True)
    assert exchange(server, client)[0] == [(1, Q)]
    client.reset_stream(1)
    server.receive(client.data_to_send())
    assert not server.busy
    assert server.respond(1, b"A" * 12) is None and server.data_to_send() == b""


def _feed_whole_frames_out(server, pieces) -> None:
    """Feeds ``pieces`` to ``server`` one read each (until it ends the connection),
    answering each query it gives with the query itself, and checks that what it sent is
    whole frames: a client can read every one of them."""
    out = server.data_to_send()
    for piece in pieces:
        if not piece:
            continue
        for sid, q in server.receive(piece):
            assert len(q) >= 12 and sid % 2 == 1     # a query (query_of), on a client stream
            server.respond(sid, q)
        out += server.data_to_send()
        if server.closing and not server.busy:
            break
    at = 0
    while at + 9 <= len(out):
        at += 9 + int.from_bytes(out[at:at + 3], "big")
    assert at == len(out)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_any_bytes_after_the_preface_end_in_answers_or_goaway_never_an_exception(chunks):
    server = H2Server(b"/dns-query", 4096, 100, 1000, 8192)
    server.receive(H2_PREFACE)
    _feed_whole_frames_out(server, chunks)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([":method", ":path", "content-type",
                                           "content-length", "x-other"]),
                          st.text(max_size=40)), max_size=8),
       st.binary(max_size=300), st.booleans())
def test_any_request_gets_a_query_out_or_a_status_back(extra, body, end_in_headers):
    server, client = pair(max_size=256)
    try:
        client.send_headers(1, headers() + extra, end_stream=end_in_headers and not body)
        if body or not end_in_headers:
            client.send_data(1, body, end_stream=True)
    except h2.exceptions.ProtocolError:
        return                                  # h2 will not send it: nothing to check
    ready = server.receive(client.data_to_send())
    events = client.receive_data(server.data_to_send())
    answered = _statuses(events)
    reset = [e for e in events if isinstance(e, h2.events.StreamReset)]
    assert len(ready) + len(answered) + len(reset) >= 1, events
    for sid, q in ready:
        assert len(q) <= 256 and not q[2] & 0x80


_frame = st.tuples(st.integers(0, 10), st.integers(0, 255), st.integers(0, 9),
                   st.binary(max_size=64))


@settings(max_examples=400, deadline=None)
@given(st.lists(_frame, max_size=12))
def test_any_frames_after_a_good_start_end_in_answers_or_goaway_never_an_exception(frames):
    """Frames of any type, flags, stream and payload after a client's preface and SETTINGS
    (what the byte-level test rarely gets past)."""
    server, _ = pair()
    _feed_whole_frames_out(server, [len(payload).to_bytes(3, "big") + bytes([kind, flags])
                                    + stream.to_bytes(4, "big") + payload
                                    for kind, flags, stream, payload in frames])


# ---- abuse: HPACK work, resets before the answer, an error's GOAWAY

def _hpack_int(n: int, prefix: int, first: int) -> bytes:
    """RFC 7541 5.1: ``n`` on a ``prefix``-bit prefix, the first byte's high bits ``first``."""
    top = (1 << prefix) - 1
    if n < top:
        return bytes([first | n])
    out = [first | top]
    n -= top
    while n >= 128:
        out.append(0x80 | n % 128)
        n //= 128
    return bytes(out + [n])


def _headers_frame(sid: int, block: bytes) -> bytes:
    """A HEADERS frame, END_HEADERS and END_STREAM, written by hand (no client encoder)."""
    return (len(block).to_bytes(3, "big") + b"\x01\x05" + sid.to_bytes(4, "big") + block)


def _bomb_pair(max_fields=64, max_fields_total=100000):
    server = H2Server(b"/dns-query", 4096, 100, 1000, 8192, max_fields, max_fields_total)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    server.receive(client.data_to_send())
    client.receive_data(server.data_to_send())
    server.receive(client.data_to_send())
    return server, client


# :method GET, :scheme https, :path / (static table), then x-big: 4000 bytes, indexed (62)
_BIG_ENTRY = (b"\x82\x87\x84" + b"\x40" + _hpack_int(5, 7, 0) + b"x-big"
              + _hpack_int(4000, 7, 0) + b"a" * 4000)


def test_an_hpack_bomb_ends_the_connection_at_the_first_block_past_the_field_budget():
    """A 4 KB table entry, then a block of 16,000 one-byte references to it: decoding stops
    at the 65th field and the connection ends with GOAWAY, ENHANCE_YOUR_CALM; more blocks
    after it are not decoded at all."""
    server, client = _bomb_pair()
    server.receive(_headers_frame(1, _BIG_ENTRY))
    assert not server.calmed
    bomb = b"\x82\x87\x84" + b"\xbe" * 16000
    assert server.receive(_headers_frame(3, bomb) + _headers_frame(5, bomb)) == []
    assert server.calmed and server.closing and not server.busy
    events = client.receive_data(server.data_to_send())
    ended = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    assert ended and ended[0].error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert server.receive(_headers_frame(7, bomb)) == []


def test_hpack_work_is_bounded_per_connection_however_it_is_spread():
    """Blocks each under the per-block budget but of 53 fields, past what their requests
    need (16 each) by the connection's allowance in all: GOAWAY, after about
    1000 / (53 - 16) requests."""
    server, client = _bomb_pair(max_fields=64, max_fields_total=1000)
    server.receive(_headers_frame(1, _BIG_ENTRY))
    sid = 3
    while not server.calmed and sid < 200:
        server.receive(_headers_frame(sid, b"\x82\x87\x84" + b"\xbe" * 50))
        sid += 2
    assert server.calmed and sid <= 3 + 2 * (1000 // (53 - 16) + 2)
    events = client.receive_data(server.data_to_send())
    assert any(isinstance(e, h2.events.ConnectionTerminated)
               and e.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM for e in events)


def test_a_long_connection_of_ordinary_requests_never_reaches_the_hpack_allowance():
    """A load generator's connection: thousands of requests of a DoH request's few fields
    each, far more fields in all than the connection's allowance: all served, no GOAWAY."""
    server, client = _bomb_pair(max_fields=64, max_fields_total=100)
    served = 0
    for sid in range(1, 2 * 600, 2):
        client.send_headers(sid, headers())
        client.send_data(sid, Q, end_stream=True)
        got = exchange(server, client)[0]
        served += len(got)
        for stream_id, q in got:
            server.respond(stream_id, q)
        client.receive_data(server.data_to_send())
    assert served == 600 and not server.calmed


def test_a_request_under_the_field_budget_is_served():
    server, client = _bomb_pair(max_fields=8)
    client.send_headers(1, headers())
    client.send_data(1, Q, end_stream=True)
    assert exchange(server, client)[0] == [(1, Q)] and not server.calmed


def test_a_stream_reset_before_its_answer_gets_none_and_is_counted():
    server, client = pair()
    client.send_headers(1, headers())
    client.send_data(1, Q, end_stream=True)
    assert exchange(server, client)[0] == [(1, Q)]
    client.reset_stream(1)
    server.receive(client.data_to_send())
    assert server.cancelled == 1
    assert server.respond(1, Q) is None
    assert server.data_to_send() == b""
    client.send_headers(3, headers())
    client.send_data(3, Q, end_stream=True)
    assert exchange(server, client)[0] == [(3, Q)]
    assert server.respond(3, Q) == []
    assert b"" != server.data_to_send()


def test_after_an_errors_goaway_is_out_the_engine_is_done():
    """A protocol error (DATA on stream 0): GOAWAY queued; once it is sent the connection
    is over (closing, nothing owed), not left open until the idle timeout."""
    server, client = pair()
    server.receive(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"x")
    out = server.data_to_send()
    events = client.receive_data(out)
    assert any(isinstance(e, h2.events.ConnectionTerminated)
               and e.error_code == h2.errors.ErrorCodes.PROTOCOL_ERROR for e in events)
    assert server.closing and not server.busy


def test_http2_buffered_bytes_are_the_bodies_read_and_the_answers_not_yet_out():
    """What a connection holds for its client (``mem.http.query_buffer`` and
    ``.response_buffer``): a request body as it comes, until the query is handed out; an
    answer's body until the client's window lets it all out."""
    server, client = pair()
    client.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10})
    client.send_headers(1, headers())
    client.send_data(1, Q[:7])
    assert exchange(server, client)[0] == []
    assert server.buffered() == (7, 0)
    client.send_headers(3, headers())
    client.send_data(3, Q[:5])
    exchange(server, client)
    assert server.buffered() == (12, 0)
    client.send_data(1, Q[7:], end_stream=True)
    assert server.receive(client.data_to_send()) == [(1, Q)]
    assert server.buffered() == (5, 0)              # stream 1's query is out of the engine
    answer = bytes(100)
    server.respond(1, answer)
    assert server.buffered() == (5, 100)
    client.receive_data(server.data_to_send())      # the window lets 10 bytes out
    assert server.buffered() == (5, 90)
    client.reset_stream(3)
    server.receive(client.data_to_send())
    assert server.buffered() == (0, 90)


def test_http11_buffered_bytes_are_the_body_read_and_the_responses_not_taken():
    server = H1Server(b"/dns-query", 4096, 10, 8192)
    head = (b"POST /dns-query HTTP/1.1\r\nHost: x\r\nContent-Type: application/dns-message\r\n"
            b"Content-Length: %d\r\n\r\n" % len(Q))
    assert server.receive(head + Q[:9]) == []
    assert server.buffered() == (9, 0)
    pipelined = head + Q
    assert server.receive(Q[9:] + pipelined) == [(1, Q)]
    assert server.buffered() == (len(pipelined), 0)   # read once the first is answered
    assert server.respond(1, b"A" * 12) == [(2, Q)]
    queued = server.buffered()
    out = server.data_to_send()
    assert queued == (0, len(out)) and out.endswith(b"A" * 12)
    assert server.buffered() == (0, 0)
