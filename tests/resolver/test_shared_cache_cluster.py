"""Several resolver hosts behind dnsdist, sharing one Redis: the deployment of
docs/deploy/shared-cache/ run on this machine. Each host is a network namespace on a
bridge (10.77.0.0/24) with one corenet-resolver; Redis, dnsdist, the lab's authorities and
the client stay in the test's namespace (the hosts reach the lab's 127.0.0.x through the
bridge). The configs are the documented ones; the test changes only dnsdist's listen port,
the lab's root hints and port, and a redis-timeout a busy test machine can keep."""
from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rcode
import pytest

from ci_policy import unavailable
from daemon_proc import ROOT, Daemon
from ports import free_port
from netns_hosts import HostNetwork, start_dnsdist
from procs import stop as stop_process
from redis_proc import Redis
from resolver.cache.shared import shared_key
from resolver.wire.codec import cache_key

pytestmark = pytest.mark.slow

DEPLOY = ROOT / "docs" / "deploy" / "shared-cache"
BRIDGE, GATEWAY = "cn-lan0", "10.77.0.1"
HOSTS = {"cn-host-1": "10.77.0.11", "cn-host-2": "10.77.0.12", "cn-host-3": "10.77.0.13"}
SEED = "change-this-shared-secret"            # docs/deploy/shared-cache/resolver.toml
NETWORK = HostNetwork(BRIDGE, GATEWAY, HOSTS)


class Cluster:
    def __init__(self, lab, workdir: Path) -> None:
        self.lab, self.workdir = lab, workdir
        self.redis: Redis | None = None
        self.hosts: dict[str, Daemon] = {}
        self.dnsdist: subprocess.Popen | None = None
        self.port = free_port()

    def start(self) -> "Cluster":
        NETWORK.up()
        self.redis = Redis(self.workdir / "redis", host=GATEWAY, port=6379,
                           conf=str(DEPLOY / "redis.conf")).start()
        conf = (DEPLOY / "resolver.toml").read_text()
        assert "redis-timeout = 5\n" in conf
        resolver_conf = self.workdir / "resolver.toml"
        resolver_conf.write_text(conf.replace("redis-timeout = 5\n", "redis-timeout = 250\n"))
        for ns, addr in HOSTS.items():
            self.hosts[ns] = Daemon(self.workdir / ns, self.lab, "--config", str(resolver_conf),
                                    "--listen", f"{addr}:53", listen=False, metrics=False,
                                    wrap=NETWORK.wrap(ns)).start()
        text = (DEPLOY / "dnsdist.conf").read_text()
        assert 'setLocal("127.0.0.1:53")' in text
        dconf = self.workdir / "dnsdist.conf"
        dconf.write_text(text.replace('setLocal("127.0.0.1:53")',
                                      f'setLocal("127.0.0.1:{self.port}")'))
        self.dnsdist = start_dnsdist(dconf, self.workdir / "dnsdist.log")
        # Ready when every host has been health-checked and dnsdist answers.
        deadline = time.monotonic() + 20
        while True:
            if self.dnsdist.poll() is not None:
                raise RuntimeError("dnsdist exited: "
                                   + (self.workdir / "dnsdist.log").read_text()[-2000:])
            checked = all(self.stats(ns)["engine"]["client_queries"] >= 2 for ns in HOSTS)
            if checked and self.ask(".", "NS", tries=1) is not None:
                return self
            if time.monotonic() > deadline:
                raise RuntimeError("the cluster did not come up")
            time.sleep(0.2)

    def stats(self, ns: str) -> dict:
        return self.hosts[ns].stats()

    def ask(self, name: str, rdtype: str = "A", tries: int = 3, timeout: float = 1.0):
        """A stub resolver's question: asked again after ``timeout``, ``tries`` times at
        most; the answer, or None."""
        q = dns.message.make_query(name, rdtype, use_edns=False)
        for _ in range(tries):
            try:
                return dns.query.udp(q, "127.0.0.1", port=self.port, timeout=timeout)
            except dns.exception.Timeout:
                continue
        return None

    def stop(self) -> None:
        if self.dnsdist is not None:
            stop_process(self.dnsdist, 5.0, group=True)
        for d in self.hosts.values():
            d.stop()
        if self.redis is not None:
            self.redis.stop()
        NETWORK.down()


@pytest.fixture
def cluster(lab, tmp_path):
    for tool in ("ip", "dnsdist", "redis-server", "sysctl"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed: scripts/setup.sh installs it")
    if os.geteuid() != 0:
        unavailable("network namespaces and a bridge need root")
    c = Cluster(lab, tmp_path)
    try:
        c.start()
        yield c
    finally:
        c.stop()


def test_hosts_behind_dnsdist_share_answers_and_survive_failures(cluster):
    hosts = list(HOSTS)
    # 1. A name resolved on one host is answered by the others from Redis.
    before = {ns: cluster.stats(ns) for ns in hosts}
    first = cluster.ask("www.example.com.")
    assert first is not None and first.rcode() == dns.rcode.NOERROR
    key = shared_key(SEED.encode(), cache_key(dns.name.from_text("www.example.com.").to_wire(),
                                              1, 1, 0))
    redis = cluster.redis.client()
    deadline = time.monotonic() + 5
    while not redis.exists(key):
        assert time.monotonic() < deadline, "the answer never reached Redis"
        time.sleep(0.02)
    for _ in range(2):                                  # round robin: the two other hosts
        r = cluster.ask("www.example.com.")
        assert r is not None and {x.to_text() for x in r.answer[0]} == {"192.0.2.1",
                                                                       "192.0.2.11"}
    after = {ns: cluster.stats(ns) for ns in hosts}

    def delta(ns, *path):
        a, b = after[ns], before[ns]
        for p in path:
            a, b = a[p], b[p]
        return a - b

    resolved = [ns for ns in hosts if delta(ns, "engine", "upstream_queries") > 0]
    assert len(resolved) == 1, {ns: delta(ns, "engine", "upstream_queries") for ns in hosts}
    others = [ns for ns in hosts if ns not in resolved]
    assert all(delta(ns, "shared_cache", "hits") == 1 for ns in others), after
    assert delta(resolved[0], "shared_cache", "hits") == 0

    # 2. A host killed: its queries are lost at most once each (the stub asks again), and
    #    once dnsdist's health checks take it out, none is.
    victim = cluster.hosts[others[0]]
    victim.proc.kill()
    victim.proc.wait()
    retried = 0
    t0 = time.monotonic()
    for i in range(24):
        r = cluster.ask(f"h{200 + i:03d}.bulk.net.", tries=1)
        if r is None:
            retried += 1
            r = cluster.ask(f"h{200 + i:03d}.bulk.net.", tries=2)
        assert r is not None and r.rcode() == dns.rcode.NOERROR, i
        if time.monotonic() - t0 > 4:
            break
    late = [cluster.ask(f"h{230 + i:03d}.bulk.net.", tries=1) for i in range(6)]
    assert all(r is not None and r.rcode() == dns.rcode.NOERROR for r in late)
    assert retried <= 8, retried

    # 3. Redis killed: every host left keeps answering, and counts the failures.
    alive = [ns for ns in hosts if ns != others[0]]
    before = {ns: cluster.stats(ns) for ns in alive}
    cluster.redis.stop()
    for i in range(8):
        r = cluster.ask(f"h{300 + i:03d}.bulk.net.", tries=2)
        assert r is not None and r.rcode() == dns.rcode.NOERROR and r.answer, i
    for ns in alive:
        s = cluster.stats(ns)
        assert s["engine"]["client_queries"] > before[ns]["engine"]["client_queries"], ns
        sc, sb = s["shared_cache"], before[ns]["shared_cache"]
        failures = sum(sc[k] - sb[k] for k in ("errors", "timeouts", "skipped"))
        assert failures >= 1, (ns, sc)
