"""corenet/capi.pxd, the loop's C API, as an extension outside corenet uses it.

The extension ``capi_ext.pyx`` is compiled here with Cython against the source tree's
``corenet/capi.pxd`` (it is not part of the package), then driven on a real loop.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sys
import time
from pathlib import Path

import pytest

import corenet
from looptools import make_loop

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def capi_ext(tmp_path_factory):
    import pyximport

    src = tmp_path_factory.mktemp("capi_ext")
    shutil.copy(HERE / "capi_ext.pyx", src)
    sys.path.insert(0, str(src))
    importer = pyximport.install(build_dir=str(src / "build"), language_level=3,
                                 setup_args={"include_dirs": [str(ROOT)]},
                                 inplace=False)
    try:
        import capi_ext
        yield capi_ext
    finally:
        pyximport.uninstall(*importer)
        sys.path.remove(str(src))
        sys.modules.pop("capi_ext", None)


@pytest.fixture(params=["corenet-edge", "corenet-level"])
def loop(request):
    lp = make_loop(request.param)
    yield lp
    lp.close()


def test_fast_loop_tells_corenet_from_other_loops(capi_ext, loop):
    assert capi_ext.is_fast(loop)
    other = asyncio.SelectorEventLoop()
    try:
        assert not capi_ext.is_fast(other)
        with pytest.raises(TypeError):
            capi_ext.before_poll(other, lambda: None)
    finally:
        other.close()


def test_before_poll_runs_once_after_the_iterations_callbacks_in_order(capi_ext, loop):
    order = []

    def first():
        order.append("first")
        capi_ext.before_poll(loop, lambda: order.append("added-by-a-before-poll-callback"))

    def start():
        order.append("start")
        capi_ext.before_poll(loop, first)
        capi_ext.before_poll(loop, lambda: order.append("second"))
        loop.call_soon(order.append, "next-iteration")

    loop.call_soon(start)
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    # The iteration's callbacks first, then (before the loop waits) the before-poll
    # callbacks in the order they were added, each once; one added by a before-poll
    # callback waits for the next iteration.
    assert order == ["start", "first", "second", "next-iteration",
                     "added-by-a-before-poll-callback"]


def test_before_poll_exception_goes_to_the_handler_and_others_still_run(capi_ext, loop):
    seen, ran = [], []
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["exception"]))
    capi_ext.before_poll(loop, lambda: 1 / 0)
    capi_ext.before_poll(loop, lambda: ran.append(True))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert ran == [True]
    assert len(seen) == 1 and isinstance(seen[0], ZeroDivisionError)


def test_watcher_is_called_from_epoll_and_unwatch_stops_it(capi_ext, loop):
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        d = capi_ext.Drain(r)
        d.start(loop)
        assert d.mask & 0x001            # EPOLLIN
        os.write(w, b"hello")
        loop.call_later(0.05, loop.stop)
        loop.run_forever()
        assert d.data == b"hello"
        assert d.events and d.loop_seen is loop
        with pytest.raises(RuntimeError):
            loop.add_reader(r, lambda: None)      # the descriptor is the watcher's
        d.stop(loop)
        assert d.mask == 0
        os.write(w, b"more")
        loop.call_later(0.05, loop.stop)
        loop.run_forever()
        assert d.data == b"hello"        # no more events after unwatch
    finally:
        os.close(r)
        os.close(w)


def _long_iteration(loop, w, work: float, drain) -> list:
    """One iteration's two callbacks: the first works for ``work`` seconds and then makes
    the pipe readable, the second notes whether ``drain`` has read it already."""
    seen = []

    def first():
        end = time.monotonic() + work
        while time.monotonic() < end:
            pass
        os.write(w, b"x")

    loop.call_soon(first)
    loop.call_soon(lambda: seen.append("read" if drain.data else "not yet"))
    loop.call_later(0.05, loop.stop)
    return seen


@pytest.mark.parametrize("case", ["stays", "interval not reached", "read_often_stop",
                                  "unwatch"])
def test_read_often_reads_a_watcher_between_the_callbacks_of_a_long_iteration(capi_ext, loop,
                                                                             case):
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        d = capi_ext.Drain(r)
        d.start(loop)
        d.often(loop, 30.0 if case == "interval not reached" else 0.001)
        if case == "read_often_stop":
            d.often_stop(loop)
        elif case == "unwatch":
            d.stop(loop)
        seen = _long_iteration(loop, w, 0.005, d)
        loop.run_forever()
        # Past ``every`` the watcher is read between the two callbacks, not after the poll;
        # before it, or once stopped (or unwatched), it waits for its epoll event as any other.
        assert seen == (["read"] if case == "stays" else ["not yet"])
        assert d.data == (b"" if case == "unwatch" else b"x")
        with pytest.raises(ValueError):
            d.often(loop, 0.0)
    finally:
        d.stop(loop)
        os.close(r)
        os.close(w)


def test_read_often_counts_the_interval_from_the_poll(capi_ext, loop):
    """A short iteration after a long idle poll does not read the watcher again: its poll
    has just said the descriptor is empty. A long one still does."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    try:
        d = capi_ext.Drain(r)
        d.start(loop)
        d.often(loop, 0.05)
        marks = []
        loop.call_later(0.3, lambda: marks.append(len(d.events)))     # 6 intervals idle
        loop.call_later(0.4, lambda: marks.append(len(d.events)))
        loop.call_later(0.45, loop.stop)
        loop.run_forever()
        assert marks == [0, 0] and d.events == [] and d.data == b""
        seen = _long_iteration(loop, w, 0.1, d)
        loop.run_forever()
        assert seen == ["read"] and d.data == b"x"
    finally:
        d.stop(loop)
        os.close(r)
        os.close(w)


def test_a_watcher_made_without_arguments_is_watched_on_the_descriptor_set_later(capi_ext,
                                                                                 loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        d = capi_ext.bare_drain(a.fileno())
        assert d.fileno == a.fileno()
        d.start(loop)
        b.send(b"late")
        loop.call_later(0.05, loop.stop)
        loop.run_forever()
        assert d.data == b"late" and d.loop_seen is loop
        d.stop(loop)
    finally:
        a.close()
        b.close()


def test_unwatch_close_closes_without_epoll_ctl_and_the_number_can_be_reused(capi_ext, loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    fd = a.detach()
    d = capi_ext.Drain(fd)
    d.start(loop)
    b.send(b"one")
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert d.data == b"one"
    calls = loop._epoll_ctl_calls
    d.close(loop)
    assert loop._epoll_ctl_calls == calls        # closing took it out of epoll
    assert d.fileno == -1 and d.mask == 0
    with pytest.raises(OSError):
        os.fstat(fd)
    d.close(loop)                                # a second close does nothing
    # The same number for a new socket: only its own reader hears it.
    c, e = socket.socketpair()
    c.setblocking(False)
    assert c.fileno() == fd                      # the lowest free number (POSIX)
    got = []
    loop.add_reader(c, lambda: got.append(c.recv(10)))
    e.send(b"new")
    loop.call_later(0.05, loop.stop)
    loop.run_forever()
    assert got == [b"new"] and d.data == b"one"
    loop.remove_reader(c)
    for s in (b, c, e):
        s.close()


def test_reader_timer_and_close_reader(capi_ext, loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    got, fired = [], []
    capi_ext.reader(loop, a.fileno(), lambda: got.append(a.recv(100)))
    cancelled = capi_ext.later(loop, 0.01, lambda: fired.append("cancelled"))
    cancelled.cancel()
    capi_ext.later(loop, 0.02, lambda: fired.append("timer"))
    b.send(b"ping")
    loop.call_later(0.1, loop.stop)
    loop.run_forever()
    assert got == [b"ping"]
    assert fired == ["timer"]
    fd = a.detach()
    capi_ext.close_reader(loop, fd)
    with pytest.raises(OSError):
        os.fstat(fd)                      # closed
    assert not loop.remove_reader(fd)     # and forgotten by the loop
    b.close()


def test_loop_type_is_the_public_loops_base(capi_ext):
    lp = corenet.new_event_loop()
    try:
        assert capi_ext.is_fast(lp)
    finally:
        lp.close()


def test_a_frame_receiver_subclass_reads_frames_in_place(capi_ext):
    from corenet.framing import FrameTooLarge

    f = capi_ext.Frames(None, 2, "big", 1000, 64)
    f.setup()
    wire = b"".join(f.header_for(p) + p for p in (b"one", b"", b"x" * 100, b"two"))
    pos = 0
    while pos < len(wire):                    # in pieces, as a socket delivers them
        buf = f.get_buffer(-1)
        n = min(len(buf), 7, len(wire) - pos)
        buf[:n] = wire[pos:pos + n]
        f.buffer_updated(n)
        pos += n
    assert f.seen == [("small", b"one"), ("small", b""), ("big", b"x" * 100),
                      ("small", b"two")]
    buf = f.get_buffer(2)
    buf[:2] = b"\x04\x00"                     # 1024 > max_frame_size
    with pytest.raises(FrameTooLarge):
        f.buffer_updated(2)
