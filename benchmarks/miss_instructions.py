"""What a cache miss costs corenet-resolver and Unbound, in figures that do not depend on the
machine's load: user-space instructions per miss (callgrind) and system calls per miss
(strace -c), each server alone over the same NSD lab (on port 53, where Unbound asks).

Each server starts fresh, resolves one name of ``bulk.net.`` (so the path to the zone is
known), then is asked ``-n`` new names of that zone with dnsperf (``-q 1``: one at a time,
``--burst``: 20 outstanding). Only those queries are counted: callgrind's counters are zeroed
before and dumped after them, strace is attached for them alone. One worker / one thread,
validation off on both sides (the lab is unsigned), ``ip-ratelimit`` off.

    .venv/bin/python benchmarks/miss_instructions.py [-n 1000] [--burst] [--no-callgrind]
        [--no-strace]

Needs valgrind, strace, dnsperf, nsd and unbound, and port 53 free on the lab's addresses.
BENCHMARKS.md ("Where a miss goes") reports its figures.
"""
from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "resolver"))

from daemon_proc import Daemon  # noqa: E402
from dnslab import Lab, bulk_names  # noqa: E402
from dnslab.unbound import launch, server_lines  # noqa: E402
from dnslab.ports import pick_port  # noqa: E402
from procs import stop as stop_process  # noqa: E402

UNBOUND_EXTRA = ["  msg-cache-size: 64m", "  rrset-cache-size: 64m", "  prefetch: no",
                 "  ratelimit: 0", "  ip-ratelimit: 0", "  so-rcvbuf: 4m",
                 "  qname-minimisation: yes"]


def _dnsperf(port: int, names: list[str], path: Path, outstanding: int) -> int:
    path.write_text("".join(f"{n} A\n" for n in names))
    r = subprocess.run(["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(path), "-n",
                        "1", "-q", str(outstanding), "-t", "30"], capture_output=True,
                       text=True, timeout=600)
    m = re.search(r"Queries completed:\s+(\d+)", r.stdout)
    if r.returncode != 0 or m is None:
        raise RuntimeError(f"dnsperf failed:\n{r.stdout}{r.stderr}")
    return int(m.group(1))


class _Server:
    """corenet-resolver or Unbound over ``lab``, optionally under callgrind."""

    def __init__(self, kind: str, lab: Lab, work: Path, callgrind_out: str | None) -> None:
        self.kind = kind
        wrap = (("valgrind", "--tool=callgrind", f"--callgrind-out-file={callgrind_out}")
                if callgrind_out else ())
        if kind == "corenet":
            self.d = Daemon(work, lab, "--no-ipv6", "--ip-ratelimit", "0", metrics=False,
                            control=False, wrap=wrap).start(timeout=600)
            self.pid, self.port, self.proc = self.d.pid, self.d.port, None
        else:
            work.mkdir(parents=True, exist_ok=True)
            self.port = pick_port(["127.0.0.1"])
            lines = [f"  interface: 127.0.0.1@{self.port}", f"  port: {self.port}",
                     *server_lines(work, lab, 1), *UNBOUND_EXTRA]
            self.proc = launch(work, lines, "127.0.0.1", self.port, timeout=600,
                               wrap=wrap)
            self.pid, self.d = self.proc.pid, None

    def stop(self) -> None:
        if self.d is not None:
            self.d.stop(timeout=120)
        else:
            stop_process(self.proc, 120, group=True)


def _callgrind_total(path: str) -> int:
    """The instructions of the dump's counted part (its ``summary`` or ``totals`` line)."""
    for line in Path(path).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


def measure(kind: str, lab: Lab, work: Path, names: list[str], outstanding: int,
            callgrind: bool, strace: bool) -> dict:
    out: dict = {}
    if callgrind:
        dump = str(work / f"{kind}.callgrind")
        s = _Server(kind, lab, work / f"{kind}-cg", dump)
        try:
            _dnsperf(s.port, names[:1], work / "warm.txt", 1)
            subprocess.run(["callgrind_control", "-z", str(s.pid)], check=True,
                           capture_output=True)
            done = _dnsperf(s.port, names[1:], work / "q.txt", outstanding)
            subprocess.run(["callgrind_control", "-d", str(s.pid)], check=True,
                           capture_output=True)
            out["instructions_per_miss"] = _callgrind_total(dump + ".1") / done
        finally:
            s.stop()
    if strace:
        s = _Server(kind, lab, work / f"{kind}-st", None)
        log = work / f"{kind}.strace"
        try:
            _dnsperf(s.port, names[:1], work / "warm.txt", 1)
            st = subprocess.Popen(["strace", "-c", "-f", "-o", str(log), "-p", str(s.pid)],
                                  stderr=subprocess.DEVNULL)
            time.sleep(1.0)             # attached to every thread before the first query
            done = _dnsperf(s.port, names[1:], work / "q.txt", outstanding)
            st.send_signal(2)
            st.wait(timeout=60)
        finally:
            s.stop()
        calls = {}
        for line in log.read_text().splitlines():
            f = line.split()
            if len(f) >= 5 and f[3].isdigit() and f[-1] != "total":
                calls[f[-1]] = int(f[3])
        out["syscalls_per_miss"] = sum(calls.values()) / done
        out["syscalls"] = {k: round(v / done, 2) for k, v in sorted(calls.items())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="misses counted per server")
    ap.add_argument("--burst", action="store_true", help="20 outstanding, not one at a time")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--no-strace", action="store_true")
    a = ap.parse_args()
    names = [n for n, _ in bulk_names()][: a.n + 1]
    with tempfile.TemporaryDirectory() as tmp:
        lab = Lab.start(Path(tmp) / "lab", port=53)
        try:
            for kind in ("corenet", "unbound"):
                r = measure(kind, lab, Path(tmp), names, 20 if a.burst else 1,
                            not a.no_callgrind, not a.no_strace)
                figures = ", ".join(
                    f"{k} {v:,.0f}" if k.startswith("instr") else
                    f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in r.items())
                print(f"{kind}: {figures}", flush=True)
        finally:
            lab.stop()


if __name__ == "__main__":
    main()
