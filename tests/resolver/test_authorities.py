"""Authorities as they are found in the wild, scripted on the fake network (``scenario``) with a
fake clock: replies without AA (RFC 1034 5.3.3, RFC 2181 5.4.1), lameness and its expiry,
the last-resort try of marked servers, priming (RFC 8109), relaxed QNAME minimisation
(RFC 9156 section 2.3) and what its probes leave in the cache, and which addresses may be
asked (do-ip4, do-ip6, do-not-query-localhost). Where the resolver parts from Unbound on
purpose, the test says why."""
from __future__ import annotations

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from resolver import cache as C
from resolver.cache import Cache
from resolver.hints import parse_root_hints
from resolver.iterator import Hints, Iterator
from resolver.limits import Limits
from resolver.state import Stats
from scenario import FakeClock, FakeNet, W, drive, root_hints, small_internet

NO_EXPLORE = Limits(exploration=0.0)
WWW_A = bytes([192, 0, 2, 1])


class World:
    def __init__(self, net: FakeNet | None = None, limits: Limits = NO_EXPLORE, *,
                 prime: bool = False, hints=None, ipv6: bool = False, **kw) -> None:
        self.net = net or small_internet()
        self.clock = FakeClock()
        self.limits = limits
        self.cache = Cache(1 << 22, limits)
        self.hints = Hints(parse_root_hints(hints or root_hints()), ipv6, prime=prime)
        self.stats = Stats()
        self.kw = {"ipv6": ipv6, **kw}

    def resolve(self, name: str, rdtype: int = 1, **kw):
        it = Iterator(W(name), rdtype, 1, self.cache, self.hints, self.clock,
                      limits=self.limits, stats=self.stats, **{**self.kw, **kw})
        return drive(it, self.net, self.clock)

    def asked(self) -> list[tuple[str, str]]:
        out = self.net.queries()
        self.net.log.clear()
        return out

    def lame(self, addr: str, zone: str) -> bool:
        return self.cache.infra.is_lame(addr, W(zone), self.clock())


def qname(q: dns.message.Message) -> str:
    return q.question[0].name.to_text()


def reply(q: dns.message.Message, rcode: int = dns.rcode.NOERROR, aa: bool = False,
          ra: bool = False) -> dns.message.Message:
    r = dns.message.make_response(q)
    r.flags &= ~(dns.flags.AA | dns.flags.RA)
    if aa:
        r.flags |= dns.flags.AA
    if ra:
        r.flags |= dns.flags.RA
    r.set_rcode(rcode)
    return r


def on(net: FakeNet, addrs, when, make) -> None:
    """``addrs`` answer queries for which ``when(q)`` holds with ``make(q)`` (a Message, wire
    bytes, or None for silence) and everything else as a correct server does."""
    clean = FakeNet()               # the same zones, without faults (and its own log)
    clean.zones, clean.served = net.zones, net.served
    for addr in addrs:
        def fault(q, addr=addr):
            if not when(q):
                return clean.answer(addr, q.to_wire())
            out = make(q)
            return out.to_wire() if isinstance(out, dns.message.Message) else out
        net.faults[addr] = fault


# ---- replies without AA -------------------------------------------------------------------------

def test_an_answer_without_aa_is_used_at_the_rank_of_a_non_authoritative_answer():
    w = World()
    w.net.faults["10.0.3.1"] = w.net.faults["10.0.3.2"] = "nonauth"
    res = w.resolve("www.example.com.")
    assert res.rcode == dns.rcode.NOERROR and res.answer[0][4] == WWW_A
    entry = w.cache.rrsets.get(W("www.example.com."), 1, 1, w.clock())
    assert entry.rank == C.NONAUTH_ANSWER
    assert not w.lame("10.0.3.1", "example.com.") and not w.lame("10.0.3.2", "example.com.")
    # a negative answer without AA but with the zone's SOA is used as well
    assert w.resolve("nope.example.com.").rcode == dns.rcode.NXDOMAIN
    assert w.resolve("www.example.com.", 15).rcode == dns.rcode.NOERROR


def test_a_negative_answer_without_aa_from_a_recursive_server_is_lame():
    """Unbound's "recursion lame": RA set, AA clear, no data: the server's cache spoke, not
    the zone. The other server of the zone answers."""
    w = World()

    def recursive(q):
        out = dns.message.from_wire(small_internet().answer("10.0.3.1", q.to_wire()))
        out.flags = (out.flags & ~dns.flags.AA) | dns.flags.RA
        return out.to_wire()

    w.net.faults["10.0.3.1"] = recursive
    res = w.resolve("nope.example.com.")
    assert res.rcode == dns.rcode.NXDOMAIN
    assert w.lame("10.0.3.1", "example.com.") and not w.lame("10.0.3.2", "example.com.")
    assert ("nope.example.com.", "A") in w.net.queries("10.0.3.2")


def test_an_empty_reply_without_aa_is_lame_unlike_unbound():
    """Unbound takes an empty NOERROR without AA for NODATA. Here it marks the server lame:
    with no SOA there is no negative TTL to cache it by, and it is what a server that does
    not serve the zone sends; the zone's other server is asked instead."""
    w = World()
    on(w.net, ["10.0.3.1"], lambda q: True, lambda q: reply(q))
    res = w.resolve("www.example.com.")
    assert res.rcode == dns.rcode.NOERROR and res.answer[0][4] == WWW_A
    assert w.lame("10.0.3.1", "example.com.")


def test_upward_and_sideways_referrals_mark_the_server_lame():
    for owner in (".", "net."):
        w = World()

        def upward(q, owner=owner):
            r = reply(q)
            r.authority.append(dns.rrset.from_text(owner, 300, "IN", "NS", "ns.net."))
            return r

        on(w.net, ["10.0.3.1"], lambda q: True, upward)
        assert w.resolve("www.example.com.").answer[0][4] == WWW_A
        assert w.lame("10.0.3.1", "example.com."), owner


def test_refused_and_notauth_disclaim_the_zone():
    for rcode in (dns.rcode.REFUSED, dns.rcode.NOTAUTH):
        w = World()
        on(w.net, ["10.0.3.1"], lambda q: True, lambda q, rc=rcode: reply(q, rc))
        assert w.resolve("www.example.com.").answer[0][4] == WWW_A
        assert w.lame("10.0.3.1", "example.com."), rcode


# ---- priming ------------------------------------------------------------------------------------

def test_priming_reply_without_aa_primes_and_marks_nothing():
    w = World(prime=True)
    w.net.faults["10.0.0.1"] = w.net.faults["10.0.0.2"] = "nonauth"
    res = w.resolve("www.example.com.")
    assert res.rcode == dns.rcode.NOERROR and res.answer[0][4] == WWW_A
    assert w.asked()[0] == (".", "NS")
    assert (w.stats.primings, w.stats.priming_failures) == (1, 0)
    root_ns = w.cache.rrsets.get(W("."), dns.rdatatype.NS, 1, w.clock())
    assert root_ns is not None and root_ns.rank == C.NONAUTH_ANSWER
    assert not w.lame("10.0.0.1", ".") and not w.lame("10.0.0.2", ".")


PRIMING_FAULTS = {
    "refused": lambda q: reply(q, dns.rcode.REFUSED),
    "servfail": lambda q: reply(q, dns.rcode.SERVFAIL),
    "formerr": lambda q: reply(q, dns.rcode.FORMERR),
    "empty without AA": lambda q: reply(q),
    "referral to itself": lambda q: _with_ns(reply(q)),
    "silence": lambda q: None,
    "garbage": lambda q: b"\x00\x00\x84\x00" + b"\xff" * 20,
}


def _with_ns(r):
    r.authority.append(dns.rrset.from_text(".", 300, "IN", "NS", "a.root."))
    return r


@pytest.mark.parametrize("fault", sorted(PRIMING_FAULTS))
def test_a_priming_failure_of_any_kind_leaves_the_hints_serving(fault):
    """The only root server fails the priming query (and only it): the query is still
    answered from the hints, even when the failure marked that server lame for the root."""
    w = World(prime=True, hints=[("a.root.", "10.0.0.1")],
              limits=Limits(exploration=0.0, initial_rto=0.2))
    is_priming = lambda q: qname(q) == "." and q.question[0].rdtype == dns.rdatatype.NS  # noqa: E731
    on(w.net, ["10.0.0.1"], is_priming, PRIMING_FAULTS[fault])
    res = w.resolve("www.example.com.")
    assert res.rcode == dns.rcode.NOERROR and res.answer[0][4] == WWW_A, res.reason
    assert w.stats.priming_failures == 1 and w.stats.primings == 0
    assert ("com.", "A") in w.net.queries("10.0.0.1")       # the hint served the query


# ---- marks expire; marked servers are the last resort ---------------------------------------------

def test_lameness_expires_after_infra_host_ttl():
    w = World(limits=Limits(exploration=0.0, infra_host_ttl=900.0))
    w.net.faults["10.0.3.1"] = "lame"
    assert w.resolve("www.example.com.").answer[0][4] == WWW_A
    assert w.lame("10.0.3.1", "example.com.")
    del w.net.faults["10.0.3.1"]          # the server is repaired
    w.asked()
    w.clock.advance(899.0)
    assert w.resolve("txt.example.com.", 16).rcode == dns.rcode.NOERROR
    assert w.net.queries("10.0.3.1") == []        # still marked: the other server is asked
    w.clock.advance(2.0)
    assert not w.lame("10.0.3.1", "example.com.")
    assert w.resolve("mail.example.com.", 15).rcode == dns.rcode.NOERROR
    assert w.net.queries("10.0.3.1") == [("mail.example.com.", "MX")]


def test_infra_host_ttl_is_a_limit():
    w = World(limits=Limits(exploration=0.0, infra_host_ttl=30.0))
    w.net.faults["10.0.3.1"] = "lame"
    w.resolve("www.example.com.")
    w.clock.advance(29.0)
    assert w.lame("10.0.3.1", "example.com.")
    w.clock.advance(2.0)
    assert not w.lame("10.0.3.1", "example.com.")


def test_every_server_marked_are_still_tried_before_servfail():
    w = World()
    w.resolve("www.example.com.")
    for addr in ("10.0.3.1", "10.0.3.2"):
        w.cache.infra.mark_lame(addr, W("example.com."), w.clock())
    w.asked()
    res = w.resolve("txt.example.com.", 16)
    assert res.rcode == dns.rcode.NOERROR and res.answer
    assert w.asked() == [("txt.example.com.", "TXT")]      # one try, at a marked server


def test_marked_servers_that_stay_lame_end_in_servfail_within_bounds():
    w = World()
    w.net.faults["10.0.3.1"] = w.net.faults["10.0.3.2"] = "lame"
    res = w.resolve("www.example.com.")
    assert res.rcode == dns.rcode.SERVFAIL
    assert len(w.net.queries("10.0.3.1")) + len(w.net.queries("10.0.3.2")) <= 4


# ---- QNAME minimisation, relaxed ----------------------------------------------------------------

DEEP = "deep.empty.nonterminal.example.com."
DEEP_A = bytes([192, 0, 2, 5])


def _probe(q) -> bool:
    return qname(q) != DEEP and qname(q).endswith("nonterminal.example.com.")


PROBE_FAULTS = {
    "refused": lambda q: reply(q, dns.rcode.REFUSED, aa=True),
    "servfail": lambda q: reply(q, dns.rcode.SERVFAIL),
    "formerr": lambda q: reply(q, dns.rcode.FORMERR),
    "notimp": lambda q: reply(q, dns.rcode.NOTIMP),
    "timeout": lambda q: None,
    "nxdomain for an empty non-terminal": lambda q: _nx(q),
}


def _nx(q, nsec: bool = False):
    r = reply(q, dns.rcode.NXDOMAIN, aa=True)
    r.authority.append(dns.rrset.from_text("example.com.", 300, "IN", "SOA",
                                           "ns.invalid. host.invalid. 1 3600 600 86400 300"))
    if nsec:
        r.authority.append(dns.rrset.from_text("example.com.", 300, "IN", "NSEC",
                                               "www.example.com. NS SOA NSEC"))
    return r


@pytest.mark.parametrize("fault", sorted(PROBE_FAULTS))
def test_a_minimised_query_that_fails_is_asked_again_with_the_full_name(fault):
    w = World(limits=Limits(exploration=0.0, initial_rto=0.2))
    on(w.net, ["10.0.3.1", "10.0.3.2"], _probe, PROBE_FAULTS[fault])
    res = w.resolve(DEEP)
    assert res.rcode == dns.rcode.NOERROR and res.answer[0][4] == DEEP_A, res.reason
    asked = [(q, t) for a, q, t in w.net.log if a in ("10.0.3.1", "10.0.3.2")]
    assert asked[0] == ("nonterminal.example.com.", "A")      # minimised first
    assert asked[-1] == (DEEP, "A")                           # then the full name
    # a server that mishandles minimised queries is not lame: it serves the zone
    assert not w.lame("10.0.3.1", "example.com.") and not w.lame("10.0.3.2", "example.com.")
    # ... and its zone is asked full names from now on, not a failing probe each time
    w.net.log.clear()
    assert w.resolve(DEEP, 28).rcode == dns.rcode.NOERROR
    assert w.asked() == [(DEEP, "AAAA")]


def test_minimisation_resumes_in_a_zone_after_infra_host_ttl():
    w = World(limits=Limits(exploration=0.0, infra_host_ttl=60.0))
    on(w.net, ["10.0.3.1", "10.0.3.2"], _probe, PROBE_FAULTS["refused"])
    w.resolve(DEEP)
    w.clock.advance(61.0)
    del w.net.faults["10.0.3.1"], w.net.faults["10.0.3.2"]
    w.asked()
    assert w.resolve(DEEP, 16).rcode == dns.rcode.NOERROR
    assert w.asked()[0] == ("nonterminal.example.com.", "A")


def test_nxdomain_to_a_probe_from_a_signed_zone_ends_the_query():
    """RFC 8020 from a minimised query is taken only from a zone that proves it (NSEC/NSEC3,
    checked by the validator), as Unbound does when DNSSEC is expected: unsigned servers are
    known to answer NXDOMAIN for empty non-terminals."""
    w = World()
    on(w.net, ["10.0.3.1", "10.0.3.2"], _probe, lambda q: _nx(q, nsec=True))
    res = w.resolve(DEEP)
    assert res.rcode == dns.rcode.NXDOMAIN
    assert (DEEP, "A") not in w.asked()


def test_qname_minimisation_can_be_turned_off():
    w = World(minimise=False)
    w.resolve(DEEP)
    assert {q for q, _ in w.asked()} == {DEEP}


def with_root(body: str) -> FakeNet:
    """A fake network whose one root server, a.root. (10.0.0.1), also serves ``body``."""
    net = FakeNet()
    net.zone(".", "@ 86400 NS a.root.\na.root. 86400 A 10.0.0.1\n" + body, ["10.0.0.1"])
    return net


def deep_internet() -> FakeNet:
    """root (10.0.0.1) -> test. (10.0.1.1) -> deep.test. (10.0.2.1), where the only name is
    host.a.b.c.d.deep.test. (a, b, c, d are empty non-terminals) and e.deep.test. is a zone
    of its own (10.0.3.1)."""
    net = with_root("test. 86400 NS ns.test.\nns.test. 86400 A 10.0.1.1\n")
    net.zone("test.", """
@ 86400 NS ns
ns 86400 A 10.0.1.1
deep 86400 NS ns.deep
ns.deep 86400 A 10.0.2.1
""", ["10.0.1.1"])
    net.zone("deep.test.", """
@ 3600 NS ns
ns 3600 A 10.0.2.1
host.a.b.c.d 300 A 192.0.2.44
x.e 3600 NS ns.e
ns.e 3600 A 10.0.3.1
""", ["10.0.2.1"])
    net.zone("x.e.deep.test.", """
@ 3600 NS ns.e.deep.test.
host.a.b 300 A 192.0.2.45
""", ["10.0.3.1"])
    return net


@pytest.mark.parametrize("below", ["a.b.c.d.deep.test.", "a.b.x.e.deep.test."])
def test_random_subdomain_flood_costs_one_query_per_miss_once_the_path_is_known(below):
    """What the probes learned (empty non-terminals as NODATA, the delegation to x.e) is
    cached: each later random name below ``below`` costs one upstream query (the ceiling
    is 1.5 per miss; Unbound sends 1.0 here)."""
    w = World(deep_internet(), hints=[("a.root.", "10.0.0.1")])
    assert w.resolve(f"warm.{below}").rcode == dns.rcode.NXDOMAIN
    first = len(w.asked())
    assert first >= 5          # the path cost probes once
    misses = 40
    for i in range(misses):
        res = w.resolve(f"r{i}x.{below}")
        assert res.rcode == dns.rcode.NXDOMAIN
    asked = w.asked()
    assert len(asked) / misses <= 1.5
    assert len(asked) == misses       # exactly the full name, once per miss
    # the intermediate names are still answered correctly from what was learned
    res = w.resolve(f"host.{below}")
    assert res.rcode == dns.rcode.NOERROR and res.answer


def test_random_subdomain_flood_below_a_server_that_denies_empty_non_terminals():
    """A server answering NXDOMAIN for the empty non-terminals on the way: the first miss
    falls back to the full name, and the zone is then asked full names, one per miss."""
    net = deep_internet()
    ents = ("d.deep.test.", "c.d.deep.test.", "b.c.d.deep.test.", "a.b.c.d.deep.test.")

    def denies(q):
        r = reply(q, dns.rcode.NXDOMAIN, aa=True)
        r.authority.append(dns.rrset.from_text(
            "deep.test.", 300, "IN", "SOA", "ns.invalid. host.invalid. 1 3600 600 86400 300"))
        return r

    on(net, ["10.0.2.1"], lambda q: qname(q) in ents, denies)
    w = World(net, hints=[("a.root.", "10.0.0.1")])
    assert w.resolve("host.a.b.c.d.deep.test.").rcode == dns.rcode.NOERROR
    w.asked()
    misses = 40
    for i in range(misses):
        assert w.resolve(f"r{i}y.a.b.c.d.deep.test.").rcode == dns.rcode.NXDOMAIN
    assert len(w.asked()) / misses <= 1.5


# ---- which addresses may be asked -----------------------------------------------------------------

def loopback_internet() -> FakeNet:
    net = with_root("""
loop. 86400 NS ns.loop.
ns.loop. 86400 A 127.0.0.53
six. 86400 NS ns.six.
ns.six. 86400 AAAA ::1
mapped. 86400 NS ns.mapped.
ns.mapped. 86400 AAAA ::ffff:127.0.0.9
""")
    for zone, addr in (("loop.", "127.0.0.53"), ("six.", "::1"), ("mapped.", "::ffff:127.0.0.9")):
        net.zone(zone, "@ 3600 NS ns\nwww 300 A 192.0.2.8\n", [addr])
    return net


@pytest.mark.parametrize("zone, addr", [("loop.", "127.0.0.53"), ("six.", "::1"),
                                        ("mapped.", "::ffff:127.0.0.9")])
def test_a_loopback_ns_address_is_refused_by_default(zone, addr):
    """Unbound's do-not-query-localhost, on by default: a zone must not be able to point the
    resolver at services on its own host."""
    w = World(loopback_internet(), hints=[("a.root.", "10.0.0.1")], ipv6=True)
    res = w.resolve(f"www.{zone}")
    assert res.rcode == dns.rcode.SERVFAIL
    assert w.net.queries(addr) == []
    w = World(loopback_internet(), hints=[("a.root.", "10.0.0.1")], ipv6=True,
              no_localhost=False)
    res = w.resolve(f"www.{zone}")
    assert res.rcode == dns.rcode.NOERROR and w.net.queries(addr)


def test_loopback_root_hints_are_refused_too():
    w = World(small_internet(prefix="127.0"), hints=root_hints("127.0"), prime=True)
    assert w.resolve("www.example.com.").rcode == dns.rcode.SERVFAIL
    assert w.asked() == []
    w = World(small_internet(prefix="127.0"), hints=root_hints("127.0"), prime=True,
              no_localhost=False)
    assert w.resolve("www.example.com.").rcode == dns.rcode.NOERROR


def dual_stack_internet() -> FakeNet:
    net = FakeNet()
    net.zone(".", """
@ 86400 NS a.root.
a.root. 86400 A 10.0.0.1
a.root. 86400 AAAA fd00::1
example. 86400 NS ns.example.
ns.example. 86400 A 10.0.5.1
ns.example. 86400 AAAA fd00::5
""", ["10.0.0.1", "fd00::1"])
    net.zone("example.", "@ 3600 NS ns\nns 3600 A 10.0.5.1\nns 3600 AAAA fd00::5\n"
             "www 300 A 192.0.2.9\n", ["10.0.5.1", "fd00::5"])
    return net


def test_do_ip4_and_do_ip6_choose_the_address_families():
    hints = [("a.root.", "10.0.0.1"), ("a.root.", "fd00::1")]
    w = World(dual_stack_internet(), hints=hints, ipv6=True, ip4=False)
    assert w.resolve("www.example.").rcode == dns.rcode.NOERROR
    assert w.net.log and all(":" in addr for addr, _, _ in w.net.log)
    w = World(dual_stack_internet(), hints=hints, ipv6=False, ip4=True)
    assert w.resolve("www.example.").rcode == dns.rcode.NOERROR
    assert w.net.log and all(":" not in addr for addr, _, _ in w.net.log)
    w = World(dual_stack_internet(), hints=hints, ipv6=False, ip4=False)
    assert w.resolve("www.example.").rcode == dns.rcode.SERVFAIL
    assert w.net.log == []
