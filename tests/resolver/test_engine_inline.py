"""A resolution runs inline in its first caller's task (no task of its own): its time limit,
cancellation and ``Resolver.close()`` must behave as they did with a dedicated task."""
from __future__ import annotations

import asyncio

import dns.resolver
import pytest

import resolver
from resolver import iterator as it
from resolver.limits import Limits
from looptools import open_fds
from scenario import FakeServers, hanging_resolver, root_hints, small_internet

P = "127.56"
FAST = Limits(exploration=0.0, initial_rto=0.1, max_rto=0.2, max_query_time=1.5)
NAME = b"\x03www\x07example\x03com\x00"


def test_time_limit_gives_servfail_and_leaves_the_caller_uncancelled(run):
    r = hanging_resolver(0.05)

    async def go():
        res = await r._resolution(NAME, 1, 1)
        task = asyncio.current_task()
        assert task.cancelling() == 0
        await asyncio.sleep(0.01)        # the caller is not cancelled later either
        return res

    res = run(go())
    assert res.rcode == it.SERVFAIL and res.time_exhausted
    assert not r._inflight


def test_time_limit_through_resolve_raises_lifetime_timeout(run):
    r = hanging_resolver(0.05)
    with pytest.raises(dns.resolver.LifetimeTimeout):
        run(r.resolve("www.example.com"))


def test_a_cancelled_caller_still_gets_cancelled_error(run):
    r = hanging_resolver(30)

    async def go():
        t = asyncio.ensure_future(r._resolution(NAME, 1, 1))
        await asyncio.sleep(0.01)
        assert r._inflight
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert not r._inflight

    run(go())


def test_waiters_get_the_result_when_the_running_caller_is_cancelled(run):
    r = hanging_resolver(0.2)           # the handed-over resolution ends at its time limit

    async def go():
        first = asyncio.ensure_future(r._resolution(NAME, 1, 1))
        await asyncio.sleep(0.01)
        second = asyncio.ensure_future(r._resolution(NAME, 1, 1))
        await asyncio.sleep(0.01)
        first.cancel()
        res = await second
        assert first.cancelled()
        return res

    res = run(go())
    assert res.rcode == it.SERVFAIL and res.time_exhausted
    assert r.stats.coalesced == 1 and not r._inflight


@pytest.fixture
def world(run):
    net = small_internet(prefix=P)
    fs = FakeServers(net)
    port = run(fs.start(sorted(net.served)))
    try:
        yield net, fs, port
    finally:
        run(fs.stop())


def test_close_cancels_a_resolution_running_in_its_callers_task(world, run):
    net, fs, port = world
    r = resolver.Resolver(root_hints(P), port=port, limits=FAST)
    run(r.resolve("www.example.com"))          # lazily created loop resources, warmed up
    r.flush()
    for a in list(net.served):
        net.faults[a] = "timeout"
    before = open_fds()

    async def go():
        t = asyncio.ensure_future(r.resolve("www.example.com"))
        for _ in range(100):
            await asyncio.sleep(0.005)
            if r._inflight:
                break
        assert r._inflight
        await r.close()
        assert t.cancelled()
        assert not r._inflight

    run(go())
    assert open_fds() - before == set()
