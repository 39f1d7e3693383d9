"""DNS64's sans-IO room (resolver.dns64): RFC 6052 address embedding, prefix checks, the
decision for an AAAA result and the synthesised answer; and the root key sentinel's
(resolver.dnssec.sentinel) label reading."""
from __future__ import annotations

import ipaddress

import dns.name
import dns.reversename
import pytest
from hypothesis import given, settings, strategies as st

from resolver import dns64
from resolver.dnssec import sentinel
from resolver.dnssec.trust_anchor import load as load_anchor
from resolver.iterator import BOGUS, NOERROR, NXDOMAIN, SECURE, SERVFAIL, Result

A, CNAME, SOA, AAAA, RRSIG, PTR = 1, 5, 6, 28, 46, 12


def W(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


#: RFC 6052 2.4, the table of examples: (prefix, IPv4 address, IPv4-embedded IPv6 address)
RFC6052_EXAMPLES = [
    ("2001:db8::/32", "192.0.2.33", "2001:db8:c000:221::"),
    ("2001:db8:100::/40", "192.0.2.33", "2001:db8:1c0:2:21::"),
    ("2001:db8:122::/48", "192.0.2.33", "2001:db8:122:c000:2:2100::"),
    ("2001:db8:122:300::/56", "192.0.2.33", "2001:db8:122:3c0:0:221::"),
    ("2001:db8:122:344::/64", "192.0.2.33", "2001:db8:122:344:c0:2:2100:0"),
    ("2001:db8:122:344::/96", "192.0.2.33", "2001:db8:122:344::192.0.2.33"),
    ("64:ff9b::/96", "192.0.2.33", "64:ff9b::192.0.2.33"),
]


@pytest.mark.parametrize("prefix,v4,v6", RFC6052_EXAMPLES)
def test_embedding_matches_rfc6052_examples(prefix, v4, v6):
    net = dns64.parse_prefix(prefix)
    assert dns64.embed(net, v4) == ipaddress.IPv6Address(v6)
    assert dns64.extract(net, v6) == ipaddress.IPv4Address(v4)


PREFIXES = [p for p, _, _ in RFC6052_EXAMPLES]


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from(PREFIXES), x=st.integers(0, 2**32 - 1))
def test_every_ipv4_address_round_trips(prefix, x):
    net = dns64.parse_prefix(prefix)
    v4 = ipaddress.IPv4Address(x)
    v6 = dns64.embed(net, v4)
    assert v6 in net
    assert int(v6) >> 56 & 0xFF == 0 or net.prefixlen == 96      # the u octet stays zero
    assert dns64.extract(net, v6) == v4


@settings(max_examples=100, deadline=None)
@given(x=st.integers(0, 2**32 - 1), prefix=st.sampled_from(PREFIXES[:-2]))
def test_an_address_with_the_u_octet_set_is_not_extracted(x, prefix):
    net = dns64.parse_prefix(prefix)
    v6 = int(dns64.embed(net, ipaddress.IPv4Address(x))) | (1 << 56)
    assert dns64.extract(net, ipaddress.IPv6Address(v6)) is None


@pytest.mark.parametrize("bad,why", [
    ("64:ff9b::/80", "prefix length"),
    ("64:ff9b::/120", "prefix length"),
    ("64:ff9b::", "prefix length"),
    ("64:ff9b::1/96", "not an IPv6 prefix"),          # bits set past the length
    ("2001:db8:0:0:ff00::/96", "bits 64 to 71"),      # the u octet
    ("192.0.2.0/24", "not an IPv6 prefix"),
    ("nonsense", "not an IPv6 prefix"),
])
def test_bad_prefixes_are_refused_with_the_reason(bad, why):
    with pytest.raises(ValueError, match=why):
        dns64.parse_prefix(bad)


def test_address_outside_the_prefix_is_not_extracted():
    net = dns64.parse_prefix("64:ff9b::/96")
    assert dns64.extract(net, "2001:db8::192.0.2.1") is None


# ---- the decision ------------------------------------------------------------------------

Q = W("host.example.")
END = W("end.example.")
SOA_RDATA = W("ns.example.") + W("admin.example.") + bytes(16) + (120).to_bytes(4, "big")


def aaaa_rec(owner, text, ttl=300):
    return (owner, AAAA, 1, ttl, ipaddress.IPv6Address(text).packed)


def a_rec(owner, text, ttl=300):
    return (owner, A, 1, ttl, ipaddress.IPv4Address(text).packed)


def nodata(answer=(), soa_ttl=3600):
    return Result(NOERROR, list(answer), [(W("example."), SOA, 1, soa_ttl, SOA_RDATA)])


def test_nodata_is_synthesised_from_the_a_records():
    d = dns64.Dns64()
    res = nodata()
    assert d.target(Q, res) == Q.lower()
    out = d.synthesize(Q, res, Result(NOERROR, [a_rec(Q, "192.0.2.1", 3000),
                                                a_rec(Q, "192.0.2.2", 3000)]))
    assert out.rcode == NOERROR and out.authority == []
    assert [(r[1], ipaddress.IPv6Address(r[4])) for r in out.answer] == [
        (AAAA, ipaddress.IPv6Address("64:ff9b::192.0.2.1")),
        (AAAA, ipaddress.IPv6Address("64:ff9b::192.0.2.2"))]
    # RFC 6147 5.1.7: the smaller of the A TTL and the negative TTL (SOA MINIMUM 120 here)
    assert {r[3] for r in out.answer} == {120}


def test_ttl_is_the_a_ttl_when_smaller_and_600_without_soa():
    d = dns64.Dns64()
    out = d.synthesize(Q, nodata(), Result(NOERROR, [a_rec(Q, "192.0.2.1", 60)]))
    assert [r[3] for r in out.answer] == [60]
    out = d.synthesize(Q, Result(NOERROR), Result(NOERROR, [a_rec(Q, "192.0.2.1", 3000)]))
    assert [r[3] for r in out.answer] == [600]


def test_real_aaaa_wins_and_mapped_aaaa_counts_as_absent():
    d = dns64.Dns64()
    assert d.target(Q, Result(NOERROR, [aaaa_rec(Q, "2001:db8::1")])) is None
    mapped = Result(NOERROR, [aaaa_rec(Q, "::ffff:192.0.2.9")])
    assert d.target(Q, mapped) == Q.lower()
    out = d.synthesize(Q, mapped, Result(NOERROR, [a_rec(Q, "192.0.2.9")]))
    assert [ipaddress.IPv6Address(r[4]) for r in out.answer] == [
        ipaddress.IPv6Address("64:ff9b::192.0.2.9")]


def test_errors_and_nxdomain_and_bogus_are_not_synthesised():
    d = dns64.Dns64(synthall=True)
    for rcode in (NXDOMAIN, SERVFAIL, 5):
        assert d.target(Q, Result(rcode)) is None
    assert d.target(Q, Result(NOERROR, security=BOGUS)) is None


def test_synthall_and_ignore_aaaa():
    res = Result(NOERROR, [aaaa_rec(Q, "2001:db8::1")])
    assert dns64.Dns64(synthall=True).target(Q, res) == Q.lower()
    d = dns64.Dns64(ignore_aaaa=["Example."])
    assert d.target(W("HOST.example."), res) is not None
    assert d.target(W("host.other."), Result(NOERROR, [aaaa_rec(W("host.other."),
                                                                "2001:db8::1")])) is None
    # at or below the name, on label boundaries only
    assert dns64.Dns64(ignore_aaaa=["ample."]).target(Q, res) is None
    out = d.synthesize(Q, res, Result(NOERROR, [a_rec(Q, "192.0.2.1")]))
    assert [r[1] for r in out.answer] == [AAAA]
    assert ipaddress.IPv6Address(out.answer[0][4]) == ipaddress.IPv6Address("64:ff9b::c000:201")


def test_the_chain_is_kept_and_its_end_synthesised():
    d = dns64.Dns64("2001:db8:100::/40")
    chain = [(Q, CNAME, 1, 300, W("mid.example.")), (W("mid.example."), CNAME, 1, 300, END),
             (Q, RRSIG, 1, 300, b"\x00\x05" + bytes(20))]
    res = nodata(chain)
    assert d.target(Q, res) == END
    out = d.synthesize(Q, res, Result(NOERROR, [a_rec(END, "192.0.2.33")]))
    assert out.answer[:3] == chain
    assert out.answer[3][0] == END and out.answer[3][1] == AAAA
    assert ipaddress.IPv6Address(out.answer[3][4]) == ipaddress.IPv6Address("2001:db8:1c0:2:21::")


def test_no_a_records_leaves_the_aaaa_answer():
    d = dns64.Dns64()
    res = nodata()
    assert d.synthesize(Q, res, Result(NOERROR)) is res
    assert d.synthesize(Q, res, Result(SERVFAIL)) is res


def test_synthesis_never_secure_and_bogus_a_stays_bogus():
    d = dns64.Dns64()
    out = d.synthesize(Q, Result(NOERROR, security=SECURE),
                       Result(NOERROR, [a_rec(Q, "192.0.2.1")], security=SECURE))
    assert out.security != SECURE
    out = d.synthesize(Q, nodata(), Result(NOERROR, [a_rec(Q, "192.0.2.1")], security=BOGUS,
                                           ede=6))
    assert out.security == BOGUS and out.ede == 6


def test_ptr_under_the_prefix_maps_to_in_addr_arpa():
    d = dns64.Dns64()
    name = dns.reversename.from_address("64:ff9b::192.0.2.33").to_wire()
    assert d.ptr_target(name) == W("33.2.0.192.in-addr.arpa.")
    assert d.ptr_target(name.upper()) == W("33.2.0.192.in-addr.arpa.")
    other = dns.reversename.from_address("2001:db8::192.0.2.33").to_wire()
    assert d.ptr_target(other) is None
    assert d.ptr_target(W("b.9.f.f.4.6.0.0.ip6.arpa.")) is None    # not a whole address
    d40 = dns64.Dns64("2001:db8:100::/40")
    name = dns.reversename.from_address("2001:db8:1c0:2:21::").to_wire()
    assert d40.ptr_target(name) == W("33.2.0.192.in-addr.arpa.")
    # a network-specific /96: only names under its own 24 nibbles
    d96 = dns64.Dns64("2001:db8:122:344::/96")
    assert d96.ptr_target(dns.reversename.from_address(
        "2001:db8:122:344::192.0.2.33").to_wire()) == W("33.2.0.192.in-addr.arpa.")
    assert d96.ptr_target(dns.reversename.from_address(
        "2001:db8:122:345::192.0.2.33").to_wire()) is None
    target = W("33.2.0.192.in-addr.arpa.")
    out = d.ptr_answer(name, target, Result(NOERROR, [(target, PTR, 1, 500, W("h.example."))],
                                            security=SECURE))
    assert out.answer[0] == (name, CNAME, 1, 500, target) and out.answer[1][1] == PTR
    assert out.security != SECURE



def test_make_reads_the_library_forms():
    assert dns64.make(None) is None and dns64.make(False) is None
    assert str(dns64.make(True).prefix) == "64:ff9b::/96"
    assert str(dns64.make("2001:db8::/32").prefix) == "2001:db8::/32"
    with pytest.raises(ValueError):
        dns64.make("2001:db8::/33")


# ---- the root key sentinel's labels -------------------------------------------------------

def test_sentinel_labels_are_read_case_insensitively():
    assert sentinel.sentinel(W("root-key-sentinel-is-ta-20326.example.")) == (True, 20326)
    assert sentinel.sentinel(W("ROOT-KEY-SENTINEL-NOT-TA-00042.example.")) == (False, 42)
    for bad in ("root-key-sentinel-is-ta-2032.example.", "root-key-sentinel-is-ta-2032x.x.",
                "root-key-sentinel-is-ta-99999.x.", "www.root-key-sentinel-is-ta-20326.x."):
        assert sentinel.sentinel(W(bad)) is None, bad
    assert {W(f"root-key-sentinel-{f}-20326.x.")[0] for f in ("is-ta", "not-ta")} == set(
        sentinel.LENGTHS)


def test_root_key_tags_are_the_shipped_anchors():
    from resolver.dnssec.trust_anchor import ROOT_ANCHOR_FILE
    tags = sentinel.root_key_tags(load_anchor(ROOT_ANCHOR_FILE))
    assert 20326 in tags            # the KSK of 2017 the package ships
    secure = Result(NOERROR, [a_rec(Q, "192.0.2.1")], security=SECURE)
    anchors = load_anchor(ROOT_ANCHOR_FILE)
    assert sentinel.verdict(W("root-key-sentinel-is-ta-20326.x."), secure, anchors) is secure
    assert sentinel.verdict(W("root-key-sentinel-not-ta-20326.x."), secure,
                            anchors).rcode == SERVFAIL
    assert sentinel.verdict(W("root-key-sentinel-is-ta-11111.x."), secure,
                            anchors).rcode == SERVFAIL
    assert sentinel.verdict(W("root-key-sentinel-not-ta-11111.x."), secure, anchors) is secure
