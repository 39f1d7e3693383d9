"""The control channel against clients that do not play along: a client that asks and stops
reading its answer is cut off once ``limits.control-timeout`` passes without it taking any
more, while one that reads slowly gets the whole of a large answer; connections past
``limits.control-max-connections`` are closed at once, and those that send nothing get their
error answer after the timeout, after which the operator's commands are answered again.
The server runs on the test's loop (asyncio's and corenet's, both triggers) over a Unix
socket, and over TCP with TLS, where a connection still in its handshake counts against the
cap; the last test checks the daemon's own wiring of the limits from its config."""
from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import types

import pytest

from daemon_proc import Daemon
from ports import free_port
from resolver.daemon.control import ControlServer, arequest, client_context, request
from resolver.limits import Limits
from tls_certs import CA

TIMEOUT = 1.0
BIG = 8 * 1024 * 1024           # far more than the kernel holds on a Unix socket


async def handler(req: dict) -> dict:
    if req["cmd"] == "dump":
        return {"ok": True, "text": "x" * BIG}
    return {"ok": True, "text": f"{req['cmd']} done"}


@pytest.fixture
def served(loop, tmp_path):
    """(loop, server, path): a control server with small limits, started on the test's
    loop."""
    path = str(tmp_path / "control.sock")
    server = ControlServer(path, handler, 0o600,
                           Limits(control_timeout=TIMEOUT, control_max_connections=3))
    loop.run_until_complete(server.start())
    yield loop, server, path
    loop.run_until_complete(server.close())


def connect(path: str, rcvbuf: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5.0)
    s.connect(path)
    return s


def drive(loop, seconds: float) -> None:
    """Runs the server's loop for ``seconds`` while the test's sockets stand still."""
    loop.run_until_complete(asyncio.sleep(seconds))


def read_to_end(s: socket.socket) -> bytes:
    s.settimeout(2.0)
    got = []
    try:
        while chunk := s.recv(65536):
            got.append(chunk)
    except ConnectionResetError:
        pass
    return b"".join(got)


def test_a_client_that_stops_reading_its_answer_is_cut_off(served):
    loop, server, path = served
    s = connect(path, rcvbuf=4096)
    with s:
        s.sendall(b'{"cmd": "dump"}\n')
        drive(loop, TIMEOUT / 2)
        assert server.cap.open == 1             # waiting on the client, within the time
        drive(loop, TIMEOUT * 1.5)
        assert server.cap.open == 0             # cut off: nothing of the answer kept
        assert len(read_to_end(s)) < BIG // 4   # what the kernel held, then the end


def test_a_client_that_reads_slowly_gets_the_whole_answer(served):
    loop, server, path = served
    got: dict = {}

    def slow_reader() -> None:
        # 64 KiB every 0.05 s: the 8 MiB answer takes some 6 s, the timeout's six times
        with connect(path, rcvbuf=65536) as s:
            s.sendall(b'{"cmd": "dump"}\n')
            chunks, size, started = [], 0, time.monotonic()
            while chunk := s.recv(65536):
                chunks.append(chunk)
                size += len(chunk)
                time.sleep(0.05 * len(chunk) / 65536)
            got["took"] = time.monotonic() - started
            got["answer"] = json.loads(b"".join(chunks))

    t = threading.Thread(target=slow_reader)
    t.start()
    deadline = time.monotonic() + 60
    while t.is_alive() and time.monotonic() < deadline:
        drive(loop, 0.1)
    t.join(timeout=1.0)
    assert not t.is_alive()
    assert got["took"] > 3 * TIMEOUT            # much longer than the timeout in all
    assert got["answer"] == {"ok": True, "text": "x" * BIG}
    assert server.cap.open == 0


def test_connections_past_the_cap_are_closed_at_once(served):
    loop, server, path = served
    held = [connect(path) for _ in range(3)]    # connected, sending nothing
    try:
        drive(loop, 0.2)
        assert server.cap.open == 3
        extra = connect(path)
        with extra:
            drive(loop, 0.2)
            assert read_to_end(extra) == b""    # no answer and no wait: closed
        assert server.cap.turned_away == 1 and server.cap.open == 3
        drive(loop, TIMEOUT + 0.5)              # the silent ones are answered and closed
        assert server.cap.open == 0
        for s in held:
            answer = json.loads(read_to_end(s))
            assert answer["ok"] is False and answer["error"].startswith("bad request")
        answer = loop.run_until_complete(arequest(path, {"cmd": "status"}))
        assert answer == {"ok": True, "text": "status done"}    # room again
        assert server.cap.turned_away == 0
    finally:
        for s in held:
            s.close()


def test_connections_in_their_tls_handshake_count_against_the_cap(loop, tmp_path):
    ca = CA(tmp_path / "server", "unbound")
    server_pem, server_key = ca.self_signed()
    client_pem, client_key = ca.issue("unbound-control", purpose="client")
    port = free_port()
    tcp = types.SimpleNamespace(
        control_use_cert=True, control_interface=["127.0.0.1"], control_port=port,
        server_cert_file=str(server_pem), server_key_file=str(server_key),
        control_cert_file=str(client_pem), control_key_file=str(client_key))
    server = ControlServer(None, handler, 0o600,
                           Limits(control_timeout=TIMEOUT, control_max_connections=2), tcp)
    loop.run_until_complete(server.start())

    async def ask() -> dict:
        reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                       ssl=client_context(tcp))
        try:
            writer.write(b'{"cmd": "status"}\n')
            return json.loads(await reader.readline())
        finally:
            writer.close()

    held = [socket.create_connection(("127.0.0.1", port), timeout=5.0) for _ in range(2)]
    try:
        drive(loop, 0.2)
        assert server.cap.open == 2             # no ClientHello yet: held all the same
        with socket.create_connection(("127.0.0.1", port), timeout=5.0) as extra:
            drive(loop, 0.2)
            assert read_to_end(extra) == b""    # closed at once, before any handshake
        assert server.cap.turned_away == 1
        drive(loop, TIMEOUT + 0.5)              # the handshakes' time is up: cut off
        assert server.cap.open == 0
        for s in held:
            assert read_to_end(s) == b""
        assert loop.run_until_complete(ask()) == {"ok": True, "text": "status done"}
        assert server.cap.open == 0 and server.cap.turned_away == 0
    finally:
        for s in held:
            s.close()
        loop.run_until_complete(server.close())


def test_the_daemon_takes_its_control_limits_from_the_config(lab, tmp_path):
    conf = tmp_path / "limits.toml"
    conf.write_text("[limits]\ncontrol-max-connections = 2\ncontrol-timeout = 2.0\n")
    d = Daemon(tmp_path, lab, "--config", str(conf)).start()
    try:
        held = [connect(d.control) for _ in range(2)]
        try:
            time.sleep(0.5)                     # the daemon has taken both in
            with connect(d.control) as extra:
                assert read_to_end(extra) == b""    # closed at once (a wait: timeout)
            started = time.monotonic()
            for s in held:                      # answered once control-timeout has passed
                assert json.loads(read_to_end(s))["error"].startswith("bad request")
            assert 0.5 < time.monotonic() - started < 4.0
            assert request(d.control, {"cmd": "status"})["ok"]
        finally:
            for s in held:
                s.close()
        assert "control: 2 connections at once" in d.log_text()
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
