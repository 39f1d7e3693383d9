"""HTTP/1.1: a server that sends more body bytes than its Content-Length declared, on a
kept-alive connection, beside the installed httpx. corenet fails that response with
RemoteProtocolError (the body is not what the server declared) and never reuses the
connection; httpx 0.28 returns the declared bytes and leaves the rest on the connection,
where they break the next request sent on it (README's table)."""
from __future__ import annotations

import socketserver
import ssl
import threading
import time

import httpx
import pytest

import corenet.https as https


class Scripted(socketserver.ThreadingTCPServer):
    """A loopback HTTP/1.1 server answering every request on a connection with
    Content-Length: 3 and the body `abc`, plus `surplus` bytes in the same write or,
    with `later`, 0.5 s after it. Counts the connections it accepted and keeps the heads
    of the requests."""

    daemon_threads = True

    def __init__(self, surplus: bytes, later: bool = False, ctx: ssl.SSLContext | None = None):
        super().__init__(("127.0.0.1", 0), _Answer)
        self.surplus, self.later, self.ctx = surplus, later, ctx
        self.connections = 0
        self.heads: list[bytes] = []
        self.port = self.server_address[1]
        self.thread = threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


class _Answer(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server = self.server
        server.connections += 1
        sock = self.request
        sock.settimeout(5)
        try:
            if server.ctx is not None:
                sock = server.ctx.wrap_socket(sock, server_side=True)
            buf = b""
            for _ in range(10):  # requests on this connection
                while b"\r\n\r\n" not in buf:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                server.heads.append(head)
                answer = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
                if server.later:
                    sock.sendall(answer)
                    time.sleep(0.5)
                    sock.sendall(server.surplus)
                else:
                    sock.sendall(answer + server.surplus)
        except OSError:
            pass


@pytest.fixture
def tls(pki):
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(pki["valid_cert"], pki["valid_key"])
    return server, str(pki["ca"])


def _twice(module, url, ca, stream=False, gap=0.0):
    """Two GETs on one client, `gap` seconds apart: each outcome as (status, body) or the
    name of the exception."""
    outcomes = []
    verify = ssl.create_default_context(cafile=ca)
    with module.Client(verify=verify) as client:
        for _ in range(2):
            try:
                if stream:
                    with client.stream("GET", url) as r:
                        outcomes.append((r.status_code, b"".join(r.iter_bytes())))
                else:
                    r = client.get(url)
                    outcomes.append((r.status_code, r.content))
            except (module.HTTPError, module.StreamError) as exc:
                outcomes.append(type(exc).__name__)
            time.sleep(gap)
    return outcomes


@pytest.mark.parametrize("surplus", [b"def", b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"])
@pytest.mark.parametrize("scheme", ["http", "https"])
@pytest.mark.parametrize("stream", [False, True])
def test_a_body_longer_than_its_content_length_is_an_error(tls, surplus, scheme, stream):
    ctx, ca = tls
    outcomes = {}
    for module in (https, httpx):
        server = Scripted(surplus, ctx=ctx if scheme == "https" else None)
        try:
            url = f"{scheme}://localhost:{server.port}/"
            outcomes[module.__name__] = (_twice(module, url, ca, stream), server.connections)
        finally:
            server.close()
    ours, ours_connections = outcomes["corenet.https"]
    theirs, _ = outcomes["httpx"]
    # corenet: each response fails, and each request had a connection of its own
    assert ours == ["RemoteProtocolError", "RemoteProtocolError"]
    assert ours_connections == 2
    # httpx: the declared bytes are the response; what followed them is read as the head
    # of the next response on the same connection
    assert theirs[0] == (200, b"abc")
    if surplus == b"def":
        assert theirs[1] == "RemoteProtocolError"


@pytest.mark.parametrize("scheme", ["http", "https"])
def test_bytes_after_the_response_came_retire_the_connection_as_in_httpx(tls, scheme):
    """Bytes that come once the response was whole are not part of it: the response
    stands, and its connection is not used again (httpx: the same)."""
    ctx, ca = tls
    for module in (https, httpx):
        server = Scripted(b"def", later=True, ctx=ctx if scheme == "https" else None)
        try:
            url = f"{scheme}://localhost:{server.port}/"
            assert _twice(module, url, ca, gap=0.8) == [(200, b"abc"), (200, b"abc")], module.__name__
            assert server.connections == 2, module.__name__
        finally:
            server.close()
