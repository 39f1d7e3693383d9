"""HTTP/2 response bodies against scripted servers: a body is whole only at END_STREAM (a
reset before it, whatever its code, is an error, as a body of another length than its
content-length is), side by side with httpx[http2]."""
from __future__ import annotations

import ssl

import h2.exceptions
import httpx
import pytest

from corenet.https import Client, RemoteProtocolError
from https_h2server import DATA, END_HEADERS, END_STREAM, HEADERS, H2Server, frame

BIG = 100_000
SENT = 10_000


def client(pki, **kw) -> Client:
    return Client(verify=str(pki["ca"]), http2=True, timeout=5, **kw)


def anchor(pki) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(pki["ca"])),
                             http2=True, timeout=5)


def one_answer(send):
    """A server answering its first request with `send(peer, sid)`, then reading on."""
    def handler(peer):
        [sid] = peer.requests(1)
        send(peer, sid)
        peer.drain()
    return handler


def cut_by_reset(code: int, length: bool):
    """A head, SENT bytes of a body (announced as BIG bytes when `length`), then
    RST_STREAM(code) without END_STREAM."""
    def send(peer, sid):
        headers = [(b"content-length", b"%d" % BIG)] if length else []
        peer.respond(sid, b"x" * SENT, headers=headers, end=False)
        peer.h2.reset_stream(sid, error_code=code)
        peer.flush()
    return one_answer(send)


def wrong_length(announced: int, sent: int):
    """A head announcing `announced` bytes, then `sent` bytes and END_STREAM (raw frames:
    the h2 package will not send them)."""
    def send(peer, sid):
        block = peer.h2.encoder.encode([(b":status", b"200"),
                                        (b"content-length", b"%d" % announced)])
        peer.raw(frame(HEADERS, END_HEADERS, sid, block))
        body = b"y" * sent
        for i in range(0, sent, 16384):
            peer.raw(frame(DATA, END_STREAM if i + 16384 >= sent else 0, sid,
                           body[i:i + 16384]))
    return one_answer(send)


async def read_whole(c, url):
    r = await c.get(url)
    return r.status_code, len(r.content)


async def read_streamed(c, url):
    n = 0
    async with c.stream("GET", url) as r:
        async for piece in r.aiter_bytes():
            n += len(piece)
    return r.status_code, n


async def outcome(make, read, url):
    async with make() as c:
        try:
            return await read(c, url)
        except (RemoteProtocolError, httpx.RemoteProtocolError,
                h2.exceptions.ProtocolError) as exc:  # httpx lets h2's length error out
            return exc


CUT = [
    pytest.param(cut_by_reset(0, True), id="NO_ERROR-with-content-length"),
    pytest.param(cut_by_reset(0, False), id="NO_ERROR-without-content-length"),
    pytest.param(cut_by_reset(8, False), id="CANCEL"),
    pytest.param(cut_by_reset(2, True), id="INTERNAL_ERROR"),
    pytest.param(wrong_length(BIG, SENT), id="shorter-than-content-length"),
    pytest.param(wrong_length(SENT, BIG), id="longer-than-content-length"),
]


@pytest.mark.parametrize("handler", CUT)
@pytest.mark.parametrize("read", [read_whole, read_streamed], ids=["whole", "streamed"])
def test_a_body_cut_short_is_an_error_as_in_httpx(pki, run, handler, read):
    with H2Server(pki, handler) as srv:
        ours = run(outcome(lambda: client(pki), read, srv.url("/cut")))
        theirs = run(outcome(lambda: anchor(pki), read, srv.url("/cut")))
    assert isinstance(theirs, Exception), theirs
    assert isinstance(ours, RemoteProtocolError), ours


def test_the_reset_is_named_with_what_came(pki, run):
    with H2Server(pki, cut_by_reset(0, True)) as srv:
        ours = run(outcome(lambda: client(pki), read_whole, srv.url("/cut")))
    assert isinstance(ours, RemoteProtocolError)
    assert f"after {SENT} bytes" in str(ours) and "incomplete" in str(ours)


def test_a_reset_after_the_whole_response_is_a_success(pki, run):
    """RFC 9113 8.1: a server may answer before the request body is all sent, then stop
    the upload with RST_STREAM(NO_ERROR): the response it completed stands. (httpx waits
    for a window the server never opens, a ReadTimeout: no anchor here.)"""
    def handler(peer):
        import h2.events

        while True:
            evs = peer.events()
            if evs is None:
                return
            for ev in evs:
                if isinstance(ev, h2.events.RequestReceived):
                    peer.respond(ev.stream_id, b"early answer", status=200)
                    peer.h2.reset_stream(ev.stream_id, error_code=0)
                    peer.flush()

    with H2Server(pki, handler) as srv:
        async def main():
            async with client(pki) as c:
                r = await c.post(srv.url("/up"), content=b"u" * 2_000_000)
                again = await c.get(srv.url("/next"))
                return r.status_code, r.content, again.content, c.pool.connections_opened

        assert run(main()) == (200, b"early answer", b"early answer", 1)
