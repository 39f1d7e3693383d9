"""Faults injected by dnslab.fake servers in the ``fault.`` TLD of the lab, on every loop
kind: each ends in the right answer from another server (or a later reply) or in a
SERVFAIL in bounded time, and the resolver's counters show the drops."""
from __future__ import annotations

import asyncio

import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.resolver
import dns.rrset
import pytest

from dnslab import zones as Z
from dnslab.authority import ZoneAuthority, referral, response
from dnslab.check import query
from dnslab.fake import Reply, serve
from dnslab.scenarios import (FAULTS, SPOOF_A, SPOOFS, WWW, WWW_A, always, fault_authority,
                              faulty_first, spoof_then_real)

AUTH = fault_authority()
BOTH = (Z.FAKE_TLD_1, Z.FAKE_TLD_2)
SERVFAIL_ERRORS = (dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout)


def a_data(ans) -> list[str]:
    return sorted(x.to_text() for x in ans.rrset)


def drops(r) -> int:
    s = r.stats
    return s.dropped_malformed + s.dropped_mismatched


@pytest.mark.parametrize("fault", list(FAULTS))
def test_one_faulty_reply_then_the_right_answer(run, fakes, lab_resolver, fault):
    """The first query (or two, for TC then TCP) meets the fault; the resolver recovers
    by asking again or asking the other server, and never returns spoofed data."""
    handler = faulty_first(fault, AUTH, n=2 if fault.startswith("tc") else 1)
    servers = [fakes(a, handler) for a in BOTH]

    async def go():
        import resolver

        if fault in SPOOFS:
            # The bad reply must reach the socket that asked, to be counted as a drop: a
            # loaded machine that stalls this loop past a short timeout would close that
            # socket first, so the first timeout is well above any stall.
            limits = resolver.Limits().replace(min_rto=0.5, initial_rto=1.0, max_rto=1.5)
        else:
            # a short first timeout: the fakes answer from this very loop, in well under 150 ms
            limits = resolver.Limits().replace(initial_rto=0.15)
        r = lab_resolver(limits=limits)
        ans = await r.resolve(WWW, "A")
        assert a_data(ans) == [WWW_A]
        return r

    r = run(go(), timeout=15)
    seen = sum(s.count() for s in servers)
    if fault != "oversized udp":  # that one carries the right answer: using it is fine
        assert seen >= (3 if fault.startswith("tc") else 2)
    if fault == "silence":
        assert r.stats.upstream_timeouts >= 1
    elif fault in SPOOFS and fault != "other address":  # the kernel drops that one for us
        assert drops(r) >= 1
    if fault.startswith("tc"):
        assert r.stats.upstream_tcp >= 1 and sum(s.count(transport="tcp") for s in servers) >= 1


@pytest.mark.parametrize("fault", SPOOFS)
def test_spoofed_reply_before_the_real_one_is_ignored(run, fakes, lab_resolver, fault):
    """A bad reply arrives first on the resolver's socket, the real one 20 ms later:
    only the real one may be taken (ID, question, case, address and parse checks)."""
    handler = spoof_then_real(fault, AUTH)
    for a in BOTH:
        fakes(a, handler)

    import resolver

    # The real reply comes 20 ms after the bad one. The shortest upstream timeout is raised
    # well above that, so a loaded CI machine that delays the fake authority cannot turn the
    # check below into a time-out.
    limits = resolver.Limits().replace(min_rto=0.5, initial_rto=1.0, max_rto=1.5)

    async def go():
        r = lab_resolver(limits=limits)
        for name in (WWW, "n001.fault.", "n002.fault."):
            ans = await r.resolve(name, "A")
            assert SPOOF_A not in a_data(ans)
        assert a_data(await r.resolve(WWW, "A")) == [WWW_A]
        return r

    r = run(go(), timeout=15)
    if fault != "other address":
        assert drops(r) >= 1
    assert r.stats.upstream_timeouts == 0  # the real reply was waited for, not timed out


@pytest.mark.parametrize("fault", ["silence", "garbage", "servfail", "refused",
                                   "lame (no AA, no referral)", "compression loop",
                                   "tc then tcp close mid-frame"])
def test_every_server_faulty_gives_servfail_in_bounded_time(run, fakes, lab_resolver, fault):
    import resolver

    servers = [fakes(a, always(fault, AUTH)) for a in BOTH]
    limits = resolver.Limits().replace(max_query_time=1.0)

    async def go():
        r = lab_resolver(limits=limits)
        resp = await r.resolve_message(query(WWW))
        assert resp.rcode() == dns.rcode.SERVFAIL
        with pytest.raises(SERVFAIL_ERRORS):
            await r.resolve("n003.fault.", "A")
        return r

    r = run(go(), timeout=limits.max_query_time * 2 + 5)
    assert 1 <= sum(s.count() for s in servers) <= 2 * limits.max_upstream_queries
    assert r.stats.servfail >= 2


def test_edns_formerr_server_is_asked_again_without_edns_and_remembered(run, fakes, lab_resolver):
    def handler(seen):
        if seen.edns:
            r = response(seen.message, rcode=dns.rcode.FORMERR, aa=False)
            r.use_edns(False)
            return r
        return AUTH(seen.message)

    srv = fakes(Z.FAKE_TLD_1, handler)  # ns2.fault. has nothing bound: port unreachable

    async def go():
        r = lab_resolver()
        assert a_data(await r.resolve(WWW, "A")) == [WWW_A]
        assert a_data(await r.resolve("n001.fault.", "A")) == ["192.0.2.2"]

    run(go())
    assert srv.count(qname=WWW) >= 2
    assert any(s.edns for s in srv.queries) and any(not s.edns for s in srv.queries)
    # the server's lack of EDNS is remembered: the next name goes without it at once
    assert [s.edns for s in srv.queries if s.qname == "n001.fault."] == [False]


def test_upstream_queries_use_edns_1232_with_do_and_fresh_ids_and_ports(run, fakes, lab_resolver):
    srv = fakes(Z.FAKE_TLD_1, serve(AUTH))

    async def go():
        r = lab_resolver()
        for i in range(20):
            await r.resolve(f"n{i:03d}.fault.", "A")

    run(go())
    qs = srv.queries
    assert len(qs) >= 20
    assert all(s.edns and s.message.payload == 1232 and s.do for s in qs)
    assert all(not s.message.flags & dns.flags.RD for s in qs)  # iterative queries
    assert len({s.message.id for s in qs}) >= len(qs) - 1  # random 16-bit IDs
    # A fresh socket per query, so a port the kernel picks at random each time: two of 20
    # may still be equal by chance (about 0.7% of runs with 28k ephemeral ports).
    assert len({s.peer[1] for s in qs}) >= len(qs) - 1


def _sub_zone(ns_addr: str) -> tuple[ZoneAuthority, ZoneAuthority]:
    parent = fault_authority(f"sub 300 IN NS ns.sub\nns.sub 300 IN A {ns_addr}\n")
    child = ZoneAuthority.from_text("sub.fault.", f"""
@ 300 IN SOA ns.sub.fault. h.sub.fault. 1 3600 600 86400 60
@ 300 IN NS ns
ns 300 IN A {ns_addr}
a.b.c 300 IN A 192.0.2.44
""")
    return parent, child


@pytest.mark.parametrize("minimise", [True, False])
def test_qname_minimisation(run, fakes, lab_resolver, minimise):
    parent, child = _sub_zone(Z.FAKE_MIXED)
    tld = [fakes(a, serve(parent)) for a in BOTH]
    sub = fakes(Z.FAKE_MIXED, serve(child))
    full = "a.b.c.sub.fault."

    async def go():
        r = lab_resolver(qname_minimisation=minimise)
        assert a_data(await r.resolve(full, "A")) == ["192.0.2.44"]

    run(go())
    tld_names = [q.lower() for s in tld for q in s.qnames]
    sub_names = [q.lower() for q in sub.qnames]
    assert sub_names[-1] == full
    if minimise:  # RFC 9156: one label more per step; the parent never sees the full name
        assert full not in tld_names and "sub.fault." in tld_names
        assert sub_names[0] == "c.sub.fault."
        assert sub_names.index("b.c.sub.fault.") < sub_names.index(full)
    else:
        assert full in tld_names and sub_names == [full]


def test_out_of_bailiwick_records_are_dropped(run, fakes, lab_resolver):
    def handler(seen):
        r = AUTH(seen.message)
        r.answer.append(dns.rrset.from_text("www.example.net.", 300, "IN", "A", SPOOF_A))
        r.authority.append(dns.rrset.from_text("example.com.", 300, "IN", "NS", "ns.evil.fault."))
        r.additional.append(dns.rrset.from_text("www.example.com.", 300, "IN", "A", SPOOF_A))
        r.additional.append(dns.rrset.from_text("ns1.example.com.", 300, "IN", "A", Z.FAKE_TLD_1))
        return r

    for a in BOTH:
        fakes(a, handler)

    async def go():
        r = lab_resolver()
        resp = await r.resolve_message(query(WWW))
        assert [x.to_text() for x in resp.answer[0]] == [WWW_A] and len(resp.answer) == 1
        assert SPOOF_A not in resp.to_text()
        assert a_data(await r.resolve("www.example.com.", "A")) == ["192.0.2.1", "192.0.2.11"]
        assert a_data(await r.resolve("www.example.net.", "A")) == ["198.51.100.1"]
        assert a_data(await r.resolve("mail.example.com.", "A")) == ["192.0.2.25"]

    run(go())


def test_glue_never_overrides_an_authoritative_answer(run, fakes, lab_resolver):
    """ns.sub.fault. is 127.0.0.31 by its own zone; a later referral from fault. carries
    glue claiming 127.0.0.32 for it. The resolver keeps the authoritative address."""
    _, child = _sub_zone(Z.FAKE_TLD_2)
    parent = fault_authority(
        f"sub 300 IN NS ns.sub\nns.sub 300 IN A {Z.FAKE_TLD_2}\n"
        f"sub2 300 IN NS ns.sub\n")
    poisoned_glue = {"n": 0}

    def tld(seen):
        r = parent(seen.message)
        if r.authority and r.authority[0].name.to_text() == "sub2.fault.":
            r.additional = [dns.rrset.from_text("ns.sub.fault.", 300, "IN", "A", Z.FAKE_MIXED)]
            poisoned_glue["n"] += 1
        return r

    fakes(Z.FAKE_TLD_1, tld)
    # ns2.fault. is also ns.sub.fault.: it serves both zones, and poisons like ns1
    fakes(Z.FAKE_TLD_2, lambda seen: child(seen.message)
          if seen.message.question[0].name.is_subdomain(child.origin) else tld(seen))
    poisoner = fakes(Z.FAKE_MIXED, lambda seen: response(
        seen.message, answer=[f"{seen.message.question[0].name} 300 IN A {SPOOF_A}"]))

    async def go():
        r = lab_resolver()
        assert a_data(await r.resolve("ns.sub.fault.", "A")) == [Z.FAKE_TLD_2]
        try:
            await r.resolve("x.sub2.fault.", "A")  # sub2 is served by nobody: any outcome
        except dns.exception.DNSException:
            pass
        assert a_data(await r.resolve("a.b.c.sub.fault.", "A")) == ["192.0.2.44"]
        assert a_data(await r.resolve("ns.sub.fault.", "A")) == [Z.FAKE_TLD_2]

    run(go(), timeout=15)
    assert poisoned_glue["n"] >= 1
    assert poisoner.count(qname="a.b.c.sub.fault.") == 0


@pytest.mark.parametrize("kind", ["upward", "sideways", "self"])
def test_referral_loops_end_in_servfail(run, fakes, lab_resolver, kind):
    parent = fault_authority(f"loop 300 IN NS ns.loop\nns.loop 300 IN A {Z.FAKE_MIXED}\n")
    for a in BOTH:
        fakes(a, serve(parent))

    def looper(seen):
        if kind == "upward":  # back to the parent zone
            return referral(seen.message, "fault.", [("ns1.fault.", Z.FAKE_TLD_1)])
        if kind == "sideways":  # to a zone that is not an ancestor of the name
            return referral(seen.message, "other.fault.", [("ns.loop.fault.", Z.FAKE_MIXED)])
        return referral(seen.message, "loop.fault.", [("ns.loop.fault.", Z.FAKE_MIXED)])

    loop_srv = fakes(Z.FAKE_MIXED, looper)

    async def go():
        r = lab_resolver()
        resp = await r.resolve_message(query("www.loop.fault."))
        assert resp.rcode() == dns.rcode.SERVFAIL
        return r

    r = run(go(), timeout=15)
    assert 1 <= loop_srv.count() <= r.limits.max_upstream_queries
    assert r.stats.upstream_queries <= r.limits.max_upstream_queries


def test_serve_stale_when_authorities_fail(run, fakes, lab_resolver):
    import resolver

    state = {"up": True}
    auth = fault_authority("stale 1 IN A 192.0.2.99\n")

    def handler(seen):
        return auth(seen.message) if state["up"] else None

    for a in BOTH:
        fakes(a, handler)
    limits = resolver.Limits().replace(max_query_time=1.0)

    async def go():
        r = lab_resolver(limits=limits)
        assert a_data(await r.resolve("stale.fault.", "A")) == ["192.0.2.99"]
        state["up"] = False
        await asyncio.sleep(1.3)  # the 1 s TTL runs out
        resp = await r.resolve_message(query("stale.fault."))
        assert resp.rcode() == dns.rcode.NOERROR
        assert [x.to_text() for x in resp.answer[0]] == ["192.0.2.99"]
        assert 0 < resp.answer[0].ttl <= limits.stale_answer_ttl
        assert r.stats.stale_answers >= 1

    run(go(), timeout=10)


def test_faster_server_is_preferred(run, fakes, lab_resolver):
    """Smoothed RTT: ns1.fault. answers 300 ms late, ns2.fault. at once. Each is first
    measured through a zone only it serves (one.fault., two.fault.); then names of
    fault., served by both, go to the fast one (but for rare exploration). The gap is
    wide so that a loaded machine, which can hold the fast reply back by tens of
    milliseconds, does not measure the fast server as the slower one."""
    parent = fault_authority("one 300 IN NS ns1\ntwo 300 IN NS ns2\n")
    kids = [ZoneAuthority.from_text(f"{z}.fault.", f"""
@ 300 IN SOA ns1.fault. h.fault. 1 3600 600 86400 60
@ 300 IN NS {ns}.fault.
x 300 IN A 192.0.2.{i}
""") for i, (z, ns) in enumerate((("one", "ns1"), ("two", "ns2")), 1)]
    on_slow, on_fast = serve(parent, kids[0]), serve(parent, kids[1])
    slow = fakes(Z.FAKE_TLD_1, lambda seen: Reply(on_slow(seen), delay=0.3))
    fast = fakes(Z.FAKE_TLD_2, on_fast)

    async def go():
        r = lab_resolver()
        assert a_data(await r.resolve("x.one.fault.", "A")) == ["192.0.2.1"]
        assert a_data(await r.resolve("x.two.fault.", "A")) == ["192.0.2.2"]
        for i in range(30):
            assert a_data(await r.resolve(f"n{i:03d}.fault.", "A")) == [f"192.0.2.{i + 1}"]

    run(go(), timeout=20)
    to_slow = sum(1 for q in slow.qnames if q.startswith("n0"))
    to_fast = sum(1 for q in fast.qnames if q.startswith("n0"))
    assert to_fast + to_slow >= 30 and to_slow <= 6, (to_fast, to_slow)


@pytest.mark.parametrize("fault", ["silence", "garbage"])
def test_zone_with_a_single_server_survives_one_lost_reply(run, fakes, lab_resolver, fault):
    """single.fault. has one server; its first reply is lost (or useless). A datagram lost
    once must not cost the client a SERVFAIL: the only server is asked again (Unbound
    retries a server several times before giving up on it)."""
    parent = fault_authority(f"single 300 IN NS ns.single\nns.single 300 IN A {Z.FAKE_MIXED}\n")
    child = ZoneAuthority.from_text("single.fault.", f"""
@ 300 IN SOA ns.single.fault. h.fault. 1 3600 600 86400 60
@ 300 IN NS ns
ns 300 IN A {Z.FAKE_MIXED}
www 300 IN A 192.0.2.55
""")
    for a in BOTH:
        fakes(a, serve(parent))
    only = fakes(Z.FAKE_MIXED, faulty_first(fault, child, n=1))

    async def go():
        r = lab_resolver()
        assert a_data(await r.resolve("www.single.fault.", "A")) == ["192.0.2.55"]

    run(go(), timeout=15)
    assert only.count() >= 2


@pytest.mark.parametrize("threshold", [0, 2])
def test_unwanted_replies_past_the_threshold_clear_the_caches(run, fakes, lab_resolver,
                                                             caplog, threshold):
    """Each query gets a reply with a wrong ID before the real one: an off-path forger's
    guess. With ``unwanted_reply_threshold`` 2, the second such reply clears the message
    and rrset caches (Unbound's defensive action and log line), so a name resolved before
    it is asked of the authorities again; with 0 (the default) nothing is cleared."""
    handler = spoof_then_real("wrong id", AUTH)
    for a in BOTH:
        fakes(a, handler)
    import resolver

    limits = resolver.Limits().replace(min_rto=0.5, initial_rto=1.0, max_rto=1.5,
                                       unwanted_reply_threshold=threshold)

    async def go():
        r = lab_resolver(limits=limits)
        assert a_data(await r.resolve(WWW, "A")) == [WWW_A]        # one unwanted reply
        held = len(r.cache.messages.lru)
        await r.resolve("n001.fault.", "A")                         # the second
        after = len(r.cache.messages.lru)
        misses = r.stats.cache_misses
        assert a_data(await r.resolve(WWW, "A")) == [WWW_A]
        return r, held, after, r.stats.cache_misses - misses

    with caplog.at_level("WARNING", logger="resolver.resolution"):
        r, held, after, again = run(go(), timeout=15)
    assert r.stats.dropped_mismatched >= 2
    warned = [m for m in caplog.messages if "unwanted reply total reached threshold" in m]
    if threshold:
        assert held > 0 and after <= 1 and again == 1                 # WWW was forgotten
        assert warned == ["unwanted reply total reached threshold (2) you may be under "
                          "attack. defensive action: clearing the cache"]
    else:
        assert after > held and again == 0 and warned == []
