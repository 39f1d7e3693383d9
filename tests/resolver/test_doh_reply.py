"""A DoH session asks the front door itself (``DoorLink``), and the door's reply writes
into the session: over HTTP/2 (an h2 client) and HTTP/1.1 (raw pipelined requests), with
no listener in between; the connection is only told that an answer is in."""
from __future__ import annotations

import types

import dns.message
import dns.rrset
import h2.config
import h2.connection
import h2.events

from resolver.daemon.admission import ALLOWED_ACL
from resolver.daemon.doh import H1Server
from resolver.daemon.doh_reply import DoorLink
from resolver.daemon.h2_server import H2Server

Q = dns.message.make_query("www.example.com.", "A", id=0).to_wire()


def answer_of(q: bytes, ttl: int) -> bytes:
    m = dns.message.make_response(dns.message.from_wire(q))
    m.answer.append(dns.rrset.from_text("www.example.com.", ttl, "IN", "A", "192.0.2.1"))
    return m.to_wire()


class Door:
    """Answers at once (``ttl`` set) or keeps the reply for the test (``kept``)."""

    def __init__(self, ttl: int | None = 300) -> None:
        self.ttl = ttl
        self.asked: list[tuple[bytes, int]] = []
        self.kept: list = []

    def handle(self, q, who, reply, t0=None):
        self.asked.append((q, who))
        if self.ttl is None:
            self.kept.append(reply)
        else:
            reply.answer(answer_of(q, self.ttl))
        return 0


def link_to(door):
    """A DoorLink to ``door`` over a stand-in connection that records each answer's turn."""
    conn = types.SimpleNamespace(who=ALLOWED_ACL, peer=("192.0.2.7", 443), inflight=0,
                                 last=0.0, closed=False,
                                 server=types.SimpleNamespace(
                                     loop=types.SimpleNamespace(time=lambda: 5.0)))
    conn.turns = []
    conn.answered = lambda: conn.turns.append(conn.inflight)
    counts: dict[str, int] = {}
    return DoorLink(door, "https", conn, counts), conn, counts


def h2_pair(link):
    server = H2Server(b"/dns-query", 4096, 100, 1000, 8192, link=link)
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    assert server.receive(client.data_to_send()) == []
    client.receive_data(server.data_to_send())
    return server, client


def post(client, sid: int) -> None:
    client.send_headers(sid, [(":method", "POST"), (":path", "/dns-query"),
                              (":scheme", "https"), (":authority", "dns.test"),
                              ("content-type", "application/dns-message")])
    client.send_data(sid, Q, end_stream=True)


def responses(client, server) -> dict[int, tuple[dict, bytes]]:
    got: dict[int, tuple[dict, bytes]] = {}
    for e in client.receive_data(server.data_to_send()):
        if isinstance(e, h2.events.ResponseReceived):
            got[e.stream_id] = (dict(e.headers), b"")
        elif isinstance(e, h2.events.DataReceived):
            got[e.stream_id] = (got[e.stream_id][0], got[e.stream_id][1] + e.data)
    return got


def test_an_http2_request_goes_to_the_door_and_its_answer_into_the_stream():
    door = Door(ttl=120)
    link, conn, counts = link_to(door)
    server, client = h2_pair(link)
    post(client, 1)
    post(client, 3)
    assert server.receive(client.data_to_send()) == []     # asked, not handed out
    assert door.asked == [(Q, ALLOWED_ACL), (Q, ALLOWED_ACL)]
    assert conn.turns == [0, 0] and conn.last == 5.0
    got = responses(client, server)
    assert sorted(got) == [1, 3]
    head, body = got[1]
    assert head[b":status"] == b"200" and head[b"cache-control"] == b"max-age=120"
    assert head[b"content-type"] == b"application/dns-message"
    assert b"server" not in head       # hide-http-user-agent: yes (import-unbound's FIXED)
    assert body == answer_of(Q, 120)
    assert counts == {"requests": 2, "status_200": 2} and link.asked == 2


def test_later_answers_and_a_reset_stream():
    door = Door(ttl=None)
    link, conn, counts = link_to(door)
    server, client = h2_pair(link)
    for sid in (1, 3, 5):
        post(client, sid)
    server.receive(client.data_to_send())
    assert conn.inflight == 3 and conn.turns == []
    one, three, five = door.kept
    assert one.addr == ("192.0.2.7", 443) and one.label == "https"
    one.answer(answer_of(Q, 60))                    # a resolution's answer, later
    assert conn.turns == [2]
    client.reset_stream(5)
    server.receive(client.data_to_send())           # stream 5 stops waiting
    assert conn.inflight == 1 and counts["cancelled"] == 1
    five.answer(answer_of(Q, 60))                   # nothing: it was reset
    got = responses(client, server)
    assert got[1][0][b"cache-control"] == b"max-age=60" and 3 not in got and 5 not in got
    three.answer(dns.message.make_response(dns.message.from_wire(Q)).to_wire())
    assert conn.inflight == 0 and counts["status_200"] == 2 and conn.turns == [2, 0]
    got = responses(client, server)
    assert list(got) == [3] and got[3][0][b"cache-control"] == b"max-age=0"   # no record


def test_http11_pipelined_requests_go_to_the_door_in_order():
    door = Door(ttl=None)
    link, conn, counts = link_to(door)
    server = H1Server(b"/dns-query", 4096, 3, 8192, link)
    req = (b"POST /dns-query HTTP/1.1\r\nHost: x\r\nContent-Type: application/dns-message\r\n"
           b"Content-Length: %d\r\n\r\n" % len(Q)) + Q
    assert server.receive(req * 3) == []
    assert len(door.kept) == 1                      # one at a time
    door.ttl = 30                                   # the next ones are answered at once
    door.kept[0].answer(answer_of(Q, 90))           # answers 1, which asks 2 and 3
    assert len(door.asked) == 3 and conn.inflight == 0
    out = server.data_to_send()
    assert out.count(b"HTTP/1.1 200") == 3
    assert out.index(b"max-age=90") < out.index(b"max-age=30")
    assert counts == {"requests": 3, "status_200": 3} and server.closing
