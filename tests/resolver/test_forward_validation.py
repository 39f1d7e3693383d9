"""DNSSEC validation of forward zones over the signed lab, on every loop kind.

The forwarders are the lab's own authorities (they answer RD queries for their zones) and a
proxy on loopback that stands in for a recursive forwarder of the whole tree: it passes each
question to the lab server of the deepest zone holding the name (a DS: its parent), as
it is, tampered with, or stripped of its DNSSEC records."""
from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from dnslab import zones as Z
from dnslab.authority import ZoneAuthority
from dnslab.fake import serve
from ports import pick_port
from resolver.zones import ForwardZone, Upstream, Zones
from test_zones import CORP

PROXY = "127.0.0.45"            # loopback addresses no lab server uses
PRIVATE = "127.0.0.46"
DNSSEC_TYPES = (dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.NSEC3)

# a private view of a publicly signed name (split horizon), unsigned
SPLIT = CORP.replace("corp.internal.", "example.com.")


def ask(r, name: str, rdtype: str = "A", cd: bool = False):
    q = dns.message.make_query(name, rdtype, want_dnssec=True)
    if cd:
        q.flags |= dns.flags.CD
    return r.resolve_message(q)


def ede_codes(resp) -> list[int]:
    return [o.code for o in resp.options if o.otype == dns.edns.EDE]


def a_data(resp) -> set[str]:
    return {rd.to_text() for rr in resp.answer if rr.rdtype == dns.rdatatype.A for rd in rr}


async def check_insecure(r, name: str, data: set[str], missing: str) -> None:
    """A forwarded answer and a forwarded NXDOMAIN, both insecure: no AD, nothing bogus."""
    resp = await ask(r, name)
    assert resp.rcode() == dns.rcode.NOERROR and not resp.flags & dns.flags.AD
    assert a_data(resp) == data
    resp = await ask(r, missing)
    assert resp.rcode() == dns.rcode.NXDOMAIN and not resp.flags & dns.flags.AD
    assert r.stats.dnssec_insecure == 2 and r.stats.dnssec_bogus == 0


def proxy(lab, spoil=None):
    """A fake recursive forwarder over the signed lab: each question goes to the server of
    the deepest lab zone holding the name (a DS question: its parent's); ``spoil`` may
    change the reply before it is sent."""
    import dnssec_lab

    zones = {}
    for server in dnssec_lab.SERVERS:
        for origin in server.zones:
            zones.setdefault(dns.name.from_text(origin), server.address)

    def handler(seen):
        q = seen.message
        if q is None or not q.question:
            return None
        name, rdtype = q.question[0].name, q.question[0].rdtype
        best = None
        for origin, addr in zones.items():
            if name.is_subdomain(origin) and not (rdtype == dns.rdatatype.DS
                                                  and name == origin):
                if best is None or len(origin) > len(best[0]):
                    best = (origin, addr)
        resp, _tcp = dns.query.udp_with_fallback(q, best[1], port=lab.port, timeout=3)
        resp.flags = (resp.flags | dns.flags.RA) & ~dns.flags.AA
        return spoil(resp) if spoil is not None else resp

    return handler


def tamper(resp):
    """The data of www.example.com changed after signing: its RRSIG no longer matches."""
    for rr in resp.answer:
        if rr.rdtype == dns.rdatatype.A and rr.name == dns.name.from_text("www.example.com."):
            new = dns.rrset.from_text(rr.name, rr.ttl, "IN", "A", "192.0.2.66")
            rr.clear()
            rr.update(new)
    return resp


def strip(resp):
    """A forwarder that does not pass DNSSEC records on."""
    for section in (resp.answer, resp.authority, resp.additional):
        section[:] = [rr for rr in section if rr.rdtype not in DNSSEC_TYPES]
    return resp


def root_forwarder(signed_lab, fakes, spoil=None):
    lab, _anchor = signed_lab
    port = pick_port([PROXY], low=31000)
    srv = fakes(PROXY, proxy(lab, spoil), port=port)
    return srv, Zones(forward=[ForwardZone(".", (Upstream(PROXY, port),))])


def test_secure_answer_from_a_forward_zone_gets_ad(run, validating):
    """example.com. forwarded to its (signed) server: the answer and a denial are secure;
    its DS comes through recursion from com., its DNSKEY from the forwarder."""
    async def go():
        r = validating(zones=Zones(forward=[ForwardZone(
            "example.com.", (Upstream(Z.EXAMPLE_COM_1),))]))
        resp = await ask(r, "www.example.com.")
        assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD
        assert a_data(resp) == {"192.0.2.1", "192.0.2.11"}
        resp = await ask(r, "nope.example.com.")
        assert resp.rcode() == dns.rcode.NXDOMAIN and resp.flags & dns.flags.AD
        assert r.stats.forwarded == 2
        assert r.stats.dnssec_secure == 2 and r.stats.dnssec_bogus == 0

    run(go(), timeout=20)


def test_forward_of_the_root_validates_everything_through_the_forwarder(
        run, validating, signed_lab, fakes):
    """With "." forwarded, every query (the chain of trust included) goes to the forwarder:
    signed zones are secure, an unsigned zone under a signed parent insecure, a zone whose
    DS does not match its key bogus."""
    srv, zones = root_forwarder(signed_lab, fakes)

    async def go():
        r = validating(zones=zones)
        for name in ("www.example.com.", "www.example.net."):
            resp = await ask(r, name)
            assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD, name
        resp = await ask(r, "www.unsigned.org.")
        assert resp.rcode() == dns.rcode.NOERROR and not resp.flags & dns.flags.AD
        assert a_data(resp) == {"203.0.113.50"}
        resp = await ask(r, "www.badds.com.")
        assert resp.rcode() == dns.rcode.SERVFAIL and ede_codes(resp)
        assert srv.count(qtype="DNSKEY") >= 3 and srv.count(qtype="DS") >= 3
        assert r.stats.upstream_queries == srv.count(transport="udp")   # nothing else asked
        assert (r.stats.dnssec_secure, r.stats.dnssec_insecure, r.stats.dnssec_bogus) \
            == (2, 1, 1)

    run(go(), timeout=30)


@pytest.mark.parametrize("spoil", [tamper, strip], ids=["tampered", "stripped"])
def test_a_spoiled_forwarded_answer_is_bogus(run, validating, signed_lab, fakes, spoil):
    """A forwarder whose answer was changed after signing, or that does not pass DNSSEC
    records on: SERVFAIL with an EDE, counted bogus."""
    _srv, zones = root_forwarder(signed_lab, fakes, spoil)

    async def go():
        r = validating(zones=zones)
        resp = await ask(r, "www.example.com.")
        assert resp.rcode() == dns.rcode.SERVFAIL and ede_codes(resp)
        assert r.stats.dnssec_bogus == 1 and r.stats.dnssec_secure == 0
        if spoil is tamper:
            # checking disabled: the client gets the data as it came
            resp = await ask(r, "www.example.com.", cd=True)
            assert resp.rcode() == dns.rcode.NOERROR and a_data(resp) == {"192.0.2.66"}
            assert not resp.flags & dns.flags.AD
            # the rest of the tree is unharmed
            assert (await ask(r, "www.example.net.")).flags & dns.flags.AD

    run(go(), timeout=30)


def test_unsigned_forward_zone_under_an_insecure_delegation(run, validating):
    """insecure.com. is unsigned and com. proves it has no DS: its forwarded answers are
    insecure (no AD), positive and negative."""
    async def go():
        r = validating(zones=Zones(forward=[ForwardZone(
            "insecure.com.", (Upstream(Z.EXAMPLE_COM_2),))]))
        await check_insecure(r, "www.insecure.com.", {"192.0.2.150"}, "nope.insecure.com.")

    run(go(), timeout=20)


def test_private_forward_zone_the_public_tree_denies_is_insecure(run, validating, signed_lab,
                                                                 fakes):
    """corp.internal. forwarded to an internal server: the signed root proves internal. does not
    exist, so no DS can lead to corp.internal.: its answers are insecure, not bogus."""
    lab, _anchor = signed_lab
    port = pick_port([PRIVATE], low=31000)
    fakes(PRIVATE, serve(ZoneAuthority.from_text("corp.internal.", CORP)), port=port)

    async def go():
        r = validating(zones=Zones(forward=[ForwardZone("corp.internal.",
                                                        (Upstream(PRIVATE, port),))]))
        await check_insecure(r, "host.corp.internal.", {"10.7.0.1"}, "nope.corp.internal.")
        # the same name resolved from the root does not exist
        plain = validating()
        assert (await ask(plain, "host.corp.internal.")).rcode() == dns.rcode.NXDOMAIN

    run(go(), timeout=20)


def test_split_horizon_forward_zone_needs_domain_insecure(run, validating, signed_lab, fakes):
    """An unsigned private view of example.com. (publicly signed, with a DS) is bogus, as
    it would be under any validator; under domain-insecure it is insecure."""
    lab, _anchor = signed_lab
    port = pick_port([PRIVATE], low=31000)
    fakes(PRIVATE, serve(ZoneAuthority.from_text("example.com.", SPLIT)), port=port)
    zones = Zones(forward=[ForwardZone("example.com.", (Upstream(PRIVATE, port),))])

    async def go():
        strict = validating(zones=zones)
        resp = await ask(strict, "host.example.com.")
        assert resp.rcode() == dns.rcode.SERVFAIL and ede_codes(resp)
        r = validating(zones=zones, domain_insecure=["example.com."])
        await check_insecure(r, "host.example.com.", {"10.7.0.1"}, "nope.example.com.")
        # names outside the negative anchor are still validated
        assert (await ask(r, "www.example.net.")).flags & dns.flags.AD

    run(go(), timeout=20)


DAEMON_ZONES = """\
[[forward-zone]]
name = "example.com."
forward-addr = ["{signed}@{port}"]

[[forward-zone]]
name = "insecure.com."
forward-addr = ["{unsigned}@{port}"]
"""


def test_daemon_validates_forward_zones(signed_lab, tmp_path):
    """``corenet-resolver serve`` with forward zones and a trust anchor: a secure forwarded
    answer has AD (from the miss and from the cache), an insecure one has none, and the
    outcomes are counted."""
    from daemon_proc import Daemon

    lab, anchor = signed_lab
    conf = tmp_path / "resolver.toml"
    conf.write_text(DAEMON_ZONES.format(signed=Z.EXAMPLE_COM_1, unsigned=Z.EXAMPLE_COM_2,
                                        port=lab.port))
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--trust-anchor", str(anchor))
    d.start()
    try:
        for _ in range(2):
            q = dns.message.make_query("www.example.com.", "A", want_dnssec=True)
            r = d.ask(q, tcp=True)
            assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AD
        q = dns.message.make_query("www.insecure.com.", "A", want_dnssec=True)
        r = d.ask(q, tcp=True)
        assert r.rcode() == dns.rcode.NOERROR and not r.flags & dns.flags.AD
        assert a_data(r) == {"192.0.2.150"}
        engine = d.stats()["engine"]
        assert engine["forwarded"] == 2
        assert (engine["dnssec_secure"], engine["dnssec_insecure"]) == (1, 1)
        assert "not DNSSEC-validated" not in d.log_text()
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
