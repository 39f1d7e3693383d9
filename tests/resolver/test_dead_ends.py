"""Dead ends: a random name under a zone whose every server fails it. The answer is SERVFAIL,
each server is asked once per name when its failure is definite (no waiting on a timeout
and no retry of the same question), and a server that only stays silent is learnt: after a
few names its zone fails without a packet to it. Counted at the fake authorities of the
lab's ``fault.`` TLD; no assertion depends on elapsed time.

Side by side with Unbound 1.17 on the same shapes (the lab on port 53), Unbound sends 12 to
60 queries per name to servers that answer REFUSED, SERVFAIL or FORMERR, where corenet sends
one per server (two to a FORMERR one, with and without EDNS, for the first name only)."""
from __future__ import annotations

import random
import string

import dns.message
import dns.rcode
import pytest

from dnslab import zones as Z
from dnslab.authority import referral, response
from dnslab.fake import Silence
from dnslab.scenarios import always, fault_authority

BOTH = (Z.FAKE_TLD_1, Z.FAKE_TLD_2)
AUTH = fault_authority()


def _answering(make):
    return lambda seen: None if seen.message is None else make(seen)


# Fake-server handlers: what a server of the zone answers every query with.
DEFINITE = {
    **{fault: always(fault, AUTH) for fault in ("refused", "servfail",
                                                "lame (no AA, no referral)")},
    "formerr": _answering(lambda s: response(s.message, rcode=dns.rcode.FORMERR, aa=False)),
    "upward referral": _answering(
        lambda s: referral(s.message, ".", [("a.root-servers.net.", Z.ROOT_A)])),
}


def garbage() -> str:
    return "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(6))


@pytest.mark.parametrize("shape", list(DEFINITE))
def test_every_server_failing_definitely_is_asked_once_per_name(run, fakes, lab_resolver,
                                                                shape):
    servers = [fakes(a, DEFINITE[shape]) for a in BOTH]
    import resolver

    # Every timeout far above any stall of a loaded machine, the lab's NSD answering included
    # (once a server's RTT is known its timeout would otherwise fall to min_rto): none may be
    # waited for.
    limits = resolver.Limits().replace(initial_rto=2.0, min_rto=2.0, max_rto=3.0)

    async def go():
        r = lab_resolver(limits=limits)
        per_name = []
        for _ in range(3):
            before = sum(s.count() for s in servers)
            m = await r.resolve_message(dns.message.make_query(f"{garbage()}.fault.", "A"))
            assert m.rcode() == dns.rcode.SERVFAIL
            per_name.append(sum(s.count() for s in servers) - before)
        return r, per_name

    r, per_name = run(go(), timeout=20)
    assert r.stats.upstream_timeouts == 0
    # The first name may ask each server twice: FORMERR to a query with EDNS is asked once
    # more without it (and the server remembered as one without EDNS); never a server twice
    # for one question in one form.
    assert per_name[0] <= 2 * len(BOTH), per_name
    assert all(n <= len(BOTH) for n in per_name[1:]), per_name
    for s in servers:
        asked = [(q.qname.lower(), q.qtype, q.edns) for q in s.queries if q.qname]
        assert len(asked) == len(set(asked)), asked


def test_a_silent_server_beside_a_refusing_one_is_learnt_within_a_few_names(
        run, fakes, lab_resolver):
    refusing = fakes(Z.FAKE_TLD_1, DEFINITE["refused"])
    silent = fakes(Z.FAKE_TLD_2, lambda seen: Silence())
    import resolver

    # No probe falls due while the test runs, however slow the machine.
    limits = resolver.Limits().replace(initial_rto=0.05, min_rto=0.05, max_rto=0.2,
                                       exploration=0.0, server_probe_interval=3600.0)

    async def go():
        r = lab_resolver(limits=limits)
        to_silent = []
        for _ in range(5):
            before = silent.count()
            m = await r.resolve_message(dns.message.make_query(f"{garbage()}.fault.", "A"))
            assert m.rcode() == dns.rcode.SERVFAIL
            to_silent.append(silent.count() - before)
        return r, to_silent

    r, to_silent = run(go(), timeout=20)
    # Its timeouts back off to max_rto and mark it down (server_down_timeouts): then the
    # names of its zone fail without a packet to it until a probe is due.
    assert sum(to_silent) == limits.server_down_timeouts, to_silent
    assert to_silent[-2:] == [0, 0], to_silent
    assert r.cache.infra.is_down(Z.FAKE_TLD_2, r.clock())
    assert refusing.count() >= 5


@pytest.fixture(scope="module")
def lab53(tmp_path_factory):
    """The lab on port 53, where Unbound asks its authorities."""
    from dnslab.unbound import lab_on_port_53

    lab = lab_on_port_53(tmp_path_factory.mktemp("dead-ends") / "lab")
    try:
        yield lab
    finally:
        lab.stop()


# Unbound takes a reply without AA that has no answer and no referral for NODATA (NOERROR);
# corenet holds such a server lame for the zone, as BIND does: no dead end to compare there.
@pytest.mark.parametrize("shape", [s for s in DEFINITE if s != "lame (no AA, no referral)"])
def test_no_more_queries_than_unbound_for_a_dead_end(run, loop, lab53, tmp_path, shape):
    """Each resolver fresh, two garbage names under ``fault.`` whose servers both fail
    definitely: both answer SERVFAIL, and corenet sends no more queries to them than
    Unbound does (for REFUSED and SERVFAIL 30 and 12 for the two names, for FORMERR 60 and
    24; corenet 2 and 2, 4 and 2), one per server and name at most past the first."""
    import dns.asyncquery

    import resolver
    from dnslab.fake import FakeServer
    from dnslab.unbound import Unbound

    servers = [run(FakeServer.start(a, lab53.port, DEFINITE[shape])) for a in BOTH]
    names = [f"{garbage()}.fault." for _ in range(2)]

    async def counted(ask) -> list[int]:
        out = []
        for name in names:
            before = sum(s.count() for s in servers)
            m = await ask(dns.message.make_query(name, "A"))
            assert m.rcode() == dns.rcode.SERVFAIL, (name, m)
            out.append(sum(s.count() for s in servers) - before)
        return out

    async def ours() -> list[int]:
        r = resolver.Resolver(root_hints=lab53.root_hints, port=lab53.port,
                              do_not_query_localhost=False)
        try:
            return await counted(r.resolve_message)
        finally:
            await r.close()

    try:
        ub = Unbound.start(tmp_path / "unbound", lab53)
        try:
            theirs = run(counted(lambda q: dns.asyncquery.udp(q, ub.address, port=ub.port,
                                                              timeout=10)), timeout=30)
        finally:
            ub.stop()
        mine = run(ours(), timeout=30)
    finally:
        for s in servers:
            run(s.close())
    assert mine[0] <= 2 * len(BOTH) and mine[1] <= len(BOTH), (mine, theirs)
    if shape != "upward referral":
        assert all(m <= t for m, t in zip(mine, theirs)), (mine, theirs)
    # Unbound leaves a server that referred upwards out of the zone's selection altogether
    # for infra-lame-ttl, so the second name sends it nothing. corenet asks servers marked
    # lame for the zone once each when no other server is left (a mark never becomes a
    # SERVFAIL without a packet: it is also what a server that answered REFUSED once or
    # sent data found bogus gets): one query per server and name, answered at once.
