"""What an HTTP/2 error says, against scripted servers: which side reset the stream or ended
the connection, with what code, and why (nghttp2's reason, the limit passed, the
content-length broken), and the :status range (RFC 9110 15: 100-599)."""
from __future__ import annotations

import socket

import pytest

from corenet.https import AsyncClient, RemoteProtocolError
from https_h2server import (
    DATA, END_HEADERS, END_STREAM, GOAWAY, HEADERS, H2Server, answering, frame,
)


def head(peer, sid: int, fields: list, flags: int = END_HEADERS) -> None:
    """A HEADERS frame as given (raw: the h2 package would check it)."""
    peer.raw(frame(HEADERS, flags, sid, peer.h2.encoder.encode(fields)))


def get(pki, run, send):
    with H2Server(pki, answering(send)) as srv:
        async def main():
            async with AsyncClient(verify=str(pki["ca"]), http2=True, timeout=5) as c:
                r = await c.get(srv.url())
                return r.status_code, r.content

        return run(main())


@pytest.mark.parametrize("status", [b"099", b"000", b"600", b"999"])
def test_a_status_outside_100_to_599_is_an_error(pki, run, status):
    def send(peer, sid):
        head(peer, sid, [(b":status", status)], END_HEADERS | END_STREAM)

    with pytest.raises(RemoteProtocolError, match=f":status {status.decode()} is not in "
                                                  "100-599.*the client reset the stream"):
        get(pki, run, send)


@pytest.mark.parametrize("status", [b"200", b"599"])
def test_a_status_inside_the_range_is_taken(pki, run, status):
    def send(peer, sid):
        head(peer, sid, [(b":status", status)], END_HEADERS | END_STREAM)

    assert get(pki, run, send) == (int(status), b"")


def test_a_malformed_head_is_our_reset_with_nghttp2s_reason(pki, run):
    def send(peer, sid):  # a connection-specific field, malformed in HTTP/2 (RFC 9113 8.2.2)
        head(peer, sid, [(b":status", b"200"), (b"connection", b"close")],
             END_HEADERS | END_STREAM)

    with pytest.raises(RemoteProtocolError) as info:
        get(pki, run, send)
    msg = str(info.value)
    assert "name: [connection], value: [close]" in msg
    assert "the client reset the stream (PROTOCOL_ERROR)" in msg
    assert "localhost reset" not in msg


@pytest.mark.parametrize("announced,sent", [(100, 10), (5, 10)])
def test_a_body_against_its_content_length_names_both(pki, run, announced, sent):
    def send(peer, sid):
        head(peer, sid, [(b":status", b"200"), (b"content-length", b"%d" % announced)])
        peer.raw(frame(DATA, END_STREAM, sid, b"x" * sent))

    with pytest.raises(RemoteProtocolError, match=f"differs from its content-length: "
                                                  f"{announced} .*the client reset the stream "
                                                  r"\(PROTOCOL_ERROR\)"):
        get(pki, run, send)


def test_trailers_ending_a_short_body_name_its_content_length(pki, run):
    def send(peer, sid):
        head(peer, sid, [(b":status", b"200"), (b"content-length", b"100")])
        peer.raw(frame(DATA, 0, sid, b"x" * 10))
        head(peer, sid, [(b"x-sum", b"1")], END_HEADERS | END_STREAM)

    with pytest.raises(RemoteProtocolError, match=r"differs from its content-length: 100 "
                                                  r"\(10 bytes came\)"):
        get(pki, run, send)


def test_the_servers_reset_is_named_as_the_servers(pki, run):
    def send(peer, sid):
        peer.h2.reset_stream(sid, error_code=2)
        peer.flush()

    with pytest.raises(RemoteProtocolError, match=r"^localhost reset the stream "
                                                  r"\(INTERNAL_ERROR\)$"):
        get(pki, run, send)


def test_a_connection_error_names_our_goaway_and_its_reason(pki, run):
    def send(peer, sid):
        peer.raw(frame(DATA, 0, 0, b"x"))  # DATA on stream 0: a connection error

    with pytest.raises(RemoteProtocolError, match="the client ended the connection with "
                                                  "GOAWAY PROTOCOL_ERROR: DATA: stream_id"):
        get(pki, run, send)


def test_the_servers_goaway_code_and_debug_data_are_given(pki, run):
    def send(peer, sid):
        head(peer, sid, [(b":status", b"200")])
        peer.raw(frame(DATA, 0, sid, b"part"))
        peer.raw(frame(GOAWAY, 0, 0, sid.to_bytes(4, "big") + (11).to_bytes(4, "big")
                       + b"calm down"))
        # an orderly close: what the client sent meanwhile is read first, or closing with
        # it unread would reset the connection before the client reads the GOAWAY
        peer.sock.shutdown(socket.SHUT_WR)
        peer.sock.settimeout(5)
        try:
            while peer.sock.recv(65536):
                pass
        except OSError:
            pass
        peer.sock.close()

    with pytest.raises(RemoteProtocolError, match="closed the connection in the middle of "
                                                  "the response .its GOAWAY: "
                                                  "ENHANCE_YOUR_CALM: calm down"):
        get(pki, run, send)
