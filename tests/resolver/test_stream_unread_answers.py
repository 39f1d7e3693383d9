"""A DNS-over-TCP or -TLS client that sends queries and does not read the answers, against
the daemon on loopback: past ``limits.tcp-max-pending-output`` bytes of answers waiting the
connection is no longer read, and it is aborted once ``tcp-write-timeout`` passes without
the client draining them (``write_stalled``); a connection closed (idle) with answers
unread is aborted within the same time (``close_stalled``). The daemon's memory does not
follow the queries; a client that reads late but reads gets every answer."""
from __future__ import annotations

import socket
import ssl
import struct
import threading
import time

import dns.message
import pytest

from daemon_proc import Daemon, frame, read_frame
from ports import free_port
from tls_certs import CA

WRITE_TIMEOUT = 1.0
#: one TXT record of eight 250-byte strings: answers of about 2 KiB
BIG = " ".join('\\"' + "x" * 250 + '\\"' for _ in range(8))


def start(workdir, lab, server: str, limits: str) -> Daemon:
    """The daemon with ``big.test.`` as local data, a DoT listener, ``server`` settings
    and ``limits``."""
    ca = CA(workdir / "pki")
    pem, key = ca.issue("server")
    tls = free_port()
    conf = workdir / "unread.toml"
    conf.write_text(f'local-data = ["big.test. 300 TXT {BIG}"]\n'
                    f'tls-listen = ["127.0.0.1:{tls}"]\n'
                    f'tls-service-pem = "{pem}"\ntls-service-key = "{key}"\n'
                    f'{server}[limits]\n{limits}')
    d = Daemon(workdir, lab, "--config", str(conf)).start()
    d.ca, d.tls_port = ca, tls
    return d


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    d = start(tmp_path_factory.mktemp("unread"), lab, "",
              f"tcp-max-pending-output = 16384\ntcp-write-timeout = {WRITE_TIMEOUT}\n")
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def connect(d, transport: str, rcvbuf: int | None = 4096) -> socket.socket:
    """A connection to the daemon's TCP or TLS listener with a small receive buffer (the
    kernel keeps less of what is not read)."""
    s = socket.socket()
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5.0)
    if transport == "tcp":
        s.connect(("127.0.0.1", d.port))
        return s
    s.connect(("127.0.0.1", d.tls_port))
    ctx = ssl.create_default_context(cafile=str(d.ca.pem))
    ctx.set_alpn_protocols(["dot"])
    return ctx.wrap_socket(s, server_hostname="dns.test")


def query(qid: int) -> bytes:
    q = dns.message.make_query("big.test.", "TXT")
    q.id = qid
    return frame(q.to_wire())


def push_unread(s: socket.socket, limit: float) -> tuple[float, int]:
    """Sends queries and never reads: the seconds until the server ended the connection
    (inf: it did not within ``limit``) and the queries sent."""
    burst = query(1) * 500
    t0 = time.monotonic()
    sent = 0
    s.settimeout(0.2)
    with s:
        while time.monotonic() - t0 < limit:
            try:
                s.sendall(burst)
                sent += 500
            except socket.timeout:
                pass                  # the server no longer reads: keep pushing
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
                return time.monotonic() - t0, sent
            time.sleep(0.002)
    return float("inf"), sent


def tcp_stats(d) -> dict:
    return d.stats()["tcp"]


def served(d, transport: str) -> None:
    with connect(d, transport, rcvbuf=None) as s:
        s.sendall(query(7))
        answer = dns.message.from_wire(read_frame(s))
    assert answer.id == 7 and answer.answer


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_answers_nobody_reads_stop_the_reading_then_end_the_connection(daemon, transport):
    before = tcp_stats(daemon)
    rss0 = daemon.rss()
    after, sent = push_unread(connect(daemon, transport), 8.0)
    # Not read past 16 KiB of answers, aborted WRITE_TIMEOUT later: the queries it got to
    # send are those the kernel's buffers took, not 8 s worth (millions).
    assert after < 6 * WRITE_TIMEOUT, sent
    stats = tcp_stats(daemon)
    assert stats["write_stalled"] == before["write_stalled"] + 1
    assert stats["close_stalled"] == before["close_stalled"]
    assert daemon.rss() - rss0 < 32 << 20
    assert stats["open"] == 0
    assert (f'corenet_resolver_tcp_connections_total{{outcome="write_stalled"}} '
            f'{stats["write_stalled"]}') in daemon.metrics()
    served(daemon, transport)


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_a_client_that_reads_late_gets_every_answer(daemon, transport):
    """Three thousand pipelined queries (6 MiB of answers, far past the limit) from a
    client that starts reading 0.3 s later: the reading pauses and resumes as it drains,
    and every answer comes, none lost, the connection not aborted."""
    count = 3000
    before = tcp_stats(daemon)["write_stalled"]
    got: list[int] = []

    with connect(daemon, transport) as s:
        def read() -> None:
            time.sleep(0.3)
            while len(got) < count:
                wire = read_frame(s)
                if wire is None:
                    return
                got.append(struct.unpack("!H", wire[:2])[0])

        reader = threading.Thread(target=read)
        reader.start()
        s.sendall(b"".join(query(i) for i in range(count)))
        reader.join(30.0)
        assert not reader.is_alive()
    assert sorted(got) == list(range(count))
    assert tcp_stats(daemon)["write_stalled"] == before


@pytest.fixture(scope="module")
def idle(lab, tmp_path_factory):
    """No pending-output limit to speak of (64 MiB), an idle timeout of 1 s."""
    d = start(tmp_path_factory.mktemp("unread-idle"), lab, "tcp-idle-timeout = 1\n",
              f"tcp-max-pending-output = {64 << 20}\ntcp-write-timeout = {WRITE_TIMEOUT}\n")
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


@pytest.mark.parametrize("transport", ["tcp", "tls"])
def test_a_connection_closed_with_answers_unread_is_aborted(idle, transport):
    """Five thousand queries (10 MiB of answers, more than the kernel's buffers hold) and no
    reading: the connection goes idle, is closed, and since the answers still wait, aborted
    ``tcp-write-timeout`` later, its descriptor and buffers freed."""
    before = tcp_stats(idle)
    fds = idle.fds()
    s = connect(idle, transport)
    with s:
        s.sendall(b"".join(query(i) for i in range(5000)))
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            stats = tcp_stats(idle)
            if stats["close_stalled"] > before["close_stalled"]:
                break
            time.sleep(0.1)
        assert stats["close_stalled"] == before["close_stalled"] + 1
        assert stats["idle_closed"] == before["idle_closed"] + 1
        assert stats["write_stalled"] == before["write_stalled"]
        assert stats["open"] == 0
        while idle.fds() > fds and time.monotonic() < deadline + 2.0:
            time.sleep(0.05)          # (the descriptor goes as the abort completes)
        assert idle.fds() <= fds      # (fewer: one the last test left was closing)
        # What the kernel had taken comes, then the end: the rest was dropped.
        answers = 0
        try:
            while read_frame(s) is not None:
                answers += 1
        except (ConnectionResetError, ssl.SSLError):
            pass
        assert 0 < answers < 5000
