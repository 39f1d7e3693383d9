"""call_soon / call_soon_threadsafe / handles / contexts, asserted identically on every loop."""
import asyncio
import contextvars
import socket
import threading

import pytest
from looptools import make_loop

var = contextvars.ContextVar("var", default="unset")


def test_call_soon_runs_in_fifo_order_with_args(loop):
    seen = []
    for i in range(5):
        loop.call_soon(seen.append, i)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == [0, 1, 2, 3, 4]


def test_callbacks_scheduled_during_an_iteration_run_in_the_next(loop):
    order = []

    def first():
        order.append("first")
        loop.call_soon(order.append, "scheduled-by-first")

    loop.call_soon(first)
    loop.call_soon(order.append, "second")
    loop.call_soon(loop.stop)
    loop.run_forever()
    # stop() lets the current iteration finish; the newly scheduled one waits for the next run.
    assert order == ["first", "second"]
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert order == ["first", "second", "scheduled-by-first"]


def test_cancelled_handle_does_not_run_and_cancel_twice_is_harmless(loop):
    seen = []
    h = loop.call_soon(seen.append, 1)
    assert not h.cancelled()
    h.cancel()
    h.cancel()
    assert h.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == []


def test_context_is_copied_at_schedule_time(loop):
    got = []
    var.set("at-schedule")
    loop.call_soon(lambda: got.append(var.get()))
    var.set("later")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == ["at-schedule"]
    var.set("unset")


def test_explicit_context_is_used_and_mutations_stay_in_it(loop):
    ctx = contextvars.copy_context()
    ctx.run(var.set, "in-ctx")

    def cb():
        assert var.get() == "in-ctx"
        var.set("changed")

    h = loop.call_soon(cb, context=ctx)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ctx[var] == "changed"
    assert var.get() == "unset"


def test_call_soon_threadsafe_wakes_a_blocked_loop(loop):
    got = []

    def worker():
        loop.call_soon_threadsafe(got.append, threading.get_ident())
        loop.call_soon_threadsafe(loop.stop)

    # Without a wake-up the loop would block forever: it has no timers and no I/O.
    guard = loop.call_later(10, loop.stop)
    t = threading.Timer(0.05, worker)
    t.start()
    loop.run_forever()
    t.join()
    guard.cancel()
    assert got and got[0] != threading.get_ident()


def test_many_threads_schedule_without_loss(loop):
    n_threads, per_thread = 4, 500
    got = []

    async def main():
        done = asyncio.Event()

        def add(i):
            got.append(i)
            if len(got) == n_threads * per_thread:
                done.set()

        def worker(base):
            for i in range(per_thread):
                loop.call_soon_threadsafe(add, base + i)

        threads = [threading.Thread(target=worker, args=(k * per_thread,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        await asyncio.wait_for(done.wait(), 10)
        for t in threads:
            t.join()

    loop.run_until_complete(main())
    assert sorted(got) == list(range(n_threads * per_thread))


def test_callback_exception_goes_to_handler_and_loop_continues(loop):
    reports = []
    loop.set_exception_handler(lambda lp, ctx: reports.append(ctx))
    boom = ValueError("boom")

    def bad():
        raise boom

    seen = []
    loop.call_soon(bad)
    loop.call_soon(seen.append, "after")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["after"]
    assert len(reports) == 1
    assert reports[0]["exception"] is boom
    assert "Exception in callback" in reports[0]["message"]
    assert reports[0]["handle"] is not None


def test_keyboard_interrupt_in_callback_propagates_and_keeps_pending(loop):
    seen = []

    def interrupt():
        raise KeyboardInterrupt

    loop.call_soon(interrupt)
    loop.call_soon(seen.append, "pending")
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert not loop.is_running()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["pending"]


def test_coroutine_callbacks_rejected_in_debug(loop):
    loop.set_debug(True)

    async def coro():
        pass

    with pytest.raises(TypeError):
        loop.call_soon(coro)
    with pytest.raises(TypeError):
        loop.call_later(1, coro)
    loop.set_debug(False)


# ---- corenet's before-poll hook (BaseLoop._call_before_poll), for Cython callers that gather
# work over an iteration (the resolver's UDP listener sends its answers there in one go).

def test_before_poll_runs_once_after_the_iteration_and_before_the_next_callbacks(corenet_kind):
    loop = make_loop(corenet_kind)
    try:
        order = []

        def first():
            loop._call_before_poll(lambda: order.append("flush"))
            loop.call_soon(order.append, "next-iteration")
            order.append("first")

        loop.call_soon(first)
        loop.call_soon(order.append, "same-iteration")
        loop.run_until_complete(asyncio.sleep(0.01))
        assert order == ["first", "same-iteration", "flush", "next-iteration"]
    finally:
        loop.close()


def test_before_poll_does_not_wait_for_events_first(corenet_kind):
    """Scheduled from an I/O callback with nothing else to do, it still runs: the loop must
    not block in epoll_wait before it (the daemon's answers would wait for the next query)."""
    loop = make_loop(corenet_kind)
    a, b = socket.socketpair()
    try:
        done = loop.create_future()

        def on_readable():
            a.recv(10)
            loop.remove_reader(a)
            loop._call_before_poll(lambda: done.set_result("ran"))

        loop.add_reader(a, on_readable)
        b.send(b"x")
        assert loop.run_until_complete(asyncio.wait_for(done, 5)) == "ran"
    finally:
        a.close()
        b.close()
        loop.close()


def test_before_poll_added_by_one_runs_next_without_waiting_for_events(corenet_kind):
    """One added while they run goes to the next iteration, whose poll must not block first
    (an answer a flush made would wait for the next event)."""
    loop = make_loop(corenet_kind)
    try:
        order = []
        done = loop.create_future()

        def second():
            order.append("second")
            if not done.done():
                done.set_result(None)

        def first():
            loop._call_before_poll(second)

        async def waiting():
            loop._call_before_poll(first)
            # Nothing else is ready meanwhile: only a loop that waited in its poll would
            # run this timer first.
            loop.call_later(2.0, lambda: order.append("timer") or done.done() or
                            done.set_result(None))
            await done

        loop.run_until_complete(waiting())
        assert order == ["second"]
    finally:
        loop.close()


def test_before_poll_errors_go_to_the_handler_and_the_others_still_run(corenet_kind):
    loop = make_loop(corenet_kind)
    try:
        errors, ran = [], []
        loop.set_exception_handler(lambda lp, ctx: errors.append(ctx["exception"]))

        def boom():
            raise RuntimeError("planted")

        loop._call_before_poll(boom)
        loop._call_before_poll(lambda: ran.append(1))
        loop.run_until_complete(asyncio.sleep(0.01))
        assert ran == [1]
        assert len(errors) == 1 and str(errors[0]) == "planted"
    finally:
        loop.close()


def test_keyboard_interrupt_in_before_poll_keeps_the_rest_for_the_next_run(corenet_kind):
    loop = make_loop(corenet_kind)
    try:
        ran = []

        def interrupt():
            raise KeyboardInterrupt

        loop._call_before_poll(interrupt)
        loop._call_before_poll(lambda: ran.append("kept"))
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(asyncio.sleep(0.01))
        assert ran == []
        loop.run_until_complete(asyncio.sleep(0.01))
        assert ran == ["kept"]
    finally:
        loop.close()
