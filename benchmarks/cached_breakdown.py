"""Where a cached answer's CPU goes, corenet-resolver beside Unbound: the cached row of
``test_daemon.py`` (the same names, lab and dnsperf load, one worker / one thread each, the
server pinned to core 0 and dnsperf to core 1) taken apart.

- **CPU per query** (``/proc/PID/task/*/schedstat``) over a saturating run (4 clients, 200
  queries outstanding, ``-l`` seconds), and in that same run:
- **where it goes**: shares of the server's CPU samples (``perf record -e cpu-clock -g``,
  2,999 a second): user space, the kernel, the send and receive calls, and inside the sends
  the loopback's delivery of each reply into dnsperf's socket, which the sending system
  call runs (softirq) and pays for, with the wake-up of dnsperf's thread;
- **system calls per query, by name**, and **queries per receive call**: the kernel's
  ``syscalls:sys_enter_*`` tracepoints counted by ``perf stat`` (a count per event,
  nothing recorded); **answers per message sent** (corenet-resolver's ``stats``: answers of
  one size to one client leave in one segmented send);
- and apart, **user-space instructions per query** (callgrind), split by the object they
  run in (the Python interpreter, corenet's compiled modules, libc, libevent, ...), over
  ``-n`` passes of the name list with 64 queries outstanding, the cache warmed first.

    .venv/bin/python benchmarks/cached_breakdown.py [-l 15] [-n 100] [--no-callgrind]

Port 53 on the lab's loopback addresses must be free; to measure beside another lab, run it
in a network namespace of its own: ``unshare -n sh -c 'ip link set lo up && .venv/bin/python
benchmarks/cached_breakdown.py'``. Needs dnsperf, unbound, nsd, valgrind and perf (Debian's
linux-perf). BENCHMARKS.md ("Where a cached answer goes") reports its figures.
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "resolver"), str(HERE.parent / "tests")]

import miss_instructions as mi  # noqa: E402  (the two servers, started the same way)
from dnslab import Lab  # noqa: E402
from loadgen import cpu_seconds  # noqa: E402
from procs import sigterm_as_interrupt  # noqa: E402
from test_daemon import CACHED_QUERIES, LOAD_CORE, SERVER_CORE, TWO_CORES  # noqa: E402

#: the system calls counted one by one (the rest are counted together as "other")
SYSCALLS = ("recvmmsg", "recvfrom", "recvmsg", "sendmmsg", "sendto", "sendmsg", "epoll_wait",
            "epoll_pwait", "epoll_ctl", "read", "write", "futex", "getpid", "clock_gettime")
RECEIVES = ("recvmmsg", "recvfrom", "recvmsg")


def _pin(pid: int, core: str) -> None:
    if TWO_CORES:
        subprocess.run(["taskset", "-a", "-p", "-c", core, str(pid)], capture_output=True,
                       check=True)


def _dnsperf(port: int, datafile: Path, *args: str) -> str:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(datafile), *args]
    if TWO_CORES:
        cmd = ["taskset", "-c", LOAD_CORE] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
    if r.returncode != 0 or "Queries completed" not in r.stdout:
        raise RuntimeError(f"dnsperf failed:\n{r.stdout}{r.stderr}")
    return r.stdout


def _completed(out: str) -> int:
    return int(re.search(r"Queries completed:\s+(\d+)", out).group(1))


def _sent(s: mi._Server) -> tuple[int, int]:
    """corenet-resolver's UDP answers sent and the messages they left in (answers of one
    size to one client go in one); Unbound sends each alone: (0, 0)."""
    if s.d is None:
        return 0, 0
    sent = s.d.stats()["udp_sent"]
    return sent["datagrams"], sent["sends"]


def _perf_counts(path: Path) -> dict[str, int]:
    counts = {}
    for line in path.read_text().splitlines():
        f = line.split(",")
        if len(f) > 2 and f[0].isdigit():
            event = f[2]
            counts[event.split("sys_enter_", 1)[1] if "sys_enter_" in event else "all"] = int(f[0])
    return counts


#: kernel functions whose share of the samples (with what they call) tells where the kernel's
#: time goes: the system calls, and inside the sends, the loopback's delivery of each reply
#: into the load generator's socket (softirq run by the sender, and the wake-up of its reader)
KERNEL_PARTS = {"send calls": ("__x64_sys_sendmmsg", "__x64_sys_sendto", "__x64_sys_sendmsg"),
                "receive calls": ("__x64_sys_recvmmsg", "__x64_sys_recvfrom",
                                  "__x64_sys_recvmsg"),
                "epoll_wait": ("__x64_sys_epoll_wait", "__x64_sys_epoll_pwait"),
                "of the sends, delivery into the client's socket": ("net_rx_action",)}


def _shares(data: Path) -> dict[str, float]:
    """Shares (%) of the CPU samples in ``data``: user space, the kernel, and the parts of
    KERNEL_PARTS (each with what it calls)."""
    report = subprocess.run(["perf", "report", "-i", str(data), "--children", "--sort", "sym",
                             "--stdio", "-g", "none"], capture_output=True, text=True,
                            timeout=600).stdout
    children: dict[str, float] = {}
    kernel = 0.0
    for line in report.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+([0-9.]+)%\s+\[(.)\]\s+(\S+)", line)
        if m:
            children[m.group(4)] = float(m.group(1))
            if m.group(3) == "k":
                kernel += float(m.group(2))
    shares = {"user space": 100 - kernel, "kernel": kernel}
    for part, symbols in KERNEL_PARTS.items():
        shares[part] = sum(children.get(sym, 0.0) for sym in symbols)
    return shares


def saturated(kind: str, lab: Lab, work: Path, datafile: Path, seconds: int) -> dict:
    """CPU per query, its split and system calls per query under the cached row's load."""
    s = mi._Server(kind, lab, work / f"{kind}-run", None, None)
    log, data = work / f"{kind}.perf", work / f"{kind}.perf.data"
    try:
        _pin(s.pid, SERVER_CORE)
        _dnsperf(s.port, datafile, "-n", "2")                     # warm the cache
        events = ["raw_syscalls:sys_enter"] + [f"syscalls:sys_enter_{c}" for c in SYSCALLS]
        perf = [subprocess.Popen(["perf", "stat", "-x", ",", "-o", str(log), "-e",
                                  ",".join(events), "-p", str(s.pid)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                subprocess.Popen(["perf", "record", "-e", "cpu-clock", "-F", "2999", "-g",
                                  "-o", str(data), "-p", str(s.pid)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        time.sleep(0.5)
        c0, sent0 = cpu_seconds(s.pid), _sent(s)
        done = _completed(_dnsperf(s.port, datafile, "-l", str(seconds), "-c", "4",
                                   "-q", "200"))
        cpu = cpu_seconds(s.pid) - c0
        sent = [a - b for a, b in zip(_sent(s), sent0)]
        for p in perf:
            p.send_signal(2)
        for p in perf:
            p.wait(timeout=120)
    finally:
        s.stop()
    calls = _perf_counts(log)
    total = calls.pop("all")
    named = {k: v for k, v in calls.items() if v}
    named["other"] = total - sum(named.values())
    receives = sum(calls.get(c, 0) for c in RECEIVES)
    return {"queries": done, "cpu_us": cpu / done * 1e6, "syscalls_per_query": total / done,
            "datagrams_per_send": sent[0] / sent[1] if sent[1] else 1.0,
            "queries_per_receive": done / receives if receives else float("nan"),
            "syscalls": {k: v / done for k, v in sorted(named.items(), key=lambda kv: -kv[1])},
            "shares": _shares(data)}


def _object_costs(path: Path) -> collections.Counter:
    """Instructions spent in each object file (self cost: a call's inclusive cost line,
    the one after ``calls=``, is not counted again), from a callgrind dump."""
    names: dict[str, str] = {}
    cost: collections.Counter = collections.Counter()
    ob, skip = "?", False
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("ob=", "cob=")):
            ref = line.split("=", 1)[1].strip()
            m = re.match(r"\((\d+)\)\s*(.*)", ref)
            if m and m.group(2):
                names[m.group(1)] = m.group(2)
            name = names.get(m.group(1), ref) if m else ref
            if line.startswith("ob="):
                ob = name
        elif line.startswith("calls="):
            skip = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if skip:
                skip = False
                continue
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                cost[ob] += int(parts[1])
    return cost


def _group(obj: str) -> str:
    base = os.path.basename(obj)
    if "/resolver/" in obj or "/corenet/" in obj:
        return "corenet's compiled modules"
    for key, label in (("python", "Python interpreter"), ("libc.so", "libc"),
                       ("ld-linux", "libc"), ("libevent", "libevent"), ("libssl", "OpenSSL"),
                       ("libcrypto", "OpenSSL"), ("unbound", "unbound"),
                       ("vgpreload", "valgrind's malloc")):
        if key in base:
            return label
    return base


def instructions(kind: str, lab: Lab, work: Path, datafile: Path, passes: int) -> dict:
    """User-space instructions per query, and by object. The first dump after callgrind's
    counters are zeroed also holds the cost of the calls that were open at that moment
    (the loop's own frames: about 1.4M instructions in corenet's, whatever the window), so
    a first window is dumped and thrown away, and the second is the one counted."""
    dump = work / f"{kind}.callgrind"
    s = mi._Server(kind, lab, work / f"{kind}-cg", str(dump), None)
    try:
        _dnsperf(s.port, datafile, "-n", "2", "-t", "30")
        subprocess.run(["callgrind_control", "-z", str(s.pid)], check=True, capture_output=True)
        for n in (1, passes):
            done = _completed(_dnsperf(s.port, datafile, "-n", str(n), "-q", "64",
                                       "-t", "30"))
            subprocess.run(["callgrind_control", "-d", str(s.pid)], check=True,
                           capture_output=True)
    finally:
        s.stop()
    part = Path(f"{dump}.2")
    groups: collections.Counter = collections.Counter()
    for obj, n in _object_costs(part).items():
        groups[_group(obj)] += n
    return {"instructions_per_query": mi._callgrind_totals(str(part))["Ir"] / done,
            "by_object": {k: v / done for k, v in groups.most_common()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-l", type=int, default=15, help="seconds of the saturating run")
    ap.add_argument("-n", type=int, default=100, help="passes of the names under callgrind")
    ap.add_argument("--no-callgrind", action="store_true")
    a = ap.parse_args()
    sigterm_as_interrupt()         # a terminated run still stops its lab and servers
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        datafile = work / "cached.txt"
        datafile.write_text("".join(f"{n} {t}\n" for n, t in CACHED_QUERIES))
        lab = Lab.start(work / "lab", port=53)
        try:
            for kind in ("corenet", "unbound"):
                r = saturated(kind, lab, work, datafile, a.l)
                print(f"{kind}: {r['queries']:,} queries, {r['cpu_us']:.2f} µs of CPU each;"
                      f" {r['syscalls_per_query']:.3f} system calls per query"
                      f" ({', '.join(f'{k} {v:.3f}' for k, v in r['syscalls'].items())}),"
                      f" {r['queries_per_receive']:.2f} queries per receive call,"
                      f" {r['datagrams_per_send']:.2f} answers per message sent; share of CPU"
                      f" samples: {', '.join(f'{k} {v:.1f}%' for k, v in r['shares'].items())}",
                      flush=True)
            if not a.no_callgrind:
                for kind in ("corenet", "unbound"):
                    r = instructions(kind, lab, work, datafile, a.n)
                    parts = ", ".join(f"{k} {v:,.0f}" for k, v in r["by_object"].items()
                                      if v >= 50)
                    print(f"{kind}: {r['instructions_per_query']:,.0f} user-space instructions"
                          f" per query ({parts})", flush=True)
        finally:
            lab.stop()


if __name__ == "__main__":
    main()
