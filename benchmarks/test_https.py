"""HTTPS client benchmarks: corenet.https next to aiohttp and httpx (and urllib3 for large
bodies), all against the same local nginx over TLS, in one run.

Rows: sequential keep-alive 1 KiB GETs on one connection; 64 concurrent GETs
through the pool; 4 MiB downloads; a new TLS connection per request, with and without
session resumption; and, as most text on the web comes, gzipped by nginx on the fly: 1 KiB
of JSON-like text on one connection, and 4 MiB text downloads. httpx's own AsyncClient runs
with its default transport and with corenet's under it (corenet.https.httpx_transport),
HTTP/1.1 and HTTP/2, side by side. corenet.https runs on
corenet's loop (when built) and on stock asyncio; aiohttp and httpx on uvloop and stock
asyncio. Ratios to aiohttp-on-uvloop go into BENCHMARKS.md. `CORENET_BENCH_SHORT=1` makes
every case a few requests (CI smoke run).

Each client's rounds run back to back, so on a shared machine the ratios move with the
load; benchmarks/https_instructions.py gives the same rows' cost in instructions per request
and times the clients interleaved (`--wall`). Each case records nginx's CPU time per round
(`extra_info["nginx_cpu_ms"]`, from its worker's CPU clock): no client can take less wall
time than that, so a ratio above aiohttp's time over it is out of any client's reach.
"""
from __future__ import annotations

import asyncio
import importlib.util
import os
import ssl
import sys
import time
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / d) for d in ("https", "")]
from https_pki import make_pki  # noqa: E402
from https_servers import (  # noqa: E402
    JSON_1K, SMALL, TEXT_4M, free_port, nginx_conf, start_nginx, write_docroot,
)
from procs import stop  # noqa: E402

SHORT = os.environ.get("CORENET_BENCH_SHORT") == "1"
SEQ_N = 50 if SHORT else 1000          # GETs per round, sequential on one connection
CONC_BATCHES = 2 if SHORT else 20      # rounds of 64 concurrent GETs
TAIL_EACH = 2 if SHORT else 40         # GETs per worker per round, 64 workers (the tail row)
LARGE_N = 2 if SHORT else 10           # 4 MiB downloads per round
NEWCONN_N = 10 if SHORT else 200       # requests per round, one TLS connection each
ROUNDS = 2 if SHORT else 10


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("bench-pki"))
    root = tmp_path_factory.mktemp("bench-www")
    large = write_docroot(root)
    tmp = tmp_path_factory.mktemp("bench-nginx")
    ports = {"port": free_port(), "expired_port": free_port(), "wrongname_port": free_port(),
             "backend": free_port()}
    try:
        proc = start_nginx(tmp, nginx_conf(tmp, root, pki, ports), ports["port"])
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        worker = int(Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()[0])
        # Linux numbers another process's CPU clock (~pid << 3) | CPUCLOCK_SCHED, as
        # clock_getcpuclockid(3) returns it.
        yield {"base": f"https://localhost:{ports['port']}", "ca": str(pki["ca"]),
               "h2base": f"https://localhost:{ports['h2_port']}",
               "large_size": len(large), "root": root, "nginx_clock": (~worker << 3) | 2}
    finally:
        stop(proc)


def _loop_factory(name: str):
    if name == "asyncio":
        return asyncio.SelectorEventLoop
    if name == "uvloop":
        uvloop = pytest.importorskip("uvloop", reason="uvloop is not installed")
        return uvloop.new_event_loop
    if importlib.util.find_spec("corenet._loop") is None:
        pytest.skip("corenet._loop extension is not built")
    import corenet

    return corenet.new_event_loop


class CorenetAdapter:
    async def open(self, ca: str, new_connection: bool, resume: bool = True) -> None:
        from corenet.https import AsyncClient

        self.c = AsyncClient(verify=ca, max_connections=100, max_keepalive=0 if new_connection else 64,
                        reuse_tls_sessions=resume)

    async def get(self, url: str) -> int:
        return len((await self.c.get(url)).content)

    async def close(self) -> None:
        await self.c.aclose()


class AiohttpAdapter:
    async def open(self, ca: str, new_connection: bool, resume: bool = True) -> None:
        import aiohttp

        ctx = ssl.create_default_context(cafile=ca)
        self.s = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ctx, limit=100, force_close=new_connection))

    async def get(self, url: str) -> int:
        async with self.s.get(url) as r:
            return len(await r.read())

    async def close(self) -> None:
        await self.s.close()


class HttpxAdapter:
    async def open(self, ca: str, new_connection: bool, resume: bool = True) -> None:
        import httpx

        ctx = ssl.create_default_context(cafile=ca)
        self.c = httpx.AsyncClient(verify=ctx, limits=httpx.Limits(
            max_connections=100, max_keepalive_connections=0 if new_connection else 64))

    async def get(self, url: str) -> int:
        return len((await self.c.get(url)).content)

    async def close(self) -> None:
        await self.c.aclose()


class HttpxOverCorenetAdapter(HttpxAdapter):
    """httpx's AsyncClient, corenet's transport under it."""
    http2 = False

    async def open(self, ca: str, new_connection: bool, resume: bool = True) -> None:
        import httpx

        from corenet.https.httpx_transport import AsyncCorenetTransport

        self.c = httpx.AsyncClient(transport=AsyncCorenetTransport(
            verify=ca, http2=self.http2, limits=httpx.Limits(
                max_connections=100, max_keepalive_connections=0 if new_connection else 64)))


class HttpxH2Adapter(HttpxAdapter):
    async def open(self, ca: str, new_connection: bool, resume: bool = True) -> None:
        import httpx

        self.c = httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca), http2=True)


class HttpxOverCorenetH2Adapter(HttpxOverCorenetAdapter):
    http2 = True


ADAPTERS = {"corenet.https": CorenetAdapter, "aiohttp": AiohttpAdapter, "httpx": HttpxAdapter,
            "httpx-over-corenet": HttpxOverCorenetAdapter, "httpx-h2": HttpxH2Adapter,
            "httpx-over-corenet-h2": HttpxOverCorenetH2Adapter}
IMPLS = [
    ("corenet.https", "corenet"), ("corenet.https", "asyncio"),
    ("aiohttp", "uvloop"), ("aiohttp", "asyncio"),
    ("httpx", "uvloop"), ("httpx", "asyncio"),
]
IDS = [f"{c}-on-{lp}" for c, lp in IMPLS]


def _bench(benchmark, impl, server, work, *, new_connection=False, resume=True, expect=0):
    client, loop_name = impl
    loop = _loop_factory(loop_name)()
    adapter = ADAPTERS[client]()
    try:
        loop.run_until_complete(adapter.open(server["ca"], new_connection, resume))
        got = loop.run_until_complete(work(adapter))  # warm-up, and a correctness check
        assert got == expect, f"{client} read {got} bytes, expected {expect}"
        before = time.clock_gettime(server["nginx_clock"])
        benchmark.pedantic(lambda: loop.run_until_complete(work(adapter)),
                           rounds=ROUNDS, iterations=1)
        benchmark.extra_info["nginx_cpu_ms"] = round(
            (time.clock_gettime(server["nginx_clock"]) - before) * 1000 / ROUNDS, 2)
    finally:
        loop.run_until_complete(adapter.close())
        loop.close()


def _one_after_another(url: str, n: int):
    """The round of the sequential rows: n GETs of `url`, each after the last; bytes read."""
    async def work(a) -> int:
        total = 0
        for _ in range(n):
            total += await a.get(url)
        return total

    return work


def _in_batches_of_64(url: str, batches: int):
    """The round of the concurrent rows: `batches` times, 64 GETs of `url` at once."""
    async def work(a) -> int:
        total = 0
        for _ in range(batches):
            total += sum(await asyncio.gather(*(a.get(url) for _ in range(64))))
        return total

    return work


@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_sequential_keepalive_1k(benchmark, server, impl):
    benchmark.group = f"https: {SEQ_N} sequential keep-alive 1 KiB GETs"
    benchmark.extra_info["requests_per_round"] = SEQ_N
    url = server["base"] + "/small.txt"
    _bench(benchmark, impl, server, _one_after_another(url, SEQ_N),
           expect=SEQ_N * len(SMALL))


@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_concurrent_64_1k(benchmark, server, impl):
    benchmark.group = f"https: {CONC_BATCHES} x 64 concurrent 1 KiB GETs"
    benchmark.extra_info["requests_per_round"] = CONC_BATCHES * 64
    url = server["base"] + "/small.txt"
    _bench(benchmark, impl, server, _in_batches_of_64(url, CONC_BATCHES),
           expect=CONC_BATCHES * 64 * len(SMALL))


def _workers_of_64(url: str, each: int, latencies: list):
    """The round of the tail row: 64 workers on the one pool, each sending `each` GETs of
    `url` one after another; every request's time goes into `latencies`."""
    async def work(a) -> int:
        async def worker() -> int:
            total = 0
            for _ in range(each):
                t = time.perf_counter()
                total += await a.get(url)
                latencies.append(time.perf_counter() - t)
            return total
        return sum(await asyncio.gather(*(worker() for _ in range(64))))

    return work


@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_tail_64_workers_1k(benchmark, server, impl):
    """Each request's time while 64 run at once: the median and the p99 (``p50_ms``,
    ``p99_ms`` in extra_info, over the measured rounds), beside the rounds' time."""
    benchmark.group = f"https: 64 workers x {TAIL_EACH} keep-alive 1 KiB GETs, latency"
    benchmark.extra_info["requests_per_round"] = 64 * TAIL_EACH
    url = server["base"] + "/small.txt"
    latencies: list[float] = []
    _bench(benchmark, impl, server, _workers_of_64(url, TAIL_EACH, latencies),
           expect=64 * TAIL_EACH * len(SMALL))
    measured = sorted(latencies[64 * TAIL_EACH:])        # the warm-up round left out
    assert measured and len(measured) % (64 * TAIL_EACH) == 0
    for name, q in (("p50_ms", 0.50), ("p99_ms", 0.99)):
        benchmark.extra_info[name] = round(measured[int(len(measured) * q)] * 1000, 2)


@pytest.mark.parametrize("impl", IMPLS + [("urllib3", "sync")], ids=IDS + ["urllib3-sync"])
def test_large_4m(benchmark, server, impl):
    benchmark.group = f"https: {LARGE_N} x 4 MiB downloads"
    benchmark.extra_info["bytes_per_round"] = LARGE_N * server["large_size"]
    url = server["base"] + "/large.bin"
    if impl[0] == "urllib3":
        import urllib3

        pm = urllib3.PoolManager(ca_certs=server["ca"], cert_reqs="CERT_REQUIRED")

        def work_sync():
            return sum(len(pm.request("GET", url).data) for _ in range(LARGE_N))

        assert work_sync() == LARGE_N * server["large_size"]
        benchmark.pedantic(work_sync, rounds=ROUNDS, iterations=1)
        pm.clear()
        return

    _bench(benchmark, impl, server, _one_after_another(url, LARGE_N),
           expect=LARGE_N * server["large_size"])


@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_sequential_keepalive_gzip_1k(benchmark, server, impl):
    """Each answer gzipped by nginx and decoded by the client."""
    benchmark.group = f"https: {SEQ_N} sequential keep-alive GETs of 1 KiB gzipped JSON"
    benchmark.extra_info["requests_per_round"] = SEQ_N
    url = server["base"] + "/gz/small.txt"
    _bench(benchmark, impl, server, _one_after_another(url, SEQ_N),
           expect=SEQ_N * len(JSON_1K))


@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_large_gzip_4m(benchmark, server, impl):
    """nginx compresses as it sends; a client that decodes as the body comes works while
    nginx does, one that decodes after the last byte works after it."""
    benchmark.group = f"https: {LARGE_N} x 4 MiB gzipped text downloads"
    benchmark.extra_info["bytes_per_round"] = LARGE_N * len(TEXT_4M)
    url = server["base"] + "/gz/large.txt"
    _bench(benchmark, impl, server, _one_after_another(url, LARGE_N),
           expect=LARGE_N * len(TEXT_4M))


NEWCONN = IMPLS + [("corenet.https", "corenet", False), ("corenet.https", "asyncio", False)]
NEWCONN_IDS = IDS + ["corenet.https-on-corenet-no-resumption",
                     "corenet.https-on-asyncio-no-resumption"]


@pytest.mark.parametrize("impl", NEWCONN, ids=NEWCONN_IDS)
def test_new_tls_connection_per_request(benchmark, server, impl):
    """aiohttp and httpx cannot resume a TLS session (asyncio's SSL transport takes no
    session), so their rows are full handshakes; corenet.https shows both."""
    benchmark.group = f"https: {NEWCONN_N} GETs, a new TLS connection each"
    benchmark.extra_info["requests_per_round"] = NEWCONN_N
    resume = impl[2] if len(impl) > 2 else True
    url = server["base"] + "/small.txt"
    _bench(benchmark, impl[:2], server, _one_after_another(url, NEWCONN_N),
           new_connection=True, resume=resume, expect=NEWCONN_N * len(SMALL))


# httpx's own client by transport: its default one (httpcore) and corenet's, each over
# HTTP/1.1 and HTTP/2, on stock asyncio (as most httpx code runs) and, for corenet's
# transport, on corenet's loop too.
HTTPX_BY_TRANSPORT = [
    ("httpx", "asyncio"), ("httpx-over-corenet", "asyncio"), ("httpx-over-corenet", "corenet"),
    ("httpx-h2", "asyncio"), ("httpx-over-corenet-h2", "asyncio"),
    ("httpx-over-corenet-h2", "corenet"),
]


@pytest.mark.parametrize("impl", HTTPX_BY_TRANSPORT,
                         ids=[f"{c}-on-{lp}" for c, lp in HTTPX_BY_TRANSPORT])
@pytest.mark.parametrize("shape", ["sequential", "concurrent"])
def test_httpx_by_transport_1k(benchmark, server, impl, shape):
    """The same httpx code, only its transport changed: what corenet's pool, exchange and
    TLS save an httpx user. nginx's HTTP/2 port serves every row (HTTP/1.1 through ALPN)."""
    url = server["h2base"] + "/small.txt"
    if shape == "sequential":
        benchmark.group = f"https: httpx's client by transport, {SEQ_N} sequential 1 KiB GETs"
        benchmark.extra_info["requests_per_round"] = SEQ_N
        _bench(benchmark, impl, server, _one_after_another(url, SEQ_N),
               expect=SEQ_N * len(SMALL))
        return
    benchmark.group = f"https: httpx's client by transport, {CONC_BATCHES} x 64 concurrent " \
                      "1 KiB GETs"
    benchmark.extra_info["requests_per_round"] = CONC_BATCHES * 64
    _bench(benchmark, impl, server, _in_batches_of_64(url, CONC_BATCHES),
           expect=CONC_BATCHES * 64 * len(SMALL))
