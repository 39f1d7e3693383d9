"""UDP and Unix datagram transports: create_datagram_endpoint variants, sendto (queued when
the socket would block), error_received, draining, closing."""
from __future__ import annotations

import asyncio
import socket

import pytest


class Dgram(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.loop = asyncio.get_event_loop()
        self.got: list[tuple[bytes, object]] = []
        self.errors: list[Exception] = []
        self.lost_calls: list = []
        self.lost = self.loop.create_future()
        self.transport = None
        self._want = None
        self.pauses = 0
        self.resumes = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        self.got.append((data, addr))
        if self._want and len(self.got) >= self._want[0] and not self._want[1].done():
            self._want[1].set_result(None)

    def error_received(self, exc) -> None:
        self.errors.append(exc)
        if self._want and not self._want[1].done():
            self._want[1].set_result(None)

    def pause_writing(self) -> None:
        self.pauses += 1

    def resume_writing(self) -> None:
        self.resumes += 1

    def connection_lost(self, exc) -> None:
        self.lost_calls.append(exc)
        if not self.lost.done():
            self.lost.set_result(exc)

    async def wait(self, n: int = 1) -> None:
        """Until ``n`` datagrams (or an error) arrived."""
        if len(self.got) >= n or self.errors:
            return
        self._want = (n, self.loop.create_future())
        await self._want[1]


def test_local_and_remote_addr(loop, run, fd_check):
    async def main():
        st, sp = await loop.create_datagram_endpoint(Dgram, local_addr=("127.0.0.1", 0))
        server_addr = st.get_extra_info("sockname")
        ct, cp = await loop.create_datagram_endpoint(Dgram, remote_addr=server_addr)
        assert isinstance(ct, asyncio.BaseTransport)
        if not isinstance(loop, asyncio.SelectorEventLoop):
            # corenet promises more than stock asyncio, whose UDP transport is not an
            # instance of asyncio.DatagramTransport.
            assert isinstance(ct, asyncio.DatagramTransport)
        assert ct.get_extra_info("peername") == server_addr
        ct.sendto(b"hello")
        await sp.wait()
        data, addr = sp.got[0]
        assert data == b"hello" and addr == ct.get_extra_info("sockname")
        st.sendto(b"back", addr)
        await cp.wait()
        assert cp.got == [(b"back", server_addr)]
        with pytest.raises(ValueError):
            ct.sendto(b"x", ("127.0.0.1", 9))  # a connected endpoint takes no other address
        with pytest.raises(TypeError):
            ct.sendto("text")
        for t, p in ((ct, cp), (st, sp)):
            t.close()
            assert t.is_closing()
            assert await p.lost is None
            assert p.lost_calls == [None]

    run(main())
    fd_check()


def test_ipv6_family(loop, run):
    async def main():
        st, sp = await loop.create_datagram_endpoint(Dgram, local_addr=("::1", 0),
                                                     family=socket.AF_INET6)
        assert st.get_extra_info("socket").family == socket.AF_INET6
        addr = st.get_extra_info("sockname")
        ct, cp = await loop.create_datagram_endpoint(Dgram, family=socket.AF_INET6,
                                                     remote_addr=addr[:2])
        ct.sendto(b"six")
        await sp.wait()
        assert sp.got[0][0] == b"six"
        ct.close()
        st.close()
        await cp.lost
        await sp.lost

    run(main())


def test_reuse_port_and_allow_broadcast(loop, run):
    async def main():
        a, ap = await loop.create_datagram_endpoint(Dgram, local_addr=("127.0.0.1", 0),
                                                    reuse_port=True, allow_broadcast=True)
        port = a.get_extra_info("sockname")[1]
        b, bp = await loop.create_datagram_endpoint(Dgram, local_addr=("127.0.0.1", port),
                                                    reuse_port=True)
        s = a.get_extra_info("socket")
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) != 0
        assert b.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST) == 0
        a.close()
        b.close()
        await ap.lost
        await bp.lost

    run(main())


def test_sock_argument(loop, run):
    async def main():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        t, p = await loop.create_datagram_endpoint(Dgram, sock=s)
        assert t.get_extra_info("socket").fileno() == s.fileno()
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.sendto(b"in", s.getsockname())
        await p.wait()
        assert p.got[0] == (b"in", peer.getsockname())
        peer.close()
        t.close()
        await p.lost
        assert s.fileno() == -1

    run(main())


def test_many_datagrams_in_one_wakeup_all_delivered(loop, run):
    async def main():
        t, p = await loop.create_datagram_endpoint(Dgram, local_addr=("127.0.0.1", 0))
        s = t.get_extra_info("socket")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        addr = t.get_extra_info("sockname")
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for i in range(600):  # all queued in the kernel before the loop looks
            peer.sendto(i.to_bytes(4, "big") * 8, addr)
        await asyncio.wait_for(p.wait(600), 5)
        assert [int.from_bytes(d[:4], "big") for d, _ in p.got] == list(range(600))
        peer.close()
        t.close()
        await p.lost

    run(main())


def unix_dgram_receiver(tmp_path):
    b = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "dgram.sock")
    b.bind(path)
    b.setblocking(False)
    return b, path


def test_sendto_queues_when_the_socket_would_block(loop, run, tmp_path):
    """A connected Unix datagram socket blocks the sender once the receiver's queue is full:
    the transport queues, reports flow control, and delivers every datagram in order."""

    async def main():
        b, path = unix_dgram_receiver(tmp_path)
        ta, pa = await loop.create_datagram_endpoint(Dgram, remote_addr=path,
                                                     family=socket.AF_UNIX)
        ta.set_write_buffer_limits(high=4096, low=1024)
        n = 3000
        for i in range(n):
            ta.sendto(i.to_bytes(4, "big") * 16)
        assert ta.get_write_buffer_size() > 0
        assert pa.pauses == 1
        got = []
        while len(got) < n:
            try:
                got.append(b.recv(100))
            except BlockingIOError:
                await asyncio.sleep(0.001)
        assert [int.from_bytes(d[:4], "big") for d in got] == list(range(n))
        assert all(len(d) == 64 for d in got)
        await asyncio.sleep(0.01)
        assert ta.get_write_buffer_size() == 0
        assert pa.resumes == 1
        ta.close()
        await pa.lost
        b.close()

    run(main())


def test_close_flushes_queued_datagrams(loop, run, tmp_path):
    async def main():
        b, path = unix_dgram_receiver(tmp_path)
        ta, pa = await loop.create_datagram_endpoint(Dgram, remote_addr=path,
                                                     family=socket.AF_UNIX)
        for i in range(2000):
            ta.sendto(i.to_bytes(4, "big"))
        assert ta.get_write_buffer_size() > 0
        ta.close()
        got = []
        while len(got) < 2000:
            try:
                got.append(b.recv(100))
            except BlockingIOError:
                await asyncio.sleep(0.001)
        assert await pa.lost is None
        assert [int.from_bytes(d, "big") for d in got] == list(range(2000))
        b.close()

    run(main())


def test_error_received_on_icmp_unreachable(loop, run):
    async def main():
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            dead = probe.getsockname()
        ct, cp = await loop.create_datagram_endpoint(Dgram, remote_addr=dead)
        for _ in range(50):
            ct.sendto(b"anyone?")
            await asyncio.sleep(0.01)
            if cp.errors:
                break
        assert cp.errors and isinstance(cp.errors[0], ConnectionRefusedError)
        assert not ct.is_closing(), "an ICMP error does not close the endpoint"
        ct.close()
        assert await cp.lost is None
        assert len(cp.lost_calls) == 1

    run(main())


def test_abort_and_protocol_error(loop, run, fd_check):
    class Raising(Dgram):
        def datagram_received(self, data, addr):
            raise ValueError("bad datagram handler")

    async def main():
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        t, p = await loop.create_datagram_endpoint(Raising, local_addr=("127.0.0.1", 0))
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.sendto(b"boom", t.get_extra_info("sockname"))
        for _ in range(500):
            if errors:
                break
            await asyncio.sleep(0.01)
        # Reported through the exception handler; stock asyncio keeps the endpoint open,
        # corenet closes it with the error. Either way connection_lost comes exactly once.
        assert [type(c["exception"]) for c in errors] == [ValueError]
        t.close()
        await asyncio.wait_for(p.lost, 5)
        await asyncio.sleep(0.01)
        assert len(p.lost_calls) == 1 and p.lost_calls[0] in (None, errors[0]["exception"])
        peer.close()
        t2, p2 = await loop.create_datagram_endpoint(Dgram, local_addr=("127.0.0.1", 0))
        t2.abort()
        assert await p2.lost is None
        assert p2.lost_calls == [None]

    run(main())
    fd_check()
