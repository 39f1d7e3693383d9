"""What a cache miss costs corenet-resolver and Unbound, in figures that do not depend on the
machine's load: user-space instructions per miss (callgrind) and system calls per miss
(strace -c), each server alone over the same NSD lab (on port 53, where Unbound asks).

Each server starts fresh, resolves one name of ``bulk.net.`` (so the path to the zone is
known), then is asked ``-n`` new names of that zone with dnsperf (``-q 1``: one at a time,
``--burst``: 20 outstanding; ``--tcp``: over one TCP connection). Only those queries are
counted: callgrind's counters are zeroed before and dumped after them, strace is attached
for them alone. One worker / one thread, validation off on both sides (the lab is
unsigned), ``ip-ratelimit`` off.

``--dnssec`` runs both servers validating over the signed lab of benchmarks/test_dnssec.py
(``tests/resolver/dnssec_lab.py``, its root's DS as the trust anchor): the names are new
secure names of ``bench.net.`` (ECDSA P-256, one RRSIG each), asked with DO set; the warm-up
query loads the chain's keys and checks that the answer is authenticated (AD).

``--zones`` asks instead for ``www`` of zones the server has not seen (``zNNN.org.`` of the
lab, 99 after the warm-up's): each miss is a referral from the TLD and then the answer, two
upstream queries.

``--cache-sim`` has callgrind simulate the first-level caches too (``--cache-sim=yes``, the
host's sizes): the misses of a miss's instruction fetches and of its data reads and writes,
the lines a miss brings into the level-1 caches when it runs again. Slower (about twice).
``--d1 SIZE,ASSOC,LINE`` does so with a first-level data cache of that geometry instead of
the host's (callgrind's ``--D1``): run at a few sizes, how much data a miss works on.

``--cpu-split R`` measures instead, with no tool attached, the user and system CPU time of
a miss (the server's threads' clock ticks in /proc over ``-n`` misses, ``R`` rounds of a
fresh server each, alternating): where the time of the back-to-back row goes, the kernel's
part (system calls, wake-ups, the packets' way through the loopback) apart from the
process's own. The server, dnsperf and the lab's NSD are placed as in that row of
benchmarks/test_daemon.py: the server alone on one core, the others on the other, so that
every wake-up crosses cores. A quiet machine, as for any timing. (A sampling profiler is
no help here: ``perf record`` attached to the server, even at 2,000 samples a second, adds
about a third to its CPU a miss in this VM, and changes the split with it.)

    .venv/bin/python benchmarks/miss_instructions.py [-n 1000] [--burst] [--tcp]
        [--dnssec | --zones] [--no-callgrind] [--no-strace] [--cache-sim] [--d1 S,A,L]
        [--cpu-split R] [--keep DIR]

Needs valgrind, strace, dnsperf, nsd and unbound, and port 53 free on the lab's addresses.
BENCHMARKS.md ("Where a miss goes") reports its figures.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests" / "resolver"), str(HERE.parent / "tests")]

from daemon_proc import Daemon  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dnssec_lab  # noqa: E402
from dnslab import Lab, bulk_names, many_zone_names  # noqa: E402
from dnslab.unbound import launch, server_lines  # noqa: E402
from loadgen import cpu_seconds  # noqa: E402
from ports import pick_port  # noqa: E402
from procs import sigterm_as_interrupt  # noqa: E402
from procs import stop as stop_process  # noqa: E402
from test_daemon import LOAD_CORE, SERVER_CORE, TWO_CORES, _authorities_on, _pin  # noqa: E402

UNBOUND_EXTRA = ["  msg-cache-size: 64m", "  rrset-cache-size: 64m", "  prefetch: no",
                 "  ratelimit: 0", "  ip-ratelimit: 0", "  so-rcvbuf: 4m",
                 "  qname-minimisation: yes"]


def _dnsperf(port: int, names: list[str], path: Path, outstanding: int, do: bool,
             mode: str = "udp", core: str | None = None) -> int:
    path.write_text("".join(f"{n} A\n" for n in names))
    r = subprocess.run([*(("taskset", "-c", core) if core else ()),
                        "dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(path), "-n",
                        "1", "-q", str(outstanding), "-t", "30", "-m", mode,
                        *(["-D"] if do else [])],
                       capture_output=True, text=True, timeout=600)
    m = re.search(r"Queries completed:\s+(\d+)", r.stdout)
    if r.returncode != 0 or m is None:
        raise RuntimeError(f"dnsperf failed:\n{r.stdout}{r.stderr}")
    return int(m.group(1))


class _Server:
    """corenet-resolver or Unbound over ``lab``, optionally under callgrind; validating
    with the trust anchor file ``anchor`` when given."""

    def __init__(self, kind: str, lab: Lab, work: Path, callgrind_out: str | None,
                 anchor: Path | None, cache_sim: tuple[str, ...] = ()) -> None:
        if kind not in ("corenet", "unbound"):
            raise ValueError(f"kind is 'corenet' or 'unbound', not {kind!r}")
        self.kind = kind
        wrap = (("valgrind", "--tool=callgrind", "--dump-instr=yes",
                 *cache_sim,
                 f"--callgrind-out-file={callgrind_out}") if callgrind_out else ())
        if kind == "corenet":
            trust = ("--trust-anchor", str(anchor)) if anchor else ()
            self.d = Daemon(work, lab, "--no-ipv6", "--ip-ratelimit", "0", *trust,
                            metrics=False, wrap=wrap).start(timeout=600)
            self.pid, self.port, self.proc = self.d.pid, self.d.port, None
        else:
            work.mkdir(parents=True, exist_ok=True)
            self.port = pick_port(["127.0.0.1"])
            lines = [f"  interface: 127.0.0.1@{self.port}", f"  port: {self.port}",
                     *server_lines(work, lab, 1), *UNBOUND_EXTRA]
            if anchor:
                lines += ['  module-config: "validator iterator"',
                          f'  trust-anchor-file: "{anchor}"']
            self.proc = launch(work, lines, "127.0.0.1", self.port, timeout=600,
                               wrap=wrap)
            self.pid, self.d = self.proc.pid, None

    def stop(self) -> None:
        if self.d is not None:
            self.d.stop(timeout=120)
        else:
            stop_process(self.proc, 120, group=True)


def _callgrind_totals(path: str) -> dict[str, int]:
    """Each event's count over the dump's counted part (its ``summary`` or ``totals`` line),
    by callgrind's name (``Ir``: instructions; with the cache simulation ``I1mr``, ``D1mr``,
    ``D1mw``...)."""
    events: list[str] = []
    for line in Path(path).read_text().splitlines():
        if line.startswith("events:"):
            events = line.split()[1:]
        elif line.startswith(("summary:", "totals:")):
            return dict(zip(events, (int(x) for x in line.split()[1:])))
    raise RuntimeError(f"no totals in {path}")


def _code_footprint(path: str) -> tuple[int, int]:
    """The distinct 64-byte lines and 4 KiB pages of code the dump's counted part executed
    (``--dump-instr=yes``: a cost line's first position is an instruction's offset in its
    object, absolute, relative to the line before, or the same)."""
    objects: dict[str, str] = {}
    ob, addr, seen = "?", 0, set()
    for line in Path(path).read_text(errors="replace").splitlines():
        if line.startswith("ob="):
            m = re.match(r"\((\d+)\)\s*(.*)", line[3:].strip())
            if m and m.group(2):
                objects[m.group(1)] = m.group(2)
            ob = objects.get(m.group(1), line) if m else line[3:]
            continue
        first = line.split(" ", 1)[0]
        if not first or not (first[0].isdigit() or first[0] in "+-*"):
            continue
        if first[0] in "+-":
            step = int(first[1:], 0)
            addr += step if first[0] == "+" else -step
        elif first != "*":
            addr = int(first, 0)
        seen.add((ob, addr >> 6))
    return len(seen), len({(o, a >> 6) for o, a in seen})


def _warm(port: int, name: str, anchor: Path | None, work: Path) -> None:
    """The path to the names' zone (and with ``anchor`` its chain of keys) loaded by one of
    them; validating, its answer must be authenticated."""
    if anchor is None:
        _dnsperf(port, [name], work / "warm.txt", 1, False)
        return
    r = dns.query.udp(dns.message.make_query(name, "A", want_dnssec=True), "127.0.0.1",
                      port=port, timeout=30)
    if r.rcode() != 0 or not r.flags & dns.flags.AD:
        raise RuntimeError(f"{name} is not answered as secure:\n{r}")


def _cpu_ticks(pid: int) -> tuple[int, int]:
    """The user and system clock ticks of every thread of process ``pid`` so far."""
    user = system = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    return user, system


def cpu_split(kind: str, lab: Lab, work: Path, names: list[str], outstanding: int,
              anchor: Path | None, rnd: int,
              mode: str = "udp") -> tuple[int, int, int, float]:
    """User and system clock ticks of ``kind`` over ``names[1:]`` (a fresh server, warmed
    by ``names[0]``, then placed as the back-to-back row places it), the misses counted
    and its CPU seconds (schedstat: exact, where a tick is 10 ms)."""
    s = _Server(kind, lab, work / f"{kind}-cpu{rnd}", None, anchor)
    try:
        _warm(s.port, names[0], anchor, work)
        _pin(s.pid, SERVER_CORE)
        with _authorities_on(lab, LOAD_CORE):
            user, system, cpu = *_cpu_ticks(s.pid), cpu_seconds(s.pid)
            done = _dnsperf(s.port, names[1:], work / "q.txt", outstanding,
                            anchor is not None, mode, LOAD_CORE if TWO_CORES else None)
            user2, system2, cpu2 = *_cpu_ticks(s.pid), cpu_seconds(s.pid)
    finally:
        s.stop()
    return user2 - user, system2 - system, done, cpu2 - cpu


def measure(kind: str, lab: Lab, work: Path, names: list[str], outstanding: int,
            callgrind: bool, strace: bool, anchor: Path | None = None,
            cache_sim: tuple[str, ...] = (), mode: str = "udp") -> dict:
    out: dict = {}
    do = anchor is not None
    if callgrind:
        dump = str(work / f"{kind}.callgrind")
        s = _Server(kind, lab, work / f"{kind}-cg", dump, anchor, cache_sim)
        try:
            _warm(s.port, names[0], anchor, work)
            subprocess.run(["callgrind_control", "-z", str(s.pid)], check=True,
                           capture_output=True)
            done = _dnsperf(s.port, names[1:], work / "q.txt", outstanding, do, mode)
            subprocess.run(["callgrind_control", "-d", str(s.pid)], check=True,
                           capture_output=True)
            totals = _callgrind_totals(dump + ".1")
            out["instructions_per_miss"] = totals["Ir"] / done
            if cache_sim:
                out["data_accesses"] = (totals["Dr"] + totals["Dw"]) / done
                out["I1_misses"] = totals["I1mr"] / done
                out["D1_misses"] = (totals["D1mr"] + totals["D1mw"]) / done
            out["code_lines"], out["code_pages"] = _code_footprint(dump + ".1")
        finally:
            s.stop()
    if strace:
        s = _Server(kind, lab, work / f"{kind}-st", None, anchor)
        log = work / f"{kind}.strace"
        try:
            _warm(s.port, names[0], anchor, work)
            st = subprocess.Popen(["strace", "-c", "-f", "-o", str(log), "-p", str(s.pid)],
                                  stderr=subprocess.DEVNULL)
            time.sleep(1.0)             # attached to every thread before the first query
            done = _dnsperf(s.port, names[1:], work / "q.txt", outstanding, do, mode)
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
    ap.add_argument("--tcp", action="store_true",
                    help="the counted queries over TCP, on one connection (dnsperf -m tcp)")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--cache-sim", action="store_true",
                    help="also the level-1 cache misses of a miss (callgrind --cache-sim)")
    ap.add_argument("--d1", metavar="S,A,L",
                    help="--cache-sim with this first-level data cache: bytes, ways, line "
                         "bytes (callgrind --D1), not the host's")
    ap.add_argument("--cpu-split", type=int, metavar="R", default=0,
                    help="user and system CPU per miss, no tool attached, over R rounds")
    ap.add_argument("--dnssec", action="store_true",
                    help="validating, over the signed lab (at most "
                         f"{dnssec_lab.BENCH_NAMES - 1} misses)")
    ap.add_argument("--zones", action="store_true",
                    help=f"new zones, not new names of a known one (at most "
                         f"{len(many_zone_names()) - 1} misses)")
    ap.add_argument("--keep", metavar="DIR", type=Path,
                    help="work in DIR and leave the callgrind dumps there (callgrind_annotate)")
    a = ap.parse_args()
    # A fixed hash seed for the daemon (started with this environment): with a random one,
    # how far the dict look-ups of server addresses probe past a collision moves a miss by
    # several hundred instructions from one run to the next.
    os.environ["PYTHONHASHSEED"] = "0"
    cache_sim = (("--cache-sim=yes",) if a.cache_sim or a.d1 else ()) + \
        ((f"--D1={a.d1}",) if a.d1 else ())
    if a.dnssec and a.zones:
        ap.error("--dnssec and --zones are two different labs: one of them")
    sigterm_as_interrupt()         # a terminated run still stops its lab and servers
    if a.keep:
        a.keep.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(a.keep)) if a.keep
          else tempfile.TemporaryDirectory()) as tmp:
        anchor = None
        if a.dnssec:
            zones, servers, anchor = dnssec_lab.build(Path(tmp) / "keys")
            lab = Lab.start(Path(tmp) / "lab", port=53, zone_texts=zones, servers=servers)
            names = dnssec_lab.bench_names()[: a.n + 1]
        else:
            lab = Lab.start(Path(tmp) / "lab", port=53)
            names = [n for n, _ in (many_zone_names() if a.zones else bulk_names())][: a.n + 1]
        try:
            if a.cpu_split:
                tick_us = 1e6 / os.sysconf("SC_CLK_TCK")
                total = {"corenet": [0, 0, 0, 0.0], "unbound": [0, 0, 0, 0.0]}
                for rnd in range(a.cpu_split):
                    for kind in total:
                        got = cpu_split(kind, lab, Path(tmp), names, 20 if a.burst else 1,
                                        anchor, rnd, "tcp" if a.tcp else "udp")
                        total[kind] = [t + g for t, g in zip(total[kind], got)]
                for kind, (user, system, done, cpu) in total.items():
                    print(f"{kind}: {done} misses, user {user * tick_us / done:.1f} us, "
                          f"system {system * tick_us / done:.1f} us a miss (CPU "
                          f"{cpu / done * 1e6:.1f} us)", flush=True)
                return
            for kind in ("corenet", "unbound"):
                r = measure(kind, lab, Path(tmp), names, 20 if a.burst else 1,
                            not a.no_callgrind, not a.no_strace, anchor, cache_sim,
                            "tcp" if a.tcp else "udp")
                figures = ", ".join(
                    f"{k} {v:,.0f}" if k.startswith("instr") else
                    f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in r.items())
                print(f"{kind}: {figures}", flush=True)
        finally:
            lab.stop()


if __name__ == "__main__":
    main()
