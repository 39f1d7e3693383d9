"""``loop.time`` as asyncio honours it: a fake clock set on the loop, or a subclass's own
``time``, is what timers and the wait for them read. Tests and libraries drive asyncio's
timers this way (patching ``loop.time``) to jump time forward without waiting."""
import asyncio
import time
from unittest import mock

import pytest


class Clock:
    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


def _jump_fires_timer(loop, clock) -> list:
    """A timer 1,000 s away fires as soon as the fake clock has moved past it, well before
    the real clock could get there."""
    fired = []
    loop.call_later(1000, fired.append, "late")
    loop.call_later(1, fired.append, "soon")

    def jump():
        clock.t += 1000.5
        loop.call_soon(lambda: None)          # wake the loop: the poll reads the new time
    loop.call_soon(jump)
    t0 = time.monotonic()

    async def wait():           # the fake clock stands still: no sleep of any length ends
        for _ in range(1000):
            if len(fired) == 2:
                return
            await asyncio.sleep(0)
    loop.run_until_complete(wait())
    assert time.monotonic() - t0 < 5
    return fired


def test_time_set_on_the_loop_drives_its_timers(loop):
    clock = Clock(loop.time())
    loop.time = clock
    try:
        assert loop.time() == clock.t
        assert sorted(_jump_fires_timer(loop, clock)) == ["late", "soon"]
    finally:
        del loop.time
    # removed: the loop's own clock again, and a timer waits for it
    assert abs(loop.time() - time.monotonic()) < 1.0


def test_mock_patch_of_loop_time(loop):
    clock = Clock(loop.time())
    with mock.patch.object(loop, "time", clock):
        assert sorted(_jump_fires_timer(loop, clock)) == ["late", "soon"]
    fired = []
    loop.call_later(1000, fired.append, 1)
    loop.run_until_complete(asyncio.sleep(0.02))
    assert fired == []                        # the real clock: 1,000 s is far away


@pytest.fixture
def subclass_loop(loop_kind):
    from looptools import make_loop
    base = type(make_loop(loop_kind))
    clock = Clock(1_000_000.0)

    class FakeTimeLoop(base):
        def time(self):
            return clock()

    kw = {} if loop_kind == "asyncio" else {"trigger": loop_kind.split("-", 1)[1]}
    lp = FakeTimeLoop(**kw)
    asyncio.set_event_loop(lp)
    try:
        yield lp, clock
    finally:
        lp.close()
        asyncio.set_event_loop(None)


def test_a_subclass_time_drives_its_timers(subclass_loop):
    loop, clock = subclass_loop
    assert loop.time() == 1_000_000.0
    h = loop.call_later(5, print)
    assert h.when() == 1_000_005.0
    h.cancel()
    assert sorted(_jump_fires_timer(loop, clock)) == ["late", "soon"]


def test_asyncio_sleep_and_timeout_follow_the_fake_clock(loop):
    """``asyncio.sleep`` and ``asyncio.wait_for`` schedule on ``loop.time``."""
    clock = Clock(loop.time())
    loop.time = clock
    try:
        async def main():
            task = asyncio.ensure_future(asyncio.sleep(3600, "slept"))
            await asyncio.sleep(0)
            clock.t += 3601
            return await asyncio.wait_for(task, 5000)
        assert loop.run_until_complete(asyncio.wait_for(main(), 7200)) == "slept"
    finally:
        del loop.time
