"""The response policy (resolver.policy.rpz), sans-IO: triggers, actions, override, zone
order, wildcards and the IP trigger encoding."""
import ipaddress

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import dns.zone
import pytest
from hypothesis import given, settings, strategies as st

from resolver.policy import rpz
from resolver.policy.rpz import (CLIENT_IP, CNAME, DISABLED, DROP, LOCAL_DATA, NODATA,
                                 NXDOMAIN, PASSTHRU, QNAME, RESPONSE_IP, TCP_ONLY, Policy,
                                 PolicyError, PolicyZone, ZoneOptions)

ZONE = """
$TTL 60
@ SOA ns. hostmaster. 7 3600 600 86400 30
@ NS ns.
bad.example CNAME .
nodata.example CNAME *.
pass.bad.example CNAME rpz-passthru.
drop.example CNAME rpz-drop.
tcp.example CNAME rpz-tcp-only.
*.wild.example CNAME .
deep.wild.example CNAME rpz-passthru.
*.a.b.wild2.example CNAME rpz-drop.
*.b.wild2.example CNAME .
local.example A 192.0.2.7
local.example TXT "blocked"
redirect.example CNAME walled.garden.
*.prefixed.example CNAME *.sink.
32.1.2.0.192.rpz-ip CNAME .
24.0.2.0.198.rpz-ip CNAME *.
28.0.2.0.198.rpz-ip A 203.0.113.9
64.zz.db8.2001.rpz-ip CNAME .
32.9.9.0.10.rpz-client-ip CNAME rpz-drop.
ns.rpz-nsdname CNAME .
"""


def zone_of(text=ZONE, origin="rpz.test.", **opts):
    z = dns.zone.from_text(text, origin=origin, relativize=False, check_origin=False)
    return PolicyZone(z.origin, z.iterate_rdatasets(), ZoneOptions(**opts))


def n(text):
    return dns.name.from_text(text)


@pytest.fixture(scope="module")
def zone():
    return zone_of()


def action(policy, qname, client=None):
    m, _ = policy.before(n(qname), client)
    return None if m is None else m.action


def test_qname_actions(zone):
    p = Policy([zone])
    assert action(p, "bad.example.") == NXDOMAIN
    assert action(p, "BAD.Example.") == NXDOMAIN
    assert action(p, "nodata.example.") == NODATA
    assert action(p, "pass.bad.example.") == PASSTHRU
    assert action(p, "drop.example.") == DROP
    assert action(p, "tcp.example.") == TCP_ONLY
    assert action(p, "local.example.") == LOCAL_DATA
    assert action(p, "redirect.example.") == CNAME
    # an exact trigger does not cover the names below it, nor the name above
    assert action(p, "x.bad.example.") is None
    assert action(p, "example.") is None
    assert action(p, "good.example.") is None
    assert action(p, "ns.") is None           # an NSDNAME trigger is no QNAME trigger
    assert zone.ignored == 0


def test_wildcards(zone):
    p = Policy([zone])
    assert action(p, "x.wild.example.") == NXDOMAIN
    assert action(p, "a.b.c.wild.example.") == NXDOMAIN
    assert action(p, "wild.example.") is None            # *. covers only names below
    assert action(p, "deep.wild.example.") == PASSTHRU    # exact before wildcard
    assert action(p, "x.deep.wild.example.") == NXDOMAIN
    # the longest wildcard wins
    assert action(p, "x.a.b.wild2.example.") == DROP
    assert action(p, "x.b.wild2.example.") == NXDOMAIN
    assert action(p, "a.b.wild2.example.") == NXDOMAIN


def test_client_ip_comes_before_qname(zone):
    p = Policy([zone])
    assert action(p, "bad.example.", "10.0.9.9") == DROP
    assert action(p, "good.example.", "10.0.9.9") == DROP
    assert action(p, "bad.example.", "10.0.9.8") == NXDOMAIN
    m, _ = p.before(n("good.example."), "10.0.9.9")
    assert m.trigger == CLIENT_IP and m.at == "32.9.9.0.10.rpz-client-ip"


def test_response_ip_longest_prefix(zone):
    p = Policy([zone])
    ip = ipaddress.ip_address

    def after(*addrs):
        m, _ = p.after([ip(a) for a in addrs])
        return None if m is None else (m.action, m.at)
    assert after("192.0.2.1") == (NXDOMAIN, "32.1.2.0.192.rpz-ip")
    assert after("192.0.2.2") is None
    assert after("198.0.2.200") == (NODATA, "24.0.2.0.198.rpz-ip")
    assert after("198.0.2.5") == (LOCAL_DATA, "28.0.2.0.198.rpz-ip")   # /28 beats /24
    assert after("10.1.1.1", "198.0.2.5") == (LOCAL_DATA, "28.0.2.0.198.rpz-ip")
    assert after("2001:db8::1234") == (NXDOMAIN, "64.zz.db8.2001.rpz-ip")
    assert after("2001:db8:0:1::1") is None
    assert after() is None


def test_nsdname_and_nsip():
    z = zone_of("""
@ SOA ns. h. 1 3600 600 86400 30
ns1.evil.net.rpz-nsdname CNAME .
*.bad-hoster.net.rpz-nsdname CNAME rpz-drop.
24.0.113.0.203.rpz-nsip CNAME *.
32.1.2.0.192.rpz-ip CNAME rpz-passthru.
""")
    p = Policy([z])
    ip = ipaddress.ip_address
    assert p.has_ns and p.has_response_ip

    def after(addrs=(), names=(), ns_addrs=()):
        m, _ = p.after([ip(a) for a in addrs], [n(x) for x in names],
                       [ip(a) for a in ns_addrs])
        return None if m is None else (m.trigger, m.action, m.at)
    assert after(names=["NS1.evil.net."]) == ("nsdname", NXDOMAIN, "ns1.evil.net.rpz-nsdname")
    assert after(names=["ns2.evil.net."]) is None
    assert after(names=["a.ns.bad-hoster.net."]) == ("nsdname", DROP,
                                                     "*.bad-hoster.net.rpz-nsdname")
    assert after(names=["bad-hoster.net."]) is None
    assert after(ns_addrs=["203.0.113.77"]) == ("nsip", NODATA, "24.0.113.0.203.rpz-nsip")
    # within a zone: response IP, then NSDNAME, then NSIP
    assert after(["192.0.2.1"], ["ns1.evil.net."], ["203.0.113.77"])[0] == "response-ip"
    assert after(["192.0.2.9"], ["ns1.evil.net."], ["203.0.113.77"])[0] == "nsdname"
    assert after(["192.0.2.9"], ["ns.good."], ["203.0.113.77"])[0] == "nsip"
    # a zone without such triggers asks for no name servers
    assert not Policy([zone_of("@ SOA ns. h. 1 3600 600 86400 30\nx CNAME .\n")]).has_ns
    assert Policy([zone_of()]).has_ns


def test_zone_order_first_match_wins(zone):
    other = zone_of("""
@ SOA ns. h. 1 3600 600 86400 30
good.example CNAME rpz-drop.
bad.example CNAME rpz-passthru.
""", origin="second.test.")
    p = Policy([zone, other])
    assert action(p, "bad.example.") == NXDOMAIN
    assert action(p, "good.example.") == DROP
    p = Policy([other, zone])
    assert action(p, "bad.example.") == PASSTHRU
    assert p.before(n("bad.example."), None)[0].zone is other


def test_action_override_and_disabled(zone):
    forced = zone_of(action_override=NODATA)
    assert action(Policy([forced]), "bad.example.") == NODATA
    assert action(Policy([forced]), "pass.bad.example.") == NODATA
    cname = zone_of(action_override=CNAME, cname_override=n("walled.garden."))
    m, _ = Policy([cname]).before(n("bad.example."), None)
    assert m.action == CNAME and m.rule.target == n("walled.garden.")
    off = zone_of(action_override=DISABLED, origin="off.test.")
    p = Policy([off, zone_of("""
@ SOA ns. h. 1 3600 600 86400 30
bad.example CNAME rpz-drop.
""", origin="second.test.")])
    m, disabled = p.before(n("bad.example."), None)
    assert m.action == DROP and [d.zone.name for d in disabled] == ["off.test."]
    assert Policy([off]).before(n("bad.example."), None)[0] is None


def query(qname, rdtype="A"):
    q = dns.message.make_query(qname, rdtype, want_dnssec=True)
    q.flags |= dns.flags.AD
    return q


def test_responses(zone):
    p = Policy([zone])

    def answer(qname, rdtype="A"):
        q = query(qname, rdtype)
        m, _ = p.before(q.question[0].name, None)
        return rpz.respond(q, m)
    r = answer("bad.example.")
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.answer
    assert not r.flags & dns.flags.AD and r.flags & dns.flags.RA
    assert r.authority[0].name == n("rpz.test.") and r.authority[0].ttl == 30
    r = answer("nodata.example.")
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    r = answer("local.example.")
    assert [rd.address for rd in r.answer[0]] == ["192.0.2.7"]
    assert r.answer[0].name == n("local.example.") and not r.flags & dns.flags.AD
    r = answer("local.example.", "TXT")
    assert r.answer[0][0].strings == (b"blocked",)
    r = answer("local.example.", "MX")                   # data at the name, not that type
    assert r.rcode() == dns.rcode.NOERROR and not r.answer
    signal = zone_of(signal_nxdomain_ra=True)
    q = query("bad.example.")
    r = rpz.respond(q, Policy([signal]).before(n("bad.example."), None)[0])
    assert r.rcode() == dns.rcode.NXDOMAIN and not r.flags & dns.flags.RA


def test_cname_rewrite(zone):
    p = Policy([zone])
    q = query("redirect.example.")
    m, _ = p.before(n("redirect.example."), None)
    target = rpz.cname_target(m, n("redirect.example."))
    assert target == n("walled.garden.")
    resolved = dns.message.make_response(dns.message.make_query(target, "A"))
    resolved.answer.append(dns.rrset.from_text(target, 60, "IN", "A", "203.0.113.1"))
    resolved.flags |= dns.flags.AD
    r = rpz.rewrite(q, m, target, resolved)
    assert [rr.rdtype for rr in r.answer] == [dns.rdatatype.CNAME, dns.rdatatype.A]
    assert r.answer[0][0].target == target and r.id == q.id
    assert not r.flags & dns.flags.AD
    assert rpz.rewrite(q, m, target, None).rcode() == dns.rcode.SERVFAIL
    m, _ = p.before(n("www.x.prefixed.example."), None)
    assert rpz.cname_target(m, n("www.x.prefixed.example.")) == n(
        "www.x.prefixed.example.sink.")


def test_record_bound():
    z = dns.zone.from_text(ZONE, origin="rpz.test.", relativize=False, check_origin=False)
    with pytest.raises(PolicyError, match="more than 5 records"):
        PolicyZone(z.origin, z.iterate_rdatasets(), max_records=5)


def test_bad_ip_triggers_are_counted_not_applied():
    z = zone_of("""
@ SOA ns. h. 1 3600 600 86400 30
33.1.2.0.192.rpz-ip CNAME .
32.1.2.0.rpz-ip CNAME .
x.1.2.0.192.rpz-ip CNAME .
64.zz.db8.zz.2001.rpz-ip CNAME .
""")
    assert z.ignored == 4 and len(z) == 0


# ---- the IP encoding, against ipaddress ---------------------------------------------------------
networks = st.one_of(
    st.builds(lambda a, p: ipaddress.ip_network((a, p), strict=False),
              st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address), st.integers(1, 32)),
    st.builds(lambda a, p: ipaddress.ip_network((a, p), strict=False),
              st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address), st.integers(1, 128)))


@settings(max_examples=300, deadline=None)
@given(networks)
def test_ip_encoding_round_trip(net):
    labels = rpz.trigger_labels(net)
    assert rpz.network_of(label.encode() for label in labels.split(".")) == net
    first, *rest = labels.split(".")
    assert int(first) == net.prefixlen
    if net.version == 4:
        assert ".".join(reversed(rest)) == str(net.network_address)
    else:
        assert rest.count("zz") <= 1


@settings(max_examples=200, deadline=None)
@given(networks, st.integers(0, 2**128 - 1))
def test_ip_trigger_matches_exactly_its_network(net, bits):
    z = zone_of(f"@ SOA ns. h. 1 3600 600 86400 30\n{rpz.trigger_labels(net)}.rpz-ip CNAME .\n")
    p = Policy([z])
    inside = net.network_address + (bits % net.num_addresses)
    outside_bits = bits % (2 ** net.max_prefixlen)
    outside = ipaddress.ip_address(outside_bits) if net.version == 6 else \
        ipaddress.IPv4Address(outside_bits % 2**32)
    assert p.after([inside])[0].action == NXDOMAIN
    assert (p.after([outside])[0] is not None) == (outside in net)


def test_the_names_a_cname_chain_leads_to():
    q = dns.message.make_query("a.example.", "A")
    r = dns.message.make_response(q)
    for text in ("c.example. 60 IN CNAME d.example.", "A.Example. 60 IN CNAME b.example.",
                 "b.example. 60 IN CNAME c.example.", "d.example. 60 IN A 192.0.2.1",
                 "x.example. 60 IN CNAME y.example."):
        owner, ttl, rdclass, rdtype, data = text.split()
        r.answer.append(dns.rrset.from_text(owner, int(ttl), rdclass, rdtype, data))
    chain = rpz.cname_chain(r, dns.name.from_text("a.example."))
    # in the chain's order, whatever the section's; (rrsets up to the CNAME naming it, name)
    assert [(n, name.to_text()) for n, name in chain] == [
        (2, "b.example."), (3, "c.example."), (1, "d.example.")]
    assert rpz.cname_chain(r, dns.name.from_text("d.example.")) == []
    loop = dns.message.make_response(q)
    loop.answer.append(dns.rrset.from_text("a.example.", 60, "IN", "CNAME", "b.example."))
    loop.answer.append(dns.rrset.from_text("b.example.", 60, "IN", "CNAME", "a.example."))
    assert [name.to_text() for _, name in
            rpz.cname_chain(loop, dns.name.from_text("a.example."))] == ["b.example."]


def test_qname_alone_for_a_chain_name():
    head = "$TTL 60\n@ SOA ns. hostmaster. 1 3600 600 86400 30\n"
    client = zone_of(head + "32.200.2.0.192.rpz-client-ip CNAME .\n", origin="c.test.")
    off = zone_of(head + "*.example CNAME .\n", origin="off.test.",
                  action_override="disabled")
    qnames = zone_of(head + "bad.example A 203.0.113.9\n")
    p = Policy([client, off, qnames])
    assert p.has_qname and not Policy([client]).has_qname
    m, disabled = p.qname(dns.name.from_text("BAD.example."))
    assert m.zone is qnames and m.action == LOCAL_DATA and m.at == "bad.example."
    assert [d.zone for d in disabled] == [off]
    assert p.qname(dns.name.from_text("good.test.")) == (None, [])
