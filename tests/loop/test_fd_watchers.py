"""add_reader / add_writer with asyncio's level-triggered semantics, on every loop and mode."""
import asyncio
import errno
import os
import socket

import pytest

from looptools import open_fds


def test_reader_is_level_triggered_until_drained(loop, pair):
    a, b = pair
    calls = []

    def on_readable():
        calls.append(1)
        if len(calls) == 3:
            a.recv(100)  # drain: no more calls after this
            loop.call_later(0.05, loop.stop)

    loop.add_reader(a, on_readable)
    b.send(b"data")
    guard = loop.call_later(5, loop.stop)
    loop.run_forever()
    guard.cancel()
    assert len(calls) == 3
    assert loop.remove_reader(a) is True
    assert loop.remove_reader(a) is False


def test_writer_called_when_writable_and_removed(loop, pair):
    a, _ = pair
    fut = loop.create_future()
    loop.add_writer(a.fileno(), lambda: fut.done() or fut.set_result("w"))
    assert loop.run_until_complete(asyncio.wait_for(fut, 5)) == "w"
    assert loop.remove_writer(a.fileno())
    assert not loop.remove_writer(a.fileno())


def test_reader_and_writer_on_same_fd(loop, pair):
    a, b = pair
    got = {}

    def done():
        if len(got) == 2:
            loop.stop()

    loop.add_reader(a, lambda: (got.setdefault("r", a.recv(10)), loop.remove_reader(a), done()))
    loop.add_writer(a, lambda: (got.setdefault("w", True), loop.remove_writer(a), done()))
    b.send(b"hi")
    guard = loop.call_later(5, loop.stop)
    loop.run_forever()
    guard.cancel()
    assert got == {"r": b"hi", "w": True}


def test_second_add_reader_replaces_first(loop, pair):
    a, b = pair
    calls = []
    loop.add_reader(a, calls.append, "first")
    loop.add_reader(a, lambda: (calls.append("second"), a.recv(10), loop.stop()))
    b.send(b"x")
    guard = loop.call_later(5, loop.stop)
    loop.run_forever()
    guard.cancel()
    assert calls == ["second"]
    loop.remove_reader(a)


def test_add_reader_on_closed_fd_is_oserror(loop):
    r, w = os.pipe()
    os.close(r)
    os.close(w)
    with pytest.raises(OSError) as e:
        loop.add_reader(r, print)
    assert e.value.errno == errno.EBADF
    assert loop.remove_reader(r) is False


def test_closing_a_registered_fd_then_reusing_the_number(loop):
    """The old registration must not swallow events for the new descriptor."""
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(fd, print)
    a.close()
    b.close()
    loop.remove_reader(fd)
    c, d = socket.socketpair()
    try:
        fut = loop.create_future()
        loop.add_reader(c, lambda: fut.done() or fut.set_result(c.recv(10)))
        d.send(b"new")
        assert loop.run_until_complete(asyncio.wait_for(fut, 5)) == b"new"
        loop.remove_reader(c)
    finally:
        c.close()
        d.close()


def test_invalid_file_objects(loop):
    with pytest.raises(ValueError):
        loop.add_reader(-1, print)
    with pytest.raises((ValueError, TypeError)):
        loop.add_reader(object(), print)


def test_readers_do_not_leak_descriptors(loop):
    before = open_fds()

    async def main():
        for _ in range(50):
            a, b = socket.socketpair()
            fut = loop.create_future()
            loop.add_reader(a, lambda: fut.done() or fut.set_result(a.recv(1)))
            b.send(b"z")
            assert await fut == b"z"
            loop.remove_reader(a)
            a.close()
            b.close()

    loop.run_until_complete(asyncio.wait_for(main(), 10))
    assert open_fds() <= before


@pytest.mark.parametrize("trigger", ["edge", "level"])
def test_close_reader_fd_closes_without_epoll_ctl_and_the_number_can_be_reused(trigger):
    import corenet

    loop = corenet.new_event_loop(trigger=trigger)
    try:
        a, b = socket.socketpair()
        a.setblocking(False)
        fd = a.detach()
        stale = []
        loop.add_reader(fd, lambda: stale.append(1))
        loop.run_until_complete(asyncio.sleep(0))
        calls = loop._epoll_ctl_calls
        loop._close_reader_fd(fd)
        assert loop._epoll_ctl_calls == calls          # closing took it out of epoll
        with pytest.raises(OSError) as e:
            os.fstat(fd)
        assert e.value.errno == errno.EBADF
        assert not loop.remove_reader(fd)
        # The same number for a new socket: registered afresh, and only it is heard.
        c, d = socket.socketpair()
        c.setblocking(False)
        assert c.fileno() == fd                 # the lowest free number (POSIX)
        got = loop.create_future()
        loop.add_reader(c, lambda: got.done() or got.set_result(c.recv(10)))
        d.send(b"new")
        assert loop.run_until_complete(asyncio.wait_for(got, 5)) == b"new"
        assert stale == []
        loop.remove_reader(c)
        for s in (b, c, d):
            s.close()
    finally:
        loop.close()


def test_close_reader_fd_with_a_writer_too_falls_back_to_remove_and_close(pair):
    import corenet

    loop = corenet.new_event_loop()
    try:
        a, _ = pair
        fd = os.dup(a.fileno())
        loop.add_reader(fd, lambda: None)
        loop.add_writer(fd, lambda: None)
        loop._close_reader_fd(fd)
        with pytest.raises(OSError):
            os.fstat(fd)
        assert not loop.remove_reader(fd)
        assert loop.remove_writer(fd)      # left as remove_reader + close would leave it
    finally:
        loop.close()


# A socket object closed while registered: asyncio's selector finds the registration by
# the object (its fileno() is -1 now) and removes it; once nothing is registered for it, or
# for one never registered, the -1 is an invalid descriptor.

@pytest.mark.parametrize("direction", ["reader", "writer"])
def test_remove_after_closing_the_registered_socket_object(loop, direction):
    add = getattr(loop, f"add_{direction}")
    remove = getattr(loop, f"remove_{direction}")
    other = getattr(loop, "remove_writer" if direction == "reader" else "remove_reader")
    a, b = socket.socketpair()
    try:
        add(a, print)
        a.close()
        assert other(a) is False      # registered, but not for that direction
        assert remove(a) is True
        with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
            remove(a)
    finally:
        a.close()
        b.close()


def test_closed_socket_object_never_registered(loop):
    a, b = socket.socketpair()
    a.close()
    b.close()
    for call in (loop.add_reader, loop.add_writer):
        with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
            call(a, print)
    for call in (loop.remove_reader, loop.remove_writer):
        with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
            call(a)


def test_closed_registered_socket_object_then_its_number_reused(loop):
    """The number of the closed socket is taken by a new one, watched too: removing by the
    old object takes the old registration only; the new socket's reader keeps working."""
    a, b = socket.socketpair()
    fd = a.fileno()
    loop.add_reader(a, print)
    a.close()
    b.close()
    c, d = socket.socketpair()
    try:
        assert c.fileno() == fd
        assert loop.remove_reader(a) is True
        fut = loop.create_future()
        loop.add_reader(c, lambda: fut.done() or fut.set_result(c.recv(10)))
        with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
            loop.remove_reader(a)
        d.send(b"new")
        assert loop.run_until_complete(asyncio.wait_for(fut, 5)) == b"new"
        assert loop.remove_reader(c) is True
    finally:
        c.close()
        d.close()


def test_closed_socket_object_removed_after_its_number_went_to_a_watched_socket(corenet_kind):
    """corenet only: asyncio's selector keeps the stale key by number and fails
    (FileNotFoundError) on the new socket's add_reader. The old object's writer is found
    by identity and removed; the new socket's reader stays registered and is called."""
    import corenet

    loop = corenet.new_event_loop(trigger=corenet_kind.split("-", 1)[1])
    a, b = socket.socketpair()
    c = d = None
    try:
        loop.add_writer(a, print)
        a.close()
        b.close()
        c, d = socket.socketpair()
        fut = loop.create_future()
        loop.add_reader(c, lambda: fut.done() or fut.set_result(c.recv(10)))
        assert loop.remove_writer(a) is True
        with pytest.raises(ValueError):          # the reader there is c's
            loop.remove_reader(a)
        d.send(b"new")
        assert loop.run_until_complete(asyncio.wait_for(fut, 5)) == b"new"
        assert loop.remove_reader(c) is True
        assert loop.remove_writer(c) is False
    finally:
        for s in (c, d):
            if s is not None:
                s.close()
        loop.close()


def test_closed_socket_object_with_reader_and_writer(corenet_kind):
    """corenet only: asyncio fails here (EBADF from epoll's modify on the closed number,
    and it drops both callbacks). corenet removes each one by the object."""
    import corenet

    loop = corenet.new_event_loop(trigger=corenet_kind.split("-", 1)[1])
    a, b = socket.socketpair()
    try:
        loop.add_reader(a, print)
        loop.add_writer(a, print)
        a.close()
        assert loop.remove_reader(a) is True
        assert loop.remove_reader(a) is False
        assert loop.remove_writer(a) is True
        with pytest.raises(ValueError, match="Invalid file descriptor: -1"):
            loop.remove_writer(a)
    finally:
        b.close()
        loop.close()
