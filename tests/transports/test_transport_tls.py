"""TLS over corenet's stream transports: ssl= on both ends, server_hostname, TLS 1.3,
extra info, close_notify, handshake and shutdown timeouts, start_tls."""
from __future__ import annotations

import asyncio
import os
import ssl

import pytest

from transport_helpers import Echo, Recorder


async def tls_echo_server(loop, pki, factory=Echo, **kw):
    srv = await loop.create_server(factory, "127.0.0.1", 0, ssl=pki.server_context(), **kw)
    return srv, srv.sockets[0].getsockname()


def test_tls13_echo_and_extra_info(loop, run, pki, fd_check):
    async def main():
        srv, (host, port) = await tls_echo_server(loop, pki)
        ctx = pki.client_context()
        tr, pr = await loop.create_connection(Recorder, "localhost", port, ssl=ctx)
        sslobj = tr.get_extra_info("ssl_object")
        assert isinstance(sslobj, ssl.SSLObject)
        assert sslobj.version() == "TLSv1.3"
        assert tr.get_extra_info("sslcontext") is ctx
        assert dict(x[0] for x in tr.get_extra_info("peercert")["subject"])["commonName"] == "localhost"
        assert tr.get_extra_info("cipher")[1] == "TLSv1.3"
        assert tr.get_extra_info("compression") is None
        assert tr.get_extra_info("peername") == (host, port)
        assert isinstance(tr, asyncio.Transport)
        payload = os.urandom(3 * 1024 * 1024)
        tr.write(payload)
        assert await pr.wait_bytes(len(payload)) == payload
        tr.close()
        assert await pr.lost is None
        assert pr.lost_calls == [None]
        srv.close()
        await srv.wait_closed()

    run(main())
    fd_check()


def test_server_hostname_for_an_ip_address(loop, run, pki):
    async def main():
        srv, (host, port) = await tls_echo_server(loop, pki)
        tr, pr = await loop.create_connection(Recorder, host, port, ssl=pki.client_context(),
                                              server_hostname="localhost")
        tr.write(b"named")
        assert await pr.wait_bytes(5) == b"named"
        tr.close()
        await pr.lost
        srv.close()
        await srv.wait_closed()

    run(main())


def test_wrong_server_hostname_fails_verification(loop, run, pki, fd_check):
    async def main():
        srv, (host, port) = await tls_echo_server(loop, pki)
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.create_connection(Recorder, host, port, ssl=pki.client_context(),
                                         server_hostname="not-this-host.test")
        srv.close()
        await srv.wait_closed()

    run(main())
    fd_check()


def test_untrusted_certificate_fails(loop, run, pki):
    async def main():
        srv, (host, port) = await tls_echo_server(loop, pki)
        with pytest.raises(ssl.SSLCertVerificationError):
            await loop.create_connection(Recorder, "localhost", port,
                                         ssl=ssl.create_default_context())
        srv.close()
        await srv.wait_closed()

    run(main())


def test_server_hostname_without_ssl_is_an_error(loop, run):
    async def main():
        with pytest.raises(ValueError):
            await loop.create_connection(Recorder, "127.0.0.1", 1, server_hostname="x")

    run(main())


def test_handshake_timeout(loop, run, pki, fd_check):
    """A peer that accepts TCP and never answers the ClientHello."""

    async def main():
        accepted = []

        def factory():
            accepted.append(Recorder(eof_keeps_open=False))
            return accepted[-1]

        silent = await loop.create_server(factory, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionAbortedError):
            await loop.create_connection(Recorder, "localhost", port, ssl=pki.client_context(),
                                         ssl_handshake_timeout=0.2)
        # The aborted client closed its socket: the silent side sees EOF and closes too.
        await asyncio.wait_for(accepted[0].lost, 5)
        silent.close()
        await silent.wait_closed()

    run(main())
    fd_check()


def test_close_notify_reaches_eof_received(loop, run, pki):
    async def main():
        server_protos = []

        def factory():
            server_protos.append(Recorder(eof_keeps_open=False))
            return server_protos[-1]

        srv, (host, port) = await tls_echo_server(loop, pki, factory)
        tr, pr = await loop.create_connection(Recorder, "localhost", port, ssl=pki.client_context())
        tr.write(b"bye")
        while not server_protos or len(server_protos[0].data) < 3:
            await asyncio.sleep(0.005)
        tr.close()
        await pr.lost
        sp = server_protos[0]
        await asyncio.wait_for(sp.lost, 5)
        assert sp.eof_calls == 1 and sp.lost_calls == [None]
        assert bytes(sp.data) == b"bye"
        srv.close()
        await srv.wait_closed()

    run(main())


def test_shutdown_timeout_when_peer_never_answers_close_notify(loop, run, pki):
    async def main():
        server_protos = []

        def factory():
            server_protos.append(Recorder())
            return server_protos[-1]

        srv, (host, port) = await tls_echo_server(loop, pki, factory)
        tr, pr = await loop.create_connection(Recorder, "localhost", port,
                                              ssl=pki.client_context(), ssl_shutdown_timeout=0.2)
        while not server_protos or server_protos[0].transport is None:
            await asyncio.sleep(0.005)
        server_protos[0].transport.pause_reading()  # close_notify is never read
        tr.close()
        await asyncio.wait_for(pr.lost, 5)  # the default shutdown timeout is 30 s
        assert len(pr.lost_calls) == 1
        server_protos[0].transport.abort()
        srv.close()
        await srv.wait_closed()

    run(main())


def test_start_tls_upgrades_both_ends(loop, run, pki, fd_check):
    async def main():
        upgraded = loop.create_future()

        class StartTlsServer(asyncio.Protocol):
            """Answers "STARTTLS" with "OK" and then speaks TLS (the SMTP/IMAP pattern)."""

            def connection_made(self, transport):
                self.transport = transport

            def data_received(self, data):
                assert data == b"STARTTLS\n"
                self.transport.pause_reading()
                self.transport.write(b"OK\n")
                loop.create_task(self.upgrade())

            async def upgrade(self):
                echo = Echo()
                try:
                    tls = await loop.start_tls(self.transport, echo, pki.server_context(),
                                               server_side=True)
                except BaseException as exc:
                    self.transport.close()
                    upgraded.set_exception(exc)
                    return
                echo.connection_made(tls)
                upgraded.set_result(tls)

        srv = await loop.create_server(StartTlsServer, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        tr, pr = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"STARTTLS\n")
        assert await pr.wait_bytes(3) == b"OK\n"
        try:
            tls = await loop.start_tls(tr, pr, pki.client_context(), server_hostname="localhost")
        except BaseException:
            tr.close()
            await pr.lost
            raise
        finally:
            srv.close()
            await srv.wait_closed()
        assert tls.get_extra_info("ssl_object").version() == "TLSv1.3"
        assert tr.get_extra_info("ssl_object") is None
        assert isinstance(tls, asyncio.Transport)
        server_tls = await upgraded
        assert server_tls.get_extra_info("ssl_object") is not None
        tls.write(b"secret")
        assert await pr.wait_bytes(9) == b"OK\nsecret"
        tls.close()
        await pr.lost
        assert len(pr.lost_calls) == 1
        await asyncio.sleep(0.01)

    run(main())
    fd_check()


def test_peer_closing_during_the_handshake(loop, run, pki, fd_check):
    """A peer that accepts and closes at once: the TLS connect fails with a connection
    error, and nothing is left open."""

    async def main():
        class Closer(asyncio.Protocol):
            def connection_made(self, transport):
                transport.close()

        srv = await loop.create_server(Closer, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        with pytest.raises((ConnectionError, ssl.SSLError)):
            await loop.create_connection(Recorder, "localhost", port, ssl=pki.client_context())
        srv.close()
        await srv.wait_closed()
        await asyncio.sleep(0.01)

    run(main())
    fd_check()
