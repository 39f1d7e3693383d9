"""A scripted HTTP/2 server for the client's tests, on the `h2` package (a second HTTP/2
implementation besides nghttp2): TLS on loopback with ALPN h2, each connection served in a
thread by the test's own function, which may also write raw frames."""
from __future__ import annotations

import socket
import ssl
import struct
import threading
from typing import Callable

import h2.config
import h2.connection
import h2.events
import h2.settings

# Frame types and flags (RFC 9113 6).
DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = (
    0, 1, 3, 4, 6, 7, 8, 9)
END_STREAM, END_HEADERS, ACK = 0x1, 0x4, 0x1


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes((kind, flags)) + \
        struct.pack(">I", stream_id) + payload


class Peer:
    """One server connection: `h2` does the protocol unless the test writes raw frames."""

    def __init__(self, sock: ssl.SSLSocket, index: int, settings: dict | None) -> None:
        self.sock = sock
        self.index = index  # 0 for the server's first connection, 1 for the second...
        config = h2.config.H2Configuration(client_side=False, header_encoding=None,
                                           validate_outbound_headers=False)
        self.h2 = h2.connection.H2Connection(config)
        if settings:
            self.h2.local_settings = h2.settings.Settings(client=False,
                                                          initial_values=settings)
        self.h2.initiate_connection()
        self.flush()
        self.bodies: dict[int, bytearray] = {}
        self.heads: dict[int, dict] = {}

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.sock.sendall(data)

    def raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def events(self) -> list | None:
        """The next events from the client (None once it closed)."""
        try:
            data = self.sock.recv(65536)
        except (OSError, ssl.SSLError):
            return None
        if not data:
            return None
        evs = self.h2.receive_data(data)
        for ev in evs:
            if isinstance(ev, h2.events.RequestReceived):
                self.heads[ev.stream_id] = dict(ev.headers)
                self.bodies[ev.stream_id] = bytearray()
            elif isinstance(ev, h2.events.DataReceived):
                self.bodies[ev.stream_id] += ev.data
                self.h2.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        self.flush()
        return evs

    def each_event(self):
        """Every event from the client, until it closes."""
        while True:
            evs = self.events()
            if evs is None:
                return
            yield from evs

    def each_read(self):
        """Every piece of bytes from the client, raw (no `h2`), until it closes."""
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            yield data

    def requests(self, n: int) -> list[int]:
        """Wait until `n` more requests have ended; return their stream ids."""
        done: list[int] = []
        while len(done) < n:
            evs = self.events()
            if evs is None:
                break
            done += [ev.stream_id for ev in evs if isinstance(ev, h2.events.StreamEnded)]
        return done

    def respond(self, sid: int, body: bytes = b"ok", status: int = 200,
                headers: list | None = None, end: bool = True) -> None:
        self.h2.send_headers(sid, [(b":status", str(status).encode())] + (headers or []))
        if body or end:
            self.h2.send_data(sid, body, end_stream=end)
        self.flush()

    def drain(self) -> None:
        """Read until the client closes."""
        while self.events() is not None:
            pass


def answering(send: Callable[["Peer", int], None]) -> Callable[["Peer"], None]:
    """A handler answering the connection's first request with `send(peer, stream_id)`,
    then reading until the client leaves."""
    def handler(peer: Peer) -> None:
        [sid] = peer.requests(1)
        send(peer, sid)
        peer.drain()
    return handler


class H2Server:
    def __init__(self, pki: dict, handler: Callable[[Peer], None],
                 settings: dict | None = None) -> None:
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(pki["valid_cert"], pki["valid_key"])
        self.ctx.set_alpn_protocols(["h2"])
        self.handler = handler
        self.settings = settings
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._socks: list[socket.socket] = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()

    def url(self, path: str = "/") -> str:
        return f"https://localhost:{self.port}{path}"

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            index = self.connections
            self.connections += 1
            t = threading.Thread(target=self._serve, args=(sock, index), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, sock: socket.socket, index: int) -> None:
        conn = sock
        try:
            conn = self.ctx.wrap_socket(sock, server_side=True)
            self._socks.append(conn)
            self.handler(Peer(conn, index, self.settings))
        except (OSError, ssl.SSLError):
            pass
        except BaseException as exc:  # surfaced by the test through `errors`
            self.errors.append(exc)
        finally:
            conn.close()

    def close(self) -> None:
        self.listener.close()
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for t in self._threads:
            t.join(5)

    def __enter__(self) -> "H2Server":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
