"""``tcp-connection-limit``: the TCP connections the clients of a network may hold at once,
side by side with a real Unbound given the same lines. The longest network holding a client
counts it; past its limit a new connection is closed without an answer, and a connection
that closes makes room again. Clients on loopback, from 127.0.0.1 and 127.0.0.2."""
from __future__ import annotations

import os
import shutil
import socket
import time

import dns.message
import pytest
from ci_policy import unavailable

from daemon_proc import Daemon, answer_or_shut, cli, frame
from dnslab.unbound import local_unbound
from ports import free_port
from procs import stop as stop_process
from tls_certs import CA

UNBOUND = shutil.which("unbound") or "/usr/sbin/unbound"
LIMITS = ("127.0.0.0/8 2", "127.0.0.2/32 0")


def connect(port: int, source: str) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    s.settimeout(5)
    return s


def answered(s: socket.socket) -> bool:
    """Whether the connection answers a query for ``a.test.`` (False: shut without one)."""
    got = answer_or_shut(s, frame(dns.message.make_query("a.test.", "A").to_wire()))
    return got is not None and dns.message.from_wire(got).answer[0][0].to_text() == "10.0.0.1"


@pytest.fixture
def both(lab, tmp_path):
    """The ports of a real Unbound and of the daemon, each with ``LIMITS``."""
    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    uport = free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, ["local-zone: test. static", 'local-data: "a.test. A 10.0.0.1"',
                                    *(f"tcp-connection-limit: {line}" for line in LIMITS)])
    conf = tmp_path / "resolver.toml"
    conf.write_text('local-data = ["a.test. 300 A 10.0.0.1"]\n'
                    f"tcp-connection-limit = {list(LIMITS)!r}\n".replace("'", '"'))
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        yield {"unbound": uport, "corenet": d.port}, d
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


def test_a_network_holds_its_limit_of_connections_as_unbound_s(both):
    ports, d = both
    held = []
    try:
        for who, port in ports.items():
            first, second = connect(port, "127.0.0.1"), connect(port, "127.0.0.1")
            held += [first, second]
            assert answered(first) and answered(second), who
            third = connect(port, "127.0.0.1")       # the network's third: closed at once
            assert not answered(third), who
            third.close()
            # 127.0.0.2 is counted against its own network, whose limit is 0
            other = connect(port, "127.0.0.2")
            assert not answered(other), who
            other.close()
        # A connection that closes makes room for one again. Unbound releases none before
        # 1.26 (its fix "to decrement the per-netblock tcp connection limits, so it keeps
        # usable"; Debian's is 1.17): the daemon alone, as the fixed Unbound does.
        held[2].close()
        deadline = time.monotonic() + 5
        while True:
            again = connect(ports["corenet"], "127.0.0.1")
            ok = answered(again)
            again.close()
            if ok:
                break
            assert time.monotonic() < deadline, "the closed connection left no room"
            time.sleep(0.05)
    finally:
        for s in held:
            s.close()
    assert d.stats()["tcp"]["rejected"] >= 2
    assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]


def test_a_reload_takes_new_limits_and_keeps_counting_the_open_ones(lab, tmp_path):
    conf = tmp_path / "resolver.toml"
    conf.write_text('local-data = ["a.test. 300 A 10.0.0.1"]\n'
                    'tcp-connection-limit = ["127.0.0.0/8 1"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        held = connect(d.port, "127.0.0.1")
        assert answered(held)
        extra = connect(d.port, "127.0.0.1")
        assert not answered(extra)
        extra.close()
        conf.write_text('local-data = ["a.test. 300 A 10.0.0.1"]\n'
                        'tcp-connection-limit = ["127.0.0.0/8 2"]\n')
        r = cli("--control", d.control, "reload")
        assert r.returncode == 0, r.stdout + r.stderr
        second = connect(d.port, "127.0.0.1")        # the one open still counts: 2 of 2
        assert answered(second)
        third = connect(d.port, "127.0.0.1")
        assert not answered(third)
        for s in (held, second, third):
            s.close()
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def closed_unread(port: int, source: str) -> bool:
    """Whether a TCP connection to ``port`` from ``source`` that sends nothing is closed by
    the server within two seconds (a TLS server waiting for the ClientHello keeps it open)."""
    s = connect(port, source)
    try:
        return _shut(s, 2.0)
    finally:
        s.close()


def test_a_network_at_its_limit_gets_no_tls_handshake_as_from_unbound(lab, tmp_path):
    """Over DNS over TLS the limit is checked at the accept, as Unbound checks it: a network
    holding its connections (here one, over plain TCP) gets its new TLS connections closed
    before any handshake, which would cost the server a signature each; a client outside
    the network still gets its handshake (127.0.0.2: Unbound 1.17 never gives a slot back,
    so the limited network is not tried before it holds its one)."""
    if not os.path.exists(UNBOUND):
        unavailable(f"{UNBOUND} is missing (Debian package 'unbound')")
    ca = CA(tmp_path / "pki")
    pem, key = ca.issue("server")
    uport, utls, dtls = free_port(), free_port(), free_port()
    w = tmp_path / "unbound"
    w.mkdir()
    proc = local_unbound(w, uport, ["local-zone: test. static", 'local-data: "a.test. A 10.0.0.1"',
                                    f"interface: 127.0.0.1@{utls}", f"tls-port: {utls}",
                                    f'tls-service-pem: "{pem}"', f'tls-service-key: "{key}"',
                                    "tcp-connection-limit: 127.0.0.1/32 1"])
    conf = tmp_path / "resolver.toml"
    conf.write_text('local-data = ["a.test. 300 A 10.0.0.1"]\n'
                    'tcp-connection-limit = ["127.0.0.1/32 1"]\n'
                    f'tls-listen = ["127.0.0.1:{dtls}"]\n'
                    f'tls-service-pem = "{pem}"\ntls-service-key = "{key}"\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        for who, port, tls in (("unbound", uport, utls), ("corenet", d.port, dtls)):
            held = connect(port, "127.0.0.1")
            assert answered(held), who
            assert closed_unread(tls, "127.0.0.1"), who     # at its limit: closed at once
            assert not closed_unread(tls, "127.0.0.2"), who     # waits for a handshake
            held.close()
        assert d.stats()["tls"]["handshakes"] == 0
        assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]
    finally:
        stop_process(proc, 5.0, group=True)
        assert d.stop() == 0, d.log_text()[-2000:]


def _shut(s: socket.socket, timeout: float = 1.0) -> bool:
    """Whether the server closes ``s`` within ``timeout`` seconds, sending nothing."""
    s.settimeout(timeout)
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def test_the_workers_count_a_network_s_connections_together(lab, tmp_path):
    """With two workers a network holds its limit in all, as Unbound's threads count it
    together, wherever the kernel sends each connection; a worker that dies takes its
    connections out of the count, and the one started in its place counts from none."""
    conf = tmp_path / "resolver.toml"
    conf.write_text('local-data = ["a.test. 300 A 10.0.0.1"]\n'
                    'tcp-connection-limit = ["127.0.0.0/8 3"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--workers", "2").start(
        ready="ready: 2 workers")
    held: list[socket.socket] = []
    try:
        for _ in range(10):           # ten source ports: both workers get some
            s = connect(d.port, "127.0.0.1")
            if answered(s):
                held.append(s)
            else:
                s.close()
        assert len(held) == 3
        with open(f"/proc/{d.pid}/task/{d.pid}/children") as f:
            workers = [int(x) for x in f.read().split()]
        assert len(workers) == 2
        os.kill(workers[0], 9)
        gone = [s for s in held if _shut(s)]
        deadline = time.monotonic() + 10
        while True:                   # the worker started again
            with open(f"/proc/{d.pid}/task/{d.pid}/children") as f:
                now = [int(x) for x in f.read().split()]
            if len(now) == 2 and workers[0] not in now:
                break
            assert time.monotonic() < deadline, d.log_text()[-2000:]
            time.sleep(0.1)
        for s in gone:
            held.remove(s)
            s.close()
        # room for as many as the dead worker held, once every worker is serving again
        deadline = time.monotonic() + 10
        while len(held) < 3:
            s = connect(d.port, "127.0.0.1")
            if answered(s):
                held.append(s)
            else:
                s.close()
                assert time.monotonic() < deadline, (len(held), d.log_text()[-2000:])
                time.sleep(0.05)
        for _ in range(10):
            s = connect(d.port, "127.0.0.1")
            assert not answered(s)
            s.close()
    finally:
        for s in held:
            s.close()
        assert d.stop() == 0, d.log_text()[-2000:]


def test_a_worker_s_row_follows_a_reload_and_the_others_rows_count():
    from resolver.daemon.connection_limits import ConnectionLimits, Table

    table = Table(2, width=2)
    mine = ConnectionLimits([("10.0.0.0/8", 3), ("192.0.2.0/24", 1)], table, 0)
    other = ConnectionLimits([("10.0.0.0/8", 3), ("192.0.2.0/24", 1)], table, 1)
    ten, doc = mine.network("10.1.2.3"), mine.network("192.0.2.9")
    assert ten == ("10.0.0.0/8", 3) and doc == ("192.0.2.0/24", 1)
    assert mine.network("172.16.0.1") is None and not mine.full(None)
    mine.hold("a", ten)
    other.hold("b", ten)
    other.hold("c", ten)
    assert mine.full(ten) and other.full(ten) and not mine.full(doc)
    other.release("b")
    other.release("b")                       # a second release counts nothing
    assert not mine.full(ten)
    # a reload that reorders the networks and adds one past the table's width
    mine.set([("192.0.2.0/24", 1), ("10.0.0.0/8", 2), ("198.51.100.0/24", 1)])
    other.set([("192.0.2.0/24", 1), ("10.0.0.0/8", 2), ("198.51.100.0/24", 1)])
    ten = mine.network("10.9.9.9")
    assert ten == ("10.0.0.0/8", 2) and mine.full(ten)       # a and c, still counted
    far = mine.network("198.51.100.7")
    mine.hold("d", far)                      # past the width: this worker's own count
    assert mine.full(far) and not other.full(far)
    table.clear(1)                           # the other worker died: its c is gone
    assert not mine.full(ten)
