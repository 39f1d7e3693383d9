"""The contextvars context a protocol's callbacks run in: the one current when the transport
was made (for the connections of a server, when the server was started, the protocol
factory included), whoever sets the callback off.

Stock asyncio is the oracle for the callbacks that the network sets off. Those that a
caller's own call sets off (pause_writing from write(), resume_writing after it, the
connection_lost after a close(), an error from sendto(), the reads after a resume_reading())
asyncio runs in the caller's context instead: those checks run on corenet only, whose rule
has no such exception (uvloop keeps the same rule)."""
from __future__ import annotations

import asyncio
import contextvars
import os
import socket

import pytest

from looptools import CORENET_KINDS

cvar: contextvars.ContextVar[str] = contextvars.ContextVar("cvar", default="outside")

CHUNK = 65536
MAX_CHUNKS = 512      # bounds the writes that fill the buffers (32 MiB)
# What asyncio runs in the caller's context (see the module).
CALLER_SET_OFF = {"pause_writing", "resume_writing"}


class _Seen:
    """Notes ``cvar.get()`` in each callback, and wakes whoever waits for a condition."""

    def __init__(self) -> None:
        self.seen: dict[str, list[str]] = {}
        self.transport = None
        self.data = bytearray()
        self.eof_keeps_open = False
        self._waits: list[tuple[object, asyncio.Future]] = []

    def _note(self, name: str) -> None:
        self.seen.setdefault(name, []).append(cvar.get())
        for cond, fut in self._waits:
            if not fut.done() and cond():
                fut.set_result(None)

    async def until(self, cond) -> None:
        if cond():
            return
        fut = asyncio.get_running_loop().create_future()
        self._waits.append((cond, fut))
        await fut

    def called(self, name: str) -> bool:
        return name in self.seen

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._note("connection_made")

    def eof_received(self):
        self._note("eof_received")
        return self.eof_keeps_open

    def pause_writing(self) -> None:
        self._note("pause_writing")

    def resume_writing(self) -> None:
        self._note("resume_writing")

    def connection_lost(self, exc) -> None:
        self._note("connection_lost")


class Plain(_Seen, asyncio.Protocol):
    def data_received(self, data) -> None:
        self.data += data
        self._note("data_received")


class Buffered(_Seen, asyncio.BufferedProtocol):
    def __init__(self) -> None:
        super().__init__()
        self.buf = bytearray(CHUNK)

    def get_buffer(self, sizehint):
        self._note("get_buffer")
        return self.buf

    def buffer_updated(self, nbytes) -> None:
        self.data += self.buf[:nbytes]
        self._note("buffer_updated")


PROTOCOLS = {"plain": Plain, "buffered": Buffered}


async def _server_in(loop, value: str, proto_cls, **kw):
    """A server started where cvar is ``value``: (server, address, its protocols so far)."""
    accepted: list = []

    def factory():
        accepted.append(proto_cls())
        return accepted[-1]

    cvar.set(value)
    srv = await loop.create_server(factory, "127.0.0.1", 0, **kw)
    return srv, srv.sockets[0].getsockname(), accepted


async def _first(accepted: list):
    """The first accepted connection's protocol, once its connection_made has run."""
    while not accepted or accepted[0].transport is None:
        await asyncio.sleep(0.001)
    return accepted[0]


async def _close(transport, srv, *protos: _Seen) -> None:
    """Closes ``transport``, waits for the connection_lost of ``protos``, stops ``srv``."""
    transport.close()
    for proto in protos:
        await proto.until(lambda proto=proto: proto.called("connection_lost"))
    srv.close()
    await srv.wait_closed()


def _only_in(proto: _Seen, value: str) -> None:
    """Every callback ``proto`` saw ran where cvar is ``value``."""
    assert {name: set(v) for name, v in proto.seen.items()} == {n: {value} for n in proto.seen}


def _as(value: str, fn, *args):
    """``fn(*args)`` in a context where cvar is ``value``."""
    ctx = contextvars.copy_context()
    ctx.run(cvar.set, value)
    return ctx.run(fn, *args)


async def _fill(writer, writer_proto: _Seen, reader: asyncio.Transport, reader_proto: _Seen,
                reader_value: str):
    """Writes until ``writer_proto`` is asked to pause (the reader is paused), then lets the
    reader drain it all: pause_writing comes from write(), resume_writing after it. The
    reader resumes in a context with its own value (asyncio reads on in the context of
    resume_reading's caller)."""
    reader.pause_reading()
    writer.set_write_buffer_limits(high=4 * CHUNK, low=0)
    start = len(reader_proto.data)
    block = os.urandom(CHUNK)
    written = 0
    for _ in range(MAX_CHUNKS):
        writer.write(block)
        written += CHUNK
        if writer_proto.called("pause_writing"):
            break
    assert writer_proto.called("pause_writing"), "the write buffer never filled"
    _as(reader_value, reader.resume_reading)
    await writer_proto.until(lambda: writer_proto.called("resume_writing"))
    await reader_proto.until(lambda: len(reader_proto.data) >= start + written)


@pytest.mark.parametrize("family", ["tcp", "unix"])
@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize("kind", ["plain", "buffered"])
def test_stream_callbacks_run_in_the_context_the_transport_was_made_in(
        loop, run, loop_kind, pki, tmp_path, family, tls, kind):
    proto_cls = PROTOCOLS[kind]
    server_seen: dict[str, list[str]] = {}
    server_protos: list[_Seen] = []

    def factory():
        server_seen.setdefault("factory", []).append(cvar.get())
        p = proto_cls()
        p.eof_keeps_open = True
        server_protos.append(p)
        return p

    async def main():
        ssl_kw = {"ssl": pki.server_context()} if tls else {}
        client_kw = {"ssl": pki.client_context(), "server_hostname": "localhost"} if tls else {}
        cvar.set("server")
        if family == "tcp":
            srv = await loop.create_server(factory, "127.0.0.1", 0, **ssl_kw)
            addr = srv.sockets[0].getsockname()
        else:
            addr = str(tmp_path / "s.sock")
            srv = await loop.create_unix_server(factory, addr, **ssl_kw)
        cvar.set("client")
        cp = proto_cls()
        if family == "tcp":
            ct, _ = await loop.create_connection(lambda: cp, *addr, **client_kw)
        else:
            ct, _ = await loop.create_unix_connection(lambda: cp, addr, **client_kw)
        # From here on the test's own calls run in a third context.
        cvar.set("driver")
        sp = await _first(server_protos)
        ct.write(b"ping")
        await sp.until(lambda: len(sp.data) >= 4)
        sp.transport.write(b"pong")
        await cp.until(lambda: len(cp.data) >= 4)
        await _fill(ct, cp, sp.transport, sp, "server")
        await _fill(sp.transport, sp, ct, cp, "client")
        if ct.can_write_eof():
            ct.write_eof()
            await sp.until(lambda: sp.called("eof_received"))
        # The server closes; the client's eof_received (returning False) closes the client.
        await _close(sp.transport, srv, cp, sp)
        return cp, sp

    cp, sp = run(main(), timeout=30)
    server_seen.update(sp.seen)
    reads = {"data_received"} if kind == "plain" else {"get_buffer", "buffer_updated"}
    always = {"connection_made", "pause_writing", "resume_writing", "connection_lost"} | reads
    assert set(cp.seen) == always | {"eof_received"}
    # (asyncio's TLS transport has no write_eof: its server's eof_received comes as it
    # shuts the connection down.)
    assert set(server_seen) == always | {"factory", "eof_received"}
    skip = CALLER_SET_OFF if loop_kind == "asyncio" else set()
    server_skip = set(skip)
    if loop_kind == "asyncio":
        # The server is closed from the driver's context: asyncio runs the connection_lost
        # that follows in it, and its TLS transport reads (flushes) inside close().
        server_skip |= {"get_buffer"} if tls else {"connection_lost"}
    wrong = {name: vals for name, vals in cp.seen.items()
             if name not in skip and set(vals) != {"client"}}
    assert not wrong, f"client callbacks outside the client's context: {wrong}"
    wrong = {name: vals for name, vals in server_seen.items()
             if name not in server_skip and set(vals) != {"server"}}
    assert not wrong, f"server callbacks outside the server's context: {wrong}"


def test_each_connection_of_a_server_starts_from_the_server_s_context(loop, run):
    """What the factory or a callback of one connection sets stays in that connection: the
    next connection starts from the server's context again, and the server's own caller
    never sees it."""
    made: list[str] = []

    class Setter(asyncio.Protocol):
        def connection_made(self, transport):
            made.append(cvar.get())
            self.transport = transport

        def data_received(self, data):
            self.transport.write(cvar.get().encode())
            cvar.set(f"changed by data of connection {len(made) // 2}")

    def factory():
        made.append(cvar.get())
        cvar.set("changed by the factory")
        return Setter()

    async def main():
        cvar.set("server")
        srv = await loop.create_server(factory, "127.0.0.1", 0)
        addr = srv.sockets[0].getsockname()
        replies = []
        for _ in range(3):
            r, w = await asyncio.open_connection(*addr)
            for _ in range(2):
                w.write(b"?")
                replies.append(await r.read(100))
            w.close()
            await w.wait_closed()
        srv.close()
        await srv.wait_closed()
        assert cvar.get() == "server"
        return replies

    replies = run(main())
    # Per connection: the factory starts from "server"; what it set is what the connection's
    # callbacks start from; what data_received set is seen by its next call only.
    assert made == ["server", "changed by the factory"] * 3
    assert replies == [r for n in (1, 2, 3) for r in (
        b"changed by the factory", b"changed by data of connection %d" % n)]
    assert cvar.get() == "outside"


class Hooked(Plain):
    """Runs ``on_data()`` once, inside its next data_received."""

    on_data = None

    def data_received(self, data) -> None:
        super().data_received(data)
        hook, self.on_data = self.on_data, None
        if hook is not None:
            hook()


def _flood(transport, proto: _Seen) -> None:
    """Writes until the protocol is asked to pause once more."""
    pauses = len(proto.seen.get("pause_writing", []))
    block = bytes(CHUNK)
    for _ in range(MAX_CHUNKS):
        transport.write(block)
        if len(proto.seen.get("pause_writing", [])) > pauses:
            return
    raise AssertionError("the write buffer never filled")


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)
def test_callbacks_set_off_by_the_caller_run_in_the_transport_s_context(loop, run):
    """pause_writing from a write() inside another connection's data_received or inside the
    transport's own, and connection_lost after a close() from elsewhere, see their own
    transport's context (asyncio runs them in the caller's, see the module)."""
    async def main():
        srv, addr, accepted = await _server_in(loop, "a", Hooked)
        cvar.set("b")
        bt, bp = await loop.create_connection(Hooked, *addr)
        cvar.set("driver")
        ap = await _first(accepted)
        bt.set_write_buffer_limits(high=CHUNK, low=0)
        resumed = lambda n: lambda: len(bp.seen.get("resume_writing", [])) == n  # noqa: E731
        # b written to inside a's data_received: a's context is the current one.
        ap.on_data = lambda: _flood(bt, bp)
        bt.write(b"1")
        await bp.until(resumed(1))
        # b written to inside its own data_received: b's context is entered already.
        bp.on_data = lambda: _flood(bt, bp)
        ap.transport.write(b"2")
        await bp.until(resumed(2))
        await _close(bt, srv, bp, ap)
        return ap, bp

    ap, bp = run(main(), timeout=30)
    assert len(bp.seen["pause_writing"]) == 2 and len(bp.seen["resume_writing"]) == 2
    _only_in(bp, "b")
    _only_in(ap, "a")
    assert set(ap.seen) == {"connection_made", "data_received", "eof_received",
                            "connection_lost"}


class DatagramSeen(_Seen, asyncio.DatagramProtocol):
    """Notes its callbacks; answers "ping" and closes on "close", inside datagram_received."""

    def datagram_received(self, data, addr) -> None:
        self.data += data
        self._note("datagram_received")
        if data == b"ping":
            self.transport.sendto(b"pong", addr)
        elif data == b"close":
            self.transport.close()

    def error_received(self, exc) -> None:
        self._note("error_received")


@pytest.mark.parametrize("family", ["udp", "unix"])
def test_datagram_callbacks_run_in_the_context_the_transport_was_made_in(
        loop, run, loop_kind, tmp_path, family):
    """a: unbound-peer endpoint; b: connected to a. Errors: a sendto() that fails at once
    (a broadcast address without SO_BROADCAST) and, for UDP, an ICMP port unreachable
    reported by a read once a has closed."""
    async def main():
        if family == "udp":
            a_kw = {"local_addr": ("127.0.0.1", 0)}
        else:
            a_kw = {"local_addr": str(tmp_path / "a.sock"), "family": socket.AF_UNIX}
        cvar.set("a")
        at, ap = await loop.create_datagram_endpoint(DatagramSeen, **a_kw)
        addr = at.get_extra_info("sockname")
        cvar.set("b")
        if family == "udp":
            b_kw = {"remote_addr": addr}
        else:
            b_kw = {"remote_addr": addr, "local_addr": str(tmp_path / "b.sock"),
                    "family": socket.AF_UNIX}
        bt, bp = await loop.create_datagram_endpoint(DatagramSeen, **b_kw)
        cvar.set("driver")
        bt.sendto(b"ping")
        await bp.until(lambda: bp.data == b"pong")
        if family == "udp":
            at.sendto(b"x", ("255.255.255.255", 9))
            assert ap.called("error_received")
        bt.sendto(b"close")
        await ap.until(lambda: ap.called("connection_lost"))
        if family == "udp":
            for _ in range(50):   # bounded: the ICMP error comes back at once on loopback
                bt.sendto(b"anyone?")
                await asyncio.sleep(0.01)
                if bp.called("error_received"):
                    break
        bt.close()
        await bp.until(lambda: bp.called("connection_lost"))
        return ap, bp

    ap, bp = run(main())
    a_calls = {"connection_made", "datagram_received", "connection_lost"}
    b_calls = {"connection_made", "datagram_received", "connection_lost"}
    a_skip, b_skip = set(), set()
    if family == "udp":
        a_calls.add("error_received")
        b_calls.add("error_received")
    if loop_kind == "asyncio":
        # asyncio runs these in the caller's context: the failed sendto()'s, the close()'s.
        a_skip, b_skip = {"error_received"}, {"connection_lost"}
    assert set(ap.seen) == a_calls and set(bp.seen) == b_calls
    for proto, value, skip in ((ap, "a", a_skip), (bp, "b", b_skip)):
        wrong = {name: vals for name, vals in proto.seen.items()
                 if name not in skip and set(vals) != {value}}
        assert not wrong, f"{value}'s callbacks outside its context: {wrong}"


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize("loop_kind", CORENET_KINDS)
def test_reading_resumed_from_another_context_stays_in_the_transport_s(loop, run, pki, tls):
    """After pause_reading() and a resume_reading() called in another context, the reads go
    on in the transport's context (asyncio reads on in the resumer's, see the module)."""
    async def main():
        ssl_kw = {"ssl": pki.server_context()} if tls else {}
        client_kw = {"ssl": pki.client_context(), "server_hostname": "localhost"} if tls else {}
        srv, addr, accepted = await _server_in(loop, "server", Plain, **ssl_kw)
        cvar.set("client")
        ct, cp = await loop.create_connection(Plain, *addr, **client_kw)
        cvar.set("driver")
        sp = await _first(accepted)
        for n in range(1, 4):
            ct.pause_reading()
            sp.transport.write(b"x")
            await asyncio.sleep(0.01)
            assert len(cp.data) == n - 1       # nothing delivered while paused
            _as(f"resumer {n}", ct.resume_reading)
            await cp.until(lambda: len(cp.data) == n)
        await _close(ct, srv, cp, sp)
        return cp

    cp = run(main())
    assert len(cp.seen["data_received"]) == 3
    _only_in(cp, "client")


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)
def test_start_tls_keeps_the_transport_s_context(loop, run, pki):
    """start_tls() called in another context: the TLS connection's callbacks still run in
    the context of the TCP transport underneath (as uvloop; asyncio does not)."""
    async def main():
        server_side = loop.create_future()

        async def handle(reader, writer):
            await writer.start_tls(pki.server_context())
            writer.write(await reader.readexactly(4))
            await writer.drain()
            await reader.read()           # until the client's close
            writer.close()
            server_side.set_result(None)

        srv = await asyncio.start_server(handle, "127.0.0.1", 0)
        addr = srv.sockets[0].getsockname()
        cvar.set("client")
        ct, cp = await loop.create_connection(Plain, *addr)
        cvar.set("start_tls")
        tt = await loop.start_tls(ct, cp, pki.client_context(), server_hostname="localhost")
        cvar.set("driver")
        tt.write(b"echo")
        await cp.until(lambda: bytes(cp.data) == b"echo")
        tt.close()
        await cp.until(lambda: cp.called("connection_lost"))
        await server_side
        srv.close()
        await srv.wait_closed()
        return cp

    cp = run(main())
    assert set(cp.seen) == {"connection_made", "data_received", "eof_received",
                            "connection_lost"}
    _only_in(cp, "client")
