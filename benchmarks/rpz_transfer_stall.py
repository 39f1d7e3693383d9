"""How long a policy zone's transfer holds the loop: a 10,000-rule RPZ zone served by NSD on
loopback, transferred (AXFR) by the daemon's feed (``resolver.daemon.rpz_feed.Feed``) on
corenet's loop while a task on the same loop wakes every millisecond; the longest and the
99th-percentile gap between two of its wake-ups is how long an answer would have waited
behind the transfer.

    .venv/bin/python benchmarks/rpz_transfer_stall.py [--rules 10000] [--rounds 3]

Needs nsd (and nsd-control). BENCHMARKS.md ("Answering while the config is reloaded")
reports its figures.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE.parent / "tests"), str(HERE.parent / "tests" / "resolver")]

import corenet  # noqa: E402
from ports import pick_port  # noqa: E402
from procs import sigterm_as_interrupt  # noqa: E402
from test_rpz_daemon import POLICY, Primary  # noqa: E402

from resolver.daemon.rpz_feed import Feed, RpzSource  # noqa: E402
from resolver.limits import DEFAULT  # noqa: E402


async def one_transfer(port: int) -> tuple[float, list[float], int]:
    """(the transfer's seconds, the gaps between the ticker's wake-ups, the triggers)."""
    gaps: list[float] = []
    done = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not done:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.ensure_future(ticker())
    feed = Feed(RpzSource("rpz.test.", primaries=(("127.0.0.1", port),)), DEFAULT,
                lambda: None)
    start = time.perf_counter()
    assert await feed.transfer(), "the transfer failed"
    took = time.perf_counter() - start
    done = True
    await tick
    assert feed.zone is not None
    return took, sorted(gaps), len(feed.zone)


def measure(rules: int, rounds: int) -> list[tuple[float, list[float], int]]:
    """``rounds`` transfers of a zone of ``rules`` rules from NSD on loopback, each on a new
    loop: (seconds, the loop's gaps sorted, triggers) for each."""
    records = "".join(f"bad{i}.example.com CNAME .\n" for i in range(rules))
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        port = pick_port(["127.0.0.1"], low=31000)
        primary = Primary(Path(tmp) / "nsd", "127.0.0.1", port,
                          {"rpz.test.": POLICY.format(serial=1, records=records)},
                          control=True)
        primary.start()
        try:
            deadline = time.monotonic() + 10
            while not primary.probe():
                assert time.monotonic() < deadline, "nsd did not answer"
                time.sleep(0.1)
            for _ in range(rounds):
                loop = corenet.new_event_loop()
                try:
                    out.append(loop.run_until_complete(one_transfer(port)))
                finally:
                    loop.close()
        finally:
            primary.signal_stop()
            primary.wait_stopped(time.monotonic() + 10)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rules", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    sigterm_as_interrupt()         # a terminated run still stops its servers
    for n, (took, gaps, triggers) in enumerate(measure(args.rules, args.rounds)):
        print(f"round {n + 1}: {triggers:,} triggers in {took * 1000:.0f} ms; the loop's "
              f"gaps: longest {gaps[-1] * 1000:.1f} ms, "
              f"p99 {gaps[int(len(gaps) * 0.99)] * 1000:.2f} ms, {len(gaps)} wake-ups")


if __name__ == "__main__":
    main()
