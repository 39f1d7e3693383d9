"""Keeps ``https_instructions.py`` working: its new-connection row, two connections per
process, under callgrind.

The full table (keep-alive GETs, 4 MiB downloads, new connections) takes minutes and is run
by hand; see the script's docstring and BENCHMARKS.md.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "https_instructions.py"


@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed")
@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_https_new_connection_instructions(benchmark):
    benchmark.group = "https-instructions"

    def measure():
        r = subprocess.run([sys.executable, str(SCRIPT), "--rows", "new", "--new-n", "2"],
                           capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return r.stdout

    out = benchmark.pedantic(measure, rounds=1, iterations=1)
    got = {(m[1], m[2]): int(m[3].replace(",", "")) for m in re.finditer(
        r"^new \((\w+)\)\s+(\S+)\s+on \S+\s+([\d,]+) instructions/request", out, re.M)}
    assert set(got) == {("resume", "corenet.https"), ("full", "corenet.https"),
                        ("full", "aiohttp")}, out
    benchmark.extra_info.update({f"{c} {m}": v for (m, c), v in got.items()})
    # A full handshake verifies the server's certificate (two ECDSA verifications at
    # least): a count under a million would mean the dumps missed the connections. A
    # resumed one skips the certificate; as costly as a full one, it was not resumed.
    assert all(v > 1_000_000 for (m, _), v in got.items() if m == "full"), got
    assert got[("resume", "corenet.https")] < 0.75 * got[("full", "corenet.https")], got


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
@pytest.mark.parametrize("poll", [None, "0"], ids=["polling", "sleeping"])
def test_https_wall_rounds(benchmark, poll):
    """``--wall``: three interleaved rounds of both clients, each with its wall time, its
    CPU and nginx's per request, and the ratio by blocks; with corenet.https polling for
    its responses (its default) and sleeping for them (``--response-poll 0``)."""
    benchmark.group = "https-wall"
    args = [sys.executable, str(SCRIPT), "--wall", "-n", "40", "--rows", "small"]
    if poll is not None:
        args += ["--response-poll", poll]

    def measure():
        r = subprocess.run(args, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return r.stdout

    out = benchmark.pedantic(measure, rounds=1, iterations=1)
    rounds = re.findall(r"^round (\d) (corenet\.https|aiohttp)\s+wall\s+([\d.]+) us/request, "
                        r"client CPU\s+([\d.]+), nginx CPU\s+([\d.]+)$", out, re.M)
    assert [(r, c) for r, c, *_ in rounds] == [
        (str(i), c) for i in (1, 2, 3) for c in ("corenet.https", "aiohttp")], out
    assert all(float(w) > 0 and float(cpu) > 0 and float(n) > 0
               for *_, w, cpu, n in rounds), out
    m = re.search(r"wall time per block of \d+: median ([\d.]+)x", out)
    assert m and float(m[1]) > 0, out
    benchmark.extra_info["block_median"] = float(m[1])
