"""A test run ended by SIGTERM still tears its fixtures down (``procs.sigterm_as_interrupt``,
installed by the suite's conftest), so the servers they started are stopped, not orphaned."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parent

CHILD_TEST = '''
import subprocess, sys, time
import pytest

@pytest.fixture
def server():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    open({pidfile!r}, "w").write(str(proc.pid))
    yield proc
    proc.kill()
    proc.wait()

def test_waits(server):
    time.sleep(120)
'''


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # an orphan that already exited but is not reaped yet counts as gone
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def test_a_terminated_run_still_stops_what_its_fixtures_started(tmp_path):
    pidfile = tmp_path / "server.pid"
    (tmp_path / "test_child.py").write_text(CHILD_TEST.format(pidfile=str(pidfile)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(TESTS)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    run = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "conftest",
         "--rootdir", str(tmp_path), "-c", os.devnull, str(tmp_path / "test_child.py")],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    pid = None
    try:
        deadline = time.monotonic() + 60
        while pid is None and time.monotonic() < deadline and run.poll() is None:
            if pidfile.exists() and pidfile.read_text():
                pid = int(pidfile.read_text())
            else:
                time.sleep(0.05)
        assert pid is not None, run.communicate(timeout=30)[0].decode(errors="replace")
        time.sleep(0.5)                 # well inside the test's sleep
        run.send_signal(signal.SIGTERM)
        out = run.communicate(timeout=30)[0].decode(errors="replace")
        assert run.returncode != 0, out
        assert "KeyboardInterrupt" in out, out
        assert not _alive(pid), f"the fixture's server {pid} outlived the run:\n{out}"
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_server_whose_start_is_interrupted_is_stopped_and_one_that_starts_is_kept():
    """An interrupt (or the start's own timeout) while a helper waits for its server ends
    before the server is handed to a fixture or a ``finally``: stopped_unless_ready stops
    it there; a start that completes leaves it running."""
    import pytest

    from procs import stop, stopped_unless_ready
    given_up = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with pytest.raises(KeyboardInterrupt):
        with stopped_unless_ready(given_up):
            raise KeyboardInterrupt("stopped by signal 15")
    assert given_up.poll() is not None
    started = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        with stopped_unless_ready(started):
            pass
        assert started.poll() is None
    finally:
        stop(started)
