"""The private event loop on which the synchronous resolvers' engines run.

One daemon thread per process runs one asyncio loop, started on first use (and again in a
child after ``fork``, whose copy of the thread does not run). Every engine a
:class:`resolver.sync.Resolver` owns is made, configured and used on that loop only, so the
engine, its cache and validator never see two threads; a calling thread hands the work over
(:func:`call`, :func:`run`) and blocks until it is done. A caller in a running event loop's
thread blocks that loop for as long, as dnspython's sync resolver does, and never deadlocks:
the work runs in the private thread, not on the caller's loop. The private loop's own thread
cannot wait on itself: a call from there is a RuntimeError.

:func:`new_loop` makes the loop a program runs on itself (the daemon's workers, the tools):
corenet's, else asyncio's.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from typing import Any, Awaitable, Callable, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_pid: int | None = None

log = logging.getLogger("resolver.loop")


def new_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: corenet's, or asyncio's when corenet's cannot be made."""
    try:
        from corenet.loop import new_event_loop
        return new_event_loop()
    except Exception as e:       # pragma: no cover - corenet not built
        log.warning("corenet's loop unavailable (%s); using asyncio's", e)
        return asyncio.new_event_loop()


def loop() -> asyncio.AbstractEventLoop:
    """The private loop, its thread started if this process has none running."""
    global _loop, _thread, _pid
    current = _loop
    if current is not None and _pid == os.getpid():
        return current
    with _lock:
        if _loop is None or _pid != os.getpid():
            new = asyncio.new_event_loop()
            ready = threading.Event()

            def main() -> None:
                asyncio.set_event_loop(new)
                new.call_soon(ready.set)
                new.run_forever()

            thread = threading.Thread(target=main, name="corenet-resolver-sync", daemon=True)
            thread.start()
            ready.wait()
            _loop, _thread, _pid = new, thread, os.getpid()
        return _loop


def _check_caller() -> None:
    if threading.current_thread() is _thread and _pid == os.getpid():
        raise RuntimeError("a synchronous resolver cannot be called from its own loop's "
                           "thread: use resolver.Resolver there")


def run(coro_fn: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
    """``await coro_fn()`` on the private loop, from another thread, blocking until it ends.
    ``timeout``: seconds to wait at most (then the work is cancelled and TimeoutError
    raised); an interrupt (KeyboardInterrupt) while waiting cancels the work too."""
    target = loop()
    _check_caller()

    async def main() -> T:
        return await coro_fn()

    fut = asyncio.run_coroutine_threadsafe(main(), target)
    try:
        return fut.result(timeout)
    except concurrent.futures.TimeoutError:
        fut.cancel()
        raise TimeoutError(f"no result within {timeout} s") from None
    except BaseException:
        fut.cancel()
        raise
    finally:
        del fut         # an exception's traceback keeps this frame: no cycle through it


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``fn(*args, **kwargs)`` run on the private loop's thread (a plain function), blocking
    until it returns; its exception is raised here."""
    target = loop()
    _check_caller()
    fut: concurrent.futures.Future = concurrent.futures.Future()
    target.call_soon_threadsafe(_call_into, fut, fn, args, kwargs)
    try:
        return fut.result()
    except BaseException:
        fut.cancel()    # an interrupt while waiting: fn is not run if it has not started
        raise
    finally:
        del fut         # as in run()


def _call_into(fut: concurrent.futures.Future, fn: Callable[..., Any], args: tuple,
               kwargs: dict) -> None:
    """:func:`call`'s work, on the private loop: ``fn``'s outcome into ``fut``, unless the
    caller gave up first."""
    if not fut.set_running_or_notify_cancel():
        return
    try:
        fut.set_result(fn(*args, **kwargs))
    except BaseException as exc:       # handed to the caller, raised there
        fut.set_exception(exc)
