"""TLS echo server: corenet next to uvloop and stock asyncio, per CPU-second of the server.

Each loop serves ``create_server(..., ssl=context)`` (TLS 1.3, ECDSA P-256) in a process of
its own, pinned to core 1; the client (``tls_handshake.py``'s, Python over a MemoryBIO) runs
pinned to core 0. Two rows:

- echo: 10 long-lived connections, each turn a 1 KiB message on every one and every echo
  read back and checked: requests per CPU-second of the server (its CPU over the measured
  window only, after the connections are up);
- handshakes: connections one after another, each a full handshake (no resumption), one
  64-byte echo, close_notify and close: new handshakes per CPU-second of the server.

The client is Python and is the limit of the wall-clock rate; the server's CPU per request
or per handshake is the figure to compare. Rounds start fresh servers and take the loops in
turn; medians over rounds, ratios to uvloop within each round.
``CORENET_BENCH_SHORT=1``: one short round. Instruction counts per handshake (load-
independent) come from ``benchmarks/tls_handshake.py --callgrind``.
"""
from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import tls_handshake as th  # noqa: E402
from test_echo import pinned  # noqa: E402

SHORT = os.environ.get("CORENET_BENCH_SHORT") == "1"
ROUNDS = 1 if SHORT else 3
ECHO_SECONDS = 0.5 if SHORT else 3.0
HANDSHAKES = 30 if SHORT else 400
CONNS = 10
SIZE = 1024
KINDS = [k for k in ("corenet", "uvloop", "asyncio")
         if k == "asyncio" or importlib.util.find_spec(
             "corenet._loop" if k == "corenet" else k) is not None]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    return th.make_certificate(str(tmp_path_factory.mktemp("tls-echo")))


def echo_round(server: th.Server) -> dict:
    """The echo row against one server: the client reports START once its connections are
    up, and the server's CPU is taken from there to the end."""
    proc = subprocess.Popen(pinned(0) + [sys.executable, th.__file__, "--client", str(server.port),
                                         "echo", str(CONNS), str(SIZE), str(ECHO_SECONDS)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=th.ENV)
    try:
        c0 = None
        requests = None
        for line in proc.stdout:
            if line.strip() == "START":
                c0 = th.cpu_seconds(server.pid)
            elif line.strip().isdigit():
                requests = int(line)
        cpu = th.cpu_seconds(server.pid) - c0 if c0 is not None else 0.0
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert proc.returncode == 0 and requests, f"TLS echo client failed: {err.strip()[-2000:]}"
    return {"requests": requests, "cpu_s": cpu, "per_cpu_s": requests / cpu}


def handshake_round(server: th.Server) -> dict:
    th.run_client(server.port, "handshakes", "5", pin=pinned(0))           # warm-up
    c0 = th.cpu_seconds(server.pid)
    th.run_client(server.port, "handshakes", str(HANDSHAKES), pin=pinned(0))
    cpu = th.cpu_seconds(server.pid) - c0
    return {"handshakes": HANDSHAKES, "cpu_s": cpu, "per_cpu_s": HANDSHAKES / cpu}


@pytest.mark.benchmark(group="tls-echo")
def test_tls_echo_and_handshakes_per_cpu_second(benchmark, certificate, request):
    pem, key = certificate
    rounds: dict[str, list[dict]] = {k: [] for k in KINDS}

    def run():
        for r in range(ROUNDS):
            order = KINDS[r % len(KINDS):] + KINDS[:r % len(KINDS)]
            for kind in order:
                server = th.Server(kind, pem, key, pin=pinned(1))
                try:
                    rounds[kind].append({"echo": echo_round(server),
                                         "new": handshake_round(server)})
                finally:
                    server.stop()

    benchmark.pedantic(run, rounds=1, iterations=1)
    table = {}
    for kind, results in rounds.items():
        row = {f"{part}_per_cpu_s": statistics.median(r[part]["per_cpu_s"] for r in results)
               for part in ("echo", "new")}
        if "uvloop" in rounds:
            for part in ("echo", "new"):
                row[f"{part}_ratio"] = statistics.median(
                    r[part]["per_cpu_s"] / b[part]["per_cpu_s"]
                    for r, b in zip(results, rounds["uvloop"]))
        table[kind] = row
        benchmark.extra_info[kind] = row
    reporter = request.config.pluginmanager.getplugin("terminalreporter")
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        reporter.write_line(f"\nTLS 1.3 echo ({CONNS} connections, {SIZE // 1024} KiB) and new "
                            f"handshakes, per CPU-second of the server; {ROUNDS} round(s); "
                            "ratios to uvloop (>1 is better)")
        for kind, row in table.items():
            reporter.write_line(
                f"  {kind:10}{row['echo_per_cpu_s']:>12,.0f} echoes/CPU-s"
                f"{row.get('echo_ratio', float('nan')):>7.2f}x"
                f"{row['new_per_cpu_s']:>10,.0f} handshakes/CPU-s"
                f"{row.get('new_ratio', float('nan')):>7.2f}x")
    for kind, results in rounds.items():
        assert all(r["echo"]["requests"] >= CONNS and r["new"]["cpu_s"] > 0 for r in results)
