"""How a reload runs beside the queries: one at a time, and its heavy part off the loop.

A reload has the config file read in a process of its own (``config_reader``), builds what
else it needs (the zones, RPZ zone files, TLS pairs) in a thread (:func:`off_loop`) and the
caller swaps the result in on the loop in one short step.
While that thread runs the interpreter hands the GIL over every :data:`SWITCH_INTERVAL`
seconds instead of Python's 5 ms, so the loop waits about that long for it between two
answers; the garbage collector is off meanwhile (a full collection, tens of milliseconds in a
process with a cache, would hold the GIL all that time: the build makes many objects and
would set one off). Between its steps a build calls :func:`breathe`. The thread keeps the
loop's CPU priority: one at a lower priority that is preempted while it holds the GIL keeps
the loop waiting until it runs again (measured on back-to-back reloads of the reload
benchmark's config, the loop pinned with the thread to one core: a p99 of cached answers of
7.2 and 8.5 ms with the thread at nice 19, 3.9 and 4.1 ms at the loop's; worse again at
SCHED_IDLE).

What the swap has to say (its log lines, tens of microseconds each on a loop whose caches
the build and the reader have just cooled) is said after it, one line per turn of the loop
(:func:`after_swap`), so that a query that came during the swap waits for one line at most.

What the swap lets go of can be big as well (an RPZ zone of a million rules takes a third of
a second to free): :func:`retire` frees it a slice at a time between the loop's turns, once
nothing else holds it.

:class:`OneAtATime` runs reload requests one after another, never interleaved: a request
made while one runs waits for the next run, which every request made meanwhile shares, so
the file is read once more after the last request and the last one wins.
"""
from __future__ import annotations

import asyncio
import collections
import gc
import os
import queue
import sys
import threading
import time
from typing import Awaitable, Callable, TypeVar

from resolver.daemon import scheduling

T = TypeVar("T")

#: The interpreter's thread switch interval (seconds) while a reload builds in a thread.
SWITCH_INTERVAL = 0.00005
#: Entries :func:`retire` frees in one turn of the loop (about 0.3 ms for RPZ rules).
RETIRE_SLICE = 1024
#: Seconds :func:`retire` waits before looking again when something still holds the object.
RETIRE_WAIT = 1.0
#: Turns of the loop :func:`swap_said` waits at most for what :func:`after_swap` left.
SAY_TURNS = 10_000

_building = 0                   # builds running in threads (the switch interval is theirs)
_lock = threading.Lock()
_saved = sys.getswitchinterval()
_collecting = True


def _enter() -> None:
    global _building, _saved, _collecting
    with _lock:
        if _building == 0:
            _saved = sys.getswitchinterval()
            sys.setswitchinterval(min(_saved, SWITCH_INTERVAL))
            _collecting = gc.isenabled()
            gc.disable()
        _building += 1


def _leave() -> None:
    global _building
    with _lock:
        _building -= 1
        if _building == 0:
            sys.setswitchinterval(_saved)
            if _collecting:
                gc.enable()


async def off_loop(fn: Callable[[], T]) -> T:
    """``fn()`` run in a build thread, its result or exception."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future = loop.create_future()

    def finish(result, error) -> None:
        if done.cancelled():
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(result)

    def run() -> None:
        try:
            result, error = fn(), None
        except BaseException as e:       # handed to the awaiting coroutine
            result, error = None, e
        return lambda: loop.call_soon_threadsafe(finish, result, error)

    _enter()
    try:
        _hand_over(run)
        return await done
    finally:
        _leave()


def breathe() -> None:
    """Called by a build in its thread between two steps: the GIL let go of in a system
    call, where the kernel switches to the loop if a query woke it meanwhile (on the daemon's
    core, where the kernel gives the loop no shorter slice than the build's, the loop may
    otherwise wait for the CPU until the build's next interrupt, up to a scheduler tick: see
    ``config_reader`` and ``scheduling``)."""
    time.sleep(0)


_later: dict[asyncio.AbstractEventLoop, collections.deque] = {}   # after_swap's, per loop


def after_swap(call: Callable[[], None]) -> None:
    """``call()`` (a swap's log line) made once the callback running now is over, one such
    call per turn of the running loop, in the order given; at once where no loop runs."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        call()
        return
    waiting = _later.get(loop)
    if waiting is None:
        waiting = _later[loop] = collections.deque()
        loop.call_soon(_say_one, loop, waiting)
    waiting.append(call)


def _say_one(loop: asyncio.AbstractEventLoop, waiting: collections.deque) -> None:
    try:
        waiting.popleft()()
    finally:
        if waiting:
            loop.call_soon(_say_one, loop, waiting)
        else:
            del _later[loop]


async def swap_said() -> None:
    """Returns once what :func:`after_swap` left on this loop is done (a reload answers
    after its log lines)."""
    loop = asyncio.get_running_loop()
    for _ in range(SAY_TURNS):
        if loop not in _later:
            return
        await asyncio.sleep(0)


# Build threads are kept, each waiting on its inbox, for the next build: starting a thread
# holds the loop until the new thread has run (Thread.start waits for it), measured at 3 to
# 7 ms on a daemon pinned to one core; handing a job to a waiting thread takes microseconds.
_idle: list[queue.SimpleQueue] = []     # the inboxes of the threads waiting for a build


def _hand_over(job: Callable[[], Callable[[], None]]) -> None:
    """Runs ``job`` in a kept build thread (a new one when none is waiting); what it returns
    is called once that thread is waiting again."""
    with _lock:
        inbox = _idle.pop() if _idle else None
    if inbox is None:
        inbox = queue.SimpleQueue()
        threading.Thread(target=_build_thread, args=(inbox,), name="corenet-reload",
                         daemon=True).start()
    inbox.put(job)


def _after_fork_in_child() -> None:
    """A forked worker has none of its parent's threads: no kept build thread waits for it
    (a job handed to one would never run), no build runs, and the lock may have been held."""
    global _lock, _building
    _lock = threading.Lock()
    _idle.clear()
    _later.clear()
    if _building:
        _building = 0
        sys.setswitchinterval(_saved)
        if _collecting:
            gc.enable()


os.register_at_fork(after_in_child=_after_fork_in_child)


def _build_thread(inbox: queue.SimpleQueue) -> None:
    scheduling.ask_for_slice(scheduling.DEFAULT_SLICE)     # not the loop's, inherited
    while True:
        then = inbox.get()()
        with _lock:
            _idle.append(inbox)         # waiting before it answers: the next build finds it
        try:
            then()
        except RuntimeError:            # the loop closed meanwhile (the daemon stopped)
            pass


def retire(loop: asyncio.AbstractEventLoop | None, owner: object,
           tables: Callable[[object], list]) -> None:
    """Lets go of ``owner``, just swapped out, a slice of :data:`RETIRE_SLICE` entries of its
    ``tables(owner)`` (dicts only it holds) per turn of ``loop``, once nothing else holds
    ``owner`` (a miss that started before the swap may still read it: looked at again every
    :data:`RETIRE_WAIT` seconds). Without a running loop it is let go of at once."""
    if loop is None or loop.is_closed():
        return
    _Retiring(loop, owner, tables).step()


class _Retiring:
    def __init__(self, loop, owner, tables) -> None:
        self.loop, self.owner, self.tables = loop, owner, tables
        self.pending: list | None = None

    def step(self) -> None:
        if self.pending is None:
            # held here and by getrefcount's argument alone: nobody else reads it any more
            if sys.getrefcount(self.owner) > 2:
                self.loop.call_later(RETIRE_WAIT, self.step)
                return
            self.pending = [t for t in self.tables(self.owner) if t]
        budget = RETIRE_SLICE
        while self.pending and budget > 0:
            table = self.pending[-1]
            if not table:
                self.pending.pop()
                continue
            table.popitem()
            budget -= 1
        if self.pending:
            self.loop.call_soon(self.step)
        else:
            self.owner = None               # what is left is small


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
