"""The workload the extensions' build profile is taken from (scripts/lib.sh, build_profiled):
run once against an instrumented build (``CORENET_PROFILE=generate``), it leaves the counts
of which branches and functions ran; the final build (``CORENET_PROFILE=use``) lays the code
out from them, the paths that ran packed together and the rest (error handling, rare cases)
moved apart. A cache miss wakes the daemon from an idle CPU twice, and the fewer code pages
it then touches, the less it waits for them (BENCHMARKS.md, "Where a miss goes").

What runs, each part bounded in count and time, all on loopback:

- the daemon (``corenet-resolver serve``, one worker) over a DNS hierarchy of the test lab's
  zones (``tests/resolver/dnslab``) served by its scriptable authority on 127.0.0.x: new
  names of a known zone one at a time and in bursts, names of new zones (a referral, then
  the answer), the same names again from the cache in bursts, then as fast as a thread of
  four sockets sends them (the batches of a busy server), queries over TCP, and a flood of
  new names beyond what the daemon takes (its drops, and evictions from a cache kept small);
- the loop's transports: TCP echo through a ``Protocol``, a ``BufferedProtocol`` and the
  streams at 1 KiB and 64 KiB, UDP echo, timers and tasks;
- the HTTP client (``corenet.https``, HTTP/1.1 over plain TCP): GETs one after another and
  many at once, small and 1 MiB bodies, from a small server of the workload's own.

Needs nothing beyond the project's own dependencies (dnspython answers for the authority).

    .venv/bin/python scripts/profile_workload.py
"""
from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "resolver"), str(ROOT / "tests"), str(ROOT)]

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

import corenet  # noqa: E402
import corenet.https  # noqa: E402
from daemon_proc import Daemon  # noqa: E402
from dnslab import Lab, bulk_names, many_zone_names  # noqa: E402
from dnslab import zones as Z  # noqa: E402
from dnslab.authority import ZoneAuthority  # noqa: E402
from dnslab.fake import FakeServer, serve  # noqa: E402
from ports import pick_port  # noqa: E402

MISSES_ONE_AT_A_TIME = 400
MISSES_IN_BURSTS = 600
BURST = 30
NEW_ZONES = 40
CACHED_ROUNDS = 6
FLOOD_QUERIES = 60_000
FLOOD_SOCKETS = 4
MISS_FLOOD_QUERIES = 15_000
CACHE_SIZE = 2 << 20    # small enough for the miss flood to fill: the cache then evicts
TCP_QUERIES = 200
ECHO_ROUND_TRIPS = 2000
HTTP_REQUESTS = 1000
HTTP_AT_ONCE = 32
TIMEOUT = 5.0           # any one exchange
DEADLINE = 240.0        # the whole workload


class _Hierarchy:
    """The lab's zones on their addresses, answered by dnslab's authority; what
    ``daemon_proc.Daemon`` reads of a lab (``root_hints_file``, ``port``), as a ``Lab``
    has them."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = pick_port([s.address for s in Z.SERVERS])
        self.root_hints = list(Z.ROOT_HINTS)
        self.servers: list[FakeServer] = []

    async def start(self) -> None:
        texts = Z.zone_texts()
        for spec in Z.SERVERS:
            if spec.zones:
                handler = serve(*(ZoneAuthority.from_text(o, texts[o]) for o in spec.zones))
                self.servers.append(await FakeServer.start(spec.address, self.port, handler))

    async def close(self) -> None:
        for s in self.servers:
            await s.close()

    root_hints_file = Lab.root_hints_file     # the lab's hints file, written the same way


class _Client(asyncio.DatagramProtocol):
    """Queries over one UDP socket, answers matched to them by ID."""

    def __init__(self) -> None:
        self.waiting: dict[int, asyncio.Future] = {}
        self.next_id = 1

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        fut = self.waiting.pop(int.from_bytes(data[:2], "big"), None)
        if fut is not None and not fut.done():
            fut.set_result(data)

    async def ask(self, name: str, port: int) -> dns.message.Message:
        q = dns.message.make_query(name, "A")
        q.id = self.next_id = self.next_id % 65535 + 1
        fut = asyncio.get_running_loop().create_future()
        self.waiting[q.id] = fut
        self.transport.sendto(q.to_wire(), ("127.0.0.1", port))
        try:
            return dns.message.from_wire(await asyncio.wait_for(fut, TIMEOUT))
        finally:
            self.waiting.pop(q.id, None)


def _flood(port: int, names: list[str], count: int) -> int:
    """``count`` queries for ``names`` in turn sent as fast as FLOOD_SOCKETS sockets take
    them, the answers read in between without waiting (a lost one is not asked again);
    returns the answers read. Answers still to come when the last query is sent (misses
    wait for the authority, which shares this process's interpreter) are waited for until
    one comes or TIMEOUT passes."""
    wires = [dns.message.make_query(n, "A").to_wire() for n in names]
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(FLOOD_SOCKETS)]
    answers = 0
    deadline = time.monotonic() + DEADLINE / 4

    def read() -> int:
        got = 0
        for s in socks:
            while True:
                try:
                    s.recv(4096, socket.MSG_DONTWAIT)
                    got += 1
                except BlockingIOError:
                    break
        return got

    try:
        for s in socks:
            s.connect(("127.0.0.1", port))
        for i in range(count):
            socks[i % FLOOD_SOCKETS].send(wires[i % len(wires)])
            if i % 256 == 255:
                answers += read()
                if time.monotonic() > deadline:
                    break
        late = time.monotonic() + TIMEOUT
        while answers == 0 and time.monotonic() < late:
            time.sleep(0.01)
            answers += read()
    finally:
        for s in socks:
            s.close()
    return answers


def _check(reply: dns.message.Message, name: str) -> None:
    if reply.rcode() != dns.rcode.NOERROR or not reply.answer:
        raise RuntimeError(f"{name}: {dns.rcode.to_text(reply.rcode())} without an answer")


async def _resolver_part(workdir: Path) -> None:
    hierarchy = _Hierarchy(workdir)
    await hierarchy.start()
    daemon = None
    try:
        daemon = await asyncio.to_thread(
            lambda: Daemon(workdir / "daemon", hierarchy, "--no-ipv6", "--ip-ratelimit", "0",
                           "--cache-size", str(CACHE_SIZE), metrics=False).start(timeout=60))
        loop = asyncio.get_running_loop()
        transport, client = await loop.create_datagram_endpoint(
            _Client, remote_addr=("127.0.0.1", daemon.port))
        names = [n for n, _ in bulk_names()][:MISSES_ONE_AT_A_TIME + MISSES_IN_BURSTS]
        for name in names[:MISSES_ONE_AT_A_TIME]:
            _check(await client.ask(name, daemon.port), name)
        rest = names[MISSES_ONE_AT_A_TIME:]
        for i in range(0, len(rest), BURST):
            for name, r in zip(rest[i:i + BURST], await asyncio.gather(
                    *(client.ask(n, daemon.port) for n in rest[i:i + BURST]))):
                _check(r, name)
        for name, _ in many_zone_names()[:NEW_ZONES]:
            _check(await client.ask(name, daemon.port), name)
        for _ in range(CACHED_ROUNDS):
            for i in range(0, len(names), BURST):
                await asyncio.gather(*(client.ask(n, daemon.port) for n in names[i:i + BURST]))
        transport.close()
        if await asyncio.to_thread(_flood, daemon.port, names, FLOOD_QUERIES) == 0:
            raise RuntimeError("no answer to the flood of cached names")
        reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
        for name in names[:TCP_QUERIES]:
            wire = dns.message.make_query(name, "A").to_wire()
            writer.write(len(wire).to_bytes(2, "big") + wire)
        await writer.drain()
        for _ in range(TCP_QUERIES):
            size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), TIMEOUT), "big")
            await asyncio.wait_for(reader.readexactly(size), TIMEOUT)
        writer.close()
        await writer.wait_closed()
        new = [f"f{i:06d}.wild.example.com." for i in range(MISS_FLOOD_QUERIES)]
        if await asyncio.to_thread(_flood, daemon.port, new, MISS_FLOOD_QUERIES) == 0:
            raise RuntimeError("no answer to the flood of new names")
    finally:
        if daemon is not None:         # a clean exit: the daemon writes its counts then
            await asyncio.to_thread(daemon.stop, 30)
        await hierarchy.close()


class _Echo(asyncio.Protocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


class _BufferedEcho(asyncio.BufferedProtocol):
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.buf = bytearray(256 * 1024)

    def get_buffer(self, sizehint: int):
        return self.buf

    def buffer_updated(self, nbytes: int) -> None:
        self.transport.write(self.buf[:nbytes])


class _UdpEcho(asyncio.DatagramProtocol):
    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        self.transport.sendto(data, addr)


async def _streams_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _round_trips(port: int, size: int, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = os.urandom(size)
    for _ in range(count):
        writer.write(payload)
        if await asyncio.wait_for(reader.readexactly(size), TIMEOUT) != payload:
            raise RuntimeError("an echo came back changed")
    writer.close()
    await writer.wait_closed()


async def _loop_part() -> None:
    loop = asyncio.get_running_loop()
    for make in (lambda: loop.create_server(_Echo, "127.0.0.1", 0),
                 lambda: loop.create_server(_BufferedEcho, "127.0.0.1", 0),
                 lambda: asyncio.start_server(_streams_echo, "127.0.0.1", 0)):
        server = await make()
        port = server.sockets[0].getsockname()[1]
        await asyncio.gather(*(_round_trips(port, 1024, ECHO_ROUND_TRIPS // 4) for _ in range(4)))
        await _round_trips(port, 64 * 1024, ECHO_ROUND_TRIPS // 20)
        server.close()
        await server.wait_closed()
    echo, _ = await loop.create_datagram_endpoint(_UdpEcho, local_addr=("127.0.0.1", 0))
    client, proto = await loop.create_datagram_endpoint(
        _Client, remote_addr=echo.get_extra_info("sockname"))
    for i in range(ECHO_ROUND_TRIPS):
        fut = loop.create_future()
        proto.waiting[i % 65535 + 1] = fut
        client.sendto((i % 65535 + 1).to_bytes(2, "big") + b"x" * 40)
        await asyncio.wait_for(fut, TIMEOUT)
    client.close()
    echo.close()
    done = loop.create_future()
    left = [ECHO_ROUND_TRIPS]

    def tick() -> None:
        left[0] -= 1
        if left[0] == 0:
            done.set_result(None)
    for i in range(ECHO_ROUND_TRIPS):
        loop.call_later((i % 10) / 1000, tick)
    await asyncio.wait_for(done, TIMEOUT)
    await asyncio.gather(*(asyncio.sleep(0) for _ in range(ECHO_ROUND_TRIPS)))


async def _http_server(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """HTTP/1.1 with keep-alive: GET /big answers 1 MiB, any other path 2 KiB."""
    small, big = b"s" * 2048, b"b" * (1 << 20)
    while head := await reader.readuntil(b"\r\n\r\n"):
        body = big if head.startswith(b"GET /big ") else small
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()


async def _http_part() -> None:
    async def serve(reader, writer) -> None:
        try:
            await _http_server(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    async with corenet.https.AsyncClient(timeout=TIMEOUT) as client:
        for _ in range(HTTP_REQUESTS // 2):
            (await client.get(f"{url}/small")).raise_for_status()
        for _ in range(HTTP_REQUESTS // 2 // HTTP_AT_ONCE):
            for r in await asyncio.gather(*(client.get(f"{url}/small")
                                            for _ in range(HTTP_AT_ONCE))):
                r.raise_for_status()
        for _ in range(20):
            if len((await client.get(f"{url}/big")).content) != 1 << 20:
                raise RuntimeError("a 1 MiB body came back short")
    server.close()
    await server.wait_closed()


async def _main() -> None:
    with tempfile.TemporaryDirectory(prefix="corenet-profile-") as tmp:
        await asyncio.wait_for(
            asyncio.gather(_resolver_part(Path(tmp)), _loop_part(), _http_part()), DEADLINE)


if __name__ == "__main__":
    started = time.monotonic()
    corenet.run(_main())
    print(f"profile workload: done in {time.monotonic() - started:.1f} s")
