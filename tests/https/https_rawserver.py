"""A scriptable HTTP/1.1 server for what nginx cannot be made to do: malformed responses,
connections closed mid-body, oversized headers, stalls at chosen stages, and a plain-HTTP
backend that nginx proxies a trickling response from.

Run as a process: `python rawserver.py CERT KEY`; prints one JSON line with its ports
(bound to 127.0.0.1 port 0), then serves until killed. Every stall is bounded in time.
"""
from __future__ import annotations

import json
import socket
import ssl
import sys
import threading
import time

import httptools

MAX_STALL = 20.0  # seconds; the server never holds a socket longer than this


class _Req:
    def __init__(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body = bytearray()
        self.headers_done = False
        self.done = False
        self.method = ""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.done = True


def read_request(sock: socket.socket):
    req = _Req()
    parser = httptools.HttpRequestParser(req)
    while not req.done:
        try:
            data = sock.recv(65536)
        except OSError:
            return None
        if not data:
            return None
        parser.feed_data(data)
        req.method = parser.get_method().decode()
        if req.headers_done and req.url.startswith(b"/no-read"):
            return req
    return req


def send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def pattern(n: int) -> bytes:
    """n bytes that show any misplaced or lost stretch (the tests build the same)."""
    block = bytes(range(251))  # a prime length: record boundaries never line up with it
    return (block * (n // 251 + 1))[:n]


def ok(body: bytes = b"ok", extra: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def handle(sock: socket.socket, state: dict) -> None:
    served = 0
    sock.settimeout(MAX_STALL)
    while True:
        req = read_request(sock)
        if req is None:
            return
        served += 1
        path = req.url.decode("latin-1")
        route = path.split("?", 1)[0]
        if route == "/echo":
            body = json.dumps({"method": req.method, "path": path, "headers": req.headers,
                               "body": req.body.decode("latin-1")}).encode()
            if not send(sock, ok(body, "Content-Type: application/json\r\n")):
                return
        elif route == "/bad-status":
            send(sock, b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n")
        elif route == "/bad-chunk":
            send(sock, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
        elif route == "/short-body":
            send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
            return
        elif route == "/long-body":
            # Three bytes promised, six sent: the extra must not leak into the next response.
            if not send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef"):
                return
        elif route == "/close-delimited":
            send(sock, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
            return
        elif route == "/endless-headers":
            # One header line that never ends (bounded here: 5 s or 100 MB).
            send(sock, b"HTTP/1.1 200 OK\r\nX-Filler: ")
            end = time.monotonic() + 5
            i = 0
            while time.monotonic() < end and i < 100000:
                if not send(sock, b"a" * 1000):
                    return
                i += 1
            return
        elif route == "/many-headers":
            send(sock, b"HTTP/1.1 200 OK\r\n" + b"".join(
                b"X-H%d: v\r\n" % i for i in range(300)) + b"Content-Length: 0\r\n\r\n")
        elif route == "/interim":
            if not send(sock, b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
                              b"Link: </a>\r\n\r\n" + ok(b"final")):
                return
        elif route == "/bad-gzip":
            send(sock, ok(b"\x1f\x8b\x08\x00garbage-not-gzip", "Content-Encoding: gzip\r\n"))
        elif route == "/deflate":
            import zlib

            raw = b"deflated " * 100
            if not send(sock, ok(zlib.compress(raw), "Content-Encoding: deflate\r\n")):
                return
        elif route == "/flaky":
            # Answers the first request of a connection, then closes on the second without
            # a byte of response: the stale keep-alive race, made deterministic.
            if served > 1:
                return
            if not send(sock, ok(b"flaky ok")):
                return
        elif route == "/close-soon":
            # Keep-alive response, then the server closes the idle connection shortly after.
            send(sock, ok(b"soon"))
            time.sleep(0.05)
            return
        elif route == "/keepalive-timeout":
            if not send(sock, ok(b"kat", "Keep-Alive: timeout=1\r\n")):
                return
        elif route == "/stall-headers":
            time.sleep(MAX_STALL)
            return
        elif route == "/no-read":
            time.sleep(MAX_STALL)
            return
        elif route == "/trickle":
            if not send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"):
                return
            for _ in range(int(MAX_STALL / 0.05)):
                if not send(sock, b"x"):
                    return
                time.sleep(0.05)
            return
        elif route == "/raw":
            # Sends exactly the hex-encoded bytes given in the query, then closes: lets a
            # test fuzz the client's whole response path through a real TLS socket.
            try:
                send(sock, bytes.fromhex(path.split("?", 1)[1]))
            except (IndexError, ValueError):
                pass
            return
        elif route == "/big":
            # Content-Length body of a known pattern; `?n=SIZE[&extra=K]` sends K bytes past it.
            q = dict(kv.split("=", 1) for kv in path.partition("?")[2].split("&") if "=" in kv)
            n = min(int(q.get("n", "0")), 64 << 20)
            extra = b"X" * min(int(q.get("extra", "0")), 1 << 20)
            head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n
            if not send(sock, head + pattern(n) + extra):
                return
        elif route == "/big-short":
            # Promises 1,000,000 bytes, sends 200,000, closes.
            send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n" + pattern(200000))
            return
        elif route == "/count":
            with state["lock"]:
                state["count"] += 1
                n = state["count"]
            if not send(sock, ok(str(n).encode())):
                return
        else:
            if not send(sock, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"):
                return


def serve(listener: socket.socket, ctx: ssl.SSLContext | None, state: dict) -> None:
    while True:
        conn, _ = listener.accept()

        def run(conn=conn) -> None:
            s = conn
            try:
                if ctx is not None:
                    s.settimeout(MAX_STALL)
                    s = ctx.wrap_socket(conn, server_side=True)
                handle(s, state)
            except (OSError, ssl.SSLError, httptools.HttpParserError):
                pass
            finally:
                try:
                    s.close()
                except OSError:
                    pass

        threading.Thread(target=run, daemon=True).start()


def silent(listener: socket.socket) -> None:
    """Accepts TCP and never says a word: a TLS handshake that stalls."""
    held = []
    while True:
        conn, _ = listener.accept()
        held.append((time.monotonic(), conn))
        while held and time.monotonic() - held[0][0] > MAX_STALL:
            held.pop(0)[1].close()


def main() -> None:
    cert, key = sys.argv[1], sys.argv[2]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["http/1.1"])
    state = {"lock": threading.Lock(), "count": 0}
    ports = {}
    for name in ("tls", "plain", "silent"):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(128)
        ports[name] = ls.getsockname()[1]
        if name == "silent":
            target, args = silent, (ls,)
        else:
            target, args = serve, (ls, ctx if name == "tls" else None, state)
        threading.Thread(target=target, args=args, daemon=True).start()
    print(json.dumps(ports), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
