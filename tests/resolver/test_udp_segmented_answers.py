"""Answers of one size to one client leave the daemon in one message the kernel cuts into
datagrams (UDP segmentation offload, ``corenet/include/batch.h``): the client gets each
answer as the datagram it would have got alone, whatever the sizes and clients mixed in a
batch; where the kernel refuses such a send (here a loopback whose MTU is below the
answers' size, in a network namespace of the test's own) each answer goes alone, none lost.

The burst is made deterministic by stopping the daemon (SIGSTOP) while the client sends:
the queries wait in the socket and one ``recvmmsg`` reads them all, so their answers are one
batch. ``stats`` counts the datagrams sent and the messages they left in."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dns.message
import dns.rdatatype
import pytest

from daemon_proc import Daemon

HERE = Path(__file__).resolve().parent

#: TXT strings of a name whose answer is about 1,100 bytes: above a 1,000-byte MTU's
#: datagram, below the 1,232 bytes segmentation takes
BIG_STRINGS = 4
LOCAL = ['local-zone = ["test. static"]',
         'local-data = ["one.test. A 192.0.2.1", "two.test. A 192.0.2.2",'
         ' "three.test. AAAA 2001:db8::3", "four.test. TXT \\"four\\"",'
         + ", ".join(f'"big.test. TXT \\"{chr(97 + i) * 250}\\""' for i in range(BIG_STRINGS))
         + "]"]


def _config(tmp_path: Path) -> Path:
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text("\n".join(LOCAL) + "\n")
    return conf


def _query(name: str, rdtype: str, qid: int) -> bytes:
    q = dns.message.make_query(name, rdtype, use_edns=0, payload=1232)
    q.id = qid
    return q.to_wire()


def _burst(host: str, port: int, asked: list[tuple[int, str, str]], pid: int | None,
           timeout: float = 10.0) -> dict[int, dict[int, dns.message.Message]]:
    """Sends each (client, name, type) of ``asked`` from client socket number ``client``
    while the daemon ``pid`` is stopped, then lets it go: the answers by client and ID."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    clients = {c: socket.socket(family, socket.SOCK_DGRAM) for c, _, _ in asked}
    try:
        if pid is not None:
            os.kill(pid, signal.SIGSTOP)
        try:
            for i, (c, name, rdtype) in enumerate(asked):
                clients[c].sendto(_query(name, rdtype, 1000 + i), (host, port))
        finally:
            if pid is not None:
                os.kill(pid, signal.SIGCONT)
        got: dict[int, dict[int, dns.message.Message]] = {c: {} for c in clients}
        want = {c: sum(1 for k, _, _ in asked if k == c) for c in clients}
        deadline = time.monotonic() + timeout
        for c, s in clients.items():
            while len(got[c]) < want[c]:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                s.settimeout(left)
                try:
                    data = s.recv(65535)
                except socket.timeout:
                    break
                m = dns.message.from_wire(data)
                got[c][m.id] = m
        return got
    finally:
        for s in clients.values():
            s.close()


def _check(asked: list[tuple[int, str, str]], got: dict) -> None:
    """Every query has its own answer: its ID, its question, the local data it asks for."""
    for i, (c, name, rdtype) in enumerate(asked):
        m = got[c].get(1000 + i)
        assert m is not None, f"no answer to query {i} ({name} {rdtype}) of client {c}"
        assert m.question[0].name.to_text() == name
        assert m.question[0].rdtype == dns.rdatatype.from_text(rdtype)
        assert m.answer and m.answer[0].rdtype == dns.rdatatype.from_text(rdtype), m


def _sent(d: Daemon) -> tuple[int, int]:
    s = d.stats()["udp_sent"]
    return s["datagrams"], s["sends"]


@pytest.fixture
def daemon(tmp_path):
    d = Daemon(tmp_path / "d", None, "--config", str(_config(tmp_path)), control=True)
    d.args += ["--listen", f"[::1]:{d.port}"]
    d.start()
    yield d
    d.stop()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_answers_of_one_size_to_one_client_leave_together(daemon, host):
    asked = [(0, "one.test.", "A")] * 24
    before = _sent(daemon)
    got = _burst(host, daemon.port, asked, daemon.pid)
    _check(asked, got)
    datagrams, sends = (a - b for a, b in zip(_sent(daemon), before))
    assert datagrams == 24
    assert sends <= 2, f"24 answers of one size to one client took {sends} messages"
    text = daemon.metrics()
    series = dict(line.rsplit(" ", 1) for line in text.splitlines()
                  if line.startswith("corenet_resolver_udp_"))
    assert (int(series["corenet_resolver_udp_datagrams_sent_total"]),
            int(series["corenet_resolver_udp_sends_total"])) == _sent(daemon)


def test_mixed_sizes_and_clients_each_get_their_own_answers(daemon):
    """Three clients, four answer sizes, interleaved: every answer reaches its client whole,
    and fewer messages leave than datagrams (the runs of one size to one client)."""
    names = [("one.test.", "A"), ("two.test.", "A"), ("three.test.", "AAAA"),
             ("four.test.", "TXT"), ("big.test.", "TXT")]
    asked = [(i % 3, *names[(i // 3) % len(names)]) for i in range(45)]
    before = _sent(daemon)
    got = _burst("127.0.0.1", daemon.port, asked, daemon.pid)
    _check(asked, got)
    big = [m for c in got.values() for m in c.values() if m.question[0].name.to_text()
           == "big.test."]
    assert big and all(len(m.answer[0]) == BIG_STRINGS for m in big)
    datagrams, sends = (a - b for a, b in zip(_sent(daemon), before))
    assert datagrams == 45
    assert sends < datagrams


NETNS_CLIENT = """
import json, sys
sys.path[:0] = [{here!r}, {tests!r}]
from test_udp_segmented_answers import _burst
asked = [tuple(a) for a in json.loads(sys.argv[1])]
got = _burst("127.0.0.1", int(sys.argv[2]), asked, int(sys.argv[3]) or None)
print(json.dumps({{str(c): {{str(i): m.to_text() for i, m in ms.items()}}
                  for c, ms in got.items()}}))
"""


def _run(*cmd: str) -> None:
    subprocess.run(cmd, check=True, capture_output=True, timeout=10)


def test_a_path_that_refuses_segmented_sends_gets_each_answer_alone(tmp_path):
    """A loopback whose MTU (1,000) is below the answers' size (about 1,100 bytes): the
    kernel refuses the segmented send (EINVAL), the answers go again one by one (IP
    fragments them, as it would any answer larger than the path), the log says so once, and
    the next bursts go one by one from the start."""
    if os.geteuid() != 0:
        pytest.skip("needs root for a network namespace")
    ns = f"corenet-gso-{uuid.uuid4().hex[:8]}"
    _run("ip", "netns", "add", ns)
    try:
        _run("ip", "-n", ns, "link", "set", "lo", "mtu", "1000", "up")
        d = Daemon(tmp_path / "d", None, "--config", str(_config(tmp_path)), control=True,
                   wrap=("ip", "netns", "exec", ns))
        d.start()
        try:
            asked = [(0, "big.test.", "TXT")] * 16
            for burst in range(2):
                before = _sent(d)
                out = subprocess.run(
                    ["ip", "netns", "exec", ns, sys.executable, "-c",
                     NETNS_CLIENT.format(here=str(HERE), tests=str(HERE.parent)),
                     json.dumps(asked), str(d.port), str(d.pid)], capture_output=True, text=True, timeout=60, check=True)
                got = {int(c): {int(i): dns.message.from_text(t) for i, t in ms.items()}
                       for c, ms in json.loads(out.stdout).items()}
                _check(asked, got)
                assert all(len(m.answer[0]) == BIG_STRINGS for m in got[0].values())
                datagrams, sends = (a - b for a, b in zip(_sent(d), before))
                assert (datagrams, sends) == (16, 16), (burst, datagrams, sends)
            assert d.stats()["dropped"].get("send_error", 0) == 0
            assert d.log_text().count("takes no segmented sends") == 1, d.log_text()[-2000:]
        finally:
            d.stop()
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
