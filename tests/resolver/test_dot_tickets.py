"""``tls-session-tickets``: how many TLS 1.3 session tickets the DNS-over-TLS listener sends
after a full handshake, counted by a client the project did not write (``openssl s_client
-msg``), and applied to new connections on reload."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from dot_server import dot_settings, lab_server
from resolver.daemon.config import ConfigError, build

OPENSSL = shutil.which("openssl")


def _tickets(port: int) -> int:
    """NewSessionTicket messages a TLS 1.3 client receives on one connection, its input
    held open for a moment so that the tickets (sent after the handshake) arrive."""
    if OPENSSL is None:
        pytest.fail("openssl (Debian package 'openssl') is not installed")
    cmd = f"sleep 0.5 | {OPENSSL} s_client -connect 127.0.0.1:{port} -tls1_3 -msg"
    r = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=20)
    assert "ServerHello" in r.stdout, r.stdout + r.stderr        # the handshake happened
    return len(re.findall(r"^<<< .*NewSessionTicket", r.stdout, re.M))


@pytest.mark.parametrize("value,expected", [(None, 2), (1, 1), (0, 0)])
def test_the_listener_sends_the_configured_tickets(run, lab, loop, tmp_path, value, expected):
    settings, _, _, tls_port = dot_settings(tmp_path, lab)
    if value is not None:
        settings["tls_session_tickets"] = value
    cfg = build(None, settings)

    async def go():
        s = lab_server(cfg, lab)
        await s.start()
        try:
            got = await loop.run_in_executor(None, _tickets, tls_port)
            assert got == expected
            # A reload with another count applies to the next connection.
            s.encrypted[0].reload(build(None, {**settings, "tls_session_tickets": 3}))
            assert await loop.run_in_executor(None, _tickets, tls_port) == 3
        finally:
            await s.stop(1.0)

    run(go(), timeout=60)


@pytest.mark.parametrize("bad", [-1, 17, "two", 1.5, True])
def test_a_bad_ticket_count_is_refused(bad):
    with pytest.raises(ConfigError, match="tls-session-tickets"):
        build(None, {"tls_session_tickets": bad})


def test_a_ticket_count_from_the_file(tmp_path):
    conf = tmp_path / "c.toml"
    conf.write_text("tls-session-tickets = 1\n")
    assert build(str(conf)).tls_session_tickets == 1
    assert build(None).tls_session_tickets == 2
