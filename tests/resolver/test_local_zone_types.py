"""Every local-zone type of Unbound, and its default zones, as ``resolver.zones.LocalZones``
answers them (Unbound's services/localzone.c): for a name with local data of the asked
type, with data of another type only, without data, and below the zone; the defaults and
what replaces them. Sans-IO: answers are read from ``lookup``."""
from __future__ import annotations

import logging

import dns.name
import dns.rdatatype
import pytest

from resolver.daemon.zone_tables import local_zone
from resolver.zones import (AS112_ZONES, DROP, LOCAL_TYPES, Alias, LocalZone, Zones,
                            default_local_zones)

A, AAAA, TXT, DS, PTR, SOA, NS, CNAME, ANY = 1, 28, 16, 43, 12, 6, 2, 5, 255
NOERROR, NXDOMAIN, REFUSED = 0, 3, 5
RESOLVE = "resolve"


def w(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


def zones_of(kind: str) -> Zones:
    """One zone ``z.example.`` of type ``kind``, with an SOA, an A at ``host``, a TXT at
    ``a.b`` (``b`` an empty non-terminal) and an A at the apex (what redirect serves)."""
    return Zones(local=[LocalZone("z.example.", kind, (
        "z.example. 600 SOA ns.z.example. admin.z.example. 1 3600 600 86400 120",
        "z.example. 60 A 10.9.9.9",
        "host.z.example. 60 A 10.0.0.1",
        "a.b.z.example. 60 TXT \"t\"",
    ))])


def outcome(zones: Zones, name: str, rdtype: int, client=None):
    """The lookup as (rcode, {answer rdata as text}, authority types), DROP or RESOLVE."""
    found = zones.local_zones.lookup(w(name), rdtype, client)
    if found is None:
        return RESOLVE
    if found is DROP:
        return DROP
    rcode, answer, authority = found
    texts = set()
    for owner, rtype, _, _, rdata in answer:
        assert owner == w(name)               # redirect: the answer is at the question's name
        texts.add(dns.rdata.from_wire(1, rtype, rdata, 0, len(rdata)).to_text())
    return rcode, texts, tuple(r[1] for r in authority)


NEG = (SOA,)          # a negative answer with the zone's SOA

# kind -> expected for: host A (data), host AAAA (other type), none A (no name),
#                       b (empty non-terminal) A, host TXT
CASES = {
    "static":           [(0, {"10.0.0.1"}, ()), (0, set(), NEG), (3, set(), NEG),
                         (0, set(), NEG), (0, set(), NEG)],
    "transparent":      [(0, {"10.0.0.1"}, ()), (0, set(), NEG), RESOLVE, RESOLVE,
                         (0, set(), NEG)],
    "inform":           [(0, {"10.0.0.1"}, ()), (0, set(), NEG), RESOLVE, RESOLVE,
                         (0, set(), NEG)],
    "noview":           [(0, {"10.0.0.1"}, ()), (0, set(), NEG), RESOLVE, RESOLVE,
                         (0, set(), NEG)],
    "typetransparent":  [(0, {"10.0.0.1"}, ()), RESOLVE, RESOLVE, RESOLVE, RESOLVE],
    "redirect":         [(0, {"10.9.9.9"}, ()), (0, set(), NEG), (0, {"10.9.9.9"}, ()),
                         (0, {"10.9.9.9"}, ()), (0, set(), NEG)],
    "inform_redirect":  [(0, {"10.9.9.9"}, ()), (0, set(), NEG), (0, {"10.9.9.9"}, ()),
                         (0, {"10.9.9.9"}, ()), (0, set(), NEG)],
    "refuse":           [(0, {"10.0.0.1"}, ()), (5, set(), ()), (5, set(), ()),
                         (5, set(), ()), (5, set(), ())],
    "deny":             [(0, {"10.0.0.1"}, ()), DROP, DROP, DROP, DROP],
    "inform_deny":      [(0, {"10.0.0.1"}, ()), DROP, DROP, DROP, DROP],
    "always_transparent": [RESOLVE] * 5,
    "always_refuse":    [(5, set(), ())] * 5,
    "always_nxdomain":  [(3, set(), NEG)] * 5,
    "always_nodata":    [(0, set(), NEG)] * 5,
    "always_deny":      [DROP] * 5,
    "always_null":      [(0, {"10.0.0.1"}, ()), (0, {"::"}, ()), (0, {"0.0.0.0"}, ()),
                         (0, {"0.0.0.0"}, ()), (0, set(), ())],
    "block_a":          [(0, set(), ()), RESOLVE, (0, set(), ()), (0, set(), ()), RESOLVE],
    "block_aaaa":       [RESOLVE, (0, set(), ()), RESOLVE, RESOLVE, RESOLVE],
    "block_a_wdata":    [(0, {"10.0.0.1"}, ()), RESOLVE, (0, set(), ()), (0, set(), ()),
                         RESOLVE],
    "block_aaaa_wdata": [(0, {"10.0.0.1"}, ()), (0, set(), ()), RESOLVE, RESOLVE, RESOLVE],
}
QUESTIONS = [("host.z.example.", A), ("host.z.example.", AAAA), ("none.z.example.", A),
             ("b.z.example.", A), ("host.z.example.", TXT)]


def test_every_unbound_type_is_accepted_and_tested():
    assert set(LOCAL_TYPES) == set(CASES) | {"nodefault"}
    for kind in LOCAL_TYPES:
        assert local_zone(f"z.example. {kind}").type == kind
    with pytest.raises(ValueError, match="not one of"):
        local_zone("z.example. truncate_all")


@pytest.mark.parametrize("kind", sorted(CASES))
def test_type_answers_as_unbound(kind):
    zones = zones_of(kind)
    got = [outcome(zones, name, rdtype) for name, rdtype in QUESTIONS]
    assert got == CASES[kind]


def test_block_wdata_answers_its_data_where_block_ignores_it():
    """``block_aaaa_wdata`` answers an AAAA from its local data, ``block_aaaa`` never
    (Unbound's code: the data is looked at first, the type's NODATA after)."""
    data = ("host.z.example. 60 AAAA 2001:db8::1",)
    wdata = Zones(local=[LocalZone("z.example.", "block_aaaa_wdata", data)])
    plain = Zones(local=[LocalZone("z.example.", "block_aaaa", data)])
    assert outcome(wdata, "host.z.example.", AAAA) == (0, {"2001:db8::1"}, ())
    assert outcome(plain, "host.z.example.", AAAA) == (0, set(), ())
    assert outcome(wdata, "other.z.example.", AAAA) == (0, set(), ())


def test_always_null_ttl_and_zone_apex():
    zones = Zones(local=[local_zone("null.example. always_null")])
    rcode, answer, authority = zones.local_zones.lookup(w("x.null.example."), AAAA)
    assert rcode == 0 and answer[0][3] == 3600 and answer[0][4] == bytes(16) and not authority
    assert outcome(zones, "null.example.", A) == (0, {"0.0.0.0"}, ())


def test_negative_answers_carry_the_soa_at_its_minimum():
    found = zones_of("static").local_zones.lookup(w("none.z.example."), A)
    assert found[0] == NXDOMAIN and found[2][0][3] == 120      # min(600, minimum 120)


def test_ds_is_answered_by_the_zone_above_but_always_refuse_keeps_its_own():
    """A DS belongs to the parent side: the DS of a local zone's apex is the zone above's
    (none here: resolved), while an always_refuse zone refuses its own DS too."""
    assert outcome(zones_of("static"), "z.example.", DS) == RESOLVE
    assert outcome(zones_of("static"), "host.z.example.", DS) == (0, set(), NEG)
    assert outcome(zones_of("static"), "none.z.example.", DS) == (3, set(), NEG)
    assert outcome(zones_of("always_refuse"), "z.example.", DS) == (5, set(), ())
    nested = Zones(local=[local_zone("example. static"), local_zone("z.example. refuse")])
    assert outcome(nested, "z.example.", DS) == (3, set(), ())


def test_inform_types_log_the_client(caplog):
    for kind, expect in (("inform", RESOLVE), ("inform_deny", DROP),
                         ("inform_redirect", (0, {"10.9.9.9"}, ()))):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="resolver.daemon.localzone"):
            assert outcome(zones_of(kind), "none.z.example.", A, ("192.0.2.7", 5353)) == expect
        lines = [r.getMessage() for r in caplog.records
                 if r.name == "resolver.daemon.localzone"]
        assert lines == [f"z.example. {kind} 192.0.2.7@5353 none.z.example. A IN"]
        # a look that answers nothing itself (the response policy asking whether the local
        # zones decide a question first) logs nothing: the engine's answer logs it once
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="resolver.daemon.localzone"):
            zones_of(kind).local_zones.lookup(w("none.z.example."), A, None, inform=False)
        assert not [r for r in caplog.records if r.name == "resolver.daemon.localzone"]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="resolver.daemon.localzone"):
        outcome(zones_of("transparent"), "none.z.example.", A, ("192.0.2.7", 5353))
    assert not [r for r in caplog.records if r.name == "resolver.daemon.localzone"]


# ---- the default zones ---------------------------------------------------------------------
DEFAULTS = Zones(defaults=True)


def test_default_zone_list_is_unbounds():
    names = [z.name for z in default_local_zones()]
    assert len(names) == len(set(names)) == 104
    for name in ("localhost.", "127.in-addr.arpa.", "1." + "0." * 31 + "ip6.arpa.",
                 "onion.", "test.", "invalid.", "home.arpa.", "resolver.arpa.",
                 "service.arpa.", "10.in-addr.arpa.", "16.172.in-addr.arpa.",
                 "31.172.in-addr.arpa.", "168.192.in-addr.arpa.", "0.in-addr.arpa.",
                 "254.169.in-addr.arpa.", "2.0.192.in-addr.arpa.", "100.51.198.in-addr.arpa.",
                 "113.0.203.in-addr.arpa.", "255.255.255.255.in-addr.arpa.",
                 "0." * 32 + "ip6.arpa.", "d.f.ip6.arpa.", "8.e.f.ip6.arpa.",
                 "b.e.f.ip6.arpa.", "8.b.d.0.1.0.0.2.ip6.arpa.", "64.100.in-addr.arpa.",
                 "127.100.in-addr.arpa."):
        assert name in names
    assert "15.172.in-addr.arpa." not in names and "32.172.in-addr.arpa." not in names
    unblocked = [z.name for z in default_local_zones(unblock_lan_zones=True)]
    assert set(names) - set(unblocked) == set(AS112_ZONES)
    assert "localhost." in unblocked and "127.in-addr.arpa." in unblocked


@pytest.mark.parametrize("name,rdtype,expect", [
    ("localhost.", A, (0, {"127.0.0.1"}, ())),
    ("localhost.", AAAA, (0, {"::1"}, ())),
    ("www.localhost.", A, (0, {"127.0.0.1"}, ())),              # redirect
    ("localhost.", NS, (0, {"localhost."}, ())),
    ("localhost.", TXT, (0, set(), NEG)),
    ("1.0.0.127.in-addr.arpa.", PTR, (0, {"localhost."}, ())),
    ("2.0.0.127.in-addr.arpa.", PTR, (3, set(), NEG)),
    ("1." + "0." * 31 + "ip6.arpa.", PTR, (0, {"localhost."}, ())),
    ("x.onion.", A, (3, set(), NEG)),
    ("www.example.test.", A, (3, set(), NEG)),
    ("test.", SOA, (0, {"localhost. nobody.invalid. 1 3600 1200 604800 10800"}, ())),
    ("host.invalid.", AAAA, (3, set(), NEG)),
    ("printer.home.arpa.", A, (3, set(), NEG)),
    ("5.0.0.10.in-addr.arpa.", PTR, (3, set(), NEG)),
    ("1.1.20.172.in-addr.arpa.", PTR, (3, set(), NEG)),
    ("1.1.168.192.in-addr.arpa.", PTR, (3, set(), NEG)),
    ("1.1.254.169.in-addr.arpa.", PTR, (3, set(), NEG)),
    ("7.2.0.192.in-addr.arpa.", PTR, (3, set(), NEG)),
    ("1.0.0.0.d.f.ip6.arpa.", PTR, (3, set(), NEG)),
    ("1.0.0.0.a.e.f.ip6.arpa.", PTR, (3, set(), NEG)),
    ("1.1.1.1.in-addr.arpa.", PTR, RESOLVE),                    # public space
    ("1.1.15.172.in-addr.arpa.", PTR, RESOLVE),
    ("www.example.com.", A, RESOLVE),
])
def test_default_zones_answer_as_unbound(name, rdtype, expect):
    assert outcome(DEFAULTS, name, rdtype) == expect


def test_default_negative_answer_is_unbounds_soa():
    rcode, answer, authority = DEFAULTS.local_zones.lookup(w("x.onion."), A)
    assert rcode == NXDOMAIN and not answer
    (owner, rtype, _, ttl, rdata), = authority
    assert owner == w("onion.") and rtype == SOA and ttl == 10800
    soa = dns.rdata.from_wire(1, SOA, rdata, 0, len(rdata))
    assert soa.to_text() == "localhost. nobody.invalid. 1 3600 1200 604800 10800"


def test_nodefault_removes_a_default_and_other_types_replace_it():
    zones = Zones(local=[local_zone("test. nodefault"),
                         local_zone("10.in-addr.arpa. transparent"),
                         LocalZone("onion.", "static", ("onion. 60 SOA a. b. 2 1 1 1 30",))],
                  local_data=["5.0.0.10.in-addr.arpa. PTR printer.lan."], defaults=True)
    assert outcome(zones, "www.example.test.", A) == RESOLVE
    assert outcome(zones, "5.0.0.10.in-addr.arpa.", PTR) == (0, {"printer.lan."}, ())
    assert outcome(zones, "6.0.0.10.in-addr.arpa.", PTR) == RESOLVE
    rcode, _, authority = zones.local_zones.lookup(w("x.onion."), A)
    assert rcode == NXDOMAIN and authority[0][3] == 30           # the configured SOA
    assert outcome(zones, "x.invalid.", A) == (3, set(), NEG)    # the others stay
    assert zones.needless_nodefaults() == []
    # nodefault for a name that has no default zone changes nothing, and is named
    plain = Zones(local=[local_zone("example.org. nodefault")], defaults=True)
    assert outcome(plain, "www.example.org.", A) == RESOLVE
    assert plain.needless_nodefaults() == ["example.org."]
    # with unblock-lan-zones the AS112 zones are no defaults to remove
    unblocked = Zones(local=[local_zone("10.in-addr.arpa. nodefault")], defaults=True,
                      unblock_lan_zones=True)
    assert unblocked.needless_nodefaults() == ["10.in-addr.arpa."]


def test_local_data_in_a_default_zone_is_served_from_it():
    """Without a local-zone of its own, local data under a default zone goes into that
    zone (as Unbound enters the defaults before the data): its name answers, the rest of
    the zone stays NXDOMAIN."""
    zones = Zones(local_data=["20.1.168.192.in-addr.arpa. PTR printer.lan."], defaults=True)
    assert outcome(zones, "20.1.168.192.in-addr.arpa.", PTR) == (0, {"printer.lan."}, ())
    assert outcome(zones, "21.1.168.192.in-addr.arpa.", PTR) == (3, set(), NEG)


def test_unblock_lan_zones_leaves_the_as112_zones_to_resolution():
    zones = Zones(defaults=True, unblock_lan_zones=True)
    assert outcome(zones, "5.0.0.10.in-addr.arpa.", PTR) == RESOLVE
    assert outcome(zones, "1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", PTR) == RESOLVE
    assert outcome(zones, "localhost.", A) == (0, {"127.0.0.1"}, ())
    assert outcome(zones, "x.test.", A) == (3, set(), NEG)


def test_stub_and_forward_zones_under_a_default_are_reported_shadowed():
    """As in Unbound, a stub or forward zone does not lift a default zone: the local zone
    answers first. ``shadowed`` names them (the daemon warns); nodefault lifts it."""
    from resolver.zones import ForwardZone, StubZone, Upstream

    fwd = ForwardZone("corp.test.", (Upstream("192.0.2.1"),))
    stub = StubZone("10.in-addr.arpa.", (Upstream("192.0.2.2"),))
    zones = Zones(forward=[fwd], stub=[stub], defaults=True)
    assert sorted(zones.shadowed()) == [("10.in-addr.arpa.", "10.in-addr.arpa."),
                                        ("corp.test.", "test.")]
    assert outcome(zones, "host.corp.test.", A) == (3, set(), NEG)
    lifted = Zones(forward=[fwd], stub=[stub], defaults=True,
                   local=[local_zone("test. nodefault"),
                          local_zone("10.in-addr.arpa. nodefault")])
    assert lifted.shadowed() == []
    assert outcome(lifted, "host.corp.test.", A) == RESOLVE


def test_a_redirect_zones_cname_is_an_alias_and_a_static_zones_stands_alone():
    """Unbound's local_data_answer: a redirect zone's CNAME asked for another type (ANY
    too) is an alias, whose target is resolved (``Alias``), its ``*`` first label replaced
    by the question's name (YXDOMAIN past 255 octets); elsewhere a CNAME is the answer
    alone, even to a name of local data; and ANY is a type like another: no local data
    answers it."""
    zones = Zones(local=[
        LocalZone("r.example.", "redirect", ("r.example. 300 CNAME t.example.net.",)),
        LocalZone("w.example.", "redirect", ("w.example. CNAME *.t.example.net.",)),
        LocalZone("s.example.", "static", ("a.s.example. CNAME b.s.example.",
                                           "b.s.example. A 10.0.0.2",
                                           'b.s.example. TXT "t"'))])
    lz = zones.local_zones
    for qtype in (A, TXT, ANY):
        found = lz.lookup(w("X.r.example."), qtype)
        assert isinstance(found, Alias) and found.target == w("t.example.net.")
        assert found.record == (w("X.r.example."), CNAME, 1, 300, w("t.example.net."))
    assert outcome(zones, "x.r.example.", CNAME) == (0, {"t.example.net."}, ())
    assert lz.lookup(w("a.w.example."), A).target == w("a.w.example.t.example.net.")
    long = ".".join(("a" * 63, "b" * 63, "c" * 63, "d" * 40, "w.example."))
    assert lz.lookup(w(long), A) == (6, [], [])                 # YXDOMAIN
    assert outcome(zones, "a.s.example.", A) == (0, {"b.s.example."}, ())
    assert outcome(zones, "b.s.example.", ANY) == (0, set(), ())

