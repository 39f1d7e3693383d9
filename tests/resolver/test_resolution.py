"""The one resolution driver (resolver.resolution) seen through the library: its time limit,
callers that give up, questions shared in flight, and Resolver.close(), on every loop kind."""
from __future__ import annotations

import asyncio
import socket

import dns.message
import dns.rcode
import dns.resolver
import pytest

import resolver
from looptools import open_fds
from resolver.limits import Limits


@pytest.fixture
def silent():
    """A UDP port where a socket is bound but never answers: only the time limit ends a
    resolution whose root server is there."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield s.getsockname()[1]
    s.close()


def _resolver(port: int, limit: float, rto: float = 0.02) -> resolver.Resolver:
    return resolver.Resolver([("a.root.", "127.0.0.1")], port=port, do_not_query_localhost=False,
                             limits=Limits(max_query_time=limit, initial_rto=rto, max_rto=max(rto, 1.5)))


#: A try's timeout for the tests that need their resolutions still under way when they act:
#: no try times out meanwhile, so the silent server is never marked down (after three
#: timeouts, which a loaded machine can reach within a short sleep at 20 ms a try).
IN_FLIGHT_RTO = 10.0


def test_time_limit_raises_lifetime_timeout_and_leaves_the_caller_uncancelled(run, silent):
    r = _resolver(silent, 0.1)

    async def go():
        with pytest.raises(dns.resolver.LifetimeTimeout):
            await r.resolve("www.example.com")
        assert asyncio.current_task().cancelling() == 0
        q = dns.message.make_query("www.example.com", "A")
        out = dns.message.from_wire(await r.resolve_message(q.to_wire()))
        assert out.rcode() == dns.rcode.SERVFAIL and out.id == q.id
        await asyncio.sleep(0.05)            # nothing cancels the caller later either
        assert asyncio.current_task().cancelling() == 0

    run(go())
    assert not r.resolutions
    assert r.stats.upstream_timeouts >= 1


def test_a_caller_that_gives_up_stops_the_resolution_and_its_sockets(run, silent):
    r = _resolver(silent, 30, IN_FLIGHT_RTO)

    async def go():
        before = open_fds()
        t = asyncio.ensure_future(r.resolve("www.example.com"))
        await asyncio.sleep(0.05)
        assert r.resolutions and open_fds() - before     # its UDP socket is open
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert not r.resolutions
        await asyncio.sleep(0)               # the socket closes before the next poll
        assert open_fds() - before == set()

    run(go())


def test_others_still_get_the_result_when_the_first_caller_gives_up(run, silent):
    r = _resolver(silent, 0.3)

    async def go():
        first = asyncio.ensure_future(r.resolve("www.example.com"))
        await asyncio.sleep(0.01)
        q = dns.message.make_query("www.example.com", "A")
        second = asyncio.ensure_future(r.resolve_message(q.to_wire()))
        await asyncio.sleep(0.01)
        first.cancel()
        out = dns.message.from_wire(await second)
        assert first.cancelled()
        return out

    out = run(go())
    assert out.rcode() == dns.rcode.SERVFAIL      # at the time limit, not cancelled
    assert r.stats.coalesced == 1 and not r.resolutions


def test_close_stops_every_resolution_and_its_callers_get_cancelled_error(run, silent):
    r = _resolver(silent, 30, IN_FLIGHT_RTO)
    before = open_fds()

    async def go():
        tasks = [asyncio.ensure_future(r.resolve(n)) for n in ("a.example", "b.example")]
        await asyncio.sleep(0.05)
        assert len(r.resolutions) == 2
        await r.close()
        for t in tasks:
            with pytest.raises(asyncio.CancelledError):
                await t
        assert not r.resolutions

    run(go())
    assert open_fds() - before == set()


def test_one_resolver_on_one_loop_after_another(loop_kind, silent):
    from looptools import make_loop

    r = _resolver(silent, 0.05)
    for _ in range(2):
        lp = make_loop(loop_kind)
        try:
            with pytest.raises(dns.resolver.LifetimeTimeout):
                lp.run_until_complete(asyncio.wait_for(r.resolve("www.example.com"), 5))
        finally:
            lp.close()
        assert not r.resolutions
