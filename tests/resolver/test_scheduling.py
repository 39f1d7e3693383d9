"""The loop's thread asks the kernel for a short time slice; what works beside it (a reload's
build thread, the config reader process) asks for the default again
(``resolver.daemon.scheduling``)."""
from __future__ import annotations

import asyncio
import os
import threading

import pytest

from daemon_proc import Daemon
from resolver.daemon import reloads, scheduling
from resolver.daemon.config_reader import ConfigReader

# Custom slices for normal threads came with EEVDF in Linux 6.12; older kernels ignore them.
_release = tuple(int(x) for x in os.uname().release.split(".")[:2])
pytestmark = pytest.mark.skipif(_release < (6, 12),
                                reason=f"Linux {os.uname().release} has no per-thread slices")


def _in_thread(fn):
    """``fn()``'s result, run in a thread of its own (its slice and nice value are its own:
    the test's thread keeps its own)."""
    out = []
    t = threading.Thread(target=lambda: out.append(fn()))
    t.start()
    t.join(10)
    assert not t.is_alive()
    return out[0]


def _default() -> float:
    """The slice of a thread that never asked for one (the kernel's base slice)."""
    return _in_thread(scheduling.slice_of)


def _kernel_slice(tid: int) -> int:
    """se.slice (ns) as the kernel's scheduler debug file shows it."""
    with open(f"/proc/{os.getpid()}/task/{tid}/sched") as f:
        return next(int(line.split(":")[1]) for line in f if line.startswith("se.slice"))


def test_a_thread_s_slice_is_set_and_the_default_comes_back():
    def work():
        tid = threading.get_native_id()
        default = scheduling.slice_of(), _kernel_slice(tid)
        assert scheduling.ask_for_slice(scheduling.LOOP_SLICE)
        short = scheduling.slice_of(), _kernel_slice(tid)
        assert scheduling.ask_for_slice(scheduling.DEFAULT_SLICE)
        return default, short, (scheduling.slice_of(), _kernel_slice(tid))

    default, short, back = _in_thread(work)
    assert short == (scheduling.LOOP_SLICE, 100_000)
    assert default[1] > 100_000 and back == default == (default[1] / 1e9, default[1])


def test_asking_for_a_slice_keeps_the_nice_value():
    def work():
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 7)    # this thread only
        assert scheduling.ask_for_slice(scheduling.LOOP_SLICE)
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), scheduling.slice_of()

    assert _in_thread(work) == (7, scheduling.LOOP_SLICE)


def test_a_build_thread_started_by_the_loop_asks_for_the_default(run, monkeypatch):
    monkeypatch.setattr(reloads, "_idle", [])          # a new build thread, not a kept one

    async def main():
        assert scheduling.ask_for_slice(scheduling.LOOP_SLICE)
        try:
            return await reloads.off_loop(scheduling.slice_of)
        finally:
            scheduling.ask_for_slice(scheduling.DEFAULT_SLICE)

    assert _in_thread(lambda: run(main())) == _default() > scheduling.LOOP_SLICE


def test_the_loop_s_executor_threads_ask_for_the_default(run):
    """Without the daemon's executor, a thread the loop starts keeps the loop's slice."""
    async def main():
        loop = asyncio.get_running_loop()
        assert scheduling.ask_for_slice(scheduling.LOOP_SLICE)
        try:
            inherited = await loop.run_in_executor(None, scheduling.slice_of)
            loop.set_default_executor(scheduling.executor())
            own = await loop.run_in_executor(None, scheduling.slice_of)
            many = await asyncio.gather(*(loop.run_in_executor(None, scheduling.slice_of)
                                          for _ in range(8)))
            return inherited, own, set(many)
        finally:
            scheduling.ask_for_slice(scheduling.DEFAULT_SLICE)

    inherited, own, many = _in_thread(lambda: run(main()))
    assert inherited == scheduling.LOOP_SLICE
    assert own == _default() > scheduling.LOOP_SLICE
    assert many == {own}


def test_the_config_reader_started_by_the_loop_asks_for_the_default(tmp_path):
    conf = tmp_path / "resolver.toml"
    conf.write_text('listen = ["127.0.0.1:5353"]\n')
    reader = ConfigReader()

    def start():
        assert scheduling.ask_for_slice(scheduling.LOOP_SLICE)
        reader.read(str(conf), {})
        return reader.proc.pid

    try:
        pid = _in_thread(start)
        assert scheduling.slice_of(pid) == _default() > scheduling.LOOP_SLICE
    finally:
        reader.close()


def test_the_daemon_s_loop_runs_with_the_short_slice(tmp_path, lab):
    d = Daemon(tmp_path, lab).start()
    try:
        assert d.ask("www.example.com").answer
        assert scheduling.slice_of(d.pid) == scheduling.LOOP_SLICE      # its main thread
    finally:
        d.stop()
