"""A server's TLS 1.3 handshake step by step, on a transport that only records what is
written: what OpenSSL is asked and when, how many writes the handshake takes, and the extra
info the application sees once it is done."""
from __future__ import annotations

import asyncio
import ssl

from corenet import tls


class WireRecorder(asyncio.Transport):
    """The TCP side under the TLS protocol: keeps each write apart."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data) -> None:
        self.writes.append(bytes(data))

    def get_extra_info(self, name, default=None):
        return {"peername": ("192.0.2.1", 5353)}.get(name, default)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False


class CountingSSLObject:
    """An SSL object that counts the handshake steps and the reads asked of it."""

    def __init__(self, obj) -> None:
        self._obj = obj
        self.handshake_steps = 0
        self.reads = 0

    def do_handshake(self):
        self.handshake_steps += 1
        return self._obj.do_handshake()

    def read(self, *args):
        self.reads += 1
        return self._obj.read(*args)

    def __getattr__(self, name):
        return getattr(self._obj, name)


class App(asyncio.Protocol):
    transport = None

    def __init__(self) -> None:
        self.data = b""

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.data += data


def _deliver(protocol: tls.SSLProtocol, data: bytes) -> None:
    """What the stream transport does with bytes it received."""
    buf = protocol.get_buffer(len(data))
    buf[:len(data)] = data
    protocol.buffer_updated(len(data))


def _client(pki):
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    ctx = pki.client_context()
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx.wrap_bio(incoming, outgoing, server_hostname="localhost"), incoming, outgoing


def _server(loop, pki, app):
    server = tls.SSLProtocol(loop, app, pki.server_context(), None, server_side=True,
                             ssl_handshake_timeout=5)
    wire = WireRecorder()
    server.connection_made(wire)
    return server, wire


def _client_past_the_flight(pki, server, wire):
    """A client whose ClientHello the server has taken and that has read the server's
    flight: its Finished (and what it writes next) is in its outgoing BIO."""
    client, c_in, c_out = _client(pki)
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    _deliver(server, c_out.read())
    c_in.write(wire.writes[0])
    client.do_handshake()
    return client, c_in, c_out


def test_a_server_handshake_takes_two_steps_and_two_writes(loop, pki):
    """Nothing is asked of OpenSSL before the ClientHello arrives; the server's flight
    leaves as one write, the session tickets as one more once the client's Finished is in;
    the application's connection_made comes with the handshake done, and no read is tried
    before a record arrives after it."""
    app = App()
    server = tls.SSLProtocol(loop, app, pki.server_context(), None, server_side=True,
                             ssl_handshake_timeout=5)
    counting = server._sslobj = CountingSSLObject(server._sslobj)
    wire = WireRecorder()
    server.connection_made(wire)
    assert counting.handshake_steps == 0 and wire.writes == [] and app.transport is None

    client, c_in, c_out = _client(pki)
    try:
        client.do_handshake()
    except ssl.SSLWantReadError:
        pass
    _deliver(server, c_out.read())                   # the ClientHello
    assert counting.handshake_steps == 1 and len(wire.writes) == 1
    assert app.transport is None

    c_in.write(wire.writes[0])
    client.do_handshake()                            # the client is done after the flight
    _deliver(server, c_out.read())                   # the client's Finished
    assert counting.handshake_steps == 2 and len(wire.writes) == 2
    assert app.transport is not None and counting.reads == 0

    c_in.write(wire.writes[1])                       # the tickets
    client.write(b"ping")
    _deliver(server, c_out.read())
    assert app.data == b"ping" and counting.reads >= 1
    app.transport.resume_reading()                   # nothing waits: nothing to read
    reads = counting.reads
    client.write(b"pong")
    _deliver(server, c_out.read())
    assert app.data == b"pingpong" and counting.reads > reads
    server._handshake_timeout_handle is None or server._handshake_timeout_handle.cancel()


def test_the_extra_info_after_the_handshake_is_read_from_the_ssl_object(loop, pki):
    """cipher, compression and peercert are the SSL object's own, read when asked for;
    before the handshake is done they are not there (the default)."""
    app = App()
    server, wire = _server(loop, pki, app)
    transport = server._app_transport
    assert transport.get_extra_info("cipher", "none yet") == "none yet"
    assert transport.get_extra_info("peername") == ("192.0.2.1", 5353)   # the TCP side's
    client, c_in, c_out = _client_past_the_flight(pki, server, wire)
    _deliver(server, c_out.read())

    obj = transport.get_extra_info("ssl_object")
    assert obj is server._sslobj
    assert transport.get_extra_info("cipher") == obj.cipher() == client.cipher()
    assert transport.get_extra_info("cipher")[1] == "TLSv1.3"
    assert transport.get_extra_info("compression") is None
    assert transport.get_extra_info("peercert") is None   # no client certificate asked for
    assert transport.get_extra_info("sslcontext") is server._sslcontext
    assert transport.get_extra_info("nothing such", 7) == 7


def test_data_that_comes_with_the_clients_finished_is_read_at_once(loop, pki):
    """A client that sends its first data right behind its Finished (as DNS-over-TLS clients
    do) has it delivered as the handshake ends, with no further bytes arriving."""
    app = App()
    server, wire = _server(loop, pki, app)
    client, c_in, c_out = _client_past_the_flight(pki, server, wire)
    client.write(b"\x00\x1dearly query behind Finished")
    _deliver(server, c_out.read())                   # Finished and the data in one read
    assert app.transport is not None
    assert app.data == b"\x00\x1dearly query behind Finished"
    server._handshake_timeout_handle is None or server._handshake_timeout_handle.cancel()
