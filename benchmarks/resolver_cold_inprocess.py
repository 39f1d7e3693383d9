"""CPU per cache miss of the resolver's cold path, in-process (a measuring script, not a
pytest benchmark): the NSD lab, a fresh Resolver per round, 200 names of a zone already
known (``hNNN.bulk.net.``: one upstream query each) and 100 names of zones never seen
(``www.zNNN.org.``: a referral, then the answer), process CPU time per miss.

    cd <tree> && python benchmarks/resolver_cold_inprocess.py

Environment: ``MODE=engine`` (``await resolve_message``) or ``daemon`` (the daemon's miss
path: ``Server.udp_miss`` with a fake listener); ``KIND=edge|level|asyncio``; ``ROUNDS``;
``REPLAY=1`` replays the replies recorded in the first round without sockets (the Python
side alone; engine mode only on trees with the C Drive, see below);
``PROF=tottime|ncalls`` prints a cProfile of one round (``ONLY=known|new``).
Pin it (``taskset -c 0``) and alternate trees: on a shared machine only pairs count.
Works on trees before and after the ``coldpath2`` branch (for before/after pairs).

``REPLAY=1`` cannot work with ``MODE=daemon`` once the Drive builds its upstream queries as
C (``resolver.resolution`` cimports ``UDPQuery`` and reads its outcome as C fields): there is no
Python name left to swap for recorded replies, so the daemon's misses would go on sending
real queries and the figures would not be what they claim. The script refuses that
combination (exit status 1, with the reason); on older trees it still replays both modes.
"""
from __future__ import annotations

import asyncio
import cProfile
import os
import pstats
import statistics
import sys
import tempfile
import time

sys.path[:0] = [os.path.join(os.getcwd(), "tests", "resolver"), os.getcwd()]

import corenet  # noqa: E402
import resolver  # noqa: E402
from dnslab import Lab, bulk_names  # noqa: E402
from dnslab.cases import many_zone_names  # noqa: E402
from resolver.wire.codec import build_query, from_text, parse_response  # noqa: E402

ROUNDS = int(os.environ.get("ROUNDS", "7"))
MODE = os.environ.get("MODE", "engine")
KIND = os.environ.get("KIND", "edge")
PROF = os.environ.get("PROF")
ONLY = os.environ.get("ONLY")

BULK = [n for n, _ in bulk_names()][:201]
ZONES = [n for n, _ in many_zone_names()][:101]
QUERIES = {n: build_query(i, from_text(n), 1, rd=True, edns=False)
           for i, n in enumerate(BULK + ZONES)}


class FakeListener:
    def __init__(self) -> None:
        self.out: list[bytes] = []
        self.fut: asyncio.Future | None = None

    def send(self, out: bytes, addr) -> None:
        self.out.append(out)
        self.fut.set_result(None)


async def one_round(lab: Lab, res: dict, prof: cProfile.Profile | None = None) -> None:
    r = resolver.Resolver(lab.root_hints, port=lab.port)
    if MODE == "daemon":
        from resolver.daemon.config import Config
        from resolver.daemon.server import Server

        srv = Server(Config(), r)
        srv.loop = asyncio.get_running_loop()
        listener = FakeListener()

        async def ask(name: str) -> None:
            listener.fut = srv.loop.create_future()
            srv.udp_miss(QUERIES[name], ("127.0.0.1", 5555), listener)
            await listener.fut
            assert listener.out[-1][3] & 0x0F == 0
    else:
        async def ask(name: str) -> None:
            out = await r.resolve_message(QUERIES[name])
            assert out[3] & 0x0F == 0
    await ask(BULK[0])
    await ask(ZONES[0])
    for label, names in (("known", BULK[1:]), ("new", ZONES[1:])):
        if ONLY and label != ONLY:
            continue
        if prof:
            prof.enable()
        u0 = r.stats.upstream_queries
        c0 = time.process_time()
        for n in names:
            await ask(n)
        res.setdefault(label, []).append((time.process_time() - c0) / len(names))
        if prof:
            prof.disable()
        res.setdefault(label + "_uq", []).append((r.stats.upstream_queries - u0) / len(names))
    await r.close()


_recorded: dict = {}


def replay_refused() -> str | None:
    """Why REPLAY=1 cannot replay this MODE on this tree (None when it can)."""
    if MODE != "daemon":
        return None                             # resolve_message calls engine.udp_query
    try:
        import resolver.resolution as D
    except ImportError:                         # trees before the Drive: the engine's path
        return None
    if hasattr(D, "UDPQuery"):                  # the Drive looked it up as a Python name
        return None
    return ("REPLAY=1 cannot replay MODE=daemon on this tree: the daemon's misses run in "
            "resolver.resolution, which cimports UDPQuery and builds its upstream queries as C, "
            "so no Python name can be swapped for the recorded replies. Use MODE=engine with "
            "REPLAY=1, or MODE=daemon without it.")


def install_replay() -> None:
    """Replies recorded on first use, then handed back parsed, with the query still built."""
    import resolver.engine as E
    import resolver.upstream as U

    if not hasattr(E, "udp_query"):            # trees before coldpath2
        real = U.exchange

        async def fake(addr, port, qname, qtype, qclass, **kw):
            k = (addr, qname.lower(), qtype)
            if k not in _recorded:
                _recorded[k] = await real(addr, port, qname, qtype, qclass, **kw)
                return _recorded[k]
            w = _recorded[k][0]
            build_query(U._fresh_id(), qname, qtype, qclass, edns=True, do=True, payload=1232)
            kw["stats"].upstream_queries += 1
            return w, 0.0001, parse_response(w, 30, 1000)

        E.exchange = fake
        return
    real_q = U.udp_query

    class Done:
        def __init__(self, loop, w, p) -> None:
            self.fut = loop.create_future()
            self.fut.set_result((w, p))

        def close(self) -> None:
            pass

    def fake_q(loop, addr, port, qname, qtype, qclass, question, edns, do, timeout, stats,
               limits):
        k = (addr, qname.lower(), qtype)
        if k not in _recorded:
            q = real_q(loop, addr, port, qname, qtype, qclass, question, edns, do, timeout,
                       stats, limits)
            q.fut.add_done_callback(
                lambda f: f.exception() or _recorded.__setitem__(k, f.result()))
            return q
        w = _recorded[k][0]
        build_query(U._fresh_id(), qname, qtype, qclass, edns=True, do=True, payload=1232)
        stats.upstream_queries += 1
        return Done(loop, w, parse_response(w, 30, 1000))

    E.udp_query = fake_q
    try:
        import resolver.resolution as D
    except ImportError:                         # trees before the Drive
        return
    if not hasattr(D, "UDPQuery"):              # a C binding now: MODE=daemon is refused
        return
    real_udp = D.UDPQuery

    class FakeUDP:
        """The Drive's UDPQuery, replayed: ``on_done`` is called from the loop's next
        iteration, as a real reply would be (never from inside the constructor)."""

        def __init__(self, loop, addr, port, wire, qid, question, timeout, stats, limits,
                     on_done):
            k = (addr, question[:-4].lower(), int.from_bytes(question[-4:-2], "big"))
            w = _recorded[k][0]
            self.reply, self.parsed, self.error = w, parse_response(w, 30, 1000), None
            loop.call_soon(on_done, self)

        def close(self) -> None:
            pass

    def fake_udp(loop, addr, port, wire, qid, question, timeout, stats, limits, on_done):
        k = (addr, question[:-4].lower(), int.from_bytes(question[-4:-2], "big"))
        if k not in _recorded:
            def record(q):
                if q.error is None:
                    _recorded[k] = (q.reply, q.parsed)
                on_done(q)
            return real_udp(loop, addr, port, wire, qid, question, timeout, stats, limits,
                            record)
        return FakeUDP(loop, addr, port, wire, qid, question, timeout, stats, limits, on_done)

    D.UDPQuery = fake_udp


def main() -> None:
    if os.environ.get("REPLAY"):
        why = replay_refused()
        if why:
            sys.exit(why)
        install_replay()
    lab = Lab.start(tempfile.mkdtemp())
    try:
        loop = (asyncio.SelectorEventLoop() if KIND == "asyncio"
                else corenet.new_event_loop(trigger=KIND))
        loop.run_until_complete(one_round(lab, {}))         # imports, recording
        res: dict = {}
        if PROF:
            p = cProfile.Profile()
            loop.run_until_complete(one_round(lab, res, p))
            st = pstats.Stats(p)
            print("calls per miss:", st.total_calls / (200 if ONLY == "known" else
                                                         100 if ONLY else 300))
            st.sort_stats(PROF).print_stats(40)
            return
        for _ in range(ROUNDS):
            loop.run_until_complete(one_round(lab, res))
        for k in ("known", "new"):
            if k in res:
                v = res[k]
                print(f"{MODE}/{KIND} {k}: median {statistics.median(v) * 1e6:.1f} us/miss, "
                      f"min {min(v) * 1e6:.1f}, upstream queries/miss "
                      f"{statistics.mean(res[k + '_uq']):.2f}")
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
