"""``tls-session-tickets``: how many TLS 1.3 session tickets the DNS-over-TLS listener sends
after a full handshake, counted by a client the project did not write (``openssl s_client
-msg``), and applied to new connections on reload."""
from __future__ import annotations

import os
import re
import select
import shutil
import subprocess
import time

import pytest

from dot_server import dot_settings, lab_server
from resolver.daemon.config import ConfigError, build

OPENSSL = shutil.which("openssl")


def _tickets(port: int) -> int:
    """NewSessionTicket messages a TLS 1.3 client receives on one connection before the
    answer to one DNS query it sends (the listener sends its tickets as the handshake ends,
    before it reads the query)."""
    import dns.message
    import dns.name

    from daemon_proc import frame

    if OPENSSL is None:
        pytest.fail("openssl (Debian package 'openssl') is not installed")
    query = frame(dns.message.make_query("www.example.com.", "A").to_wire())
    answered = dns.name.from_text("www.example.com.").to_wire()   # in the answer's question
    p = subprocess.Popen([OPENSSL, "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3",
                          "-msg", "-nocommands"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = b""
    try:
        p.stdin.write(query)
        p.stdin.flush()
        deadline = time.monotonic() + 20
        while answered not in out.partition(b"ServerHello")[2]:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([p.stdout], [], [], left)[0], out
            chunk = os.read(p.stdout.fileno(), 65536)
            assert chunk, out + p.stderr.read()          # s_client ended before the answer
            out += chunk
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()
    return len(re.findall(rb"^<<< .*NewSessionTicket", out, re.M))


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


# ---- tls-session-ticket-keys

def _resumes(ca, port: int, session=None, ctx=None):
    """(resumed?, the session to resume next) of one DoT connection to ``port`` that asks
    one query (TLS 1.3 tickets come with the answer)."""
    import socket
    import ssl

    import dns.message

    from daemon_proc import frame, read_frame
    from tls_certs import SERVER_NAME

    ctx = ctx or ssl.create_default_context(cafile=str(ca.pem))
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    with ctx.wrap_socket(raw, server_hostname=SERVER_NAME, session=session) as s:
        s.sendall(frame(dns.message.make_query("www.example.com.", "A").to_wire()))
        assert dns.message.from_wire(read_frame(s)).answer
        return s.session_reused, s.session


def _key(tmp_path, name: str, data: bytes | None = None):
    path = tmp_path / name
    path.write_bytes(os.urandom(80) if data is None else data)
    return str(path)


def test_daemons_with_the_same_key_files_resume_each_others_sessions(run, lab, loop,
                                                                     tmp_path):
    """Two daemons (two hosts behind one name, say) with the same key file: a session made
    with one resumes on the other; without key files each has its own keys and it does
    not. A rotation puts a new key first and keeps the old one: the old tickets still
    resume (and are renewed); once the old key is gone they make a full handshake."""
    import ssl

    old, new = _key(tmp_path, "old.key"), _key(tmp_path, "new.key")
    a, ca, _, a_port = dot_settings(tmp_path / "a", lab)
    b, _, _, b_port = dot_settings(tmp_path / "b", lab)
    b.update(tls_service_pem=a["tls_service_pem"], tls_service_key=a["tls_service_key"])
    plain_b = dict(b)
    a["tls_session_ticket_keys"] = b["tls_session_ticket_keys"] = [old]
    c, _, _, c_port = dot_settings(tmp_path / "c", lab)
    c.update(tls_service_pem=a["tls_service_pem"], tls_service_key=a["tls_service_key"])

    async def go():
        servers = [lab_server(build(None, s), lab) for s in (a, b, c)]
        for s in servers:
            await s.start()
        ctx = ssl.create_default_context(cafile=str(ca.pem))
        ask = lambda port, session=None: loop.run_in_executor(  # noqa: E731
            None, _resumes, ca, port, session, ctx)
        try:
            assert servers[0].encrypted[0].service.context.ticket_key_names == (
                open(old, "rb").read()[:16],)
            resumed, session = await ask(a_port)
            assert not resumed
            assert (await ask(b_port, session))[0]          # the same key: resumed on B
            assert not (await ask(c_port, session))[0]      # C's own keys: a full handshake
            # Rotation on B: the new key first, the old one kept.
            servers[1].encrypted[0].reload(build(None, {**b, "tls_session_ticket_keys":
                                                        [new, old]}))
            resumed, renewed = await ask(b_port, session)
            assert resumed                                  # an old ticket still resumes
            assert not (await ask(a_port, renewed))[0]      # renewed under the new key
            # The old key gone: its tickets make a full handshake.
            servers[1].encrypted[0].reload(build(None, {**b, "tls_session_ticket_keys":
                                                        [new]}))
            assert not (await ask(b_port, session))[0]
            assert (await ask(b_port, renewed))[0]
            # No key files again: OpenSSL's own keys, which know neither.
            servers[1].encrypted[0].reload(build(None, plain_b))
            assert servers[1].encrypted[0].service.context.ticket_key_names == ()
            assert not (await ask(b_port, renewed))[0]
        finally:
            for s in servers:
                await s.stop(1.0)

    run(go(), timeout=90)


@pytest.mark.parametrize("content,says", [(b"\x00" * 79, "holds 79 bytes"),
                                          (b"\x00" * 81, "holds 81 bytes"),
                                          (None, "a key of the same name")])
def test_a_bad_ticket_key_file_is_refused(lab, tmp_path, content, says):
    settings, _, _, _ = dot_settings(tmp_path, lab)
    first = _key(tmp_path, "first.key")
    bad = _key(tmp_path, "bad.key", open(first, "rb").read() if content is None else content)
    with pytest.raises(ConfigError, match=f"tls-session-ticket-keys: .*{says}"):
        build(None, {**settings, "tls_session_ticket_keys": [first, bad]})
    with pytest.raises(ConfigError, match="tls-session-ticket-keys"):
        build(None, {**settings, "tls_session_ticket_keys": [str(tmp_path / "missing")]})
