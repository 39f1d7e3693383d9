"""The engine against the lab's real NSD hierarchy, through sockets, on every loop kind:
every case of dnslab.cases answered with the data the lab serves, through ``resolve``
(dnspython's exceptions) and ``resolve_message`` (full responses, Message and wire)."""
from __future__ import annotations

import asyncio
import time

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import pytest

from dnslab import CASES, bulk_names, many_zone_names
from dnslab import zones as Z
from dnslab.check import check_response, query

SERVFAIL_ERRORS = (dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_resolve_every_lab_case(run, lab_resolver, case):
    async def go():
        r = lab_resolver()
        if case.has_data:
            ans = await r.resolve(case.qname, case.rdtype)
            assert {x.to_text() for x in ans.rrset} == set(case.data)
            assert ans.canonical_name == dns.name.from_text(case.canonical_name)
            assert ans.rrset.name == ans.canonical_name
            assert ans.response.rcode() == dns.rcode.NOERROR
            assert time.time() < ans.expiration <= time.time() + Z.TTL
        elif case.rcode == "NXDOMAIN":
            with pytest.raises(dns.resolver.NXDOMAIN):
                await r.resolve(case.qname, case.rdtype)
        elif case.rcode == "NOERROR":
            with pytest.raises(dns.resolver.NoAnswer):
                await r.resolve(case.qname, case.rdtype)
        else:
            with pytest.raises(SERVFAIL_ERRORS):
                await r.resolve(case.qname, case.rdtype)
            assert r.stats.servfail >= 1

    run(go(), timeout=15)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_resolve_message_every_lab_case(run, lab_resolver, case):
    async def go():
        r = lab_resolver()
        q = query(case)
        resp = await r.resolve_message(q)
        assert isinstance(resp, dns.message.Message)
        check_response(case, resp, q)
        # the same question as wire bytes, with another ID and EDNS: wire back, same answer
        q2 = query(case, edns=True)
        q2.id = (q.id + 1) & 0xFFFF
        wire = await r.resolve_message(q2.to_wire())
        assert isinstance(wire, (bytes, bytearray))
        resp2 = dns.message.from_wire(wire)
        check_response(case, resp2, q2)
        assert resp2.edns == 0  # EDNS echoed to an EDNS client

    run(go(), timeout=15)


def test_question_case_echoed_and_cached_answers_still_correct(run, lab_resolver):
    async def go():
        r = lab_resolver()
        q = dns.message.make_query("WwW.ExAmPlE.CoM.", "A")
        resp = await r.resolve_message(q)
        assert resp.question[0].name.labels == q.question[0].name.labels
        q2 = dns.message.make_query("www.EXAMPLE.com.", "A")
        resp2 = dns.message.from_wire(await r.resolve_message(q2.to_wire()))
        assert resp2.id == q2.id and resp2.question[0].name.labels == q2.question[0].name.labels
        assert {x.to_text() for x in resp2.answer[0]} == {"192.0.2.1", "192.0.2.11"}

    run(go())


def test_upper_case_names_use_the_rrsets_cached_under_lower_case(run, lab_resolver):
    """The iterator's cache keys fold ASCII case: a name asked in capitals finds the
    delegation and the rrsets that a lower-case question stored."""
    async def go():
        r = lab_resolver()
        await r.resolve("www.example.com.", "A")
        u0 = r.stats.upstream_queries
        ans = await r.resolve("MAIL.EXAMPLE.COM.", "A")     # example.com's NS from the cache
        assert [x.to_text() for x in ans.rrset] == ["192.0.2.25"]
        assert r.stats.upstream_queries - u0 == 1
        u1 = r.stats.upstream_queries
        ans = await r.resolve("ALIAS.Example.Com.", "A")     # the CNAME's target is cached
        assert {x.to_text() for x in ans.rrset} == {"192.0.2.1", "192.0.2.11"}
        assert r.stats.upstream_queries - u1 == 1           # only the CNAME itself

    run(go())


def test_root_hints_from_a_file(run, lab, lab_resolver):
    async def go():
        r = lab_resolver(root_hints=str(lab.root_hints_file))
        ans = await r.resolve("www.example.net.", "A")
        assert [x.to_text() for x in ans.rrset] == ["198.51.100.1"]

    run(go())


def test_hundreds_of_names_cached_then_served_without_upstream_queries(run, lab_resolver):
    names = bulk_names()[:300]

    async def go():
        r = lab_resolver()
        for name, addr in names:
            ans = await r.resolve(name, "A")
            assert [x.to_text() for x in ans.rrset] == [addr]
        upstream = r.stats.upstream_queries
        hits = r.stats.cache_hits
        # the zone's delegation is learned once: a few hundred names cost ~ one query each
        assert len(names) <= upstream <= len(names) + 20
        for name, addr in names:
            ans = await r.resolve(name, "A")
            assert [x.to_text() for x in ans.rrset] == [addr]
        for name, addr in names[:50]:  # wire path too: ID patched, data unchanged
            q = query(name)
            resp = dns.message.from_wire(await r.resolve_message(q.to_wire()))
            assert resp.id == q.id and [x.to_text() for x in resp.answer[0]] == [addr]
            assert 0 < resp.answer[0].ttl <= Z.TTL
        assert r.stats.upstream_queries == upstream
        assert r.stats.cache_hits >= hits + len(names) + 50

    run(go(), timeout=30)


def test_names_in_many_zones_share_the_cached_tld_delegation(run, lab_resolver):
    async def go():
        r = lab_resolver()
        await r.resolve(many_zone_names()[0][0], "A")
        before = r.stats.upstream_queries
        for name, addr in many_zone_names()[1:41]:
            ans = await r.resolve(name, "A")
            assert [x.to_text() for x in ans.rrset] == [addr]
        # org. is known: each new zone costs a referral from org. plus its own answer
        # (plus QNAME-minimisation steps), never a new walk from the root
        per_zone = (r.stats.upstream_queries - before) / 40
        assert 2 <= per_zone <= 4, per_zone

    run(go(), timeout=30)


def test_identical_lookups_in_flight_share_one_resolution(run, lab_resolver):
    async def go():
        alone = lab_resolver()
        await alone.resolve("www.oobchain.org.", "A")
        r = lab_resolver()
        answers = await asyncio.gather(*(r.resolve("www.oobchain.org.", "A") for _ in range(20)))
        assert all([x.to_text() for x in a.rrset] == ["203.0.113.2"] for a in answers)
        assert r.stats.upstream_queries == alone.stats.upstream_queries
        assert r.stats.coalesced == 19

    run(go())


def test_negative_answers_are_cached_with_the_soa_ttl(run, lab_resolver):
    async def go():
        r = lab_resolver()
        for name, rdtype in (("nope.example.com.", "A"), ("v4only.example.com.", "AAAA")):
            first = await r.resolve_message(query(name, rdtype))
            before = r.stats.upstream_queries
            again = await r.resolve_message(query(name, rdtype))
            assert r.stats.upstream_queries == before  # served from the negative cache
            assert again.rcode() == first.rcode() and not again.answer
            soa = [rr for rr in again.authority if rr.rdtype == dns.rdatatype.SOA]
            assert soa and 0 < soa[0].ttl <= Z.NEG_TTL  # RFC 2308: min(SOA TTL, minimum)

    run(go())


def test_cyclic_delegation_fails_and_the_failure_is_cached(run, lab_resolver):
    async def go():
        r = lab_resolver()
        with pytest.raises(SERVFAIL_ERRORS):
            await r.resolve("www.cyc1.com.", "A")
        first = r.stats.upstream_queries
        assert first <= r.limits.max_upstream_queries
        resp = await r.resolve_message(query("www.cyc1.com."))
        assert resp.rcode() == dns.rcode.SERVFAIL
        # the cycle is remembered (for limits.failure_ttl): no new upstream work
        assert r.stats.upstream_queries == first
        with pytest.raises(SERVFAIL_ERRORS):
            await r.resolve("other.cyc1.com.", "A")
        # another name under the same broken delegation does not re-drive the cycle either
        assert r.stats.upstream_queries <= first + 2

    run(go())


def test_all_dead_servers_get_servfail_within_the_time_limit(run, lab_resolver):
    """Every server of alldead.com. is silent or unreachable: SERVFAIL within
    max_query_time (checked loosely: the run's own bound fails the test if it hangs)."""
    async def go():
        r = lab_resolver()
        t0 = time.monotonic()
        resp = await r.resolve_message(query("www.alldead.com."))
        elapsed = time.monotonic() - t0
        assert resp.rcode() == dns.rcode.SERVFAIL
        assert elapsed < r.limits.max_query_time + 2.0
        assert r.stats.upstream_timeouts >= 1

    run(go(), timeout=15)


def test_big_answer_comes_over_tcp_after_truncation(run, lab_resolver):
    async def go():
        r = lab_resolver()
        ans = await r.resolve("big.example.com.", "TXT")
        assert len(ans.rrset) == 40
        assert r.stats.upstream_tcp >= 1
        # the client asking over UDP without EDNS gets the whole answer from resolve_message;
        # truncating to the client's buffer is the daemon's job
        resp = await r.resolve_message(query("big.example.com.", "TXT"))
        assert len(resp.answer[0]) == 40

    run(go())


def test_silent_server_is_remembered(run, lab_resolver, fakes):
    """ns1.mixed.com. never answers, ns2.mixed.com. (NSD) does: after the first timeout
    the resolver stops asking ns1 (it explores it again only rarely)."""
    silent = fakes(Z.FAKE_MIXED, lambda seen: None)

    async def go():
        r = lab_resolver()
        for i in range(30):
            ans = await r.resolve(f"n{i:02d}.mixed.com.", "A")
            assert [x.to_text() for x in ans.rrset] == [f"192.0.2.{130 + i}"]
        return r

    r = run(go(), timeout=30)
    assert r.stats.upstream_timeouts == silent.count(transport="udp")
    assert silent.count() <= 5, silent.qnames  # without memory: about half of 30


def test_dead_server_address_first_then_good(run, lab_resolver):
    async def go():
        r = lab_resolver()
        for name, want in (("www.dead.com.", "192.0.2.100"), ("www.deadr.com.", "192.0.2.101"),
                           ("www.lame.com.", "192.0.2.110")):
            ans = await r.resolve(name, "A")
            assert [x.to_text() for x in ans.rrset] == [want]

    run(go(), timeout=15)
