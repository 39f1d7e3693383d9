"""loop.create_server and the Server object: hosts, ports, socket options, sock=,
start_serving, serve_forever, close/wait_closed, async context manager."""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys

import pytest

from transport_helpers import Echo, Recorder

# asyncio 3.12.1 made Server.wait_closed() wait for the server's live connections too.
WAIT_CLOSED_WAITS_FOR_CONNECTIONS = sys.version_info >= (3, 12, 1)


async def roundtrip(loop, addr, payload: bytes = b"hello") -> bytes:
    tr, pr = await loop.create_connection(Recorder, addr[0], addr[1])
    tr.write(payload)
    data = await pr.wait_bytes(len(payload))
    tr.close()
    await pr.lost
    return data


async def stop(server) -> None:
    server.close()
    await server.wait_closed()


def close_all(run, server, clients: list[socket.socket], transports: list) -> None:
    """Closes the test's client sockets and accepted transports, then stops the server."""
    for c in clients:
        c.close()
    for tr in transports:
        tr.close()
    run(stop(server))


def one_iteration(loop) -> None:
    loop.call_soon(loop.stop)
    loop.run_forever()


def test_several_hosts_each_serving(loop, run):
    async def main():
        srv = await loop.create_server(Echo, ["127.0.0.1", "::1"], 0)
        families = sorted(s.family for s in srv.sockets)
        assert families == [socket.AF_INET, socket.AF_INET6]
        for s in srv.sockets:
            addr = s.getsockname()
            assert addr[1] != 0
            assert await roundtrip(loop, addr, b"via " + addr[0].encode()) == b"via " + addr[0].encode()
        await stop(srv)

    run(main())


def test_reuse_address_on_by_default(loop, run):
    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0)
        assert srv.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR) != 0
        await stop(srv)

    run(main())


def test_reuse_port_lets_two_servers_share_a_port(loop, run):
    async def main():
        a = await loop.create_server(Echo, "127.0.0.1", 0, reuse_port=True)
        port = a.sockets[0].getsockname()[1]
        b = await loop.create_server(Echo, "127.0.0.1", port, reuse_port=True)
        assert b.sockets[0].getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) != 0
        assert await roundtrip(loop, ("127.0.0.1", port)) == b"hello"
        with pytest.raises(OSError):
            await loop.create_server(Echo, "127.0.0.1", port)
        await stop(a)
        await stop(b)

    run(main())


def test_backlog_reaches_listen(loop, run):
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is needed to read a listening socket's backlog")

    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0, backlog=37)
        port = srv.sockets[0].getsockname()[1]
        out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True,
                             text=True, timeout=10).stdout.split()
        # ss shows a listening socket's backlog in the Send-Q column.
        assert out[0] == "LISTEN" and out[2] == "37", out
        await stop(srv)

    run(main())


def test_sock_argument(loop, run):
    async def main():
        lsock = socket.create_server(("127.0.0.1", 0))
        lsock.setblocking(False)
        srv = await loop.create_server(Echo, sock=lsock)
        assert srv.sockets[0].fileno() == lsock.fileno()
        assert await roundtrip(loop, lsock.getsockname()) == b"hello"
        await stop(srv)
        assert lsock.fileno() == -1

    run(main())


def test_connections_of_a_given_listening_socket_have_tcp_nodelay(loop, run):
    """A listening socket of the caller's, without TCP_NODELAY: every connection accepted
    on it, one after another or several in one wake-up, has TCP_NODELAY, as asyncio sets it."""
    accepted = []

    class Keep(asyncio.Protocol):
        def connection_made(self, transport):
            accepted.append(transport)

    async def main():
        lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        lsock.bind(("127.0.0.1", 0))
        lsock.listen()
        lsock.setblocking(False)
        assert lsock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 0
        srv = await loop.create_server(Keep, sock=lsock)
        addr = lsock.getsockname()
        clients = [socket.create_connection(addr)]
        for _ in range(500):
            if accepted:
                break
            await asyncio.sleep(0.001)
        clients += [socket.create_connection(addr) for _ in range(3)]
        for _ in range(500):
            if len(accepted) == 4:
                break
            await asyncio.sleep(0.001)
        flags = [t.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                 for t in accepted]
        for c in clients:
            c.close()
        for t in accepted:
            t.close()
        await stop(srv)
        return flags

    flags = run(main())
    assert len(flags) == 4 and all(flags), flags


def test_start_serving_false_defers_listening(loop, run):
    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
        assert not srv.is_serving()
        addr = srv.sockets[0].getsockname()
        # Bound but not listening yet: asyncio calls listen() in start_serving().
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, *addr)
        await srv.start_serving()
        assert srv.is_serving()
        assert await roundtrip(loop, addr) == b"hello"
        await stop(srv)

    run(main())


def test_serve_forever_cancelled_closes_the_server(loop, run):
    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0, start_serving=False)
        addr = srv.sockets[0].getsockname()
        task = asyncio.ensure_future(srv.serve_forever())
        await asyncio.sleep(0)
        assert srv.is_serving()
        assert await roundtrip(loop, addr) == b"hello"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert not srv.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, *addr)

    run(main())


def test_close_stops_accepting_and_keeps_live_connections(loop, run):
    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0)
        addr = srv.sockets[0].getsockname()
        tr, pr = await loop.create_connection(Recorder, *addr)
        tr.write(b"1")
        await pr.wait_bytes(1)
        srv.close()
        assert not srv.is_serving()
        assert srv.sockets == ()
        if WAIT_CLOSED_WAITS_FOR_CONNECTIONS:
            closed = asyncio.ensure_future(srv.wait_closed())
            await asyncio.sleep(0.05)
            assert not closed.done()
        else:
            await srv.wait_closed()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, *addr)
        # An accepted connection outlives its server.
        tr.write(b"2")
        assert await pr.wait_bytes(2) == b"12"
        tr.close()
        await pr.lost
        if WAIT_CLOSED_WAITS_FOR_CONNECTIONS:
            await asyncio.wait_for(closed, 5)
        srv.close()  # closing twice is harmless

    run(main())


def test_async_context_manager(loop, run):
    async def main():
        async with await loop.create_server(Echo, "127.0.0.1", 0) as srv:
            addr = srv.sockets[0].getsockname()
            assert srv.is_serving()
            assert srv.get_loop() is loop
            assert await roundtrip(loop, addr) == b"hello"
        assert not srv.is_serving()
        with pytest.raises(ConnectionRefusedError):
            await loop.create_connection(Recorder, *addr)

    run(main())


def test_protocol_factory_failure_is_reported_and_server_keeps_serving(loop, run):
    async def main():
        loop.set_debug(True)  # asyncio reports a failed accept only in debug mode
        errors = []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        calls = 0

        def factory():
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("factory broke")
            return Echo()

        srv = await loop.create_server(factory, "127.0.0.1", 0)
        addr = srv.sockets[0].getsockname()
        tr, pr = await loop.create_connection(Recorder, *addr)
        for _ in range(200):
            if errors:
                break
            await asyncio.sleep(0.01)
        assert [type(c.get("exception")) for c in errors] == [RuntimeError]
        assert "incoming connection" in errors[0]["message"]
        tr.close()
        await pr.lost
        assert await roundtrip(loop, addr) == b"hello"
        await stop(srv)

    run(main())


def test_accepts_at_most_backlog_connections_per_wakeup(loop, run):
    """A listener with many connections waiting accepts at most ``backlog`` of them per
    loop iteration (others get their turn in between), and in time accepts them all. Stock
    asyncio bounds its accept loop by the backlog too, so this runs on every loop."""
    clients: list[socket.socket] = []
    accepted_now = [0]
    made = []

    class Counted(asyncio.Protocol):
        def __init__(self):
            accepted_now[0] += 1  # one protocol per accepted connection

        def connection_made(self, transport):
            made.append(transport)

    async def start():
        return await loop.create_server(Counted, "127.0.0.1", 0, backlog=4)

    srv = run(start())
    try:
        # Let the kernel queue all 20 (listen(4) would drop SYNs past 5); the acceptor's
        # per-wake-up bound stays the backlog given to create_server.
        lsock = srv.sockets[0]
        with socket.socket(fileno=os.dup(lsock.fileno())) as dup:
            dup.listen(64)
        for _ in range(20):
            clients.append(socket.create_connection(lsock.getsockname(), timeout=5))
        per_iteration = []
        for _ in range(200):
            accepted_now[0] = 0
            one_iteration(loop)
            per_iteration.append(accepted_now[0])
            if len(made) == 20:
                break
        assert sum(per_iteration) == 20, per_iteration
        assert len(made) == 20
        assert max(per_iteration) == 4, per_iteration
    finally:
        close_all(run, srv, clients, made)


def test_a_burst_after_single_arrivals_is_accepted_at_once(loop, run):
    """Connections that arrive one at a time are taken one per wake-up (corenet then skips
    the accept() that would only say EAGAIN); a burst queued after them must still be taken
    in the next iterations, not one per unrelated later wake-up."""
    clients: list[socket.socket] = []
    made = []

    class Keep(asyncio.Protocol):
        def connection_made(self, transport):
            made.append(transport)

    async def start():
        return await loop.create_server(Keep, "127.0.0.1", 0, backlog=64)

    srv = run(start())
    try:
        addr = srv.sockets[0].getsockname()
        for i in range(3):   # single arrivals, each served before the next one comes
            clients.append(socket.create_connection(addr, timeout=5))
            for _ in range(100):
                one_iteration(loop)
                if len(made) == i + 1:
                    break
            assert len(made) == i + 1
        for _ in range(40):  # all queued in the kernel before the loop runs again
            clients.append(socket.create_connection(addr, timeout=5))
        iterations = 0
        while len(made) < 43 and iterations < 100:
            one_iteration(loop)
            iterations += 1
        assert len(made) == 43
        # accept one, drain the rest at the next poll, run their connection_made callbacks
        assert iterations <= 3, iterations
    finally:
        close_all(run, srv, clients, made)


@pytest.mark.parametrize("host, bind", [("127.0.0.1", "127.0.0.1"), ("::1", "::1"),
                                        ("127.0.0.1", "0.0.0.0"), ("127.0.0.2", "0.0.0.0")])
def test_accepted_transport_describes_its_socket_as_asyncio_does(loop, run, host, bind):
    """The accepted side: peername is the client's address as the socket module gives it
    (IPv6: the 4-tuple), sockname its socket's own (the listener's when it is bound to one
    address, the address the client reached on a wildcard), and the socket is a
    non-blocking SOCK_STREAM socket of the listener's family."""
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6 support in this Python")
    accepted = []

    class Keep(asyncio.Protocol):
        def connection_made(self, transport):
            accepted.append(transport)

    async def main():
        srv = await loop.create_server(Keep, bind, 0)
        addr = (host,) + srv.sockets[0].getsockname()[1:]
        tr, _ = await loop.create_connection(asyncio.Protocol, host, addr[1])
        for _ in range(500):
            if accepted:
                break
            await asyncio.sleep(0.001)
        client_addr = tr.get_extra_info("sockname")
        got = accepted[0]
        sock = got.get_extra_info("socket")
        info = (got.get_extra_info("peername"), got.get_extra_info("sockname"), sock.family,
                sock.type, sock.gettimeout(), sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
        own = sock.getsockname()
        tr.close()
        got.close()
        await stop(srv)
        return info, client_addr, addr, own

    (peer, name, family, type_, timeout, nodelay), client_addr, addr, own = run(main())
    assert peer == client_addr
    assert name == addr == own
    assert family == (socket.AF_INET6 if ":" in host else socket.AF_INET)
    assert type_ == socket.SOCK_STREAM and timeout == 0.0 and nodelay


class _Kept(asyncio.Protocol):
    """Keeps its transport, as most protocols do, and says when the connection is over."""
    lost: asyncio.Future

    def connection_made(self, transport):
        self.transport = transport
        self.lost = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc):
        self.lost.set_result(exc)


async def _accept_one(loop, srv, kept: list) -> socket.socket:
    """A client socket connected to ``srv``, once the server side's protocol is in ``kept``
    and has its transport. (The factory runs before connection_made(), which stock asyncio
    calls from a later callback.)"""
    n = len(kept)
    client = socket.create_connection(srv.sockets[0].getsockname()[:2])
    for _ in range(5000):
        if len(kept) > n and hasattr(kept[n], "transport"):
            return client
        await asyncio.sleep(0.001)
    client.close()
    raise AssertionError("the server did not accept within 5 s")


def test_closed_connections_are_freed_without_the_cyclic_gc(corenet_kind):
    """Once a connection is over and the protocol dropped, its transport goes with the last
    reference, not at the next garbage collection: a server under a stream of short
    connections must not leave cyclic garbage behind each of them. (Stock asyncio 3.11
    does: its transport keeps a bound method of itself; uvloop does not.)"""
    import gc
    import weakref

    from looptools import make_loop

    lp = make_loop(corenet_kind)
    kept = []

    def factory():
        kept.append(_Kept())
        return kept[-1]

    async def main():
        srv = await lp.create_server(factory, "127.0.0.1", 0)
        refs = []
        for _ in range(3):
            client = await _accept_one(lp, srv, kept)
            pr = kept.pop()
            pr.transport.write(b"x")
            pr.transport.close()
            await pr.lost
            client.close()
            refs.append(weakref.ref(pr.transport))
            del pr
        await stop(srv)
        return refs

    gc.disable()
    try:
        refs = lp.run_until_complete(asyncio.wait_for(main(), 10))
        alive = [r() for r in refs if r() is not None]
    finally:
        gc.enable()
        lp.close()
    assert not alive, f"transports kept alive by reference cycles: {alive}"


def test_socket_extra_of_an_accepted_connection_after_close(loop, run):
    """get_extra_info('socket') first asked once the connection is over: a closed socket of
    the listener's family, as asyncio's transport keeps one."""
    kept = []

    async def main():
        srv = await loop.create_server(lambda: kept.append(_Kept()) or kept[-1], "127.0.0.1", 0)
        client = await _accept_one(loop, srv, kept)
        pr = kept[0]
        pr.transport.close()
        await pr.lost
        client.close()
        await stop(srv)
        return pr.transport.get_extra_info("socket")

    sock = run(main())
    assert sock.fileno() == -1
    assert sock.family == socket.AF_INET and sock.type == socket.SOCK_STREAM


def test_accepted_connections_open_when_the_loop_closes_leak_no_descriptor(loop_kind):
    """Transports never asked for their socket, still open when the loop is closed and then
    dropped: the descriptors are closed all the same."""
    import gc
    import warnings

    from looptools import make_loop, open_fds

    lp = make_loop(loop_kind)
    before = open_fds()
    kept = []
    clients = []
    try:
        async def main():
            srv = await lp.create_server(lambda: kept.append(_Kept()) or kept[-1],
                                         "127.0.0.1", 0)
            for _ in range(3):
                clients.append(await _accept_one(lp, srv, kept))
            srv.close()

        lp.run_until_complete(main())
        assert len(kept) == 3
    finally:
        for c in clients:
            c.close()
        lp.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)   # "unclosed transport", as asyncio
        kept.clear()
        gc.collect()
    leaked = open_fds() - before
    assert not leaked, f"descriptors leaked: {sorted(leaked)}"


def test_accepted_connection_made_then_its_callbacks_then_data(loop, run):
    """A client that sends as soon as it connects: the server's protocol gets
    connection_made, then the callbacks connection_made scheduled run, then data_received,
    as in asyncio, however early the data was waiting."""
    order: list[str] = []
    got = loop.create_future()

    class Early(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            order.append("made")
            asyncio.get_running_loop().call_soon(order.append, "scheduled")

        def data_received(self, data):
            order.append("data")
            if not got.done():
                got.set_result(None)

        def connection_lost(self, exc):
            pass

    async def main():
        srv = await loop.create_server(Early, "127.0.0.1", 0)
        client = socket.create_connection(srv.sockets[0].getsockname())
        client.sendall(b"first bytes")    # waiting before the server has even accepted
        try:
            await got
        finally:
            client.close()
            await stop(srv)

    run(main())
    assert order[:3] == ["made", "scheduled", "data"], order


def test_accepted_connection_made_failing_goes_to_the_handler(loop, run):
    """An exception from an accepted connection's connection_made is reported to the loop's
    exception handler, as a failing callback's is; the server keeps accepting."""
    errors: list[dict] = []
    made = []

    class Failing(asyncio.Protocol):
        def connection_made(self, transport):
            made.append(transport)
            if len(made) == 1:
                raise ValueError("boom")

    async def main():
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx))
        srv = await loop.create_server(Failing, "127.0.0.1", 0)
        clients = []
        try:
            for n in (1, 2):
                clients.append(socket.create_connection(srv.sockets[0].getsockname()))
                for _ in range(500):
                    if len(made) == n:
                        break
                    await asyncio.sleep(0.001)
        finally:
            for c in clients:
                c.close()
            for tr in made:
                tr.abort()
            await stop(srv)

    run(main())
    assert len(made) == 2
    assert len(errors) == 1, errors
    assert isinstance(errors[0]["exception"], ValueError)
    assert errors[0]["message"].startswith("Exception in callback")
