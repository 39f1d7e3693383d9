"""What an HTTP/2 error says, against scripted servers, and the :status range (RFC 9110 15:
100-599)."""
from __future__ import annotations

import pytest

from corenet.https import Client, RemoteProtocolError
from https_h2server import END_HEADERS, END_STREAM, HEADERS, H2Server, frame


def answer_with(send):
    def handler(peer):
        [sid] = peer.requests(1)
        send(peer, sid)
        peer.drain()
    return handler


def head(peer, sid: int, fields: list, flags: int = END_HEADERS) -> None:
    """A HEADERS frame as given (raw: the h2 package would check it)."""
    peer.raw(frame(HEADERS, flags, sid, peer.h2.encoder.encode(fields)))


def get(pki, run, send):
    with H2Server(pki, answer_with(send)) as srv:
        async def main():
            async with Client(verify=str(pki["ca"]), http2=True, timeout=5) as c:
                r = await c.get(srv.url())
                return r.status_code, r.content

        return run(main())


@pytest.mark.parametrize("status", [b"099", b"000", b"600", b"999"])
def test_a_status_outside_100_to_599_is_an_error(pki, run, status):
    def send(peer, sid):
        head(peer, sid, [(b":status", status)], END_HEADERS | END_STREAM)

    with pytest.raises(RemoteProtocolError, match=f":status {status.decode()} is not in "
                                                  "100-599"):
        get(pki, run, send)


@pytest.mark.parametrize("status", [b"200", b"599"])
def test_a_status_inside_the_range_is_taken(pki, run, status):
    def send(peer, sid):
        head(peer, sid, [(b":status", status)], END_HEADERS | END_STREAM)

    assert get(pki, run, send) == (int(status), b"")
