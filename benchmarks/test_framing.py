"""Framer decoding throughput: corenet's FrameProtocol next to a plain struct-based framer.

A separate sender process (the same for every case) writes 4-byte big-endian length-prefixed
frames of 64 bytes or 64 KiB over TCP loopback as fast as it can; the measured process
decodes them on stock asyncio, uvloop and (once built) corenet's loop. Each frame costs the
receiving code one counter increment, the same for both framers, so the figure is the
framer's own cost; a round ends when the sender closes and must have counted every frame.
The sender is pinned to the last core and the receiver, while a round runs, to the first, so
the two never share one. Reported per case: frames/s and MB/s (best round), the receiver's
CPU time per frame (lowest round) and the share of its core it used; where that share is
well under 1 the sender is the limit and CPU per frame is the figure to compare. Large
frames get 512 MiB per round: at 5 GB/s 64 MiB would be over in about 13 ms.

CORENET_BENCH_SHORT=1 sends a few MiB per round, enough to check that it still runs.
"""
from __future__ import annotations

import asyncio
import importlib.util
import os
import socket
import struct
import subprocess
import sys
import time

import pytest

from corenet.framing import FrameProtocol

SHORT = os.environ.get("CORENET_BENCH_SHORT") == "1"
MIB = 1024 * 1024
ROUNDS = 1 if SHORT else 5
SOCKET_BUFFER = 1024 * 1024  # fixed: kernel autotuning makes large-frame runs swing
FRAME_SIZES = [64, 64 * 1024]
TOTAL_BYTES = {64: 4 * MIB if SHORT else 64 * MIB, 64 * 1024: 4 * MIB if SHORT else 512 * MIB}

SENDER = r"""
import os, socket, sys
port, size, blob_frames, rounds, bufsize = map(int, sys.argv[1:6])
cpus = sorted(os.sched_getaffinity(0))
if len(cpus) > 1:
    os.sched_setaffinity(0, {cpus[-1]})
blob = (size.to_bytes(4, "big") + b"x" * size) * blob_frames
s = socket.create_connection(("127.0.0.1", port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufsize)
s.recv(1)  # wait for "go": the sender's start-up is not timed
for _ in range(rounds):
    s.sendall(blob)
s.close()
"""


def loop_kinds() -> list[str]:
    kinds = ["asyncio", "uvloop"]
    if importlib.util.find_spec("corenet._loop") is not None:
        kinds.append("corenet")
    return kinds


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "asyncio":
        return asyncio.SelectorEventLoop()
    if kind == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    import corenet

    return corenet.new_event_loop()


class CorenetCounter(FrameProtocol):
    """Counts frames with the zero-copy framer; done when the sender closes."""

    def __init__(self, done: asyncio.Future) -> None:
        super().__init__(4, "big")
        self.done = done
        self.frames = 0

    def frame_received(self, frame: memoryview) -> None:
        self.frames += 1

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(None)


class StructCounter(asyncio.Protocol):
    """The peer: a plain framer, bytearray buffer and struct.unpack_from, as commonly written."""

    def __init__(self, done: asyncio.Future) -> None:
        self.buf = bytearray()
        self.done = done
        self.frames = 0

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        pos = 0
        end = len(buf)
        unpack_from = struct.unpack_from
        while end - pos >= 4:
            (length,) = unpack_from(">I", buf, pos)
            stop = pos + 4 + length
            if stop > end:
                break
            self.frame_received(buf[pos + 4:stop])
            pos = stop
        if pos:
            del buf[:pos]

    def frame_received(self, frame: bytearray) -> None:
        self.frames += 1

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(None)


FRAMERS = {"corenet": CorenetCounter, "struct": StructCounter}
# (size, loop, framer) -> (frames/s in the best round, lowest CPU us per frame, busy share)
RESULTS: dict[tuple[int, str, str], tuple[float, float, float]] = {}


def receiver_core() -> set[int] | None:
    """The core the receiver runs on: the first, as the sender takes the last."""
    cpus = sorted(os.sched_getaffinity(0))
    return {cpus[0]} if len(cpus) > 1 else None


class Round:
    """One sample: a fresh loop, a fresh sender process, a connected socket."""

    def __init__(self, kind: str, framer: str, size: int) -> None:
        frame_len = 4 + size
        self.blob_frames = max(1, (1024 * 1024) // frame_len)
        self.sends = max(1, TOTAL_BYTES[size] // (self.blob_frames * frame_len))
        self.target = self.blob_frames * self.sends
        self.size = size
        self.framer = FRAMERS[framer]
        self.loop = new_loop(kind)
        listener = socket.create_server(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SENDER, str(port), str(size), str(self.blob_frames),
             str(self.sends), str(SOCKET_BUFFER)])
        listener.settimeout(30)
        try:
            self.sock, _ = listener.accept()
        finally:
            listener.close()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)

    async def _receive(self) -> int:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        transport, proto = await loop.connect_accepted_socket(
            lambda: self.framer(done), self.sock)
        transport.write(b"g")
        try:
            await asyncio.wait_for(done, 120)
        finally:
            transport.close()
        return proto.frames

    def run(self) -> int:
        core, before = receiver_core(), os.sched_getaffinity(0)
        if core:
            os.sched_setaffinity(0, core)
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            frames = self.loop.run_until_complete(self._receive())
            self.cpu = time.process_time() - cpu
            self.wall = time.perf_counter() - wall
        finally:
            os.sched_setaffinity(0, before)
        return frames

    def close(self) -> None:
        self.loop.close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)


@pytest.fixture(scope="module", autouse=True)
def ratio_report(request):
    """Prints corenet/struct per loop and frame size once the module's cases have run."""
    yield
    capture = request.config.pluginmanager.getplugin("capturemanager")
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    if reporter is None or not RESULTS:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line("framer decode: corenet FrameProtocol vs struct framer")
        reporter.write_line(f"  {'size':>8}  {'loop':8}{'frames/s':>12}{'MB/s':>8}{'cpu us':>8}"
                            f"{'busy':>6}  {'struct f/s':>11}{'cpu us':>8}{'busy':>6}"
                            f"{'f/s ratio':>10}{'cpu ratio':>10}")
        for (size, kind, framer), (fps, cpu, busy) in sorted(RESULTS.items()):
            if framer != "corenet":
                continue
            peer = RESULTS.get((size, kind, "struct"))
            pfps, pcpu, pbusy = peer or (float("nan"),) * 3
            reporter.write_line(
                f"  {size:>6} B  {kind:8}{fps:>12,.0f}{fps * size / 1e6:>8,.0f}{cpu:>8.2f}"
                f"{busy:>6.2f}  {pfps:>11,.0f}{pcpu:>8.2f}{pbusy:>6.2f}"
                f"{fps / pfps:>9.2f}x{pcpu / cpu:>9.2f}x")


@pytest.mark.parametrize("size", FRAME_SIZES, ids=lambda s: f"{s}B")
@pytest.mark.parametrize("framer", list(FRAMERS))
@pytest.mark.parametrize("kind", loop_kinds())
def test_framer_decode(benchmark, kind, framer, size):
    benchmark.group = f"framer-decode-{size}B"
    rounds: list[Round] = []

    def setup():
        rounds.append(Round(kind, framer, size))
        return (rounds[-1],), {}

    try:
        frames = benchmark.pedantic(Round.run, setup=setup, rounds=ROUNDS, iterations=1)
    finally:
        for r in rounds:
            r.close()
    best = benchmark.stats.stats.min
    fps = frames / best
    cpu_us = min(r.cpu for r in rounds) / frames * 1e6
    busy = min(rounds, key=lambda r: r.wall).cpu / best
    benchmark.extra_info.update(
        frames=frames, frames_per_s=round(fps), MB_per_s=round(fps * size / 1e6, 1),
        cpu_us_per_frame=round(cpu_us, 3))
    RESULTS[(size, kind, framer)] = (fps, cpu_us, busy)
    assert frames == rounds[0].target
