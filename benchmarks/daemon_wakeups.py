"""CPU per wake-up of corenet-resolver and Unbound on cold misses (a measuring script, not a
pytest benchmark): the same servers, lab and names as ``test_daemon.py``'s cold run, a fresh
pair of servers per round, and for each the CPU per miss, the number of times the process ran
per miss and the CPU per run (from ``/proc/PID/task/*/schedstat``).

    cd <tree> && python benchmarks/daemon_wakeups.py

Environment: ``PACED=0`` asks the 300 names back to back instead of one every ~40 ms
(``dnsperf -v``), which shows the same work on warm caches; ``BURST=1`` measures the 3,800
names of a known zone with 50 outstanding instead; ``ROUNDS``; ``WHICH`` (space-separated
server names); ``DAEMON_ENV`` ("K=V K=V") for corenet-resolver's environment.
Needs what ``test_daemon.py`` needs (nsd, unbound, dnsperf, port 53 on the lab addresses).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from unittest import mock

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "resolver"), str(HERE.parent / "tests")]

import test_daemon as td  # noqa: E402
from dnslab import bulk_names, many_zone_names  # noqa: E402
from procs import sigterm_as_interrupt  # noqa: E402


def runs(pid: int) -> tuple[float, int]:
    """(CPU seconds, times scheduled in) summed over the process's threads."""
    cpu = slices = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
            a = f.read().split()
        cpu += int(a[0])
        slices += int(a[2])
    return cpu / 1e9, slices


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                            epilog=__doc__.split("\n\n", 1)[1]).parse_args()
    sigterm_as_interrupt()         # a terminated run still stops its lab and servers
    paced = os.environ.get("PACED", "1") != "0"
    burst = os.environ.get("BURST") == "1"
    env = dict(kv.split("=", 1) for kv in os.environ.get("DAEMON_ENV", "").split())
    tmp = Path(tempfile.mkdtemp())
    cold = [n for n, _ in many_zone_names()][:100] + [n for n, _ in bulk_names()][:200]
    rest = [n for n, _ in bulk_names()][200:]
    cold_file, burst_file = tmp / "cold.txt", tmp / "burst.txt"
    cold_file.write_text("".join(f"{n} A\n" for n in cold))
    burst_file.write_text("".join(f"{n} A\n" for n in rest))
    lab = td.lab_on_port_53(tmp / "lab")
    try:
        for r in range(int(os.environ.get("ROUNDS", "3"))):
            for which in os.environ.get("WHICH", "corenet-resolver unbound").split():
                with mock.patch.dict(os.environ, env):
                    s = td.Servers(lab, tmp / f"{which}{r}")
                try:
                    port, pid = {n: (p, i) for n, p, i in s.targets()}[which]
                    if burst:
                        td._dnsperf(port, cold_file, "-n", "1", "-q", "1", "-t", "10")
                        args, n, f = ("-q", "50"), len(rest), burst_file
                    else:
                        args, n, f = ("-q", "1") + (("-v",) if paced else ()), len(cold), cold_file
                    c0, s0 = runs(pid)
                    td._dnsperf(port, f, "-n", "1", "-t", "10", *args)
                    c1, s1 = runs(pid)
                    print(f"{which:17s} CPU/miss {(c1 - c0) / n * 1e6:6.1f} µs  "
                          f"runs/miss {(s1 - s0) / n:.2f}  CPU/run "
                          f"{(c1 - c0) / max(1, s1 - s0) * 1e6:6.1f} µs", flush=True)
                finally:
                    s.stop()
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
