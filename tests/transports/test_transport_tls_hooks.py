"""The server side's published API of ``corenet.tls.SSLProtocol``: the hooks called when a
handshake succeeds, fails or times out (exactly one per handshake that ends on an open
connection) and ``set_app_protocol``, which lets the application protocol be made only once
the handshake has succeeded. The TLS protocol runs as a listener's own protocol, under
``loop.create_server`` with a plain socket, on every loop kind."""
from __future__ import annotations

import asyncio
import os
import socket
import ssl

from corenet import tls
from transport_helpers import Echo, Recorder, stop_server


class Hooked(tls.SSLProtocol):
    """Records its hooks; makes its application protocol (an Echo) on success."""

    def __init__(self, loop, context, log: list, timeout: float = 5.0, make_app: bool = True):
        super().__init__(loop, None, context, None, True, None, True, timeout)
        self.log = log
        self.make_app = make_app
        self.apps: list[Echo] = []

    def handshake_succeeded(self):
        # The handshake is done: what it settled can be read here.
        self.log.append(("succeeded", self.session_reused,
                         self._app_transport.get_extra_info("ssl_object").version()))
        if self.make_app:
            app = Echo()
            self.apps.append(app)
            self.set_app_protocol(app)

    def handshake_failed(self, exc):
        self.log.append(("failed", exc))

    def handshake_timed_out(self):
        self.log.append(("timed_out", self.state_name))

    def connection_lost(self, exc):
        self.log.append(("lost", exc))
        super().connection_lost(exc)


async def _listen(loop, pki, log: list, made: list, **kw):
    context = pki.server_context()     # one, as its session tickets' keys are its own

    def factory():
        protocol = Hooked(loop, context, log, **kw)
        made.append(protocol)
        return protocol

    srv = await loop.create_server(factory, "127.0.0.1", 0)
    return srv, srv.sockets[0].getsockname()[1]


def _kinds(log: list) -> list[str]:
    return [entry[0] for entry in log]


def test_success_calls_its_hook_once_and_then_the_protocol_it_set(loop, run, pki, fd_check):
    """Each of two connections calls handshake_succeeded once, with the TLS version
    readable, and gets the application protocol set in it, which then echoes and is told
    of the connection's end once."""

    async def main():
        log: list = []
        made: list[Hooked] = []
        srv, port = await _listen(loop, pki, log, made)
        for _ in range(2):
            tr, pr = await loop.create_connection(Recorder, "127.0.0.1", port,
                                                  ssl=pki.client_context(),
                                                  server_hostname="localhost")
            payload = os.urandom(20_000)
            tr.write(payload)
            assert await asyncio.wait_for(pr.wait_bytes(len(payload)), 5) == payload
            tr.close()
            await asyncio.wait_for(pr.lost, 5)
        await asyncio.sleep(0.05)
        await stop_server(srv)
        assert _kinds(log) == ["succeeded", "lost"] * 2
        assert log[0] == log[2] == ("succeeded", False, "TLSv1.3")
        assert [len(p.apps) for p in made] == [1, 1]
        assert [p.apps[0].lost_calls for p in made] == [1, 1]

    run(main())
    fd_check()


def test_a_resumed_session_reads_as_resumed_in_the_hook(loop, run, pki, fd_check):
    """The client offers the session of its first connection: the server's hook sees
    session_reused false, then true."""

    async def main():
        log: list = []
        made: list[Hooked] = []
        srv, port = await _listen(loop, pki, log, made)
        ctx = pki.client_context()
        tr, pr = await loop.create_connection(Recorder, "127.0.0.1", port, ssl=ctx,
                                              server_hostname="localhost")
        tr.write(b"ping")
        await asyncio.wait_for(pr.wait_bytes(4), 5)
        session = tr.get_extra_info("ssl_object").session
        tr.close()
        await asyncio.wait_for(pr.lost, 5)
        # asyncio has no way to pass a session: a blocking client in a thread offers it.

        def resume() -> bool:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost",
                                     session=session) as s:
                    s.sendall(b"pong")
                    assert s.recv(4) == b"pong"
                    return s.session_reused

        assert await loop.run_in_executor(None, resume)
        await asyncio.sleep(0.05)
        await stop_server(srv)
        assert _kinds(log) == ["succeeded", "lost"] * 2
        assert [log[0][1], log[2][1]] == [False, True]

    run(main())
    fd_check()


def test_a_failed_handshake_calls_its_hook_with_the_error_and_makes_no_app(loop, run, pki,
                                                                           fd_check):
    """Plain text where a ClientHello belongs: handshake_failed once with OpenSSL's error,
    no other hook, no application protocol, the connection closed."""

    async def main():
        log: list = []
        made: list[Hooked] = []
        srv, port = await _listen(loop, pki, log, made)
        tr, pr = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"GET / HTTP/1.0\r\n\r\n" * 10)
        await asyncio.wait_for(pr.lost, 5)
        await asyncio.sleep(0.05)
        await stop_server(srv)
        assert _kinds(log) == ["failed", "lost"]
        assert isinstance(log[0][1], ssl.SSLError)
        assert made[0].apps == []
        assert bytes(pr.data) == b""

    run(main())
    fd_check()


def test_a_stream_ending_in_the_handshake_fails_it_with_connection_reset(loop, run, pki,
                                                                         fd_check):
    """The client half-closes before its ClientHello is complete: handshake_failed once,
    with ConnectionResetError."""

    async def main():
        log: list = []
        made: list[Hooked] = []
        srv, port = await _listen(loop, pki, log, made)
        tr, pr = await loop.create_connection(Recorder, "127.0.0.1", port)
        tr.write(b"\x16\x03\x01\x02\x00\x01")     # the start of a ClientHello record
        tr.write_eof()
        await asyncio.wait_for(pr.lost, 5)
        await asyncio.sleep(0.05)
        await stop_server(srv)
        assert _kinds(log) == ["failed", "lost"]
        assert isinstance(log[0][1], ConnectionResetError)
        assert made[0].apps == []

    run(main())
    fd_check()


def test_a_stalled_handshake_calls_the_timeout_hook_once_and_is_aborted(loop, run, pki,
                                                                        fd_check):
    """A client that sends nothing: handshake_timed_out once, while the handshake is in
    progress, no failure hook, and the connection aborted soon after the timeout."""

    async def main():
        log: list = []
        made: list[Hooked] = []
        srv, port = await _listen(loop, pki, log, made, timeout=0.2)
        tr, pr = await loop.create_connection(Recorder, "127.0.0.1", port)
        start = loop.time()
        await asyncio.wait_for(pr.lost, 5)
        waited = loop.time() - start
        await asyncio.sleep(0.05)
        await stop_server(srv)
        assert _kinds(log) == ["timed_out", "lost"]
        assert isinstance(log[1][1], ConnectionAbortedError)
        assert log[0][1] == "DO_HANDSHAKE"
        assert 0.15 <= waited < 2.0
        assert made[0].apps == []

    run(main())
    fd_check()


def test_a_connection_lost_in_the_handshake_calls_no_hook(loop, run, pki, fd_check):
    """A client that resets its connection mid-handshake: connection_lost only."""

    async def main():
        log: list = []
        made: list[Hooked] = []
        srv, port = await _listen(loop, pki, log, made)
        sock = socket.create_connection(("127.0.0.1", port))
        for _ in range(200):
            if made:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)                   # its connection_made
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()                                # RST
        for _ in range(200):
            if log:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        await stop_server(srv)
        assert _kinds(log) == ["lost"]
        assert made[0].apps == []

    run(main())
    fd_check()


def test_no_app_protocol_after_success_is_reported_and_closes(loop, run, pki, fd_check):
    """A hook that sets no application protocol on a protocol made without one: the
    connection is closed and the loop's exception handler told why."""

    async def main():
        errors: list = []
        loop.set_exception_handler(lambda _loop, context: errors.append(context))
        log: list = []
        made: list[Hooked] = []
        srv, port = await _listen(loop, pki, log, made, make_app=False)
        tr, pr = await loop.create_connection(Recorder, "127.0.0.1", port,
                                              ssl=pki.client_context(),
                                              server_hostname="localhost")
        tr.write(b"ping")
        await asyncio.wait_for(pr.lost, 5)
        await asyncio.sleep(0.05)
        await stop_server(srv)
        assert _kinds(log) == ["succeeded", "lost"]
        assert bytes(pr.data) == b""
        assert any(isinstance(c.get("exception"), RuntimeError)
                   and "application protocol" in str(c["exception"]) for c in errors)

    run(main())
    fd_check()
