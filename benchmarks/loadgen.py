"""What the throughput benchmarks share: the C load generator (dns_load.c) and its query
files, the CPU time of processes, and CPU caps that make a process stand for a core (or a
machine) of its own."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build_dns_load(directory: Path) -> str:
    """Compiles dns_load.c into ``directory``; the executable's path."""
    exe = Path(directory) / "dns_load"
    subprocess.run(["gcc", "-O2", "-o", str(exe), str(HERE / "dns_load.c")], check=True)
    return str(exe)


def wire_queries(path: Path, queries) -> Path:
    """``queries`` ((name, type) pairs) as dns_load reads them: each wire query after its
    2-byte length."""
    import dns.rdatatype

    from resolver.wire.codec import build_query, from_text
    with open(path, "wb") as f:
        for name, rdtype in queries:
            w = build_query(0, from_text(name), dns.rdatatype.from_text(rdtype), rd=True,
                            edns=False)
            f.write(len(w).to_bytes(2, "big") + w)
    return path


def dns_load(exe: str, host: str, port: int, qfile: Path, sockets: int, window: int,
             seconds: float, core: str | None = None) -> dict[str, float]:
    """One dns_load run: its figures (completed, lost, bad, drained, seconds, qps, cpu_s,
    avg_latency_us); ``core``: the CPU it runs on (taskset), else wherever the kernel puts
    it."""
    cmd = [exe, host, str(port), str(qfile), str(sockets), str(window), str(seconds)]
    if core is not None:
        cmd = ["taskset", "-c", core] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    assert r.returncode == 0, r.stderr + r.stdout
    words = r.stdout.split()
    return dict(zip(words[::2], map(float, words[1::2])))


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def cpu_seconds(pid: int, with_children: bool = False) -> float:
    """CPU seconds (user+system) of ``pid`` and, with ``with_children``, of its live
    children: the sum over their threads of /proc/PID/task/TID/schedstat (nanoseconds,
    where /proc's stat ticks are 10 ms, too coarse for a few hundred cache misses)."""
    pids = [pid]
    if with_children:
        try:
            pids += children(pid)
        except OSError:
            pass
    total = 0
    for p in pids:
        for tid in os.listdir(f"/proc/{p}/task"):
            try:
                with open(f"/proc/{p}/task/{tid}/schedstat") as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass                      # a thread that ended meanwhile
    return total / 1e9


CGROUP_V1_CPU = Path("/sys/fs/cgroup/cpu")     # cgroup v1's cpu controller, where mounted
CGROUP_V2 = Path("/sys/fs/cgroup")             # the unified hierarchy, where it has cpu
PERIOD_US = 100000


class CoreShares:
    """Processes (or, with cgroup v1, threads) each put in a cgroup of its own with a CFS
    quota of ``share`` of a core every ``period_us``: a stand-in for a core, or a small
    machine, of their own (a short period keeps a capped process from stalling long).
    Uses cgroup v2's ``cpu.max`` where the unified hierarchy has the cpu controller, else
    v1's ``cpu.cfs_quota_us``."""

    def __init__(self, share: float, period_us: int = PERIOD_US) -> None:
        self.share, self.period_us = share, period_us
        self.dirs: list[Path] = []

    @staticmethod
    def _v2() -> bool:
        try:
            return "cpu" in (CGROUP_V2 / "cgroup.controllers").read_text().split()
        except OSError:
            return False

    @staticmethod
    def _v1() -> bool:
        return os.access(CGROUP_V1_CPU, os.W_OK) and (CGROUP_V1_CPU / "cpu.cfs_quota_us").exists()

    @classmethod
    def available(cls, threads: bool = False) -> bool:
        """Whether caps can be set here (on threads, only with cgroup v1)."""
        return cls._v1() or (not threads and os.access(CGROUP_V2, os.W_OK) and cls._v2())

    def cap(self, task: int, whole_process: bool = True) -> None:
        quota, period = int(self.share * self.period_us), self.period_us
        name = f"corenet-bench-{os.getpid()}-{len(self.dirs)}"
        if self._v1():
            d = CGROUP_V1_CPU / name
            d.mkdir()
            self.dirs.append(d)
            (d / "cpu.cfs_period_us").write_text(str(period))
            (d / "cpu.cfs_quota_us").write_text(str(quota))
            (d / ("cgroup.procs" if whole_process else "tasks")).write_text(str(task))
            return
        if not whole_process:
            raise OSError("cgroup v2 caps whole processes only")
        control = CGROUP_V2 / "cgroup.subtree_control"
        if "cpu" not in control.read_text().split():
            control.write_text("+cpu")
        d = CGROUP_V2 / name
        d.mkdir()
        self.dirs.append(d)
        (d / "cpu.max").write_text(f"{quota} {period}")
        (d / "cgroup.procs").write_text(str(task))

    def release(self) -> None:
        """Moves what is left in the caps back to the root and removes them."""
        for d in self.dirs:
            v1 = d.parent == CGROUP_V1_CPU
            members = d / ("tasks" if v1 else "cgroup.procs")
            for task in members.read_text().split():
                try:
                    (d.parent / members.name).write_text(task)
                except OSError:
                    pass                                           # it exited meanwhile
            d.rmdir()
        self.dirs = []
