"""What a DNS-over-TLS connection costs before it asks anything: its TLS transport only.
The DNS connection above it (framer, caps, ACL, idle timer) is made with the first record
of application data, so a handshake that stalls or fails makes none, nor does one that
succeeds and asks nothing; a connection that asks makes exactly one, which answers as
before."""
from __future__ import annotations

import asyncio
import gc
import socket
import ssl
import struct
import time

import dns.message

from dot_server import dot_settings, lab_server
from resolver.daemon.config import build
from tls_certs import SERVER_NAME


def _live(type_name: str) -> int:
    return sum(1 for o in gc.get_objects() if type(o).__name__ == type_name)


def _ask(sock, name: str) -> dns.message.Message:
    q = dns.message.make_query(name, "A").to_wire()
    sock.sendall(struct.pack("!H", len(q)) + q)
    data = b""
    while len(data) < 2 or len(data) < 2 + struct.unpack("!H", data[:2])[0]:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    return dns.message.from_wire(data[2:])


def test_the_dns_connection_is_made_only_after_a_successful_handshake(run, lab, loop,
                                                                       tmp_path):
    settings, ca, _, tls_port = dot_settings(tmp_path, lab)
    cfg = build(None, settings)
    ctx = ssl.create_default_context(cafile=str(ca.pem))

    async def until(predicate, what: str) -> None:
        for _ in range(300):
            if predicate():
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"timed out waiting for {what}")

    async def go():
        s = lab_server(cfg, lab)
        await s.start()
        counts = s.encrypted[0].counts
        stalled = garbage = None
        try:
            before = _live("TLSConnection")
            # A client that connects and sends nothing: its handshake is in progress.
            stalled = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
            await until(lambda: s.encrypted[0].handshaking == 1, "the handshake to start")
            assert _live("TLSTransport") >= 1
            assert _live("TLSConnection") == before
            assert s.counters.tcp_connections == 0

            # A client that sends garbage instead of a ClientHello: the handshake fails.
            garbage = socket.create_connection(("127.0.0.1", tls_port), timeout=5)
            garbage.sendall(b"\x16\x03\x01\x00\x05hello" * 4)
            await until(lambda: counts["handshake_failed"] == 1, "the failed handshake")
            assert _live("TLSConnection") == before
            assert counts["handshakes"] == 0

            # A client that shakes hands and asks nothing: no DNS connection either, and
            # it counts with the handshakes in progress until it asks or goes.
            def silent():
                with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname=SERVER_NAME):
                        for _ in range(300):
                            if counts["handshakes"] == 1:
                                return _live("TLSConnection"), s.encrypted[0].handshaking
                            time.sleep(0.01)
                        raise AssertionError("the server did not finish the handshake")
            during, handshaking = await loop.run_in_executor(None, silent)
            assert during == before and handshaking == 2     # with the stalled one
            await until(lambda: s.encrypted[0].handshaking == 1, "the silent one's end")
            assert s.counters.tcp_connections == 0 and s.counters.tcp_accepted == 0

            # A real client: one DNS connection, admitted and answering.
            def client():
                with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw:
                    with ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as tls:
                        answer = _ask(tls, "www.example.com.")
                        return answer.answer[0].to_text(), _live("TLSConnection")
            text, during = await loop.run_in_executor(None, client)
            assert "192.0.2.1" in text
            assert during == before + 1
            assert counts["handshakes"] == 2 and counts["handshake_failed"] == 1
            assert s.counters.tcp_accepted == 1
        finally:
            for sock in (stalled, garbage):
                if sock is not None:
                    sock.close()
            await s.stop(1.0)

    run(go(), timeout=30)
