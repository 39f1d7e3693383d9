"""The fake DNS servers' TCP side: each connection accepted, its first query read (two
bytes of length, then the message), then handed over."""
from __future__ import annotations

import socket
from collections.abc import Callable

import dns.exception
import dns.message


def serve_tcp(listener: socket.socket,
              handle: Callable[[socket.socket, dns.message.Message], None],
              timeout: float = 10) -> None:
    """Accepts on ``listener`` until it is closed; for each connection, reads one query and
    calls ``handle(conn, query)``, then closes the connection. A connection that fails, or
    sends what is not a DNS message, is dropped; ``timeout`` bounds each read."""
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(timeout)
            try:
                n = int.from_bytes(conn.recv(2), "big")
                data = b""
                while len(data) < n:
                    chunk = conn.recv(n - len(data))
                    if not chunk:
                        break
                    data += chunk
                handle(conn, dns.message.from_wire(data))
            except (OSError, dns.exception.DNSException):
                continue


def send(conn: socket.socket, wire: bytes) -> None:
    """``wire`` over ``conn`` with its two bytes of length."""
    conn.sendall(len(wire).to_bytes(2, "big") + wire)
