"""How a reload runs beside the queries: one at a time, and its heavy part off the loop.

A reload reads and builds everything (the config file, the zones, RPZ zone files) in a
thread (:func:`off_loop`) and the caller swaps the result in on the loop in one short step.
While that thread runs, the interpreter hands the GIL over every :data:`SWITCH_INTERVAL`
seconds instead of Python's 5 ms, so the loop waits at most about that long for it between
two answers.

:class:`OneAtATime` runs reload requests one after another, never interleaved: a request
made while one runs waits for the next run, which every request made meanwhile shares, so
the file is read once more after the last request and the last one wins.
"""
from __future__ import annotations

import asyncio
import sys
import threading
from typing import Awaitable, Callable, TypeVar

T = TypeVar("T")

#: The interpreter's thread switch interval (seconds) while a reload builds in a thread.
SWITCH_INTERVAL = 0.0005

_building = 0                   # builds running in threads (the switch interval is theirs)
_lock = threading.Lock()
_saved = sys.getswitchinterval()


def _enter() -> None:
    global _building, _saved
    with _lock:
        if _building == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved, SWITCH_INTERVAL))
        _building += 1


def _leave() -> None:
    global _building
    with _lock:
        _building -= 1
        if _building == 0:
            sys.setswitchinterval(_saved)


async def off_loop(fn: Callable[[], T]) -> T:
    """``fn()`` run in the loop's default executor (a thread), its result or exception."""
    _enter()
    try:
        return await asyncio.get_running_loop().run_in_executor(None, fn)
    finally:
        _leave()


class OneAtATime:
    """Runs ``run()`` (a coroutine function) for each call, one run at a time; calls made
    while a run is in progress share the next run and its result."""

    def __init__(self, run: Callable[[], Awaitable[T]]) -> None:
        self.run = run
        self.lock = asyncio.Lock()
        self.waiting: asyncio.Future | None = None     # the next run's result

    async def __call__(self) -> T:
        if self.waiting is not None:                   # queued already: share that run
            return await asyncio.shield(self.waiting)
        self.waiting = result = asyncio.get_running_loop().create_future()
        try:
            async with self.lock:
                self.waiting = None                    # later calls queue the next run
                try:
                    value = await self.run()
                except BaseException as e:
                    result.set_exception(e)
                    raise
                result.set_result(value)
                return value
        finally:
            if self.waiting is result:                 # cancelled while queued
                self.waiting = None
            if not result.done():
                result.cancel()
            elif not result.cancelled():
                result.exception()                     # retrieved: no "never retrieved" log
