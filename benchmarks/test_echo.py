"""Echo server benchmark: corenet (edge and level) next to stock asyncio, uvloop and rloop,
and a plain C epoll server (``echo_server.c``, kind ``c-epoll``) as the floor.

Each round of a cell starts a fresh server process per loop (Protocol, BufferedProtocol or
streams), pinned to core 1, and drives them in turn, in short bursts, with a small C client
(``echo_client.c``, compiled here with gcc) pinned to core 0: 10 connections, each sending a
message of 1, 10 or 100 KiB and waiting for its echo, every echoed byte checked. Socket
buffers are fixed on both sides (kernel autotuning makes 100 KiB runs swing 2.5x). Reported
per cell: requests/s, p99 latency and the server's CPU time per request (from its threads'
schedstat over the measured window, which is the figure to compare where the client is the
limit), the client's CPU time per request and the share of its core each side was busy
(which shows where the limit is), and the ratios to uvloop taken within each round. Bursts
and rounds interleave the loops so drift on a shared machine hits all alike; a round's
figure for a loop is the median over its bursts.

``test_echo_syscalls`` counts the server's system calls over 10,000 round trips (1 KiB,
10 connections) with ``strace -c -f`` attached after a warm-up, for each trigger mode.

CORENET_BENCH_SHORT=1: one round of about a second per cell, enough to check it all runs.
"""
from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap

import pytest

SHORT = os.environ.get("CORENET_BENCH_SHORT") == "1"
# 100 KiB cells are bimodal on this kind of machine for every loop alike (the kernel's copy
# into the socket buffer is 2-5x slower in some processes than in others, see BENCHMARKS.md),
# so they get more fresh processes, and the table also shows the best round of each loop.
# CORENET_ECHO_ROUNDS sets more rounds for every size (the host's noise some days needs them).
ROUNDS = 1 if SHORT else int(os.environ.get("CORENET_ECHO_ROUNDS", "3"))
ROUNDS_100K = 1 if SHORT else max(7, ROUNDS)
DURATION = 0.5 if SHORT else 2.0       # measured seconds per loop per round
BURSTS = 1 if SHORT else int(os.environ.get("CORENET_ECHO_BURSTS", "4"))
WARMUP = 0.2 if SHORT else 0.5         # before a server's first burst
BURST_WARMUP = 0.1                     # before its later ones (new connections, warm server)
CONNS = 10
SOCKBUF = 256 * 1024
SIZES = [1024, 10 * 1024, 100 * 1024]
MODES = ["protocol", "buffered", "streams"]
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
ENV = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}


def available_kinds() -> list[str]:
    kinds = ["asyncio"]
    for mod in ("uvloop", "rloop"):
        if importlib.util.find_spec(mod) is not None:
            kinds.append(mod)
    if importlib.util.find_spec("corenet._loop") is not None:
        kinds += ["corenet-edge", "corenet-level"]
    if shutil.which("gcc") is not None:
        kinds.append(C_FLOOR)
    return kinds


C_FLOOR = "c-epoll"
_C_SERVER: list[str] = []


def c_server() -> str:
    """The C echo server, built with gcc on first use."""
    if not _C_SERVER:
        workdir = tempfile.mkdtemp(prefix="corenet-echo-")
        atexit.register(shutil.rmtree, workdir, True)
        out = os.path.join(workdir, "echo_server")
        subprocess.run(["gcc", "-O2", "-o", out, os.path.join(HERE, "echo_server.c")],
                       check=True)
        _C_SERVER.append(out)
    return _C_SERVER[0]


KINDS = available_kinds()

SERVER = textwrap.dedent("""
    import asyncio, os, socket, sys
    kind, mode, sockbuf, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

    def new_loop():
        if kind == "asyncio":
            return asyncio.SelectorEventLoop()
        if kind == "uvloop":
            import uvloop
            return uvloop.new_event_loop()
        if kind == "rloop":
            import rloop
            return rloop.new_event_loop()
        import corenet
        return corenet.new_event_loop(trigger=kind.split("-", 1)[1])

    class EchoProtocol(asyncio.Protocol):
        def connection_made(self, transport):
            self.write = transport.write

        def data_received(self, data):
            self.write(data)

    # One buffer for every connection, as the C server reads into one: each read is written
    # back before the next read into it, and what a write cannot send at once the loops copy
    # (asyncio's selector transport on 3.12+ keeps a view instead: every echoed byte is
    # checked, so such a loop fails the run rather than skewing it).
    SHARED = memoryview(bytearray(262144))

    class EchoBuffered(asyncio.BufferedProtocol):
        def connection_made(self, transport):
            self.write = transport.write

        def get_buffer(self, sizehint):
            return SHARED

        def buffer_updated(self, nbytes):
            self.write(SHARED[:nbytes])

    class EchoClose(asyncio.Protocol):
        # A connection per request: echo one message of `size` bytes, then close.
        def connection_made(self, transport):
            self.transport = transport
            self.left = size

        def data_received(self, data):
            self.transport.write(data)
            self.left -= len(data)
            if self.left <= 0:
                self.transport.close()

    async def echo_stream(reader, writer):
        try:
            while True:
                data = await reader.read(262144)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass   # the client resets its connections once the measured run is over
        finally:
            writer.close()

    async def main():
        loop = asyncio.get_running_loop()
        lsock = socket.socket()
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sockbuf)
        lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, sockbuf)
        lsock.bind(("127.0.0.1", 0))
        lsock.setblocking(False)
        port = lsock.getsockname()[1]  # rloop takes over (detaches) the socket it is given
        if mode == "streams":
            srv = await asyncio.start_server(echo_stream, sock=lsock, limit=262144)
        else:
            factory = {"protocol": EchoProtocol, "buffered": EchoBuffered, "close": EchoClose}[mode]
            srv = await loop.create_server(factory, sock=lsock)
        print(port, flush=True)
        stop = loop.create_future()
        loop.add_reader(0, lambda: stop.done() or stop.set_result(None))
        await stop

    loop = new_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(main())
    os._exit(0)   # the measured work is over: skip tearing down the clients' pending reads
""")


def pinned(core: int) -> list[str]:
    """A taskset prefix pinning to ``core`` when the machine has it."""
    if shutil.which("taskset") and core in os.sched_getaffinity(0) and len(os.sched_getaffinity(0)) > 1:
        return ["taskset", "-c", str(core)]
    return []


def cpu_seconds(pid: int) -> float:
    """The process's CPU time, to the nanosecond where the kernel keeps schedstat (the sum of
    its threads' run time): /proc/PID/stat counts in 10 ms ticks, a few percent of a burst."""
    if not os.path.exists(f"/proc/{pid}/schedstat"):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:   # a thread that has just ended
            pass
    return total * 1e-9


def sleeps(pid: int) -> int:
    """How often the process has blocked (voluntary context switches): each time, the
    other side pays for waking it up, which on a VM is costly (see BENCHMARKS.md)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("voluntary_ctxt_switches:"):
                return int(line.split()[1])
    return 0


@pytest.fixture(scope="session")
def echo_client(tmp_path_factory) -> str:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the C load generator")
    out = str(tmp_path_factory.mktemp("echo-client") / "echo_client")
    subprocess.run(["gcc", "-O2", "-o", out, os.path.join(HERE, "echo_client.c")], check=True)
    return out


class Server:
    def __init__(self, kind: str, mode: str, pin: bool = True, size: int = 0) -> None:
        program = [c_server()] if kind == C_FLOOR else [sys.executable, "-c", SERVER, kind]
        self.proc = subprocess.Popen(
            (pinned(1) if pin else []) + program + [mode, str(SOCKBUF), str(size)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV)
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"{kind}/{mode} server did not start (exit {self.proc.returncode})")
        self.port = int(line)
        self.pid = self.proc.pid

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def parse_result(line: str) -> dict[str, float]:
    return {k: float(v) for k, v in (item.split("=") for item in line.split())}


def run_client(client: str, port: int, size: int, *args: str, on_start=None, on_end=None):
    proc = subprocess.Popen(pinned(0) + [client, "127.0.0.1", str(port), str(CONNS), str(size),
                                         "-b", str(SOCKBUF), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        result = None
        for line in proc.stdout:
            line = line.strip()
            if line == "START" and on_start:
                on_start(proc.pid)
            elif line == "END" and on_end:
                on_end(proc.pid)
            elif line.startswith("requests="):
                result = parse_result(line)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    if proc.returncode != 0 or result is None:
        raise AssertionError(f"echo client failed ({proc.returncode}): {err.strip()}")
    return result


def run_burst(client: str, server: Server, mode: str, size: int, duration: float,
              warmup: float) -> dict[str, float]:
    """One client run against a running server: the client's figures, and both sides' CPU
    time and blocking per request over the measured window."""
    cpu = {}

    def mark(what):
        return lambda client_pid: cpu.__setitem__(what, (
            cpu_seconds(server.pid), cpu_seconds(client_pid),
            sleeps(server.pid), sleeps(client_pid)))
    per_request = ["-c", "1"] if mode == "close" else []
    result = run_client(client, server.port, size, "-d", str(duration), "-w", str(warmup),
                        *per_request, on_start=mark("start"), on_end=mark("end"))
    assert result["mismatches"] == 0
    n = result["requests"]
    result["cpu_us"] = (cpu["end"][0] - cpu["start"][0]) / n * 1e6
    # The load generator's own CPU per request: where it is busy all the time (requests/s
    # times this near 1.0), requests/s measures the client, not the server.
    result["client_cpu_us"] = (cpu["end"][1] - cpu["start"][1]) / n * 1e6
    result["server_sleeps"] = (cpu["end"][2] - cpu["start"][2]) / n
    result["client_sleeps"] = (cpu["end"][3] - cpu["start"][3]) / n
    return result


def rotated(kinds: list[str], by: int) -> list[str]:
    by %= len(kinds)
    return kinds[by:] + kinds[:by]


def run_round(client: str, kinds: list[str], mode: str, size: int, turn: int) -> dict[str, dict]:
    """One round: a fresh server per loop, measured in BURSTS short bursts that take turns.

    This host slows down now and then for a second or so, every process alike (server and
    client CPU per request both double). In one long run per loop
    such a spell lands on one loop's whole figure; in bursts that take turns it lands on one
    burst of one loop, and each figure here is the median over the loop's bursts."""
    servers: dict[str, Server] = {}
    bursts: dict[str, list[dict]] = {k: [] for k in kinds}
    try:
        for kind in kinds:
            servers[kind] = Server(kind, mode, size=size)
        for b in range(BURSTS):
            for kind in rotated(kinds, turn + b):
                bursts[kind].append(run_burst(client, servers[kind], mode, size,
                                              DURATION / BURSTS, WARMUP if b == 0 else BURST_WARMUP))
    finally:
        for server in servers.values():
            server.stop()
    return {k: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
            for k, runs in bursts.items()}


RESULTS: dict[tuple[str, int], dict[str, list[dict]]] = {}


@pytest.fixture(scope="module", autouse=True)
def echo_report(request):
    """Prints the table once the module's cells have run: medians over rounds, ratios to
    uvloop taken within each round."""
    yield
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    if reporter is None or not RESULTS:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(f"echo: {CONNS} connections, {ROUNDS} round(s) of {DURATION}s per cell "
                            f"({ROUNDS_100K} at 100 KiB), each the median of {BURSTS} burst(s) in turn; "
                            "medians over rounds; ratios to uvloop within each "
                            "round (>1 is better); busy: the share of its core the server and "
                            "the client used; sleeps: times each side blocked per 100 requests")
        reporter.write_line(f"  {'mode':9}{'size':>7}  {'loop':14}{'req/s':>10}{'p99 us':>9}"
                            f"{'cpu us/req':>11}{'req/s ratio':>12}{'cpu ratio':>10}"
                            f"{'best cpu us':>12}{'best ratio':>11}{'client us':>10}"
                            f"{'busy s/c':>10}{'sleeps s/c':>12}")
        for (mode, size), per_kind in RESULTS.items():
            for kind, rounds in per_kind.items():
                row = summarize(per_kind, kind)
                reporter.write_line(
                    f"  {mode:9}{size // 1024:>5}Ki  {kind:14}{row['rps']:>10,.0f}{row['p99']:>9.0f}"
                    f"{row['cpu_us']:>11.2f}{row['rps_ratio']:>12.2f}{row['cpu_ratio']:>10.2f}"
                    f"{row['best_cpu_us']:>12.2f}{row['best_cpu_ratio']:>11.2f}"
                    f"{row['client_cpu_us']:>10.1f}"
                    f"{row['server_busy']:>5.2f}/{row['client_busy']:.2f}"
                    f"{row['server_sleeps'] * 100:>6.1f}/{row['client_sleeps'] * 100:<5.1f}")


def summarize(per_kind: dict[str, list[dict]], kind: str) -> dict[str, float]:
    rounds = per_kind[kind]
    base = per_kind.get("uvloop")
    rps_ratio = cpu_ratio = float("nan")
    if base:
        rps_ratio = statistics.median(r["rps"] / b["rps"] for r, b in zip(rounds, base))
        cpu_ratio = statistics.median(b["cpu_us"] / r["cpu_us"] if r["cpu_us"] else float("nan")
                                      for r, b in zip(rounds, base))
    best = min(r["cpu_us"] for r in rounds)
    best_ratio = min(b["cpu_us"] for b in base) / best if base and best else float("nan")
    return {"rps": statistics.median(r["rps"] for r in rounds),
            "p99": statistics.median(r["p99_us"] for r in rounds),
            "cpu_us": statistics.median(r["cpu_us"] for r in rounds),
            "rps_ratio": rps_ratio, "cpu_ratio": cpu_ratio,
            "best_cpu_us": best, "best_cpu_ratio": best_ratio,
            "client_cpu_us": statistics.median(r["client_cpu_us"] for r in rounds),
            # the share of its core each side was busy (1.0: that side was the limit)
            "server_busy": statistics.median(r["rps"] * r["cpu_us"] / 1e6 for r in rounds),
            "client_busy": statistics.median(r["rps"] * r["client_cpu_us"] / 1e6
                                             for r in rounds),
            "server_sleeps": statistics.median(r["server_sleeps"] for r in rounds),
            "client_sleeps": statistics.median(r["client_sleeps"] for r in rounds)}


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s // 1024}KiB")
@pytest.mark.parametrize("mode", MODES)
def test_echo(benchmark, echo_client, mode, size):
    measure_rounds(benchmark, echo_client, mode, size,
                   ROUNDS_100K if size >= 100 * 1024 else ROUNDS)


def measure_rounds(benchmark, echo_client: str, mode: str, size: int, rounds: int,
                   kinds: list[str] = KINDS) -> None:
    """Interleaved rounds of every loop for one cell, into RESULTS and the benchmark JSON."""
    benchmark.group = f"echo-{mode}-{size // 1024}KiB"
    per_kind: dict[str, list[dict]] = {k: [] for k in kinds}

    def all_rounds():
        for r in range(rounds):
            for kind, result in run_round(echo_client, kinds, mode, size, r).items():
                per_kind[kind].append(result)

    benchmark.pedantic(all_rounds, rounds=1, iterations=1)
    RESULTS[(mode, size)] = per_kind
    for kind in kinds:
        benchmark.extra_info[kind] = summarize(per_kind, kind)
        assert all(r["requests"] > 0 for r in per_kind[kind])


@pytest.mark.parametrize("size", [1024], ids=lambda s: f"{s // 1024}KiB")
def test_echo_connection_per_request(benchmark, echo_client, size):
    """The accept path: each request on a new connection that the server closes after its
    echo (HTTP/1.0 style), so accept, transport set-up and close are the work measured.
    Without rloop: its transport's close() after a write never closes the connection
    (rloop 0.5: the echo arrives, the FIN never does), so the client would wait forever."""
    measure_rounds(benchmark, echo_client, "close", size, ROUNDS,
                   [k for k in KINDS if k != "rloop"])


def strace_counts(path: str) -> dict[str, int]:
    """Parses ``strace -c`` output: calls per syscall, and the total."""
    counts: dict[str, int] = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5 or not parts[3].isdigit():
                continue
            counts[parts[-1]] = int(parts[3])
    return counts


SYSCALL_KINDS = [k for k in KINDS if k.startswith("corenet")] + [k for k in ("uvloop", "asyncio") if k in KINDS]


@pytest.mark.parametrize("kind", SYSCALL_KINDS)
def test_echo_syscalls(benchmark, echo_client, kind, tmp_path, request):
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    benchmark.group = "echo-syscalls"
    round_trips = 10_000
    out = str(tmp_path / "strace.txt")
    server = Server(kind, "protocol", pin=False)
    counts: dict[str, int] = {}
    try:
        run_client(echo_client, server.port, 1024, "-n", "2000")  # warm-up, not traced
        tids = os.listdir(f"/proc/{server.pid}/task")
        tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out] + [a for t in tids for a in ("-p", t)],
                                  stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(len(tids)):
                line = tracer.stderr.readline()
                if "attached" not in line:
                    pytest.skip(f"strace cannot attach here: {line.strip()}")

            def measured():
                run_client(echo_client, server.port, 1024, "-n", str(round_trips))

            benchmark.pedantic(measured, rounds=1, iterations=1)
        finally:
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
        counts = strace_counts(out)
    finally:
        server.stop()
    total = counts.pop("total", sum(counts.values()))
    assert total > 0
    top = dict(sorted(counts.items(), key=lambda kv: -kv[1])[:8])
    benchmark.extra_info.update({"round_trips": round_trips, "total": total, **top})
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\nsyscalls per {round_trips} echo round trips, {kind}: {total} "
                            + " ".join(f"{k}={v}" for k, v in top.items()))
