"""The cached-name probe of the flood benchmarks: one query at a time from its own address,
every ``gap`` seconds, each answer timed.

The probe shares its core with the flood it measures, so it runs at real-time priority
(SCHED_FIFO, when allowed) while it asks: what it times is the server and the network, not
its own wait for the flood to give up the CPU. Each answer's arrival is also read from the
kernel's receive timestamp (``SO_TIMESTAMPNS``), the figure ``at_socket_p50_ms`` /
``at_socket_p99_ms``: when the answer reached the probe's socket, whatever the probe's own
scheduling.
"""
from __future__ import annotations

import os
import socket
import struct
import threading
import time

import dns.message

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)      # Linux's value


def _pick(values: list, p: float):
    return round(values[min(len(values) - 1, int(p / 100 * len(values)))], 3) if values else None


def probe(port: int, seconds: float, *, gap: float, name: str, source: str = "127.0.3.1",
          stop: threading.Event | None = None) -> dict:
    """Asks ``name`` A every ``gap`` seconds for ``seconds`` (or until ``stop``): answer
    latencies in ms (p50, p99, max; and when each reached the socket), how many got no
    answer within a second, and whether the probe had real-time priority."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.settimeout(1.0)
    s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    q = dns.message.make_query(name, "A")
    lat, at_socket, lost = [], [], 0
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        realtime = True
    except (PermissionError, AttributeError):
        realtime = False
    end = time.monotonic() + seconds
    try:
        for i in range(int(seconds / gap) + 1):
            if time.monotonic() >= end or (stop is not None and stop.is_set()):
                break
            q.id = i & 0xFFFF
            wire, want = q.to_wire(), q.id.to_bytes(2, "big")
            sent_wall, t0 = time.time(), time.perf_counter()
            s.sendto(wire, ("127.0.0.1", port))
            try:
                while True:
                    data, ancillary, _, _ = s.recvmsg(4096, 64)
                    if data[:2] == want:
                        break
                lat.append((time.perf_counter() - t0) * 1000)
                for level, kind, value in ancillary:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", value[:16])
                        at_socket.append((sec + nsec * 1e-9 - sent_wall) * 1000)
            except socket.timeout:
                lost += 1
            time.sleep(gap)
    finally:
        if realtime:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        s.close()
    lat.sort()
    at_socket.sort()
    return {"probes": len(lat) + lost, "lost": lost, "p50_ms": _pick(lat, 50),
            "p99_ms": _pick(lat, 99), "max_ms": round(lat[-1], 3) if lat else None,
            "at_socket_p50_ms": _pick(at_socket, 50), "at_socket_p99_ms": _pick(at_socket, 99),
            "realtime": realtime}
