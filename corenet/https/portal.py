"""A private event loop in a thread of its own, on which a thread without a loop runs
coroutines to their end: the sync Client's, and a network transport's when it is called
through httpx's sync transport interface."""
from __future__ import annotations

import asyncio
import threading
from typing import Any, Awaitable

from .models import await_step


def new_loop() -> asyncio.AbstractEventLoop:
    try:
        import corenet

        return corenet.new_event_loop()
    except ImportError:  # the loop extension is not built: the client runs on any loop
        return asyncio.new_event_loop()


def stop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    """Stop the loop and its thread (also when a Client is dropped unclosed)."""
    if loop.is_closed():
        return
    try:
        loop.call_soon_threadsafe(loop.stop)
    except RuntimeError:
        return
    if thread is not threading.current_thread():
        thread.join()
        loop.close()


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


class Portal:
    """Runs coroutines to their end on a loop running in another thread."""

    def __init__(self) -> None:
        self.loop = new_loop()
        self.thread = threading.Thread(target=self._main, name="corenet-https-sync",
                                       daemon=True)
        self.thread.start()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            asyncio.set_event_loop(None)

    def __call__(self, aw: Awaitable[Any]) -> tuple[bool, Any]:
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
            raise RuntimeError("the Client is closed")
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
