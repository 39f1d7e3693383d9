"""``outgoing-interface``: the addresses upstream queries leave from, side by side with a real
Unbound reading the same unbound.conf (the daemon serving what ``import-unbound`` makes of
it). A scripted authority on loopback answers every question and notes the address each
query came from."""
from __future__ import annotations

import socket
import threading
import tomllib

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rrset
import pytest

from ci_policy import installed
from daemon_proc import Daemon, cli
from ports import pick_port
from dnslab.unbound import launch
from procs import stop as stop_process

AUTHORITY = "127.0.0.41"
SOURCES = ("127.0.0.9", "127.0.0.10")


class Authority:
    """Answers every A question with 192.0.2.77 over UDP, noting each query's source address;
    stopped (and its socket closed) by :meth:`close`."""

    def __init__(self) -> None:
        self.port = pick_port([AUTHORITY])
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((AUTHORITY, self.port))
        self.sock.settimeout(0.2)
        self.peers: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                wire, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            q = dns.message.from_wire(wire)
            m = dns.message.make_response(q)
            m.flags |= dns.flags.AA
            m.answer.append(dns.rrset.from_text(q.question[0].name, 60, "IN", "A",
                                                "192.0.2.77"))
            self.peers.append(peer[0])
            self.sock.sendto(m.to_wire(), peer)

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture
def authority():
    a = Authority()
    yield a
    a.close()


def unbound_lines(port: int, authority_port: int, outgoing: list[str]) -> list[str]:
    """The unbound.conf both servers read (``launch`` adds the remote-control clause)."""
    return ["  interface: 127.0.0.1", f"  port: {port}", "  do-ip6: no",
            "  do-not-query-localhost: no", "  access-control: 127.0.0.0/8 allow",
            '  module-config: "iterator"', '  username: ""', '  chroot: ""', '  pidfile: ""',
            "  use-syslog: no", "  prefetch: no",
            *(f"  outgoing-interface: {a}" for a in outgoing),
            "forward-zone:", '  name: "corp.example."',
            f"  forward-addr: {AUTHORITY}@{authority_port}"]


def ask_each(port: int, names: list[str]) -> None:
    for name in names:
        r = dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port,
                          timeout=5)
        assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].address == "192.0.2.77"


def served_by_both(tmp_path, authority, outgoing: list[str], names: list[str]):
    """The addresses the authority saw ``names`` asked from, by Unbound and by the daemon
    serving the same unbound.conf (converted by ``import-unbound``)."""
    installed("unbound", "unbound")
    port = pick_port(["127.0.0.1"])
    proc = launch(tmp_path, unbound_lines(port, authority.port, outgoing), "127.0.0.1", port)
    conf = tmp_path / "unbound.conf"                  # what launch wrote and Unbound read
    try:
        ask_each(port, names)
    finally:
        stop_process(proc, 5.0, group=True)
    theirs, authority.peers[:] = list(authority.peers), []
    toml = tmp_path / "corenet-resolver.toml"
    r = cli("import-unbound", str(conf), "-o", str(toml))
    assert r.returncode == 0, r.stderr
    assert tomllib.loads(toml.read_text())["outgoing-interface"] == outgoing
    d = Daemon(tmp_path / "d", None, "--config", str(toml), listen=False, port=port)
    d.start()
    try:
        ask_each(port, names)
    finally:
        d.stop()
    return theirs, list(authority.peers)


def test_queries_leave_from_the_outgoing_interfaces_as_unbound_s_do(authority, tmp_path):
    names = [f"n{i}.corp.example." for i in range(40)]          # distinct: a query upstream each
    theirs, ours = served_by_both(tmp_path, authority, list(SOURCES), names)
    assert len(theirs) >= 40 and len(ours) >= 40
    # each address drawn, and no other (one of them 40 times running: 2 ** -39)
    assert set(theirs) == set(ours) == set(SOURCES)


def test_one_outgoing_interface(authority, tmp_path):
    theirs, ours = served_by_both(tmp_path, authority, ["127.0.0.11"],
                                  ["a.corp.example.", "b.corp.example."])
    assert set(theirs) == set(ours) == {"127.0.0.11"}
