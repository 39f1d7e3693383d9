"""HTTP/2 against scripted servers on the `h2` package: trailers, the server's stream limit,
GOAWAY and resets (requests the server did not process are sent again), and the hostile
cases: header bombs, CONTINUATION and control-frame floods, a window past 2^31-1, stalls."""
from __future__ import annotations

import asyncio
import ssl
import struct
import time

import h2.events
import h2.settings
import pytest

from corenet.https import (
    AsyncClient, Limits, ReadTimeout, RemoteProtocolError, Timeout, WriteTimeout,
)
from https_h2server import (
    CONTINUATION, DATA, END_HEADERS, END_STREAM, HEADERS, PING, SETTINGS, WINDOW_UPDATE,
    H2Server, answering, frame,
)
from https_rawserver import zeros_gzip


def client(pki, **kw) -> AsyncClient:
    return AsyncClient(verify=str(pki["ca"]), http2=True, **kw)


def serve_all(peer) -> None:
    """Answer every request with its path and body length, until the client leaves."""
    while True:
        evs = peer.events()
        if evs is None:
            return
        for ev in evs:
            if isinstance(ev, h2.events.StreamEnded):
                sid = ev.stream_id
                path = peer.heads[sid][b":path"]
                peer.respond(sid, b"%s %d" % (path, len(peer.bodies[sid])))


def test_trailers_are_given_with_the_response(pki, run):
    def handler(peer):
        [sid] = peer.requests(1)
        peer.respond(sid, b"body", end=False)
        peer.h2.send_headers(sid, [(b"x-checksum", b"abc")], end_stream=True)
        peer.flush()
        peer.drain()

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki) as c:
                return await c.get(srv.url("/t"))

        r = run(main())
    assert r.content == b"body" and r.http_version == "HTTP/2"
    assert r.extensions["trailers"]["x-checksum"] == "abc"


def test_requests_wait_for_the_servers_stream_limit(pki, run):
    seen = []

    def handler(peer):
        while True:
            sids = peer.requests(2)  # answers only with two requests in flight
            if len(sids) < 2:
                return
            seen.append(peer.h2.open_inbound_streams)
            for sid in sids:
                peer.respond(sid, b"%d" % sid)

    settings = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 2}
    with H2Server(pki, handler, settings) as srv:
        # The server answers in pairs: the first request goes with a partner.
        async def both():
            async with client(pki) as c:
                first = await asyncio.gather(c.get(srv.url()), c.get(srv.url()))
                rs = await asyncio.gather(*(c.get(srv.url()) for _ in range(10)))
                return first + rs, c.pool.connections_opened

        rs, opened = run(both())
        assert not srv.errors
    assert all(r.status_code == 200 for r in rs)
    assert opened == 1
    assert seen and max(seen) <= 2


def test_goaway_requests_not_processed_go_to_a_new_connection(pki, run):
    def handler(peer):
        if peer.index == 0:
            sids = peer.requests(3)
            first = min(sids)
            peer.respond(first, b"first")
            peer.h2.close_connection(last_stream_id=first)
            peer.flush()
            peer.drain()
        else:
            serve_all(peer)

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki) as c:
                rs = await asyncio.gather(*(c.get(srv.url(f"/{i}")) for i in range(3)))
                return rs, c.pool.connections_opened

        rs, opened = run(main())
    bodies = sorted(r.content for r in rs)
    assert b"first" in bodies and len(bodies) == 3
    assert all(r.status_code == 200 for r in rs)
    assert opened == 2


def test_rst_stream_fails_one_request_only(pki, run):
    def handler(peer):
        sids = peer.requests(2)
        peer.h2.reset_stream(min(sids), error_code=2)
        peer.respond(max(sids), b"fine")
        peer.drain()

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki) as c:
                return await asyncio.gather(c.get(srv.url("/a")), c.get(srv.url("/b")),
                                            return_exceptions=True)

        out = run(main())
    errors = [o for o in out if isinstance(o, Exception)]
    oks = [o for o in out if not isinstance(o, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], RemoteProtocolError)
    assert "reset the stream" in str(errors[0])
    assert oks[0].content == b"fine"


def test_refused_stream_is_sent_again(pki, run):
    refused = []

    def handler(peer):
        if not refused:
            [sid] = peer.requests(1)
            refused.append(sid)
            peer.h2.reset_stream(sid, error_code=7)  # REFUSED_STREAM
            peer.flush()
        serve_all(peer)

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki) as c:
                return await c.post(srv.url("/p"), content=b"abc")

        r = run(main())
    assert r.content == b"/p 3" and refused


def test_stream_ended_unanswered_is_sent_again_only_when_idempotent(pki, run):
    """A server shutting down ends the streams it will not serve with NO_ERROR and no
    response (as hypercorn does): a GET goes again on a new connection, a POST, which the
    server may have acted on, fails."""
    def handler(peer):
        if peer.index % 2 == 0:  # each client's first connection
            [sid] = peer.requests(1)
            peer.h2.reset_stream(sid, error_code=0)  # NO_ERROR, no response
            peer.h2.close_connection(last_stream_id=sid)
            peer.flush()
            peer.drain()
        else:
            serve_all(peer)

    with H2Server(pki, handler) as srv:
        async def main(method):
            async with client(pki) as c:
                try:
                    r = await c.request(method, srv.url("/u"), content=b"abc")
                except RemoteProtocolError as exc:
                    return exc, c.pool.connections_opened
                return r.content, c.pool.connections_opened

        put, put_opened = run(main("PUT"))
        post, post_opened = run(main("POST"))
    assert put == b"/u 3" and put_opened == 2
    assert isinstance(post, RemoteProtocolError) and "without a response" in str(post)
    assert post_opened == 1


def test_request_waiting_for_a_stream_moves_on_at_goaway(pki, run):
    """One stream at a time: the second request waits for the first one's. The server
    takes no more streams (SETTINGS_MAX_CONCURRENT_STREAMS 0), answers the first, then
    sends GOAWAY on the idle connection: the waiting request is woken and goes to a new
    connection at once, not after its pool timeout."""
    def handler(peer):
        if peer.index == 0:
            [warm] = peer.requests(1)
            peer.respond(warm, b"warm")
            [sid] = peer.requests(1)
            # Shutting down, as hypercorn does: no new streams, then GOAWAY once idle.
            peer.h2.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 0})
            peer.respond(sid, b"first")
            time.sleep(0.3)  # the client has the response and waits for a stream
            peer.h2.close_connection(last_stream_id=sid)
            peer.flush()
            peer.drain()
        else:
            serve_all(peer)

    settings = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
    with H2Server(pki, handler, settings) as srv:
        async def main():
            async with client(pki, timeout=5) as c:
                await c.get(srv.url("/warm"))  # the server's stream limit is known
                loop = asyncio.get_running_loop()
                started = loop.time()
                rs = await asyncio.gather(c.get(srv.url("/a")), c.get(srv.url("/b")))
                return rs, loop.time() - started, c.pool.connections_opened

        rs, took, opened = run(main())
    assert sorted(r.content for r in rs) == [b"/b 0", b"first"]
    assert opened == 2
    assert took < 4.0  # at the GOAWAY, not at the client's 5 s timeout


def test_post_body_larger_than_the_servers_window(pki, run):
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1000}
    with H2Server(pki, serve_all, settings) as srv:
        async def main():
            async with client(pki) as c:
                # First a GET: until the client has the server's SETTINGS it may send the
                # RFC's 65,535 bytes, which the h2 package counts against the new window.
                await c.get(srv.url("/"))
                a = await c.post(srv.url("/big"), content=b"z" * 3_000_000)

                async def gen():
                    for _ in range(20):
                        yield b"q" * 10_000

                b = await c.put(srv.url("/gen"), content=gen())
                return a, b

        a, b = run(main())
    assert a.content == b"/big 3000000"
    assert b.content == b"/gen 200000"


def slow_but_steady(peer):
    """Takes request bodies 16 KiB at a time (its window), one piece every 50 ms, and
    answers each request with the number of body bytes it got."""
    got: dict[int, int] = {}
    for data in peer.each_read():
        for ev in peer.h2.receive_data(data):
            if isinstance(ev, h2.events.DataReceived):
                got[ev.stream_id] = got.get(ev.stream_id, 0) + len(ev.data)
                time.sleep(0.05)
                peer.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                peer.h2.send_headers(ev.stream_id, [(b":status", b"200")])
                peer.h2.send_data(ev.stream_id, b"%d" % got.get(ev.stream_id, 0),
                                  end_stream=True)
        peer.flush()


def test_an_uploads_tail_is_under_the_write_timeout_as_in_httpx(pki, run):
    """200 KB go to a server taking 16 KiB every 50 ms (~0.7 s in all): the body's end,
    queued at once, is still being written after the read timeout (0.3 s); each wait in
    which the server takes some of it is a write, under the write timeout."""
    import httpx

    body = b"t" * 200_000
    settings = {h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 16384}
    with H2Server(pki, slow_but_steady, settings) as srv:
        async def main(make):
            async with make() as c:
                await c.get(srv.url("/"))  # the server's SETTINGS are known
                r = await c.post(srv.url("/up"), content=body)
                return r.status_code, r.content

        timeout = {"timeout": httpx.Timeout(5, read=0.3, write=0.3)}
        ours = run(main(lambda: AsyncClient(verify=str(pki["ca"]), http2=True,
                                            timeout=Timeout(5, read=0.3, write=0.3))))
        theirs = run(main(lambda: httpx.AsyncClient(
            verify=ssl.create_default_context(cafile=str(pki["ca"])), http2=True,
            **timeout)))
    assert ours == theirs == (200, b"200000")


def test_a_stalled_stream_is_a_timeout_not_a_hang(pki, run):
    def handler(peer):
        sids = peer.requests(2)
        peer.respond(max(sids), b"", end=False)  # a head, then nothing
        peer.drain()

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki, timeout=0.5) as c:
                return await asyncio.gather(c.get(srv.url("/a")), c.get(srv.url("/b")),
                                            return_exceptions=True)

        out = run(main())
    assert all(isinstance(o, ReadTimeout) for o in out)


def test_a_bomb_read_whole_is_decoded_as_it_comes(pki, run):
    """Half of a gzip bomb, then nothing: the body limit is found in what came, not after
    an end of stream that never comes (a ReadTimeout)."""
    body = zeros_gzip(64)
    half = body[:len(body) // 2]

    def handler(peer):
        [sid] = peer.requests(1)
        peer.respond(sid, b"", headers=[(b"content-encoding", b"gzip")], end=False)
        for i in range(0, len(half), 16384):
            peer.h2.send_data(sid, half[i:i + 16384])
        peer.flush()
        peer.drain()

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki, limits=Limits(max_body_bytes=8 << 20), timeout=10) as c:
                return await c.get(srv.url("/bomb"))

        with pytest.raises(RemoteProtocolError, match=f"decoded response body exceeds {8 << 20}"):
            run(main(), 30)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_content_length_over_the_limit_fails_at_the_head(pki, run, streamed):
    """A head promising 48 MiB, 1,000 bytes, then nothing: a client that judged the limit
    only by what came would wait for the rest (a ReadTimeout)."""
    def handler(peer):
        [sid] = peer.requests(1)
        peer.respond(sid, b"x" * 1000, headers=[(b"content-length", b"%d" % (48 << 20))],
                     end=False)
        peer.drain()

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki, limits=Limits(max_body_bytes=1 << 20), timeout=5) as c:
                if not streamed:
                    return await c.get(srv.url("/big"))
                async with c.stream("GET", srv.url("/big")) as r:
                    assert r.headers["content-length"] == str(48 << 20)  # the head is given
                    await r.aread()

        with pytest.raises(RemoteProtocolError, match=r"response body of 50331648 bytes "
                           r"\(Content-Length\) exceeds 1048576 bytes \(max_body_bytes\)"):
            run(main(), 30)


def test_a_window_that_never_opens_is_a_write_timeout(pki, run):
    def no_ack(peer):  # reads, never acknowledges a byte (the stock window: 65535)
        while True:
            try:
                data = peer.sock.recv(65536)
            except OSError:
                return
            if not data:
                return

    with H2Server(pki, no_ack) as srv:
        async def main():
            async with client(pki, timeout=0.5) as c:
                return await c.post(srv.url("/"), content=b"w" * 1_000_000)

        with pytest.raises(WriteTimeout):
            run(main())


# ---- hostile servers ----

def _hostile(pki, run, send, limits: Limits | None = None):
    """Run one GET against a server that answers its request with `send(peer, sid)`."""
    with H2Server(pki, answering(send)) as srv:
        async def main():
            kw = {} if limits is None else {"limits": limits}
            async with client(pki, timeout=5, **kw) as c:
                return await c.get(srv.url())

        return run(main())


def _flood(kind: int, payload: bytes, count: int):
    def send(peer, sid):
        peer.raw(frame(kind, 0, 0, payload) * count)
        peer.respond(sid, b"after")
    return send


@pytest.mark.parametrize("kind,payload", [(PING, b"12345678"), (SETTINGS, b"")])
def test_control_frame_floods_end_the_connection(pki, run, kind, payload):
    with pytest.raises(RemoteProtocolError, match="h2_max_control_frames"):
        _hostile(pki, run, _flood(kind, payload, 3000))
    # The limit is the caller's to move.
    r = _hostile(pki, run, _flood(kind, payload, 3000),
                 Limits(h2_max_control_frames=10_000))
    assert r.content == b"after"


def test_empty_data_frames_count_as_control_frames(pki, run):
    def send(peer, sid):
        peer.respond(sid, b"", end=False)
        peer.raw(frame(0, 0, sid) * 3000)

    with pytest.raises(RemoteProtocolError, match="h2_max_control_frames"):
        _hostile(pki, run, send)


PADDED = 0x8


def test_padding_only_data_frames_count_as_empty_frames(pki, run):
    def send(peer, sid):
        peer.respond(sid, b"", end=False)
        peer.raw(frame(DATA, PADDED, sid, bytes((5,)) + bytes(5)) * 3000)  # padding alone
        peer.raw(frame(DATA, END_STREAM, sid, b"after"))

    with pytest.raises(RemoteProtocolError, match="h2_max_control_frames"):
        _hostile(pki, run, send)


def test_padded_data_frames_carrying_data_are_not_counted(pki, run):
    def send(peer, sid):
        peer.respond(sid, b"", end=False)
        peer.raw(frame(DATA, PADDED, sid, bytes((2,)) + b"d" + bytes(2)) * 3000)
        peer.raw(frame(DATA, END_STREAM | PADDED, sid, bytes((1,)) + bytes(1)))

    r = _hostile(pki, run, send)
    assert r.content == b"d" * 3000


def test_settings_frame_with_too_many_entries(pki, run):
    def send(peer, sid):
        peer.raw(frame(SETTINGS, 0, 0, (bytes((0, 1)) + (4096).to_bytes(4, "big")) * 100))
        peer.respond(sid, b"after")

    with pytest.raises(RemoteProtocolError, match="Limits.h2_"):
        _hostile(pki, run, send)
    assert _hostile(pki, run, send, Limits(h2_max_settings=200)).content == b"after"


def test_too_many_header_fields(pki, run):
    def send(peer, sid):
        peer.respond(sid, b"x", headers=[(b"x-%d" % i, b"v") for i in range(300)])

    with pytest.raises(RemoteProtocolError, match="max_header_count"):
        _hostile(pki, run, send)
    r = _hostile(pki, run, send, Limits(max_header_count=400))
    assert r.headers["x-299"] == "v"


def test_header_block_bomb_through_the_hpack_table(pki, run):
    # One 4000-byte field enters the table, then is referenced again and again: a few
    # bytes on the wire each, 4 KiB each once decoded.
    def send(peer, sid):
        peer.respond(sid, b"x", headers=[(b"x-big", b"b" * 4000)] * 40)

    with pytest.raises(RemoteProtocolError, match="max_header_bytes"):
        _hostile(pki, run, send)


def test_continuation_flood(pki, run):
    def send(peer, sid):
        block = peer.h2.encoder.encode([(b":status", b"200")])
        peer.raw(frame(HEADERS, 0, sid, block))
        peer.raw(frame(CONTINUATION, 0, sid, b"") * 1000)
        peer.raw(frame(CONTINUATION, END_HEADERS | END_STREAM, sid, b""))

    with pytest.raises(RemoteProtocolError, match=r"CONTINUATION.*\(Limits.h2_max_continuations"):
        _hostile(pki, run, send)


def test_window_update_past_2_31_minus_1(pki, run):
    def send(peer, sid):
        peer.raw(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", 2**31 - 1)))
        peer.respond(sid, b"never")

    with pytest.raises(RemoteProtocolError, match="the client ended the connection with "
                                                  "GOAWAY FLOW_CONTROL_ERROR: "
                                                  r".*\(WINDOW_UPDATE frame\)"):
        _hostile(pki, run, send)



def test_idle_connection_is_pinged_and_a_silent_one_replaced(pki, run):
    pings = []

    def handler(peer):
        if peer.index == 0:
            [sid] = peer.requests(1)
            peer.respond(sid, b"one")
            while True:  # from now on reads, answers nothing (not even PING)
                try:
                    data = peer.sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                pings.append(data)
        while True:
            evs = peer.events()
            if evs is None:
                return
            for ev in evs:
                if isinstance(ev, h2.events.StreamEnded):
                    peer.respond(ev.stream_id, b"two")

    lim = Limits(h2_ping_after_idle=0.0, h2_ping_timeout=0.3)
    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki, limits=lim) as c:
                a = await c.get(srv.url())
                b = await c.get(srv.url())
                return a, b, c.pool.connections_opened

        a, b, opened = run(main())
    assert (a.content, b.content) == (b"one", b"two")
    assert opened == 2 and pings  # the PING went to the first connection, unanswered


def test_idle_connection_answering_ping_is_kept(pki, run):
    seen = []

    def handler(peer):
        while True:
            evs = peer.events()
            if evs is None:
                return
            for ev in evs:
                if isinstance(ev, h2.events.PingReceived):
                    seen.append(ev)
                elif isinstance(ev, h2.events.StreamEnded):
                    peer.respond(ev.stream_id, b"x")

    lim = Limits(h2_ping_after_idle=0.0)
    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki, limits=lim) as c:
                for _ in range(3):
                    await c.get(srv.url())
                return c.pool.connections_opened

        opened = run(main())
    assert opened == 1 and len(seen) == 2


def test_http_cache_serves_an_h2_response(pki, run):
    count = []

    def handler(peer):
        while True:
            evs = peer.events()
            if evs is None:
                return
            for ev in evs:
                if isinstance(ev, h2.events.StreamEnded):
                    count.append(ev.stream_id)
                    peer.respond(ev.stream_id, b"cached",
                                 headers=[(b"cache-control", b"max-age=60")])

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki, cache=True) as c:
                return [await c.get(srv.url("/c")) for _ in range(3)]

        rs = run(main())
    assert all(r.content == b"cached" for r in rs)
    assert len(count) == 1


def test_cancelled_request_resets_its_stream_only(pki, run):
    resets = []

    def handler(peer):
        while True:
            evs = peer.events()
            if evs is None:
                return
            for ev in evs:
                if isinstance(ev, h2.events.StreamReset):
                    resets.append(peer.heads[ev.stream_id][b":path"])
                elif isinstance(ev, h2.events.StreamEnded):
                    if peer.heads[ev.stream_id][b":path"] != b"/stall":
                        peer.respond(ev.stream_id, b"fine")

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki) as c:
                task = asyncio.ensure_future(c.get(srv.url("/stall")))
                first = await c.get(srv.url("/ok"))  # the stalled one is in flight
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                after = await c.get(srv.url("/ok"))
                return first, after, c.pool.connections_opened

        first, after, opened = run(main())
    assert first.content == after.content == b"fine"
    assert opened == 1 and resets == [b"/stall"]


def test_pool_timeout_when_every_stream_is_taken(pki, run):
    from corenet.https import PoolTimeout, Timeout

    def handler(peer):
        [sid] = peer.requests(1)
        peer.respond(sid, b"first")
        peer.requests(1)  # the one stream allowed: never answered
        peer.drain()

    settings = {h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 1}
    with H2Server(pki, handler, settings) as srv:
        async def main():
            async with client(pki, timeout=Timeout(5, pool=0.3)) as c:
                await c.get(srv.url("/first"))  # the server's SETTINGS are known
                [conn] = c.pool._shared[("https", "localhost", srv.port)]
                stalled = asyncio.ensure_future(c.get(srv.url("/a")))
                while conn.active == 0:
                    await asyncio.sleep(0)
                try:
                    with pytest.raises(PoolTimeout):
                        await c.get(srv.url("/b"))
                finally:
                    stalled.cancel()
                return c.pool.connections_opened

        assert run(main()) == 1
        assert not srv.errors


def test_sync_client_speaks_h2(pki):
    from corenet.https import Client

    with H2Server(pki, serve_all) as srv:
        with Client(verify=str(pki["ca"]), http2=True) as c:
            rs = [c.post(srv.url("/s"), content=b"abcd") for _ in range(3)]
    assert all(r.http_version == "HTTP/2" and r.content == b"/s 4" for r in rs)


def test_announced_settings_follow_the_limits(pki, run):
    seen = []

    def handler(peer):
        [sid] = peer.requests(1)
        rs = peer.h2.remote_settings
        seen.append((rs.header_table_size, rs.initial_window_size, rs.max_header_list_size,
                     rs.enable_push))
        peer.respond(sid)
        peer.drain()

    lim = Limits(h2_header_table_size=1024, h2_stream_window=123_456, max_header_bytes=9_999)
    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki, limits=lim) as c:
                return await c.get(srv.url())

        run(main())
    assert seen == [(1024, 123_456, 9_999, 0)]


def test_an_answer_before_the_body_is_sent_is_returned(pki, run):
    def handler(peer):
        while True:  # answers 413 on the request's head, never opens its window
            evs = peer.events()
            if evs is None:
                return
            for ev in evs:
                if isinstance(ev, h2.events.RequestReceived):
                    peer.respond(ev.stream_id, b"too big", status=413)

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki, timeout=5) as c:
                r = await c.post(srv.url("/up"), content=b"u" * 2_000_000)
                again = await c.get(srv.url("/next"))
                return r, again, c.pool.connections_opened

        r, again, opened = run(main())
    assert r.status_code == 413 and r.content == b"too big"
    assert again.status_code == 413 and opened == 1
