"""Signals, executors and name resolution."""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import pytest


def test_signal_handler_runs_in_loop_and_can_be_removed(loop):
    got = []

    def handler(tag):
        got.append((tag, threading.get_ident()))
        loop.stop()

    loop.add_signal_handler(signal.SIGUSR1, handler, "usr1")
    try:
        loop.call_soon(os.kill, os.getpid(), signal.SIGUSR1)
        guard = loop.call_later(5, loop.stop)
        loop.run_forever()
        guard.cancel()
        assert got == [("usr1", threading.get_ident())]
    finally:
        assert loop.remove_signal_handler(signal.SIGUSR1) is True
    assert loop.remove_signal_handler(signal.SIGUSR1) is False
    assert signal.getsignal(signal.SIGUSR1) == signal.SIG_DFL


def test_signal_handler_errors(loop):
    async def coro():
        pass

    with pytest.raises(TypeError):
        loop.add_signal_handler(signal.SIGUSR1, coro)
    with pytest.raises(ValueError):
        loop.add_signal_handler(10_000, print)
    with pytest.raises(TypeError):
        loop.add_signal_handler("x", print)
    with pytest.raises(RuntimeError):
        loop.add_signal_handler(signal.SIGKILL, print)


RUNNER_CHILD = textwrap.dedent("""
    import asyncio, os, signal, sys
    sys.path.insert(0, {root!r})
    # A parent started in the background by a shell without job control hands SIGINT down
    # ignored, and Python then installs no KeyboardInterrupt handler: restore it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    kind = {kind!r}
    if kind == "asyncio":
        factory = asyncio.SelectorEventLoop
    else:
        import corenet
        factory = lambda: corenet.new_event_loop(trigger=kind.split("-")[1])

    async def main():
        print("ready", flush=True)
        await asyncio.sleep(30)

    try:
        with asyncio.Runner(loop_factory=factory) as r:
            r.run(main())
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(0)
    sys.exit(3)
""")


def test_ctrl_c_stops_run_with_keyboard_interrupt(loop_kind, tmp_path):
    from looptools import make_loop
    make_loop(loop_kind).close()  # skips if corenet is not built
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = tmp_path / "child.py"
    script.write_text(RUNNER_CHILD.format(root=root, kind=loop_kind))
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0
    assert "interrupted" in out


def test_run_in_executor_and_default_executor(loop, run):
    import concurrent.futures

    async def main():
        tid = await loop.run_in_executor(None, threading.get_ident)
        assert tid != threading.get_ident()
        ex = concurrent.futures.ThreadPoolExecutor(1)
        try:
            assert await loop.run_in_executor(ex, sum, [1, 2, 3]) == 6
        finally:
            ex.shutdown()
        with pytest.raises(ZeroDivisionError):
            await loop.run_in_executor(None, lambda: 1 / 0)

    run(main())
    with pytest.raises(TypeError):
        loop.set_default_executor(object())
    loop.run_until_complete(loop.shutdown_default_executor())
    with pytest.raises(RuntimeError):
        loop.run_in_executor(None, print)


def test_getaddrinfo_and_getnameinfo(loop, run):
    async def main():
        infos = await loop.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        assert infos[0][4] == ("127.0.0.1", 80)
        assert infos == socket.getaddrinfo("127.0.0.1", 80, type=socket.SOCK_STREAM)
        host, port = await loop.getnameinfo(("127.0.0.1", 80), socket.NI_NUMERICHOST | socket.NI_NUMERICSERV)
        return host, port

    assert run(main()) == ("127.0.0.1", "80")
