"""The supervisor of several workers: a worker killed under a steady stream of queries is
started again with a log line saying how it ended, the others keep serving (same processes,
same caches) and the queries lost are counted; the workers die with a supervisor killed with
SIGKILL; a worker started again takes the config as last reloaded; the restart back-off
grows for a worker that keeps dying young."""
from __future__ import annotations

import os
import selectors
import signal
import socket
import time

import dns.message
import dns.rdatatype
import dns.exception
import pytest

from daemon_proc import Daemon, refused_as_nobody
from resolver.daemon.control import request
from resolver.daemon import supervisor


def workers_of(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except FileNotFoundError:
        return []


def wait_for(what, timeout: float = 10.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = what()
        if got:
            return got
        time.sleep(step)
    return what()


def answering(d: Daemon, n: int) -> dict | None:
    """The daemon's status once ``n`` workers answer the supervisor."""
    st = request(d.control, {"cmd": "status"})["status"]
    return st if st["workers_answering"] == n else None


def stream(port: int, qname: str, count: int, rate: float, actions: dict[int, callable],
           timeout: float = 1.5) -> dict:
    """Sends ``count`` queries for ``qname`` at ``rate`` a second, each from a new socket
    (so the kernel spreads them over the workers), waiting ``timeout`` for each answer;
    ``actions[i]`` runs just before query ``i`` is sent. Counts the answers with an
    address, the other answers and the queries never answered."""
    sel = selectors.DefaultSelector()
    out = {"answered": 0, "wrong": 0, "lost": 0}
    pending: dict[socket.socket, float] = {}
    start = time.monotonic()
    sent = 0
    try:
        while sent < count or pending:
            now = time.monotonic()
            if sent < count and now >= start + sent / rate:
                if sent in actions:
                    actions[sent]()
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.setblocking(False)
                s.connect(("127.0.0.1", port))
                s.send(dns.message.make_query(qname, "A").to_wire())
                sel.register(s, selectors.EVENT_READ)
                pending[s] = time.monotonic()
                sent += 1
            for key, _ in sel.select(timeout=0.002):
                s = key.fileobj
                try:
                    reply = dns.message.from_wire(s.recv(65535))
                except (OSError, dns.exception.DNSException):
                    reply = None         # ECONNREFUSED: nobody held the port
                ok = reply is not None and any(r.rdtype == dns.rdatatype.A
                                               for r in reply.answer)
                out["answered" if ok else "wrong"] += 1
                sel.unregister(s)
                s.close()
                del pending[s]
            now = time.monotonic()
            for s, when in list(pending.items()):
                if now - when > timeout:
                    out["lost"] += 1
                    sel.unregister(s)
                    s.close()
                    del pending[s]
            assert now - start < count / rate + 30, "the stream ran far past its time"
    finally:
        for s in pending:
            s.close()
        sel.close()
    out["sent"] = sent
    return out


def supervised(workdir, lab, n: int, *extra: str, **kw) -> tuple[Daemon, list[int]]:
    """The daemon with ``n`` workers, started, and its workers' pids."""
    d = Daemon(workdir, lab, "--workers", str(n), *extra, **kw)
    d.start(ready=f"ready: {n} workers")
    workers = workers_of(d.pid)
    assert len(workers) == n
    return d, workers


def test_a_killed_worker_is_started_again_while_the_others_serve(lab, tmp_path):
    d, first = supervised(tmp_path / "d", lab, 3)
    try:
        assert d.ask("www.example.com").answer            # in the cache of one worker at least
        victims = first[:2]
        killed = []

        def kill(pid):
            def go():
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            return go

        # 1,500 queries over five seconds; a worker killed at 1 s, another at 2.5 s
        got = stream(d.port, "www.example.com", 1500, 300.0,
                     {300: kill(victims[0]), 750: kill(victims[1])})
        print(f"\nworker kills under 300 qps: {got}")
        assert killed == victims
        assert got["sent"] == 1500 and got["wrong"] == 0
        # a killed worker loses what it held: at most a few queries each, never its share
        # of the stream while it is down
        assert got["lost"] <= 6, got
        now = wait_for(lambda: len(workers_of(d.pid)) == 3 and workers_of(d.pid))
        assert len(now) == 3 and first[2] in now and not set(victims) & set(now)
        log = d.log_text()
        for pid in victims:
            assert f"(pid {pid}) was killed by SIGKILL after" in log, log[-2000:]
        assert log.count("started again (pid") == 2
        # the supervisor answers for all three again, restarts counted
        st = wait_for(lambda: answering(d, 3))
        assert st and st["worker_restarts"] == 2, st
        assert d.alive()
        assert d.ask("www.example.com").answer
    finally:
        d.stop()


def test_the_workers_die_with_a_killed_supervisor(lab, tmp_path):
    d, workers = supervised(tmp_path / "d", lab, 2)
    try:
        os.kill(d.pid, signal.SIGKILL)
        d.proc.wait(timeout=5)
        gone = wait_for(lambda: not any(os.path.exists(f"/proc/{p}") and
                                        _state(p) != "Z" for p in workers))
        assert gone, [(p, _state(p)) for p in workers]
        # the port is free: nothing holds it without SO_REUSEPORT's group
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", d.port))
    finally:
        d.stop()


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


def low_port() -> int:
    """A port below 1024 free on 127.0.0.1 for UDP and TCP."""
    for port in range(1023, 600, -1):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port below 1024")


def capabilities(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("CapEff:")).split()[1], 16)


def test_a_worker_started_again_binds_a_low_port_as_the_daemon_s_user(lab, tmp_path):
    """Started as root with --user on a port below 1024: the supervisor bound every worker's
    sockets while root and keeps them, so a worker started again, as that user, serves on
    them; no process keeps a capability."""
    import pwd
    import shutil
    import tempfile

    if os.geteuid() != 0:
        with pytest.raises(RuntimeError, match="only root can switch"):
            Daemon(tmp_path / "d", lab, "--user", "nobody", "--workers", "2").start()
        return
    if refused_as_nobody(tmp_path / "refused", lab):
        return
    # a worker started again reads the root hints as nobody: a copy it may read
    shared = tempfile.mkdtemp(prefix="corenet-hints-")
    try:
        os.chmod(shared, 0o755)
        hints = shutil.copy(lab.root_hints_file, shared)
        os.chmod(hints, 0o644)
        d, workers = supervised(tmp_path / "d", lab, 2, "--user", "nobody", "--root-hints",
                                hints, port=low_port())
        try:
            assert capabilities(d.pid) == 0
            victim = workers[0]
            os.kill(victim, signal.SIGKILL)
            assert wait_for(lambda: answering(d, 2)), d.log_text()[-3000:]
            nobody = pwd.getpwnam("nobody").pw_uid
            now = workers_of(d.pid)
            assert len(now) == 2 and victim not in now
            for pid in now:
                with open(f"/proc/{pid}/status") as f:
                    uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
                assert set(map(int, uids)) == {nobody} and capabilities(pid) == 0
            assert "started again" in d.log_text()
            assert d.ask("www.example.com").answer
        finally:
            d.stop()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


#: the command line's modules: they run before the daemon starts, as whoever ran them
BEFORE_THE_DAEMON = {"cli.py", "reference.py"}


def late_imports_in(path) -> set[str]:
    """The modules ``path`` imports inside a function or method (Python or Cython source)."""
    import re

    found = set()
    for line in path.read_text().splitlines():
        m = re.match(r"\s+(?:from\s+(\S+)\s+import\s+(\S+)|import\s+(\S+))", line)
        if m and not line.lstrip().startswith("#"):
            found.add(m.group(3) or m.group(1))
    return found


def test_what_the_daemon_imports_late_from_the_standard_library_is_loaded_before_root_is_dropped():
    """A worker started again by a supervisor that already runs as the daemon's user, or a
    reload as that user, must not need to read the interpreter's library (the user may not
    be able to: under root's home, say). The standard library's modules the daemon's code
    imports inside functions are loaded by the daemon's own modules or drop_privileges'
    LATE_IMPORTS. (The package itself is checked at startup: process.unreadable_code.)"""
    import subprocess
    import sys
    from pathlib import Path

    from resolver.daemon import worker

    root = Path(worker.__file__).resolve().parents[2]
    files = [p for p in (root / "resolver" / "daemon").glob("*.py*")
             if p.name not in BEFORE_THE_DAEMON]
    files += list((root / "resolver" / "cache").glob("*.py*")) + \
        [root / "resolver" / "server_names.py", root / "resolver" / "functions.py"]
    late = {n for n in set().union(*map(late_imports_in, files))
            if n.split(".")[0] in sys.stdlib_module_names and n != "__future__"}
    assert {"difflib", "textwrap"} <= late                  # the scan sees them
    code = ("import importlib, sys\n"
            "from resolver.daemon import cli, supervisor, worker\n"
            "for name in worker.LATE_IMPORTS:\n"
            "    importlib.import_module(name)\n"
            f"print(sorted(n for n in {sorted(late)!r} if n not in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=root, env=dict(os.environ, PYTHONPATH=str(root)), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"imported late, not in LATE_IMPORTS: {out.stdout}"


def test_the_restart_delay_grows_while_a_worker_dies_young():
    slot = supervisor.Slot(0, "/nonexistent")
    delays = []
    for _ in range(12):
        slot.young_deaths += 1
        delays.append(slot.delay())
    assert delays[0] == supervisor.RESTART_DELAY
    assert delays == sorted(delays) and delays[1] == 2 * delays[0]
    assert delays[-1] == supervisor.RESTART_DELAY_MAX


def test_how_a_worker_ended_is_said_in_words():
    assert supervisor.ending(signal.SIGKILL) == "was killed by SIGKILL"
    assert supervisor.ending(3 << 8) == "exited with status 3"


def test_a_worker_started_again_takes_the_config_as_last_reloaded(lab, tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text('local-data = ["pin.test. A 192.0.2.1"]\n')
    d, workers = supervised(tmp_path / "d", lab, 2, "--config", str(conf))
    try:
        conf.write_text('local-data = ["pin.test. A 192.0.2.2"]\n')
        os.kill(d.pid, signal.SIGHUP)
        assert wait_for(lambda: "config reloaded in 2 workers" in d.log_text())
        os.kill(workers[0], signal.SIGKILL)
        assert wait_for(lambda: answering(d, 2) and workers[0] not in workers_of(d.pid))
        # from fresh source ports the kernel spreads the questions over both workers
        seen = {d.ask("pin.test").answer[0][0].address for _ in range(40)}
        assert seen == {"192.0.2.2"}
    finally:
        d.stop()


def test_a_worker_that_cannot_start_is_tried_later_and_later_then_retired(lab, tmp_path):
    import re
    import shutil

    hints = tmp_path / "root.hints"
    shutil.copy(lab.root_hints_file, hints)
    d, workers = supervised(tmp_path / "d", lab, 2, "--root-hints", str(hints))
    try:
        hints.unlink()                  # a worker started now cannot read its root hints
        os.kill(workers[0], signal.SIGKILL)
        retired = wait_for(lambda: "worker 0 died 8 times in a row within a minute of its "
                                   "start: not started again" in d.log_text(), timeout=40)
        log = d.log_text()
        assert retired, log[-3000:]
        delays = [float(x) for x in re.findall(r"worker 0: starting it again in ([\d.]+)s",
                                                log)]
        assert len(delays) == 7 and delays == sorted(delays) and delays[-1] == 64 * delays[0]
        assert log.count("worker 0 (pid") == 8 and "exited with status 1 after" in log
        # its sockets closed: every question reaches the worker left, none waits on them
        assert all(d.ask("www.example.com", timeout=2).answer for _ in range(30))
        st = request(d.control, {"cmd": "status"})["status"]
        assert st["workers_answering"] == 1 and d.alive()
        time.sleep(1)
        assert d.log_text().count("started again (pid") == 7       # no more attempts
    finally:
        d.stop()
