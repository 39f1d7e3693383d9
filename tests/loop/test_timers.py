"""call_later / call_at: ordering, precision, cancellation and memory."""
import asyncio
import gc
import random
import socket
import time

import pytest


def test_timers_fire_in_deadline_order(loop):
    # Deadlines from one reading of the clock: call_later's would each start from its own
    # moment, and a loaded machine can put more than 5 ms between two of those calls.
    fired = []
    delays = [0.03, 0.01, 0.02, 0.0, 0.015]
    now = loop.time()
    for d in delays:
        loop.call_at(now + d, fired.append, d)
    loop.call_at(now + 0.05, loop.stop)
    loop.run_forever()
    assert fired == sorted(delays)


def test_timer_handle_when_attribute(loop):
    """``TimerHandle._when``, which code written against asyncio reads, is ``when()``."""
    h = loop.call_later(10, print)
    assert h._when == h.when()
    assert loop.time() + 9 < h._when <= loop.time() + 10
    at = loop.call_at(12345.5, print)
    assert at._when == 12345.5
    # As given: an int stays an int (aiohttp rounds its deadlines up to whole seconds).
    whole = loop.call_at(12345, print)
    assert type(whole._when) is int and whole._when == whole.when() == 12345
    assert type(h._when) is float
    for t in (h, at, whole):
        t.cancel()
    assert at._when == 12345.5


def test_equal_deadlines_keep_scheduling_order(corenet_kind):
    """corenet promises FIFO order for equal deadlines (stock asyncio's heapq does not)."""
    from looptools import make_loop
    loop = make_loop(corenet_kind)
    fired = []
    when = loop.time() + 0.01
    for i in range(20):
        loop.call_at(when, fired.append, i)
    loop.call_at(when + 0.01, loop.stop)
    loop.run_forever()
    loop.close()
    assert fired == list(range(20))


def test_a_burst_of_due_timers_lets_io_in_between(corenet_kind):
    """20,000 timers due at the same moment (a burst of timeouts expiring together) are not
    one long iteration: a reader made ready by the first of them runs before the last one
    has, and the timers still run in deadline and scheduling order."""
    from looptools import make_loop
    loop = make_loop(corenet_kind)
    a, b = socket.socketpair()
    fired: list[int] = []
    read_after: list[int] = []

    def readable():
        b.recv(16)
        read_after.append(len(fired))
        loop.remove_reader(b.fileno())

    try:
        loop.add_reader(b.fileno(), readable)
        when = loop.time() + 0.01
        loop.call_at(when, a.send, b"x")               # the first due: the reader is ready
        for i in range(20_000):
            loop.call_at(when, fired.append, i)
        loop.call_at(when, loop.stop)                  # the last due
        loop.run_forever()
    finally:
        loop.close()
        a.close()
        b.close()
    assert fired == list(range(20_000))
    assert len(read_after) == 1 and read_after[0] < 20_000, read_after


def test_a_timer_due_while_callbacks_run_waits_for_the_callbacks_they_scheduled(loop):
    """asyncio takes the due timers before it runs an iteration's callbacks. A timer that
    falls due while they run (here: set in the past, or due in 0.1 ms and then waited out)
    runs in the next iteration, after what those callbacks scheduled with call_soon. This
    is the order asyncio.wait_for relies on (CPython's
    test_wait_for_waits_for_task_cancellation on 3.12)."""
    order = []

    async def main():
        loop.call_soon(order.append, "soon")
        loop.call_at(loop.time() - 1, order.append, "past timer")
        loop.call_later(0.0001, order.append, "0.1 ms timer")
        time.sleep(0.002)
        await asyncio.sleep(0.01)

    loop.run_until_complete(main())
    assert order == ["soon", "past timer", "0.1 ms timer"]


def test_a_due_timer_survives_a_keyboardinterrupt_in_the_same_iteration(loop):
    """A timer already taken as due when a callback of the same iteration raises
    KeyboardInterrupt still runs when the loop runs again."""
    fired = []

    def interrupt():
        raise KeyboardInterrupt

    loop.call_at(loop.time() - 1, fired.append, "timer")
    loop.call_soon(interrupt)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert fired == []
    loop.call_later(0.01, loop.stop)
    loop.run_forever()
    assert fired == ["timer"]


def test_a_task_started_before_a_tiny_timeout_runs_before_it_fires(loop):
    """The first step of a task created before asyncio.timeout() runs before the timeout
    cancels anything, so the task's own cleanup runs (its finally: block)."""
    cleaned = []

    async def inner():
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append(True)

    async def main():
        task = asyncio.ensure_future(inner())
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(task, 0.0001)
        assert task.cancelled()

    loop.run_until_complete(asyncio.wait_for(main(), 10))
    assert cleaned == [True]


def test_timer_never_fires_early_and_when_is_reported(loop):
    fired_at = []
    start = loop.time()
    h = loop.call_later(0.05, lambda: fired_at.append(loop.time()))
    end = loop.time()
    assert start + 0.05 <= h.when() <= end + 0.05      # the delay from the time of the call
    loop.call_later(0.1, loop.stop)
    loop.run_forever()
    assert fired_at and fired_at[0] >= h.when() - 1e-6


def test_time_is_monotonic_clock(loop):
    a = loop.time()
    b = time.monotonic()
    c = loop.time()
    assert a <= b <= c


def test_cancelled_timer_does_not_fire(loop):
    fired = []
    h = loop.call_later(0.01, fired.append, 1)
    h.cancel()
    assert h.cancelled()
    loop.call_later(0.03, loop.stop)
    loop.run_forever()
    assert fired == []


def test_random_timers_all_fire_once_in_order(loop):
    rnd = random.Random(7)
    fired = []
    handles = []
    for i in range(300):
        d = rnd.random() * 0.05
        handles.append((loop.call_later(d, fired.append, i), i))
    cancelled = {i for h, i in handles[::3]}
    for h, i in handles[::3]:
        h.cancel()
    loop.call_later(0.08, loop.stop)
    loop.run_forever()
    assert sorted(fired) == sorted(set(range(300)) - cancelled)
    whens = {i: h.when() for h, i in handles}
    assert [whens[i] for i in fired] == sorted(whens[i] for i in fired)


def test_timers_taken_off_the_heap_keep_no_reference_there(loop):
    """A timer taken off the heap, fired or cancelled, is referenced by nothing of the
    loop's: the heap gives up its reference once, as the heap shrinks to nothing and grows
    again."""
    import sys
    for _ in range(3):
        hs = [loop.call_later(0.001 * (i % 7), print) for i in range(50)]
        for h in hs[::4]:
            h.cancel()
        loop.call_later(0.02, loop.stop)
        loop.run_forever()
        # hs, its slice, the loop variable and getrefcount's argument: nothing of the loop's
        assert [sys.getrefcount(h) for h in hs[:40]] == [4] * 40


def test_none_delay_and_when_rejected(loop):
    with pytest.raises(TypeError):
        loop.call_later(None, print)
    with pytest.raises(TypeError):
        loop.call_at(None, print)


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def test_a_million_cancelled_timers_do_not_keep_memory(loop):
    gc.collect()
    base = _rss()
    for _ in range(10):
        hs = [loop.call_later(3600, print) for _ in range(100_000)]
        for h in hs:
            h.cancel()
        del hs
    loop.call_soon(loop.stop)
    loop.run_forever()
    gc.collect()
    # A million live handles hold well over 100 MB; one batch of 100k at a time is ~15 MB.
    assert _rss() - base < 60_000_000


def test_sleep_zero_and_sleep_value(loop):
    async def main():
        await asyncio.sleep(0)
        return await asyncio.sleep(0.01, result="r")

    assert loop.run_until_complete(main()) == "r"
