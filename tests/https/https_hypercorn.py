"""Hypercorn (a second HTTP/2 server, on the `h2` package) serving a small ASGI app over TLS
for the client's tests. Run as a process: `python https_hypercorn.py FD CERT KEY` serves on
the listening socket the test passed as descriptor FD (two processes can share one, so a
second server can take over a port while the first shuts down), prints "ready" once the
app has started, and shuts down gracefully on SIGTERM (HTTP/2: new streams reset, GOAWAY
once the streams in flight are done).

Every response carries `x-pid`, the serving process. Paths:
  /small             1024 bytes
  /sleep?ms=N        answers after N ms (at most 10 s)
  /echo              the request body's length, SHA-256 and the number of pieces it came in
  /trailers          a body, then the trailer x-checksum (its SHA-256) when the request
                     said "TE: trailers"
  /large?mib=N       N MiB (at most 64) of pattern(), in 64 KiB pieces
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import sys
from urllib.parse import parse_qs

SMALL = bytes(range(256)) * 4
_PIECE = 64 * 1024


def pattern(n: int) -> bytes:
    """The /large body: n bytes no two 64 KiB pieces of which are alike."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(i.to_bytes(4, "big")).digest() * (_PIECE // 32)
        i += 1
    return bytes(out[:n])


async def app(scope: dict, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
                print("ready", flush=True)
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    pid = [(b"x-pid", str(os.getpid()).encode())]

    async def answer(body: bytes, status: int = 200, headers: list | None = None) -> None:
        await send({"type": "http.response.start", "status": status,
                    "headers": pid + (headers or [])})
        await send({"type": "http.response.body", "body": body})

    if path == "/small":
        await answer(SMALL)
    elif path == "/sleep":
        await asyncio.sleep(min(int(query.get("ms", "0")), 10_000) / 1000)
        await answer(b"slept")
    elif path == "/echo":
        digest = hashlib.sha256()
        length = pieces = 0
        while True:
            message = await receive()
            body = message.get("body", b"")
            if body:
                digest.update(body)
                length += len(body)
                pieces += 1
            if not message.get("more_body", False):
                break
        await answer(json.dumps({"length": length, "sha256": digest.hexdigest(),
                                 "pieces": pieces}).encode(),
                     headers=[(b"content-type", b"application/json")])
    elif path == "/trailers":
        body = b"with trailers " * 100
        await send({"type": "http.response.start", "status": 200, "headers": pid,
                    "trailers": True})
        await send({"type": "http.response.body", "body": body})
        await send({"type": "http.response.trailers", "more_trailers": False,
                    "headers": [(b"x-checksum", hashlib.sha256(body).hexdigest().encode())]})
    elif path == "/large":
        n = min(int(query.get("mib", "1")), 64) << 20
        data = pattern(n)
        await send({"type": "http.response.start", "status": 200,
                    "headers": pid + [(b"content-length", str(n).encode())]})
        for i in range(0, n, _PIECE):
            await send({"type": "http.response.body", "body": data[i:i + _PIECE],
                        "more_body": i + _PIECE < n})
    else:
        await answer(b"not found", 404)


async def main(fd: int, cert: str, key: str) -> None:
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"fd://{fd}"]
    config.certfile = cert
    config.keyfile = key
    config.alpn_protocols = ["h2"]
    config.graceful_timeout = 5.0
    config.accesslog = None
    config.errorlog = "-"
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await serve(app, config, shutdown_trigger=stop.wait)  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), sys.argv[2], sys.argv[3]))
