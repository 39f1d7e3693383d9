"""C10K: one echo server process holds 10,000 concurrent TCP connections, answers a message
on each (first one at a time, then all at once), and its memory per connection is reported
next to uvloop's measured in the same run."""
from __future__ import annotations

import importlib.util
import os
import resource
import subprocess
import sys

import pytest

from looptools import corenet_built
from procs import reap

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([REPO, os.path.dirname(HERE), HERE])}
N = 10_000
KINDS = ["uvloop", "corenet-edge", "corenet-level"]


class Proc:
    def __init__(self, *args: str) -> None:
        self.p = subprocess.Popen([sys.executable, "-m", "transport_c10k_procs", *args],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  env=ENV, cwd=HERE)

    def ask(self, line: str | None, expect: str) -> list[str]:
        if line is not None:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
        out = self.p.stdout.readline().split()
        assert out and out[0] == expect, f"expected {expect}, got {out} (exit {self.p.poll()})"
        return out

    def stop(self) -> None:
        if self.p.poll() is None:
            try:
                self.p.stdin.close()
            except OSError:
                pass
        reap(self.p, 20)


def hold_10k(kind: str) -> dict:
    server = Proc("server", kind)
    client = None
    try:
        port = server.ask(None, "PORT")[1]
        _, live0, rss0 = server.ask("STAT", "STAT")
        client = Proc("client", port, str(N))
        assert int(client.ask(None, "OPEN")[1]) == N
        _, live1, rss1 = server.ask("STAT", "STAT")
        assert int(live1) == N, f"{live1} connections live on the server"
        assert int(client.ask("GO", "ECHOED")[1]) == N
        _, live2, rss2 = server.ask("STAT", "STAT")
        assert int(live2) == N
        return {"open": (int(rss1) - int(rss0)) * 1024 / N,
                "after_traffic": (int(rss2) - int(rss0)) * 1024 / N}
    finally:
        if client is not None:
            client.stop()
        server.stop()


def test_c10k_memory_per_connection(record_property, capsys):
    if not corenet_built():
        pytest.skip("corenet._loop extension is not built (run scripts/setup.sh)")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < N + 200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below the {N + 200} descriptors needed")
    if importlib.util.find_spec("uvloop") is None:
        pytest.skip("uvloop is not installed (it is the reference here)")
    results = {kind: hold_10k(kind) for kind in KINDS}
    with capsys.disabled():
        print(f"\nC10K: server RSS growth per connection, {N} connections (bytes)")
        for kind, r in results.items():
            ratio = r["open"] / results["uvloop"]["open"]
            print(f"  {kind:14} {r['open']:8.0f} open, {r['after_traffic']:8.0f} after a message "
                  f"on all at once   ({ratio:.2f}x uvloop)")
    for kind, r in results.items():
        record_property(f"c10k_bytes_per_conn_{kind}", round(r["after_traffic"]))
    # Not a benchmark, a sanity bound: a connection must not cost an order of magnitude more
    # than uvloop's (libuv handle + Python transport + protocol).
    for kind in ("corenet-edge", "corenet-level"):
        assert results[kind]["after_traffic"] < 3 * results["uvloop"]["after_traffic"] + 2048
