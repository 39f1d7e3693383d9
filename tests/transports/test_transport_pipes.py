"""Pipes and subprocesses on the loop: connect_read_pipe, connect_write_pipe,
subprocess_exec, subprocess_shell (child exit noticed without a SIGCHLD handler)."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import threading

import pytest

from looptools import CORENET_KINDS
from transport_helpers import Recorder


def test_read_pipe(loop, run, fd_check):
    async def main():
        r, w = os.pipe()
        rf = os.fdopen(r, "rb", 0)
        tr, pr = await loop.connect_read_pipe(Recorder, rf)
        assert isinstance(tr, asyncio.ReadTransport)
        os.write(w, b"through the pipe")
        assert await pr.wait_bytes(16) == b"through the pipe"
        tr.pause_reading()
        assert not tr.is_reading()
        os.write(w, b"!")
        await asyncio.sleep(0.02)
        assert bytes(pr.data) == b"through the pipe"
        tr.resume_reading()
        os.close(w)
        await pr.lost
        assert bytes(pr.data) == b"through the pipe!"
        assert pr.eof_calls == 1 and pr.lost_calls == [None]

    run(main())
    fd_check()


def test_write_pipe(loop, run, fd_check):
    async def main():
        r, w = os.pipe()
        wf = os.fdopen(w, "wb", 0)
        tr, pr = await loop.connect_write_pipe(Recorder, wf)
        assert isinstance(tr, asyncio.WriteTransport)
        payload = os.urandom(300_000)  # more than a pipe holds: part of it is queued
        tr.write(payload)
        assert tr.get_write_buffer_size() > 0
        got = bytearray()
        os.set_blocking(r, False)
        while len(got) < len(payload):
            try:
                got += os.read(r, 65536)
            except BlockingIOError:
                await asyncio.sleep(0.001)
        assert bytes(got) == payload
        tr.close()
        assert await pr.lost is None
        os.close(r)

    run(main())
    fd_check()


def test_write_pipe_reader_gone(loop, run, fd_check):
    async def main():
        r, w = os.pipe()
        wf = os.fdopen(w, "wb", 0)
        tr, pr = await loop.connect_write_pipe(Recorder, wf)
        os.close(r)
        await asyncio.wait_for(pr.lost, 5)  # the loop watches the write end for the reader leaving
        assert len(pr.lost_calls) == 1
        assert tr.is_closing()

    run(main())
    fd_check()


def test_subprocess_exec_pipes_and_exit_status(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c",
            "import sys; data = sys.stdin.buffer.read(); sys.stdout.buffer.write(data[::-1]);"
            "sys.stderr.write('err'); sys.exit(7)",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate(b"abc" * 1000)
        assert out == (b"abc" * 1000)[::-1]
        assert err == b"err"
        assert proc.returncode == 7
        assert isinstance(proc._transport, asyncio.SubprocessTransport)
        assert proc._transport.get_pid() == proc.pid
        assert proc._transport.get_returncode() == 7

    run(main(), timeout=30)


def test_subprocess_shell_and_signal_exit(loop, run):
    async def main():
        proc = await asyncio.create_subprocess_shell(
            "echo shell-$((6*7)); exit 3", stdout=asyncio.subprocess.PIPE)
        out, _ = await proc.communicate()
        assert out == b"shell-42\n" and proc.returncode == 3
        proc = await asyncio.create_subprocess_exec("sleep", "30")
        proc.terminate()
        assert await proc.wait() == -signal.SIGTERM

    run(main(), timeout=30)
    assert signal.getsignal(signal.SIGCHLD) in (signal.SIG_DFL, None)


def test_subprocess_protocol_callbacks(loop, run):
    class Proto(asyncio.SubprocessProtocol):
        def __init__(self):
            self.events = []
            self.done = loop.create_future()

        def connection_made(self, transport):
            self.events.append("made")

        def pipe_data_received(self, fd, data):
            self.events.append(("data", fd, data))

        def pipe_connection_lost(self, fd, exc):
            self.events.append(("pipe_lost", fd))

        def process_exited(self):
            self.events.append("exited")
            self.done.set_result(None)

        def connection_lost(self, exc):
            self.events.append("lost")

    async def main():
        tr, pr = await loop.subprocess_exec(Proto, "printf", "x", stdin=None)
        await pr.done
        await asyncio.sleep(0.05)
        assert pr.events[0] == "made"
        assert ("data", 1, b"x") in pr.events
        assert "exited" in pr.events
        assert tr.get_returncode() == 0
        tr.close()
        await asyncio.sleep(0.01)
        assert pr.events.count("lost") == 1

    run(main(), timeout=30)


def _pidfds() -> set[int]:
    """This process's descriptors that are pidfds (readlink of /proc/self/fd/N)."""
    found = set()
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}") == "anon_inode:[pidfd]":
                found.add(int(name))
        except OSError:  # the descriptor listdir itself used, gone by now
            pass
    return found


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)
def test_subprocess_exit_is_watched_through_a_pidfd(loop, run):
    """corenet notices a child's exit through a pidfd in epoll: while the child runs there is
    one more pidfd, no watcher thread and no SIGCHLD handler; once it is reaped the pidfd is
    closed (stock asyncio 3.11 uses a thread per child instead)."""

    async def main():
        pidfds_before = _pidfds()
        threads_before = threading.active_count()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "import time; time.sleep(0.5)")
        assert proc.returncode is None, "the child exited before the checks ran"
        assert len(_pidfds() - pidfds_before) == 1
        assert threading.active_count() == threads_before
        assert signal.getsignal(signal.SIGCHLD) == signal.SIG_DFL
        assert await proc.wait() == 0
        assert _pidfds() == pidfds_before

    run(main(), timeout=30)
