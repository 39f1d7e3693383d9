"""corenet-resolver's DNS over TLS and over HTTPS against Unbound's, in one run, over the
same NSD lab.

- cached: a warm cache, dnsperf from Debian (``-m dot``, and ``-m doh``: HTTP/2 POST) for a
  fixed time on long-lived connections: queries/s and queries per CPU-second of the server
  process;
- handshakes: ``openssl s_time`` opening TLS 1.3 connections for a fixed time, each a full
  handshake (``-new``) and then each a resumption (``-reuse``): handshakes/s and handshakes
  per CPU-second of the server, in rounds that take the servers in turn
  (``HANDSHAKE_ROUNDS``); full handshakes also against the servers of
  ``handshake_servers/``, which accept, handshake and close and do nothing else: in C on
  OpenSSL, in Python through ``ssl``'s blocking sockets, on corenet's loop and TLS
  transport, and on corenet's loop with the accept and handshake in C
  (``c_handshake.pyx``) and a Python object made per connection at the handshake's end.
  They show what a handshake costs with no DNS server around it. With them, Unbound with
  corenet's TLS 1.3 suite order (``tls-ciphersuites``): each server negotiates its own
  preference (corenet AES-128-GCM, Unbound OpenSSL's AES-256-GCM), and that row shows
  what the order alone is worth.

Both servers use the same throwaway certificate (ECDSA P-256), are pinned to core 0 and the
load to core 1 when there are two cores (as in ``test_daemon.py``, whose helpers this reuses).
``CORENET_BENCH_SHORT=1``: seconds, not minutes. Run: ``pytest benchmarks/test_encrypted.py``.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "tests" / d)
                for d in ("resolver", "https", "")]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_proc import Daemon  # noqa: E402
from ports import free_port  # noqa: E402
from dnslab.unbound import Unbound  # noqa: E402
from https_servers import wait_port  # noqa: E402
from procs import stop  # noqa: E402
from test_daemon import (CACHED_QUERIES, LOAD_CORE, NO_IPV6, NO_RATELIMIT, SECONDS,  # noqa: E402
                         TWO_CORES, _cpu, _dnsperf, _field, _pin, _report, lab53)
from tls_certs import CA  # noqa: E402

from resolver.daemon.tls_server import TLS13_CIPHERSUITES  # noqa: E402

__all__ = ["lab53"]          # the fixture, shared with test_daemon.py

OPENSSL = shutil.which("openssl")


def _unbound(lab, workdir: Path, pem: Path, key: Path, tls_port: int, *extra: str) -> Unbound:
    """Unbound, one thread, with a DoT listener on ``tls_port`` and the lines ``extra``."""
    return Unbound.start(workdir, lab, threads=1, extra="\n".join([
        "  msg-cache-size: 64m", "  rrset-cache-size: 64m", "  prefetch: no",
        "  ratelimit: 0", "  ip-ratelimit: 0", "  so-rcvbuf: 4m",
        f"  interface: 127.0.0.1@{tls_port}", f"  tls-port: {tls_port}",
        f'  tls-service-key: "{key}"', f'  tls-service-pem: "{pem}"',
        "  incoming-num-tcp: 1000", "  tcp-idle-timeout: 30000", *extra]))


def _suite(port: int) -> str:
    """The TLS 1.3 suite an OpenSSL client with its default offer negotiates on ``port``."""
    r = subprocess.run([OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3",
                        "-brief"], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=30)
    m = re.search(r"^Ciphersuite: (\S+)", r.stdout + r.stderr, re.M)
    assert m, r.stdout + r.stderr
    return m.group(1)


class DoTServers:
    """Unbound (one thread) and corenet-resolver (one worker), each with a DoT and a DoH
    listener (Unbound's ``https-port``: Debian builds it with nghttp2)."""

    def __init__(self, lab, tmp: Path) -> None:
        ca = CA(tmp / "pki")
        self.pem, self.key = pem, key = ca.issue("server")
        self.ub_tls, self.d_tls = free_port(), free_port()
        self.ub_https, self.d_https = free_port(), free_port()
        self.ub = _unbound(lab, tmp / "unbound", pem, key, self.ub_tls,
                           f"  interface: 127.0.0.1@{self.ub_https}",
                           f"  https-port: {self.ub_https}", '  http-endpoint: "/dns-query"')
        conf = tmp / "corenet.toml"
        conf.write_text(f'tls-listen = ["127.0.0.1:{self.d_tls}"]\n'
                        f'https-listen = ["127.0.0.1:{self.d_https}"]\n'
                        f'tls-service-pem = "{pem}"\ntls-service-key = "{key}"\n'
                        "tcp-idle-timeout = 30\n"
                        # Past its request budget the daemon ends a DoH connection with GOAWAY
                        # (Unbound has no such budget), and dnsperf 2.10 at times crashes on that
                        # (SIGSEGV): the budget is kept out of a run's reach.
                        "[limits]\ndoh-max-requests-per-connection = 1000000000\n")
        try:
            self.d = Daemon(tmp / "corenet", lab, *NO_IPV6, *NO_RATELIMIT, "--config",
                            str(conf), metrics=False).start()
        except Exception:
            self.ub.stop()
            raise
        _pin(self.ub.proc.pid)
        _pin(self.d.pid)

    def targets(self):
        return [("corenet-resolver", self.d_tls, self.d.pid),
                ("unbound", self.ub_tls, self.ub.proc.pid)]

    def https_targets(self):
        return [("corenet-resolver", self.d_https, self.d.pid),
                ("unbound", self.ub_https, self.ub.proc.pid)]

    def stop(self) -> None:
        self.d.stop()
        self.ub.stop()


HANDSHAKE_SERVERS = Path(__file__).resolve().parent / "handshake_servers"


class HandshakeServers:
    """Unbound with corenet's TLS 1.3 suite order, and ``handshake_servers/``: the C server
    (compiled here against OpenSSL's headers), the ``ssl`` one, corenet's loop and corenet's
    loop with the handshake in C (built here); with the DoT servers' certificate, pinned as
    they are."""

    def __init__(self, lab, tmp: Path, pem: Path, key: Path) -> None:
        cc = shutil.which("cc") or shutil.which("gcc")
        if cc is None:
            pytest.fail("no C compiler (Debian package 'gcc') for openssl_server.c")
        binary = tmp / "openssl-server"
        r = subprocess.run([cc, "-O2", "-o", str(binary),
                            str(HANDSHAKE_SERVERS / "openssl_server.c"), "-lssl", "-lcrypto"],
                           capture_output=True, text=True, timeout=120)
        if r.returncode:
            pytest.fail("cannot build openssl_server.c (Debian package 'libssl-dev'):\n"
                        + r.stderr)
        ext = tmp / "c-handshake"
        r = subprocess.run([sys.executable, str(HANDSHAKE_SERVERS / "c_handshake_server.py"),
                            "--build", str(ext)], capture_output=True, text=True, timeout=300)
        if r.returncode:
            pytest.fail("cannot build c_handshake.pyx:\n" + r.stdout[-2000:] + r.stderr[-2000:])
        root = Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=f"{root}{os.pathsep}{ext}")   # ext: c_handshake
        self.procs: list[tuple[str, int, subprocess.Popen]] = []
        self.ub_suites = None
        try:
            # Unbound with corenet's TLS 1.3 suite order: the handshake cost of the same
            # cryptography (OpenSSL's default order, Unbound's, puts AES-256-GCM first).
            self.ub_suites_port = free_port()
            self.ub_suites = _unbound(lab, tmp / "unbound-suites", pem, key,
                                      self.ub_suites_port,
                                      f'  tls-ciphersuites: "{TLS13_CIPHERSUITES}"')
            _pin(self.ub_suites.proc.pid)
            for name, cmd in (
                    ("c-openssl", [str(binary)]),
                    ("python-ssl", [sys.executable, str(HANDSHAKE_SERVERS / "ssl_server.py")]),
                    ("corenet-loop", [sys.executable,
                                      str(HANDSHAKE_SERVERS / "loop_server.py")]),
                    ("corenet-loop-c-handshake",
                     [sys.executable, str(HANDSHAKE_SERVERS / "c_handshake_server.py")])):
                port = free_port()
                proc = subprocess.Popen(cmd + [str(port), str(pem), str(key)], env=env,
                                        stdout=subprocess.DEVNULL)
                self.procs.append((name, port, proc))
                _pin(proc.pid)
            for name, port, proc in self.procs:
                wait_port(port, proc, name)
        except BaseException:
            self.stop()
            raise

    def targets(self):
        return [("unbound-corenet-suites", self.ub_suites_port, self.ub_suites.proc.pid)] + [
            (name, port, proc.pid) for name, port, proc in self.procs]

    def stop(self) -> None:
        for _, _, proc in self.procs:
            stop(proc, 10)
        if self.ub_suites is not None:
            self.ub_suites.stop()


def _cached_dot(port: int, pid: int, datafile: Path, *mode: str) -> dict:
    """dnsperf over ``mode`` (DNS over TLS unless told) on a warm cache, for SECONDS."""
    mode = mode or ("-m", "dot")
    _dnsperf(port, datafile, *mode, "-n", "2")                       # warm the cache
    c0 = _cpu(pid)
    out = _dnsperf(port, datafile, *mode, "-l", str(SECONDS), "-c", "4", "-q", "200")
    cpu = _cpu(pid) - c0
    done = _field(out, "Queries completed")
    return {"qps": _field(out, "Queries per second"), "completed": done,
            "lost": _field(out, "Queries lost"), "cpu_s": cpu,
            "queries_per_cpu_s": done / cpu if cpu else float("inf")}


def _handshakes(port: int, pid: int, mode: str, seconds: int = SECONDS) -> dict:
    """``openssl s_time`` for ``seconds``: TLS 1.3 connections, ``-new`` or ``-reuse``."""
    cmd = [OPENSSL, "s_time", "-connect", f"127.0.0.1:{port}", mode, "-tls1_3",
           "-time", str(seconds)]
    if TWO_CORES:
        cmd = ["taskset", "-c", LOAD_CORE] + cmd
    c0 = _cpu(pid)
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 60)
    elapsed = time.monotonic() - t0
    cpu = _cpu(pid) - c0
    assert r.returncode == 0, r.stderr + r.stdout
    m = re.search(r"(\d+) connections in ([0-9.]+)s", r.stdout)
    assert m, r.stdout
    n = int(m.group(1))
    # The wall-clock time is ours: s_time's own "real seconds" is whole seconds, a 7%
    # step on a 15-second run.
    return {"handshakes": n, "elapsed_s": elapsed, "per_s": n / elapsed, "cpu_s": cpu,
            "per_cpu_s": n / cpu if cpu else float("inf")}


#: Handshake rounds: each server's ``s_time`` runs this many times, the servers in turn, so
#: that what drifts on a shared machine during a run falls on all of them alike.
HANDSHAKE_ROUNDS = 1 if os.environ.get("CORENET_BENCH_SHORT") else 5


def _interleaved(targets: list, mode: str) -> dict:
    """``_handshakes`` for each of ``targets`` (name, port, pid), ``HANDSHAKE_ROUNDS``
    rounds in turn of ``SECONDS / HANDSHAKE_ROUNDS`` seconds each, summed per server."""
    seconds = max(1, SECONDS // HANDSHAKE_ROUNDS)
    sums: dict[str, dict] = {name: {"handshakes": 0, "elapsed": 0.0, "cpu_s": 0.0}
                             for name, _, _ in targets}
    for _ in range(HANDSHAKE_ROUNDS):
        for name, port, pid in targets:
            fig = _handshakes(port, pid, mode, seconds)
            total = sums[name]
            total["handshakes"] += fig["handshakes"]
            total["elapsed"] += fig["elapsed_s"]
            total["cpu_s"] += fig["cpu_s"]
    return {name: {"handshakes": t["handshakes"],
                   "per_s": t["handshakes"] / t["elapsed"] if t["elapsed"] else 0.0,
                   "cpu_s": t["cpu_s"],
                   "per_cpu_s": t["handshakes"] / t["cpu_s"] if t["cpu_s"] else float("inf")}
            for name, t in sums.items()}


def _measure(benchmark, servers: DoTServers, run, results: dict, title: str,
             keys: list[str]) -> None:
    """Runs ``run`` once (it fills ``results``: server -> part -> figures), stops the
    servers, prints the figures and their ratios (``keys``) and records them."""
    try:
        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        servers.stop()
    flat = {name: {f"{part}_{k}": v for part, fig in r.items() for k, v in fig.items()}
            for name, r in results.items()}
    ratios = _report(title, flat, keys)
    benchmark.extra_info.update({"corenet": flat["corenet-resolver"],
                                 "unbound": flat["unbound"], "ratios": ratios})


@pytest.mark.benchmark(group="encrypted")
def test_dot_cached_queries_and_handshakes_vs_unbound(benchmark, lab53, tmp_path):
    if OPENSSL is None:
        pytest.fail("openssl (Debian package 'openssl') is not installed")
    datafile = tmp_path / "cached.txt"
    datafile.write_text("".join(f"{n} {t}\n" for n, t in CACHED_QUERIES))
    s = DoTServers(lab53, tmp_path)
    try:
        bare = HandshakeServers(lab53, tmp_path, s.pem, s.key)
    except BaseException:
        s.stop()
        raise
    results: dict[str, dict] = {}
    bare_results: dict[str, dict] = {}
    suites: dict[str, str] = {}

    def run():
        suites.update((name, _suite(port)) for name, port, _ in s.targets())
        for name, port, pid in s.targets():
            results[name] = {"cached": _cached_dot(port, pid, datafile)}
        new = _interleaved(list(s.targets()) + list(bare.targets()), "-new")
        reuse = _interleaved(list(s.targets()), "-reuse")
        for name, _, _ in s.targets():
            results[name].update(new=new.pop(name), reuse=reuse[name])
        bare_results.update(new)

    try:
        _measure(benchmark, s, run, results, "dot",
                 ["cached_qps", "cached_queries_per_cpu_s", "new_per_s", "new_per_cpu_s",
                  "reuse_per_s", "reuse_per_cpu_s"])
    finally:
        bare.stop()
    print(f"[dot] TLS 1.3 suites negotiated {suites}")
    print(f"[dot] full handshakes, the other servers {bare_results}")
    benchmark.extra_info["handshake_servers"] = bare_results
    benchmark.extra_info["suites"] = suites
    # The suites BENCHMARKS.md names: each server's own choice.
    assert suites == {"corenet-resolver": TLS13_CIPHERSUITES.split(":")[0],
                      "unbound": "TLS_AES_256_GCM_SHA384"}, suites
    ours = results["corenet-resolver"]
    for name, fig in bare_results.items():
        assert fig["handshakes"] > 0, name
    assert ours["cached"]["lost"] <= ours["cached"]["completed"] / 100
    assert ours["new"]["handshakes"] > 0 and ours["reuse"]["handshakes"] > 0


def _doh_mode(port: int) -> tuple[str, ...]:
    return ("-m", "doh", "-O", f"doh-uri=https://127.0.0.1:{port}/dns-query",
            "-O", "doh-method=POST")


@pytest.mark.benchmark(group="encrypted")
def test_doh_cached_queries_vs_unbound(benchmark, lab53, tmp_path):
    """Cached queries over DNS over HTTPS (HTTP/2, POST; dnsperf ``-m doh``), next to DoT
    on the same servers in the same run."""
    datafile = tmp_path / "cached.txt"
    datafile.write_text("".join(f"{n} {t}\n" for n, t in CACHED_QUERIES))
    s = DoTServers(lab53, tmp_path)
    results: dict[str, dict] = {}

    def run():
        for (name, port, pid), (_, tls_port, _) in zip(s.https_targets(), s.targets()):
            results[name] = {"doh": _cached_dot(port, pid, datafile, *_doh_mode(port)),
                             "dot": _cached_dot(tls_port, pid, datafile)}

    _measure(benchmark, s, run, results, "doh",
             ["doh_qps", "doh_queries_per_cpu_s", "dot_qps", "dot_queries_per_cpu_s"])
    for name in ("corenet-resolver", "unbound"):
        doh = results[name]["doh"]
        assert doh["completed"] > 0 and doh["lost"] <= doh["completed"] / 100, (name, doh)


STREAM_MISS_NAMES = 120 if os.environ.get("CORENET_BENCH_SHORT") else 900
STREAM_CHUNKS = 2 if os.environ.get("CORENET_BENCH_SHORT") else 4


@pytest.mark.benchmark(group="encrypted")
def test_stream_misses_vs_unbound(benchmark, lab53, tmp_path):
    """CPU per cache miss over TCP and over DoT (dnsperf ``-m tcp`` / ``-m dot``, 20 queries
    outstanding on one connection): names of bulk.net no server has asked before, a fresh
    set per transport, the servers taking turns chunk by chunk as in the cold UDP test."""
    from dnslab import bulk_names
    bulk = [n for n, _ in bulk_names()]
    per_mode = STREAM_MISS_NAMES // 2
    sets = {"tcp": bulk[-2 * per_mode:-per_mode], "dot": bulk[-per_mode:]}
    s = DoTServers(lab53, tmp_path)
    ports = {name: {"tcp": None, "dot": tls} for name, tls, _ in s.targets()}
    ports["corenet-resolver"]["tcp"] = s.d.port
    ports["unbound"]["tcp"] = s.ub.port
    pids = {name: pid for name, _, pid in s.targets()}
    acc = {name: {"tcp": [0.0, 0], "dot": [0.0, 0]} for name in pids}

    def run():
        for mode, names in sets.items():
            for k in range(STREAM_CHUNKS):
                part = names[k::STREAM_CHUNKS]
                datafile = tmp_path / f"{mode}{k}.txt"
                datafile.write_text("".join(f"{n} A\n" for n in part))
                order = list(pids) if k % 2 == 0 else list(reversed(pids))
                for name in order:
                    c0 = _cpu(pids[name])
                    out = _dnsperf(ports[name][mode], datafile, "-m", mode, "-n", "1",
                                   "-q", "20", "-t", "10")
                    acc[name][mode][0] += _cpu(pids[name]) - c0
                    acc[name][mode][1] += int(_field(out, "Queries completed"))
                    assert _field(out, "Queries completed") == len(part), out

    results = {name: {} for name in pids}

    def collect():
        run()
        for name, modes in acc.items():
            for mode, (cpu, n) in modes.items():
                results[name][mode] = {"misses": n, "us_cpu_per_miss": cpu / n * 1e6}

    _measure(benchmark, s, collect, results, "stream-misses",
             ["tcp_us_cpu_per_miss", "dot_us_cpu_per_miss"])
    for name in pids:
        assert results[name]["tcp"]["misses"] == per_mode, results
