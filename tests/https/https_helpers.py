"""Small helpers shared by the HTTPS tests."""
from __future__ import annotations

import asyncio
import os
import re
import socket
import threading


def open_fds() -> set[int]:
    return {int(n) for n in os.listdir("/proc/self/fd")}


def server_holds(port: int) -> int:
    """Connections to the server on 127.0.0.1:`port` whose server side is still
    ESTABLISHED, i.e. it has had no FIN from the client yet (from /proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state = fields[1], fields[3]
            if int(local.split(":")[1], 16) == port and state == "01":
                n += 1
    return n


async def until(pred, limit: float = 3.0) -> bool:
    """Poll `pred` every 50 ms, for at most `limit` s; its last answer."""
    for _ in range(int(limit / 0.05)):
        if pred():
            return True
        await asyncio.sleep(0.05)
    return pred()


def reply_server(reply: bytes, connections: int, heads: list | None = None):
    """A server on 127.0.0.1 that answers the first request of each of ``connections``
    connections with ``reply`` and closes it: (its port, the thread serving). Each
    request's head (its bytes before the blank line) goes into ``heads`` when given. The
    request's Content-Length body is read before the answer (a socket closed with bytes
    unread resets the connection). A client that is to send several requests needs
    ``Connection: close`` in ``reply``: else it may reuse the connection before the close
    reaches it."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve():
        with listener:
            for _ in range(connections):
                try:
                    conn, _ = listener.accept()
                except OSError:
                    return
                with conn:
                    conn.settimeout(10)
                    got = b""
                    while b"\r\n\r\n" not in got and len(got) < 65536:
                        data = conn.recv(4096)
                        if not data:
                            break
                        got += data
                    head, _, body = got.partition(b"\r\n\r\n")
                    if heads is not None:
                        heads.append(head)
                    length = re.search(rb"\r\ncontent-length: *(\d+)", head, re.I)
                    left = int(length.group(1)) - len(body) if length else 0
                    while left > 0:
                        data = conn.recv(min(left, 65536))
                        if not data:
                            break
                        left -= len(data)
                    conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread
