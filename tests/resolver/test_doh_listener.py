"""The DoH listener at the socket boundary, with a recording transport (a timing would be
the machine's, not the listener's).

It acknowledges at once a read that completed no request (a POST's HEADERS before its
DATA): clients that write the two apart with Nagle's algorithm on would otherwise wait for
Linux's delayed acknowledgement, 40 ms per query. The answers one read makes leave in one
write, each answer a piece of its own (on TLS, its own record). Every query ends in an
answer on its stream or in its stream's reset."""
from __future__ import annotations

import socket
import time
import types

import dns.message
import dns.rcode
import h2.config
import h2.connection
import h2.events
import pytest

from resolver.daemon.admission import ALLOWED_ACL, OUTSIDE_ACL, FrontDoor
from resolver.daemon.config import build
from resolver.daemon.doh_listener import Guard, HTTPConnection
from resolver.limits import DEFAULT
from resolver.response import error
from resolver.wire.codec import parse_response


class RecordingSocket:
    def __init__(self) -> None:
        self.options: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, name: int, value: int) -> None:
        self.options.append((level, name, value))


class RecordingTransport:
    def __init__(self) -> None:
        self.sock = RecordingSocket()
        self.sent = bytearray()
        self.writes: list[list[bytes]] = []

    def get_extra_info(self, name, default=None):
        return self.sock if name == "socket" else default

    def write(self, data: bytes) -> None:
        self.writes.append([data])
        self.sent += data

    def writelines(self, chunks) -> None:
        self.writes.append(list(chunks))
        for data in chunks:
            self.sent += data

    def is_closing(self) -> bool:
        return False


def _connection(cached: bytes | None = None, front=None, http2: bool = True):
    """A connection whose server's front door answers from ``cached`` (REFUSED to a client
    outside the ACL, as this one is unless the test says otherwise); ``answers`` records
    each answer with the client's address the connection handed on and whether it was a
    hit. ``front``: a front door of the test's instead. ``http2``: the session ALPN chose
    (else HTTP/1.1)."""
    answers = []

    def handle(q, who, reply, t0=None):
        hit = who != OUTSIDE_ACL and cached is not None
        out = cached if hit else error(q, 5)
        answers.append((out, (reply.addr[0] if reply.addr else None, hit)))
        reply.answer(out)
        return 0

    server = types.SimpleNamespace(
        cfg=types.SimpleNamespace(http_endpoint="/dns-query", tcp_max_query=65535),
        resolver=types.SimpleNamespace(limits=DEFAULT),
        loop=types.SimpleNamespace(time=lambda: 0.0),
        front=front or types.SimpleNamespace(handle=handle))
    counts: dict[str, int] = {}
    listener = types.SimpleNamespace(label="https", counts=counts, guard=Guard(counts, DEFAULT))
    conn = HTTPConnection(server, listener)
    conn.transport = RecordingTransport()     # as connection_made leaves it, allowed False
    conn._start(http2)
    return conn, answers


QUICKACK = (socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)


def _client_with_a_post_head():
    """An HTTP/2 client that has written its preface and a DoH POST's HEADERS (stream 1),
    and the query its DATA is to carry."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    q = dns.message.make_query("www.example.com.", "A").to_wire()
    client.send_headers(1, [(":method", "POST"), (":path", "/dns-query"), (":scheme", "https"),
                            (":authority", "dns.test"),
                            ("content-type", "application/dns-message"),
                            ("content-length", str(len(q)))])
    return client, q


def test_a_post_head_without_its_body_is_acknowledged_at_once():
    conn, answers = _connection()
    client, q = _client_with_a_post_head()
    conn.data_received(client.data_to_send())      # preface, SETTINGS, HEADERS: no request
    assert conn.transport.sock.options == [QUICKACK]
    assert answers == []
    client.send_data(1, q, end_stream=True)
    conn.data_received(client.data_to_send())      # the body: a whole request, answered
    assert len(answers) == 1                       # (REFUSED: the test's client is not allowed)
    assert conn.transport.sock.options == [QUICKACK]


def test_a_whole_request_in_one_read_needs_no_early_acknowledgement():
    conn, answers = _connection()
    client, q = _client_with_a_post_head()
    client.send_data(1, q, end_stream=True)
    conn.data_received(client.data_to_send())
    assert len(answers) == 1
    assert conn.transport.sock.options == []


def test_the_answers_of_one_read_leave_in_one_write_one_piece_each():
    conn, answers = _connection()
    client, q = _client_with_a_post_head()
    client.send_data(1, q, end_stream=True)
    conn.data_received(client.data_to_send())          # the connection's start, one answer
    client.receive_data(bytes(conn.transport.sent))
    conn.transport.writes.clear()
    for sid in (3, 5, 7):
        client.send_headers(sid, [(":method", "POST"), (":path", "/dns-query"),
                                  (":scheme", "https"), (":authority", "dns.test"),
                                  ("content-type", "application/dns-message")])
        client.send_data(sid, q, end_stream=True)
    conn.data_received(client.data_to_send())
    assert len(answers) == 4
    [pieces] = conn.transport.writes
    ended = []
    for piece in pieces[:3]:
        events = client.receive_data(piece)
        ended += [e.stream_id for e in events if isinstance(e, h2.events.StreamEnded)]
    assert ended == [3, 5, 7]                      # one whole answer in each piece


def test_a_cache_hit_reaches_the_query_log_with_the_clients_address():
    conn, answers = _connection(cached=b"\x00" * 12)
    conn.who, conn.peer = ALLOWED_ACL, ("192.0.2.7", 5300)
    client, q = _client_with_a_post_head()
    client.send_data(1, q, end_stream=True)
    conn.data_received(client.data_to_send())
    assert answers == [(b"\x00" * 12, ("192.0.2.7", True))]


@pytest.mark.parametrize("http2", [True, False], ids=["http2", "http1.1"])
def test_a_lost_connection_is_freed_by_reference_counting_alone(http2):
    """Once lost, a connection and its session no longer hold each other (through the
    session's tie to the front door): reference counting frees them at once. A cycle there
    left each connection, its HTTP session and its TLS buffers to the cycle collector's
    rare full passes: tens of MiB of RSS under a stream of short DoH connections."""
    import gc
    import weakref

    conn, answers = _connection(http2=http2)
    conn.server.forget_connection = lambda c: None
    client, q = _client_with_a_post_head()
    if http2:
        client.send_data(1, q, end_stream=True)
        conn.data_received(client.data_to_send())
    else:
        conn.data_received(b"POST /dns-query HTTP/1.1\r\nHost: dns.test\r\n"
                           b"Content-Type: application/dns-message\r\n"
                           b"Content-Length: %d\r\n\r\n" % len(q) + q)
    assert len(answers) == 1
    conn.connection_lost(None)
    gone = weakref.ref(conn)
    gc.disable()
    try:
        del conn
        assert gone() is None
    finally:
        gc.enable()


def test_one_read_feeds_http2_a_bounded_share_the_rest_on_the_next_turn():
    """300 KiB in one read (a request behind 288 KiB of frames HTTP/2 ignores): 64 KiB go to HTTP/2 now,
    the connection stops being read, the rest follows one loop turn at a time, in order."""
    conn, answers = _connection()
    soon = []
    conn.server.loop.call_soon = soon.append
    paused = []
    conn.transport.pause_reading = lambda: paused.append(True)
    conn.transport.resume_reading = lambda: paused.append(False)
    client, q = _client_with_a_post_head()
    client.send_data(1, q, end_stream=True)
    conn.data_received(client.data_to_send())
    assert len(answers) == 1
    # frames of an unknown type, which HTTP/2 ignores (RFC 9113 4.1): 16 KiB each
    filler = (16384).to_bytes(3, "big") + b"\xb0\x00" + b"\x00" * 4 + b"\x00" * 16384
    client.send_headers(3, [(":method", "POST"), (":path", "/dns-query"),
                            (":scheme", "https"), (":authority", "dns.test"),
                            ("content-type", "application/dns-message")])
    client.send_data(3, q, end_stream=True)
    data = filler * 18 + client.data_to_send()
    conn.data_received(data)
    assert len(answers) == 1 and paused == [True] and len(soon) == 1
    turns = 0
    while soon:
        soon.pop()()
        turns += 1
    most = DEFAULT.doh_max_bytes_per_read
    assert turns == (len(data) + most - 1) // most - 1
    assert len(answers) == 2 and paused[-1] is False


def test_a_protocol_errors_goaway_closes_and_an_unread_close_is_aborted_in_time():
    """DATA on stream 0: GOAWAY written, the transport closed at once (not at the idle
    timeout); if the peer does not take what is buffered within doh_write_timeout, the
    connection is aborted and counted."""
    conn, _ = _connection()
    conn.client = "192.0.2.7"
    later = []
    conn.server.loop.call_later = lambda delay, fn, *args: later.append((delay, fn, args))
    ended = []
    conn.transport.close = lambda: ended.append("close")
    conn.transport.abort = lambda: ended.append("abort")
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    conn.data_received(client.data_to_send() + b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")
    events = client.receive_data(bytes(conn.transport.sent))
    assert any(isinstance(e, h2.events.ConnectionTerminated) for e in events)
    assert ended == ["close"]
    [(delay, fn, args)] = later
    assert delay == DEFAULT.doh_write_timeout
    fn(*args)
    assert ended == ["close", "abort"]
    assert conn.listener.counts["close_stalled"] == 1
    # one connection ended for abuse: counted as a protocol error, one strike, not two
    assert conn.listener.counts["protocol_error"] == 1
    throttle, now = conn.listener.guard.throttle, time.monotonic()
    assert len(throttle) == 1
    for _ in range(DEFAULT.doh_throttle_strikes - 1):
        assert not throttle.strike("192.0.2.7", now)
    assert throttle.strike("192.0.2.7", now)       # the strike past the allowance


def test_a_throttled_address_is_refused_on_plain_http_before_anything_is_read():
    """``http-listen``: a connection from an address past its strikes is aborted as it is
    made, counted, before the caps or the ACL are asked; another address is not."""
    counts: dict[str, int] = {}
    guard = Guard(counts, DEFAULT.replace(doh_throttle_strikes=1))
    guard.defended("192.0.2.9", "hpack_budget", True)
    guard.defended("192.0.2.9", "protocol_error", True)       # past one: throttled
    admitted = []
    server = types.SimpleNamespace(admit=lambda conn: admitted.append(conn.client) or False)
    listener = types.SimpleNamespace(label="http", counts=counts, guard=guard)

    def made(peer):
        aborted = []
        transport = types.SimpleNamespace(
            get_extra_info=lambda name, default=None: peer if name == "peername" else default,
            abort=lambda: aborted.append(True))
        conn = HTTPConnection(server, listener)
        conn.connection_made(transport)
        return conn, aborted

    conn, aborted = made(("192.0.2.9", 4000))
    assert aborted == [True] and conn.closed and admitted == []
    assert counts["throttled"] == 1 and counts["hpack_budget"] == 1
    conn, aborted = made(("192.0.2.10", 4000))
    assert admitted == ["192.0.2.10"]          # asked the caps (which refused it here)
    assert counts["throttled"] == 1


class _Miss:
    """A miss in flight, as the engine's Drive: answered by ``finish``, ended by ``cancel``
    (then its done gets no response)."""
    finished = False

    def __init__(self, done, q: bytes) -> None:
        self.done = done
        m = parse_response(q)
        self.miss = (m, m.edns, False, False)

    def finish(self, out: bytes) -> None:
        self.finished = True
        self.done(self, out)

    def cancel(self) -> None:
        if not self.finished:
            self.finished = True
            self.done(self, None)


def _door_connection(**cfg):
    """A connection to a real front door whose engine keeps every miss (``engine``)."""
    misses: list[_Miss] = []
    engine = types.SimpleNamespace(
        start_miss=lambda q, done, loop, absent=None, client=None:
        misses.append(_Miss(done, q)) or misses[-1])
    door = FrontDoor({}, engine, cfg=build(None, {"listen": ["127.0.0.1:5300"], **cfg}))
    conn, _ = _connection(front=door)
    conn.who, conn.peer = ALLOWED_ACL, ("192.0.2.7", 5300)
    return conn, door, misses


def _ask(client, conn, sid: int, name: str) -> None:
    client.send_headers(sid, [(":method", "POST"), (":path", "/dns-query"),
                              (":scheme", "https"), (":authority", "dns.test"),
                              ("content-type", "application/dns-message")])
    client.send_data(sid, dns.message.make_query(name, "A").to_wire(), end_stream=True)
    conn.data_received(client.data_to_send())


def _answers(client, conn) -> dict[int, int]:
    """stream -> the rcode of the DNS answer it got, from what the connection wrote."""
    got: dict[int, bytes] = {}
    for e in client.receive_data(bytes(conn.transport.sent)):
        if isinstance(e, h2.events.DataReceived):
            got[e.stream_id] = got.get(e.stream_id, b"") + e.data
    conn.transport.sent.clear()
    return {sid: dns.message.from_wire(body).rcode() for sid, body in got.items()}


def test_a_miss_the_door_gives_up_is_answered_servfail_and_a_reset_one_not_at_all():
    """The door ends every query in its reply: a miss jostled out for a newer one is
    answered SERVFAIL on its stream (not left hanging), and a stream the client resets
    stops waiting for its miss, which is cancelled, with no answer and one count."""
    conn, door, misses = _door_connection(max_inflight=1, jostle_timeout=0.001,
                                          ip_ratelimit=0)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    _ask(client, conn, 1, "one.example.")
    assert len(misses) == 1 and _answers(client, conn) == {}
    time.sleep(0.01)
    _ask(client, conn, 3, "three.example.")              # jostles stream 1's miss out
    assert misses[0].finished and len(misses) == 2
    assert _answers(client, conn) == {1: dns.rcode.SERVFAIL}
    assert door.counters.dropped == {"jostled": 1} and conn.inflight == 1
    client.reset_stream(3)
    conn.data_received(client.data_to_send())
    assert misses[1].finished                              # cancelled with its stream
    assert _answers(client, conn) == {} and conn.inflight == 0
    assert conn.listener.counts["cancelled"] == 1
    assert door.misses == {} and door.inflight_by_client == {}
