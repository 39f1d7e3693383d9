"""HTTP/2 response bodies against scripted servers: a body is whole only at END_STREAM (a
reset before it, whatever its code, is an error, as a body of another length than its
content-length is), side by side with httpx[http2]."""
from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import h2.events
import h2.exceptions
import httpx
import pytest

from corenet.https import AsyncClient, Limits, RemoteProtocolError
from https_h2server import DATA, END_HEADERS, END_STREAM, HEADERS, H2Server, answering, frame

BIG = 100_000
SENT = 10_000


def client(pki, **kw) -> AsyncClient:
    return AsyncClient(verify=str(pki["ca"]), http2=True, timeout=5, **kw)


def anchor(pki) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(pki["ca"])),
                             http2=True, timeout=5)


def cut_by_reset(code: int, length: bool):
    """A head, SENT bytes of a body (announced as BIG bytes when `length`), then
    RST_STREAM(code) without END_STREAM."""
    def send(peer, sid):
        headers = [(b"content-length", b"%d" % BIG)] if length else []
        peer.respond(sid, b"x" * SENT, headers=headers, end=False)
        peer.h2.reset_stream(sid, error_code=code)
        peer.flush()
    return answering(send)


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
    return answering(send)


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
        for ev in peer.each_event():
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


# ---- memory follows the bytes, not the frames ----

TINY_BODY = 2 * 1024 * 1024  # sent as 2,097,152 DATA frames of one byte

CHILD = r"""
import asyncio, sys
from corenet.https import AsyncClient

def rss(field):  # VmRSS now, VmHWM the peak (since exec, or since reset)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith(field))

async def main(url, ca):
    async with AsyncClient(verify=ca, http2=True, timeout=60) as c:
        await c.get(url + "/warm")  # the connection, TLS and the code paths, warmed
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # the peak starts again from now
        except OSError:
            pass
        before = rss("VmRSS:")
        r = await c.get(url + "/tiny-frames")
        print(len(r.content), r.content.count(b"x"), rss("VmHWM:") - before)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def tiny_frames(peer):
    """Answers its first request with a word, its second with TINY_BODY bytes in one-byte
    DATA frames."""
    [warm] = peer.requests(1)
    peer.respond(warm, b"warm")
    [sid] = peer.requests(1)
    peer.respond(sid, b"", end=False)
    one = frame(DATA, 0, sid, b"x")
    for i in range(16):  # the last frame, below, ends the stream
        peer.raw(one * (TINY_BODY // 16 - (i == 15)))
    peer.raw(frame(DATA, END_STREAM, sid, b"x"))
    peer.drain()


def test_a_body_in_one_byte_frames_costs_memory_by_the_byte(pki):
    """Each DATA frame's bytes go into the buffer of the bytes before them: the client's
    peak RSS grows by about twice the body (the pieces, then the content joined), where
    an object per frame cost ~80 bytes per byte of body. Measured in a process of its
    own: its peak RSS during the request less its RSS before it."""
    root = Path(__file__).resolve().parents[2]
    with H2Server(pki, tiny_frames) as srv:
        out = subprocess.run([sys.executable, "-c", CHILD, srv.url(""), str(pki["ca"])],
                             cwd=root, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    length, xs, growth = map(int, out.stdout.split())
    assert length == xs == TINY_BODY
    assert growth < 8 * TINY_BODY, f"peak RSS grew by {growth} bytes"


def test_the_body_limit_stops_one_byte_frames(pki, run):
    def send(peer, sid):
        peer.respond(sid, b"", end=False)
        peer.raw(frame(DATA, 0, sid, b"x") * 300_000)
        peer.raw(frame(DATA, END_STREAM, sid, b"x"))

    with H2Server(pki, answering(send)) as srv:
        async def main():
            async with client(pki, limits=Limits(max_body_bytes=200_000)) as c:
                return await c.get(srv.url("/tiny"))

        with pytest.raises(RemoteProtocolError, match="exceeds 200000 bytes"):
            run(main(), 30)
