"""What an HTTPS GET costs the client, in a figure that does not depend on the machine's load:
user-space instructions per request (callgrind), corenet.https on corenet's loop next to
aiohttp on uvloop, both against the nginx of benchmarks/test_https.py on loopback.

Each client runs in a process of its own under callgrind, once with ``n`` and once with
``2n`` requests after the same warm-up; the difference over ``n`` is the cost of one request
without the interpreter's start-up, the imports and the first connection. Rows: sequential
keep-alive GETs of 1 KiB on one connection, 4 MiB downloads (the body read whole), the same
two gzipped by nginx as it sends (``gzip``, ``gzip-large``), and 1 KiB GETs each on a new TLS
connection (corenet.https resuming the last connection's session and not; aiohttp cannot
resume).

    .venv/bin/python benchmarks/https_instructions.py [-n 200] [--large-n 4] [--new-n 50]
        [--rows small,large,gzip,gzip-large,new] [--keep DIR]
        [--wall [--cpus C,N] [--response-poll SECONDS]]

``--wall`` instead times both clients in one process, interleaved (corenet, aiohttp,
corenet, ... for three rounds, so that a busy machine weighs on both alike), and splits each
request's wall time into the client's CPU time and the CPU time of nginx's worker (read from
its CPU clock, to the nanosecond). A request cannot take less wall time than nginx spends on
it: a sequential one costs about the sum of the two, and a large body, where both work at
once, about the larger. Each round therefore also prints the ceiling: aiohttp's wall time
over nginx's CPU time, the ratio a client that cost nothing would reach. ``--cpus C,N``
pins the clients to core ``C`` and nginx's worker to core ``N`` (the same core: no request
or response waits for the other core to wake up; unpinned, the scheduler puts them apart).
``--response-poll`` sets corenet.https's ``Limits.response_poll`` (0: it sleeps for each
response as aiohttp does).

Needs valgrind (not for ``--wall``) and nginx. BENCHMARKS.md ("HTTPS client") reports its
figures.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import re
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)] + [str(HERE.parent / "tests" / d) for d in ("https", "")]

IMPLS = [("corenet.https", "corenet"), ("aiohttp", "uvloop")]
#: How each row connects: "keep" (one pooled connection), "resume" (a new connection per
#: request, the last one's TLS session resumed) or "full" (a new one, full handshakes).
NEW_MODES = {"corenet.https": ("resume", "full"), "aiohttp": ("full",)}


async def _open_corenet(url: str, ca: str, stack, mode: str = "keep",
                        response_poll: float | None = None):
    """An open corenet.https client (closed with ``stack``); returns ``get(count)``, which
    GETs ``url`` that many times in turn and returns the bytes read. ``response_poll``:
    its ``Limits.response_poll`` (None: the default)."""
    from corenet.https import AsyncClient, Limits

    limits = Limits() if response_poll is None else Limits(response_poll=response_poll)
    c = await stack.enter_async_context(AsyncClient(
        verify=ca, limits=limits, max_connections=100,
        max_keepalive=64 if mode == "keep" else 0, reuse_tls_sessions=mode != "full"))

    async def get(count: int) -> int:
        total = 0
        for _ in range(count):
            total += len((await c.get(url)).content)
        return total
    return get


async def _open_aiohttp(url: str, ca: str, stack, mode: str = "keep"):
    """The same as :func:`_open_corenet` with an aiohttp session."""
    import aiohttp

    ctx = ssl.create_default_context(cafile=ca)
    connector = aiohttp.TCPConnector(ssl=ctx, limit=100, force_close=mode != "keep")
    s = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))

    async def get(count: int) -> int:
        total = 0
        for _ in range(count):
            async with s.get(url) as r:
                total += len(await r.read())
        return total
    return get


OPENERS = {"corenet.https": _open_corenet, "aiohttp": _open_aiohttp}


async def _requests(impl: str, url: str, ca: str, count: int, mode: str) -> int:
    """``count + 1`` GETs on a new client: the first opens its connection."""
    async with contextlib.AsyncExitStack() as stack:
        get = await OPENERS[impl](url, ca, stack, mode)
        return await get(count + 1)


def child(impl: str, loop_name: str, url: str, ca: str, count: int, mode: str) -> None:
    if loop_name == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        import corenet

        loop = corenet.new_event_loop()
    try:
        total = loop.run_until_complete(_requests(impl, url, ca, count, mode))
    finally:
        loop.close()
    print(total)


def wall(url: str, ca: str, n: int, nginx_pid: int, rounds: int = 3,
         cpus: tuple[int, int] | None = None, response_poll: float | None = None) -> None:
    import statistics
    import time

    import corenet
    import uvloop

    children = Path(f"/proc/{nginx_pid}/task/{nginx_pid}/children").read_text().split()
    # The worker's CPU clock, to the nanosecond: Linux numbers another process's clock
    # (~pid << 3) | CPUCLOCK_SCHED, what clock_getcpuclockid(3) returns.
    worker_clock = (~int(children[0]) << 3) | 2
    if cpus is not None:
        os.sched_setaffinity(0, {cpus[0]})
        os.sched_setaffinity(int(children[0]), {cpus[1]})

    def nginx_cpu() -> float:
        return time.clock_gettime(worker_clock)

    # Both clients stay open, each on its own loop, and take turns by blocks of ``block``
    # requests (the order swapped every block; at least ten blocks a round, of at most 50
    # requests): the host's speed, which can halve from one second to the next here, weighs
    # on both alike.
    block = max(1, min(50, n // 10))
    blocks = max(1, n // block)
    clients = []  # (name, its loop, what closes its client, its get(count))
    try:
        for name, new_loop in (("corenet.https", corenet.new_event_loop),
                               ("aiohttp", uvloop.new_event_loop)):
            loop, stack = new_loop(), contextlib.AsyncExitStack()
            try:
                options = {"response_poll": response_poll} if name == "corenet.https" else {}
                get = loop.run_until_complete(OPENERS[name](url, ca, stack, **options))
                loop.run_until_complete(get(2))
            except BaseException:
                loop.run_until_complete(stack.aclose())
                loop.close()
                raise
            clients.append((name, loop, stack, get))
        block_ratios = []
        for r in range(rounds):
            spent = {name: [0.0, 0.0, 0.0] for name, *_ in clients}  # wall, client, nginx
            for b in range(blocks):
                walls = {}
                for name, loop, _stack, get in clients[::-1] if b % 2 else clients:
                    c0, s0, t0 = time.process_time(), nginx_cpu(), time.perf_counter()
                    loop.run_until_complete(get(block))
                    t1, c1, s1 = time.perf_counter(), time.process_time(), nginx_cpu()
                    walls[name] = t1 - t0
                    for i, d in enumerate((t1 - t0, c1 - c0, s1 - s0)):
                        spent[name][i] += d
                block_ratios.append(walls["aiohttp"] / walls["corenet.https"])
            us = 1e6 / (blocks * block)
            for name, (w, c, s) in spent.items():
                print(f"round {r + 1} {name:14} wall {w * us:9.1f} us/request, client CPU "
                      f"{c * us:9.1f}, nginx CPU {s * us:8.1f}", flush=True)
            print(f"round {r + 1} aiohttp / corenet.https wall time: "
                  f"{spent['aiohttp'][0] / spent['corenet.https'][0]:.2f}x; client CPU: "
                  f"{spent['aiohttp'][1] / spent['corenet.https'][1]:.2f}x; ceiling "
                  f"(aiohttp's wall / nginx CPU): "
                  f"{spent['aiohttp'][0] / spent['aiohttp'][2]:.2f}x", flush=True)
        q = statistics.quantiles(block_ratios, n=4, method="inclusive")
        print(f"aiohttp / corenet.https wall time per block of {block}: median "
              f"{statistics.median(block_ratios):.2f}x, quartiles {q[0]:.2f}-{q[2]:.2f}x "
              f"({len(block_ratios)} blocks)", flush=True)
    finally:
        for name, loop, stack, _get in clients:
            try:
                loop.run_until_complete(stack.aclose())
            finally:
                loop.close()


def _instructions(dump: Path) -> int:
    m = re.search(r"^(?:summary|totals):\s*(\d+)", dump.read_text(errors="replace"), re.M)
    if m is None:
        raise RuntimeError(f"no instruction total in {dump}")
    return int(m.group(1))


def run_counted(impl: str, loop_name: str, url: str, ca: str, count: int, work: Path,
                expect: int, mode: str = "keep") -> int:
    dump = work / f"{impl}-{loop_name}-{mode}-{url.rsplit('/', 1)[1]}-{count}.callgrind"
    r = subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}", sys.executable,
         __file__, "--child", impl, loop_name, url, ca, str(count), mode],
        capture_output=True, text=True, timeout=1800)
    got = r.stdout.strip().splitlines()[-1:] if r.stdout else []
    if r.returncode != 0 or got != [str(expect)]:
        raise RuntimeError(f"{impl} on {loop_name} failed ({r.returncode}): "
                           f"{r.stdout[-500:]}{r.stderr[-2000:]}")
    return _instructions(dump)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=200, help="sequential 1 KiB GETs (and 2n)")
    ap.add_argument("--large-n", type=int, default=4, help="4 MiB downloads (and 2x)")
    ap.add_argument("--new-n", type=int, default=50, help="new connections (and 2x)")
    ap.add_argument("--only", choices=[i for i, _ in IMPLS], help="measure one client")
    ap.add_argument("--rows", default="small,large,gzip,gzip-large,new",
                    help="some of small, large, gzip, gzip-large and new (--wall skips new)")
    ap.add_argument("--keep", type=Path, help="work in DIR and leave the callgrind dumps")
    ap.add_argument("--wall", action="store_true",
                    help="time both clients interleaved instead (no valgrind)")
    ap.add_argument("--cpus", metavar="C,N",
                    type=lambda v: tuple(int(x) for x in v.split(",", 1)),
                    help="--wall: the clients on core C, nginx's worker on core N")
    ap.add_argument("--response-poll", type=float, metavar="SECONDS",
                    help="--wall: corenet.https's Limits.response_poll (0: it sleeps)")
    ap.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        impl, loop_name, url, ca, count, mode = a.child
        child(impl, loop_name, url, ca, int(count), mode)
        return

    from https_pki import make_pki
    from https_servers import JSON_1K, SMALL, TEXT_4M, nginx_conf, start_nginx, write_docroot
    from ports import free_port
    from procs import sigterm_as_interrupt, stop

    sigterm_as_interrupt()         # a terminated run still stops nginx

    with tempfile.TemporaryDirectory() as td:
        work = a.keep or Path(td)
        work.mkdir(parents=True, exist_ok=True)
        (work / "pki").mkdir(exist_ok=True)
        (work / "www").mkdir(exist_ok=True)
        (work / "nginx").mkdir(exist_ok=True)
        pki = make_pki(work / "pki")
        large = write_docroot(work / "www")
        ports = {"port": free_port(), "expired_port": free_port(),
                 "wrongname_port": free_port(), "backend": free_port()}
        proc = start_nginx(work / "nginx", nginx_conf(work / "nginx", work / "www", pki, ports),
                           ports["port"])
        base = f"https://localhost:{ports['port']}"
        rows = [("small", "/small.txt", a.n, len(SMALL)),
                ("large", "/large.bin", a.large_n, len(large)),
                ("gzip", "/gz/small.txt", a.n, len(JSON_1K)),
                ("gzip-large", "/gz/large.txt", a.large_n, len(TEXT_4M)),
                ("new", "/small.txt", a.new_n, len(SMALL))]
        try:
            for row, path, n, size in rows:
                if row not in a.rows.split(","):
                    continue
                if a.wall:
                    if row != "new":
                        print(f"{row}: {n} requests per client per round", flush=True)
                        wall(base + path, str(pki["ca"]), n, proc.pid, cpus=a.cpus,
                             response_poll=a.response_poll)
                    continue
                for impl, loop_name in IMPLS:
                    if a.only and impl != a.only:
                        continue
                    for mode in NEW_MODES[impl] if row == "new" else ("keep",):
                        one = run_counted(impl, loop_name, base + path, str(pki["ca"]), n,
                                          work, (n + 1) * size, mode)
                        two = run_counted(impl, loop_name, base + path, str(pki["ca"]), 2 * n,
                                          work, (2 * n + 1) * size, mode)
                        per = (two - one) / n
                        what = f"{row} ({mode})" if row == "new" else row
                        print(f"{what:12} {impl:14} on {loop_name:8} {per:14,.0f} "
                              "instructions/request"
                              + (f"  ({per / size:.2f} per body byte)" if row == "large"
                                 else ""), flush=True)
        finally:
            stop(proc)


if __name__ == "__main__":
    main()
