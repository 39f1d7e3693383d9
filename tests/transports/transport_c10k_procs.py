"""The two processes of the C10K test, run as ``python -m transport_c10k_procs server KIND``
and ``... client PORT N``. Each raises its own RLIMIT_NOFILE (10,000 sockets apiece).

server: an echo server on loop KIND (asyncio, uvloop, corenet-edge, corenet-level); answers
    "STAT" on stdin with "STAT <live connections> <RSS KiB>"; exits on EOF.
client: opens N connections in batches (so the accept queue never overflows into SYN
    retries), exchanges a message on each as it goes, prints "OPEN", then on "GO" sends a
    message on all N at once and checks every echo, prints "ECHOED <n>"; exits on EOF.
"""
from __future__ import annotations

import asyncio
import os
import resource
import select
import socket
import sys


def raise_nofile(want: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def server(kind: str) -> None:
    raise_nofile(20000)
    if kind == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        from looptools import make_loop

        loop = make_loop(kind)
    live = 0

    class Echo(asyncio.Protocol):
        def connection_made(self, transport):
            nonlocal live
            live += 1
            self.transport = transport

        def data_received(self, data):
            self.transport.write(data)

        def connection_lost(self, exc):
            nonlocal live
            live -= 1

    async def main():
        srv = await loop.create_server(Echo, "127.0.0.1", 0, backlog=4096)
        print("PORT", srv.sockets[0].getsockname()[1], flush=True)
        done = loop.create_future()
        stdin = os.fdopen(0, "rb", 0)

        def command():
            line = stdin.readline()
            if not line:
                if not done.done():
                    done.set_result(None)
                return
            if line.strip() == b"STAT":
                print("STAT", live, rss_kib(), flush=True)

        loop.add_reader(0, command)
        await done
        loop.remove_reader(0)
        srv.close()

    loop.run_until_complete(main())


def client(port: int, n: int) -> None:
    raise_nofile(n + 200)
    ep = select.epoll()
    socks: list[socket.socket] = []
    addr = ("127.0.0.1", port)

    def msg(i: int) -> bytes:
        return b"conn-%08d-" % i + bytes([i % 251]) * 40

    def exchange(indexes: range) -> int:
        """Sends msg(i) on each socket and reads every echo back; returns the count right."""
        pending = {}
        for i in indexes:
            socks[i].send(msg(i))
            pending[socks[i].fileno()] = (i, bytearray())
            ep.register(socks[i].fileno(), select.EPOLLIN)
        ok = 0
        while pending:
            events = ep.poll(30)
            if not events:
                raise SystemExit(f"timed out with {len(pending)} echoes missing")
            for fd, _ in events:
                i, got = pending[fd]
                got += socks[i].recv(4096)
                if len(got) >= len(msg(i)):
                    ok += bytes(got) == msg(i)
                    del pending[fd]
                    ep.unregister(fd)
        return ok

    batch = 500
    for start in range(0, n, batch):
        idx = range(start, min(n, start + batch))
        waiting = {}
        for i in idx:
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(addr)
            socks.append(s)
            waiting[s.fileno()] = s
            ep.register(s.fileno(), select.EPOLLOUT)
        while waiting:
            events = ep.poll(30)
            if not events:
                raise SystemExit(f"timed out with {len(waiting)} connects pending")
            for fd, _ in events:
                s = waiting.pop(fd)
                ep.unregister(fd)
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    raise SystemExit(f"connect failed: {os.strerror(err)}")
        if exchange(idx) != len(idx):
            raise SystemExit("a first echo came back wrong")
    print("OPEN", len(socks), flush=True)
    for line in sys.stdin:
        if line.strip() == "GO":
            print("ECHOED", exchange(range(n)), flush=True)
    for s in socks:
        s.close()


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(sys.argv[2])
    else:
        client(int(sys.argv[2]), int(sys.argv[3]))
