"""Running, stopping and closing, and the errors asyncio gives for misuse."""
import asyncio
import gc
import warnings

import pytest

from looptools import make_loop, open_fds


def test_run_until_complete_returns_result_and_raises_exception(loop):
    async def ok():
        return 5

    async def bad():
        raise LookupError("x")

    assert loop.run_until_complete(ok()) == 5
    with pytest.raises(LookupError):
        loop.run_until_complete(bad())


def test_run_until_complete_accepts_future_and_stopped_early(loop):
    fut = loop.create_future()
    loop.call_soon(fut.set_result, "f")
    assert loop.run_until_complete(fut) == "f"
    fut2 = loop.create_future()
    loop.call_soon(loop.stop)
    with pytest.raises(RuntimeError, match="stopped before Future completed"):
        loop.run_until_complete(fut2)


def test_stop_before_run_runs_one_iteration(loop):
    seen = []
    loop.call_soon(seen.append, 1)
    loop.stop()
    loop.run_forever()
    assert seen == [1]


def test_is_running_and_running_loop(loop):
    async def main():
        assert loop.is_running()
        assert asyncio.get_running_loop() is loop
        return True

    assert not loop.is_running()
    assert loop.run_until_complete(main())
    assert not loop.is_running()


def test_run_while_running_is_runtime_error(loop):
    async def nested():
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="already running"):
            loop.run_until_complete(coro)
        coro.close()
        with pytest.raises(RuntimeError, match="already running"):
            loop.run_forever()
        return "ok"

    assert loop.run_until_complete(nested()) == "ok"


def test_cannot_run_while_another_loop_runs(loop, loop_kind):
    from looptools import make_loop
    other = make_loop(loop_kind)

    async def main():
        coro = asyncio.sleep(0)
        try:
            with pytest.raises(RuntimeError, match="another loop is running"):
                other.run_until_complete(coro)
        finally:
            coro.close()

    try:
        loop.run_until_complete(main())
    finally:
        other.close()


def test_close_while_running_is_runtime_error(loop):
    async def main():
        with pytest.raises(RuntimeError, match="running event loop"):
            loop.close()

    loop.run_until_complete(main())


def test_closed_loop_refuses_work(loop):
    loop.close()
    assert loop.is_closed()
    loop.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later(1, print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_forever()
    coro = asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_until_complete(coro)
    coro.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon_threadsafe(print)
    with pytest.raises(RuntimeError):
        loop.run_in_executor(None, print)


def test_close_releases_descriptors(loop_kind):
    from looptools import make_loop
    before = open_fds()
    for _ in range(20):
        lp = make_loop(loop_kind)
        lp.run_until_complete(asyncio.sleep(0))
        lp.close()
    gc.collect()
    assert open_fds() <= before


def test_unclosed_loop_warns(loop_kind):
    from looptools import make_loop
    lp = make_loop(loop_kind)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        del lp
        gc.collect()
    assert any(issubclass(x.category, ResourceWarning) for x in w)


def test_tasks_and_futures(loop):
    async def child(i):
        await asyncio.sleep(0)
        return i * 2

    async def main():
        tasks = [loop.create_task(child(i), name=f"c{i}") for i in range(10)]
        assert tasks[3].get_name() == "c3"
        fut = loop.create_future()
        loop.call_soon(fut.set_result, "done")
        return await asyncio.gather(*tasks), await fut

    results, f = loop.run_until_complete(main())
    assert results == [i * 2 for i in range(10)] and f == "done"


def test_task_factory(loop):
    made = []

    def factory(lp, coro, **kw):
        t = asyncio.Task(coro, loop=lp, **kw)
        made.append(t)
        return t

    assert loop.get_task_factory() is None
    loop.set_task_factory(factory)
    assert loop.get_task_factory() is factory

    async def main():
        t = loop.create_task(asyncio.sleep(0, "v"), name="named")
        assert t.get_name() == "named"
        return await t

    assert loop.run_until_complete(main()) == "v"
    assert len(made) >= 2
    with pytest.raises(TypeError):
        loop.set_task_factory(5)
    loop.set_task_factory(None)


def test_asyncgens_finalized_by_shutdown(loop):
    closed = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    async def main():
        g = agen()
        assert await g.__anext__() == 1
        return g

    g = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert closed == [True]
    del g


def test_runner_and_corenet_run(corenet_kind):
    import corenet

    async def main():
        return type(asyncio.get_running_loop()).__module__

    trigger = corenet_kind.split("-")[1]
    assert corenet.run(main(), trigger=trigger) == "corenet.loop"
    with asyncio.Runner(loop_factory=lambda: corenet.new_event_loop(trigger=trigger)) as r:
        assert r.run(main()) == "corenet.loop"
        assert r.get_loop().trigger == trigger


def test_system_exit_in_runner_task_is_not_reported_as_unretrieved(loop_kind):
    reports = []

    async def main():
        asyncio.get_running_loop().set_exception_handler(lambda lp, ctx: reports.append(ctx))
        await asyncio.sleep(0)
        raise SystemExit(3)

    runner = asyncio.Runner(loop_factory=lambda: make_loop(loop_kind))
    with pytest.raises(SystemExit):
        with runner:
            runner.run(main())
    gc.collect()
    assert reports == []


class _Signal(asyncio.Protocol):
    """Sets the future it is given when bytes arrive."""

    arrived = None

    def data_received(self, data):
        if self.arrived is not None and not self.arrived.done():
            self.arrived.set_result(data)


def test_a_task_woken_by_io_runs_without_another_poll(corenet_kind, pair):
    """A task that sends and waits for the answer, as a client does request after
    request: the I/O event's callback wakes the task, which runs in the next iteration
    without the loop polling first (a poll that may not wait, which would find nothing).
    One poll a round trip, where an iteration that polls whenever callbacks are ready
    makes two."""
    loop = make_loop(corenet_kind)
    a, b = pair
    try:
        async def main():
            transport, proto = await loop.connect_accepted_socket(_Signal, b)
            for _ in range(5):          # settled: the transport reads, the task waits
                proto.arrived = loop.create_future()
                a.send(b"x")
                await proto.arrived
            before = loop._polls
            for _ in range(200):
                proto.arrived = loop.create_future()
                a.send(b"x")
                await proto.arrived
            polls = loop._polls - before
            transport.close()
            return polls

        assert loop.run_until_complete(main()) <= 202
    finally:
        loop.close()


def test_io_is_read_between_callbacks_that_schedule_each_other(loop, pair):
    """Callbacks that keep scheduling one another do not keep I/O waiting: the bytes at
    hand are read within two iterations, and the loop polls at least every other one."""
    a, b = pair
    turns = []
    read_at = []

    def chain():
        turns.append(None)
        if len(turns) < 100:
            loop.call_soon(chain)
        else:
            loop.stop()

    def readable():
        b.recv(16)
        read_at.append(len(turns))

    loop.add_reader(b, readable)            # registered throughout: there is I/O to poll
    loop.call_soon(chain)
    a.send(b"x")
    polls = getattr(loop, "_polls", None)
    try:
        loop.run_forever()
    finally:
        loop.remove_reader(b)
    assert read_at and read_at[0] <= 2, read_at
    if polls is not None:
        assert loop._polls - polls >= 50


def test_stop_then_run_forever_reads_the_io_at_hand(loop, pair):
    """``stop()`` then ``run_forever()`` runs one iteration that also takes the I/O
    events at hand, right after a run whose last iteration polled."""
    a, b = pair
    seen = []

    async def settle():
        await asyncio.sleep(0)

    loop.run_until_complete(settle())
    loop.add_reader(b, lambda: seen.append(b.recv(16)))
    a.send(b"x")
    loop.call_soon(seen.append, "callback")
    loop.stop()
    loop.run_forever()
    assert seen == ["callback", b"x"]
