"""The daemon's TLS server (``resolver.daemon.tls_server``) with protocols of the tests' own,
on every loop kind (corenet's watchers and asyncio's add_reader), against CPython's ``ssl``
as the client: the application protocol is made with the first record, reads and writes
(buffered and copied), write flow control, read pausing, close and abort, an exception in
the protocol, a record that does not decrypt, ALPN, the minimum TLS version, the handshake
timeout and the accept-time caps; no descriptor is left open."""
from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import ssl
import warnings

import pytest

from looptools import open_fds
from resolver.daemon.tls_server import ServerContext, TLSService
from tls_certs import CA, SERVER_NAME


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    ca = CA(tmp_path_factory.mktemp("ca"))
    pem, key = ca.issue("server")
    return ca, str(pem), str(key)


class Recorder(asyncio.Protocol):
    """Keeps what happens to it; answers each read with ``reply(data)`` when set."""

    made: list = []

    def __init__(self, reply=None):
        self.reply = reply
        self.data = bytearray()
        self.events: list = []
        self.lost = None
        Recorder.made.append(self)

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("made")

    def data_received(self, data):
        self.data += data
        if self.reply is not None:
            self.reply(self, bytes(data))

    def eof_received(self):
        self.events.append("eof")
        return False

    def pause_writing(self):
        self.events.append("pause")

    def resume_writing(self):
        self.events.append("resume")

    def connection_lost(self, exc):
        self.events.append("lost")
        self.lost = exc


class Buffered(asyncio.BufferedProtocol, Recorder):
    def __init__(self, reply=None):
        Recorder.__init__(self, reply)
        self.buf = bytearray(100)

    def get_buffer(self, sizehint):
        return self.buf

    def buffer_updated(self, nbytes):
        self.data_received(bytes(self.buf[:nbytes]))


def client_context(ca: CA, alpn=None, **versions) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca.pem))
    for name, value in versions.items():
        setattr(ctx, name, value)
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


def serve(loop, pair, factory, counts=None, alpn=("dot",), handshake_timeout=5.0,
          idle_timeout=5.0, per_client=100, established=None):
    ca, pem, key = pair
    listening = socket.create_server(("127.0.0.1", 0))
    service = TLSService(loop, ServerContext(pem, key, alpn, 2), factory,
                         counts if counts is not None else {}, 100, per_client,
                         handshake_timeout, idle_timeout, established=established)
    return service, service.serve(listening), listening.getsockname()[1]


def connect(ca, port, ragged_eof_is_error=False, **kw) -> ssl.SSLSocket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        return client_context(ca, **kw).wrap_socket(
            raw, server_hostname=SERVER_NAME, suppress_ragged_eofs=not ragged_eof_is_error)
    except BaseException:
        raw.close()
        raise


async def until(predicate, what: str, seconds: float = 5.0) -> None:
    for _ in range(int(seconds * 100)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def in_thread(loop, fn, *args):
    return loop.run_in_executor(None, fn, *args)


@pytest.mark.parametrize("protocol", [Recorder, Buffered])
def test_answers_flow_and_the_protocol_is_made_with_the_first_record(run, loop, pair,
                                                                      protocol):
    ca = pair[0]
    fds = open_fds()
    Recorder.made = []
    counts: dict = {}

    def echo(self, data):
        self.transport.writelines([data, b"|"])     # two records, one send

    async def go():
        service, server, port = serve(loop, pair, lambda: protocol(echo), counts)

        def talk():
            with connect(ca, port) as s:
                silent_made = len(Recorder.made)
                s.sendall(b"x" * 250)                 # more than a Buffered read holds
                got = b""
                while got.count(b"x") < 250:
                    got += s.recv(4096)
                return silent_made, got

        try:
            silent_made, got = await in_thread(loop, talk)
            assert silent_made == 0                   # nothing asked yet: no protocol
            assert got.replace(b"|", b"") == b"x" * 250
            app = Recorder.made[0]
            await until(lambda: "lost" in app.events, "connection_lost")
            # (the client closes without close_notify, and with the session tickets unread
            # its kernel may reset the stream: eof_received, or an error, precedes)
            assert app.events[0] == "made" and app.events[-1] == "lost"
            assert app.events.count("lost") == 1
            assert len(Recorder.made) == 1 and counts["handshakes"] == 1
            assert service.handshaking == 0
        finally:
            server.close()

    run(go())
    assert open_fds() == fds


def test_a_client_that_does_not_read_pauses_the_writer_until_it_does(run, loop, pair):
    ca = pair[0]
    payload = bytes(range(256)) * 1024                       # 256 KiB
    chunks = [payload[i:i + 16384] for i in range(0, len(payload), 16384)]
    Recorder.made = []

    def flood(self, data):
        if data == b"go":
            # A small send buffer: what the client does not read waits in the transport.
            self.transport.get_extra_info("socket").setsockopt(
                socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            for chunk in chunks:
                self.transport.write(chunk)

    async def go():
        _, server, port = serve(loop, pair, lambda: Recorder(flood))

        def client():
            with connect(ca, port) as s:
                s.sendall(b"go")
                digest, n = hashlib.sha256(), 0
                while n < len(payload):
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    digest.update(chunk)
                    n += len(chunk)
                return n, digest.hexdigest()

        try:
            task = in_thread(loop, client)
            await until(lambda: Recorder.made and "pause" in Recorder.made[0].events,
                        "pause_writing")
            n, digest = await task
            assert n == len(payload) and digest == hashlib.sha256(payload).hexdigest()
            app = Recorder.made[0]
            await until(lambda: "lost" in app.events, "connection_lost")
            assert app.events.index("pause") < app.events.index("resume")
            assert app.lost is None
        finally:
            server.close()

    run(go(), timeout=30)


def test_reading_paused_holds_the_records_until_resumed(run, loop, pair):
    ca = pair[0]
    Recorder.made = []

    def pause_first(self, data):
        if len(self.data) == len(data):
            self.transport.pause_reading()

    async def go():
        _, server, port = serve(loop, pair, lambda: Recorder(pause_first))
        s = await in_thread(loop, connect, ca, port)
        try:
            await in_thread(loop, s.sendall, b"first")
            await until(lambda: Recorder.made and Recorder.made[0].data, "the first read")
            app = Recorder.made[0]
            assert not app.transport.is_reading()
            await in_thread(loop, s.sendall, b"second" * 100)
            await asyncio.sleep(0.2)
            assert bytes(app.data) == b"first"
            app.transport.resume_reading()
            await until(lambda: len(app.data) == 5 + 600, "the held records")
            assert bytes(app.data) == b"first" + b"second" * 100
        finally:
            s.close()
            server.close()

    run(go())


def test_close_sends_close_notify_and_abort_does_not(run, loop, pair):
    ca = pair[0]
    Recorder.made = []

    def end(self, data):
        self.transport.write(b"bye")
        if data == b"close":
            self.transport.close()
        else:
            self.transport.abort()

    async def go():
        _, server, port = serve(loop, pair, lambda: Recorder(end))

        def client(how: bytes):
            with connect(ca, port, ragged_eof_is_error=True) as s:
                s.sendall(how)
                got = b""
                try:
                    while chunk := s.recv(100):
                        got += chunk
                    return got, "close_notify"           # recv() returned b"": a clean end
                except (ssl.SSLError, OSError) as e:
                    return got, type(e).__name__

        try:
            got, end_seen = await in_thread(loop, client, b"close")
            assert got == b"bye" and end_seen == "close_notify"
            got, end_seen = await in_thread(loop, client, b"abort")
            assert end_seen != "close_notify"            # the stream ended without it
            for app in Recorder.made:
                await until(lambda: "lost" in app.events, "connection_lost")
                assert app.events.count("lost") == 1 and app.lost is None
        finally:
            server.close()

    run(go())


def test_an_exception_in_the_protocol_ends_its_connection_only(run, loop, pair):
    ca = pair[0]
    Recorder.made = []
    errors = []
    loop.set_exception_handler(lambda _, context: errors.append(context))

    def boom(self, data):
        if data == b"boom":
            raise ValueError("bad protocol")
        self.transport.write(data)

    async def go():
        _, server, port = serve(loop, pair, lambda: Recorder(boom))

        def client(msg: bytes):
            with connect(ca, port) as s:
                s.sendall(msg)
                try:
                    return s.recv(100)
                except (ssl.SSLError, OSError):
                    return None

        try:
            assert await in_thread(loop, client, b"boom") in (b"", None)
            assert await in_thread(loop, client, b"fine") == b"fine"
            broken = Recorder.made[0]
            await until(lambda: "lost" in broken.events, "connection_lost")
            assert isinstance(broken.lost, ValueError)
            assert [type(c["exception"]) for c in errors] == [ValueError]
        finally:
            server.close()

    run(go())


def test_a_record_that_does_not_decrypt_is_counted_and_ends_the_connection(run, loop, pair):
    ca = pair[0]
    Recorder.made = []
    counts: dict = {}

    async def go():
        _, server, port = serve(loop, pair, lambda: Recorder(lambda s, d: None), counts)

        def client():
            with connect(ca, port) as s:
                s.sendall(b"hello")
                while not (Recorder.made and Recorder.made[0].data):
                    pass
                with socket.socket(fileno=os.dup(s.fileno())) as raw:
                    raw.settimeout(5)
                    raw.sendall(b"\x17\x03\x03\x00\x20" + b"\x00" * 32)
                    try:
                        while raw.recv(100):
                            pass
                    except ConnectionResetError:
                        pass

        try:
            await in_thread(loop, client)
            app = Recorder.made[0]
            await until(lambda: "lost" in app.events, "connection_lost")
            assert isinstance(app.lost, ssl.SSLError) and "TLS error" in str(app.lost)
            assert counts["bad_records"] == 1
        finally:
            server.close()

    run(go())


@pytest.mark.parametrize("offered, chosen", [(["h2", "http/1.1"], "h2"),
                                             (["http/1.1"], "http/1.1"),
                                             (["spdy/3"], None), (None, None)])
def test_alpn(run, loop, pair, offered, chosen):
    ca = pair[0]
    Recorder.made = []

    def tell(self, data):
        obj = self.transport.get_extra_info("ssl_object")
        self.transport.write(repr((obj.selected_alpn_protocol(), obj.version())).encode())

    async def go():
        _, server, port = serve(loop, pair, lambda: Recorder(tell),
                                alpn=("h2", "http/1.1"))

        def client():
            with connect(ca, port, alpn=offered) as s:
                s.sendall(b"?")
                return s.selected_alpn_protocol(), s.recv(100)

        try:
            mine, theirs = await in_thread(loop, client)
            assert mine == chosen and theirs == repr((chosen, "TLSv1.3")).encode()
        finally:
            server.close()

    run(go())


def test_tls_1_1_is_refused_and_1_2_served(run, loop, pair):
    ca = pair[0]
    counts: dict = {}
    Recorder.made = []

    async def go():
        _, server, port = serve(loop, pair, lambda: Recorder(lambda s, d: s.transport.write(d)),
                                counts)

        def client(version):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)    # TLS 1.1's names
                s = connect(ca, port, minimum_version=version, maximum_version=version)
            with s:
                s.sendall(b"v")
                return s.recv(10), s.version()

        try:
            with pytest.raises((ssl.SSLError, OSError)):
                await in_thread(loop, client, ssl.TLSVersion.TLSv1_1)
            assert await in_thread(loop, client, ssl.TLSVersion.TLSv1_2) == (b"v", "TLSv1.2")
            await until(lambda: counts["handshake_failed"] == 1, "the failed handshake")
        finally:
            server.close()

    run(go())


def test_stalled_handshakes_time_out_and_the_caps_refuse_at_accept(run, loop, pair):
    ca = pair[0]
    counts: dict = {}
    established = set()
    fds = open_fds()

    async def go():
        service, server, port = serve(loop, pair, Recorder, counts, handshake_timeout=0.3,
                                      per_client=2, established=established)
        stalled = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        try:
            await until(lambda: service.handshaking == 2, "two handshakes")
            extra = socket.create_connection(("127.0.0.1", port))
            await until(lambda: counts["handshake_refused"] == 1, "the refusal")
            extra.close()
            await until(lambda: counts["handshake_timeout"] == 2, "the timeouts", 3)
            assert service.handshaking == 0
            for s in stalled:
                s.settimeout(2)
                assert s.recv(10) == b""                 # closed by the server
            # The application's connections count against the cap in all too.
            established.update(range(100))
            late = socket.create_connection(("127.0.0.1", port))
            await until(lambda: counts["handshake_refused"] == 2, "the second refusal")
            late.close()
        finally:
            for s in stalled:
                s.close()
            server.close()

    run(go())
    assert open_fds() == fds


# Run in a process of its own: its descriptor limit is lowered so that accept4 fails with
# EMFILE once a few connections are pending. Prints the port, then (after the parent's
# connections) the counters as a dict.
EMFILE_SERVER = r"""
import asyncio, resource, socket, sys
sys.path[:0] = sys.argv[3:]
from looptools import make_loop, open_fds
from resolver.daemon.tls_server import ServerContext, TLSService

class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport = transport
    def data_received(self, data):
        self.transport.write(data)

loop = make_loop(sys.argv[1])
listening = socket.create_server(("127.0.0.1", 0))
counts = {}
pem, key = sys.argv[2].split(",")
service = TLSService(loop, ServerContext(pem, key, ("dot",), 2), Echo, counts, 100, 100,
                     0.5, 5.0)
server = service.serve(listening)
limit = max(open_fds()) + 7      # room for a few connections only
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
print(listening.getsockname()[1], flush=True)

async def main():
    await loop.run_in_executor(None, sys.stdin.readline)     # the parent is done
    print(repr(counts), flush=True)

loop.run_until_complete(main())
"""


def test_out_of_descriptors_the_listener_pauses_and_then_serves(loop_kind, pair, tmp_path):
    """accept4 failing for want of descriptors (EMFILE) pauses the listener for
    ``ACCEPT_RETRY_DELAY`` rather than spinning on the readable socket: it is counted once
    per pause, the waiting connections are accepted when descriptors are free again (the
    pending ones time out), and a client then gets its handshake and its echo."""
    import subprocess
    import sys
    import time
    from pathlib import Path

    ca, pem, key = pair
    tests = Path(__file__).resolve().parent
    child = subprocess.Popen(
        [sys.executable, "-c", EMFILE_SERVER, loop_kind, f"{pem},{key}", str(tests.parent),
         str(tests)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    clients: list = []
    try:
        port = int(child.stdout.readline())
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5)
                   for _ in range(20)]                 # no handshake: each stays pending
        time.sleep(3.5)            # pauses of ACCEPT_RETRY_DELAY while they time out
        with connect(ca, port) as s:
            s.sendall(b"ping")
            assert s.recv(16) == b"ping"
        child.stdin.write("\n")
        child.stdin.flush()
        counts = eval(child.stdout.readline())
        assert child.wait(10) == 0
    finally:
        for c in clients:
            c.close()
        if child.poll() is None:
            child.kill()
            child.wait()
    assert 1 <= counts["accept_failed"] <= 10, counts          # paused, not spinning
    assert counts["handshake_timeout"] == 20, counts            # every one was accepted
    assert counts["handshakes"] == 1, counts
