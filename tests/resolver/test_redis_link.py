"""The shared cache's connection to Redis (resolver.cache.redis_link) against a real
redis-server, and against a fake one that misbehaves: commands pipelined on one connection
get their own replies in order, whatever was cancelled or failed among them; a failure
fails the commands waiting and the next command connects again; what is not RESP ends the
connection without an exception escaping; the shared cache's bound on commands waiting."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import time

import pytest

from corenet.loop import new_event_loop
from redis_proc import Redis
from resolver.cache.redis_link import RedisLink, RedisReplyError

WAIT = 10.0


@pytest.fixture
def loop():
    lp = new_event_loop()
    try:
        yield lp
    finally:
        lp.close()


def run(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, WAIT))


def outcome(fut: asyncio.Future):
    if fut.cancelled():
        return "cancelled"
    exc = fut.exception()
    return exc if exc is not None else fut.result()


@pytest.mark.parametrize("where", ["unix", "tcp"])
def test_pipelined_commands_get_their_own_replies_in_order(loop, redis_server, where):
    link = (RedisLink(path=redis_server.socket) if where == "unix" else
            RedisLink(host="127.0.0.1", port=redis_server.port))

    async def go():
        sets = [link.send(loop, b"SET", f"k{i}", f"v{i}" * (i % 50), b"PX", 60000)
                for i in range(500)]                # sent before the connection is made
        assert link.outstanding == 500
        gets = [link.send(loop, b"GET", f"k{i}") for i in range(500)]
        missing = link.send(loop, b"GET", b"nothing here")
        await asyncio.gather(*sets, *gets, missing)
        return [s.result() for s in sets], [g.result() for g in gets], missing.result()
    sets, gets, missing = run(loop, go())
    assert sets == [b"OK"] * 500
    assert gets == [f"v{i}".encode() * (i % 50) for i in range(500)]
    assert missing is None and link.outstanding == 0
    link.close()


def test_an_error_reply_fails_its_command_alone(loop, redis_server):
    link = RedisLink(path=redis_server.socket)

    async def go():
        out = [link.send(loop, b"SET", b"a", b"1"), link.send(loop, b"INCRBY", b"a", b"x"),
               link.send(loop, b"NOSUCHCOMMAND"), link.send(loop, b"GET", b"a")]
        await asyncio.wait(out)
        return [outcome(f) for f in out]
    ok, bad_arg, unknown, got = run(loop, go())
    assert ok == b"OK" and got == b"1"
    assert isinstance(bad_arg, RedisReplyError) and "not an integer" in str(bad_arg)
    assert isinstance(unknown, RedisReplyError) and "unknown command" in str(unknown)
    link.close()


def test_a_cancelled_command_s_reply_is_dropped_in_its_turn(loop, redis_server):
    link = RedisLink(path=redis_server.socket)

    async def go():
        run_first = link.send(loop, b"SET", b"a", b"1")
        dropped = link.send(loop, b"GET", b"a")
        dropped.cancel()
        after = [link.send(loop, b"INCR", b"n") for _ in range(3)]
        await asyncio.gather(run_first, *after)
        return [f.result() for f in after]
    assert run(loop, go()) == [1, 2, 3]
    assert link.outstanding == 0
    assert redis_server.client().get("a") == b"1"         # sent all the same
    link.close()


def test_no_server_fails_the_commands_and_the_next_one_connects(loop, tmp_path):
    r = Redis(tmp_path / "later")
    link = RedisLink(path=r.socket, connect_timeout=1.0)

    async def first():
        out = [link.send(loop, b"GET", b"a") for _ in range(3)]
        await asyncio.wait(out)
        return [outcome(f) for f in out]
    failed = run(loop, first())
    assert all(isinstance(e, ConnectionError) and "cannot connect" in str(e) for e in failed)
    assert link.outstanding == 0
    r.start()
    try:
        assert run(loop, link.send(loop, b"PING")) == b"PONG"
    finally:
        link.close()
        r.stop()


def test_a_server_that_goes_away_fails_what_waits_then_a_new_one_answers(loop, redis_server):
    link = RedisLink(path=redis_server.socket)
    assert run(loop, link.send(loop, b"PING")) == b"PONG"
    os.kill(redis_server.proc.pid, signal.SIGSTOP)           # commands wait on it

    async def stranded():
        out = [link.send(loop, b"GET", b"a") for _ in range(5)]
        await asyncio.sleep(0.2)
        assert not any(f.done() for f in out)
        return out
    out = run(loop, stranded())
    redis_server.proc.kill()                                 # its end of the socket closes
    redis_server.proc.wait(WAIT)

    async def settle():
        await asyncio.wait(out)
    run(loop, settle())
    assert all(isinstance(outcome(f), ConnectionError) for f in out)
    assert link.outstanding == 0
    redis_server.start()
    try:
        assert run(loop, link.send(loop, b"PING")) == b"PONG"
    finally:
        link.close()


@pytest.mark.parametrize("garbage", [b"?what\r\n", b"+OK\r\n+OK\r\n", b"$-5\r\n"],
                         ids=["not RESP", "a reply too many", "a bad length"])
def test_what_is_not_a_reply_ends_the_connection(loop, garbage):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.setblocking(False)
    link = RedisLink(host="127.0.0.1", port=srv.getsockname()[1])
    peers = []

    async def go():
        cmd = link.send(loop, b"GET", b"a")
        conn, _ = await loop.sock_accept(srv)
        peers.append(conn)
        await loop.sock_recv(conn, 1024)
        await loop.sock_sendall(conn, garbage)
        await asyncio.wait([cmd])
        if garbage == b"+OK\r\n+OK\r\n":
            assert cmd.result() == b"OK"                    # the reply it had
            await asyncio.sleep(0.1)
            assert link.conn is None or link.conn.lost     # the extra one ended it
            return
        assert isinstance(cmd.exception(), ConnectionError)
    try:
        run(loop, go())
        assert link.outstanding == 0
    finally:
        link.close()
        for p in peers:
            p.close()
        srv.close()


def test_the_shared_cache_sends_no_more_than_its_bound(loop, redis_server, lab):
    """Against a frozen Redis, look-ups past ``limits.shared_cache_commands`` are not sent
    (counted busy) and their queries resolved; the ones sent time out, end the connection,
    and start a back-off."""
    import dns.message

    import resolver
    from resolver.cache.shared import SharedCache
    from resolver.limits import DEFAULT as DEFAULT_LIMITS
    from resolver.resolution import start
    from test_shared_cache import in_process_config

    cfg = in_process_config(redis_server)
    cfg.limits = DEFAULT_LIMITS.replace(shared_cache_commands=3)
    cfg.redis_timeout = 300
    r = resolver.Resolver(root_hints=lab.root_hints, port=lab.port,
                          do_not_query_localhost=False)
    shared = r.shared = SharedCache.from_config(cfg)
    assert run(loop, shared.link.send(loop, b"PING")) == b"PONG"
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        async def go():
            outs = []
            for name in [f"h{i:03d}.bulk.net." for i in range(5)]:
                fut = loop.create_future()
                q = dns.message.make_query(name, "A", use_edns=False).to_wire()
                start(r, q, lambda _d, out, f=fut: f.done() or f.set_result(out), loop)
                outs.append(fut)
            assert shared.link.outstanding == 3
            t0 = time.monotonic()
            got = await asyncio.gather(*outs)
            return got, time.monotonic() - t0
        got, took = run(loop, go())
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    assert all(dns.message.from_wire(w).rcode() == 0 and dns.message.from_wire(w).answer
               for w in got)
    c = shared.counters
    assert (c["lookups"], c["busy"], c["timeouts"] + c["errors"]) == (5, 2, 3), c
    assert c["timeouts"] >= 1 and not shared.usable()
    assert took < 3.0
    run(loop, shared.close())
    run(loop, r.close())


# ---- the replies' reading, fuzzed (no server: bytes handed to the connection) -------------
from hypothesis import given, settings, strategies as st  # noqa: E402

REPLY = st.one_of(
    st.binary(max_size=300).map(lambda b: (b"$%d\r\n" % len(b) + b + b"\r\n", b)),
    st.integers(-2**63, 2**63 - 1).map(lambda n: (b":%d\r\n" % n, n)),
    st.just((b"$-1\r\n", None)), st.just((b"+OK\r\n", b"OK")))


class Transport:
    """What a connection writes to (each write kept) and aborts."""
    def __init__(self):
        self.aborted = False
        self.writes: list[list[bytes]] = []

    def writelines(self, data):
        self.writes.append(list(data))

    def abort(self):
        self.aborted = True


def waiting_connection(loop, n: int):
    from resolver.cache.redis_link import _Connection
    conn = _Connection(loop)
    conn.connection_made(Transport())
    futs = [loop.create_future() for _ in range(n)]
    for f in futs:
        conn.send(b"", f)
    return conn, futs


@settings(max_examples=150, deadline=None)
@given(st.lists(REPLY, min_size=1, max_size=20), st.data())
def test_replies_split_anywhere_answer_their_commands_in_order(replies, data):
    loop = new_event_loop()
    try:
        conn, futs = waiting_connection(loop, len(replies))
        stream = b"".join(w for w, _ in replies)
        cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=8)))
        for a, b in zip([0, *cuts], [*cuts, len(stream)]):
            conn.data_received(stream[a:b])
        assert [f.result() for f in futs] == [v for _, v in replies]
        assert not conn.transport.aborted and not conn.waiting
    finally:
        loop.close()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200), st.integers(0, 4))
def test_any_bytes_from_the_server_fail_cleanly_or_answer(junk, n):
    loop = new_event_loop()
    try:
        conn, futs = waiting_connection(loop, n)
        conn.data_received(junk)                 # never raises
        done = [f.done() for f in futs]
        assert done == sorted(done, reverse=True)            # answered in order: a prefix
        failed = [f for f in futs if f.done() and isinstance(f.exception(), ConnectionError)]
        if conn.lost:                            # ended: every command not answered failed
            assert conn.transport is None
            assert all(done) and not conn.waiting
            assert failed == futs[len(futs) - len(failed):]
        else:
            assert not failed and len(conn.waiting) == done.count(False)
    finally:
        loop.close()


def test_the_commands_of_one_turn_of_the_loop_go_out_in_one_write(loop):
    conn, first = waiting_connection(loop, 50)         # sent in this turn
    assert conn.transport.writes == []
    loop.run_until_complete(asyncio.sleep(0))
    assert [len(w) for w in conn.transport.writes] == [50]
    later = loop.create_future()
    conn.send(b"*1\r\n$4\r\nPING\r\n", later)
    loop.run_until_complete(asyncio.sleep(0))
    assert conn.transport.writes[1] == [b"*1\r\n$4\r\nPING\r\n"]
    assert len(conn.waiting) == 51
