"""How the daemon's threads share a CPU with each other: the loop asks the kernel for a short
time slice, what works beside it (the reload's build thread, the config reader) for the
kernel's default one.

On Linux since 6.12 (the EEVDF scheduler) a thread may ask for its own slice, between 0.1
and 100 ms (``sched_setattr``, the ``sched_runtime`` of a normal-policy thread; no privilege
needed). A thread that wakes with a shorter slice than the one running on its core takes
the core at once; with equal slices the running one keeps it for the rest of its slice,
and on a kernel without preemption that is noticed only at the next scheduler tick (4 ms at
HZ=250). So a query that wakes the loop while a reload's work runs on the loop's core waits
for the tick unless the loop's slice is the shorter one: measured on the reload benchmark
(everything pinned to one core, a reload a second), the stream's p99 goes from 0.23-0.34
to 0.15-0.22 ms with the loop at 0.1 ms, that of the queries sent during a reload from
1.0-2.1 to 0.85-1.02 ms (BENCHMARKS.md).

The loop's thread sets :data:`LOOP_SLICE` when it starts; threads and processes it starts
inherit it, so a build thread, the config reader and the threads of the loop's default
executor (:func:`executor`) ask for the default again when they start.
Older kernels, other architectures or a sandbox that refuses the call leave every thread at
the default: nothing else changes.
"""
from __future__ import annotations

import ctypes
import logging
import os
import platform
import struct
# Imported here, not where first used: concurrent.futures loads its executors lazily, and a
# worker started again after the daemon dropped root may no longer read the interpreter's
# library (a home directory closed to its user).
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger("resolver.daemon.scheduling")

#: The loop thread's time slice (seconds): the kernel's shortest.
LOOP_SLICE = 0.0001
#: The slice a thread asks for to have the kernel's default again.
DEFAULT_SLICE = 0.0

# sched_setattr(2) and sched_getattr(2) on this architecture (None: not known here);
# struct sched_attr's first version (48 bytes, every kernel since 3.14): size, policy,
# flags, nice, priority, runtime, deadline, period. The policies a slice applies to: SCHED_OTHER, SCHED_BATCH, SCHED_IDLE.
_FAIR = (0, 3, 5)
_CALLS = {"x86_64": (314, 315), "aarch64": (274, 275)}.get(platform.machine())
_ATTR = struct.Struct("IIQiIQQQ")

_libc = ctypes.CDLL(None, use_errno=True)


def _attr(tid: int) -> tuple | None:
    if _CALLS is None:
        return None
    buf = ctypes.create_string_buffer(_ATTR.size)
    if _libc.syscall(_CALLS[1], tid, buf, _ATTR.size, 0) != 0:
        return None
    return _ATTR.unpack(buf.raw)


def slice_of(tid: int = 0) -> float | None:
    """The slice (seconds) thread ``tid`` (0: the caller) runs with, the one it asked for
    or the kernel's default; None where it cannot be read."""
    attr = _attr(tid)
    return None if attr is None else attr[5] / 1e9


def ask_for_slice(seconds: float, tid: int = 0) -> bool:
    """Asks the kernel to give thread ``tid`` (0: the caller) time slices of ``seconds``
    (0.0: the default again), keeping its policy and nice value; False where the kernel or
    the sandbox refuses, or the thread runs under a real-time policy (logged at debug level:
    nothing else changes)."""
    attr = _attr(tid)
    if attr is None or attr[1] not in _FAIR:
        log.debug("no time slice to set on thread %d (attributes %s)", tid, attr)
        return False
    _, policy, flags, nice, priority, _, deadline, period = attr
    new = ctypes.create_string_buffer(_ATTR.pack(_ATTR.size, policy, flags, nice, priority,
                                                 int(seconds * 1e9), deadline, period))
    if _libc.syscall(_CALLS[0], tid, new, 0) != 0:
        log.debug("the kernel refused a time slice of %g s: %s", seconds,
                  os.strerror(ctypes.get_errno()))
        return False
    return True


def executor() -> ThreadPoolExecutor:
    """The loop's default executor (asyncio's, ``run_in_executor(None, ...)``), whose threads
    ask for the default slice as they start rather than keep the loop's: work handed to them
    (a file removed, a name looked up) must not take the core from the loop as the loop
    takes it from the rest."""
    return ThreadPoolExecutor(
        thread_name_prefix="asyncio", initializer=ask_for_slice, initargs=(DEFAULT_SLICE,))
