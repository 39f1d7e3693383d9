"""The config file read for a reload in a process of its own.

Reading a config is Python from end to end (the TOML parser, every value checked, the zones
made to check them: tens of milliseconds for a config with thousands of local-data lines). In
a thread of the daemon that Python would share the one GIL with the answers, and each answer
would wait for it: a process of its own shares only the CPU. While it works it offers that
back every :data:`YIELD_EVERY` seconds (a timer's signal, then ``sched_yield``): measured on
Linux 6.18 at HZ=250 with the loop at the kernel's default time slice, a query that woke the
loop on the reader's core waited up to a scheduler tick (4 ms) for the reader to be switched
out, at nice 19 and at SCHED_IDLE alike; an interrupt or a system call of the reader's is
when the switch happens. Where the kernel gives threads slices of their own, the loop's
shorter one makes its wake-up the switch (``scheduling``); the timer bounds the wait where
it does not. The answer is unpickled a few KiB at a time (:class:`_Chunks`). The process is
started at the first reload (so it runs as the user the daemon has become), kept for the next
ones, and ends when the daemon closes its end of the pipe (or dies).

:class:`ConfigReader` speaks to it over a pipe, one request at a time, each way a 4-byte length
and a pickle: the request ``(config_file, overrides)``, the answer ``("ok", Config)`` or
``("error", message)``, raised here as ConfigError. Its :meth:`ConfigReader.read` blocks,
and is called in the reload's thread (``reloads.off_loop``). When the process cannot be
started or dies, the config is read in the calling thread as before, and the next reload
starts a new process.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from resolver.daemon import config as config_mod
from resolver.daemon import reloads, scheduling
from resolver.daemon.config import Config, ConfigError

log = logging.getLogger("resolver.daemon.process")

#: Seconds a read may take before the process is stopped and the reload fails: a config that
#: names a FIFO or a file on a hung mount would otherwise hold every later reload.
READ_TIMEOUT = 60.0
#: The reader's CPU priority: lower than the answering loop's, the work that can wait.
NICE = 19
#: Seconds the reader works before it offers the CPU back (see above): the longest a query
#: waits for it on a core the two share, at the cost of a signal and a system call each time.
YIELD_EVERY = 0.0005
#: A request or an answer larger than this is refused (a config is far smaller).
MAX_MESSAGE = 256 << 20
#: Bytes of an answer unpickled between two hand-overs of the GIL (10-20 µs of work).
UNPICKLE_CHUNK = 8192
#: Pickles without frames: protocol 4 and later frame theirs in 64 KiB, and the unpickler
#: reads a whole frame at once, holding the GIL while it makes its objects (0.1-0.4 ms).
PROTOCOL = 3

_HEADER = struct.Struct("!I")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])


class ReaderGone(Exception):
    """The reading process ended or did not answer the request."""


class ConfigReader:
    """A config reader process, started when first asked. :meth:`read` is thread-safe (one
    read at a time) and blocks; :meth:`close` ends the process."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.lock = threading.Lock()
        self.closing = False            # closed during a read: that read fails

    def read(self, config_file: str, overrides: dict | None) -> Config:
        """``config.build(config_file, overrides)``, made in the reader process (or here,
        when it cannot be had). Raises what the build raises (ConfigError for a bad config)."""
        with self.lock:
            try:
                status, value = self._ask((config_file, overrides))
            except TimeoutError as e:
                self._stop()
                raise ConfigError(str(e)) from None
            except ReaderGone as e:
                self._stop()
                if self.closing:
                    self.closing = False
                    raise ConfigError("the config was not read: the daemon is stopping") \
                        from None
                log.warning("config reader process: %s; reading the config in the daemon", e)
                return config_mod.build(config_file, overrides)
        if status == "ok" and isinstance(value, Config):
            return value
        raise ConfigError(str(value))

    def close(self) -> None:
        """Ends the process: by EOF on its pipe, or at once when a read is waiting for it
        (the daemon stops without waiting for a read that hangs; that read then fails)."""
        if self.lock.acquire(blocking=False):
            try:
                self._stop()
            finally:
                self.lock.release()
            return
        proc = self.proc
        if proc is not None:
            self.closing = True
            proc.kill()

    def _ask(self, request) -> tuple[str, object]:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            proc = self.proc = self._start()
        try:
            _send(proc.stdin.fileno(), request)
            return _receive(proc.stdout.fileno(), time.monotonic() + READ_TIMEOUT)
        except TimeoutError:
            raise
        except Exception as e:              # a broken pipe, an EOF, an answer not unpickled
            raise ReaderGone(str(e) or type(e).__name__) from None

    def _start(self) -> subprocess.Popen:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "resolver.daemon.config_reader"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                start_new_session=True)     # Ctrl-C and SIGHUP are the daemon's, not its
        except (OSError, ValueError, subprocess.SubprocessError) as e:
            raise ReaderGone(f"cannot be started: {e}") from None
        # At its priority from the start: the interpreter's start and imports are half a
        # second of CPU, which at the daemon's priority held the loop's core for up to 8 ms.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, proc.pid,
                           min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICE))
        return proc

    def _stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()                   # the reader's EOF: it exits
            except OSError:
                pass
        try:
            proc.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _send(fd: int, obj) -> None:
    data = pickle.dumps(obj, protocol=PROTOCOL)
    view = memoryview(_HEADER.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view):]


def _receive(fd: int, deadline: float | None = None):
    (size,) = _HEADER.unpack(_read_exactly(fd, _HEADER.size, deadline))
    if size > MAX_MESSAGE:
        raise EOFError(f"a message of {size} bytes (at most {MAX_MESSAGE})")
    return pickle.load(_Chunks(_read_exactly(fd, size, deadline)))


class _Chunks(io.BytesIO):
    """A message's bytes handed to the unpickler :data:`UNPICKLE_CHUNK` at a time, and the
    GIL let go (``reloads.breathe``) before each: the C unpickler reads ahead by ``peek``
    and takes what it used with ``read``, so between two hand-overs it makes the objects of
    one chunk. A query that woke the loop meanwhile waits for that, not for the whole answer
    (the reload benchmark's config, 150 KiB, in 19 chunks: the first and the last, which
    look up the classes and finish the config, about 0.1 ms, the others 10-20 µs)."""

    def peek(self, size: int = 0) -> bytes:
        reloads.breathe()
        at = self.tell()
        return self.getbuffer()[at:at + min(max(size, 1), UNPICKLE_CHUNK)].tobytes()


def _read_exactly(fd: int, size: int, deadline: float | None) -> bytes:
    parts, left = [], size
    while left:
        if deadline is not None:
            wait = deadline - time.monotonic()
            if wait <= 0 or not select.select([fd], [], [], wait)[0]:
                raise TimeoutError(f"the config was not read within {READ_TIMEOUT:g} s")
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise EOFError("it ended")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def serve(stdin: int = 0, stdout: int = 1) -> int:
    """The reader process: a request at a time until the daemon closes the pipe."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        os.nice(NICE)
    except OSError:
        pass
    scheduling.ask_for_slice(scheduling.DEFAULT_SLICE)     # not the loop's, inherited
    while True:
        try:
            config_file, overrides = _receive(stdin)
        except EOFError:
            return 0
        with offering_the_cpu(YIELD_EVERY):
            try:
                answer = ("ok", config_mod.build(config_file, overrides))
            except ConfigError as e:
                answer = ("error", str(e))
            except Exception as e:              # the daemon says it and keeps its config
                answer = ("error", f"{type(e).__name__}: {e}")
            try:
                _send(stdout, answer)
            except BrokenPipeError:
                return 0


@contextlib.contextmanager
def offering_the_cpu(every: float):
    """Inside, the process calls ``sched_yield`` every ``every`` seconds (SIGALRM from an
    interval timer; system calls it interrupts are restarted); the timer and the handler
    before are put back on the way out. For the main thread of a process of its own."""
    previous = signal.signal(signal.SIGALRM, _offer_the_cpu)
    signal.siginterrupt(signal.SIGALRM, False)
    signal.setitimer(signal.ITIMER_REAL, every, every)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _offer_the_cpu(signum, frame) -> None:
    os.sched_yield()


if __name__ == "__main__":
    sys.exit(serve())
