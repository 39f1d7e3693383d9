"""HTTP/2 client benchmarks: corenet.https (`http2=True`) next to httpx (`http2=True`, on the
`h2` package) and niquests (skipped when not installed), against the same local nginx over TLS offering h2, in one run.

Rows: 1,000 sequential 1 KiB GETs on one connection; 1,000 GETs with 100 in flight on one
connection; one 64 MiB download. corenet.https runs on corenet's loop (when built) and on
stock asyncio, httpx and niquests on stock asyncio. `CORENET_BENCH_SHORT=1` makes every case
a few requests (CI smoke run).
"""
from __future__ import annotations

import asyncio
import importlib.util
import os
import ssl
import sys
from pathlib import Path

import pytest

sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "tests" / d) for d in ("https", "")]
from https_pki import make_pki  # noqa: E402
from https_servers import SMALL, nginx_conf, start_nginx, write_docroot  # noqa: E402
from ports import free_port  # noqa: E402
from procs import stop  # noqa: E402

SHORT = os.environ.get("CORENET_BENCH_SHORT") == "1"
SEQ_N = 50 if SHORT else 1000      # sequential GETs per round
CONC_N = 200 if SHORT else 1000    # GETs per round, IN_FLIGHT at a time
IN_FLIGHT = 100
HUGE = (4 if SHORT else 64) * 1024 * 1024
ROUNDS = 2 if SHORT else 5


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pki = make_pki(tmp_path_factory.mktemp("bench-h2-pki"))
    root = tmp_path_factory.mktemp("bench-h2-www")
    write_docroot(root)
    (root / "huge.bin").write_bytes(os.urandom(1024 * 1024) * (HUGE // (1024 * 1024)))
    tmp = tmp_path_factory.mktemp("bench-h2-nginx")
    ports = {"port": free_port(), "h2_port": free_port(), "expired_port": free_port(),
             "wrongname_port": free_port(), "backend": free_port()}
    try:
        proc = start_nginx(tmp, nginx_conf(tmp, root, pki, ports), ports["port"])
    except FileNotFoundError as exc:
        pytest.skip(str(exc))
    try:
        yield {"base": f"https://localhost:{ports['h2_port']}", "ca": str(pki["ca"])}
    finally:
        stop(proc)


def _loop_factory(name: str):
    if name == "asyncio":
        return asyncio.SelectorEventLoop
    if importlib.util.find_spec("corenet._loop") is None:
        pytest.skip("corenet._loop extension is not built")
    import corenet

    return corenet.new_event_loop


class CorenetAdapter:
    async def open(self, ca: str) -> None:
        from corenet.https import AsyncClient, Limits

        self.c = AsyncClient(verify=ca, http2=True, limits=Limits(max_body_bytes=HUGE + 1))

    async def get(self, url: str) -> tuple[int, str]:
        r = await self.c.get(url)
        return len(r.content), r.http_version

    async def close(self) -> None:
        await self.c.aclose()


class HttpxAdapter:
    async def open(self, ca: str) -> None:
        import httpx

        pytest.importorskip("h2", reason="httpx needs the h2 package for HTTP/2")
        self.c = httpx.AsyncClient(verify=ssl.create_default_context(cafile=ca), http2=True)

    async def get(self, url: str) -> tuple[int, str]:
        r = await self.c.get(url)
        return len(r.content), r.http_version

    async def close(self) -> None:
        await self.c.aclose()


class NiquestsAdapter:
    async def open(self, ca: str) -> None:
        niquests = pytest.importorskip("niquests", reason="niquests is not installed")
        self.s = niquests.AsyncSession(disable_http3=True)
        self.ca = ca

    async def get(self, url: str) -> tuple[int, str]:
        r = await self.s.get(url, verify=self.ca)
        return len(r.content), f"HTTP/{r.raw.version / 10:g}" if r.raw else ""

    async def close(self) -> None:
        await self.s.close()


ADAPTERS = {"corenet.https": CorenetAdapter, "httpx": HttpxAdapter,
            "niquests": NiquestsAdapter}
IMPLS = [("corenet.https", "corenet"), ("corenet.https", "asyncio"), ("httpx", "asyncio"),
         ("niquests", "asyncio")]
IDS = [f"{c}-on-{lp}" for c, lp in IMPLS]


def _bench(benchmark, impl, server, work, expect: int) -> None:
    client, loop_name = impl
    loop = _loop_factory(loop_name)()
    adapter = ADAPTERS[client]()
    try:
        loop.run_until_complete(adapter.open(server["ca"]))
        got = loop.run_until_complete(work(adapter))  # warm-up, and a correctness check
        assert got == expect, f"{client} read {got} bytes, expected {expect}"
        benchmark.pedantic(lambda: loop.run_until_complete(work(adapter)),
                           rounds=ROUNDS, iterations=1)
    finally:
        if vars(adapter):
            loop.run_until_complete(adapter.close())
        loop.close()


async def _get(a, url: str) -> int:
    n, version = await a.get(url)
    assert version in ("HTTP/2", "HTTP/2.0"), version  # really HTTP/2
    return n


@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_h2_sequential_1k(benchmark, server, impl):
    benchmark.group = f"https h2: {SEQ_N} sequential 1 KiB GETs, one connection"
    benchmark.extra_info["requests_per_round"] = SEQ_N
    url = server["base"] + "/small.txt"

    async def work(a):
        total = 0
        for _ in range(SEQ_N):
            total += await _get(a, url)
        return total

    _bench(benchmark, impl, server, work, SEQ_N * len(SMALL))


@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_h2_concurrent_100_in_flight(benchmark, server, impl):
    benchmark.group = f"https h2: {CONC_N} 1 KiB GETs, {IN_FLIGHT} in flight, one connection"
    benchmark.extra_info["requests_per_round"] = CONC_N
    url = server["base"] + "/small.txt"

    async def work(a):
        sem = asyncio.Semaphore(IN_FLIGHT)

        async def one():
            async with sem:
                return await _get(a, url)

        return sum(await asyncio.gather(*(one() for _ in range(CONC_N))))

    _bench(benchmark, impl, server, work, CONC_N * len(SMALL))


@pytest.mark.parametrize("impl", IMPLS, ids=IDS)
def test_h2_download_64m(benchmark, server, impl):
    benchmark.group = f"https h2: one {HUGE >> 20} MiB download"
    benchmark.extra_info["bytes_per_round"] = HUGE
    url = server["base"] + "/huge.bin"

    async def work(a):
        return await _get(a, url)

    _bench(benchmark, impl, server, work, HUGE)
