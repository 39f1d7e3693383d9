"""Deterministic scenarios for the sans-IO iterator: a fake network and a fake clock, no sockets
(in the manner of Unbound's replay tests)."""
from __future__ import annotations

import logging

import dns.message
import dns.rcode
import dns.rrset

from resolver import cache as C
from resolver import iterator as itr
from resolver.state import Stats
from resolver.cache import Cache
from resolver.hints import parse_root_hints
from resolver.iterator import Iterator
from resolver.limits import Limits
from resolver.wire.codec import to_text
from scenario import FakeClock, FakeNet, W, drive, root_hints, small_internet

NO_EXPLORE = Limits(exploration=0.0)


class World:
    def __init__(self, net: FakeNet | None = None, limits: Limits = NO_EXPLORE, **kw) -> None:
        self.net = net or small_internet()
        self.clock = FakeClock()
        self.limits = limits
        self.cache = Cache(1 << 22, limits)
        self.hints = parse_root_hints(root_hints())
        self.kw = kw

    def resolve(self, name: str, rdtype: int = 1, **kw) -> itr.Result:
        it = Iterator(W(name), rdtype, 1, self.cache, self.hints, self.clock,
                      limits=self.limits, **{**self.kw, **kw})
        return drive(it, self.net, self.clock)

    def asked(self) -> list[tuple[str, str]]:
        out = self.net.queries()
        self.net.log.clear()
        return out


def names(records) -> list[tuple[str, int]]:
    return [(to_text(r[0]).lower(), r[1]) for r in records]


def test_referrals_with_glue_and_qname_minimisation():
    w = World()
    res = w.resolve("www.example.com.")
    assert res.rcode == 0 and res.answer[0][4] == bytes([192, 0, 2, 1])
    # RFC 9156: each zone is asked only for one more label, with type A.
    assert w.asked() == [("com.", "A"), ("example.com.", "A"), ("www.example.com.", "A")]


def test_without_minimisation_the_full_name_goes_everywhere():
    w = World(minimise=False)
    assert w.resolve("www.example.com.", 28).rcode == 0
    assert w.asked() == [("www.example.com.", "AAAA")] * 3


def test_cache_is_used_for_answers_and_closest_delegation():
    w = World()
    w.resolve("www.example.com.")
    w.asked()
    assert w.resolve("www.example.com.").answer
    assert w.asked() == []
    w.resolve("mail.example.com.", 15)
    assert w.asked() == [("mail.example.com.", "MX")]    # straight to example.com's servers


def test_cname_inside_zone_and_across_zones():
    w = World()
    res = w.resolve("alias.example.com.")
    assert names(res.answer) == [("alias.example.com.", 5), ("www.example.com.", 1)]
    res = w.resolve("far.example.com.")
    assert names(res.answer) == [("far.example.com.", 5), ("host.other.net.", 1)]
    assert ("host.other.net.", "A") in w.asked()


def test_dname_is_followed_with_a_synthesized_cname():
    w = World()
    res = w.resolve("x.sub.example.com.")
    assert names(res.answer)[:2] == [("sub.example.com.", 39), ("x.sub.example.com.", 5)]
    assert res.rcode == dns.rcode.NXDOMAIN      # x.other.net does not exist
    res = w.resolve("www.sub.example.com.")
    assert res.rcode == 0 and names(res.answer)[-1] == ("www.other.net.", 1)


def test_nxdomain_and_nodata_are_cached_negatively_with_soa():
    w = World()
    res = w.resolve("nope.example.com.")
    assert res.rcode == dns.rcode.NXDOMAIN and names(res.authority) == [("example.com.", 6)]
    assert res.authority[0][3] == 300       # min(SOA TTL 3600, MINIMUM 300)
    w.asked()
    w.clock.advance(10)
    again = w.resolve("nope.example.com.", 28)   # NXDOMAIN covers every type
    assert again.rcode == dns.rcode.NXDOMAIN and again.authority[0][3] == 290
    assert w.asked() == []
    res = w.resolve("txt.example.com.", 1)
    assert res.rcode == 0 and res.answer == [] and res.authority
    assert w.resolve("txt.example.com.", 16).answer      # the TXT itself exists


def test_wildcard_and_empty_non_terminal():
    w = World()
    res = w.resolve("a.b.wild.example.com.")
    assert res.rcode == 0 and res.answer[0][4] == bytes([192, 0, 2, 99])
    assert to_text(res.answer[0][0]) == "a.b.wild.example.com."
    res = w.resolve("nonterminal.example.com.")
    assert res.rcode == 0 and res.answer == []       # exists (has a child), no data


def test_out_of_bailiwick_ns_names_are_resolved_as_sub_queries():
    w = World()
    res = w.resolve("www.glueless.com.")
    assert res.rcode == 0 and res.answer[0][4] == bytes([203, 0, 113, 5])
    asked = w.asked()
    assert ("ns.other.net.", "A") in asked
    assert asked[-1] == ("www.glueless.com.", "A")


def test_dead_server_times_out_then_another_answers_and_it_is_remembered():
    w = World()
    w.net.faults["10.0.3.1"] = "timeout"
    w.net.faults["10.0.1.1"] = "timeout"
    res = w.resolve("www.example.com.")
    assert res.rcode == 0
    assert w.net.queries("10.0.3.2")
    w.asked()
    # The first timeout raised its RTO; after a second one it is held down and not asked.
    w.resolve("txt.example.com.", 16)
    w.resolve("mail.example.com.", 15)
    w.net.log.clear()
    w.resolve("www.example.com.", 28)
    assert w.net.queries("10.0.3.1") == []


def test_lame_and_failing_servers_are_skipped():
    for fault in ("lame", "servfail", "refused", "garbage"):
        w = World()
        w.net.faults["10.0.3.1"] = fault
        w.net.faults["10.0.0.1"] = fault
        res = w.resolve("www.example.com.")
        assert res.rcode == 0, fault
        assert res.answer[0][4] == bytes([192, 0, 2, 1])
        lame = w.cache.infra.is_lame("10.0.3.1", W("example.com."), w.clock())
        assert lame == (fault in ("lame", "refused")), (fault, w.net.log)


def test_garbage_is_counted_as_dropped():
    class Stats:
        dropped_malformed = 0
    w = World(stats=Stats())
    w.net.faults["10.0.0.1"] = "garbage"
    w.resolve("www.example.com.")
    assert w.kw["stats"].dropped_malformed == 1


def test_a_servfail_is_logged_at_query_level_only(caplog):
    """A line per failing question is query-level detail (Unbound's verbosity 3, DEBUG):
    at INFO, where a server runs, a flood of failing names writes nothing."""
    w = World()
    for a in ("10.0.3.1", "10.0.3.2"):
        w.net.faults[a] = "timeout"
    with caplog.at_level(logging.INFO, logger="resolver.iterator"):
        assert w.resolve("www.example.com.").rcode == dns.rcode.SERVFAIL
        assert w.resolve("mail.example.com.").rcode == dns.rcode.SERVFAIL
    assert [r for r in caplog.records if r.name == "resolver.iterator"] == []
    with caplog.at_level(logging.DEBUG, logger="resolver.iterator"):
        assert w.resolve("ftp.example.com.").rcode == dns.rcode.SERVFAIL
    lines = [r.getMessage() for r in caplog.records if r.name == "resolver.iterator"]
    assert len(lines) == 1 and lines[0].startswith("SERVFAIL ftp.example.com./1: ")


def test_all_servers_dead_gives_servfail_within_bounds():
    w = World()
    for a in ("10.0.3.1", "10.0.3.2"):
        w.net.faults[a] = "timeout"
    t0 = w.clock()
    res = w.resolve("www.example.com.")
    assert res.rcode == dns.rcode.SERVFAIL and "example.com" in res.reason
    assert w.clock() - t0 <= w.limits.max_query_time + 1
    # Remembered as a failure for a short while: no new queries.
    w.asked()
    assert w.resolve("www.example.com.").rcode == dns.rcode.SERVFAIL
    assert w.asked() == []


def test_time_limit_ends_a_query_whose_servers_are_slow():
    net = small_internet()
    w = World(net, limits=Limits(exploration=0.0, max_query_time=1.0))
    for a in ("10.0.0.1", "10.0.0.2"):
        net.faults[a] = "timeout"
    res = w.resolve("www.example.com.")
    assert res.rcode == dns.rcode.SERVFAIL


def cyclic_net() -> FakeNet:
    net = small_internet()
    net.zone("com.", """
@ 86400 NS a.gtld.com.
a.gtld 86400 A 10.0.1.1
loopa 86400 NS ns.loopb.com.
loopb 86400 NS ns.loopa.com.
""", ["10.0.1.1", "10.0.1.2"])
    return net


def test_cyclic_delegation_terminates_and_is_cached_as_failure():
    w = World(cyclic_net())
    res = w.resolve("www.loopa.com.")
    assert res.rcode == dns.rcode.SERVFAIL
    n = len(w.asked())
    assert n < 20
    assert w.resolve("www.loopa.com.").rcode == dns.rcode.SERVFAIL
    assert w.asked() == []


def test_cname_chain_limit_and_cname_loop():
    body = "\n".join(f"c{i} 300 CNAME c{i + 1}" for i in range(15)) + "\nc15 300 A 192.0.2.7\n"
    body += "loop1 300 CNAME loop2\nloop2 300 CNAME loop1\n"
    net = small_internet()
    net.zone("chain.com.", body, ["10.0.5.1"])
    net.zone("com.", """
@ 86400 NS a.gtld.com.
a.gtld 86400 A 10.0.1.1
chain 86400 NS ns.chain.com.
ns.chain 86400 A 10.0.5.1
""", ["10.0.1.1", "10.0.1.2"])
    w = World(net)
    assert w.resolve("c10.chain.com.").rcode == 0            # 5 links: fine
    res = w.resolve("c0.chain.com.")                         # 15 links: too many
    assert res.rcode == dns.rcode.SERVFAIL and "chain" in res.reason
    assert w.resolve("loop1.chain.com.").rcode == dns.rcode.SERVFAIL


def test_out_of_bailiwick_records_are_not_cached():
    net = small_internet()

    def poison(q: dns.message.Message):
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        name = q.question[0].name
        if name.to_text() == "www.example.com.":
            r.answer.append(dns.rrset.from_text(name, 300, "IN", "A", "192.0.2.1"))
            r.answer.append(dns.rrset.from_text("www.other.net.", 300, "IN", "A", "6.6.6.6"))
            r.additional.append(dns.rrset.from_text("ns.other.net.", 300, "IN", "A", "6.6.6.6"))
        else:
            r.authority.append(dns.rrset.from_text("example.com.", 300, "IN", "SOA",
                                                   "ns. h. 1 2 3 4 5"))
        return r.to_wire()

    import dns.flags
    for a in ("10.0.3.1", "10.0.3.2"):
        net.faults[a] = poison
    w = World(net)
    assert w.resolve("www.example.com.").rcode == 0
    now = w.clock()
    assert w.cache.rrsets.get(W("www.other.net."), 1, 1, now) is None
    assert w.cache.rrsets.get(W("ns.other.net."), 1, 1, now) is None
    res = w.resolve("www.other.net.")
    assert res.answer[0][4] == bytes([198, 51, 100, 8])


def test_glue_does_not_override_authoritative_address():
    w = World()
    w.resolve("ns1.example.com.")               # authoritative answer from example.com
    e = w.cache.rrsets.get(W("ns1.example.com."), 1, 1, w.clock())
    assert e.rank == C.AUTH_ANSWER
    w.cache.rrsets.store_records([(W("ns1.example.com."), 1, 1, 300, b"\x06\x06\x06\x06")],
                                 C.GLUE, w.clock())
    assert w.cache.rrsets.get(W("ns1.example.com."), 1, 1, w.clock()).rdatas == (bytes([10, 0, 3, 1]),)


def test_ns_names_resolved_per_delegation_are_limited():
    net = small_internet()
    many = "\n".join(f"victim 86400 NS ns{i}.nowhere.net." for i in range(30))
    net.zone("com.", "@ 86400 NS a.gtld.com.\na.gtld 86400 A 10.0.1.1\n" + many,
             ["10.0.1.1", "10.0.1.2"])
    w = World(net, limits=Limits(exploration=0.0, max_ns_names_per_delegation=3,
                                 max_upstream_queries=200))
    res = w.resolve("www.victim.com.")
    assert res.rcode == dns.rcode.SERVFAIL
    looked_up = {q for q, t in w.asked() if q.endswith(".nowhere.net.")}
    assert 1 <= len(looked_up) <= 3


def test_upstream_query_budget_is_enforced():
    w = World(limits=Limits(exploration=0.0, max_upstream_queries=2))
    res = w.resolve("www.example.com.")
    assert res.rcode == dns.rcode.SERVFAIL and "upstream query limit" in res.reason
    assert len(w.asked()) == 2


def test_referral_loop_sideways_is_treated_as_lame():
    net = small_internet()

    def sideways(q):
        r = dns.message.make_response(q)
        r.authority.append(dns.rrset.from_text("net.", 300, "IN", "NS", "ns.net."))
        return r.to_wire()

    for a in ("10.0.3.1", "10.0.3.2"):
        net.faults[a] = sideways
    w = World(net)
    res = w.resolve("www.example.com.")
    assert res.rcode == dns.rcode.SERVFAIL
    assert len(w.asked()) < 10


def test_validator_sits_between_replies_and_cache():
    seen = []

    def validator(m, zone, server, iterator):
        seen.append(to_text(zone))
        if to_text(zone) == "example.com.":
            raise itr.Bogus("bad signature")
        return m

    w = World(validator=validator)
    res = w.resolve("www.example.com.")
    assert res.rcode == dns.rcode.SERVFAIL and "bogus" in res.reason
    assert seen[:3] == [".", "com.", "example.com."]
    assert w.cache.rrsets.get(W("www.example.com."), 1, 1, w.clock()) is None


def test_validator_can_fetch_keys_through_the_iterator_and_mark_data_secure():
    fetched = []

    def validator(m, zone, server, iterator):
        if to_text(zone) == "example.com." and m.answer and m.qtype == 1:
            # e.g. the zone's DNSKEY: here the NS set, fetched inside the same state machine
            res = yield from iterator.lookup(zone, 2)
            fetched.append(res.rcode)
            m.security = itr.SECURE
        return m

    w = World(validator=validator)
    res = w.resolve("www.example.com.")
    assert res.rcode == 0 and fetched == [0]
    assert ("example.com.", "NS") in w.asked()
    e = w.cache.rrsets.get(W("www.example.com."), 1, 1, w.clock())
    assert e.rank == C.VALIDATED


def test_rrsigs_are_kept_with_their_rrsets():
    net = small_internet()
    net.zone("signed.com.", """
@ 3600 NS ns.signed.com.
ns 3600 A 10.0.6.1
www 300 A 192.0.2.8
www 300 RRSIG A 13 3 300 20300101000000 20200101000000 12345 signed.com. AAAA
""", ["10.0.6.1"])
    net.zone("com.", """
@ 86400 NS a.gtld.com.
a.gtld 86400 A 10.0.1.1
signed 86400 NS ns.signed.com.
ns.signed 86400 A 10.0.6.1
""", ["10.0.1.1", "10.0.1.2"])
    w = World(net)
    res = w.resolve("www.signed.com.")
    assert [r[1] for r in res.answer] == [1, 46]
    e = w.cache.rrsets.get(W("www.signed.com."), 1, 1, w.clock())
    assert len(e.rrsigs) == 1
    cached = w.resolve("www.signed.com.")
    assert [r[1] for r in cached.answer] == [1, 46]


def test_ds_queries_go_to_the_parent():
    w = World(minimise=False)
    w.resolve("www.example.com.")
    w.net.log.clear()
    res = w.resolve("example.com.", 43)
    assert res.rcode == 0 and names(res.authority) == [("com.", 6)]
    servers = [a for a, q, t in w.net.log]
    assert servers and all(a.startswith("10.0.1.") for a in servers)


def test_a_lone_server_is_asked_again_after_a_lost_reply_but_not_forever():
    net = small_internet()
    lost = {"n": 0}

    def lose_first(q):
        lost["n"] += 1
        if lost["n"] == 1:
            return None
        net.faults.pop("10.0.4.1")
        return net.answer("10.0.4.1", q.to_wire())

    net.faults["10.0.4.1"] = lose_first
    w = World(net)
    res = w.resolve("www.other.net.")
    assert res.rcode == 0 and lost["n"] == 2
    net.faults["10.0.4.1"] = "timeout"
    w.cache.flush()
    res = w.resolve("host.other.net.")
    assert res.rcode == dns.rcode.SERVFAIL
    tries = [q for a, q, t in w.net.log if a == "10.0.4.1" and q == "host.other.net."]
    assert len(tries) == w.limits.max_tries_per_server


def test_names_below_a_cached_nxdomain_are_nxdomain_without_asking():
    w = World()
    assert w.resolve("nope.example.com.").rcode == dns.rcode.NXDOMAIN
    w.asked()
    res = w.resolve("a.b.nope.example.com.", 16)
    assert res.rcode == dns.rcode.NXDOMAIN and names(res.authority) == [("example.com.", 6)]
    assert w.asked() == []


# ---- root priming ------------------------------------------------------------------------------

STALE_ROOT = "10.0.0.9"       # where the hints put a.root.; the root zone says 10.0.0.1


def primed_world() -> tuple[World, Stats]:
    """The small internet whose hints name a.root. at a stale address that still serves the
    root (as a renumbered root server's old address does for a while), with priming on."""
    net = small_internet()
    net.served[STALE_ROOT] = list(net.served["10.0.0.1"])
    w = World(net)
    w.hints = itr.Hints(parse_root_hints([("a.root.", STALE_ROOT)]), prime=True)
    stats = Stats()
    w.kw["stats"] = stats
    return w, stats


def root_query(w: World, name: str = "www.example.net.") -> itr.Query:
    return Iterator(W(name), 1, 1, w.cache, w.hints, w.clock, limits=w.limits).start()


def test_priming_replaces_the_hints_until_the_root_ns_set_expires():
    w, stats = primed_world()
    res = w.resolve("www.example.com.")
    assert res.rcode == 0 and (stats.primings, stats.priming_failures) == (1, 0)
    asked = w.net.log[:]
    assert asked[0] == (STALE_ROOT, ".", "NS")            # primed first, from the hint
    assert [a for a, q, t in asked].count(STALE_ROOT) == 1  # then the root's own servers
    # The next query at the root is offered the primed addresses only, not the hint's.
    q = root_query(w)
    assert (q.qname, q.zone, sorted(q.servers)) == (W("net."), W("."), ["10.0.0.1", "10.0.0.2"])
    w.clock.advance(86400 + 1)                           # past the primed set's TTL
    q = root_query(w)
    assert (q.qname, q.qtype, q.servers) == (W("."), 2, [STALE_ROOT])


def test_one_priming_at_a_time_and_a_failed_one_falls_back_to_the_hints():
    w, stats = primed_world()
    first = Iterator(W("www.example.com."), 1, 1, w.cache, w.hints, w.clock, limits=w.limits,
                     stats=stats)
    q = first.start()
    assert (q.qname, q.qtype) == (W("."), 2)
    # Started while the priming is in flight: uses the hints, no second priming.
    q2 = root_query(w)
    assert (q2.qname, q2.zone, q2.servers) == (W("net."), W("."), [STALE_ROOT])
    for _ in range(2):                                   # lost twice: priming gives up
        assert (q.qname, q.qtype) == (W("."), 2)
        w.clock.advance(0.4)
        q = first.feed(itr.Timeout(STALE_ROOT))
    assert (q.qname, q.zone, q.servers) == (W("com."), W("."), [STALE_ROOT])
    assert (stats.primings, stats.priming_failures) == (0, 1) and first.queries == 3
    q = root_query(w)
    assert (q.qname, q.qtype) == (W("net."), 1)          # not primed again for a while
    w.clock.advance(w.limits.failure_ttl)
    q = root_query(w)
    assert (q.qname, q.qtype) == (W("."), 2)             # then tried again


def test_priming_stays_within_the_query_budget():
    w, stats = primed_world()
    w.limits = w.limits.replace(max_upstream_queries=3)
    res = w.resolve("www.example.com.")          # the priming query is one of the three
    assert res.rcode == dns.rcode.SERVFAIL and "query limit" in res.reason
    assert len(w.net.log) == 3 and stats.primings == 1


# ---- IPv6 authorities (Resolver(ipv6=True)) ---------------------------------------------------

V6 = "2001:db8::1"          # ns.v6.: only an address in a FakeNet, nothing is sent to it
WIDE6 = [f"2001:db8:9::{i}" for i in range(1, 10)]     # as inet_ntop writes them


def v6_net() -> FakeNet:
    """v6. served by ns.v6. (A and AAAA); only6. delegated to a name with AAAA glue only;
    far. to ns.host.v6., a name with only an AAAA record and no glue anywhere; wide. to
    nine unreachable IPv6 addresses and one IPv4 one."""
    net = FakeNet()
    wide = "".join(f"wide. 86400 NS ns{i}.wide.\nns{i}.wide. 86400 AAAA {a}\n"
                   for i, a in enumerate(WIDE6))
    net.zone(".", f"""
@ 86400 NS a.root.
a.root. 86400 A 10.0.0.1
v6. 86400 NS ns.v6.
ns.v6. 86400 A 10.0.6.1
ns.v6. 86400 AAAA {V6}
only6. 86400 NS ns.only6.
ns.only6. 86400 AAAA 2001:db8:6::1
far. 86400 NS ns.host.v6.
{wide}wide. 86400 NS ns.v4.wide.
ns.v4.wide. 86400 A 10.0.9.1
""", ["10.0.0.1"])
    net.zone("v6.", f"""
@ 3600 NS ns
ns 3600 A 10.0.6.1
ns 3600 AAAA {V6}
ns.host 3600 AAAA 2001:db8:7::1
""", ["10.0.6.1", V6])
    net.zone("only6.", "@ 3600 NS ns\nns 3600 AAAA 2001:db8:6::1\nwww 300 A 192.0.2.6\n",
             ["2001:db8:6::1"])
    net.zone("far.", "@ 3600 NS ns.host.v6.\nwww 300 A 192.0.2.7\n", ["2001:db8:7::1"])
    net.zone("wide.", "@ 3600 NS ns.v4\nns.v4 3600 A 10.0.9.1\n"
             + "".join(f"www{i} 300 A 192.0.2.{90 + i}\n" for i in range(3)),
             ["10.0.9.1"] + WIDE6)
    for a in WIDE6:
        net.faults[a] = "unreachable"
    return net


def v6_world(**kw) -> World:
    w = World(v6_net(), **kw)
    w.hints = parse_root_hints([("a.root.", "10.0.0.1")])
    return w


def test_aaaa_glue_is_a_server_address_only_with_ipv6():
    w = v6_world(ipv6=True)
    res = w.resolve("www.only6.")
    assert res.rcode == 0 and res.answer[0][4] == bytes([192, 0, 2, 6])
    assert ("www.only6.", "A") in w.net.queries("2001:db8:6::1")
    w = v6_world(ipv6=False)
    assert w.resolve("www.only6.").rcode == dns.rcode.SERVFAIL
    assert w.net.queries("2001:db8:6::1") == []


def test_a_glueless_ns_name_with_only_aaaa_is_looked_up_as_aaaa_with_ipv6():
    w = v6_world(ipv6=True)
    res = w.resolve("www.far.", minimise=False)
    assert res.rcode == 0 and res.answer[0][4] == bytes([192, 0, 2, 7])
    assert ("www.far.", "A") in w.net.queries("2001:db8:7::1")
    asked = w.asked()
    # its A first (NODATA), then its AAAA, then the zone at that address
    assert asked.index(("ns.host.v6.", "A")) < asked.index(("ns.host.v6.", "AAAA"))
    w = v6_world(ipv6=False)
    assert w.resolve("www.far.", minimise=False).rcode == dns.rcode.SERVFAIL
    assert ("ns.host.v6.", "AAAA") not in w.asked()


def test_a_glued_ns_name_with_an_a_record_needs_no_aaaa_lookup():
    w = v6_world(ipv6=True)
    assert w.resolve("ns.v6.", minimise=False).rcode == 0
    assert all(t != "AAAA" for _, t in w.asked())


def test_unreachable_addresses_cost_no_tries_and_are_not_asked_again():
    """Nine AAAA addresses this host has no route to, one IPv4 one: once the IPv4 one is
    measured, the never-tried IPv6 ones come first, fail at once and are passed over; they
    do not use up the zone's ``max_servers_per_zone`` (8), nor get asked again while held
    down."""
    w = v6_world(ipv6=True)
    assert w.resolve("www0.wide.").rcode == 0           # the IPv4 server, tried first
    assert w.net.unsent == []
    t0 = w.clock()
    res = w.resolve("www1.wide.")
    assert res.rcode == 0 and res.answer[0][4] == bytes([192, 0, 2, 91])
    assert sorted(w.net.unsent) == sorted(WIDE6)
    assert w.clock() - t0 < 0.01                       # no timeout waited for
    infra = w.cache.infra
    assert all(infra.info(a).holddown_until > w.clock() for a in w.net.unsent)
    w.net.unsent.clear()
    w.clock.advance(w.limits.server_holddown + 1)     # even after the hold-down ...
    assert w.resolve("www2.wide.").rcode == 0
    assert w.net.unsent == []                          # ... the measured server comes first


def test_glue_addresses_are_asked_where_they_say_whatever_their_digits():
    # every width of an IPv4 octet (1, 2 and 3 digits, 0 and 255): the glue's address text
    # is where the query goes, so a misprinted one would be asked instead, and time out
    for prefix in ("9.99", "100.255", "200.0", "1.10"):
        net = small_internet(prefix=prefix)
        w = World(net)
        w.hints = parse_root_hints(root_hints(prefix))
        res = w.resolve("www.example.com.")
        assert res.rcode == 0 and res.answer[0][4] == bytes([192, 0, 2, 1])
        asked = {a for a, _, _ in net.log}
        assert asked <= set(net.served), asked
        assert asked & {f"{prefix}.1.1", f"{prefix}.1.2"} and asked & {f"{prefix}.3.1",
                                                                     f"{prefix}.3.2"}, asked
