"""HTTP/2 against hypercorn (on the `h2` package), a second server implementation besides
nginx: multiplexing, streamed uploads, trailers, flow control on a large download, and a
graceful shutdown whose GOAWAY the client follows to another server on the same port."""
from __future__ import annotations

import asyncio
import hashlib
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from https_hypercorn import SMALL, pattern
from procs import stop

from corenet.https import AsyncClient, Limits

HERE = Path(__file__).parent


def listening_socket() -> socket.socket:
    """A TCP socket listening on a free loopback port, for hypercorn processes to share."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def start_hypercorn(sock: socket.socket, pki: dict, log: Path) -> subprocess.Popen:
    """hypercorn serving https_hypercorn.app on `sock`, its log in `log`; returns once the
    app has started."""
    fd = sock.fileno()
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, str(HERE / "https_hypercorn.py"), str(fd),
             str(pki["valid_cert"]), str(pki["valid_key"])],
            pass_fds=(fd,), stdout=subprocess.PIPE, stderr=err, text=True)
    line = ""
    try:
        # One line, bounded in time: "ready" from the app's lifespan startup.
        out = proc.stdout
        assert out is not None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            r, _, _ = select.select([out], [], [], 0.2)
            if r:
                line = out.readline().strip()
                break
    except BaseException:
        stop(proc)
        raise
    if line != "ready":
        stop(proc)
        raise RuntimeError(f"hypercorn did not start: {line!r} {log.read_text()}")
    return proc


@pytest.fixture(scope="module")
def hyper(pki, tmp_path_factory):
    sock = listening_socket()
    proc = start_hypercorn(sock, pki, tmp_path_factory.mktemp("hypercorn") / "log")
    try:
        yield f"https://localhost:{sock.getsockname()[1]}", str(pki["ca"]), proc.pid
    finally:
        stop(proc)
        sock.close()


def test_multiplexed_gets_share_one_connection(hyper, run):
    url, ca, pid = hyper

    async def main():
        async with AsyncClient(verify=ca, http2=True) as c:
            started = time.monotonic()
            rs = await asyncio.gather(*(c.get(url + "/sleep?ms=400") for _ in range(20)))
            took = time.monotonic() - started
            small = await c.get(url + "/small")
            return rs, took, small, c.pool.connections_opened

    rs, took, small, opened = run(main(), 20)
    assert all(r.status_code == 200 and r.content == b"slept" for r in rs)
    assert all(r.http_version == "HTTP/2" for r in rs)
    assert len({r.extensions["stream_id"] for r in rs}) == 20
    assert {r.headers["x-pid"] for r in rs} == {str(pid)}
    assert took < 4.0  # at once, not 20 x 0.4 s one after another
    assert small.content == SMALL and small.extensions["connection_reused"]
    assert opened == 1


def test_streamed_upload(hyper, run):
    url, ca, _ = hyper
    pieces = [bytes([i]) * 50_000 for i in range(40)]  # 2 MB, past the initial windows
    whole = b"".join(pieces)

    async def gen():
        for p in pieces:
            yield p
            await asyncio.sleep(0)

    async def main():
        async with AsyncClient(verify=ca, http2=True) as c:
            streamed = await c.post(url + "/echo", content=gen())
            sized = await c.post(url + "/echo", content=gen(),
                                 headers={"Content-Length": str(len(whole))})
            at_once = await c.post(url + "/echo", content=whole)
            return streamed, sized, at_once

    for r in run(main(), 30):
        assert r.status_code == 200 and r.http_version == "HTTP/2"
        assert r.json()["length"] == len(whole)
        assert r.json()["sha256"] == hashlib.sha256(whole).hexdigest()


def test_trailers(hyper, run):
    url, ca, _ = hyper

    async def main():
        async with AsyncClient(verify=ca, http2=True) as c:
            asked = await c.get(url + "/trailers", headers={"TE": "trailers"})
            not_asked = await c.get(url + "/trailers")
            return asked, not_asked

    asked, not_asked = run(main())
    assert asked.status_code == 200
    assert asked.extensions["trailers"]["x-checksum"] == \
        hashlib.sha256(asked.content).hexdigest()
    assert "x-checksum" not in asked.headers
    assert not_asked.content == asked.content and "trailers" not in not_asked.extensions


def test_large_download_with_flow_control(hyper, run):
    url, ca, _ = hyper
    mib = 16
    want = hashlib.sha256(pattern(mib << 20)).hexdigest()
    # Windows far smaller than the body: the download moves only as the client opens them.
    limits = Limits(h2_stream_window=64 * 1024, h2_connection_window=128 * 1024)

    async def main():
        async with AsyncClient(verify=ca, http2=True, limits=limits) as c:
            whole = await c.get(url + f"/large?mib={mib}")
            digest = hashlib.sha256()
            pieces = 0
            async with c.stream("GET", url + f"/large?mib={mib}") as r:
                async for chunk in r.aiter_raw():
                    digest.update(chunk)
                    pieces += 1
                    if pieces == 2:
                        # A slow reader: the server must wait for the window meanwhile.
                        await asyncio.sleep(0.3)
            both = await asyncio.gather(*(c.get(url + "/large?mib=2") for _ in range(3)))
            return whole, digest.hexdigest(), pieces, both, c.pool.connections_opened

    whole, streamed, pieces, both, opened = run(main(), 60)
    assert whole.status_code == 200 and len(whole.content) == mib << 20
    assert hashlib.sha256(whole.content).hexdigest() == want
    assert streamed == want and pieces > 2
    assert all(r.content == pattern(2 << 20) for r in both)
    assert opened == 1


def test_goaway_on_shutdown_requests_not_processed_go_to_the_next_server(pki, run,
                                                                         tmp_path):
    """The first server shuts down with a request in flight: that one is answered, the
    requests sent meanwhile are reset unprocessed, then a GOAWAY ends the connection. The
    client sends those requests again on a new connection, which a second server on the
    same port (the same listening socket) takes."""
    sock = listening_socket()
    url = f"https://localhost:{sock.getsockname()[1]}"
    first = start_hypercorn(sock, pki, tmp_path / "first.log")
    second = None
    try:
        async def main():
            nonlocal second
            async with AsyncClient(verify=str(pki["ca"]), http2=True, timeout=15) as c:
                warm = await c.get(url + "/small")
                slow = asyncio.ensure_future(c.get(url + "/sleep?ms=1500"))
                await asyncio.sleep(0.3)
                # The second server shares the socket from now on; the first one stops
                # taking connections when it shuts down.
                second = start_hypercorn(sock, pki, tmp_path / "second.log")
                first.send_signal(15)
                await asyncio.sleep(0.5)  # the first server is shutting down
                late = await asyncio.gather(*(c.get(url + "/small") for _ in range(5)))
                return warm, await slow, late, c.pool.connections_opened

        warm, slow, late, opened = run(main(), 40)
        # Shut down gracefully: no frame of ours crossed its close_notify.
        assert first.wait(10) == 0, (tmp_path / "first.log").read_text()
        a, b = str(first.pid), str(second.pid)
        assert warm.headers["x-pid"] == a
        assert slow.status_code == 200 and slow.headers["x-pid"] == a  # finished, not cut
        assert [r.status_code for r in late] == [200] * 5
        assert {r.headers["x-pid"] for r in late} == {b}
        assert all(r.content == SMALL for r in late)
        assert opened == 2
    finally:
        stop(first)
        if second is not None:
            stop(second)
        sock.close()
