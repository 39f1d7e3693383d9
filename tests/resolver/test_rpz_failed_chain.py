"""A QNAME trigger met within a CNAME chain whose resolution fails, in process: the chain
too long to finish (more than ``max-cname-chain`` links), a loop, a link whose target
failed. The real engine resolves from its rrset cache (no network), behind the front door
and the policy gate: the policy sees the names the chain reached, in order, and a trigger
on one of them answers as for a chain that finishes (the CNAMEs up to the name met kept),
as Unbound checks each CNAME target as its iterator follows it. Without a match the
answer is the SERVFAIL it was, with no record of the chain."""
from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest

from resolver import Resolver
from resolver import cache as C
from resolver.daemon.admission import ALLOWED_ACL, CallReply, FrontDoor
from resolver.daemon.rpz_gate import PolicyGate
from resolver.policy.rpz import Policy
from test_rpz_door import zone_of

LINKS = 13      # l0.example -> l1.example -> ... -> l13.example: past max-cname-chain (11)


def _w(name: str) -> bytes:
    return dns.name.from_text(name).to_wire()


def _engine() -> Resolver:
    """A resolver whose rrset cache holds the chain l0 .. l13 (LINKS links, l13 without
    data), the loop a0 -> a1 -> a2 -> a0, b0 -> b1 -> b2 with b2's A a remembered
    failure, and t.example's A."""
    r = Resolver([("a.root-servers.net.", "192.0.2.1")])
    assert r.limits.max_cname_chain == 11
    now = r.clock()
    links = [(f"l{i}.example.", f"l{i + 1}.example.") for i in range(LINKS)]
    links += [("a0.example.", "a1.example."), ("a1.example.", "a2.example."),
              ("a2.example.", "a0.example."),
              ("b0.example.", "b1.example."), ("b1.example.", "b2.example.")]
    for owner, target in links:
        r.cache.rrsets.store_records([(_w(owner), 5, 1, 300, _w(target))], C.AUTH_ANSWER, now)
    r.cache.rrsets.store_records([(_w("t.example."), 1, 1, 300, bytes([192, 0, 2, 9]))],
                                 C.AUTH_ANSWER, now)
    r.cache.remember_failure((_w("b2.example."), 1, 1), "all servers timed out", now)
    return r


def _door(*zones):
    r = _engine()
    door = FrontDoor(r.cache.messages.table, r)
    gate = None
    if zones:
        gate = PolicyGate(Policy(list(zones)))
        door.policy = gate
    return door, gate


def _ask(door, name: str, dnssec: bool = False):
    """``name`` A over UDP: the answer, or None when dropped. Every name here resolves
    from the cache, so the door has answered before ``handle`` returns."""
    got = []
    reply = CallReply("udp", ("192.0.2.200", 5353), got.append, lambda: got.append(None))
    q = dns.message.make_query(name, "A", want_dnssec=dnssec)
    door.handle(q.to_wire(), ALLOWED_ACL, reply)
    assert len(got) == 1
    return None if got[0] is None else dns.message.from_wire(got[0])


def _chain(resp) -> list[tuple[str, str, str]]:
    return [(rrset.name.to_text(), dns.rdatatype.to_text(rrset.rdtype), rd.to_text())
            for rrset in resp.answer for rd in rrset]


def _links(start: int, upto: int, prefix: str = "l") -> list[tuple[str, str, str]]:
    return [(f"{prefix}{i}.example.", "CNAME", f"{prefix}{i + 1}.example.")
            for i in range(start, upto)]


def test_without_a_policy_a_chain_too_long_is_servfail_without_its_records():
    door, _ = _door()
    for dnssec in (False, True):
        resp = _ask(door, "l0.example.", dnssec)
        assert resp.rcode() == dns.rcode.SERVFAIL
        assert not resp.answer and not resp.authority


@pytest.mark.parametrize("rules", ["nothing.example CNAME .\n",        # no name of it
                                   "l13.example CNAME .\n",            # past the limit
                                   "l3.example CNAME rpz-tcp-only.\n"])  # changes nothing
def test_with_no_match_in_the_chain_the_servfail_leaks_nothing(rules):
    door, gate = _door(zone_of(rules))
    resp = _ask(door, "l0.example.")
    assert resp.rcode() == dns.rcode.SERVFAIL
    assert not resp.answer and not resp.authority
    assert not gate.stats().get("rpz.test.", {}).get("nxdomain")


def test_nxdomain_on_link_3_of_a_chain_too_long_answers_after_the_cnames_to_it():
    door, gate = _door(zone_of("l3.example CNAME .\n"))
    resp = _ask(door, "l0.example.")
    assert resp.rcode() == dns.rcode.NXDOMAIN
    assert _chain(resp) == _links(0, 3)
    assert [rrset.name.to_text() for rrset in resp.authority] == ["rpz.test."]
    assert resp.flags & dns.flags.AA and resp.flags & dns.flags.RA
    assert not resp.flags & dns.flags.AD
    assert gate.stats() == {"rpz.test.": {"nxdomain": 1}}


def test_local_data_on_link_3_is_the_answer_for_that_name():
    door, gate = _door(zone_of("l3.example A 203.0.113.3\n"))
    resp = _ask(door, "l0.example.")
    assert resp.rcode() == dns.rcode.NOERROR
    assert _chain(resp) == _links(0, 3) + [("l3.example.", "A", "203.0.113.3")]
    assert gate.stats() == {"rpz.test.": {"local-data": 1}}


def test_drop_on_link_3_sends_nothing():
    door, gate = _door(zone_of("l3.example CNAME rpz-drop.\n"))
    assert _ask(door, "l0.example.") is None
    assert gate.stats() == {"rpz.test.": {"drop": 1}}


def test_passthru_on_link_3_leaves_the_servfail_as_it_is():
    """PASSTHRU ends the policy for the query: the block further down (and in the next
    zone) is not applied, and the failure goes out without the chain."""
    door, gate = _door(zone_of("l3.example CNAME rpz-passthru.\n", "allow.rpz."),
                       zone_of("l3.example CNAME .\nl5.example CNAME .\n"))
    resp = _ask(door, "l0.example.")
    assert resp.rcode() == dns.rcode.SERVFAIL
    assert not resp.answer and not resp.authority
    assert gate.stats() == {"allow.rpz.": {"passthru": 1}}


def test_the_last_name_the_chain_reaches_is_checked_too():
    """max-cname-chain links are followed, and one more names the last target reached (as
    Unbound checks a CNAME's target before it counts the restart that would fail)."""
    door, _ = _door(zone_of("l12.example CNAME .\n"))
    resp = _ask(door, "l0.example.")
    assert resp.rcode() == dns.rcode.NXDOMAIN
    assert _chain(resp) == _links(0, 12)


def test_a_cname_rewrite_on_link_3_resolves_its_target():
    """The CNAMEs that led to the name met, the rewrite's CNAME, then what its target
    resolves to."""
    door, gate = _door(zone_of("l3.example CNAME t.example.\n"))
    resp = _ask(door, "l0.example.")
    assert resp.rcode() == dns.rcode.NOERROR
    assert _chain(resp) == _links(0, 3) + [("l3.example.", "CNAME", "t.example."),
                                           ("t.example.", "A", "192.0.2.9")]
    assert not resp.flags & dns.flags.AA
    assert gate.stats() == {"rpz.test.": {"cname": 1}}


def test_a_trigger_before_a_loop_applies():
    door, gate = _door(zone_of("a2.example CNAME .\n"))
    resp = _ask(door, "a0.example.")
    assert resp.rcode() == dns.rcode.NXDOMAIN
    assert _chain(resp) == _links(0, 2, "a")
    # asked from the loop's middle: a2, then a0, then a1 again where it loops
    door, gate = _door(zone_of("a0.example A 203.0.113.10\n"))
    resp = _ask(door, "a1.example.")
    assert resp.rcode() == dns.rcode.NOERROR
    assert _chain(resp) == [("a1.example.", "CNAME", "a2.example."),
                            ("a2.example.", "CNAME", "a0.example."),
                            ("a0.example.", "A", "203.0.113.10")]


def test_a_loop_without_a_trigger_is_servfail_without_records():
    door, _ = _door(zone_of("b1.example CNAME .\n"))
    resp = _ask(door, "a0.example.")
    assert resp.rcode() == dns.rcode.SERVFAIL and not resp.answer


def test_a_trigger_before_a_link_whose_target_failed_applies():
    door, gate = _door(zone_of("b1.example CNAME .\n"))
    resp = _ask(door, "b0.example.")
    assert resp.rcode() == dns.rcode.NXDOMAIN
    assert _chain(resp) == _links(0, 1, "b")
    door, _ = _door(zone_of("a1.example CNAME .\n"))
    resp = _ask(door, "b0.example.")                       # not on this chain
    assert resp.rcode() == dns.rcode.SERVFAIL and not resp.answer


def _miss(r: Resolver, name: str):
    """``name`` A started as the door starts a miss, resolved from the cache: (the query,
    the Drive, the response it handed to its done, which has returned by now)."""
    handed = []
    q = dns.message.make_query(name, "A").to_wire()
    d = r.start_miss(q, lambda drive, out: handed.append((drive, out)), None)
    assert d.finished and len(handed) == 1 and handed[0][0] is d
    return q, d, handed[0][1]


def test_a_drive_keeps_the_chain_of_its_failure_after_its_done():
    """``Drive.failed_chain``: the SERVFAIL with the chain followed, for as long as the
    Drive is held; None for a failure that followed no link and for an answer."""
    r = _engine()
    q, d, out = _miss(r, "l0.example.")
    handed = dns.message.from_wire(out)
    assert handed.rcode() == dns.rcode.SERVFAIL and not handed.answer
    chain = d.failed_chain()
    with_chain = dns.message.from_wire(chain)
    assert with_chain.rcode() == dns.rcode.SERVFAIL and _chain(with_chain) == _links(0, 12)
    assert with_chain.id == dns.message.from_wire(q).id
    assert d.failed_chain() == chain                        # asked again, the same
    _, d, out = _miss(r, "a0.example.")                     # a loop
    assert _chain(dns.message.from_wire(d.failed_chain())) == _links(0, 2, "a") + [
        ("a2.example.", "CNAME", "a0.example.")]
    _, d, out = _miss(r, "b2.example.")                     # failed, no link followed
    assert dns.message.from_wire(out).rcode() == dns.rcode.SERVFAIL
    assert d.failed_chain() is None
    _, d, out = _miss(r, "t.example.")                      # answered
    assert dns.message.from_wire(out).rcode() == dns.rcode.NOERROR
    assert d.failed_chain() is None


def test_the_check_reads_the_chain_from_the_miss_it_is_handed():
    """The policy's check gets the miss that resolved the answer (``rewrite(out, miss)``),
    so it needs no call in progress: run after the Drive's done has returned, it still
    meets the trigger on link 3. A SERVFAIL handed without its miss goes out as it came."""
    r = _engine()
    gate = PolicyGate(Policy([zone_of("l3.example CNAME .\n")]))
    q, d, out = _miss(r, "l0.example.")
    check = gate.checker(q, dns.message.from_wire(q), "192.0.2.200", "udp")
    assert check(out, None) is out
    resp = dns.message.from_wire(check(out, d))
    assert resp.rcode() == dns.rcode.NXDOMAIN and _chain(resp) == _links(0, 3)
    assert gate.stats() == {"rpz.test.": {"nxdomain": 1}}


def test_with_a_shared_cache_the_chain_comes_through_its_lookup(run, redis_shared):
    """With a shared cache the door's miss is a ``Lookup`` (Redis first, then a Drive),
    which gives its Drive's chain: the trigger on link 3 applies as without one."""
    r = _engine()
    shared = r.shared = redis_shared()
    door = FrontDoor(r.cache.messages.table, r)
    door.policy = PolicyGate(Policy([zone_of("l3.example CNAME .\n")]))
    q = dns.message.make_query("l0.example.", "A").to_wire()

    async def go():
        door.loop = asyncio.get_running_loop()
        got = door.loop.create_future()
        reply = CallReply("udp", ("192.0.2.200", 5353), got.set_result,
                          lambda: got.set_result(None))
        door.handle(q, ALLOWED_ACL, reply)
        try:
            return await asyncio.wait_for(got, 5)
        finally:
            await shared.close()
    out = run(go())
    assert shared.counters["lookups"] == 1 and shared.counters["misses"] == 1
    resp = dns.message.from_wire(out)
    assert resp.rcode() == dns.rcode.NXDOMAIN and _chain(resp) == _links(0, 3)
