"""The daemon's miss path (resolver.resolution.Drive): resolutions by callbacks, no Task per miss,
with what it hands to a task (a question already in flight) and how it ends (answer, time
limit, a bug, shutdown), on every loop."""
from __future__ import annotations

import asyncio
import dataclasses
import socket
import time

import dns.message
import dns.rcode
import pytest
from looptools import open_fds

from ports import free_port
from resolver.daemon.admission import ALLOWED_ACL, CallReply
from resolver.daemon.config import build
from resolver.limits import DEFAULT
from resolver.daemon.server import Server


def _server(lab, hints=None, cache_size: int = 64 << 20, **limits) -> Server:
    import resolver

    cfg = build(None, {"listen": [f"127.0.0.1:{free_port()}"], "root_hints": None,
                       "upstream_port": lab.port})
    r = resolver.Resolver(hints or lab.root_hints, port=lab.port, cache_size=cache_size,
                          do_not_query_localhost=False,
                          limits=dataclasses.replace(DEFAULT, **limits) if limits else DEFAULT)
    s = Server(cfg, resolver=r)
    s.loop = asyncio.get_running_loop()
    return s


def _ask(s: Server, name: str, qid: int, rdtype: str = "A") -> asyncio.Future:
    """A client query into the miss path; the future gets the response (None: no answer)."""
    fut = s.loop.create_future()
    q = dns.message.make_query(name, rdtype)
    q.id = qid

    def send(out: bytes) -> None:
        if not fut.done():
            fut.set_result(out)

    assert s.front.handle(q.to_wire(), ALLOWED_ACL,
                          CallReply("udp", ("127.0.0.1", 5353), send)) >= 0
    return fut


def _count_tasks(loop) -> list:
    made = []
    factory = loop.get_task_factory()

    def counting(loop, coro, **kw):
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kw) if factory is None else factory(loop, coro,
                                                                                   **kw)
    loop.set_task_factory(counting)
    return made


def test_a_miss_is_answered_with_no_task(run, lab, loop):
    async def go():
        s = _server(lab)
        made = _count_tasks(s.loop)
        out = dns.message.from_wire(await _ask(s, "h301.bulk.net.", 4242))
        assert out.id == 4242 and out.rcode() == dns.rcode.NOERROR and out.answer
        assert made == []
        assert not s.misses and not s.front.inflight_by_client
        assert s.resolver.stats.upstream_queries >= 1
        await s.resolver.close()

    loop.set_task_factory(None)
    run(go())


def test_identical_misses_share_one_resolution(run, lab, loop):
    async def go():
        s = _server(lab)
        await _ask(s, "h302.bulk.net.", 1)                   # bulk.net's servers learned
        stats = s.resolver.stats
        before = stats.upstream_queries
        first, second = _ask(s, "h303.bulk.net.", 2), _ask(s, "H303.bulk.net.", 3)
        a, b = (dns.message.from_wire(x) for x in await asyncio.gather(first, second))
        assert (a.id, b.id) == (2, 3)
        assert str(b.question[0].name) == "H303.bulk.net."     # each client's own case
        assert a.answer and [r.to_text().lower() for r in a.answer] == [
            r.to_text().lower() for r in b.answer]
        assert stats.upstream_queries - before == 1 and stats.coalesced == 1
        assert not s.misses and not s.resolver.resolutions
        await s.resolver.close()

    run(go())


def test_finished_misses_leave_nothing_for_the_cyclic_collector(run, lab, loop):
    """A finished miss (answered, NXDOMAIN, or through the library) holds no reference
    cycle: its objects are freed by reference counting at once. A cycle (a drive holding a
    bound method of itself) once made every miss about two dozen objects of garbage that only
    the collector freed, in pauses of tens of milliseconds under a flood."""
    import gc

    async def go():
        s = _server(lab)
        await _ask(s, "h310.bulk.net.", 1)                   # bulk.net's servers learned
        gc.collect()
        gc.disable()
        try:
            for i in range(20):
                await _ask(s, f"h{320 + i}.bulk.net.", 10 + i)
                await _ask(s, f"nx{i}.bulk.net.", 40 + i)
                await s.resolver.resolve_message(dns.message.make_query(f"h{350 + i}.bulk.net.",
                                                                        "A"))
            await asyncio.sleep(0)
            assert not s.misses and not s.resolver.resolutions
            assert gc.collect() == 0
        finally:
            gc.enable()
        await s.resolver.close()

    run(go())


@pytest.fixture
def silent():
    """A UDP socket on loopback that never answers: the only root server of a world of
    time-outs."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def _server_over_silence(lab, silent, **limits) -> Server:
    s = _server(lab, [(b"\x01a\x0croot-servers\x03net\x00", "127.0.0.1")], **limits)
    s.resolver.port = silent.getsockname()[1]
    return s


def test_time_limit_ends_a_miss_with_servfail(run, lab, loop, silent):
    async def go():
        s = _server_over_silence(lab, silent, max_query_time=0.5, initial_rto=10.0)
        t0 = time.monotonic()
        out = dns.message.from_wire(await _ask(s, "www.example.com.", 7))
        took = time.monotonic() - t0
        assert out.rcode() == dns.rcode.SERVFAIL and out.id == 7
        assert 0.45 <= took < 2.0, took       # the one query's timeout: what was left
        assert s.resolver.stats.upstream_timeouts >= 1
        assert not s.misses and not s.resolver.resolutions
        await s.resolver.close()

    run(go())


def test_stop_cancels_misses_still_waiting_and_closes_their_sockets(run, lab, loop, silent):
    async def go():
        s = _server_over_silence(lab, silent, max_query_time=30.0, initial_rto=10.0)
        fds = len(open_fds())
        # five TLDs: each miss's first query differs (identical ones would share a socket)
        pending = [_ask(s, f"n.t{i}.", i) for i in range(5)]
        await asyncio.sleep(0.05)
        assert len(s.misses) == 5 and len(open_fds()) == fds + 5
        t0 = time.monotonic()
        await s.stop(0.2)
        assert time.monotonic() - t0 < 2.0
        assert not s.misses and not s.front.inflight_by_client
        assert not any(f.done() for f in pending)      # cancelled: no answer is sent
        assert len(open_fds()) <= fds

    run(go())


def test_a_bug_in_a_resolution_is_a_logged_servfail(run, lab, loop, caplog):
    async def go():
        s = _server(lab)

        class BrokenZones:          # consulted for every new resolution's iterator
            cuts = {b"\x04corp\x00": None}      # a forward or stub zone is configured

            def match(self, qname):
                raise RuntimeError("planted bug")
        s.resolver.zones = BrokenZones()
        out = dns.message.from_wire(await _ask(s, "h304.bulk.net.", 9))
        assert out.rcode() == dns.rcode.SERVFAIL and out.id == 9
        assert not s.misses and not s.resolver.resolutions
        await s.resolver.close()

    run(go())
    assert any("planted bug" in r.getMessage() or (r.exc_info and "planted bug" in
               str(r.exc_info[1])) for r in caplog.records)


def test_the_answer_leaves_before_its_rrsets_are_cached_and_they_are_cached(run, lab, loop,
                                                                           loop_kind):
    """On corenet the final answer's rrsets are stored after the answer has been handed to
    the listener (in a before-poll callback, behind its flush); on other loops at once. On
    every loop they are in the cache by the next iteration."""
    from resolver.wire.codec import from_text

    async def go():
        s = _server(lab)
        rrsets = s.resolver.cache.rrsets
        await _ask(s, "h305.bulk.net.", 1)                   # bulk.net's servers learned
        name = from_text("h306.bulk.net.")
        at_send = []
        fut = s.loop.create_future()
        q = dns.message.make_query("h306.bulk.net.", "A")

        def send(out: bytes) -> None:
            at_send.append(rrsets.get(name, 1, 1, time.monotonic()))
            fut.set_result(out)

        assert s.front.handle(q.to_wire(), ALLOWED_ACL,
                          CallReply("udp", ("127.0.0.1", 5353), send)) >= 0
        out = dns.message.from_wire(await fut)
        assert out.rcode() == dns.rcode.NOERROR and out.answer
        if loop_kind.startswith("corenet"):
            assert at_send == [None]
        else:
            assert at_send[0] is not None
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        e = rrsets.get(name, 1, 1, time.monotonic())
        assert e is not None and [socket.inet_ntoa(rd) for rd in e.rdatas] == [
            rr.address for rr in out.answer[0]]
        it = s.resolver.new_iterator(name, 1, 1)
        assert it.deferred is None                # only the daemon's Drive defers
        await s.resolver.close()

    run(go())


def test_cache_evictions_is_the_caches_own_count_when_read(run, lab, loop):
    """A cache of a few KiB evicts on most stores. The reported count is the caches' own
    (messages and rrsets), also after the stores that come after the message store (on
    corenet the final answer's rrsets, stored once the answer has left)."""
    async def go():
        s = _server(lab, cache_size=3000)
        cache = s.resolver.cache
        for i in range(12):
            out = dns.message.from_wire(await _ask(s, f"h{310 + i}.bulk.net.", i))
            assert out.rcode() == dns.rcode.NOERROR and out.answer
            await asyncio.sleep(0)                       # the deferred stores, where any
            evicted = cache.messages.lru.evictions + cache.rrsets.lru.evictions
            assert s.resolver.stats.cache_evictions == evicted, i
        assert evicted > 12
        stats = s.stats()
        assert stats["engine"]["cache_evictions"] == stats["cache"]["evictions"] == evicted
        await s.resolver.close()

    run(go())
