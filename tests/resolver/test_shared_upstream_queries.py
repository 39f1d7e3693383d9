"""Identical upstream queries in flight leave once (``resolution._SharedQuery``), as
Unbound's serviced queries do: a flood of new names below one deep name, arriving at a
resolver with an empty cache, sends each QNAME-minimisation probe once, not once per
name. Scripted authorities (dnslab.fake) on the lab's port, on every loop kind."""
from __future__ import annotations

import asyncio

import dns.message
import dns.rcode
import pytest

import resolver
from dnslab import zones as Z
from dnslab.authority import ZoneAuthority
from dnslab.fake import Reply, serve

ROOT_ZONE = ZoneAuthority.from_text(".", f"""
. 86400 IN SOA a.root. host.root. 1 3600 600 86400 300
. 86400 IN NS a.root.
a.root. 86400 IN A {Z.FAKE_TLD_1}
deep. 86400 IN NS ns.deep.
ns.deep. 86400 IN A {Z.FAKE_TLD_2}
""")
DEEP_ZONE = ZoneAuthority.from_text("deep.", f"""
deep. 3600 IN SOA ns.deep. host.deep. 1 3600 600 86400 300
deep. 3600 IN NS ns.deep.
ns.deep. 3600 IN A {Z.FAKE_TLD_2}
a.b.c.d.deep. 300 IN A 192.0.2.62
""")
HINTS = [("a.root.", Z.FAKE_TLD_1)]
PROBES = ("d.deep.", "c.d.deep.", "b.c.d.deep.", "a.b.c.d.deep.")   # empty non-terminals, then data
# The fakes answer well within a second: no retransmission muddles the counts.
PATIENT = resolver.Limits().replace(initial_rto=1.0, min_rto=1.0, max_rto=2.0)


async def rcode_of(r, name: str) -> str:
    out = await r.resolve_message(dns.message.make_query(name, "A"))
    return dns.rcode.to_text(out.rcode())


def test_identical_queries_of_a_burst_of_misses_are_sent_once(run, fakes, lab_resolver):
    root = fakes(Z.FAKE_TLD_1, serve(ROOT_ZONE))
    deep = fakes(Z.FAKE_TLD_2, serve(DEEP_ZONE))
    names = [f"r{i}.a.b.c.d.deep." for i in range(20)]

    async def go():
        r = lab_resolver(root_hints=HINTS, limits=PATIENT)
        return r, await asyncio.gather(*(rcode_of(r, n) for n in names))

    r, rcodes = run(go(), timeout=15)
    assert rcodes == ["NXDOMAIN"] * len(names)
    assert root.count(qname="deep.") == 1
    assert [deep.count(qname=p) for p in PROBES] == [1] * len(PROBES)
    assert [deep.count(qname=n) for n in names] == [1] * len(names)
    # every query the authorities saw was counted as sent, and none was sent twice
    assert r.stats.upstream_timeouts == 0
    assert r.stats.upstream_queries == len(root.queries) + len(deep.queries)
    # each name needed "deep." of the root and the four probes: all but the first joined
    assert r.stats.upstream_joined == (len(names) - 1) * (1 + len(PROBES))


@pytest.mark.parametrize("cancelled", [0, 1])
def test_a_shared_query_goes_on_for_the_others_when_one_resolution_is_cancelled(
        run, fakes, lab_resolver, cancelled):
    """Two names share the slow probe of ``d.deep.``; one of them (the one that sent it, or
    the one that joined it) is cancelled meanwhile: the other still gets its answer from
    that same exchange, without asking again."""
    fakes(Z.FAKE_TLD_1, serve(ROOT_ZONE))
    answer = serve(DEEP_ZONE)

    def slow_probe(seen):
        out = answer(seen)
        return Reply(out, delay=0.3) if seen.qname == "d.deep." else out

    deep = fakes(Z.FAKE_TLD_2, slow_probe)

    async def go():
        r = lab_resolver(root_hints=HINTS, limits=PATIENT)
        tasks = [asyncio.ensure_future(rcode_of(r, f"r{i}.a.b.c.d.deep.")) for i in range(2)]
        for _ in range(200):                    # both waiting on the probe
            await asyncio.sleep(0.005)
            if deep.count(qname="d.deep."):
                break
        await asyncio.sleep(0.05)
        tasks[cancelled].cancel()
        return await tasks[1 - cancelled]

    assert run(go(), timeout=10) == "NXDOMAIN"
    assert deep.count(qname="d.deep.") == 1


def test_a_shared_query_that_times_out_is_one_timeout_for_the_server(run, fakes, lab_resolver):
    """The first ``d.deep.`` probe gets no answer: both resolutions waiting on it see the
    timeout and ask again (together, once more), but the server is charged one timeout,
    not one per waiter."""
    fakes(Z.FAKE_TLD_1, serve(ROOT_ZONE))
    answer = serve(DEEP_ZONE)
    seen_probe = []

    def lose_first_probe(seen):
        if seen.qname == "d.deep." and not seen_probe:
            seen_probe.append(seen)
            return None                          # silence
        return answer(seen)

    deep = fakes(Z.FAKE_TLD_2, lose_first_probe)

    async def go():
        r = lab_resolver(root_hints=HINTS, limits=PATIENT)
        names = [f"r{i}.a.b.c.d.deep." for i in range(2)]
        return r, await asyncio.gather(*(rcode_of(r, n) for n in names))

    r, rcodes = run(go(), timeout=10)
    assert rcodes == ["NXDOMAIN", "NXDOMAIN"]
    assert deep.count(qname="d.deep.") == 2
    assert r.stats.upstream_timeouts == 1
