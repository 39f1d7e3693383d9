"""corenet-resolver's DoH listener under four attacks, beside Unbound's DoH (``https-port``),
one after the other in one run, each with a legitimate HTTP/2 client asking every 20 ms
alongside:

- hpack: a 4 KB header table entry, then one header block of 16,000 one-byte references to
  it (an HPACK bomb), on one connection;
- pings: more connections than the server's connection cap (both set to ``CAP``), each
  sending only PINGs; the legitimate client opens a new connection for each query, so it
  needs a free slot every time;
- unread: one connection with a 4 KiB receive buffer sending PINGs without reading their
  ACKs;
- reset: the rapid reset (CVE-2023-44487) reconnecting: ten connections one after the
  other, each opening and resetting ``RESET_STREAMS`` requests, then waiting for the server
  to end it (at most ``RESET_WAIT`` seconds).

The attacker connects from 127.0.0.2, the legitimate client from 127.0.0.1. Reported per
attack and server: the legitimate client's answers, failures and p99 latency, the server's
CPU seconds and resident memory growth (peak during the attack, sampled every 50 ms) over
the attack, and how the attacker's connections ended and when. Both servers run with their
defaults but for the connection cap, on the same NSD lab and the same certificate, pinned
to core 0 and the clients to core 1 when there are two cores. Assertions are on corenet's
correctness only: the legitimate client is served, memory stays bounded.

``CORENET_BENCH_SHORT=1``: about a minute in all. Run: ``pytest benchmarks/test_doh_abuse.py -s``.
"""
from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).resolve().parent.parent / "tests" / d)
                for d in ("resolver", "https", "")]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from daemon_proc import Daemon  # noqa: E402
from ports import free_port  # noqa: E402
from doh_attacks import (LegitClient, Target, hpack_bomb, ping_holders,  # noqa: E402
                         rapid_reset, unread_output)
from loadgen import cpu_seconds  # noqa: E402
from test_daemon import LOAD_CORE, NO_IPV6, SHORT, TWO_CORES, _pin, lab53  # noqa: E402
from test_encrypted import _unbound  # noqa: E402
from tls_certs import CA  # noqa: E402

__all__ = ["lab53"]

CAP = 20                                   # connections, both servers
PING_HOLD = 4.0 if SHORT else 20.0         # seconds the PING connections are held
UNREAD_LIMIT = 7.0 if SHORT else 30.0      # seconds the unread connection is pushed
RESET_CONNECTIONS = 10
RESET_STREAMS = 10001                      # one past corenet's request budget per connection
RESET_WAIT = 1.0 if SHORT else 5.0         # seconds each reset connection waits for its end
HPACK_WAIT = 3.0 if SHORT else 10.0


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Servers:
    """Unbound (one thread) and corenet-resolver (one worker), each with a DoH listener on
    the same certificate, their defaults but for the connection cap."""

    def __init__(self, lab, tmp: Path) -> None:
        ca = CA(tmp / "pki")
        pem, key = ca.issue("server")
        self.ca = str(ca.pem)
        self.ub_port, self.d_port = free_port(), free_port()
        self.ub = _unbound(lab, tmp / "unbound", pem, key, free_port(),
                           f"  interface: 127.0.0.1@{self.ub_port}",
                           f"  https-port: {self.ub_port}", '  http-endpoint: "/dns-query"',
                           f"  incoming-num-tcp: {CAP}")
        conf = tmp / "corenet.toml"
        conf.write_text(f'https-listen = ["127.0.0.1:{self.d_port}"]\n'
                        f'tls-service-pem = "{pem}"\ntls-service-key = "{key}"\n'
                        f"tcp-max-connections = {CAP}\ntcp-idle-timeout = 30\n")
        try:
            self.d = Daemon(tmp / "corenet", lab, *NO_IPV6, "--config", str(conf),
                            metrics=False).start()
        except Exception:
            self.ub.stop()
            raise
        _pin(self.ub.proc.pid)
        _pin(self.d.pid)

    def targets(self):
        return [("corenet-resolver", self.d_port, self.d.pid),
                ("unbound", self.ub_port, self.ub.proc.pid)]

    def stop(self) -> None:
        self.d.stop()
        self.ub.stop()


def _summary(endings) -> str:
    """How the attacker's connections ended: each kind with its count, and when the last
    ended (seconds from the attack's start)."""
    kinds: dict[str, int] = {}
    for e in endings:
        kinds[e.how] = kinds.get(e.how, 0) + 1
    last = max(e.after for e in endings)
    text = ", ".join(f"{n}x {how}" if n > 1 else how for how, n in kinds.items())
    return f"{text}; last {'never' if last == float('inf') else f'{last:.1f} s'}"


def _attack(name: str, port: int, ca: str):
    """Runs attack ``name`` on ``port`` from 127.0.0.2: the attacker's endings."""
    target = Target("127.0.0.1", port, ca, source="127.0.0.2")
    if name == "hpack":
        return [hpack_bomb(target, HPACK_WAIT)]
    if name == "pings":
        return ping_holders(target, CAP + 5, PING_HOLD)
    if name == "unread":
        return [unread_output(target, UNREAD_LIMIT)[0]]
    return rapid_reset(target, RESET_CONNECTIONS, RESET_STREAMS, RESET_WAIT)


def _run(name: str, port: int, pid: int, ca: str) -> dict:
    """One attack on one server with the legitimate client alongside."""
    legit = LegitClient(Target("127.0.0.1", port, ca), fresh=(name == "pings"))
    rss0 = _rss(pid)
    peak = [rss0]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _rss(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    cpu0 = cpu_seconds(pid)
    sampler.start()
    legit.start()
    time.sleep(0.3)                       # the client is served before the attack starts
    try:
        endings = _attack(name, port, ca)
        time.sleep(0.5)                   # and after it
    finally:
        legit.stop()
        done.set()
        sampler.join()
    return {"answered": len(legit.latencies), "failed": legit.failures,
            "p99_ms": legit.p99() * 1000, "cpu_s": cpu_seconds(pid) - cpu0,
            "rss_growth_mib": (peak[0] - rss0) / (1 << 20), "ended": _summary(endings),
            "errors": legit.errors[:3]}


ATTACKS = ("hpack", "pings", "unread", "reset")


@pytest.mark.benchmark(group="doh-abuse")
def test_doh_attacks_vs_unbound(benchmark, lab53, tmp_path):
    benchmark.extra_info["short"] = SHORT
    if TWO_CORES:
        os.sched_setaffinity(0, {int(LOAD_CORE)})
    servers = Servers(lab53, tmp_path)
    results: dict[tuple[str, str], dict] = {}
    try:
        def run():
            for attack in ATTACKS:
                for server, port, pid in servers.targets():
                    results[attack, server] = _run(attack, port, pid, servers.ca)
                    time.sleep(0.5)       # what the attack left behind is closed
        benchmark.pedantic(run, rounds=1, iterations=1)
        d_stats = servers.d.stats()["https"]
    finally:
        servers.stop()
    print("\n| attack | server | legit answered | legit failed | legit p99 (ms) | server CPU (s) "
          "| RSS growth (MiB) | attacker's connections ended |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for (attack, server), r in results.items():
        print(f"| {attack} | {server} | {r['answered']} | {r['failed']} | {r['p99_ms']:.1f} "
              f"| {r['cpu_s']:.2f} | {r['rss_growth_mib']:.1f} | {r['ended']} |")
    print("corenet-resolver's DoH defences:",
          {k: v for k, v in d_stats.items() if k in (
              "hpack_budget", "write_stalled", "close_stalled", "cancelled", "protocol_error",
              "reset_flood", "throttled", "handshake_refused")})
    for (attack, server), r in results.items():
        if r["failed"]:
            print(f"{attack} {server}: the legitimate client's first errors {r['errors']}")
    benchmark.extra_info["results"] = {f"{a}/{s}": {k: v for k, v in r.items() if k != "errors"}
                                       for (a, s), r in results.items()}
    for attack in ATTACKS:
        ours = results[attack, "corenet-resolver"]
        assert ours["failed"] == 0 and ours["answered"] > 0, (attack, ours)
        assert ours["rss_growth_mib"] < 64, (attack, ours)
