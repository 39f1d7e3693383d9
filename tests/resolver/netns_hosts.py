"""Resolver "hosts" on this machine: one network namespace each, on a bridge, as the shared
cache's multi-host test and benchmark run them. The bridge's own address (the gateway) is
the test's namespace, where Redis, dnsdist, the lab's authorities and the client stay; the
hosts reach the lab's 127.0.0.x through the bridge. Needs root and ``ip``/``sysctl``."""
from __future__ import annotations

import ipaddress
import subprocess
from pathlib import Path


def run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=10)


class HostNetwork:
    """A bridge named ``bridge`` with address ``gateway`` (a /24) and, for each entry of
    ``hosts`` (namespace name: address), a namespace joined to it by a veth pair."""

    def __init__(self, bridge: str, gateway: str, hosts: dict[str, str]) -> None:
        self.bridge, self.gateway, self.hosts = bridge, gateway, dict(hosts)

    @property
    def subnet(self) -> str:
        return str(ipaddress.ip_interface(f"{self.gateway}/24").network)

    def wrap(self, ns: str) -> tuple[str, ...]:
        """The command prefix that runs a program on host ``ns``."""
        return ("ip", "netns", "exec", ns)

    def down(self) -> None:
        for ns in self.hosts:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, timeout=10)

    def up(self) -> "HostNetwork":
        self.down()                                     # what a killed run left behind
        bridge = self.bridge
        run("ip", "link", "add", bridge, "type", "bridge")
        run("ip", "addr", "add", f"{self.gateway}/24", "dev", bridge)
        run("ip", "link", "set", bridge, "up")
        # Packets to and from the lab's 127.0.0.x cross the bridge: allowed on it alone.
        run("sysctl", "-qw", f"net.ipv4.conf.{bridge}.route_localnet=1")
        for i, (ns, addr) in enumerate(self.hosts.items(), 1):
            veth = f"{bridge}-v{i}"
            run("ip", "netns", "add", ns)
            run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            run("ip", "link", "set", veth, "master", bridge, "up")
            inside = self.wrap(ns)
            run(*inside, "ip", "link", "set", "lo", "up")
            run(*inside, "ip", "addr", "add", f"{addr}/24", "dev", "eth0")
            run(*inside, "ip", "link", "set", "eth0", "up")
            run(*inside, "sysctl", "-qw", "net.ipv4.conf.all.route_localnet=1",
                "net.ipv4.conf.eth0.route_localnet=1")
            # Only 127.0.0.1 is the host's own; the rest of 127/8 (the lab) is over the bridge.
            run(*inside, "ip", "route", "del", "127.0.0.0/8", "dev", "lo", "table", "local")
            run(*inside, "ip", "route", "replace", "local", "127.0.0.1", "dev", "lo", "table",
                "local")
            run(*inside, "ip", "route", "add", "127.0.0.0/8", "via", self.gateway, "src", addr)
        return self


def start_dnsdist(conf: Path, log: Path) -> subprocess.Popen:
    """dnsdist in the foreground on ``conf``, its output in ``log``, in a session of its own
    (stop it with procs.stop(..., group=True))."""
    return subprocess.Popen(["dnsdist", "--supervised", "--disable-syslog", "-C", str(conf)],
                            stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
