"""Stopping a test's child process, the one way every test area does it (import as ``from
procs import ...``; dnslab puts this folder on ``sys.path`` for benchmarks and
``python -m dnslab``): ask it to exit, wait a bounded time, SIGKILL it if it lingers, reap
it; a server started but not handed out yet when its start fails or is interrupted
(:func:`stopped_unless_ready`); and a terminated test run still stopping them
(:func:`sigterm_as_interrupt`)."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator


def stop(proc: subprocess.Popen, timeout: float = 5.0, *, group: bool = False) -> int:
    """SIGTERM ``proc`` by PID if it still runs, then :func:`reap` it. Returns the exit status."""
    proc.send_signal(signal.SIGTERM)    # a no-op once the process has been reaped
    return reap(proc, timeout, group=group)


def reap(proc: subprocess.Popen, timeout: float, *, group: bool = False) -> int:
    """Waits up to ``timeout`` seconds for ``proc`` (already asked to exit, by a signal or by
    closing its stdin) to exit; past that SIGKILLs it, or with ``group`` its whole process
    group (for a child started with ``start_new_session=True``), and waits for it. Returns
    the exit status."""
    try:
        return proc.wait(timeout=max(0.0, timeout))
    except subprocess.TimeoutExpired:
        if group:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            proc.kill()
        return proc.wait()


@contextlib.contextmanager
def stopped_unless_ready(proc: subprocess.Popen, *, group: bool = False) -> Iterator[None]:
    """Around the wait for a server just started: if the wait ends in any exception (its
    own timeout, or an interrupt, which a caller's ``finally`` or a fixture's teardown never
    sees because the server was not handed out yet), ``proc`` is stopped before it goes on."""
    try:
        yield
    except BaseException:
        stop(proc, group=group)
        raise


def sigterm_as_interrupt() -> None:
    """Makes a SIGTERM to this process (a ``timeout`` wrapper, a cancelled CI job) end the
    test run as Ctrl-C does. pytest then tears the fixtures down, and they stop the servers
    they started; under Python's default a SIGTERM ends the process at once and leaves those
    servers running. Call it from the main thread."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"stopped by signal {signum}")
    signal.signal(signal.SIGTERM, interrupt)
