"""Debug mode, the exception handler API, idle CPU and the policy/trigger switch."""
import asyncio
import contextvars
import logging
import resource
import sys
import time

import pytest


def test_exception_handler_api(loop):
    assert loop.get_exception_handler() is None
    with pytest.raises(TypeError):
        loop.set_exception_handler(5)
    got = []
    handler = lambda lp, ctx: got.append((lp, ctx))
    loop.set_exception_handler(handler)
    assert loop.get_exception_handler() is handler
    loop.call_exception_handler({"message": "m"})
    assert got == [(loop, {"message": "m"})]
    loop.set_exception_handler(None)


def test_default_handler_logs_message_and_exception(loop, caplog):
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        try:
            raise KeyError("k")
        except KeyError as exc:
            loop.call_exception_handler({"message": "something broke", "exception": exc, "extra": 7})
    rec = caplog.records[-1]
    assert "something broke" in rec.getMessage()
    assert "extra: 7" in rec.getMessage()
    assert rec.exc_info[0] is KeyError


def test_failing_custom_handler_falls_back_to_default(loop, caplog):
    def bad(lp, ctx):
        raise RuntimeError("handler bug")

    loop.set_exception_handler(bad)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.call_exception_handler({"message": "orig"})
    assert "Unhandled error in exception handler" in caplog.text
    loop.set_exception_handler(None)


def test_custom_handler_runs_in_the_failing_callbacks_context_from_3_12(loop):
    """asyncio 3.12 (gh-96704) runs a custom handler in the context of the handle or task
    that failed, so it sees the context variables that code set; 3.11 runs it in the loop's."""
    name = contextvars.ContextVar("name", default="outer")
    seen = []
    loop.set_exception_handler(lambda lp, ctx: seen.append((ctx["message"], name.get())))
    inner = "inner" if sys.version_info >= (3, 12) else "outer"

    def callback():
        name.set("inner")
        1 / 0

    async def main():
        loop.call_soon(callback)
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    loop.run_until_complete(main())
    assert len(seen) == 1 and seen[0][0].startswith("Exception in callback"), seen
    assert seen[0][1] == inner
    # A handle whose context was given explicitly: that context.
    ctx = contextvars.copy_context()
    ctx.run(name.set, "given")
    loop.call_soon(callback, context=ctx)
    loop.run_until_complete(asyncio.sleep(0.01))
    assert seen[1][1] == ("inner" if sys.version_info >= (3, 12) else "outer")
    assert ctx[name] == "inner"
    loop.set_exception_handler(None)


def test_unretrieved_task_exception_is_reported(loop):
    got = []
    loop.set_exception_handler(lambda lp, ctx: got.append(ctx))

    async def bad():
        raise ValueError("never retrieved")

    async def main():
        loop.create_task(bad())
        await asyncio.sleep(0.01)

    loop.run_until_complete(main())
    import gc
    gc.collect()
    assert any(isinstance(c.get("exception"), ValueError) for c in got)


@pytest.mark.parametrize("debug", [False, True])
def test_a_dropped_failed_task_is_reported_by_the_next_iteration(loop, debug):
    """Once its last step has run, nothing of the loop's keeps a task alive, in debug mode
    too: a failed task nobody holds is reported when it is freed, one iteration later, as
    asyncio does (CPython's test_task_exc_handler_correct_context relies on it)."""
    loop.set_debug(debug)
    got = []
    loop.set_exception_handler(lambda lp, ctx: got.append(ctx["message"]))

    async def bad():
        raise ValueError("never retrieved")

    async def main():
        loop.create_task(bad())
        await asyncio.sleep(0)
        return list(got)

    assert loop.run_until_complete(main()) == ["Task exception was never retrieved"]
    loop.set_exception_handler(None)


def test_debug_mode_warns_on_slow_callbacks(loop, caplog):
    loop.set_debug(True)
    assert loop.get_debug()
    loop.slow_callback_duration = 0.01
    loop.call_soon(time.sleep, 0.05)
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    assert any("took" in r.getMessage() for r in caplog.records)
    loop.set_debug(False)


def slowly_done() -> None:
    time.sleep(0.03)


async def slow_coroutine() -> None:
    time.sleep(0.03)


def test_slow_callback_warning_names_the_callback_or_the_task(loop, caplog):
    """As asyncio: the handle with its callback, or for a task's step, the task. (Read
    after the loop ran: a handle that has run lets go of its callback.)"""
    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    loop.call_soon(slowly_done)
    task = loop.create_task(slow_coroutine(), name="the-slow-task")
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_until_complete(task)
    loop.set_debug(False)
    slow = [r.getMessage() for r in caplog.records if " took " in r.getMessage()]
    assert any(m.startswith("Executing <Handle slowly_done() at ") for m in slow), slow
    assert any(m.startswith("Executing <Task ") and "the-slow-task" in m
               and "slow_coroutine()" in m for m in slow), slow
    assert not any("<Handle created at" in m for m in slow), slow


def test_slow_protocol_callback_is_reported_in_debug_mode(loop, caplog):
    """A data_received that takes long is reported as a slow callback naming the transport
    it came from (asyncio names the transport's read handle)."""
    import socket

    class Slow(asyncio.Protocol):
        def __init__(self):
            self.got = loop.create_future()

        def data_received(self, data):
            time.sleep(0.03)
            if not self.got.done():
                self.got.set_result(data)

    async def main():
        a, b = socket.socketpair()
        tr, pr = await loop.connect_accepted_socket(Slow, a)
        b.send(b"x")
        assert await asyncio.wait_for(pr.got, 5) == b"x"
        tr.close()
        b.close()
        await asyncio.sleep(0)

    loop.set_debug(True)
    loop.slow_callback_duration = 0.01
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_until_complete(main())
    loop.set_debug(False)
    slow = [r.getMessage() for r in caplog.records if " took " in r.getMessage()]
    assert any(m.startswith("Executing <") and "Transport" in m for m in slow), slow


def test_debug_mode_records_source_traceback(loop):
    loop.set_debug(True)
    h = loop.call_soon(print)
    h.cancel()
    assert h._source_traceback
    assert any(__file__ == frame.filename for frame in h._source_traceback)
    loop.set_debug(False)


def test_debug_mode_rejects_calls_from_other_threads(loop):
    import threading
    loop.set_debug(True)
    errors = []

    async def main():
        def other():
            try:
                loop.call_soon(print)
            except RuntimeError as e:
                errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        await loop.run_in_executor(None, t.join)

    loop.run_until_complete(main())
    loop.set_debug(False)
    assert errors and "thread" in str(errors[0]).lower()


def test_idle_loop_uses_no_cpu(loop):
    """A loop with nothing to do must block in the kernel, not spin."""
    async def idle():
        await asyncio.sleep(1.0)

    t0 = resource.getrusage(resource.RUSAGE_THREAD)
    loop.run_until_complete(idle())
    t1 = resource.getrusage(resource.RUSAGE_THREAD)
    cpu = (t1.ru_utime - t0.ru_utime) + (t1.ru_stime - t0.ru_stime)
    assert cpu < 0.05


def test_trigger_choice(corenet_kind, monkeypatch):
    import corenet
    mode = corenet_kind.split("-")[1]
    lp = corenet.new_event_loop(trigger=mode)
    assert lp.trigger == mode
    lp.close()
    other = "level" if mode == "edge" else "edge"
    monkeypatch.setenv("CORENET_TRIGGER", other)
    lp = corenet.new_event_loop()
    assert lp.trigger == other
    lp.close()
    with pytest.raises(ValueError):
        corenet.new_event_loop(trigger="sideways")

