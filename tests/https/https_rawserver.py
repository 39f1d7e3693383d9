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
        self.raw = bytearray()  # the request exactly as received

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
        req.raw += data
        parser.feed_data(data)
        req.method = parser.get_method().decode()
        if req.headers_done and req.url.startswith((b"/no-read", b"/early-",
                                                    b"/reset-while-sending")):
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


def query(path: str) -> dict:
    return dict(kv.split("=", 1) for kv in path.partition("?")[2].split("&") if "=" in kv)


def zeros_gzip(mb: int) -> bytes:
    """A gzip body of `mb` MiB of zeros, cheap to make: one member repeated (RFC 1952
    allows any number of members, each about 1 KiB here)."""
    import gzip

    return gzip.compress(bytes(1 << 20), 9) * mb


def bomb(kind: str, mb: int) -> tuple[bytes, str]:
    """(body, Content-Encoding) inflating to `mb` MiB of zeros (per layer of a stack)."""
    import gzip

    if kind == "gzip":
        return zeros_gzip(mb), "gzip"
    if kind == "gzip2":
        return gzip.compress(zeros_gzip(mb), 9), "gzip, gzip"
    if kind == "br":
        import brotli

        return brotli.compress(bytes(mb << 20), quality=5), "br"
    if kind == "zstd":
        from backports import zstd

        return zstd.compress(bytes(mb << 20)), "zstd"
    raise ValueError(kind)


def encoded(kind: str, data: bytes) -> bytes:
    """`data` with the codings of `kind` ("gzip,br" = gzip first, then br) applied."""
    import gzip

    for coding in kind.split(","):
        if coding == "gzip":
            data = gzip.compress(data)
        elif coding == "br":
            import brotli

            data = brotli.compress(data)
        elif coding == "zstd":
            from backports import zstd

            data = zstd.compress(data)
    return data


def endless(sock: socket.socket, head: bytes, filler: bytes, seconds: float = 5.0) -> None:
    """Send `head`, then `filler` over and over (bounded in time and count)."""
    if not send(sock, head):
        return
    end = time.monotonic() + seconds
    for _ in range(200000):
        if time.monotonic() > end or not send(sock, filler):
            return


def close_notify(sock: socket.socket) -> None:
    """End a TLS connection the proper way: close_notify before the TCP close (the client
    answers with its own, which unwrap waits for, briefly)."""
    if isinstance(sock, ssl.SSLSocket):
        try:
            sock.settimeout(2)
            sock.unwrap()
        except (OSError, ssl.SSLError):
            pass


def reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0) rather than a FIN."""
    import struct

    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        socket.socket.close(sock)  # no TLS close_notify: straight to the socket
    except OSError:
        pass


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
        if route.endswith("/echo"):  # any path so ending: one with dot segments kept
            body = json.dumps({"method": req.method, "path": path, "headers": req.headers,
                               "body": req.body.decode("latin-1"),
                               "raw": req.raw.decode("latin-1")}).encode()
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
            # Ended the proper way: TLS close_notify, then the TCP close.
            send(sock, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
            close_notify(sock)
            return
        elif route == "/close-delimited-cut":
            # The same body ended by TCP alone, as a truncation attack would end it.
            send(sock, b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the")
            return
        elif route == "/early-413":
            # Refuses the body before reading it, then holds the connection without reading
            # (?hold=S seconds) or closes it at once (?hold=0).
            hold = min(float(query(path).get("hold", "5")), MAX_STALL)
            send(sock, b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 9\r\n"
                       b"Connection: close\r\n\r\ntoo large")
            time.sleep(hold)
            return
        elif route == "/redirect":
            q = query(path)
            code = int(q.get("code", "302"))
            loc = bytes.fromhex(q["to"])
            if not send(sock, b"HTTP/1.1 %d Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
                        % (code, loc)):
                return
        elif route == "/set-cookie":
            # ?c1=HEX&c2=HEX...: one Set-Cookie line each; &to=HEX makes it a 302 there.
            q = query(path)
            lines = b"".join(b"Set-Cookie: %s\r\n" % bytes.fromhex(v)
                             for k, v in sorted(q.items()) if k.startswith("c"))
            if "to" in q:
                head = b"HTTP/1.1 302 Found\r\nLocation: %s\r\n" % bytes.fromhex(q["to"])
            else:
                head = b"HTTP/1.1 200 OK\r\n"
            if not send(sock, head + lines + b"Content-Length: 0\r\n\r\n"):
                return
        elif route == "/challenge":
            # 401 unless the request carries "Authorization: Token <the nonce>".
            auth = dict((k.lower(), v) for k, v in req.headers).get("authorization")
            if auth == "Token n0nce-1":
                reply = ok(b"welcome")
            else:
                reply = (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Token "
                         b"nonce=n0nce-1\r\nContent-Length: 6\r\n\r\nwho?\r\n")
            if not send(sock, reply):
                return
        elif route == "/digest":
            # Digest (RFC 7616) for user "dg", password "pw"; ?alg=SHA-256 to change the hash.
            import hashlib
            import re

            alg = query(path).get("alg", "MD5")
            h = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}[alg]

            def hx(text: str) -> str:
                return h(text.encode()).hexdigest()

            auth = dict((k.lower(), v) for k, v in req.headers).get("authorization", "")
            got = dict((k, q or v) for k, q, v in
                       re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]+))', auth))
            want = hx(f"{hx('dg:r:pw')}:n0:{got.get('nc')}:{got.get('cnonce')}:auth:"
                      f"{hx(req.method + ':' + got.get('uri', ''))}")
            if auth.startswith("Digest ") and got.get("response") == want \
                    and got.get("uri") == path and got.get("opaque") == "op":
                reply = ok(b"digest ok")
            else:
                reply = (b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"r\"\r\n"
                         b"WWW-Authenticate: Digest realm=\"r\", qop=\"auth\", nonce=\"n0\", "
                         b"opaque=\"op\", algorithm=" + alg.encode() +
                         b"\r\nContent-Length: 0\r\n\r\n")
            if not send(sock, reply):
                return
        elif route == "/cacheable":
            # ?key=K&cc=HEX(Cache-Control)&etag=E&lm=HEX(Last-Modified)&vary=NAME: counts
            # requests per key; answers 304 to a matching If-None-Match/If-Modified-Since.
            q = query(path)
            key = q.get("key", "")
            fields = {k.lower(): v for k, v in req.headers}
            extra = ""
            if "cc" in q:
                extra += f"Cache-Control: {bytes.fromhex(q['cc']).decode()}\r\n"
            if "etag" in q:
                extra += f'ETag: "{q["etag"]}"\r\n'
            if "lm" in q:
                extra += f"Last-Modified: {bytes.fromhex(q['lm']).decode()}\r\n"
            if "vary" in q:
                extra += f"Vary: {q['vary']}\r\n"
            conditional = ("etag" in q and fields.get("if-none-match") == f'"{q["etag"]}"') or (
                "lm" in q and fields.get("if-modified-since") == bytes.fromhex(q["lm"]).decode())
            with state["lock"]:
                counts = state.setdefault("cache", {}).setdefault(key, [0, 0])
                counts[0] += 1
                counts[1] += conditional
                n = counts[0]
            if conditional:
                reply = f"HTTP/1.1 304 Not Modified\r\n{extra}\r\n".encode()
            else:
                lang = fields.get("accept-language", "")
                reply = ok(f"{key}:{n}:{lang}".encode(), extra)
            if not send(sock, reply):
                return
        elif route == "/cacheable-count":
            with state["lock"]:
                counts = state.setdefault("cache", {}).get(query(path).get("key", ""), [0, 0])
                body = json.dumps({"requests": counts[0], "not_modified": counts[1]}).encode()
            if not send(sock, ok(body)):
                return
        elif route == "/lines":
            # Text whose line ends and a two-byte character are split between chunks.
            pieces = [b"line one\r", b"\nline tw\xc3", b"\xb6\r\n\nlast"]
            body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
            if not send(sock, b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
                              b"Transfer-Encoding: chunked\r\n\r\n" + body):
                return
        elif route == "/bomb":
            q = query(path)
            body, coding = bomb(q["kind"], min(int(q.get("mb", "256")), 1024))
            if not send(sock, ok(body, f"Content-Encoding: {coding}\r\n")):
                return
        elif route == "/bomb-stall":
            # The first half of a bomb, then nothing until the client leaves: a client
            # that decodes a body read whole only after its last byte waits here.
            q = query(path)
            body, coding = bomb(q["kind"], min(int(q.get("mb", "64")), 1024))
            if not send(sock, ok(body, f"Content-Encoding: {coding}\r\n")[:-(len(body) // 2)]):
                return
            sock.settimeout(MAX_STALL)
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
            return
        elif route == "/coded":
            # pattern(n) with the codings of ?kind= (comma-separated, in applied order).
            q = query(path)
            kind = q["kind"]
            body = encoded(kind, pattern(int(q.get("n", "100000"))))
            if not send(sock, ok(body, f"Content-Encoding: {kind.replace(',', ', ')}\r\n")):
                return
        elif route == "/endless-extension":
            endless(sock, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;",
                    b"e" * 4096)
            return
        elif route == "/extension-each-chunk":
            endless(sock, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
                    b"1;" + b"e" * 200 + b"\r\nx\r\n")
            return
        elif route == "/endless-trailer":
            endless(sock, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                          b"1\r\nx\r\n0\r\nX-Trailer: ", b"t" * 4096)
            return
        elif route == "/chunked-trailer":
            if not send(sock, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                              b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\n"
                              b"X-Checksum: 1234\r\n\r\n"):
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
        elif route == "/reset-mid-body":
            # Part of a body, a pause (the client is reading it), then a TCP reset.
            send(sock, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
            time.sleep(0.3)
            reset(sock)
            return
        elif route == "/reset-after-request":
            reset(sock)
            return
        elif route == "/stall-headers":
            time.sleep(MAX_STALL)
            return
        elif route == "/reset-while-sending":
            time.sleep(0.2)  # the client is sending a body it will not finish
            reset(sock)
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
            # Sends exactly the hex-encoded bytes given in the query, then closes (with
            # close_notify): lets a test fuzz the client's whole response path through a
            # real TLS socket.
            try:
                send(sock, bytes.fromhex(path.split("?", 1)[1]))
            except (IndexError, ValueError):
                pass
            close_notify(sock)
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
        elif route == "/proxy-log":
            with state["lock"]:
                body = json.dumps(state["proxy_log"]).encode()
            if not send(sock, ok(body)):
                return
        elif route == "/unavailable":
            # 503 with Retry-After: 0 for the first n requests of a key, then 200: a server
            # that comes back, for clients that try again.
            q = query(path)
            key, n = q.get("key", ""), int(q.get("n", "1"))
            with state["lock"]:
                seen = state.setdefault("unavailable", {})
                seen[key] = k = seen.get(key, 0) + 1
            if k <= n:
                answer = (b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 0\r\n"
                          b"Content-Length: 4\r\n\r\nbusy")
            else:
                answer = ok(b"ready")
            if not send(sock, answer):
                return
        elif route == "/attachment":
            # A body named by Content-Disposition: `?as=VALUE` (percent-decoded) is the
            # header's value as sent.
            from urllib.parse import unquote

            named = unquote(query(path).get("as", ""))
            if not send(sock, ok(b"attached", f"Content-Disposition: {named}\r\n")):
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


PROXY_AUTH = "Basic cHU6cHA="  # pu:pp; a request with other credentials gets a 407


def pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes (bounded by MAX_STALL of silence)."""
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            ready = sel.select(MAX_STALL)
            if not ready:
                return
            for key, _ in ready:
                while True:  # an SSL socket may hold decrypted bytes select cannot see
                    try:
                        data = key.fileobj.recv(65536)
                    except ssl.SSLWantReadError:
                        break
                    if not data or not send(key.data, data):
                        return
                    if not isinstance(key.fileobj, ssl.SSLSocket) or not key.fileobj.pending():
                        break
    except OSError:
        return
    finally:
        sel.close()


def proxy(sock: socket.socket, state: dict) -> None:
    """An HTTP proxy for loopback targets: CONNECT tunnels, absolute-form requests are
    forwarded (one per connection). With ``state["routes"]`` ({"host:port": local port})
    it reaches those targets only, each at its local port. Logs (method, target, Proxy-Authorization) in state,
    and a Proxy-Tag header's value after them when there is one, which the /proxy-log
    route returns."""
    sock.settimeout(MAX_STALL)
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        data = sock.recv(65536)
        if not data:
            return
        head += data
    head, _, rest = head.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    fields = [ln.split(":", 1) for ln in lines[1:]]
    auth = next((v.strip() for k, v in fields if k.lower() == "proxy-authorization"), None)
    tag = [v.strip() for k, v in fields if k.lower() == "proxy-tag"]
    with state["lock"]:
        state["proxy_log"].append([method, target, auth] + tag)
    if auth is not None and auth != PROXY_AUTH:
        send(sock, b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                   b"Proxy-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n")
        return
    if method == "CONNECT":
        host, _, port = target.rpartition(":")
    else:
        from urllib.parse import urlsplit

        u = urlsplit(target)
        host, port = u.hostname or "", str(u.port or 80)
    routes = state.get("routes")
    if routes is not None:
        # A stand-in for the Internet: named origins reach local servers, nothing else does.
        to = routes.get(f"{host.lower()}:{port}")
    else:
        to = int(port) if host in ("localhost", "127.0.0.1") else None
    if to is None:
        send(sock, b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        return
    with socket.create_connection(("127.0.0.1", to), timeout=MAX_STALL) as up:
        if method == "CONNECT":
            if not send(sock, b"HTTP/1.1 200 Connection established\r\n\r\n"):
                return
        else:
            path = target.split("/", 3)[3] if target.count("/") >= 3 else ""
            kept = [ln for ln in lines[1:] if not ln.lower().startswith("proxy-")]
            up.sendall(("\r\n".join([f"{method} /{path} HTTP/1.1"] + kept) + "\r\n\r\n")
                       .encode("latin-1") + rest)
        pipe(sock, up)


def serve(listener: socket.socket, ctx: ssl.SSLContext | None, state: dict,
          handler=handle) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:             # the listener was closed: serving ends
            return

        def run(conn=conn) -> None:
            s = conn
            try:
                if ctx is not None:
                    s.settimeout(MAX_STALL)
                    s = ctx.wrap_socket(conn, server_side=True)
                handler(s, state)
            except (OSError, ssl.SSLError, httptools.HttpParserError, ValueError):
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
    state = {"lock": threading.Lock(), "count": 0, "proxy_log": []}
    ports = {}
    for name in ("tls", "tls2", "plain", "silent", "proxy", "proxy_tls"):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", 0))
        ls.listen(128)
        ports[name] = ls.getsockname()[1]
        if name == "silent":
            target, args = silent, (ls,)
        elif name.startswith("proxy"):
            target, args = serve, (ls, ctx if name == "proxy_tls" else None, state, proxy)
        else:
            target, args = serve, (ls, ctx if name.startswith("tls") else None, state)
        threading.Thread(target=target, args=args, daemon=True).start()
    print(json.dumps(ports), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
