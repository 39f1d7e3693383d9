"""The sans-IO HTTP/2 session (`corenet.https._h2.H2Session`, on nghttp2) against the `h2`
package's server side, in memory: flow control both ways, and the per-frame bounds."""
from __future__ import annotations

import h2.config
import h2.connection
import h2.events
import pytest

from corenet.https._h2 import CLOSED, DATA, END, HEAD, H2Error, H2Session

REQUEST = [(b":method", b"GET"), (b":scheme", b"https"), (b":authority", b"x"),
           (b":path", b"/")]


def session(**kw) -> H2Session:
    args = dict(max_header_bytes=65536, max_header_count=256, max_interim=10,
                max_continuations=8, max_settings=32, max_control_frames=1000,
                control_frames_per_request=10, header_table_size=4096,
                stream_window=1000, connection_window=1 << 20)
    args.update(kw)
    return H2Session(**args)


def pair(**kw):
    client = session(**kw)
    server = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None))
    server.initiate_connection()
    server.receive_data(client.data_to_send())
    client.receive(server.data_to_send())
    server.receive_data(client.data_to_send())  # the ACK of the server's SETTINGS
    return client, server


def test_response_window_reopens_only_as_the_caller_consumes():
    client, server = pair()
    sid = client.request(REQUEST, False)
    server.receive_data(client.data_to_send())
    server.send_headers(sid, [(b":status", b"200")])
    assert server.local_flow_control_window(sid) == 1000
    server.send_data(sid, b"a" * 1000)
    events = client.receive(server.data_to_send())
    assert [e[0] for e in events] == [HEAD, DATA]
    assert server.local_flow_control_window(sid) == 0
    # Nothing read yet: the server gets no window back however often we write.
    server.receive_data(client.data_to_send())
    assert server.local_flow_control_window(sid) == 0
    client.consume(sid, 1000)
    server.receive_data(client.data_to_send())
    assert server.local_flow_control_window(sid) == 1000
    server.send_data(sid, b"b" * 10, end_stream=True)
    events = client.receive(server.data_to_send())
    assert events == [(DATA, sid, b"b" * 10), (END, sid, None), (CLOSED, sid, 0, None)]


def test_request_body_is_sent_as_the_servers_window_allows():
    client, server = pair()
    sid = client.request([(b":method", b"POST")] + REQUEST[1:], True)
    client.send_body(sid, b"x" * 100_000, True)
    got = 0
    for ev in server.receive_data(client.data_to_send()):
        if isinstance(ev, h2.events.DataReceived):
            got += len(ev.data)
    assert got == 65535  # the RFC's initial window, no more
    assert client.unsent(sid) == 100_000 - 65535
    server.increment_flow_control_window(100_000)
    server.increment_flow_control_window(100_000, stream_id=sid)
    client.receive(server.data_to_send())
    ended = False
    for ev in server.receive_data(client.data_to_send()):
        if isinstance(ev, h2.events.DataReceived):
            got += len(ev.data)
        ended = ended or isinstance(ev, h2.events.StreamEnded)
    assert got == 100_000 and ended and client.unsent(sid) == 0


def test_a_body_given_in_pieces_waits_for_the_next_piece():
    client, server = pair()
    sid = client.request([(b":method", b"POST")] + REQUEST[1:], True)
    client.send_body(sid, b"one", False)
    evs = server.receive_data(client.data_to_send())
    assert [type(e) for e in evs if not isinstance(e, h2.events.RequestReceived)] == \
        [h2.events.DataReceived]
    client.send_body(sid, b"two", True)
    evs = server.receive_data(client.data_to_send())
    assert [e.data for e in evs if isinstance(e, h2.events.DataReceived)] == [b"two"]
    assert any(isinstance(e, h2.events.StreamEnded) for e in evs)


def test_settings_with_too_many_entries_end_the_session():
    client, server = pair(max_settings=8)
    payload = (bytes((0, 1)) + (4096).to_bytes(4, "big")) * 12  # 12 entries, one frame
    frame = len(payload).to_bytes(3, "big") + bytes((4, 0)) + (0).to_bytes(4, "big") + payload
    assert client.alive
    client.receive(frame)
    client.data_to_send()
    assert not client.alive  # the connection is over (H2Connection closes it)


def test_ping_flood_past_the_limit_raises():
    # The server's first SETTINGS counts too: it and five PINGs are within six.
    client, server = pair(max_control_frames=6, control_frames_per_request=0)
    ping = (8).to_bytes(3, "big") + bytes((6, 0)) + (0).to_bytes(4, "big") + b"12345678"
    client.receive(ping * 5)
    with pytest.raises(H2Error, match="h2_max_control_frames"):
        client.receive(ping)


def _data_frame(sid: int, payload: bytes, flags: int = 0) -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((0, flags)) + sid.to_bytes(4, "big") + \
        payload


def test_small_data_frames_come_gathered_in_one_event():
    client, server = pair(stream_window=1 << 20)
    sid = client.request(REQUEST, False)
    server.receive_data(client.data_to_send())
    server.send_headers(sid, [(b":status", b"200")])
    client.receive(server.data_to_send())
    tiny = b"".join(_data_frame(sid, b"%d" % (i % 10)) for i in range(3000))
    events = client.receive(tiny)
    assert [e[0] for e in events] == [DATA]
    assert events[0][2] == b"0123456789" * 300
    # A large chunk is an event of its own, and the small ones after it go after it.
    events = client.receive(_data_frame(sid, b"a") + _data_frame(sid, b"B" * 5000)
                            + _data_frame(sid, b"c") + _data_frame(sid, b"d", 1))
    assert [(e[0], bytes(e[2])) for e in events if e[0] == DATA] == \
        [(DATA, b"a"), (DATA, b"B" * 5000), (DATA, b"cd")]
    assert type(events[1][2]) is bytes and [e[0] for e in events][-2:] == [END, CLOSED]
