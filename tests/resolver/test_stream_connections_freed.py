"""A DNS-over-TLS or DNS-over-TCP connection that has ended is freed by reference counting:
nothing of it is left for the cyclic garbage collector (which, run rarely in the daemon,
would otherwise hold each ended connection's objects and OpenSSL state until it runs)."""
from __future__ import annotations

import asyncio
import gc
import socket
import ssl
import struct
import weakref

import dns.message
import pytest

from dot_server import dot_settings, lab_server
from resolver.daemon.config import build
from tls_certs import SERVER_NAME

# The daemon's objects of one stream connection.
CONNECTION_TYPES = {"TCPConnection", "TLSConnection", "TLSTransport",
                    "DNSFrameReceiver"}


def _ask(sock, name: str) -> dns.message.Message:
    q = dns.message.make_query(name, "A").to_wire()
    sock.sendall(struct.pack("!H", len(q)) + q)
    head = b""
    while len(head) < 2:
        head += sock.recv(2 - len(head))
    (n,) = struct.unpack("!H", head)
    body = b""
    while len(body) < n:
        chunk = sock.recv(n - len(body))
        assert chunk, "the server closed the connection"
        body += chunk
    return dns.message.from_wire(body)


def _clients(tls_port: int, tcp_port: int, ca_pem: str) -> list[str]:
    """In a thread: a DoT client that asks twice, one that only shakes hands, a TCP client
    that asks once; each closes. Returns the answers' first records."""
    ctx = ssl.create_default_context(cafile=ca_pem)
    got = []
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as s:
            for _ in range(2):
                got.append(_ask(s, "www.example.com.").answer[0].to_text())
    with socket.create_connection(("127.0.0.1", tls_port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname=SERVER_NAME):
            pass
    with socket.create_connection(("127.0.0.1", tcp_port), timeout=5) as s:
        got.append(_ask(s, "www.example.com.").answer[0].to_text())
    return got


def test_ended_dot_and_tcp_connections_leave_no_cycles(run, lab, loop, tmp_path):
    settings, ca, port, tls_port = dot_settings(tmp_path, lab)
    cfg = build(None, settings)

    async def go():
        s = lab_server(cfg, lab)
        await s.start()
        try:
            got = await loop.run_in_executor(None, _clients, tls_port, port, str(ca.pem))
            assert len(got) == 3 and all("192.0.2.1" in a for a in got)
            for _ in range(200):                     # the server's side of the closes
                if not s.connections and s.counters.tcp_connections == 0:
                    break
                await asyncio.sleep(0.01)
            assert not s.connections and s.counters.tcp_connections == 0
            assert s.encrypted[0].counts["handshakes"] == 2
        finally:
            await s.stop(1.0)

    gc.collect()
    gc.disable()
    try:
        run(go(), timeout=30)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = sorted({type(o).__name__ for o in gc.garbage} & CONNECTION_TYPES)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == [], f"objects of ended connections were in reference cycles: {left}"


@pytest.mark.parametrize("with_query", [False, True])
def test_the_framer_let_go_of_its_connection_drops_what_still_comes(with_query):
    """A released framer (its connection is over) refers to the connection no more and
    drops frames instead of calling it."""

    from resolver.daemon.admission import ALLOWED_ACL, FrontDoor
    from resolver.daemon.tcp_framer import DNSFrameReceiver

    class Owner:
        def __init__(self):
            self.queries = []

        def hold(self, q):
            self.queries.append(q)          # a miss, kept
            return False

        def send_frames(self, pieces):
            raise AssertionError("no cache here")

    owner = Owner()
    framer = DNSFrameReceiver(None, 2, "big", 65535, 1024)
    framer.setup(owner, FrontDoor({}, None))
    framer.who = ALLOWED_ACL
    q = dns.message.make_query("www.example.com.", "A").to_wire()
    frame = struct.pack("!H", len(q)) + q

    def feed():
        buf = framer.get_buffer(len(frame))
        buf[:len(frame)] = frame
        framer.buffer_updated(len(frame))

    if with_query:
        feed()
        assert owner.queries == [q]
    queries = owner.queries
    framer.release()
    alive = weakref.ref(owner)
    del owner
    assert alive() is None                # the framer no longer holds the connection
    feed()
    assert queries == ([q] if with_query else [])
