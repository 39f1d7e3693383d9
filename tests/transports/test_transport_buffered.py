"""Zero-copy receive (BufferedProtocol), copies only where asyncio's contract needs them
(mutable buffers queued by write), and writelines as one scatter-gather call."""
from __future__ import annotations

import array
import asyncio
import os
import random
import re
import shutil
import subprocess
import sys
import textwrap
import tracemalloc
import zlib

import pytest

from looptools import CORENET_KINDS
from transport_helpers import Echo, Recorder, fill_socket_buffers, stop_server, tcp_pair

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUBPROCESS_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.path.dirname(HERE), HERE])}

BLOCK = 1 << 20
SENDER = textwrap.dedent("""
    import random, socket, sys
    port, blocks = int(sys.argv[1]), int(sys.argv[2])
    block = random.Random(7).randbytes(1 << 20)
    s = socket.create_connection(("127.0.0.1", port))
    for _ in range(blocks):
        s.sendall(block)
    s.close()
""")


class CrcReceiver(asyncio.BufferedProtocol):
    """Receives into one preallocated buffer and checksums what arrives."""

    def __init__(self, done: asyncio.Future) -> None:
        self.buf = bytearray(256 * 1024)
        self.view = memoryview(self.buf)
        self.crc = 0
        self.n = 0
        self.done = done

    def get_buffer(self, sizehint: int):
        return self.view

    def buffer_updated(self, nbytes: int) -> None:
        self.crc = zlib.crc32(self.view[:nbytes], self.crc)
        self.n += nbytes

    def eof_received(self):
        return False

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(exc)


def test_buffered_protocol_receives_100_mib_with_no_per_read_allocation(loop, run):
    """The kernel writes straight into the protocol's buffer: the traced peak grows by a few
    KiB over 100 MiB, under half of one 256 KiB read, so even a single intermediate copy of
    a read fails the bound."""
    blocks = 100
    block = random.Random(7).randbytes(BLOCK)
    expected_crc = 0
    for _ in range(blocks):
        expected_crc = zlib.crc32(block, expected_crc)
    del block

    async def main():
        done = loop.create_future()
        proto = CrcReceiver(done)
        accepted = loop.create_future()
        srv = await loop.create_server(lambda: proto, "127.0.0.1", 0)
        port = srv.sockets[0].getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-c", SENDER, str(port), str(blocks)])
        try:
            tracemalloc.start()
            try:
                tracemalloc.reset_peak()
                base, _ = tracemalloc.get_traced_memory()
                assert await asyncio.wait_for(done, 60) is None
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(10)
        await stop_server(srv)
        return peak - base, proto

    grown, proto = run(main(), timeout=90)
    assert proto.n == blocks * BLOCK
    assert proto.crc == expected_crc
    assert grown < 128 * 1024, f"receiving 100 MiB allocated {grown} bytes at peak"


def test_get_buffer_smaller_than_sizehint(loop, run):
    class Tiny(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(3)
            self.got = bytearray()
            self.calls = 0

        def connection_made(self, transport):
            self.transport = transport

        def get_buffer(self, sizehint):
            self.calls += 1
            return self.buf

        def buffer_updated(self, nbytes):
            assert 0 < nbytes <= 3
            self.got += self.buf[:nbytes]

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Echo, Tiny)
        payload = os.urandom(5000)
        tr.write(payload)
        for _ in range(1000):
            if len(pr.got) >= len(payload):
                break
            await asyncio.sleep(0.002)
        assert bytes(pr.got) == payload
        assert pr.calls >= len(payload) // 3
        tr.close()
        await stop_server(srv)

    run(main())


def test_buffer_updated_counts_each_read_across_connections_and_sizes(loop, run):
    """Two connections reading in turn, with sizes that change and repeat: every
    buffer_updated(nbytes) counts exactly the bytes its own read put in the buffer."""

    class Counting(asyncio.BufferedProtocol):
        def __init__(self):
            self.buf = bytearray(65536)
            self.got = bytearray()
            self.counts = []
            self.want = None

        def get_buffer(self, sizehint):
            return self.buf

        def buffer_updated(self, nbytes):
            self.counts.append(nbytes)
            self.got += self.buf[:nbytes]
            self.buf[:nbytes] = bytes(nbytes)
            if self.want is not None and len(self.got) >= self.want[0]:
                self.want[1].set_result(None)
                self.want = None

        async def wait_bytes(self, n):
            if len(self.got) < n:
                self.want = (n, asyncio.get_running_loop().create_future())
                await self.want[1]

    async def main():
        pairs = [await tcp_pair(loop, Echo, Counting) for _ in range(2)]
        rng = random.Random(5)
        sent = [bytearray(), bytearray()]
        for size in (1000, 3000, 1000, 1000, 3000, 3000, 300, 40000, 1000):
            for i, (tr, pr, sp, srv) in enumerate(pairs):
                chunk = rng.randbytes(size + i)
                sent[i] += chunk
                tr.write(chunk)
                await pr.wait_bytes(len(sent[i]))
        for i, (tr, pr, sp, srv) in enumerate(pairs):
            assert bytes(pr.got) == bytes(sent[i])
            assert sum(pr.counts) == len(sent[i]) and min(pr.counts) > 0
            tr.close()
            await stop_server(srv)

    run(main())


@pytest.mark.parametrize("failure", ["raises", "empty"])
def test_get_buffer_failure_is_fatal_and_reported(loop, run, fd_check, failure):
    class Bad(asyncio.BufferedProtocol):
        def __init__(self):
            self.lost = []
            self.done = asyncio.get_event_loop().create_future()

        def get_buffer(self, sizehint):
            if failure == "raises":
                raise ValueError("no buffer today")
            return bytearray()

        def buffer_updated(self, nbytes):
            raise AssertionError("not reached")

        def connection_lost(self, exc):
            self.lost.append(exc)
            self.done.set_result(None)

    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        tr, pr, sp, srv = await tcp_pair(loop, Recorder, Bad)
        sp.transport.write(b"data")
        await asyncio.wait_for(pr.done, 5)
        await asyncio.sleep(0.01)
        assert len(pr.lost) == 1
        expected = ValueError if failure == "raises" else RuntimeError
        assert isinstance(pr.lost[0], expected)
        assert [type(c["exception"]) for c in errors] == [expected]
        assert "get_buffer" in errors[0]["message"]
        assert tr.is_closing()
        sp.transport.close()
        await sp.lost
        await stop_server(srv)

    run(main())
    fd_check()


def test_mutable_buffers_are_copied_when_queued(loop, run):
    """asyncio lets the caller reuse its buffer once write() returns: bytes queued from a
    bytearray or a memoryview of one must be the bytes at the time of the call."""

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        sp.transport.pause_reading()
        prefix = fill_socket_buffers(tr)
        a = bytearray(b"A" * 100_000)
        tr.write(a)
        a[:] = b"a" * 100_000
        c = bytearray(b"C" * 50_000)
        tr.write(memoryview(c))
        c[:] = b"c" * 50_000
        e = bytearray(b"E" * 3000)
        g = bytearray(b"G" * 7000)
        tr.writelines([e, b"F" * 10, memoryview(g)[1000:]])
        e[:] = b"e" * 3000
        g[:] = b"g" * 7000
        assert tr.get_write_buffer_size() > 150_000
        sp.transport.resume_reading()
        total = prefix + 100_000 + 50_000 + 3000 + 10 + 6000
        data = await sp.wait_bytes(total)
        assert len(data) == total
        assert data[prefix:] == b"A" * 100_000 + b"C" * 50_000 + b"E" * 3000 + b"F" * 10 + b"G" * 6000
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)
def test_memoryview_partly_sent_then_overwritten_arrives_as_written(loop, run):
    """A write of a memoryview that the socket takes only part of: the rest is queued as it
    was at the call, though the caller overwrites its buffer as soon as write() returns
    (corenet only: stock asyncio from 3.12 queues a view of the caller's buffer)."""

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        sp.transport.pause_reading()
        size = 32 << 20
        buf = bytearray(random.Random(3).randbytes(size))
        original = bytes(buf)
        tr.write(memoryview(buf)[7:])
        queued = tr.get_write_buffer_size()
        assert 0 < queued < size - 7, "the first send() should take part of it"
        buf[:] = bytes(size)
        sp.transport.resume_reading()
        data = await sp.wait_bytes(size - 7)
        assert data == original[7:]
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main(), timeout=60)


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)
def test_a_partly_sent_memoryview_of_wide_items_resumes_at_the_byte(loop, run):
    """The same with a memoryview of 4-byte items (an ``array('I')``): what is left goes on
    from the byte the socket stopped at, not from that many items (stock asyncio slices the
    rest by items and loses data: no oracle here)."""

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        sp.transport.pause_reading()
        size = 32 << 20
        items = array.array("I", random.Random(4).randbytes(size))
        original = items.tobytes()
        tr.write(memoryview(items))
        assert 0 < tr.get_write_buffer_size() < size, "the first send() should take part of it"
        items[:] = array.array("I", bytes(size))
        sp.transport.resume_reading()
        data = await sp.wait_bytes(size)
        same = data == original   # not asserted as such: a diff of megabytes takes minutes
        assert same, "what arrived is not what was written"
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main(), timeout=60)


def test_write_takes_any_contiguous_buffer_and_refuses_a_released_one(loop, run):
    """A memoryview of wider items is written as its bytes; a released one raises
    ValueError from write(), as asyncio's does, and sends nothing."""

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        words = memoryview(bytearray(b"abcdefgh")).cast("I")
        tr.write(words)
        grid = memoryview(bytearray(b"ijklmn")).cast("B", (2, 3))
        tr.write(grid)
        gone = memoryview(bytearray(b"xyz"))
        gone.release()
        with pytest.raises(ValueError):
            tr.write(gone)
        tr.write(memoryview(b""))
        tr.write(bytearray(b"op"))
        assert await sp.wait_bytes(16) == b"abcdefghijklmnop"
        await asyncio.sleep(0.02)
        assert bytes(sp.data) == b"abcdefghijklmnop"
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)
def test_non_contiguous_memoryview_is_written_in_order(loop, run):
    """corenet sends a strided memoryview as its bytes in order (stock asyncio 3.11 fails
    the connection: socket.send() refuses a non-contiguous buffer)."""

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        src = bytearray(b"a1b2c3d4")
        tr.write(memoryview(src)[::2])
        src[:] = b"zzzzzzzz"
        tr.write(memoryview(bytearray(b"e5f6"))[::2])
        assert await sp.wait_bytes(6) == b"abcdef"
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)
def test_queued_bytes_are_held_by_reference(loop, run):
    """A bytes object that has to wait is queued as it is, never copied: 8 MiB written to a
    full socket costs a reference, not 8 MiB (stock asyncio 3.11 copies it into its
    bytearray buffer, hence corenet only)."""

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        sp.transport.pause_reading()
        prefix = fill_socket_buffers(tr)
        big = os.urandom(8 << 20)
        refs = sys.getrefcount(big)
        tracemalloc.start()
        try:
            base, _ = tracemalloc.get_traced_memory()
            tr.write(big)
            grown = tracemalloc.get_traced_memory()[0] - base
        finally:
            tracemalloc.stop()
        assert sys.getrefcount(big) == refs + 1, "the queue does not hold the object itself"
        assert grown < 64 * 1024, f"queueing 8 MiB allocated {grown} bytes"
        assert tr.get_write_buffer_size() >= len(big)
        sp.transport.resume_reading()
        data = await sp.wait_bytes(prefix + len(big))
        assert len(data) == prefix + len(big)
        assert data[prefix:] == big
        for _ in range(100):  # the reference goes when the write queue is flushed
            if tr.get_write_buffer_size() == 0:
                break
            await asyncio.sleep(0.01)
        assert tr.get_write_buffer_size() == 0
        assert sys.getrefcount(big) == refs
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main(), timeout=30)


def test_mutable_buffer_reused_right_after_a_direct_write(loop, run):
    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        buf = bytearray(8)
        expected = bytearray()
        for i in range(200):
            buf[:] = i.to_bytes(8, "big")
            tr.write(buf)
            expected += buf
        data = await sp.wait_bytes(len(expected))
        assert data == expected
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


def test_large_writelines_arrives_intact(loop, run):
    """More pieces than IOV_MAX (1024), of every bytes-like kind, on an empty and on a
    non-empty write queue."""
    rnd = random.Random(3)

    def pieces(n):
        out = []
        for i in range(n):
            p = rnd.randbytes(rnd.choice([1, 7, 100, 1500, 9000]))
            out.append(p if i % 3 == 0 else bytearray(p) if i % 3 == 1 else memoryview(p))
        return out

    async def main():
        tr, pr, sp, srv = await tcp_pair(loop, Recorder)
        first = pieces(3000)
        tr.writelines(first)
        sp.transport.pause_reading()
        fill_socket_buffers(tr)
        second = pieces(1500)
        tr.writelines(second)
        sp.transport.resume_reading()
        head = b"".join(bytes(p) for p in first)
        tail = b"".join(bytes(p) for p in second)
        n = len(head) + tr.get_write_buffer_size()
        data = await sp.wait_bytes(len(head))
        assert data[:len(head)] == head
        while not bytes(sp.data).endswith(tail):
            await asyncio.sleep(0.005)
        tr.close()
        await pr.lost
        await stop_server(srv)

    run(main())


STRACE_CLIENT = textwrap.dedent("""
    import asyncio, socket, sys
    from looptools import make_loop
    loop = make_loop(sys.argv[1])

    async def main():
        lsock = socket.create_server(("127.0.0.1", 0))
        tr, pr = await loop.create_connection(asyncio.Protocol, *lsock.getsockname())
        conn, _ = lsock.accept()
        tr.writelines([b"PART-ONE|", b"PART-TWO|", bytearray(b"PART-THREE")])
        await asyncio.sleep(0.02)
        conn.settimeout(5)
        got = b""
        while len(got) < 28:
            got += conn.recv(100)
        print("intact" if got == b"PART-ONE|PART-TWO|PART-THREE" else repr(got))
        tr.close()
        await asyncio.sleep(0)
        conn.close()
        lsock.close()

    loop.run_until_complete(main())
    loop.close()
""")


def traced_sends(script: str, loop_kind: str, tmp_path, marker: str) -> list[str]:
    """Runs ``script`` under strace and returns its send-family calls whose data shows
    ``marker``, once the script has printed that what arrived was intact."""
    if shutil.which("strace") is None:
        pytest.skip("strace is needed to see the syscalls")
    out = tmp_path / "trace"
    proc = subprocess.run(
        ["strace", "-f", "-qq", "-s", "128", "-o", str(out),
         "-e", "trace=sendmsg,sendto,sendmmsg,write,writev", sys.executable, "-c",
         script, loop_kind], capture_output=True, text=True, timeout=60, env=SUBPROCESS_ENV)
    if proc.returncode != 0 and "ptrace" in proc.stderr:
        pytest.skip(f"strace cannot trace here: {proc.stderr.strip()[:200]}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "intact", proc.stdout
    return [line for line in out.read_text().splitlines() if marker in line]


def test_writelines_is_one_syscall(loop_kind, tmp_path):
    """strace shows the three pieces leaving in a single send-family call."""
    calls = traced_sends(STRACE_CLIENT, loop_kind, tmp_path, "PART-")
    assert len(calls) == 1, calls
    assert all(p in calls[0] for p in ("PART-ONE|", "PART-TWO|", "PART-THREE"))
    if loop_kind == "asyncio":
        # Stock asyncio joins the pieces into one bytes object and sends that.
        assert "PART-ONE|PART-TWO|PART-THREE" in calls[0], calls
    else:
        # corenet hands the kernel the three buffers as they are: one iovec each.
        assert re.search(r"\bsendmsg\(", calls[0]), calls
        assert "msg_iovlen=3," in calls[0], calls
        assert calls[0].rstrip().endswith("= 28"), calls


STRACE_QUEUED_CLIENT = textwrap.dedent("""
    import asyncio, socket, sys
    from looptools import make_loop
    from transport_helpers import fill_socket_buffers
    loop = make_loop(sys.argv[1])
    PIECES = [b"PIECE-%d|" % i for i in range(5)]

    def drain(conn, n):
        conn.settimeout(10)
        got = bytearray()
        while len(got) < n:
            chunk = conn.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        return bytes(got)

    async def main():
        lsock = socket.create_server(("127.0.0.1", 0))
        tr, pr = await loop.create_connection(asyncio.Protocol, *lsock.getsockname())
        conn, _ = lsock.accept()
        prefix = fill_socket_buffers(tr)  # nobody reads conn yet: the next writes queue
        queued = tr.get_write_buffer_size()
        for p in PIECES:
            tr.write(p)
        assert tr.get_write_buffer_size() == queued + sum(map(len, PIECES))
        got = await loop.run_in_executor(None, drain, conn, prefix + sum(map(len, PIECES)))
        ok = got[prefix:] == b"".join(PIECES) and got[:prefix] == bytes(prefix)
        print("intact" if ok else f"garbled: {len(got)} bytes, tail {got[-64:]!r}")
        tr.close()
        await asyncio.sleep(0)
        conn.close()
        lsock.close()

    loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
""")


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)
def test_queued_writes_flush_in_one_sendmsg(loop_kind, tmp_path):
    """Small writes that had to queue behind a full socket leave together once the peer
    reads: one sendmsg carries every queued buffer as its own iovec, and the bytes arrive
    in order (stock asyncio joins its queue into one bytearray, hence corenet only)."""
    calls = traced_sends(STRACE_QUEUED_CLIENT, loop_kind, tmp_path, "PIECE-")
    pieces = [f"PIECE-{i}|" for i in range(5)]
    assert calls, "no traced call carried the queued pieces"
    first = calls[0]  # the flush that first reached the queued pieces
    assert re.search(r"\bsendmsg\(", first), first
    iovlen = re.search(r"msg_iovlen=(\d+)", first)
    assert iovlen and int(iovlen.group(1)) >= 5, first
    assert all(p in first for p in pieces), first
