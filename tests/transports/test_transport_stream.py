"""Stream transports behave as asyncio's: write/writelines/write_eof/close/abort, flow
control, pause_reading, extra info, set_protocol, isinstance, TCP_NODELAY."""
from __future__ import annotations

import asyncio
import gc
import os
import socket
import sys
import warnings
from unittest import mock

import pytest

from looptools import make_loop
from transport_helpers import Recorder, fill_socket_buffers, stop_server, tcp_pair


def test_transports_are_asyncio_transports(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        for t in (tr, sp.transport):
            assert isinstance(t, asyncio.Transport)
            assert isinstance(t, asyncio.ReadTransport)
            assert isinstance(t, asyncio.WriteTransport)
            assert isinstance(t, asyncio.BaseTransport)
            assert t.get_protocol() in (pr, sp)
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_tcp_nodelay_on_both_ends(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        for t in (tr, sp.transport):
            assert t.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_extra_info(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        s = tr.get_extra_info("socket")
        assert s.family == socket.AF_INET and s.type == socket.SOCK_STREAM
        assert tr.get_extra_info("sockname") == s.getsockname()
        assert tr.get_extra_info("peername") == srv.sockets[0].getsockname()
        assert sp.transport.get_extra_info("peername") == tr.get_extra_info("sockname")
        assert tr.get_extra_info("sslcontext") is None
        assert tr.get_extra_info("no-such-key", "dflt") == "dflt"
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_write_accepts_bytes_like_and_rejects_str(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop)
        with pytest.raises(TypeError):
            tr.write("text")
        tr.write(b"")
        tr.write(b"a")
        tr.write(bytearray(b"b"))
        tr.write(memoryview(b"xcx")[1:2])
        tr.write(memoryview(bytearray(b"d")))
        tr.writelines([b"e", bytearray(b"f"), memoryview(b"g")])
        tr.writelines([])
        assert await pr.wait_bytes(7) == b"abcdefg"
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_writelines_with_a_bad_item_writes_nothing(loop, run):
    """asyncio joins the list first, so a bad item raises before anything is sent; a
    partial write must not be left behind (nor stall the queue)."""

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop)
        with pytest.raises(TypeError):
            tr.writelines([b"partial", "text"])
        tr.write(b"after")
        assert await pr.wait_bytes(5) == b"after"
        await asyncio.sleep(0.02)
        assert bytes(pr.data) == b"after"
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main(), timeout=2)


def test_large_writes_arrive_in_order(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop)
        parts = [os.urandom(n) for n in (1, 1000, 70000, 1 << 20, 3, 5 << 20, 17)]
        for i, p in enumerate(parts):
            tr.write(p if i % 2 else bytearray(p))
        expected = b"".join(parts)
        assert await pr.wait_bytes(len(expected)) == expected
        assert tr.get_write_buffer_size() == 0
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_protocol_reads_large_and_small_in_turn_lose_nothing(loop, run):
    """After a large read, corenet receives straight into a new bytes object and shrinks it
    to what arrived; after a small one it copies out of a shared buffer. Alternate the two,
    then end with EOF right after a large read."""
    class Typed(Recorder):
        def data_received(self, data) -> None:
            assert type(data) is bytes
            super().data_received(data)

    async def main():
        a, b = socket.socketpair()
        b.setblocking(False)
        tr, pr = await loop.create_connection(Typed, sock=a)
        parts = [os.urandom(n) for n in (100_000, 5, 300_000, 1, 20_000, 17, 1 << 20)]
        sent = b""
        for p in parts:
            await loop.sock_sendall(b, p)
            sent += p
            assert await pr.wait_bytes(len(sent)) == sent
        b.shutdown(socket.SHUT_WR)
        await pr.eof
        assert bytes(pr.data) == sent and pr.eof_calls == 1
        tr.close()
        await pr.lost
        assert pr.lost_calls == [None]
        b.close()

    run(main())


def test_face_methods_reach_the_engine_and_refuse_what_is_not_a_face(corenet_kind):
    """corenet's transport face keeps nothing per connection but its engine: its hot methods
    are Cython functions on the class that find the engine by the slot's offset. They must
    work bound or called through the class, through a subclass, and refuse an object that
    is not a face (or a face without an engine) with a TypeError, not a crash."""
    from corenet.transports import DatagramTransport, SocketTransport

    loop = make_loop(corenet_kind)

    class MyTransport(SocketTransport):
        __slots__ = ()

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop)
        assert isinstance(tr, SocketTransport) and tr.__dict__ == {}
        w = tr.write
        assert w.__self__ is tr
        assert tr.get_write_buffer_size() == 0 and tr.is_reading() and not tr.is_closing()
        assert tr.get_extra_info("peername") == sp.transport.get_extra_info("sockname")
        assert tr.get_extra_info("no_such_key", "dflt") == "dflt"
        with pytest.raises(AttributeError, match="no_such_thing"):
            tr.no_such_thing
        w(b"ping")
        SocketTransport.write(tr, b"-pong")
        assert await pr.wait_bytes(9) == b"ping-pong"
        # A subclass of the face takes the ordinary attribute lookup to the same engine.
        sub = object.__new__(MyTransport)
        sub._engine = tr._engine
        sub.write(b"!")
        assert await pr.wait_bytes(10) == b"ping-pong!"
        with pytest.raises(TypeError, match="not a corenet transport"):
            SocketTransport.write(object(), b"x")
        with pytest.raises(TypeError, match="not a corenet transport"):
            object.__new__(SocketTransport).write(b"x")
        with pytest.raises(TypeError):
            SocketTransport.is_reading(object.__new__(DatagramTransport))
        with pytest.raises(TypeError):
            tr.write("text")
        tr.pause_reading()
        assert not tr.is_reading()
        tr.resume_reading()
        assert tr.is_reading()
        tr.close()
        assert tr.is_closing()
        await pr.lost
        await stop_server(srv)

    try:
        loop.run_until_complete(asyncio.wait_for(main(), 10))
    finally:
        loop.close()


def test_write_eof_half_close_both_directions(loop, run):
    class Replier(Recorder):
        def eof_received(self):
            super().eof_received()
            self.transport.write(b"reply after eof:" + bytes(self.data))
            self.transport.close()
            return True

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Replier, lambda: Recorder(eof_keeps_open=True))
        assert tr.can_write_eof()
        tr.write(b"question")
        tr.write_eof()
        with pytest.raises(RuntimeError):
            tr.write(b"too late")
        tr.write_eof()  # a second call is a no-op
        await pr.eof
        assert bytes(pr.data) == b"reply after eof:question"
        assert pr.eof_calls == 1
        # eof_received returned True: closing is up to the protocol.
        assert not tr.is_closing()
        tr.close()
        assert await pr.lost is None
        assert pr.lost_calls == [None]
        assert sp.eof_calls == 1 and sp.lost_calls == [None]
        await stop_server(srv)

    run(main())


def test_write_eof_waits_for_the_queue_to_drain(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        sp.transport.pause_reading()
        payload = os.urandom(4 << 20)
        tr.write(payload)
        assert tr.get_write_buffer_size() > 0
        tr.write_eof()
        sp.transport.resume_reading()
        await sp.eof
        assert bytes(sp.data) == payload
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_falsy_eof_received_closes(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, lambda: Recorder(eof_keeps_open=False))
        tr.write_eof()
        assert await sp.lost is None
        assert sp.eof_calls == 1 and sp.lost_calls == [None]
        await pr.eof  # the server side closed in answer
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_close_flushes_then_closes(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        sp.transport.pause_reading()
        payload = os.urandom(6 << 20)
        tr.write(payload)
        queued = tr.get_write_buffer_size()
        assert queued > 0
        tr.close()
        assert tr.is_closing()
        assert not pr.lost.done()
        tr.close()  # idempotent
        sp.transport.resume_reading()
        await sp.eof
        assert bytes(sp.data) == payload
        assert await pr.lost is None
        assert pr.lost_calls == [None]
        await stop_server(srv)

    run(main())


def test_abort_discards_the_queue(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, lambda: Recorder(eof_keeps_open=False))
        sp.transport.pause_reading()
        written = fill_socket_buffers(tr)
        tr.write(b"x" * 65536)
        tr.abort()
        assert tr.is_closing()
        assert await pr.lost is None
        assert pr.lost_calls == [None]
        assert tr.get_write_buffer_size() == 0
        sp.transport.resume_reading()
        await asyncio.wait_for(sp.lost, 5)
        assert len(sp.data) < written + 65536
        assert len(sp.lost_calls) == 1
        tr.abort()  # harmless after the fact
        await asyncio.sleep(0)
        assert len(pr.lost_calls) == 1
        await stop_server(srv)

    run(main())


def test_write_buffer_limits_and_flow_control(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        assert tr.get_write_buffer_limits() == (16384, 65536)
        tr.set_write_buffer_limits(high=200_000, low=50_000)
        assert tr.get_write_buffer_limits() == (50_000, 200_000)
        tr.set_write_buffer_limits(high=80_000)
        assert tr.get_write_buffer_limits() == (20_000, 80_000)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=1, low=2)
        with pytest.raises(ValueError):
            tr.set_write_buffer_limits(high=-2, low=-1)
        sp.transport.pause_reading()
        fill_socket_buffers(tr)
        assert pr.pauses == 0 or tr.get_write_buffer_size() > 80_000
        tr.write(b"y" * 100_000)
        assert tr.get_write_buffer_size() > 80_000
        assert pr.pauses == 1 and pr.resumes == 0
        tr.write(b"z" * 1000)
        assert pr.pauses == 1  # no second pause while paused
        sp.transport.resume_reading()
        for _ in range(500):
            if pr.resumes:
                break
            await asyncio.sleep(0.005)
        assert pr.resumes == 1
        assert tr.get_write_buffer_size() <= 20_000
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_lowering_the_limit_pauses_at_once(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        sp.transport.pause_reading()
        fill_socket_buffers(tr)
        tr.write(b"q" * 1000)
        assert pr.pauses == 0
        tr.set_write_buffer_limits(high=10, low=0)
        assert pr.pauses == 1
        sp.transport.resume_reading()
        for _ in range(500):
            if pr.resumes:
                break
            await asyncio.sleep(0.005)
        assert pr.resumes == 1 and tr.get_write_buffer_size() == 0
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_pause_and_resume_reading(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        st = sp.transport
        assert st.is_reading()
        st.pause_reading()
        st.pause_reading()  # twice is fine
        assert not st.is_reading()
        tr.write(b"held back")
        await asyncio.sleep(0.05)
        assert sp.data == b""
        st.resume_reading()
        st.resume_reading()
        assert st.is_reading()
        assert await sp.wait_bytes(9) == b"held back"
        # Data and EOF that arrive while paused are delivered, in order, after resuming.
        st.pause_reading()
        tr.write(b"+more")
        tr.write_eof()
        await asyncio.sleep(0.05)
        assert sp.eof_calls == 0 and sp.data == b"held back"
        st.resume_reading()
        await sp.eof
        assert bytes(sp.data) == b"held back+more"
        st.close()
        assert not st.is_reading()
        await sp.lost
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_paused_tells_whether_reading_is_paused(loop, run):
    """``transport._paused``, which code written against asyncio's socket transports reads."""
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        assert tr._paused is False
        tr.pause_reading()
        assert tr._paused is True and not tr.is_reading()
        tr.resume_reading()
        assert tr._paused is False and tr.is_reading()
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_a_transport_s_methods_can_be_patched_per_instance(loop, run):
    """``mock.patch.object(transport, name)`` replaces the method on that transport only,
    and the real one is back once the patch ends."""
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        other, other_pr, other_sp, srv2 = await tcp_pair(loop, Recorder)
        with mock.patch.object(tr, "write") as fake_write, \
                mock.patch.object(tr, "is_closing", return_value=True):
            tr.write(b"swallowed")
            other.write(b"x")          # another transport keeps the real method
            assert tr.is_closing() is True
        fake_write.assert_called_once_with(b"swallowed")
        assert not tr.is_closing()
        tr.write(b"real")
        assert await sp.wait_bytes(4) == b"real"
        assert await other_sp.wait_bytes(1) == b"x"
        # A plain attribute of its own, as tests hang on transports.
        tr.tag = "mine"
        assert tr.tag == "mine" and not hasattr(other, "tag")
        for t, p in ((tr, pr), (other, other_pr)):
            t.close()
            await p.lost
        await stop_server(srv)
        await stop_server(srv2)

    run(main())


class CountingBuffered(asyncio.BufferedProtocol):
    """Counts get_buffer calls: every loop asks for a buffer right before each recv()."""

    def __init__(self, pause_on_first: bool = False) -> None:
        self.asks = 0
        self.data = bytearray()
        self.buf = bytearray(65536)
        self.pause_on_first = pause_on_first
        self.eof = asyncio.get_event_loop().create_future()

    def connection_made(self, transport):
        self.transport = transport

    def get_buffer(self, sizehint):
        self.asks += 1
        return self.buf

    def buffer_updated(self, nbytes):
        self.data += self.buf[:nbytes]
        if self.pause_on_first:
            self.pause_on_first = False
            self.transport.pause_reading()

    def eof_received(self):
        self.eof.set_result(None)


async def iterations(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_resume_reading_reads_only_what_may_be_waiting(loop, run, fd_check):
    """Edge mode keeps a readable flag: resuming a drained socket that saw no edge since
    costs no recv(); data or a FIN that came while paused is read on resuming. (Level mode
    and asyncio re-arm epoll instead, and never read on speculation.)"""

    async def main():
        lsock = socket.create_server(("127.0.0.1", 0))
        tr, pr = await loop.create_connection(CountingBuffered, *lsock.getsockname())
        peer, _ = lsock.accept()
        lsock.close()
        peer.sendall(b"first")
        while bytes(pr.data) != b"first":
            await asyncio.sleep(0.001)
        asks = pr.asks
        for _ in range(3):
            tr.pause_reading()
            await iterations(3)
            tr.resume_reading()
            await iterations(3)
        assert pr.asks == asks, "recv() on a drained socket with no edge since"
        tr.pause_reading()
        peer.sendall(b"second")
        await asyncio.sleep(0.05)
        assert bytes(pr.data) == b"first"
        tr.resume_reading()
        while bytes(pr.data) != b"firstsecond":
            await asyncio.sleep(0.001)
        tr.close()
        peer.close()

    run(main())
    fd_check()


def test_eof_behind_a_short_read_is_delivered_after_resuming(loop, run, fd_check):
    """Data and FIN arrive together; the protocol pauses on the data (a short read, which
    drains the data but not the FIN). The EOF raises no new edge, yet resuming delivers it."""

    async def main():
        lsock = socket.create_server(("127.0.0.1", 0))
        tr, pr = await loop.create_connection(lambda: CountingBuffered(pause_on_first=True),
                                              *lsock.getsockname())
        peer, _ = lsock.accept()
        lsock.close()
        await iterations(5)
        peer.sendall(b"last words")
        peer.shutdown(socket.SHUT_WR)
        while not pr.data:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.05)
        assert not pr.eof.done() and not tr.is_reading()
        tr.resume_reading()
        await asyncio.wait_for(pr.eof, 5)
        assert bytes(pr.data) == b"last words"
        peer.close()
        await asyncio.sleep(0.01)

    run(main())
    fd_check()


def test_set_protocol_switches_the_receiver(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop)
        tr.write(b"one")
        assert await pr.wait_bytes(3) == b"one"
        second = Recorder()
        tr.set_protocol(second)
        assert tr.get_protocol() is second
        tr.write(b"two")
        assert await second.wait_bytes(3) == b"two"
        assert bytes(pr.data) == b"one"
        tr.close()
        assert await second.lost is None
        assert pr.lost_calls == [] and second.lost_calls == [None]
        await stop_server(srv)

    run(main())


def test_switch_to_buffered_protocol_mid_stream(loop, run):
    class Buffered(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(7)
            self.got = bytearray()
            self.lost = asyncio.get_event_loop().create_future()

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            self.got += self.buf[:nbytes]

        def connection_lost(self, exc):
            self.lost.set_result(exc)

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop)
        tr.write(b"plain")
        await pr.wait_bytes(5)
        b = Buffered()
        tr.set_protocol(b)
        payload = os.urandom(100_000)
        tr.write(payload)
        for _ in range(1000):
            if len(b.got) >= len(payload):
                break
            await asyncio.sleep(0.002)
        assert bytes(b.got) == payload
        tr.close()
        assert await b.lost is None
        await stop_server(srv)

    run(main())


def test_repr_and_is_closing_lifecycle(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop)
        assert not tr.is_closing()
        assert isinstance(repr(tr), str)
        tr.close()
        assert tr.is_closing()
        await pr.lost
        assert tr.is_closing()
        assert tr.get_write_buffer_size() == 0
        await stop_server(srv)

    run(main())


def test_unclosed_transport_collected_after_loop_close(loop_kind):
    """Dropping an open transport after its loop closed warns (ResourceWarning) and closes
    the socket, as asyncio does; it must not raise from __del__."""
    from looptools import make_loop

    lp = make_loop(loop_kind)
    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = lambda u: unraisable.append((u.exc_type, repr(u.exc_value)))
    try:
        async def main():
            tr, pr, sp, srv = await tcp_pair(lp, Recorder, lambda: Recorder(eof_keeps_open=True))
            sp.transport.close()
            await stop_server(srv)
            await sp.lost
            await pr.eof
            return tr

        tr = lp.run_until_complete(main())
        sock = tr.get_extra_info("socket")  # keeps the socket object alive past the transport
        lp.close()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            del tr
            gc.collect()
        assert any("unclosed transport" in str(w.message) for w in caught), caught
        assert sock.fileno() == -1, "the transport's finalizer closes its socket"
        assert not [u for u in unraisable if not issubclass(u[0], ResourceWarning)], unraisable
    finally:
        sys.unraisablehook = old_hook
        if not lp.is_closed():
            lp.close()


def test_eof_received_once_while_writing_after_the_peer_half_closed(loop, run):
    """After the peer's FIN, with eof_received returning True, we keep writing a large reply
    (so the socket becomes writable again and again): eof_received must not run again."""

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, lambda: Recorder(eof_keeps_open=True))
        tr.write(b"request")
        tr.write_eof()
        await sp.eof
        reply = os.urandom(8 << 20)
        st = sp.transport
        for i in range(0, len(reply), 1 << 20):
            st.write(reply[i:i + (1 << 20)])
            await asyncio.sleep(0.001)
        assert await pr.wait_bytes(len(reply)) == reply
        for _ in range(100):
            if st.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.01)
        assert sp.eof_calls == 1
        st.close()
        await sp.lost
        await pr.lost
        assert sp.lost_calls == [None]
        await stop_server(srv)

    run(main())


def test_fd_of_a_transport_is_off_limits_to_fd_watchers(loop, run):
    """asyncio refuses add_reader/add_writer on a descriptor a transport owns."""

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        sock = tr.get_extra_info("socket")
        fd = sock.fileno()
        with pytest.raises(RuntimeError):
            loop.add_reader(fd, lambda: None)
        with pytest.raises(RuntimeError):
            loop.add_writer(fd, lambda: None)
        tr.write(b"still works")
        assert await sp.wait_bytes(11) == b"still works"
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


# Sizes around pymalloc's 512-byte limit and glibc's per-thread cache, with a large read
# between small ones; whether the protocol keeps each piece is drawn with them.
READ_SIZES = (1, 2, 511, 512, 513, 1000, 1024, 1025, 1500, 2047, 2048, 3000, 4095, 70000)


class Keeper(asyncio.Protocol):
    """Keeps the pieces ``keep`` says it keeps; records each piece's contents, hash and id
    as data_received saw them."""

    def __init__(self, keep: list[bool]) -> None:
        self.keep = keep
        self.seen: list[tuple[bytes, int, int]] = []
        self.kept: list[tuple[int, bytes]] = []
        self.arrived = asyncio.get_running_loop().create_future()
        self.want = 0

    def data_received(self, data) -> None:
        assert type(data) is bytes
        i = len(self.seen)
        self.seen.append((bytes(bytearray(data)), hash(data), id(data)))
        if self.keep[i % len(self.keep)]:
            self.kept.append((i, data))
        if sum(len(s) for s, _, _ in self.seen) >= self.want and not self.arrived.done():
            self.arrived.set_result(None)


async def _send_each(loop, b, pr: Keeper, pieces: list[bytes]) -> None:
    """Sends the pieces one at a time, each once the one before has arrived (one read each)."""
    for p in pieces:
        pr.want += len(p)
        pr.arrived = loop.create_future()
        await loop.sock_sendall(b, p)
        await asyncio.wait_for(pr.arrived, 5)


def _check_kept(pr: Keeper, pieces: list[bytes]) -> None:
    assert b"".join(s for s, _, _ in pr.seen) == b"".join(pieces)
    for contents, h, _ in pr.seen:
        assert h == hash(contents)          # no hash left over from an earlier read
    for i, data in pr.kept:
        assert data == pr.seen[i][0] and hash(data) == hash(pr.seen[i][0])


def test_data_a_protocol_keeps_is_never_changed_by_later_reads(loop, run):
    """corenet writes a small read into the bytes object of an earlier one that nobody
    kept: what a protocol did keep must stay as it arrived, with the hash of what it holds."""
    import random
    rng = random.Random(7)
    pieces = [os.urandom(rng.choice(READ_SIZES)) for _ in range(300)]
    keep = [rng.random() < 0.3 for _ in range(97)]

    async def main():
        a, b = socket.socketpair()
        b.setblocking(False)
        tr, pr = await loop.create_connection(lambda: Keeper(keep), sock=a)
        await _send_each(loop, b, pr, pieces)
        assert len(pr.seen) == len(pieces)
        _check_kept(pr, pieces)
        tr.close()
        b.close()

    run(main(), timeout=30)


def test_a_small_read_reuses_the_bytes_object_nobody_kept(corenet_kind):
    """The reuse itself: a read fits into the last unkept object when that object has room
    for it and no more than twice its size; otherwise it gets a new one."""
    loop = make_loop(corenet_kind)
    sizes = [3000, 2000, 2000, 1000, 1000, 4000]

    async def main():
        a, b = socket.socketpair()
        b.setblocking(False)
        keep = [False, False, False, True, False, False]
        tr, pr = await loop.create_connection(lambda: Keeper(keep), sock=a)
        pieces = [os.urandom(n) for n in sizes]
        await _send_each(loop, b, pr, pieces)
        ids = [i for _, _, i in pr.seen]
        assert ids[1] == ids[0] and ids[2] == ids[0]   # 2,000 bytes into 3,000 bytes' room
        assert ids[3] != ids[0]                         # 1,000: less than half of 3,000
        assert ids[4] != ids[3]                         # the 1,000 before was kept
        assert ids[5] != ids[4]        # 4,000: more than the room of the 1,000 kept last
        _check_kept(pr, pieces)
        tr.close()
        b.close()

    try:
        loop.run_until_complete(asyncio.wait_for(main(), 10))
    finally:
        loop.close()
