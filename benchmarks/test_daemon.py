"""corenet-resolver against Unbound, in one run, over the same NSD lab (on port 53, where
Unbound asks), loaded by dnsperf from Debian with the same query files.

- cached: a warm cache, dnsperf for a fixed time; raw queries/s and queries per CPU-second
  of the server process (user+system from /proc over the run); the same with a response
  policy zone of 10,000 rules (QNAME rules, and a client-IP, an NSDNAME and an NSIP rule)
  that none of the names asked, their client or their zones' servers meets, on both
  servers (Unbound's ``rpz:`` clause, the same zone file), next to both without it; and
  saturated: ``dns_load.c`` (a C generator) on the other core keeps both servers busy all
  the time, so the CPU per query holds no idle wake-ups (dnsperf cannot keep a quicker
  server busy);
- cold: both servers fresh, a few hundred distinct names (100 of them in zones never seen)
  asked one at a time: latency p50/p99 and CPU per cache miss; then the rest of a known
  zone's names with 50 outstanding: CPU per miss of a busy server; then the first names
  again, of two fresh servers, one at a time back to back. The servers take turns chunk by
  chunk, so the machine's slow spells fall on both;
- workers: ``--workers 2`` next to one worker, and Unbound's two threads next to one, all
  unpinned and driven by ``dns_load.c`` (a C generator), with each worker capped at a share
  of a core (a cgroup) and on the whole machine;
- reload: a steady stream of cached names, p50/p99/max latency without reloads, during
  reloads once a second (corenet-resolver and Unbound) and back to back (corenet-resolver),
  on a config of an operator's size (``reload_shape``).

Elsewhere the server is pinned to core 0 and dnsperf to core 1 (taskset) when there are two
cores; in the cold rows the lab's authorities are held on core 1 too (``_authorities_on``).
Figures go to ``extra_info`` (ratios corenet/Unbound included) and to the terminal.

``CORENET_BENCH_SHORT=1``: seconds, not minutes. Run: ``pytest benchmarks/test_daemon.py``.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / d) for d in ("resolver", "")]

from daemon_proc import Daemon  # noqa: E402
from dnslab import Lab, bulk_names, many_zone_names  # noqa: E402
from dnslab.unbound import Unbound, lab_on_port_53  # noqa: E402
from loadgen import CoreShares, build_dns_load  # noqa: E402
from loadgen import children as _children  # noqa: E402
from loadgen import cpu_seconds as _cpu  # noqa: E402
from loadgen import dns_load as dns_load_run  # noqa: E402
from loadgen import wire_queries as _wire_queries  # noqa: E402

SHORT = bool(os.environ.get("CORENET_BENCH_SHORT"))
SECONDS = 2 if SHORT else 15
COLD_NAMES = 60 if SHORT else 300
# The lab's Unbound runs with do-ip6: no; ours does the same (the lab has no AAAA glue, so
# this changes nothing today, but keeps the two doing the same work if it ever gets some).
NO_IPV6 = ("--no-ipv6",)
# dnsperf is one client asking thousands of new names a second on purpose: the per-client
# miss budget (ip-ratelimit, off in Unbound by default) is turned off for it.
NO_RATELIMIT = ("--ip-ratelimit", "0")
# The daemon asks for a 4 MiB UDP receive buffer (resolver/server.py); Unbound gets the same,
# or its default (about 200 KiB) drops part of each burst and it answers fewer queries.
UNBOUND_RCVBUF = "  so-rcvbuf: 4m"
COLD_CHUNKS = 2 if SHORT else 6       # turns each server takes (see test_cold_names_vs_unbound)
BURST_CHUNKS = 2 if SHORT else 4
DNSPERF = shutil.which("dnsperf")
TWO_CORES = (os.cpu_count() or 1) >= 2
SERVER_CORE, LOAD_CORE = "0", "1"

CACHED_QUERIES = [
    ("www.example.com", "A"), ("www.example.net", "A"), ("example.com", "MX"),
    ("example.com", "TXT"), ("www.example.com", "AAAA"), ("_sip._udp.example.com", "SRV"),
    ("alias.example.com", "A"), ("nope.example.com", "A"), ("v4only.example.com", "AAAA"),
] + [(f"h{i:03d}.bulk.net", "A") for i in range(50)]


@pytest.fixture(scope="module")
def lab53(tmp_path_factory):
    if DNSPERF is None:
        pytest.skip("dnsperf (Debian package 'dnsperf') is not installed")
    lab = lab_on_port_53(tmp_path_factory.mktemp("lab53"))
    yield lab
    lab.stop()


def _pin(pid: int, cores: str = SERVER_CORE) -> None:
    """Every thread of ``pid`` held on ``cores`` (a taskset list), when there are two cores."""
    if TWO_CORES:
        subprocess.run(["taskset", "-a", "-p", "-c", cores, str(pid)],
                       capture_output=True, check=False)


@contextlib.contextmanager
def _authorities_on(lab: Lab, core: str):
    """The lab's NSD processes held on ``core`` for the block, then given every core back.
    They stand for servers across the network, whose replies a resolver waits for asleep;
    left to the scheduler, an authority is woken on the resolver's own core as often as not,
    preempts the resolver at its send and answers before it sleeps, and which of the two
    happens changes from one chunk to the next, and with it a server's CPU per miss
    (Unbound's by about 15% in this lab)."""
    def tree(pid: int) -> list[int]:     # NSD forks its main process, which forks servers
        return [pid, *(p for child in _children(pid) for p in tree(child))]

    pids = [p for srv in lab.servers if srv.proc is not None for p in tree(srv.proc.pid)]
    for pid in pids:
        _pin(pid, core)
    try:
        yield
    finally:
        for pid in pids:
            _pin(pid, f"0-{(os.cpu_count() or 1) - 1}")


def _dnsperf(port: int, datafile: Path, *args: str) -> str:
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", str(datafile), *args]
    if TWO_CORES:
        cmd = ["taskset", "-c", LOAD_CORE] + cmd
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=SECONDS * 4 + 120)
    assert r.returncode == 0, r.stderr + r.stdout
    return r.stdout


def _field(text: str, name: str) -> float:
    m = re.search(rf"{re.escape(name)}:\s+([0-9.]+)", text)
    assert m, f"no {name!r} in dnsperf output:\n{text}"
    return float(m.group(1))


class Servers:
    """Unbound (num-threads: 1) and corenet-resolver (1 worker) over the same lab."""

    def __init__(self, lab: Lab, tmp: Path, *daemon_args: str, ub_extra: str = "") -> None:
        self.ub = Unbound.start(tmp / "unbound", lab, threads=1, extra="\n".join([
            "  msg-cache-size: 64m", "  rrset-cache-size: 64m", "  prefetch: no",
            "  ratelimit: 0", "  ip-ratelimit: 0", UNBOUND_RCVBUF, ub_extra]))
        try:
            self.d = Daemon(tmp / "corenet", lab, *NO_IPV6, *NO_RATELIMIT, *daemon_args,
                            metrics=False).start()
        except BaseException:           # an interrupt too: Unbound is not left running
            self.ub.stop()
            raise
        self.ub_pid = self.ub.proc.pid
        _pin(self.ub_pid)
        _pin(self.d.pid)

    def targets(self):
        return [("corenet-resolver", self.d.port, self.d.pid), ("unbound", self.ub.port,
                                                               self.ub_pid)]

    def stop(self) -> None:
        self.d.stop()
        self.ub.stop()


def _cached_run(port: int, pid: int, datafile: Path, children: bool = False) -> dict:
    _dnsperf(port, datafile, "-n", "2")                         # warm the cache
    c0 = _cpu(pid, children)
    out = _dnsperf(port, datafile, "-l", str(SECONDS), "-c", "4", "-q", "200")
    cpu = _cpu(pid, children) - c0
    done = _field(out, "Queries completed")
    return {"qps": _field(out, "Queries per second"), "completed": done,
            "lost": _field(out, "Queries lost"), "cpu_s": cpu,
            "queries_per_cpu_s": done / cpu if cpu else float("inf"),
            "us_cpu_per_query": cpu / done * 1e6 if done else float("nan"),
            "avg_latency_ms": _field(out, "Average Latency (s)") * 1000}


def _report(title: str, results: dict, keys: list[str]) -> dict:
    ours, theirs = results["corenet-resolver"], results["unbound"]
    ratios = {k: ours[k] / theirs[k] for k in keys if theirs.get(k)}
    print(f"\n[{title}] corenet-resolver {ours}\n[{title}] unbound {theirs}\n"
          f"[{title}] ratios corenet/unbound {ratios}")
    return ratios


@pytest.mark.benchmark(group="daemon-cached")
def test_cached_queries_vs_unbound(benchmark, lab53, tmp_path):
    datafile = tmp_path / "cached.txt"
    datafile.write_text("".join(f"{n} {t}\n" for n, t in CACHED_QUERIES))
    s = Servers(lab53, tmp_path)
    results = {}
    try:
        for name, port, pid in s.targets():
            if name == "corenet-resolver":
                results[name] = benchmark.pedantic(_cached_run, args=(port, pid, datafile),
                                                   rounds=1, iterations=1)
            else:
                results[name] = _cached_run(port, pid, datafile)
    finally:
        s.stop()
    ratios = _report("cached", results, ["qps", "queries_per_cpu_s", "avg_latency_ms"])
    benchmark.extra_info.update({"corenet": results["corenet-resolver"],
                                 "unbound": results["unbound"], "ratios": ratios})
    assert results["corenet-resolver"]["lost"] <= results["corenet-resolver"]["completed"] / 100


#: The policy zone of the RPZ row: exact and wildcard QNAME rules, none of them on a name
#: CACHED_QUERIES asks (or on a CNAME target of its answers), and one rule of each kind the
#: query's name and answer do not show: a client-IP rule on a network other than the load's
#: client (127.0.0.1), an NSDNAME and an NSIP rule on no server of the lab's zones (theirs
#: are on 127.0.0.0/8), so that the row measures a mixed zone as operators have them.
RPZ_RULES = 10_000
RPZ_ZONE = "rpz.bench."
RPZ_OTHER_RULES = ["24.0.2.0.192.rpz-client-ip CNAME rpz-drop.",
                   "ns.blocked-hoster.example.rpz-nsdname CNAME .",
                   "32.53.113.0.203.rpz-nsip CNAME ."]


def _rpz_zone(path: Path) -> Path:
    lines = ["$TTL 60", "@ SOA ns.rpz.bench. hostmaster.rpz.bench. 1 3600 600 86400 30",
             "@ NS ns.rpz.bench."]
    lines += [f"blocked{i:05d}.ads.example.org CNAME ."
              for i in range(RPZ_RULES * 9 // 10 - len(RPZ_OTHER_RULES))]
    lines += [f"*.track{i:04d}.example.org CNAME ." for i in range(RPZ_RULES // 10)]
    lines += RPZ_OTHER_RULES
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.benchmark(group="daemon-cached")
def test_cached_queries_with_rpz_vs_unbound(benchmark, lab53, tmp_path):
    """The cached row again with a 10,000-rule policy zone on both servers (QNAME rules and
    one client-IP, NSDNAME and NSIP rule each), and both without it in the same run: what
    the policy costs a cached answer no rule touches."""
    datafile = tmp_path / "cached.txt"
    datafile.write_text("".join(f"{n} {t}\n" for n, t in CACHED_QUERIES))
    zone = _rpz_zone(tmp_path / "bench.rpz")
    conf = tmp_path / "rpz.toml"
    conf.write_text(f'[[rpz]]\nname = "{RPZ_ZONE}"\nzonefile = "{zone}"\n')
    ub_rpz = "\n".join(['  module-config: "respip iterator"', "rpz:",
                        f"  name: {RPZ_ZONE}", f'  zonefile: "{zone}"'])
    results: dict = {}
    for label, args, extra in (("", (), ""), (" rpz", ("--config", str(conf)), ub_rpz)):
        s = Servers(lab53, tmp_path / f"servers{label.strip()}", *args, ub_extra=extra)
        try:
            for name, port, pid in s.targets():
                if label:                       # the policy is on: a rule's name is blocked
                    blocked = _rcode_of(port, "blocked00042.ads.example.org")
                    assert blocked == "NXDOMAIN", (name, blocked)
                if name == "corenet-resolver" and label:
                    results[name + label] = benchmark.pedantic(
                        _cached_run, args=(port, pid, datafile), rounds=1, iterations=1)
                    # the cached names left by the door's hit path, not through the policy
                    # (each of which would start a miss on the engine)
                    started = s.d.stats()["requestlist"]["inserts"]
                    assert started < results[name + label]["completed"] / 100, started
                else:
                    results[name + label] = _cached_run(port, pid, datafile)
        finally:
            s.stop()
    keys = ["qps", "queries_per_cpu_s", "avg_latency_ms"]
    ratios = _report("cached rpz", {"corenet-resolver": results["corenet-resolver rpz"],
                                    "unbound": results["unbound rpz"]}, keys)
    with_policy = {name: {k: results[f"{name} rpz"][k] / results[name][k] for k in keys
                          if results[name].get(k)} for name in ("corenet-resolver", "unbound")}
    print(f"[cached rpz] with/without the policy {with_policy}")
    benchmark.extra_info.update({"rules": RPZ_RULES, "corenet": results["corenet-resolver rpz"],
                                 "unbound": results["unbound rpz"], "ratios": ratios,
                                 "without_rpz": {"corenet": results["corenet-resolver"],
                                                 "unbound": results["unbound"]},
                                 "with_over_without": with_policy})
    ours = results["corenet-resolver rpz"]
    assert ours["lost"] <= ours["completed"] / 100


def _rcode_of(port: int, name: str) -> str:
    """The rcode the server at ``port`` gives to ``name`` A (dnspython, one UDP query)."""
    import dns.message
    import dns.query
    import dns.rcode
    r = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5)
    return dns.rcode.to_text(r.rcode())


def _percentile(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def _one_at_a_time(port: int, pid: int, datafile: Path, n: int) -> tuple[list, list, float]:
    """Latencies, rcodes and server CPU seconds for ``datafile`` asked one name at a time.
    dnsperf's ``-v`` (a line per answer, for the latencies and rcodes) paces it: about 45 ms
    pass between an answer and the next query, so the server is idle between misses."""
    c0 = _cpu(pid)
    out = _dnsperf(port, datafile, "-n", "1", "-q", "1", "-v", "-t", "10")
    cpu = _cpu(pid) - c0
    lat = [float(m.group(2)) for m in re.finditer(r"^> (\S+) \S+ \S+ ([0-9.]+)$", out, re.M)]
    rcodes = [m.group(1) for m in re.finditer(r"^> (\S+) ", out, re.M)]
    assert len(lat) == n, out[-2000:]
    return lat, rcodes, cpu


def _back_to_back(port: int, pid: int, datafile: Path, n: int) -> float:
    """Server CPU seconds for ``datafile`` asked one name at a time, each query sent as the
    answer before it arrives (dnsperf without ``-v``)."""
    c0 = _cpu(pid)
    out = _dnsperf(port, datafile, "-n", "1", "-q", "1", "-t", "10")
    cpu = _cpu(pid) - c0
    assert _field(out, "Queries completed") == n, out
    return cpu


def _burst(port: int, pid: int, datafile: Path, n: int) -> float:
    """Server CPU seconds for ``datafile`` asked with 50 queries outstanding."""
    c0 = _cpu(pid)
    out = _dnsperf(port, datafile, "-n", "1", "-q", "50", "-t", "10")
    cpu = _cpu(pid) - c0
    assert _field(out, "Queries completed") == n, out
    return cpu


@pytest.mark.benchmark(group="daemon-cold")
def test_cold_names_vs_unbound(benchmark, lab53, tmp_path):
    """Both servers start with empty caches and take turns: the names are cut into chunks
    of the same mix (new zones and a known zone), each chunk is asked of one server then of
    the other (the order alternating), so a slow spell of this shared machine falls on both
    and not on whichever ran second. Each server sees every name once, in the same order.
    Asked one at a time through dnsperf's ``-v`` the servers sleep between misses, so two
    fresh servers are then asked the same chunks back to back: a miss's CPU without the
    idle wake-up."""
    new_zones = [n for n, _ in many_zone_names()][:COLD_NAMES // 3]
    bulk = [n for n, _ in bulk_names()]
    names = new_zones + bulk[:COLD_NAMES - len(new_zones)]
    rest = bulk[COLD_NAMES - len(new_zones):]
    chunks = [names[i::COLD_CHUNKS] for i in range(COLD_CHUNKS)]
    bursts = [rest[i::BURST_CHUNKS] for i in range(BURST_CHUNKS)]
    acc = {w: {"lat": [], "rcodes": [], "cpu": [], "burst_cpu": [], "b2b_cpu": []}
           for w in ("corenet-resolver", "unbound")}

    def turns(s: Servers, what: str, parts: list[list[str]]) -> None:
        targets = {n: (p, i) for n, p, i in s.targets()}
        for k, part in enumerate(parts):
            datafile = tmp_path / f"{what}{k}.txt"
            datafile.write_text("".join(f"{n} A\n" for n in part))
            order = list(targets) if k % 2 == 0 else list(reversed(targets))
            for which in order:
                port, pid = targets[which]
                a = acc[which]
                if what == "one":
                    lat, rcodes, cpu = _one_at_a_time(port, pid, datafile, len(part))
                    a["lat"] += lat
                    a["rcodes"] += rcodes
                    a["cpu"].append(cpu / len(part))
                elif what == "burst":
                    a["burst_cpu"].append(_burst(port, pid, datafile, len(part)) / len(part))
                else:
                    a["b2b_cpu"].append(_back_to_back(port, pid, datafile, len(part))
                                        / len(part))

    def run():
        for what, parts, where in (("one", chunks, "cold"), ("b2b", chunks, "cold-again")):
            s = Servers(lab53, tmp_path / where)
            try:
                turns(s, what, parts)
                if what == "one":
                    turns(s, "burst", bursts)
            finally:
                s.stop()

    with _authorities_on(lab53, LOAD_CORE):
        benchmark.pedantic(run, rounds=1, iterations=1)
    results = {}
    for which, a in acc.items():
        lat, n = a["lat"], len(names)
        results[which] = {
            "names": n, "noerror": a["rcodes"].count("NOERROR"),
            "p50_ms": _percentile(lat, 50) * 1000, "p99_ms": _percentile(lat, 99) * 1000,
            "mean_ms": sum(lat) / n * 1000, "max_ms": max(lat) * 1000,
            "us_cpu_per_miss": sum(a["cpu"]) / len(a["cpu"]) * 1e6,
            "us_cpu_per_miss_back_to_back": sum(a["b2b_cpu"]) / len(a["b2b_cpu"]) * 1e6,
            "us_cpu_per_miss_burst": sum(a["burst_cpu"]) / len(a["burst_cpu"]) * 1e6}
    ratios = _report("cold", results, ["p50_ms", "p99_ms", "us_cpu_per_miss",
                                       "us_cpu_per_miss_back_to_back", "us_cpu_per_miss_burst"])
    ours, theirs = acc["corenet-resolver"], acc["unbound"]
    fields = (("us_cpu_per_miss", "cpu"), ("us_cpu_per_miss_back_to_back", "b2b_cpu"),
              ("us_cpu_per_miss_burst", "burst_cpu"))
    per_chunk = {k: [round(o / t, 2) for o, t in zip(ours[f], theirs[f])] for k, f in fields}
    print(f"[cold] ratios chunk by chunk {per_chunk}")
    benchmark.extra_info.update({"corenet": results["corenet-resolver"],
                                 "unbound": results["unbound"], "ratios": ratios,
                                 "chunk_ratios": per_chunk})
    assert results["corenet-resolver"]["noerror"] == len(names)
    assert results["unbound"]["noerror"] == len(names)


LOAD_SOCKETS, LOAD_WINDOW = 16, 32     # dns_load: source ports (spread over the workers), in flight on each


@pytest.fixture(scope="module")
def dns_load(tmp_path_factory) -> str:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the C load generator (benchmarks/dns_load.c)")
    return build_dns_load(tmp_path_factory.mktemp("dns-load"))


def _load_run(exe: str, port: int, pid: int, qfile: Path, children: bool = False) -> dict:
    """dns_load for SECONDS against a warm cache: its figures, and the cores the server and
    the load generator kept busy."""
    def run(sockets: int, window: int, seconds: float, warm: bool = False) -> dict:
        f = dns_load_run(exe, "127.0.0.1", port, qfile, sockets, window, seconds)
        assert warm or f["bad"] == 0, f
        return f

    run(4, 4, 0.5, warm=True)                                   # warm the cache
    c0 = _cpu(pid, children)
    f = run(LOAD_SOCKETS, LOAD_WINDOW, SECONDS)
    cpu = _cpu(pid, children) - c0
    return {"qps": f["qps"], "completed": f["completed"], "lost": f["lost"],
            "server_cores": cpu / f["seconds"], "load_cores": f["cpu_s"] / f["seconds"],
            "avg_latency_ms": f["avg_latency_us"] / 1000}


#: The saturated cached row: dns_load's sockets and queries in flight on each (512 in all,
#: enough that neither server ever finds its socket empty), and the interleaved rounds.
SATURATED_SOCKETS, SATURATED_WINDOW = 16, 32
SATURATED_ROUNDS = 1 if SHORT else 3


@pytest.mark.benchmark(group="daemon-cached")
def test_cached_queries_saturated_vs_unbound(benchmark, lab53, dns_load, tmp_path):
    """The cached row with each server kept busy all the time: dns_load (C, pinned to the
    other core) keeps 512 queries in flight, so the CPU per query is the answer's own cost,
    without the sleeps and wake-ups of a server that outruns its load (dnsperf's ~160k
    queries/s leave a quicker server idle part of each second, and every wake-up costs).
    The servers take turns, round by round; figures per round and their medians."""
    if not TWO_CORES:
        pytest.skip("needs two cores: the server on one, the generator on the other")
    qfile = _wire_queries(tmp_path / "cached.bin", CACHED_QUERIES)
    s = Servers(lab53, tmp_path)
    rounds: dict[str, list[dict]] = {"corenet-resolver": [], "unbound": []}

    def one(port: int, pid: int) -> dict:
        dns_load_run(dns_load, "127.0.0.1", port, qfile, 4, 4, 0.5, LOAD_CORE)  # warm
        c0 = _cpu(pid)
        f = dns_load_run(dns_load, "127.0.0.1", port, qfile, SATURATED_SOCKETS,
                         SATURATED_WINDOW, SECONDS, LOAD_CORE)
        cpu = _cpu(pid) - c0
        assert f["bad"] == 0, f
        return {"qps": f["qps"], "completed": f["completed"], "lost": f["lost"],
                "server_busy": cpu / f["seconds"], "queries_per_cpu_s": f["completed"] / cpu,
                "us_cpu_per_query": cpu / f["completed"] * 1e6,
                "avg_latency_ms": f["avg_latency_us"] / 1000}

    def run() -> None:
        for _ in range(SATURATED_ROUNDS):
            for name, port, pid in s.targets():
                rounds[name].append(one(port, pid))

    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        s.stop()
    results = {name: {k: sorted(r[k] for r in rs)[len(rs) // 2] for k in rs[0]}
               for name, rs in rounds.items()}
    per_round = [round(o["queries_per_cpu_s"] / t["queries_per_cpu_s"], 2)
                 for o, t in zip(rounds["corenet-resolver"], rounds["unbound"])]
    ratios = _report("cached, saturated", results, ["queries_per_cpu_s", "qps", "server_busy"])
    print(f"[cached, saturated] queries per CPU-second, corenet/unbound round by round {per_round}")
    benchmark.extra_info.update({"corenet": results["corenet-resolver"],
                                 "unbound": results["unbound"], "ratios": ratios,
                                 "round_ratios": per_round})
    for name, rs in rounds.items():
        for r in rs:
            assert r["lost"] <= r["completed"] / 100, (name, r)


# What each worker (or Unbound thread) may use in the capped runs: a stand-in for a core of
# its own. On 2 cores the load generator needs most of the core the servers leave it, so two
# uncapped workers have no second core to scale onto; capped, one worker and two use at most
# 0.3 and 0.6 of a core, and the generator has room.
CORE_SHARE = 0.3


@pytest.mark.benchmark(group="daemon-workers")
def test_two_workers_next_to_one(benchmark, lab53, dns_load, tmp_path):
    """Raw queries/s with two workers and with one, and Unbound with two threads and one,
    nothing pinned, driven by dns_load (a C generator; dnsperf needs a whole core of two).
    Twice: with each worker (each Unbound thread) capped at CORE_SHARE of a core, where two
    have the room to show what a second core is worth, and on the whole machine, where the
    generator needs most of the core the servers leave it (see CORE_SHARE)."""
    qfile = _wire_queries(tmp_path / "cached.bin", CACHED_QUERIES)
    modes = (["capped"] if CoreShares.available(threads=True) else []) + ["whole"]
    results = {}

    def run():
        for mode in modes:
            for n in ("1", "2"):
                shares = CoreShares(CORE_SHARE)
                d = Daemon(tmp_path / f"{mode}-w{n}", lab53, *NO_IPV6, "--workers", n,
                           metrics=False).start(ready="ready" if n == "1" else
                                                f"ready: {n} workers")
                try:
                    if mode == "capped":
                        for w in ([d.pid] if n == "1" else _children(d.pid)):
                            shares.cap(w, whole_process=True)
                    results[f"{mode} corenet-{n}"] = _load_run(dns_load, d.port, d.pid, qfile,
                                                               children=n != "1")
                finally:
                    d.stop()
                    shares.release()
                ub = Unbound.start(tmp_path / f"{mode}-ub{n}", lab53, threads=int(n),
                                   extra="\n".join(["  prefetch: no", "  ratelimit: 0",
                                                    "  ip-ratelimit: 0", UNBOUND_RCVBUF]))
                try:
                    if mode == "capped":
                        for t in os.listdir(f"/proc/{ub.proc.pid}/task"):
                            shares.cap(int(t), whole_process=False)
                    results[f"{mode} unbound-{n}"] = _load_run(dns_load, ub.port, ub.proc.pid,
                                                               qfile)
                finally:
                    ub.stop()
                    shares.release()

    benchmark.pedantic(run, rounds=1, iterations=1)
    scaling = {f"{m} {k}": results[f"{m} {k}-2"]["qps"] / results[f"{m} {k}-1"]["qps"]
               for m in modes for k in ("corenet", "unbound")}
    for k, v in results.items():
        print(f"\n[workers] {k}: " + ", ".join(f"{f} {x:.3g}" for f, x in v.items()))
    print("[workers] queries/s, two over one: "
          + ", ".join(f"{k} {v:.2f}" for k, v in scaling.items()))
    benchmark.extra_info.update({"results": results, "qps_two_over_one": scaling,
                                 "core_share": CORE_SHARE})
    for k, v in results.items():
        assert v["lost"] <= v["completed"] / 100, (k, v)


WAKE_GAP = 0.04       # about the spacing of dnsperf -v -q 1 in the cold run (300 names in ~13 s)
WAKE_EXCHANGES = 20 if SHORT else 200
BURST_DATAGRAMS = 10_000 if SHORT else 100_000
BURST_IN_FLIGHT = 128


def _free_udp_port() -> int:
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _on_load_core():
    """The calling thread, and the threads it starts meanwhile, on the load core: a client
    on the server's core would wait there behind what the server runs beside it (a reload's
    reader), and its own wait would be counted as the server's."""
    before = os.sched_getaffinity(0)
    if TWO_CORES:
        os.sched_setaffinity(0, {int(LOAD_CORE)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def _echo_server(cmd: list[str], port: int):
    """Starts an echo server, pinned, and yields (its Popen, a client socket) once it echoes."""
    import socket
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        _pin(p.pid)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(2)
            deadline = time.monotonic() + 20
            while True:                       # up once it echoes
                try:
                    s.sendto(b"ping", ("127.0.0.1", port))
                    s.recv(100)
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"{cmd} did not answer"
                    time.sleep(0.1)
            yield p, s
    finally:
        p.kill()
        p.wait(10)


def _wake_cost(cmd: list[str], port: int) -> float:
    """CPU per exchange of an echo server asked one datagram every WAKE_GAP seconds."""
    with _echo_server(cmd, port) as (p, s):
        c0 = _cpu(p.pid)
        for _ in range(WAKE_EXCHANGES):
            s.sendto(b"x" * 40, ("127.0.0.1", port))
            assert s.recv(100) == b"x" * 40
            time.sleep(WAKE_GAP)
        return (_cpu(p.pid) - c0) / WAKE_EXCHANGES


def _burst_cost(cmd: list[str], port: int) -> float:
    """Server CPU per datagram of an echo server kept BURST_IN_FLIGHT datagrams busy for
    BURST_DATAGRAMS echoes (a datagram lost on the way is counted and replaced)."""
    import socket
    with _echo_server(cmd, port) as (p, s):
        s.settimeout(0.5)
        dest = ("127.0.0.1", port)
        payload = b"y" * 40
        c0 = _cpu(p.pid)
        sent = got = lost = 0
        for _ in range(BURST_IN_FLIGHT):
            s.sendto(payload, dest)
            sent += 1
        while got < BURST_DATAGRAMS:
            try:
                s.recv(100)
                got += 1
            except socket.timeout:
                lost += 1
                assert lost < BURST_DATAGRAMS // 100, f"{cmd}: {lost} datagrams lost"
            if sent < BURST_DATAGRAMS + lost:
                s.sendto(payload, dest)
                sent += 1
        return (_cpu(p.pid) - c0) / got


@pytest.mark.benchmark(group="daemon-cold")
def test_wake_up_floor_c_and_python(benchmark, tmp_path):
    """What an idle wake-up costs before any resolver logic: the smallest UDP echo server in
    C and in Python on corenet's loop and on uvloop's, asked once every WAKE_GAP seconds as the cold run's
    dnsperf does. Their ratio bounds the one-at-a-time CPU-per-miss ratio from below."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is needed to build the C echo server")
    here = Path(__file__).resolve().parent
    exe = str(tmp_path / "udp_echo")
    subprocess.run(["gcc", "-O2", "-o", exe, str(here / "udp_echo.c")], check=True)
    rounds = {"c": [], "python-corenet": [], "python-uvloop": []}

    def measure():
        for _ in range(2):
            port = _free_udp_port()
            rounds["c"].append(_wake_cost([exe, str(port)], port))
            for loop in ("corenet", "uvloop"):
                port = _free_udp_port()
                rounds[f"python-{loop}"].append(_wake_cost(
                    [sys.executable, str(here / "udp_echo.py"), str(port), loop], port))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    us = {k: sorted(v)[0] * 1e6 for k, v in rounds.items()}
    ratios = [p / c for c, p in zip(rounds["c"], rounds["python-corenet"])]
    vs_uvloop = [p / u for p, u in zip(rounds["python-corenet"], rounds["python-uvloop"])]
    print(f"\n[wake floor] us CPU per exchange (best of 2): {us}; corenet/C per round: "
          f"{[round(r, 2) for r in ratios]}; corenet/uvloop per round: "
          f"{[round(r, 2) for r in vs_uvloop]}")
    benchmark.extra_info.update({"us_cpu_per_exchange": us, "ratios": ratios,
                                 "ratios_vs_uvloop": vs_uvloop})
    assert all(v > 0 for v in us.values())


@pytest.mark.benchmark(group="daemon-cold")
def test_udp_echo_burst_corenet_and_uvloop(benchmark):
    """Server CPU per datagram of the same Python echo server on corenet's loop and on
    uvloop's, kept busy by a client with BURST_IN_FLIGHT datagrams outstanding: the datagram
    transport's read and send paths when wake-ups are shared."""
    here = Path(__file__).resolve().parent
    rounds = {"corenet": [], "uvloop": []}

    def measure():
        for _ in range(2):
            for loop in ("corenet", "uvloop"):
                port = _free_udp_port()
                rounds[loop].append(_burst_cost(
                    [sys.executable, str(here / "udp_echo.py"), str(port), loop], port))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    us = {k: sorted(v)[0] * 1e6 for k, v in rounds.items()}
    ratios = [u / c for c, u in zip(rounds["corenet"], rounds["uvloop"])]
    print(f"\n[udp burst] us server CPU per datagram (best of 2): {us}; uvloop/corenet per "
          f"round: {[round(r, 2) for r in ratios]}")
    benchmark.extra_info.update({"us_cpu_per_datagram": us, "uvloop_over_corenet": ratios})
    assert all(v > 0 for v in us.values())


RELOAD_RATE = 200 if SHORT else 500          # queries/s of the steady stream
RELOAD_SECONDS = 3 if SHORT else 20           # each phase: without reloads, then during them
RELOAD_EVERY = 1.0                            # seconds between reloads, when not back to back


def _latencies(lat: list[float]) -> dict:
    return {"p50_ms": _percentile(lat, 50) if lat else float("nan"),
            "p99_ms": _percentile(lat, 99) if lat else float("nan"),
            "max_ms": max(lat) if lat else float("nan")}


def _steady_stream(port: int, seconds: float, rate: int,
                   windows: list[tuple[float, float]] | None = None) -> dict:
    """Cached names asked at a fixed ``rate`` for ``seconds`` from one UDP socket, open
    loop (a stalled server does not slow the sender down): each answer's latency, and the
    queries that got none within a second of the end. ``windows``: (start, end) times of
    reloads (filled while the stream runs): the latencies of the queries sent inside one
    too, under ``in_reload``."""
    import select
    import socket

    import dns.message

    wires = [dns.message.make_query(name, rdtype).to_wire() for name, rdtype in CACHED_QUERIES]
    sent: dict[int, float] = {}
    samples: list[tuple[float, float]] = []        # (sent at, latency ms)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        s.connect(("127.0.0.1", port))
        start = time.monotonic()
        end, n = start + seconds, 0
        while True:
            now = time.monotonic()
            due = start + n / rate
            if now >= due and now < end:
                qid = n % 65536
                wire = wires[n % len(wires)]
                s.send(qid.to_bytes(2, "big") + wire[2:])
                sent[qid] = now
                n += 1
                continue
            if now >= end + 1.0 or (now >= end and not sent):
                break
            ready, _, _ = select.select([s], [], [], max(0.0, min(due, end + 1.0) - now))
            while ready:
                try:
                    data = s.recv(65535)
                except BlockingIOError:
                    break
                t = sent.pop(int.from_bytes(data[:2], "big"), None)
                if t is not None:
                    samples.append((t, (time.monotonic() - t) * 1000))
    row = {"sent": n, "answered": len(samples), "lost": len(sent),
           **_latencies([ms for _, ms in samples])}
    if windows is not None:
        inside = [ms for t, ms in samples if any(a <= t <= b for a, b in windows)]
        row["in_reload"] = {"queries": len(inside), **_latencies(inside)}
    return row


def _while_reloading(port: int, reload_once, seconds: float, rate: int,
                     every: float | None = None, timed: bool = False) -> tuple[dict, int]:
    """The stream while ``reload_once()`` runs again and again in a thread, back to back or
    one starting ``every`` seconds; how many ran. ``timed``: ``reload_once`` returns when the
    reload is done, and the queries sent meanwhile are reported apart (``in_reload``)."""
    import threading

    done = threading.Event()
    count = [0]
    windows: list[tuple[float, float]] = []

    def reloads():
        while not done.is_set():
            began = time.monotonic()
            reload_once()
            windows.append((began, time.monotonic()))
            count[0] += 1
            if every is not None:
                done.wait(max(0.0, began + every - time.monotonic()))

    t = threading.Thread(target=reloads, daemon=True)
    t.start()
    try:
        row = _steady_stream(port, seconds, rate, windows if timed else None)
    finally:
        done.set()
        t.join(timeout=120)
    return row, count[0]


@pytest.mark.benchmark(group="daemon-reload")
def test_reload_stall_vs_unbound(benchmark, lab53, tmp_path):
    """A steady stream of cached names, p50/p99/max latency without reloads and during
    reloads, on the config shape of ``reload_shape`` (local zones with 3,000 local-data
    lines, an RPZ zone file of 10,000 rules, a trust anchor, forward and stub zones, a TLS
    pair). corenet-resolver reloads by its ``reload`` command (which answers when the reload
    is done) once a second, the queries sent while one ran reported apart, then back to
    back; Unbound by SIGHUP (what ``unbound-control reload`` does: its caches are dropped,
    so its names are resolved again) once a second."""
    import signal

    from ports import free_port
    from reload_shape import Shape
    from resolver.daemon.control import request

    shape = Shape(tmp_path / "shape", "127.0.0.1@9", "127.0.0.1@9")
    conf = tmp_path / "corenet.toml"
    conf.write_text(shape.corenet_toml(free_port()))
    ub = Unbound.start(tmp_path / "unbound", lab53, threads=1, extra="\n".join(
        ["  msg-cache-size: 64m", "  rrset-cache-size: 64m", "  prefetch: no",
         "  ratelimit: 0", "  ip-ratelimit: 0", UNBOUND_RCVBUF, *shape.unbound_lines()]),
        timeout=60)
    try:
        d = Daemon(tmp_path / "corenet", lab53, "--config", str(conf), *NO_IPV6,
                   *NO_RATELIMIT, metrics=False).start(timeout=120)
    except Exception:
        ub.stop()
        raise
    _pin(d.pid)
    _pin(ub.proc.pid)
    results = {}
    try:
        def corenet_reload():
            assert request(d.control, {"cmd": "reload"}, timeout=120)["ok"]

        def unbound_reload():
            ub.proc.send_signal(signal.SIGHUP)

        with _on_load_core():
            for name, port, reload_once in (("corenet-resolver", d.port, corenet_reload),
                                            ("unbound", ub.port, unbound_reload)):
                _steady_stream(port, 1, RELOAD_RATE)                       # warm the cache
                r = results[name] = {"baseline": _steady_stream(port, RELOAD_SECONDS, RELOAD_RATE)}
                timed = name == "corenet-resolver"
                r["each_second"], r["reloads_each_second"] = _while_reloading(
                    port, reload_once, RELOAD_SECONDS, RELOAD_RATE, RELOAD_EVERY, timed)
                if timed:
                    r["back_to_back"], r["reloads_back_to_back"] = benchmark.pedantic(
                        _while_reloading, args=(port, reload_once, RELOAD_SECONDS, RELOAD_RATE),
                        kwargs={"timed": True}, rounds=1, iterations=1)
        assert "config reloaded" in d.log_text() and d.alive() and ub.proc.poll() is None
    finally:
        d.stop()
        ub.stop()
    for name, r in results.items():
        for phase, row in r.items():
            if isinstance(row, dict):
                print(f"\n[reload] {name} {phase}: {r.get('reloads_' + phase, 0)} reloads; "
                      f"{row}")
                assert row["answered"] >= row["sent"] * 0.9, (name, phase, row)
    ours = results["corenet-resolver"]
    benchmark.extra_info.update({
        "corenet": ours, "unbound": results["unbound"],
        "corenet_p99_in_reload_over_baseline": ours["each_second"]["in_reload"]["p99_ms"]
        / ours["baseline"]["p99_ms"]})
