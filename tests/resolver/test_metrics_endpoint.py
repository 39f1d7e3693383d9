"""The metrics endpoint against peers that do not play along, on the daemon over loopback:
a connection that sends no request, or asks and never reads its response, is aborted once
``limits.metrics-timeout`` passes, and connections past ``limits.metrics-max-connections``
are closed at once, so neither descriptors nor rendered responses pile up; a scraper that
behaves is answered all along."""
from __future__ import annotations

import asyncio
import socket
import time

import pytest

from daemon_proc import Daemon
from resolver.daemon.metrics import MetricsServer
from resolver.limits import Limits

TIMEOUT = 3.0
MAX_CONNECTIONS = 4
GET = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("metrics")
    conf = workdir / "metrics.toml"
    conf.write_text(f"[limits]\nmetrics-timeout = {TIMEOUT}\n"
                    f"metrics-max-connections = {MAX_CONNECTIONS}\n")
    d = Daemon(workdir, lab, "--config", str(conf)).start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def stalled_scraper(address: tuple[str, int]) -> socket.socket:
    """A connection that asks for the metrics and reads nothing, with a small receive
    window and small segments, so that little of the response fits in the kernel's buffers
    on either side (as over a slow network): the rest waits in the daemon."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 536)
    s.settimeout(5.0)
    s.connect(address)
    s.sendall(GET)
    return s


def ended(s: socket.socket, within: float) -> bool:
    """Whether the daemon ends the connection within ``within`` seconds (what it sent is
    read and thrown away: reading is what shows the end)."""
    deadline = time.monotonic() + within
    s.settimeout(0.2)
    while time.monotonic() < deadline:
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
    return False


def settled_fds(d) -> int:
    """The daemon's descriptors once the scrape just made has ended on its side too."""
    last, deadline = d.fds(), time.monotonic() + 3.0
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = d.fds()
        if now == last:
            return now
        last = now
    return last


def fds_up_to(d, count: int, within: float) -> int:
    """The daemon's descriptors once ``count`` are open (connections it has yet to accept
    on a busy machine), or as many as are open after ``within`` seconds."""
    deadline = time.monotonic() + within
    while d.fds() < count and time.monotonic() < deadline:
        time.sleep(0.02)
    return d.fds()


def fds_back_to(d, count: int, within: float) -> int:
    deadline = time.monotonic() + within
    while d.fds() > count and time.monotonic() < deadline:
        time.sleep(0.05)
    return d.fds()


def test_a_connection_that_sends_no_request_is_aborted_after_the_timeout(daemon):
    daemon.metrics()                                # the endpoint's listener is up
    base = settled_fds(daemon)
    conns = [socket.create_connection(("127.0.0.1", daemon.metrics_port), timeout=5)
             for _ in range(MAX_CONNECTIONS - 1)]
    try:
        conns[0].sendall(b"GET /metrics HTTP/1.1\r\n")     # a head that never ends
        time.sleep(TIMEOUT / 2)
        assert daemon.fds() == base + len(conns)   # held while within the timeout
        assert daemon.metrics()                     # a scraper is answered meanwhile
        assert fds_back_to(daemon, base, TIMEOUT + 3.0) == base
        for s in conns:
            assert ended(s, 1.0)
        assert daemon.metrics()
    finally:
        for s in conns:
            s.close()


def test_a_scraper_that_never_reads_its_response_is_aborted_after_the_timeout(daemon):
    # The daemon's own response (about 15 KiB) fits in the kernel's buffers on loopback:
    # the server is run here, on a loop of the test's, with the daemon's figures and two
    # thousand response policy zones besides (a response of some 600 KiB, as many labels
    # make it), so that it waits on a scraper that does not read.
    stats = daemon.stats()
    stats["rpz"] = {"matches": {}, "zones": {
        f"z{i:04}.rpz.": {"triggers": i, "serial": i, "transfers": 1, "failures": 0}
        for i in range(2000)}}
    server = MetricsServer(("127.0.0.1", 0), lambda: stats,
                           Limits(metrics_timeout=TIMEOUT, metrics_max_connections=4))
    loop = asyncio.new_event_loop()
    bound = loop.run_until_complete(server.start())
    try:
        assert len(loop.run_until_complete(scrape(bound))) > 500_000     # what it sends
        s = stalled_scraper(bound)
        with s:
            loop.run_until_complete(asyncio.sleep(TIMEOUT / 2))
            assert server.cap.open == 1             # waiting on the client, within the time
            loop.run_until_complete(asyncio.sleep(TIMEOUT))
            assert server.cap.open == 0             # aborted: nothing of it is kept
            s.settimeout(2.0)
            got = 0
            try:
                while chunk := s.recv(65536):      # what the kernels held, then the end
                    got += len(chunk)
            except ConnectionResetError:
                pass
            assert got < 500_000                   # far from the whole response
    finally:
        loop.run_until_complete(server.close())
        loop.close()


async def scrape(bound) -> bytes:
    reader, writer = await asyncio.open_connection(*bound)
    writer.write(GET)
    data = await reader.read()
    writer.close()
    return data


def test_connections_past_the_cap_are_closed_at_once(daemon):
    daemon.metrics()
    base = settled_fds(daemon)
    held = [socket.create_connection(("127.0.0.1", daemon.metrics_port), timeout=5)
            for _ in range(MAX_CONNECTIONS)]
    try:
        assert fds_up_to(daemon, base + MAX_CONNECTIONS, TIMEOUT / 2) == base + MAX_CONNECTIONS
        time.sleep(0.1)                             # the server has taken them in
        extra = socket.create_connection(("127.0.0.1", daemon.metrics_port), timeout=5)
        with extra:
            assert ended(extra, 1.0)               # no response and no wait: closed
        assert daemon.fds() == base + MAX_CONNECTIONS
        assert fds_back_to(daemon, base, TIMEOUT + 3.0) == base
        assert daemon.metrics()                     # room again once they are gone
    finally:
        for s in held:
            s.close()
