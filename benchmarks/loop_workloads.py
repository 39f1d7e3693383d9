"""The loop micro-workloads, shared by the pytest-benchmark file and the report script.

Each workload runs ``n`` operations on a fresh loop and returns nothing; the caller times it.
"""
from __future__ import annotations

import asyncio
import os
import random
import socket
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

LOOPS = ["asyncio", "uvloop", "rloop", "corenet"]


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "asyncio":
        return asyncio.SelectorEventLoop()
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    if kind == "rloop":
        import rloop
        return rloop.new_event_loop()
    if kind.startswith("corenet"):
        import corenet
        trigger = kind.split("-", 1)[1] if "-" in kind else None
        return corenet.new_event_loop(trigger=trigger)
    raise ValueError(kind)


def call_soon(loop, n: int) -> None:
    done = loop.create_future()
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    for _ in range(n):
        loop.call_soon(cb)
    loop.run_until_complete(done)


def call_soon_chain(loop, n: int) -> None:
    """Each callback schedules the next: one loop iteration per callback."""
    done = loop.create_future()
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)
        else:
            loop.call_soon(cb)

    loop.call_soon(cb)
    loop.run_until_complete(done)


def timers(loop, n: int) -> None:
    """Schedules n timers with random delays under 1 ms and runs until all have fired."""
    rnd = random.Random(1)
    done = loop.create_future()
    count = 0

    def cb():
        nonlocal count
        count += 1
        if count == n:
            done.set_result(None)

    for _ in range(n):
        loop.call_later(rnd.random() * 0.001, cb)
    loop.run_until_complete(done)


def cancelled_timers(loop, n: int) -> None:
    """Schedules and cancels n timers, then lets the loop purge them."""
    noop = lambda: None
    for _ in range(n):
        loop.call_later(10.0, noop).cancel()
    loop.run_until_complete(asyncio.sleep(0))


async def _trivial():
    return 1


def create_task(loop, n: int) -> None:
    async def main():
        for _ in range(n):
            await loop.create_task(_trivial())

    loop.run_until_complete(main())


def future_wakeup(loop, n: int) -> None:
    async def main():
        for _ in range(n):
            f = loop.create_future()
            loop.call_soon(f.set_result, None)
            await f

    loop.run_until_complete(main())


def sock_ping_pong(loop, n: int) -> None:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    msg = b"x" * 64

    async def echo():
        for _ in range(n):
            data = await loop.sock_recv(b, 4096)
            await loop.sock_sendall(b, data)

    async def main():
        server = loop.create_task(echo())
        for _ in range(n):
            await loop.sock_sendall(a, msg)
            await loop.sock_recv(a, 4096)
        await server

    try:
        loop.run_until_complete(main())
    finally:
        a.close()
        b.close()


WORKLOADS = {
    "call_soon": (call_soon, 200_000),
    "call_soon_chain": (call_soon_chain, 200_000),
    "timers": (timers, 100_000),
    "cancelled_timers": (cancelled_timers, 200_000),
    "create_task": (create_task, 100_000),
    "future_wakeup": (future_wakeup, 100_000),
    "sock_ping_pong": (sock_ping_pong, 20_000),
}
