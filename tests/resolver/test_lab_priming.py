"""Root priming (RFC 8109, as Unbound does) against the lab, on every loop kind: the hints
name a stale root server (a dnslab.fake serving the lab's root zone at a slot no NS record
names), priming replaces them with the root's own NS set and glue, a failed priming falls
back to the hints, concurrent queries share one priming exchange, and the primed set is
primed again once it expires."""
from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.name
import dns.rcode
import pytest

import resolver
from dnslab import zones as Z
from dnslab.authority import ZoneAuthority, response
from dnslab.fake import Silence, serve
from resolver import cache as C

ROOT_AUTH = ZoneAuthority.from_text(".", Z.root_zone())
STALE = Z.FAKE_TLD_1          # where the hints say a root server is; the root zone disagrees
HINTS = {
    "renamed": [("old-root.hints.test.", STALE)],       # a name the root no longer lists
    "renumbered": [("a.root-servers.net.", STALE)],      # a listed name at its old address
}
ROOT, NS = b"\x00", 2
# names in four TLDs, each answered only after a referral from the root
NAMES = {"mail.example.com.": ["192.0.2.25"], "www.example.net.": ["198.51.100.1"],
         "www.oob.org.": ["203.0.113.1"], "www.example.": ["192.0.2.200"]}
FAST = resolver.Limits().replace(initial_rto=0.15)   # the fakes answer in well under that


def priming_queries(srv) -> int:
    return srv.count(qname=".", qtype="NS")


def shifted_clock(r) -> list:
    """Makes ``r``'s clock settable: returns [offset], added to the real monotonic clock."""
    offset = [0.0]
    base = r.clock
    r.clock = lambda: base() + offset[0]
    return offset


async def addresses(r, name: str) -> list[str]:
    return sorted(x.to_text() for x in (await r.resolve(name, "A")).rrset)


def root_ns(r):
    return r.cache.rrsets.get(ROOT, NS, 1, r.clock())


@pytest.mark.parametrize("hints", list(HINTS))
def test_primed_root_servers_replace_the_hints(run, fakes, lab_resolver, hints):
    stale = fakes(STALE, serve(ROOT_AUTH))

    async def go():
        r = lab_resolver(root_hints=HINTS[hints])
        for name, addr in NAMES.items():
            assert await addresses(r, name) == addr
        return r

    r = run(go(), timeout=15)
    # The stale server was asked the priming question (iteratively), and nothing else:
    # every referral from the root came from the servers the root zone lists. (Once, but
    # a loaded machine may resend it: the primings are counted by the resolver.)
    assert set(stale.qnames) == {"."} and {q.qtype for q in stale.queries} == {"NS"}
    assert not any(q.message.flags & dns.flags.RD for q in stale.queries)
    assert (r.stats.primings, r.stats.priming_failures) == (1, 0)
    e = root_ns(r)
    assert sorted(e.rdatas) == sorted(dns.name.from_text(n).to_wire()
                                      for n in ("a.root-servers.net.", "b.root-servers.net."))
    glue = r.cache.rrsets.get(dns.name.from_text("a.root-servers.net.").to_wire(), 1, 1,
                              r.clock())
    assert glue is not None and glue.rank == C.GLUE


FAULTS = {   # replies to the priming question, none usable
    "silence": lambda m: Silence(),
    "servfail": lambda m: response(m, rcode=dns.rcode.SERVFAIL, aa=False),
    "nodata": lambda m: response(m, authority=[
        ". 300 IN SOA a.root-servers.net. hostmaster. 1 3600 600 86400 300"]),
    "no glue": lambda m: response(m, answer=[". 3600 IN NS a.root-servers.net."]),
    "other owner": lambda m: response(m, answer=["com. 3600 IN NS a.gtld-servers.net."],
                                      additional=[f"a.gtld-servers.net. 3600 IN A {Z.GTLD_A}"]),
}


@pytest.mark.parametrize("fault", list(FAULTS))
def test_failed_priming_falls_back_to_the_hints(run, fakes, lab_resolver, fault):
    """The hint server answers referrals but not the priming question usably: the query is
    resolved through the hints, the failure is counted and priming is not tried again until
    ``failure_ttl`` has passed."""
    def handler(seen):
        if seen.qname == "." and seen.qtype == "NS":
            return FAULTS[fault](seen.message)
        return ROOT_AUTH(seen.message)

    stale = fakes(STALE, handler)

    async def go():
        r = lab_resolver(root_hints=HINTS["renumbered"], limits=FAST)
        offset = shifted_clock(r)
        assert await addresses(r, "mail.example.com.") == NAMES["mail.example.com."]
        assert (r.stats.primings, r.stats.priming_failures) == (0, 1)
        tries = priming_queries(stale)
        assert 1 <= tries <= 2                  # bounded: it delays the query it is in
        assert root_ns(r) is None               # nothing of the failed reply became the root
        assert await addresses(r, "www.example.net.") == NAMES["www.example.net."]
        assert stale.count(qname="net.") >= 1   # the root referral came from the hint
        assert priming_queries(stale) == tries and r.stats.priming_failures == 1
        offset[0] += r.limits.failure_ttl + 1
        assert await addresses(r, "www.oob.org.") == NAMES["www.oob.org."]
        assert priming_queries(stale) > tries and r.stats.priming_failures == 2

    run(go(), timeout=20)


def _daemon_miss(r, name: str, loop) -> asyncio.Future:
    """A client query through the daemon's callback path (``start_miss``, a Drive)."""
    fut = loop.create_future()
    out = r.start_miss(dns.message.make_query(name, "A").to_wire(),
                       lambda drive, wire: fut.done() or fut.set_result(wire), loop)
    if type(out) is bytes:
        fut.set_result(out)
    return fut


@pytest.mark.parametrize("path", ["resolve", "daemon"])
def test_concurrent_queries_at_start_share_one_priming(run, fakes, lab_resolver, loop, path):
    stale = fakes(STALE, serve(ROOT_AUTH))
    names = list(NAMES) + [f"www.z{i:03d}.org." for i in range(8)]

    async def go():
        r = lab_resolver(root_hints=HINTS["renamed"])
        if path == "resolve":
            got = await asyncio.gather(*(r.resolve(n, "A") for n in names))
            assert all(a.rrset for a in got)
        else:
            got = await asyncio.gather(*(_daemon_miss(r, n, loop) for n in names))
            assert all(dns.message.from_wire(w).answer for w in got)
        assert (r.stats.primings, r.stats.priming_failures) == (1, 0)
        assert priming_queries(stale) < len(names)  # one priming (a resend aside), not one each
        # Queries started while it was in flight went to the hint; later ones do not.
        asked = stale.count()
        assert await addresses(r, "h001.bulk.net.") == ["10.1.0.1"]
        assert await addresses(r, "www.example.") == NAMES["www.example."]
        assert stale.count() == asked

    run(go(), timeout=20)


def test_root_is_primed_again_when_its_ns_set_expires(run, fakes, lab_resolver):
    """The primed set lives as long as its TTL, bounded by the cache's ``max_ttl``."""
    stale = fakes(STALE, serve(ROOT_AUTH))

    async def go():
        r = lab_resolver(root_hints=HINTS["renamed"],
                         limits=resolver.Limits().replace(max_ttl=60))
        offset = shifted_clock(r)
        assert await addresses(r, "mail.example.com.") == NAMES["mail.example.com."]
        assert 0 < root_ns(r).expires - r.clock() <= 60      # the lab's 3600 s, clamped
        # Counted as primings, not as queries at the server: a loaded machine may resend.
        first = priming_queries(stale)
        offset[0] += 30
        assert await addresses(r, "www.example.net.") == NAMES["www.example.net."]
        assert priming_queries(stale) == first and r.stats.primings == 1
        offset[0] += 31                                      # past the primed set's TTL
        assert await addresses(r, "www.oob.org.") == NAMES["www.oob.org."]
        assert priming_queries(stale) > first and r.stats.primings == 2
        assert set(stale.qnames) == {"."}                    # only ever asked to prime

    run(go(), timeout=15)


def test_priming_keeps_validation(run, validating):
    """The primed root NS set is cached at an answer's rank, not as validated, and is
    validated like any other rrset when asked for."""
    async def go():
        r = validating()
        q = dns.message.make_query("www.example.com.", "A", want_dnssec=True)
        resp = await r.resolve_message(q)
        assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD
        assert r.stats.primings == 1
        e = root_ns(r)
        assert e.rank == C.AUTH_ANSWER and e.rrsigs      # kept with its signatures
        resp = await r.resolve_message(dns.message.make_query(".", "NS", want_dnssec=True))
        assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD
        assert root_ns(r).rank == C.VALIDATED

    run(go(), timeout=15)
