"""corenet.Epoll on its own: the trigger semantics that matter, and its errors."""
import errno
import os
import select
import socket

import pytest

corenet = pytest.importorskip("corenet._epoll", reason="corenet extensions not built")
Epoll = corenet.Epoll


def test_constants_match_the_kernel():
    for name in ("EPOLLIN", "EPOLLOUT", "EPOLLERR", "EPOLLHUP", "EPOLLRDHUP", "EPOLLET",
                 "EPOLLONESHOT", "EPOLLEXCLUSIVE", "EPOLLPRI"):
        assert getattr(corenet, name) == getattr(select, name)


def test_level_triggered_reports_until_drained(pair):
    a, b = pair
    with Epoll() as ep:
        ep.register(a, corenet.EPOLLIN)
        assert ep.poll(0) == []
        b.send(b"xyz")
        assert ep.poll(1) == [(a.fileno(), corenet.EPOLLIN)]
        assert ep.poll(0) == [(a.fileno(), corenet.EPOLLIN)]  # still readable
        assert a.recv(10) == b"xyz"
        assert ep.poll(0) == []


def test_edge_triggered_reports_once_per_arrival(pair):
    a, b = pair
    with Epoll() as ep:
        ep.register(a.fileno(), corenet.EPOLLIN, edge=True)
        b.send(b"1")
        assert ep.poll(1) == [(a.fileno(), corenet.EPOLLIN)]
        assert ep.poll(0) == []  # not drained, but no new edge
        b.send(b"2")
        assert ep.poll(1) == [(a.fileno(), corenet.EPOLLIN)]
        assert a.recv(10) == b"12"


def test_oneshot_needs_modify_to_rearm(pair):
    a, b = pair
    with Epoll() as ep:
        ep.register(a, corenet.EPOLLIN, oneshot=True)
        b.send(b"1")
        assert len(ep.poll(1)) == 1
        b.send(b"2")
        assert ep.poll(0) == []
        ep.modify(a, corenet.EPOLLIN, oneshot=True)
        assert ep.poll(1) == [(a.fileno(), corenet.EPOLLIN)]


def test_rdhup_reports_peer_half_close(pair):
    a, b = pair
    with Epoll() as ep:
        ep.register(a, corenet.EPOLLIN | corenet.EPOLLRDHUP)
        b.shutdown(socket.SHUT_WR)
        (fd, events), = ep.poll(1)
        assert fd == a.fileno()
        assert events & corenet.EPOLLRDHUP
        assert a.recv(10) == b""


def test_exclusive_register_and_writable(pair):
    a, _ = pair
    with Epoll() as ep:
        ep.register(a, corenet.EPOLLOUT, exclusive=True)
        assert ep.poll(1) == [(a.fileno(), corenet.EPOLLOUT)]


def test_errors_carry_errno(pair):
    a, _ = pair
    with Epoll() as ep:
        ep.register(a, corenet.EPOLLIN)
        with pytest.raises(OSError) as e:
            ep.register(a, corenet.EPOLLIN)
        assert e.value.errno == errno.EEXIST
        ep.unregister(a)
        with pytest.raises(OSError) as e:
            ep.unregister(a)
        assert e.value.errno == errno.ENOENT
        with pytest.raises(OSError) as e:
            ep.modify(a, corenet.EPOLLIN)
        assert e.value.errno == errno.ENOENT
        r, w = os.pipe()
        os.close(r)
        os.close(w)
        with pytest.raises(OSError) as e:
            ep.register(r, corenet.EPOLLIN)
        assert e.value.errno == errno.EBADF
        with pytest.raises(ValueError):
            ep.register(-1, corenet.EPOLLIN)
        with pytest.raises(ValueError):
            ep.poll(0, maxevents=0)


def test_use_after_close_is_value_error(pair):
    a, _ = pair
    ep = Epoll()
    fd = ep.fileno()
    assert not ep.closed
    ep.close()
    assert ep.closed
    ep.close()  # idempotent
    for call in (lambda: ep.register(a, 1), lambda: ep.modify(a, 1), lambda: ep.unregister(a),
                 lambda: ep.poll(0), ep.fileno):
        with pytest.raises(ValueError):
            call()
    with pytest.raises(OSError) as e:
        os.fstat(fd)
    assert e.value.errno == errno.EBADF


def test_maxevents_limits_one_poll():
    socks = [socket.socketpair() for _ in range(5)]
    try:
        with Epoll() as ep:
            for a, b in socks:
                ep.register(a, corenet.EPOLLIN)
                b.send(b"x")
            assert len(ep.poll(1, maxevents=2)) == 2
            assert len(ep.poll(1)) == 5
    finally:
        for a, b in socks:
            a.close()
            b.close()
