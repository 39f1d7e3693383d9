"""Response policy zones at the front door, in process: with a policy configured, a cached
answer that no trigger can touch leaves by the door's C hit path (no policy gate, no
dnspython parse), and every kind of trigger still acts on cached names, including a policy
that arrives after the answer was cached. The policy's ``TriggerIndex`` against the
policy's own QNAME look-ups on generated names."""
from __future__ import annotations

import logging
import time

import dns.flags
import dns.ipv4
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import dns.zone
from hypothesis import given, settings, strategies as st
from test_front_door import _Engine as _SERVFAIL

from resolver import Resolver
from resolver.cache.answer import parse_query
from resolver.daemon.admission import ALLOWED_ACL, CallReply, FrontDoor
from resolver.daemon.rpz_gate import PolicyGate, cached_nameservers
from resolver.policy.index import TriggerIndex
from resolver.policy.rpz import Policy, PolicyZone, ZoneOptions
from resolver.response import error
from resolver.wire.codec import MsgEntry

HEAD = """$TTL 60
@ SOA ns. hostmaster. 1 3600 600 86400 30
@ NS ns.
"""


def zone_of(records: str, origin: str = "rpz.test.", **opts) -> PolicyZone:
    z = dns.zone.from_text(HEAD + records, origin=origin, relativize=False,
                           check_origin=False)
    return PolicyZone(z.origin, z.iterate_rdatasets(), ZoneOptions(**opts))


class _Engine(_SERVFAIL):
    """The door's resolver with every miss answered at once: the cached answer when there is
    one, else SERVFAIL. Counts the misses it starts."""

    def start_miss(self, q, done, loop, absent=None, client=None):
        out = super().start_miss(q, done, loop, absent, client)     # counted: SERVFAIL
        return self.r.resolve_cached(q) or out


class _Gate(PolicyGate):
    """The policy gate, counting the queries it was handed and its look-ups of a name's
    servers (``rrsets``: the rrset cache they are found in, as the daemon's gate)."""

    def __init__(self, policy, rrsets=None) -> None:
        super().__init__(policy, None if rrsets is None else self._servers)
        self.rrsets = rrsets
        self.misses = 0
        self.lookups: list[str] = []

    def _servers(self, qname):
        self.lookups.append(qname.to_text())
        return cached_nameservers(self.rrsets, qname)

    def miss(self, *args):
        self.misses += 1
        return super().miss(*args)


def _cache(r: Resolver, name: str, *records: tuple[str, str, str]) -> None:
    """Stores an answer to ``name`` A (records: owner, type, data)."""
    q = dns.message.make_query(name, "A")
    resp = dns.message.make_response(q)
    for owner, rdtype, data in records:
        resp.answer.append(dns.rrset.from_text(owner, 300, "IN", rdtype, data))
    r.cache.messages.table[parse_query(q.to_wire())[0]] = MsgEntry(resp.to_wire(),
                                                                  time.monotonic(), 0.0)


def _door(policy: Policy | None):
    r = Resolver([("a.root-servers.net.", "192.0.2.1")])
    _cache(r, "www.example.", ("www.example.", "A", "192.0.2.1"))
    _cache(r, "Other.Example.", ("other.example.", "A", "192.0.2.2"))
    _cache(r, "host.wild.example.", ("host.wild.example.", "A", "192.0.2.3"))
    _cache(r, "bad.example.", ("bad.example.", "A", "192.0.2.4"))
    _cache(r, "alias.example.", ("alias.example.", "CNAME", "bad.example."),
           ("bad.example.", "A", "192.0.2.4"))
    _cache(r, "sinkhole.example.", ("sinkhole.example.", "A", "198.51.100.66"))
    engine = _Engine(r)
    door = FrontDoor(r.cache.messages.table, engine)
    gate = None
    if policy is not None:
        gate = _Gate(policy, r.cache.rrsets)
        door.policy = gate
    return door, engine, gate


def _ask(door, name: str, client: str = "192.0.2.200"):
    """``name`` A asked over UDP: (the answer or None when dropped, what ``handle`` said)."""
    got = []
    reply = CallReply("udp", (client, 5353), got.append, lambda: got.append(None))
    went = door.handle(dns.message.make_query(name, "A").to_wire(), ALLOWED_ACL, reply)
    assert len(got) == 1
    return (None if got[0] is None else dns.message.from_wire(got[0])), went


def _addresses(resp) -> set[str]:
    return {rd.to_text() for rrset in resp.answer for rd in rrset if rrset.rdtype == 1}


QNAMES = """bad.example CNAME .
*.wild.example CNAME *.
"""


def test_an_untouched_cached_name_is_a_door_hit():
    door, engine, gate = _door(Policy([zone_of(QNAMES)]))
    assert door.policy is gate
    parses = engine.stats.query_parses
    for name in ("www.example.", "OTHER.example."):
        resp, went = _ask(door, name)
        assert went == 0 and resp.rcode() == dns.rcode.NOERROR and _addresses(resp)
    assert door.counters.hits == 2 and engine.stats.cache_hits == 2
    # no gate, no engine, one read of each query (the door's, in C)
    assert gate.misses == 0 and engine.started == 0
    assert engine.stats.query_parses - parses == 2
    assert gate.stats() == {}
    # the verdict alone says the same
    assert door.verdict(dns.message.make_query("www.example.", "A").to_wire(),
                        ALLOWED_ACL)[0] == "hit"


def test_qname_triggers_act_on_cached_names():
    door, engine, gate = _door(Policy([zone_of(QNAMES)]))
    resp, _ = _ask(door, "bad.example.")                    # exact
    assert resp.rcode() == dns.rcode.NXDOMAIN
    resp, _ = _ask(door, "BAD.Example.")                    # any case
    assert resp.rcode() == dns.rcode.NXDOMAIN
    resp, _ = _ask(door, "host.wild.example.")              # wildcard above it: NODATA
    assert resp.rcode() == dns.rcode.NOERROR and not resp.answer
    assert door.counters.hits == 0 and gate.misses == 3
    assert gate.stats() == {"rpz.test.": {"nxdomain": 2, "nodata": 1}}


def test_a_cached_cname_chain_into_a_triggered_name_goes_to_the_policy():
    """A name of the chain (a CNAME's owner or target) that meets a QNAME trigger, exact or
    wildcard, keeps the answer off the door's hit path; a chain through untouched names is
    a hit; a DNAME is never one."""
    door, engine, gate = _door(Policy([zone_of(QNAMES)]))
    r = door.resolver.r
    _cache(r, "clean.example.", ("clean.example.", "CNAME", "www.example."),
           ("www.example.", "A", "192.0.2.1"))
    _cache(r, "towild.example.", ("towild.example.", "CNAME", "x.wild.example."),
           ("x.wild.example.", "A", "192.0.2.5"))
    _cache(r, "dangling.example.", ("dangling.example.", "CNAME", "a.b.wild.example."))
    _cache(r, "mid.example.", ("mid.example.", "CNAME", "bad.example."),
           ("bad.example.", "CNAME", "www.example."), ("www.example.", "A", "192.0.2.1"))
    _cache(r, "www.dname.example.", ("dname.example.", "DNAME", "example."),
           ("www.dname.example.", "CNAME", "www.example."), ("www.example.", "A", "192.0.2.1"))
    for name in ("alias.example.", "towild.example.", "dangling.example.", "mid.example.",
                 "www.dname.example."):
        assert door.verdict(dns.message.make_query(name, "A").to_wire(),
                            ALLOWED_ACL)[0] == "miss", name
        _ask(door, name)
    assert door.counters.hits == 0 and gate.misses == 5 and engine.started == 5
    resp, went = _ask(door, "clean.example.")
    assert went == 0 and _addresses(resp) == {"192.0.2.1"} and door.counters.hits == 1
    # without a policy each of them is a door hit
    plain, engine2, _ = _door(None)
    _ask(plain, "alias.example.")
    assert plain.counters.hits == 1 and engine2.started == 0


def _servers(r: Resolver, zone: str, *servers: tuple[str, str | None]) -> None:
    """Caches ``zone``'s NS set in the rrset cache: (server name, its address or None)."""
    w = lambda text: dns.name.from_text(text).to_wire()        # noqa: E731
    now = time.monotonic()
    r.cache.rrsets.store_records([(w(zone), 2, 1, 300, w(name)) for name, _ in servers], 3,
                                 now)
    for name, address in servers:
        if address is not None:
            r.cache.rrsets.store_records(
                [(w(name), 1, 1, 300, dns.ipv4.inet_aton(address))], 3, now)


#: a policy with a trigger of each kind the query's name and answer do not show
MIXED = """32.9.9.0.10.rpz-client-ip CNAME rpz-drop.
48.zz.db8.2001.rpz-client-ip CNAME rpz-drop.
ns1.evil.net.rpz-nsdname CNAME .
*.badhost.net.rpz-nsdname CNAME .
24.0.113.0.203.rpz-nsip CNAME *.
"""


def _mixed_door():
    """A door under MIXED whose rrset cache holds example.'s servers (none triggers) and
    those of evil.example. (an NSDNAME trigger's), bad.example. (a wildcard NSDNAME
    trigger's) and nsip.example. (one at an address in the NSIP trigger's network)."""
    door, engine, gate = _door(Policy([zone_of(MIXED)]))
    r = door.resolver.r
    _servers(r, "example.", ("ns.good.net.", "192.0.2.53"), ("ns2.good.net.", None))
    _servers(r, "evil.example.", ("ns1.evil.net.", "192.0.2.54"))
    _servers(r, "wildns.example.", ("a.ns.badhost.net.", None))
    _servers(r, "nsip.example.", ("ns.elsewhere.net.", "203.0.113.7"))
    for name, address in (("www.evil.example.", "192.0.2.10"),
                          ("www.wildns.example.", "192.0.2.11"),
                          ("www.nsip.example.", "192.0.2.12")):
        _cache(r, name, (name, "A", address))
    return door, engine, gate


def test_client_ip_and_ns_triggers_leave_untouched_cached_names_to_the_door():
    """With client-IP, NSDNAME and NSIP triggers in the policy, a cached name whose servers
    no trigger meets, asked by a client no client-IP network holds, leaves by the door's
    hit path: no gate, one look-up of its servers for the entry (not per query)."""
    door, engine, gate = _mixed_door()
    index = door.policy.policy.index
    assert index.clients and index.ns_exact and index.ns_wild and index.ns_networks
    parses = engine.stats.query_parses
    for client in ("192.0.2.200", "10.0.9.8", "2001:db8:1::1", "10.0.9.8"):
        resp, went = _ask(door, "www.example.", client=client)
        assert went == 0 and _addresses(resp) == {"192.0.2.1"}, client
    assert door.counters.hits == 4 and engine.stats.cache_hits == 4
    assert gate.misses == 0 and engine.started == 0 and gate.stats() == {}
    assert engine.stats.query_parses - parses == 4
    assert gate.lookups == ["www.example."]                 # once for the entry
    assert door.verdict(dns.message.make_query("www.example.", "A").to_wire(), ALLOWED_ACL,
                        client=("10.0.9.10", 53))[0] == "hit"


def test_a_client_in_a_client_ip_network_gets_the_policys_action_on_a_cached_name():
    door, engine, gate = _mixed_door()
    assert _ask(door, "www.example.", client="10.0.9.9")[0] is None        # DROP
    assert _ask(door, "www.example.", client="2001:db8::53")[0] is None    # its /48
    assert door.counters.hits == 0 and gate.misses == 2
    assert gate.stats() == {"rpz.test.": {"drop": 2}}
    # the same entry from a client outside: the hit path
    assert _ask(door, "www.example.", client="10.0.9.8")[1] == 0 and door.counters.hits == 1
    q = dns.message.make_query("www.example.", "A").to_wire()
    assert door.verdict(q, ALLOWED_ACL, client=("10.0.9.9", 53))[0] == "miss"
    # a v4-mapped client is an IPv6 address, as the policy reads its text
    assert door.verdict(q, ALLOWED_ACL, client=("::ffff:10.0.9.9", 53, 0, 0))[0] == "hit"
    assert door.verdict(q, ALLOWED_ACL, client=None)[0] == "hit"


def test_a_name_whose_servers_trigger_gets_the_policys_action_when_cached():
    """NSDNAME (exact, wildcard) and NSIP triggers on the servers of a cached name's zone:
    each query goes to the policy, which acts; the verdict is kept on the entry."""
    door, engine, gate = _mixed_door()
    for _ in range(2):
        assert _ask(door, "www.evil.example.")[0].rcode() == dns.rcode.NXDOMAIN
        assert _ask(door, "www.wildns.example.")[0].rcode() == dns.rcode.NXDOMAIN
        resp = _ask(door, "www.nsip.example.")[0]
        assert resp.rcode() == dns.rcode.NOERROR and not resp.answer          # NODATA
    assert door.counters.hits == 0 and gate.misses == 6
    assert gate.stats() == {"rpz.test.": {"nxdomain": 4, "nodata": 2}}
    # the door looked each entry's servers up once; the policy, on each miss
    for name in ("www.evil.example.", "www.wildns.example.", "www.nsip.example."):
        assert gate.lookups.count(name) == 3, gate.lookups
    entry = door.resolver.r.cache.messages.table[
        parse_query(dns.message.make_query("www.evil.example.", "A").to_wire())[0]]
    assert entry.screen_touched


def test_a_new_policy_screens_a_cached_entrys_servers_again():
    door, engine, gate = _mixed_door()
    assert _ask(door, "www.example.")[1] == 0
    gate.policy = Policy([zone_of("ns.good.net.rpz-nsdname CNAME .\n")])
    door.policy = gate                                      # as Server.set_policy does
    assert _ask(door, "www.example.")[0].rcode() == dns.rcode.NXDOMAIN
    gate.policy = Policy([zone_of("32.53.2.0.192.rpz-nsip CNAME .\n")])
    door.policy = gate
    assert _ask(door, "www.example.")[0].rcode() == dns.rcode.NXDOMAIN
    gate.policy = Policy([zone_of(MIXED)])
    door.policy = gate
    assert _ask(door, "www.example.")[1] == 0 and door.counters.hits == 2
    assert gate.stats() == {"rpz.test.": {"nxdomain": 2}}


def test_a_failing_look_up_of_the_servers_leaves_the_name_to_the_policy(caplog):
    door, engine, gate = _mixed_door()

    def broken(qname):
        raise RuntimeError("no cache")
    gate.nameservers = broken
    with caplog.at_level(logging.ERROR, logger="resolver.daemon.server"):
        door.verdict(dns.message.make_query("www.example.", "A").to_wire(), ALLOWED_ACL)
    assert "could not be checked" in caplog.text
    gate.nameservers = lambda qname: ((), ())
    assert door.verdict(dns.message.make_query("www.example.", "A").to_wire(),
                        ALLOWED_ACL)[0] == "miss"       # kept on the entry for this policy


def test_response_ip_triggers_act_on_cached_addresses_and_spare_the_rest():
    """A cached answer with an address a response-IP network holds (any zone, any prefix
    length, down a CNAME chain) goes to the policy, which acts on it; one without is a door
    hit."""
    zones = [zone_of("32.66.100.51.198.rpz-ip CNAME .\n"
                     "64.zz.db8.2001.rpz-ip CNAME rpz-passthru.\n"),
             zone_of("24.0.2.0.192.rpz-ip CNAME .\n", origin="off.test.",
                     action_override="disabled")]
    door, engine, gate = _door(Policy(zones))
    r = door.resolver.r
    _cache(r, "chain.example.", ("chain.example.", "CNAME", "sinkhole.example."),
           ("sinkhole.example.", "A", "198.51.100.66"))
    _cache(r, "near.example.", ("near.example.", "A", "198.51.100.67"))
    _cache(r, "six.example.", ("six.example.", "AAAA", "2001:db8::9"))
    assert _ask(door, "sinkhole.example.")[0].rcode() == dns.rcode.NXDOMAIN   # /32
    assert _ask(door, "chain.example.")[0].rcode() == dns.rcode.NXDOMAIN      # down a chain
    assert door.counters.hits == 0
    resp, went = _ask(door, "near.example.")                 # next to it: untouched
    assert went == 0 and door.counters.hits == 1
    # 192.0.2.1 is in the disabled zone's /24: counted there, answered
    assert _addresses(_ask(door, "www.example.")[0]) == {"192.0.2.1"}
    assert door.counters.hits == 1
    assert gate.stats() == {"rpz.test.": {"nxdomain": 2}, "off.test.": {"disabled": 1}}
    # an AAAA record of the answer: 2001:db8::9 is in 2001:db8::/64 (PASSTHRU: counted)
    q = dns.message.make_query("six.example.", "A").to_wire()
    assert door.verdict(q, ALLOWED_ACL)[0] == "miss"


def test_passthru_and_a_disabled_zone_are_counted_on_cached_names():
    disabled = zone_of("www.example CNAME .\n", origin="off.test.", action_override="disabled")
    passthru = zone_of("other.example CNAME rpz-passthru.\n")
    door, engine, gate = _door(Policy([disabled, passthru]))
    assert _addresses(_ask(door, "www.example.")[0]) == {"192.0.2.1"}
    assert _addresses(_ask(door, "other.example.")[0]) == {"192.0.2.2"}
    assert door.counters.hits == 0 and gate.misses == 2
    assert gate.stats() == {"off.test.": {"disabled": 1}, "rpz.test.": {"passthru": 1}}


def test_a_policy_loaded_after_the_answer_was_cached_applies():
    door, engine, _ = _door(None)
    assert _addresses(_ask(door, "www.example.")[0]) == {"192.0.2.1"}
    assert door.counters.hits == 1
    # a policy with other names: still a hit
    gate = _Gate(Policy([zone_of(QNAMES)]))
    door.policy = gate
    assert _ask(door, "www.example.")[1] == 0 and door.counters.hits == 2
    # the gate's policy changes (a reload, a transfer): the door's policy is set again
    gate.policy = Policy([zone_of("www.example CNAME .\n")])
    door.policy = gate
    assert _ask(door, "www.example.")[0].rcode() == dns.rcode.NXDOMAIN
    assert door.counters.hits == 2 and gate.misses == 1
    # and taken away: the hit again
    door.policy = None
    assert _ask(door, "www.example.")[1] == 0 and door.counters.hits == 3


def test_a_gate_without_an_index_sends_every_query_to_it():
    class Bare:
        policy = None

        def miss(self, door, q, reply, t0, busy):
            self.asked = True
            return door.policy_start(q, reply, t0, busy, None)
    door, engine, _ = _door(None)
    door.policy = bare = Bare()
    _ask(door, "www.example.")
    assert bare.asked and door.counters.hits == 0


# ---- QNAME triggers on the names a CNAME chain leads to -----------------------------------------
def _chain(resp) -> list[tuple[str, str, str]]:
    return [(rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rd.to_text())
            for rrset in resp.answer for rd in rrset]


def _chained_door(*zones):
    """A door whose cache holds alias.example -> bad.example (A 192.0.2.4), mid.example ->
    bad.example -> www.example (A 192.0.2.1) and towild.example -> x.wild.example."""
    door, engine, gate = _door(Policy(list(zones)))
    r = door.resolver.r
    _cache(r, "mid.example.", ("mid.example.", "CNAME", "bad.example."),
           ("bad.example.", "CNAME", "www.example."), ("www.example.", "A", "192.0.2.1"))
    _cache(r, "towild.example.", ("towild.example.", "CNAME", "x.wild.example."),
           ("x.wild.example.", "A", "192.0.2.5"))
    return door, gate


ALIAS = ("alias.example.", "CNAME", "bad.example.")


def test_a_qname_trigger_on_a_cname_target_answers_after_the_cnames_that_lead_to_it():
    door, gate = _chained_door(zone_of(QNAMES))
    resp, _ = _ask(door, "alias.example.")                  # exact: NXDOMAIN
    assert resp.rcode() == dns.rcode.NXDOMAIN and _chain(resp) == [ALIAS]
    assert [rrset.name.to_text() for rrset in resp.authority] == ["rpz.test."]
    assert not resp.flags & dns.flags.AD and resp.flags & dns.flags.RA
    assert resp.flags & dns.flags.AA                        # the policy zone's, as Unbound
    resp, _ = _ask(door, "towild.example.")                 # wildcard above it: NODATA
    assert resp.rcode() == dns.rcode.NOERROR
    assert _chain(resp) == [("towild.example.", "CNAME", "x.wild.example.")]
    assert gate.stats() == {"rpz.test.": {"nxdomain": 1, "nodata": 1}}


def test_local_data_on_a_cname_target_is_the_answer_for_that_name():
    door, gate = _chained_door(zone_of("bad.example A 203.0.113.9\n"
                                       "bad.example TXT \"blocked\"\n"))
    resp, _ = _ask(door, "alias.example.")
    assert resp.rcode() == dns.rcode.NOERROR
    assert _chain(resp) == [ALIAS, ("bad.example.", "A", "203.0.113.9")]
    # the chain beyond the name met is not kept
    resp, _ = _ask(door, "mid.example.")
    assert _chain(resp) == [("mid.example.", "CNAME", "bad.example."),
                            ("bad.example.", "A", "203.0.113.9")]
    assert gate.stats() == {"rpz.test.": {"local-data": 2}}


def test_the_chain_is_checked_name_by_name_before_zone_by_zone():
    """mid.example -> bad.example -> www.example: bad.example, the first name of the chain
    a trigger meets, decides, although its zone comes after www.example's."""
    first = zone_of("www.example CNAME .\n", origin="first.test.")
    second = zone_of("bad.example CNAME *.\n", origin="second.test.")
    door, gate = _chained_door(first, second)
    resp, _ = _ask(door, "mid.example.")
    assert resp.rcode() == dns.rcode.NOERROR
    assert _chain(resp) == [("mid.example.", "CNAME", "bad.example.")]
    assert gate.stats() == {"second.test.": {"nodata": 1}}


def test_passthru_on_a_cname_target_ends_the_policy_for_the_query():
    passthru = zone_of("bad.example CNAME rpz-passthru.\n", origin="allow.test.")
    block = zone_of("bad.example CNAME .\nwww.example CNAME .\n"
                    "32.1.2.0.192.rpz-ip CNAME .\n", origin="block.test.")
    door, gate = _chained_door(passthru, block)
    resp, _ = _ask(door, "mid.example.")    # bad.example passes; www.example, its address too
    assert resp.rcode() == dns.rcode.NOERROR and _addresses(resp) == {"192.0.2.1"}
    assert len(_chain(resp)) == 3
    assert gate.stats() == {"allow.test.": {"passthru": 1}}


def test_drop_disabled_and_tcp_only_on_cname_targets():
    off = zone_of("bad.example CNAME .\n", origin="off.test.", action_override="disabled")
    drop = zone_of("bad.example CNAME rpz-drop.\n", origin="drop.test.")
    door, gate = _chained_door(off, drop)
    assert _ask(door, "alias.example.")[0] is None
    assert gate.stats() == {"off.test.": {"disabled": 1}, "drop.test.": {"drop": 1}}
    # TCP-ONLY leaves the answer as it is, and the chain's next name is still checked
    tcp = zone_of("bad.example CNAME rpz-tcp-only.\nwww.example CNAME .\n")
    door, gate = _chained_door(tcp)
    resp, _ = _ask(door, "alias.example.")
    assert resp.rcode() == dns.rcode.NOERROR and _addresses(resp) == {"192.0.2.4"}
    assert not resp.flags & dns.flags.TC
    resp, _ = _ask(door, "mid.example.")
    assert resp.rcode() == dns.rcode.NXDOMAIN
    assert _chain(resp) == [("mid.example.", "CNAME", "bad.example."),
                            ("bad.example.", "CNAME", "www.example.")]
    assert gate.stats() == {"rpz.test.": {"tcp-only": 2, "nxdomain": 1}}


def test_a_cname_rewrite_on_a_cname_target_and_its_log_line(caplog):
    """The rewrite's target is resolved for the same reply (a second miss the door starts,
    here answered from the cache) and answered after the chain and the rewrite's CNAME, AA
    clear, as Unbound answers it; the target's answer meets no trigger again."""
    door, gate = _chained_door(zone_of("bad.example CNAME walled.example.\n"
                                       "walled.example CNAME .\n", log=True, log_name="feed"))
    _cache(door.resolver.r, "walled.example.", ("walled.example.", "A", "192.0.2.77"))
    with caplog.at_level(logging.INFO, logger="resolver.rpz"):
        resp, _ = _ask(door, "alias.example.")
    assert resp.rcode() == dns.rcode.NOERROR and not resp.flags & dns.flags.AA
    assert _chain(resp) == [ALIAS, ("bad.example.", "CNAME", "walled.example."),
                            ("walled.example.", "A", "192.0.2.77")]
    assert gate.stats() == {"rpz.test.": {"cname": 1}}
    assert not door.misses and not door.inflight_by_client
    # the log names the name the trigger met
    assert [r.getMessage() for r in caplog.records] == [
        "rpz: applied [feed] bad.example. cname bad.example. A 192.0.2.200@qname"]


def test_an_answer_without_a_chain_to_a_trigger_is_untouched():
    door, gate = _chained_door(zone_of("nowhere.example CNAME .\n"))
    for name, address in (("alias.example.", "192.0.2.4"), ("www.example.", "192.0.2.1")):
        resp, _ = _ask(door, name)
        assert resp.rcode() == dns.rcode.NOERROR and _addresses(resp) == {address}
    assert gate.stats() == {}


# ---- the index against the policy's own look-ups ---------------------------------------------
LABELS = ["a", "b", "c", "wild", "*"]


def _name(labels) -> str:
    return ".".join(labels) + "." if labels else "."


@settings(max_examples=200, deadline=None)
@given(triggers=st.lists(st.lists(st.sampled_from(LABELS), min_size=1, max_size=3),
                         max_size=6),
       asked=st.lists(st.sampled_from(LABELS[:-1]), max_size=4),
       upper=st.booleans())
def test_the_index_says_touched_exactly_when_a_qname_trigger_matches(triggers, asked, upper):
    records = "".join(f"{_name(t).rstrip('.')} CNAME .\n" for t in triggers
                      if "*" not in t[1:])
    policy = Policy([zone_of(records)])
    name = dns.name.from_text(_name(asked).upper() if upper else _name(asked))
    matched = any(z.qname_rule(name.canonicalize()) is not None for z in policy.zones)
    wire = name.canonicalize().to_wire()
    assert policy.index.touches(wire) == matched
    # and the door, in C, on a cached answer for that name
    r = Resolver([("a.root-servers.net.", "192.0.2.1")])
    _cache(r, name.to_text(), (name.to_text(), "A", "192.0.2.9"))
    door = FrontDoor(r.cache.messages.table, _Engine(r))
    door.policy = PolicyGate(policy)
    verdict = door.verdict(dns.message.make_query(name, "A").to_wire(), ALLOWED_ACL)[0]
    assert verdict == ("miss" if matched else "hit")


def test_the_index_is_made_once_per_policy():
    policy = Policy([zone_of(QNAMES), zone_of("Mixed.Case CNAME .\n", origin="b.test.")])
    index = policy.index
    assert isinstance(index, TriggerIndex)
    assert index.exact == {b"\x03bad\x07example\x00", b"\x05mixed\x04case\x00"}
    assert index.wild == {b"\x04wild\x07example\x00"}
    assert policy.index is index


@settings(max_examples=200, deadline=None)
@given(nets=st.lists(st.tuples(st.sampled_from(["192.0.2.0", "198.51.100.128", "2001:db8::",
                                                "2001:db8:0:1::"]),
                               st.integers(0, 128)), max_size=5),
       address=st.sampled_from(["192.0.2.1", "192.0.3.1", "198.51.100.200", "198.51.100.1",
                                "2001:db8::1", "2001:db8:0:1::5", "2001:db9::1"]))
def test_the_index_holds_an_address_exactly_when_a_response_ip_trigger_does(nets, address):
    import ipaddress

    from resolver.policy.rpz import RESPONSE_IP, trigger_labels
    records = ""
    for net, prefix in nets:
        base = ipaddress.ip_address(net)
        prefix = min(prefix, base.max_prefixlen)
        if prefix == 0:
            continue
        labels = trigger_labels(ipaddress.ip_network(f"{net}/{prefix}", strict=False))
        records += f"{labels}.rpz-ip CNAME .\n"
    policy = Policy([zone_of(records)])
    a = ipaddress.ip_address(address)
    matched = policy.zones[0].ip_rule(RESPONSE_IP, [a]) is not None
    assert policy.index.holds(a.packed) == matched
    # and the door, in C, on a cached answer holding that address
    r = Resolver([("a.root-servers.net.", "192.0.2.1")])
    _cache(r, "host.example.", ("host.example.", "A" if a.version == 4 else "AAAA", address))
    door = FrontDoor(r.cache.messages.table, _Engine(r))
    door.policy = PolicyGate(policy)
    verdict = door.verdict(dns.message.make_query("host.example.", "A").to_wire(),
                           ALLOWED_ACL)[0]
    assert verdict == ("miss" if matched else "hit")


def test_an_entry_checked_under_one_policy_is_checked_again_under_the_next():
    """The door keeps its check of a cached entry with the entry, for the policy it was made
    under: a hit under a policy that does not touch the name, then a new policy (a reload,
    a transfer) that does: the name goes to the new policy at once; and back."""
    door, engine, gate = _door(Policy([zone_of(QNAMES)]))
    for _ in range(2):                                      # checked once, then kept
        resp, went = _ask(door, "www.example.")
        assert went == 0 and _addresses(resp) == {"192.0.2.1"}
    entry = door.resolver.r.cache.messages.table[
        parse_query(dns.message.make_query("www.example.", "A").to_wire())[0]]
    assert entry.screened != 0 and not entry.screen_touched
    gate.policy = Policy([zone_of("www.example CNAME .\n")])
    door.policy = gate                                      # as Server.set_policy does
    resp, _ = _ask(door, "www.example.")
    assert resp.rcode() == dns.rcode.NXDOMAIN and gate.misses == 1
    assert entry.screen_touched
    gate.policy = Policy([zone_of(QNAMES)])
    door.policy = gate
    resp, went = _ask(door, "www.example.")
    assert went == 0 and _addresses(resp) == {"192.0.2.1"} and gate.misses == 1
    assert not entry.screen_touched
    # another door over the same cache never takes this door's verdict: each policy set
    # has its own number
    other = FrontDoor(door.resolver.r.cache.messages.table, engine)
    other.policy = _Gate(Policy([zone_of("www.example CNAME .\n")]))
    assert other.verdict(dns.message.make_query("www.example.", "A").to_wire(),
                         ALLOWED_ACL)[0] == "miss"
    assert entry.screen_touched


def test_the_policy_path_reads_a_query_once_beside_the_doors_own_read(monkeypatch):
    """With a policy, the client's query is read twice at most: by the door's C parse and by
    the gate (dnspython), whichever path it takes: answered by a trigger on its name, on its
    chain's name, by a rewrite resolved as a second miss, or passed on to the engine."""
    door, gate = _chained_door(zone_of("bad.example CNAME walled.example.\n"
                                       "walled.example CNAME .\n"
                                       "blocked.example CNAME .\n"))
    _cache(door.resolver.r, "walled.example.", ("walled.example.", "A", "192.0.2.77"))
    reads: list[bytes] = []
    parse = dns.message.from_wire

    def counted(wire, *args, **kwargs):
        reads.append(bytes(wire))
        return parse(wire, *args, **kwargs)
    monkeypatch.setattr(dns.message, "from_wire", counted)
    for name in ("blocked.example.", "alias.example.", "bad.example.", "mid.example.",
                 "nowhere.example."):
        reads.clear()
        q = dns.message.make_query(name, "A")
        q.id = 4242
        got = []
        reply = CallReply("udp", ("192.0.2.200", 5353), got.append, lambda: got.append(None))
        door.handle(q.to_wire(), ALLOWED_ACL, reply)
        assert len(got) == 1 and got[0] is not None, name
        assert reads.count(q.to_wire()) == 1, (name, reads)


@settings(max_examples=200, deadline=None)
@given(nets=st.lists(st.tuples(st.sampled_from(["10.0.0.0", "10.0.9.128", "2001:db8::",
                                                "2001:db8:0:1::"]),
                               st.integers(1, 128)), max_size=5),
       address=st.sampled_from(["10.0.0.1", "10.0.9.200", "10.1.0.1", "2001:db8::1",
                                "2001:db8:0:1::5", "2001:db9::1"]),
       kind=st.sampled_from(["rpz-client-ip", "rpz-nsip"]))
def test_the_index_holds_a_client_or_server_exactly_when_its_trigger_does(nets, address,
                                                                         kind):
    """Client-IP networks against the client's address (the door, in C, on each query),
    NSIP networks against a cached name's server (the door's screen of the entry)."""
    import ipaddress

    from resolver.policy.rpz import CLIENT_IP, NSIP, trigger_labels
    records = ""
    for net, prefix in nets:
        prefix = min(prefix, ipaddress.ip_address(net).max_prefixlen)
        labels = trigger_labels(ipaddress.ip_network(f"{net}/{prefix}", strict=False))
        records += f"{labels}.{kind} CNAME .\n"
    policy = Policy([zone_of(records)])
    a = ipaddress.ip_address(address)
    matched = policy.zones[0].ip_rule(CLIENT_IP if kind == "rpz-client-ip" else NSIP,
                                      [a]) is not None
    index = policy.index
    door, engine, gate = _door(policy)
    r = door.resolver.r
    q = dns.message.make_query("www.example.", "A").to_wire()
    if kind == "rpz-client-ip":
        assert index.holds_client(a.packed) == matched
        verdict = door.verdict(q, ALLOWED_ACL, client=(address, 53))[0]
    else:
        assert index.ns_touches([], [a.packed]) == matched
        w = lambda text: dns.name.from_text(text).to_wire()        # noqa: E731
        r.cache.rrsets.store_records([(w("example."), 2, 1, 300, w("ns.example.net."))], 3,
                                     time.monotonic())
        r.cache.rrsets.store_records([(w("ns.example.net."), 1 if a.version == 4 else 28, 1,
                                       300, a.packed)], 3, time.monotonic())
        verdict = door.verdict(q, ALLOWED_ACL, client=("192.0.2.200", 53))[0]
    assert verdict == ("miss" if matched else "hit")


@settings(max_examples=200, deadline=None)
@given(triggers=st.lists(st.lists(st.sampled_from(LABELS), min_size=1, max_size=3),
                         max_size=6),
       server=st.lists(st.sampled_from(LABELS[:-1]), min_size=1, max_size=4))
def test_the_index_says_touched_exactly_when_an_nsdname_trigger_matches(triggers, server):
    records = "".join(f"{_name(t).rstrip('.')}.rpz-nsdname CNAME .\n" for t in triggers
                      if "*" not in t[1:])
    policy = Policy([zone_of(records)])
    name = dns.name.from_text(_name(server))
    matched = policy.zones[0].nsdname_rule([name]) is not None
    assert policy.index.ns_touches([name.canonicalize().to_wire()], []) == matched
    door, engine, gate = _door(policy)
    _servers(door.resolver.r, "example.", (name.to_text(), None))
    verdict = door.verdict(dns.message.make_query("www.example.", "A").to_wire(),
                           ALLOWED_ACL)[0]
    assert verdict == ("miss" if matched else "hit")
