"""A reload reads the config file in the reader's process, builds what it needs (zones, RPZ
zone files, TLS pair) in a thread and swaps it in on the loop; reloads asked at once run one
at a time and the last one wins (``resolver.daemon.reloads``), in the test's own process on
every loop kind."""
from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import replace
import threading

import pytest

from ports import free_port
from resolver.daemon import config as config_mod
from resolver.daemon import reloads
from resolver.daemon import server as server_mod
from resolver.daemon.config import build as build_config
from resolver.daemon.config_reader import ConfigReader
from resolver.daemon.server import Server
from resolver.daemon.worker import Worker

RPZ = """$TTL 300
@ SOA ns.policy.rpz. admin.policy.rpz. 1 3600 600 86400 300
@ NS ns.policy.rpz.
blocked.example.com CNAME .
"""


def _write(path, rpz, udp_size: int) -> None:
    path.write_text(f'max-udp-size = {udp_size}\n'
                    f'[[rpz]]\nname = "policy.rpz."\nzonefile = "{rpz}"\n')


async def _worker(lab, tmp_path, udp_size: int = 1232) -> Worker:
    import resolver

    (tmp_path / "policy.rpz").write_text(RPZ)
    conf = tmp_path / "resolver.toml"
    _write(conf, tmp_path / "policy.rpz", udp_size)
    overrides = {"listen": [f"127.0.0.1:{free_port()}"], "root_hints": None,
                 "upstream_port": lab.port, "do_not_query_localhost": False}
    cfg = build_config(str(conf), overrides)
    r = resolver.Resolver(lab.root_hints, port=lab.port, cache_size=cfg.cache_size,
                          do_not_query_localhost=False)
    w = Worker(cfg, overrides, None, None)
    w.server = Server(cfg, resolver=r)
    await w.server.start()
    return w


def test_the_build_runs_off_the_loop_and_the_swap_on_it(run, lab, tmp_path, monkeypatch,
                                                         loop_kind):
    seen: dict[str, object] = {}
    real_build, real_read = config_mod.build, ConfigReader.read

    def build(*a, **kw):
        seen["build here"] = True
        return real_build(*a, **kw)

    def read(reader, *a, **kw):
        seen["read"] = threading.get_ident()
        cfg = real_read(reader, *a, **kw)
        seen["reader"] = reader.proc.pid
        return cfg

    def limits(*a, **kw):
        seen["limits"] = threading.get_ident()
        return real_limits(*a, **kw)

    real_limits = server_mod.engine_limits
    monkeypatch.setattr(config_mod, "build", build)
    monkeypatch.setattr(ConfigReader, "read", read)
    monkeypatch.setattr(server_mod, "engine_limits", limits)

    async def go():
        w = await _worker(lab, tmp_path)
        s = w.server
        real_stage, real_apply = s.stage, s.apply

        def stage(cfg):
            seen["stage"] = threading.get_ident()
            seen["switch"] = sys.getswitchinterval()
            return real_stage(cfg)

        def apply(cfg, staged=None):
            seen["apply"] = threading.get_ident()
            seen["staged"] = staged is not None and staged.cfg is cfg
            return real_apply(cfg, staged)

        s.stage, s.apply = stage, apply
        try:
            before = sys.getswitchinterval()
            assert await w.reload() == {"ok": True, "restart_needed": []}
            assert await w.reload() == {"ok": True, "restart_needed": []}
            assert sys.getswitchinterval() == before
            reader = w.reader.proc
            assert reader.poll() is None and reader.pid == seen["reader"]   # kept
            return threading.get_ident(), before, reader
        finally:
            await s.stop(1.0)
            w.reader.close()

    loop_thread, before, reader = run(go(), timeout=30)
    assert "build here" not in seen                 # the file is read in the reader process
    assert seen["reader"] != os.getpid() and reader.returncode == 0     # ended when closed
    assert seen["read"] != loop_thread and seen["stage"] != loop_thread
    assert seen["limits"] != loop_thread        # worked out with the build, not at the swap
    assert seen["apply"] == loop_thread and seen["staged"]
    assert seen["switch"] == pytest.approx(min(before, reloads.SWITCH_INTERVAL), abs=1e-6)


def test_build_threads_are_kept_for_the_next_build(run):
    """Starting a thread holds the loop until the thread has run: a build is handed to a
    thread kept waiting from the build before, also after a build that raised; two builds at
    once run in two threads."""
    def ident():
        return threading.get_ident()

    def fail():
        raise ValueError("bad")

    async def go():
        first = await reloads.off_loop(ident)
        with pytest.raises(ValueError, match="bad"):
            await reloads.off_loop(fail)
        again = await reloads.off_loop(ident)
        gate, running = threading.Event(), threading.Event()

        def wait():
            running.set()
            assert gate.wait(10)
            return threading.get_ident()

        held = asyncio.ensure_future(reloads.off_loop(wait))
        for _ in range(1000):
            if running.is_set():
                break
            await asyncio.sleep(0.01)
        other = await reloads.off_loop(ident)
        gate.set()
        return threading.get_ident(), first, again, await held, other

    loop_thread, first, again, held, other = run(go(), timeout=30)
    assert first == again != loop_thread
    assert held != other and loop_thread not in (held, other)
    names = {t.ident: t.name for t in threading.enumerate()}
    assert names[first] == "corenet-reload" and names[held] == names[other] == "corenet-reload"


# Forking beside a live thread is what the test is about (Python 3.12 and later warn of it).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_worker_builds_without_its_parent_s_kept_threads(run):
    """The supervisor reloads with a build thread of its own, then forks a worker in place of
    one that died: the worker's builds run (its parent's kept thread does not exist there),
    and a fork in the middle of a build leaves the child with the collector on and Python's
    switch interval."""
    import gc

    async def build_then_fork():
        await reloads.off_loop(threading.get_ident)      # a build thread kept here
        gate = threading.Event()
        held = asyncio.ensure_future(reloads.off_loop(lambda: gate.wait(10)))
        await asyncio.sleep(0.05)                        # a build under way at the fork
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                ok = gc.isenabled() and sys.getswitchinterval() == before
                child = asyncio.new_event_loop()
                got = child.run_until_complete(asyncio.wait_for(
                    reloads.off_loop(lambda: 42), 10))
                code = 0 if ok and got == 42 else 2
            finally:
                os._exit(code)
        gate.set()
        await held
        return os.waitpid(pid, 0)[1]

    before = sys.getswitchinterval()
    status = run(build_then_fork(), timeout=30)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_the_build_thread_sets_off_no_collection(run):
    """The build runs in a thread of its own, with the garbage collector off until the swap
    (a collection would hold the GIL for as long as it takes), on again afterwards."""
    import gc

    seen = {}

    def build():
        seen["thread"] = threading.get_ident()
        seen["gc"] = gc.isenabled()
        return 42

    async def go():
        assert await reloads.off_loop(build) == 42
        with pytest.raises(ZeroDivisionError):
            await reloads.off_loop(lambda: 1 / 0)
        return threading.get_ident()

    assert gc.isenabled()
    assert run(go(), timeout=10) != seen["thread"]
    assert seen["gc"] is False
    assert gc.isenabled()


def test_breathe_lets_a_thread_waiting_for_the_gil_run():
    """A build that calls breathe between its steps lets the loop's thread, waiting for the
    GIL, run there; a build that never lets the GIL go would keep it for the whole switch
    interval (made 30 s here, so only breathe can hand it over within the 10 s bound)."""
    import time

    ran = []
    started = threading.Event()
    stop = threading.Event()

    def other():
        started.set()
        while not stop.is_set():                # runs on until the test is over: a count
            ran.append(1)                       # it could finish before `before` is read
            time.sleep(0.001)                   # lets the GIL go while it waits

    saved = sys.getswitchinterval()
    sys.setswitchinterval(30)
    t = threading.Thread(target=other, daemon=True)
    try:
        t.start()
        assert started.wait(5)
        before = len(ran)
        deadline = time.monotonic() + 10
        while len(ran) == before and time.monotonic() < deadline:
            reloads.breathe()
            sum(range(1000))                    # a step of work, the GIL held
        assert len(ran) > before
    finally:
        stop.set()
        sys.setswitchinterval(saved)
        t.join(10)


def test_retire_lets_go_a_slice_at_a_time_once_nothing_else_holds_it(run, monkeypatch):
    """What a swap let go of is freed a slice of its tables per turn of the loop, and only
    once nobody else holds it."""
    import weakref

    class Big:
        pass

    monkeypatch.setattr(reloads, "RETIRE_SLICE", 10)
    monkeypatch.setattr(reloads, "RETIRE_WAIT", 0.05)
    watched, freed_at, ticks = [], [], [0]

    class Rules(dict):
        def popitem(self):
            freed_at.append(ticks[0])       # the loop's turn each entry goes in
            return super().popitem()

    async def go():
        loop = asyncio.get_running_loop()

        def tick():                         # counts the loop's turns
            ticks[0] += 1
            if len(freed_at) < 35:
                loop.call_soon(tick)

        big = Big()
        big.rules = Rules((i, Big()) for i in range(35))
        watched.extend(weakref.ref(v) for v in big.rules.values())
        holder = [big]                      # a miss still reading it
        reloads.retire(loop, big, lambda b: [b.rules])
        rules = big.rules
        del big
        await asyncio.sleep(0.2)
        assert len(rules) == 35             # held elsewhere: untouched
        holder.clear()
        tick()
        for _ in range(100):
            await asyncio.sleep(0.05)
            if not rules:
                break
        return rules

    assert not run(go(), timeout=10)
    per_turn = {t: freed_at.count(t) for t in freed_at}
    assert len(freed_at) == 35 and max(per_turn.values()) == 10 and len(per_turn) >= 4
    assert all(w() is None for w in watched)


def test_reloads_asked_at_once_run_one_at_a_time_and_the_last_wins(run, lab, tmp_path,
                                                                  monkeypatch):
    release = threading.Event()
    state = {"running": 0, "most": 0, "builds": 0}
    lock = threading.Lock()
    real_read = ConfigReader.read

    def read(*a, **kw):
        with lock:
            state["running"] += 1
            state["most"] = max(state["most"], state["running"])
            state["builds"] += 1
            first = state["builds"] == 1
        try:
            if first:
                assert release.wait(10), "never released"
            return real_read(*a, **kw)
        finally:
            with lock:
                state["running"] -= 1

    monkeypatch.setattr(ConfigReader, "read", read)

    async def go():
        w = await _worker(lab, tmp_path, udp_size=1232)
        conf = tmp_path / "resolver.toml"
        try:
            first = asyncio.ensure_future(w.reload())
            while state["builds"] == 0:
                await asyncio.sleep(0.01)
            _write(conf, tmp_path / "policy.rpz", 1400)
            second = asyncio.ensure_future(w.reload())
            _write(conf, tmp_path / "policy.rpz", 1450)
            w.hangup()                              # SIGHUP's way in, while the first runs
            third = asyncio.ensure_future(w.reload())
            await asyncio.sleep(0.05)
            assert state["builds"] == 1             # the others wait for the first
            release.set()
            answers = await asyncio.gather(first, second, third)
            await asyncio.gather(*w.tasks)
            return answers, w.server.front.max_udp_size, w.base.max_udp_size
        finally:
            await w.server.stop(1.0)
            w.reader.close()

    answers, udp_size, base = run(go(), timeout=30)
    assert all(a["ok"] for a in answers)
    assert state["most"] == 1                       # never two builds at once
    assert state["builds"] == 2                     # the first, then one for all the others
    assert udp_size == base == 1450                 # the file as last written


def test_a_failed_build_keeps_the_running_config(run, lab, tmp_path):
    async def go():
        w = await _worker(lab, tmp_path, udp_size=1300)
        try:
            (tmp_path / "resolver.toml").write_text("max-udp-size = 'lots'\n")
            answer = await w.reload()
            return answer, w.server.front.max_udp_size, w.server.rpz.stats()
        finally:
            await w.server.stop(1.0)
            w.reader.close()

    answer, udp_size, rpz = run(go(), timeout=30)
    assert not answer["ok"] and "max-udp-size" in answer["error"]
    assert udp_size == 1300 and rpz["policy.rpz."]["triggers"] >= 1


def test_one_at_a_time_shares_the_queued_run_and_passes_its_error(run):
    async def go():
        runs, gate = [], asyncio.Event()

        async def job():
            runs.append(len(runs))
            if len(runs) == 1:
                await gate.wait()
                return "first"
            raise ValueError("second")

        once = reloads.OneAtATime(job)
        a = asyncio.ensure_future(once())
        await asyncio.sleep(0)
        b, c = asyncio.ensure_future(once()), asyncio.ensure_future(once())
        await asyncio.sleep(0)
        gate.set()
        return runs, await asyncio.gather(a, b, c, return_exceptions=True)

    runs, (a, b, c) = run(go(), timeout=10)
    assert runs == [0, 1] and a == "first"
    assert isinstance(b, ValueError) and b is c


def test_zones_are_made_once_for_a_config_and_again_when_they_change(tmp_path):
    conf = tmp_path / "resolver.toml"
    zone = '[[local-zone]]\nname = "lan."\ntype = "static"\nlocal-data = ["a.lan. A {}"]\n'
    conf.write_text(zone.format("10.0.0.1"))
    checked = build_config(str(conf))                  # build checks the zones: made here
    zones = config_mod.make_zones(checked)
    assert config_mod.make_zones(build_config(str(conf))) is zones
    conf.write_text(zone.format("10.0.0.2"))
    changed = config_mod.make_zones(build_config(str(conf)))
    assert changed is not zones
    assert changed.local_zones.lookup(b"\x01a\x03lan\x00", 1, None) != \
        zones.local_zones.lookup(b"\x01a\x03lan\x00", 1, None)


def test_what_a_stage_worked_out_is_worked_out_again_when_the_config_ran_on(run, lab, tmp_path):
    """A staged config is measured against the config running when it was staged: when
    another was applied meanwhile (a set_option during the build), the swap does not trust
    it (which settings need a restart, the engine's limits)."""
    async def go():
        w = await _worker(lab, tmp_path)
        s = w.server
        try:
            first = s.cfg
            wants = replace(first, cache_size=first.cache_size * 2, prefetch=not first.prefetch)
            staged = s.stage(wants)
            assert staged.need_restart == ("cache_size",)
            assert staged.limits.prefetch_fraction != s.resolver.limits.prefetch_fraction
            s.apply(replace(first, cache_size=wants.cache_size))      # meanwhile
            assert s.apply(wants, staged) == []       # cache_size is what now runs
            assert s.resolver.limits.prefetch_fraction == staged.limits.prefetch_fraction
            fresh = replace(wants, cache_size=first.cache_size)
            assert s.apply(fresh, s.stage(fresh)) == ["cache_size"]
        finally:
            await s.stop(1.0)
            w.reader.close()

    run(go(), timeout=30)


def test_after_swap_says_one_thing_a_turn_in_order_and_is_waited_for(run):
    """What a swap leaves for later runs after it, one call per turn of the loop (a callback
    queued meanwhile, as a query's would be, runs between two), in order; swap_said
    returns once all ran; without a running loop the call is made at once."""
    said: list[str] = []

    def say(what: str):
        def call():
            said.append(what)
            asyncio.get_running_loop().call_soon(said.append, f"after {what}")
        return call

    async def go():
        for what in ("a", "b", "c"):
            reloads.after_swap(say(what))
        assert said == []                       # nothing during the swap itself
        await reloads.swap_said()
        done = list(said)
        await asyncio.sleep(0)
        return done

    done = run(go(), timeout=10)
    assert done[:5] == ["a", "after a", "b", "after b", "c"]
    assert said == ["a", "after a", "b", "after b", "c", "after c"]
    now: list[int] = []
    reloads.after_swap(lambda: now.append(1))
    assert now == [1]
