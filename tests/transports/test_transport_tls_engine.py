"""corenet's compiled TLS protocol: which SSL object OpenSSL is reached through, its states,
writes after close, and a failing application protocol."""
from __future__ import annotations

import asyncio
import os
import ssl

import pytest

from looptools import CORENET_KINDS
from transport_helpers import Echo, Recorder

corenet_loops = pytest.mark.parametrize("loop_kind", CORENET_KINDS)


class Counts:
    """Calls of the ssl.py wrapper methods OpenSSL can be reached through."""

    def __init__(self) -> None:
        self.calls = {"do_handshake": 0, "read": 0, "write": 0}

    def wrap(self, cls, name):
        inner = getattr(cls, name)
        counts = self.calls

        def counted(obj, *args):
            counts[name] += 1
            return inner(obj, *args)
        return counted


async def _echo(loop, pki, server_ctx, payload: bytes) -> bytes:
    srv = await loop.create_server(Echo, "127.0.0.1", 0, ssl=server_ctx)
    port = srv.sockets[0].getsockname()[1]
    try:
        tr, pr = await loop.create_connection(Recorder, "localhost", port,
                                              ssl=pki.client_context())
        tr.write(payload)
        got = await pr.wait_bytes(len(payload))
        tr.close()
        await pr.lost
        return got
    finally:
        srv.close()
        await srv.wait_closed()


@corenet_loops
def test_plain_ssl_objects_are_bypassed_for_the_c_object(loop, run, pki, monkeypatch):
    """With the contexts' own ssl.SSLObject, the handshake, reads and writes go to CPython's
    C SSL object underneath: the Python wrapper's methods are never called."""
    counts = Counts()
    for name in counts.calls:
        monkeypatch.setattr(ssl.SSLObject, name, counts.wrap(ssl.SSLObject, name))
    payload = os.urandom(200_000)
    assert run(_echo(loop, pki, pki.server_context(), payload)) == payload
    assert counts.calls == {"do_handshake": 0, "read": 0, "write": 0}


@corenet_loops
def test_a_contexts_own_ssl_object_class_is_called(loop, run, pki):
    """A context whose sslobject_class is the application's own has its methods called for
    every step, on both sides."""
    counts = Counts()

    class Counted(ssl.SSLObject):
        do_handshake = counts.wrap(ssl.SSLObject, "do_handshake")
        read = counts.wrap(ssl.SSLObject, "read")
        write = counts.wrap(ssl.SSLObject, "write")

    ctx = pki.server_context()
    ctx.sslobject_class = Counted
    payload = os.urandom(200_000)
    assert run(_echo(loop, pki, ctx, payload)) == payload
    assert counts.calls["do_handshake"] >= 2       # the ClientHello, the client's Finished
    assert counts.calls["read"] >= 1 and counts.calls["write"] >= 1


@corenet_loops
def test_a_read_asks_for_one_records_plaintext_at_most(loop, run, pki):
    """Each read for a data_received protocol asks OpenSSL for at most one record's
    plaintext (16 KiB): a read makes a bytes object of the size asked for, and a larger
    one is mapped and unmapped by malloc for every record. Many records still arrive
    whole and in order."""
    sizes: list[int] = []

    class Recorded(ssl.SSLObject):
        def read(self, n=1024, buffer=None):
            if buffer is None:
                sizes.append(n)
            return super().read(n, buffer) if buffer is not None else super().read(n)

    ctx = pki.server_context()
    ctx.sslobject_class = Recorded
    payload = os.urandom(200_000)
    assert run(_echo(loop, pki, ctx, payload)) == payload
    assert sizes and max(sizes) <= 16 * 1024
    assert len(sizes) >= len(payload) // (16 * 1024)


@corenet_loops
def test_states_and_writes_after_close(loop, run, pki):
    """The protocol goes DO_HANDSHAKE, WRAPPED, then through the shutdown to UNWRAPPED;
    a write after close() is dropped and counted, not sent and not raised."""
    seen = {}

    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0, ssl=pki.server_context())
        port = srv.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(Recorder, "localhost", port,
                                              ssl=pki.client_context())
        proto = tr._ssl_protocol
        seen["open"] = proto.state_name
        tr.write(b"one")
        await pr.wait_bytes(3)
        tr.close()
        seen["closing"] = proto.state_name
        tr.write(b"two")
        tr.write(b"three")
        seen["dropped"] = proto._conn_lost
        assert await asyncio.wait_for(pr.lost, 5) is None
        seen["closed"] = proto.state_name
        srv.close()
        await srv.wait_closed()
        return bytes(pr.data)

    assert run(main()) == b"one"
    assert seen["open"] == "WRAPPED"
    assert seen["closing"] in ("FLUSHING", "SHUTDOWN")
    assert seen["dropped"] == 2
    assert seen["closed"] == "UNWRAPPED"


@corenet_loops
def test_an_application_error_is_reported_and_closes_the_connection(loop, run, pki):
    """data_received raising on decrypted data goes to the loop's exception handler as a
    fatal error of the TLS protocol, and the connection is closed (both ends see it)."""
    reported = []
    loop.set_exception_handler(lambda lp, ctx: reported.append(ctx))

    class Failing(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport

        def data_received(self, data):
            raise ValueError("bad request")

    async def main():
        srv = await loop.create_server(Failing, "127.0.0.1", 0, ssl=pki.server_context())
        port = srv.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(Recorder, "localhost", port,
                                              ssl=pki.client_context())
        tr.write(b"anything")
        await asyncio.wait_for(pr.lost, 5)
        srv.close()
        await srv.wait_closed()

    run(main())
    assert len(reported) == 1
    assert reported[0]["message"] == "Fatal error on SSL protocol"
    assert isinstance(reported[0]["exception"], ValueError)


@corenet_loops
def test_a_fin_during_the_handshake_fails_the_waiter_with_a_reset(loop, run):
    """A server that takes the ClientHello and closes: the client's create_connection fails
    with ConnectionResetError, an exception instance, and no descriptor is left."""

    async def main():
        async def take_hello_and_close(reader, writer):
            await reader.read(65536)         # the whole ClientHello: a FIN, not a reset
            writer.close()

        srv = await asyncio.start_server(take_hello_and_close, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with pytest.raises(ConnectionResetError) as err:
                await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=ctx)
            assert isinstance(err.value, ConnectionResetError)
        finally:
            srv.close()
            await srv.wait_closed()

    run(main())


@corenet_loops
def test_a_read_stops_when_nothing_is_left(loop, pki):
    """Each record delivered is read once, and no further read is tried once the incoming
    BIO and OpenSSL are both empty (it could only raise SSLWantReadError): two records in
    one delivery take two reads; a partial record takes one read that waits for the rest."""
    from test_transport_tls_steps import App, CountingSSLObject, _client_past_the_flight, \
        _deliver, _server

    app = App()
    server, wire = _server(loop, pki, app)
    client, c_in, c_out = _client_past_the_flight(pki, server, wire)
    _deliver(server, c_out.read())                   # the client's Finished
    counting = server._sslobj = CountingSSLObject(server._sslobj)
    client.write(b"one")
    _deliver(server, c_out.read())
    assert app.data == b"one" and counting.reads == 1
    client.write(b"two")
    client.write(b"three")
    _deliver(server, c_out.read())                   # two records at once
    assert app.data == b"onetwothree" and counting.reads == 3
    client.write(b"four")
    record = c_out.read()
    _deliver(server, record[:5])                     # a record's header only
    assert app.data == b"onetwothree" and counting.reads == 4
    _deliver(server, record[5:])
    assert app.data == b"onetwothreefour" and counting.reads == 5
    server._handshake_timeout_handle is None or server._handshake_timeout_handle.cancel()


def test_the_protocol_runs_over_stock_asyncio_transports(pki):
    """Nothing in the protocol needs corenet's loop: on asyncio's own loop, over its socket
    transport, a server made of it echoes a TLS client and ends with the client's close."""
    from corenet import tls

    loop = asyncio.new_event_loop()
    try:
        async def main():
            made = []

            def factory():
                made.append(tls.SSLProtocol(loop, Echo(), pki.server_context(), None,
                                            server_side=True))
                return made[-1]

            srv = await loop.create_server(factory, "127.0.0.1", 0)
            port = srv.sockets[0].getsockname()[1]
            tr, pr = await loop.create_connection(Recorder, "localhost", port,
                                                  ssl=pki.client_context())
            payload = os.urandom(100_000)
            tr.write(payload)
            got = await pr.wait_bytes(len(payload))
            tr.close()
            await pr.lost
            srv.close()
            await srv.wait_closed()
            return got == payload, made

        echoed, made = loop.run_until_complete(asyncio.wait_for(main(), 10))
    finally:
        loop.close()
    assert len(made) == 1 and made[0].state_name == "UNWRAPPED"
    assert made[0]._transport is None          # connection_lost came
    assert echoed


@corenet_loops
def test_bytes_after_the_peers_close_notify_are_dropped(loop, pki):
    """An application that keeps the connection open after the peer's close_notify keeps
    writing; what the peer sends after its close_notify is dropped at once and counted (not
    buffered without bound, and not holding back our own close_notify)."""
    from test_transport_tls_steps import _client_past_the_flight, _deliver, _server

    class KeepOpen(asyncio.Protocol):
        transport = None
        eofs = 0

        def connection_made(self, transport):
            self.transport = transport

        def eof_received(self):
            self.eofs += 1
            return True

    app = KeepOpen()
    server, wire = _server(loop, pki, app)
    client, c_in, c_out = _client_past_the_flight(pki, server, wire)
    _deliver(server, c_out.read())                   # the client's Finished
    c_in.write(b"".join(wire.writes[1:]))            # the session tickets
    try:
        client.unwrap()
    except ssl.SSLWantReadError:
        pass                                         # sent; ours is still to come
    _deliver(server, c_out.read())                   # the client's close_notify
    assert app.eofs == 1 and not app.transport.is_closing()
    for _ in range(8):
        _deliver(server, os.urandom(60_000))         # not TLS the client may send
        assert server._incoming.pending == 0
    assert server.dropped_after_close_notify == 8 * 60_000
    writes = len(wire.writes)
    app.transport.write(b"late answer")
    assert len(wire.writes) == writes + 1
    c_in.write(wire.writes[-1])
    assert client.read(100) == b"late answer"
    app.transport.close()
    c_in.write(b"".join(wire.writes[writes + 1:]))
    client.unwrap()                                  # our close_notify reached it
    server._handshake_timeout_handle is None or server._handshake_timeout_handle.cancel()
