"""``Loop.poll_before_sleeping``: after it, corenet's loop polls epoll for a while before it
sleeps, the while adapted to how soon the I/O came. The I/O awaited is a timerfd armed for
each exchange: the kernel's timer makes it readable, so no peer process or thread competes
with the polling loop for a CPU and what is caught does not depend on the scheduler. The
loop's count of waits whose I/O came while it polled (``_spins_caught``) shows which waits
polled. No timing is asserted: the delays are far on either side of the limits."""
from __future__ import annotations

import asyncio
import ctypes
import os
import threading

from looptools import make_loop

_libc = ctypes.CDLL(None, use_errno=True)
_CLOCK_MONOTONIC = 1
_TFD_NONBLOCK_CLOEXEC = os.O_NONBLOCK | os.O_CLOEXEC


class _TimeSpec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _ITimerSpec(ctypes.Structure):
    _fields_ = [("it_interval", _TimeSpec), ("it_value", _TimeSpec)]


class _Answerer:
    """A timerfd that becomes readable ``delay`` seconds after each ``ask``."""

    def __init__(self, delay: float) -> None:
        self.fd = _libc.timerfd_create(_CLOCK_MONOTONIC, _TFD_NONBLOCK_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        self.delay = delay

    def ask(self) -> None:
        ns = max(1, int(self.delay * 1e9))
        spec = _ITimerSpec(_TimeSpec(0, 0), _TimeSpec(ns // 10**9, ns % 10**9))
        if _libc.timerfd_settime(self.fd, 0, ctypes.byref(spec), None) < 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime")

    def close(self) -> None:
        os.close(self.fd)


def _exchanges(loop, delay: float, rounds: int, limit: float,
               turn: bool = False) -> list[int]:
    """``rounds`` exchanges whose answer comes ``delay`` seconds after the request, the
    loop told to poll up to ``limit`` after each request (``turn``: and then to run an
    iteration that does not wait, before the one that does): its count of waits caught
    while polling after each exchange."""
    answerer = _Answerer(delay)
    counts = []

    async def answer() -> None:
        readable = loop.create_future()
        loop.add_reader(answerer.fd, readable.set_result, None)
        try:
            await readable
        finally:
            loop.remove_reader(answerer.fd)
        assert int.from_bytes(os.read(answerer.fd, 8), "little") == 1

    async def main() -> None:
        for _ in range(rounds):
            answerer.ask()
            if limit:
                loop.poll_before_sleeping(limit)
            if turn:
                await asyncio.sleep(0)
            await answer()
            counts.append(loop._spins_caught)

    try:
        loop.run_until_complete(asyncio.wait_for(main(), 30))
    finally:
        answerer.close()
    return counts


def test_answers_that_come_soon_are_caught_while_polling(corenet_kind):
    """With a limit far above the answer's time (100 µs), the polling grows until it
    catches the answers; without the call, no wait polls."""
    loop = make_loop(corenet_kind)
    try:
        assert _exchanges(loop, 100e-6, 30, 0.0)[-1] == 0
        counts = _exchanges(loop, 100e-6, 40, 0.5)
        assert counts[-1] >= 20
        # the request left behind callbacks, run without waiting: the poll is for later
        counts = _exchanges(loop, 100e-6, 40, 0.5, turn=True)
        assert counts[-1] - counts[0] >= 20
    finally:
        loop.close()


def test_polling_keeps_to_the_limit_and_stops_when_answers_come_later(corenet_kind):
    """Answers after 20 ms: under a limit of 0.5 s the polling grows until it catches
    them; asked then with a limit of 2 ms, the loop polls no longer than that (the answers
    still come after it sleeps), and the polling falls to nothing."""
    loop = make_loop(corenet_kind)
    try:
        grown = _exchanges(loop, 0.02, 20, 0.5)[-1]
        assert grown >= 5
        counts = _exchanges(loop, 0.02, 20, 0.002)
        assert counts[-1] == grown
        assert loop._spin_window == 0.0
    finally:
        loop.close()


def test_timers_and_other_threads_wake_a_polling_loop(corenet_kind):
    """While the loop polls (for longer than 10 ms by now), a timer due before the polling
    would end still fires, and a call from another thread still runs."""
    loop = make_loop(corenet_kind)
    try:
        _exchanges(loop, 0.05, 16, 5.0)          # grown to catch answers after 50 ms
        assert loop._spin_window > 0.02

        async def main() -> str:
            loop.poll_before_sleeping(5.0)
            await asyncio.sleep(0.01)
            fut = loop.create_future()
            loop.poll_before_sleeping(5.0)
            threading.Timer(0.01, loop.call_soon_threadsafe, (fut.set_result, "ran")).start()
            return await fut

        assert loop.run_until_complete(asyncio.wait_for(main(), 10)) == "ran"
    finally:
        loop.close()
