"""TLS over corenet's stream transports: ssl= on both ends, server_hostname, TLS 1.3,
extra info, close_notify, handshake and shutdown timeouts, start_tls, half-close."""
from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import ssl

import pytest

from looptools import CORENET_KINDS
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


def test_start_tls_upgrades_both_ends(loop, loop_kind, run, pki, fd_check):
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
            srv.close()   # wait_closed() at the end: from 3.12.1 on it waits for the connection
        assert tls.get_extra_info("ssl_object").version() == "TLSv1.3"
        assert tr.get_extra_info("ssl_object") is None
        assert isinstance(tls, asyncio.Transport)
        assert tls.can_write_eof() == (loop_kind != "asyncio")   # corenet's half-closes
        server_tls = await upgraded
        assert server_tls.get_extra_info("ssl_object") is not None
        tls.write(b"secret")
        assert await pr.wait_bytes(9) == b"OK\nsecret"
        tls.close()
        await pr.lost
        assert len(pr.lost_calls) == 1
        await asyncio.wait_for(srv.wait_closed(), 5)
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


class BioPeer:
    """A blocking TLS peer over a MemoryBIO, run in a thread. Unlike ``ssl.SSLSocket`` it
    can send close_notify and keep reading, so it half-closes TLS the way the transport
    under test must understand (and does so independently of corenet's code)."""

    def __init__(self, sock: socket.socket, ctx: ssl.SSLContext, server_side: bool) -> None:
        self.sock = sock
        sock.settimeout(10)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.incoming, self.outgoing, server_side=server_side,
                                server_hostname=None if server_side else "localhost")
        self._until_done(self.obj.do_handshake)

    def _until_done(self, op):
        while True:
            try:
                result = op()
            except ssl.SSLWantReadError:
                self._flush()
                data = self.sock.recv(65536)
                if not data:
                    self.incoming.write_eof()
                self.incoming.write(data)
                continue
            self._flush()
            return result

    def _flush(self) -> None:
        data = self.outgoing.read()
        if data:
            self.sock.sendall(data)

    def send(self, data: bytes) -> None:
        self._until_done(lambda: self.obj.write(data))

    def send_close_notify(self) -> None:
        try:
            self.obj.unwrap()
        except ssl.SSLWantReadError:
            pass
        self._flush()

    def read_until_close_notify(self) -> bytes:
        got = bytearray()
        while True:
            try:
                chunk = self._until_done(lambda: self.obj.read(65536))
            except ssl.SSLZeroReturnError:
                return bytes(got)
            if not chunk:
                return bytes(got)
            got += chunk

    def tcp_eof(self) -> bool:
        """True when the TCP stream ends with nothing more on it."""
        return self.sock.recv(65536) == b""


def in_thread(target) -> concurrent.futures.Future:
    pool = concurrent.futures.ThreadPoolExecutor(1)
    future = pool.submit(target)
    pool.shutdown(wait=False)
    return future


def serve_one(lsock: socket.socket, pki, script) -> concurrent.futures.Future:
    """Accepts one connection on ``lsock`` in a thread, plays ``script(peer)`` on it as a
    server-side BioPeer and resolves to what the script returns."""
    def server():
        conn, _ = lsock.accept()
        with conn:
            return script(BioPeer(conn, pki.server_context(), server_side=True))
    return in_thread(server)


class BufferedRecorder(Recorder, asyncio.BufferedProtocol):
    """Recorder's callbacks, but receiving through get_buffer/buffer_updated."""

    def get_buffer(self, sizehint):
        self._buf = bytearray(max(sizehint, 1024))
        return self._buf

    def buffer_updated(self, nbytes):
        self.data_received(bytes(self._buf[:nbytes]))


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)  # 3.11's asyncio: no TLS write_eof
@pytest.mark.parametrize("client_factory", [Recorder, BufferedRecorder],
                         ids=["Protocol", "BufferedProtocol"])
def test_write_eof_sends_close_notify_and_the_reply_still_arrives(loop, run, pki, fd_check,
                                                                  client_factory):
    """The request/response pattern over TLS: the client ends its direction with
    write_eof (close_notify, then TCP FIN), the server reads to that end and only then
    answers, and the answer arrives on the half-closed connection (both read paths)."""
    lsock = socket.create_server(("127.0.0.1", 0))

    def script(peer):
        request = peer.read_until_close_notify()
        peer.send(b"reply to " + request)
        peer.send_close_notify()
        return request, peer.tcp_eof()

    async def main():
        done = serve_one(lsock, pki, script)
        try:
            tr, pr = await loop.create_connection(client_factory, "127.0.0.1",
                                                  lsock.getsockname()[1],
                                                  ssl=pki.client_context(),
                                                  server_hostname="localhost")
            assert tr.can_write_eof()
            tr.write(b"question, ")
            tr.writelines([b"in ", b"parts"])
            tr.write_eof()
            with pytest.raises(RuntimeError):
                tr.write(b"too late")
            tr.write_eof()                      # a second call changes nothing
            assert await asyncio.wait_for(pr.lost, 10) is None
            assert bytes(pr.data) == b"reply to question, in parts"
            assert pr.eof_calls == 1 and pr.lost_calls == [None]
            assert await asyncio.wrap_future(done) == (b"question, in parts", True)
        finally:
            lsock.close()

    run(main())
    fd_check()


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)  # 3.11's asyncio closes at once
def test_peer_close_notify_and_eof_received_true_keep_the_writing_side(loop, run, pki,
                                                                       fd_check, caplog):
    """The peer half-closes TLS (close_notify, then TCP FIN); the server's eof_received
    returns True, so it may still answer, and its close() then ends with its own
    close_notify. asyncio only warns that the true value has no effect with TLS."""

    class AnswersAtEof(Recorder):
        def eof_received(self):
            super().eof_received()
            self.transport.write(b"answer to " + bytes(self.data))
            asyncio.get_running_loop().call_later(0.05, self.transport.close)
            return True

    protos: list[AnswersAtEof] = []

    def factory():
        protos.append(AnswersAtEof())
        return protos[-1]

    async def main():
        srv = await loop.create_server(factory, "127.0.0.1", 0, ssl=pki.server_context())
        port = srv.sockets[0].getsockname()[1]

        def client():
            with socket.create_connection(("127.0.0.1", port)) as sock:
                peer = BioPeer(sock, pki.client_context(), server_side=False)
                peer.send(b"the question")
                peer.send_close_notify()
                sock.shutdown(socket.SHUT_WR)
                answer = peer.read_until_close_notify()
                return answer, peer.tcp_eof()

        try:
            with caplog.at_level("WARNING", logger="asyncio"):
                answer, eof = await asyncio.wrap_future(in_thread(client))
                sp = protos[0]
                assert await asyncio.wait_for(sp.lost, 10) is None
        finally:
            srv.close()
            await srv.wait_closed()
        assert answer == b"answer to the question" and eof
        assert sp.eof_calls == 1 and sp.lost_calls == [None]
        assert not [r for r in caplog.records if "eof_received" in r.getMessage()]

    run(main())
    fd_check()


def test_tls_transports_say_whether_they_can_write_eof(loop, loop_kind, run, pki, fd_check):
    """corenet's TLS transports half-close (the two tests above); stock asyncio's say
    they cannot and raise NotImplementedError, as documented."""

    async def main():
        srv, (host, port) = await tls_echo_server(loop, pki)
        tr, pr = await loop.create_connection(Recorder, "localhost", port, ssl=pki.client_context())
        if loop_kind == "asyncio":
            assert not tr.can_write_eof()
            with pytest.raises(NotImplementedError):
                tr.write_eof()
            tr.close()
        else:
            assert tr.can_write_eof()
            tr.write(b"echo me")
            tr.write_eof()
            # Echo answers, then its transport closes on our close_notify.
            assert await pr.wait_bytes(7) == b"echo me"
        assert await asyncio.wait_for(pr.lost, 10) is None
        srv.close()
        await srv.wait_closed()

    run(main())
    fd_check()


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)  # 3.11's asyncio: no TLS write_eof
def test_write_eof_waits_for_unread_records_while_reading_is_paused(loop, run, pki, fd_check):
    """OpenSSL's shutdown reads the records still pending and fails on application data
    among them: with reading paused and the peer's data unread, close_notify waits until
    reading resumes, and nothing is lost on either side."""
    lsock = socket.create_server(("127.0.0.1", 0))
    early = os.urandom(48 * 1024)

    def script(peer):
        peer.send(early)
        request = peer.read_until_close_notify()
        peer.send(b"reply")
        peer.send_close_notify()
        return request

    async def main():
        done = serve_one(lsock, pki, script)
        try:
            tr, pr = await loop.create_connection(Recorder, "127.0.0.1", lsock.getsockname()[1],
                                                  ssl=pki.client_context(),
                                                  server_hostname="localhost")
            tr.pause_reading()
            for _ in range(200):                # let the early data reach the TLS layer
                await asyncio.sleep(0.005)
                if tr.get_extra_info("ssl_object").pending() or \
                        tr._ssl_protocol._incoming.pending:
                    break
            tr.write(b"request")
            tr.write_eof()
            await asyncio.sleep(0.05)
            assert not done.done(), "close_notify went out before the unread records"
            tr.resume_reading()
            assert await asyncio.wait_for(pr.lost, 10) is None
            assert bytes(pr.data) == early + b"reply"
            assert await asyncio.wrap_future(done) == b"request"
        finally:
            lsock.close()

    run(main())
    fd_check()


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)  # 3.11's asyncio: the SSLError below
def test_close_while_the_peer_is_still_sending_ends_cleanly(loop, run, pki, fd_check):
    """close() sends close_notify while the peer's data is still arriving: the records that
    come after it are dropped (the application asked for no more), not fed to OpenSSL's
    shutdown, which fails on application data; the peer gets close_notify and the transport
    ends with connection_lost(None), nothing reported."""
    lsock = socket.create_server(("127.0.0.1", 0))
    chunk = os.urandom(16 * 1024)

    def script(peer):
        for _ in range(64):                     # 1 MiB, more than the socket buffers hold
            peer.send(chunk)
        got = peer.read_until_close_notify()
        peer.send_close_notify()
        return got

    reports = []

    async def main():
        loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
        done = serve_one(lsock, pki, script)
        try:
            tr, pr = await loop.create_connection(Recorder, "127.0.0.1", lsock.getsockname()[1],
                                                  ssl=pki.client_context(),
                                                  server_hostname="localhost")
            await pr.wait_bytes(len(chunk))
            tr.close()
            assert await asyncio.wait_for(pr.lost, 10) is None
            assert pr.lost_calls == [None]
            assert await asyncio.wait_for(asyncio.wrap_future(done), 10) == b""
        finally:
            lsock.close()

    run(main())
    assert reports == []
    fd_check()
