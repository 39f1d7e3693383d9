"""A private event loop in a thread of its own, on which a thread without a loop runs
coroutines to their end: the sync Client's, and a network transport's when it is called
through httpx's sync transport interface."""
from __future__ import annotations

import asyncio
import os
import threading
from typing import Any, Awaitable, Callable

from .errors import ReadError
from .models import await_step


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import corenet

        return corenet.new_event_loop()
    except ImportError:  # the loop extension is not built: the client runs on any loop
        return asyncio.new_event_loop()


class _Escaped:
    """A KeyboardInterrupt or SystemExit that the work raised on the loop's thread (an event
    hook, a transport's handler), carried to the caller and raised there: left to rise, it
    would end the loop's thread and leave the caller waiting for ever."""

    __slots__ = ("exc",)

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


async def _carried(aw: Awaitable[Any]) -> Any:
    try:
        return await await_step(aw)
    except (KeyboardInterrupt, SystemExit) as exc:
        return _Escaped(exc)


#: The loops a child after fork had from its parent: never run, closed or collected there
#: (their epoll set and wake-up descriptor are the parent's too).
_PARENT_LOOPS: list[asyncio.AbstractEventLoop] = []


class Portal:
    """Runs coroutines to their end on a loop running in another thread. In a child after
    ``fork`` (where the parent's thread does not run) the first call starts a loop and
    thread of the child's own, after ``on_fork()``: its owner forgets the parent's
    connections there."""

    def __init__(self, on_fork: Callable[[], None] | None = None) -> None:
        self.on_fork = on_fork
        self._start()

    def _start(self) -> None:
        self.loop = new_loop()
        self.thread = threading.Thread(target=self._main, name="corenet-https-sync",
                                       daemon=True)
        self.thread.start()
        self.pid = os.getpid()

    def stop(self) -> None:
        """Stops the loop and its thread (also when its owner is dropped unclosed); in a
        child after fork, the parent's are left alone."""
        loop, thread = self.loop, self.thread
        if self.pid != os.getpid() or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(loop.stop)
        except RuntimeError:
            return
        if thread is not threading.current_thread():
            thread.join()
            loop.close()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            asyncio.set_event_loop(None)

    def __call__(self, aw: Awaitable[Any]) -> tuple[bool, Any]:
        if self.pid != os.getpid() and not self.loop.is_closed():
            _PARENT_LOOPS.append(self.loop)
            self._start()
            if self.on_fork is not None:
                self.on_fork()
        if threading.current_thread() is self.thread:
            if asyncio.iscoroutine(aw):
                aw.close()
            raise RuntimeError(
                "a Client was called from its own loop's thread (an event hook, a "
                "transport's handler or an auth flow of the same client): it would wait for "
                "itself; use an AsyncClient there, or await the async API")
        if self.loop.is_closed():
            if asyncio.iscoroutine(aw):
                aw.close()
            # Only a response's body is still asked for once its client is closed (a
            # request is refused before): a read error, as httpx's on its closed socket.
            raise ReadError("the client was closed: the response's body can no longer "
                            "be read")
        fut = asyncio.run_coroutine_threadsafe(_carried(aw), self.loop)
        try:
            outcome = fut.result()
        except BaseException:
            fut.cancel()
            raise
        if type(outcome) is _Escaped:
            raise outcome.exc
        return outcome

    def run(self, aw: Awaitable[Any]) -> Any:
        return self(aw)[1]
