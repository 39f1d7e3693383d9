"""Unbound's default local zones in the daemon: answered by the daemon itself, with
Unbound's records, and no query reaching the lab (its root server counts what it is
asked); ``nodefault``, a replacing local zone and ``unblock-lan-zones`` send the names to
the root again; ``inform`` zones log the client; ``insecure-lan-zones`` makes the AS112
zones negative trust anchors."""
from __future__ import annotations

import dns.flags
import dns.message
import dns.name
import dns.rcode
import pytest

from daemon_proc import Daemon
from dnslab import Lab
from dnslab import zones as Z

ROOT_ONLY = tuple(s for s in Z.SERVERS if s.address == Z.ROOT_A)
UNBOUND_SOA = "localhost. nobody.invalid. 1 3600 1200 604800 10800"
IP6_LOOPBACK = "1." + "0." * 31 + "ip6.arpa."

# name, type, rcode, answer data, SOA owner in the authority section (None: no SOA)
DEFAULT_CASES = [
    ("localhost.", "A", "NOERROR", {"127.0.0.1"}, None),
    ("localhost.", "AAAA", "NOERROR", {"::1"}, None),
    ("www.localhost.", "A", "NOERROR", {"127.0.0.1"}, None),
    ("localhost.", "MX", "NOERROR", set(), "localhost."),
    ("1.0.0.127.in-addr.arpa.", "PTR", "NOERROR", {"localhost."}, None),
    ("9.0.0.127.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "127.in-addr.arpa."),
    (IP6_LOOPBACK, "PTR", "NOERROR", {"localhost."}, None),
    ("hidden.onion.", "A", "NXDOMAIN", set(), "onion."),
    ("www.example.test.", "A", "NXDOMAIN", set(), "test."),
    ("host.invalid.", "AAAA", "NXDOMAIN", set(), "invalid."),
    ("printer.home.arpa.", "A", "NXDOMAIN", set(), "home.arpa."),
    ("_dns.resolver.arpa.", "SVCB", "NXDOMAIN", set(), "resolver.arpa."),
    ("5.0.0.10.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "10.in-addr.arpa."),
    ("1.0.16.172.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "16.172.in-addr.arpa."),
    ("1.0.31.172.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "31.172.in-addr.arpa."),
    ("1.1.168.192.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "168.192.in-addr.arpa."),
    ("1.0.0.0.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "0.in-addr.arpa."),
    ("1.0.254.169.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "254.169.in-addr.arpa."),
    ("7.2.0.192.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "2.0.192.in-addr.arpa."),
    ("7.100.51.198.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "100.51.198.in-addr.arpa."),
    ("7.113.0.203.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "113.0.203.in-addr.arpa."),
    ("255.255.255.255.in-addr.arpa.", "PTR", "NOERROR", set(),
     "255.255.255.255.in-addr.arpa."),
    ("1.0.64.100.in-addr.arpa.", "PTR", "NXDOMAIN", set(), "64.100.in-addr.arpa."),
    ("0." * 32 + "ip6.arpa.", "PTR", "NOERROR", set(), "0." * 32 + "ip6.arpa."),
    ("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa.", "PTR",
     "NXDOMAIN", set(), "d.f.ip6.arpa."),
    ("1.0.0.0.8.e.f.ip6.arpa.", "PTR", "NXDOMAIN", set(), "8.e.f.ip6.arpa."),
    ("1.0.0.0.b.e.f.ip6.arpa.", "PTR", "NXDOMAIN", set(), "b.e.f.ip6.arpa."),
    ("1.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", "PTR", "NXDOMAIN", set(),
     "8.b.d.0.1.0.0.2.ip6.arpa."),
]


@pytest.fixture(scope="module")
def root_lab(tmp_path_factory):
    """The lab's root server alone, counting the queries it gets."""
    lab = Lab.start(tmp_path_factory.mktemp("rootlab"), servers=ROOT_ONLY, control=True)
    try:
        yield lab
    finally:
        lab.stop()


def data(resp) -> set[str]:
    return {rd.to_text() for rrset in resp.answer for rd in rrset}


def test_default_zones_are_answered_by_the_daemon_alone(root_lab, tmp_path):
    d = Daemon(tmp_path / "d", root_lab).start()
    try:
        before = root_lab.queries_received()
        for name, rdtype, rcode, want, soa in DEFAULT_CASES:
            for tcp in (False, True):
                resp = d.ask(name, rdtype, tcp=tcp, edns=True)
                assert dns.rcode.to_text(resp.rcode()) == rcode, (name, rdtype)
                assert resp.flags & dns.flags.AA and resp.flags & dns.flags.RA
                assert data(resp) == want, (name, rdtype)
                if soa is None:
                    assert not resp.authority
                else:
                    (rrset,) = resp.authority
                    assert rrset.name.to_text() == soa and rrset.ttl == 10800
                    assert [rd.to_text() for rd in rrset] == [UNBOUND_SOA]
        # a query with RD clear gets the same local answer
        q = dns.message.make_query("localhost.", "A")
        q.flags &= ~dns.flags.RD
        assert data(d.ask(q)) == {"127.0.0.1"}
        engine = d.stats()["engine"]
        assert engine["upstream_queries"] == 0
        assert engine["local_answers"] == 2 * len(DEFAULT_CASES) + 1
        assert root_lab.queries_received() == before            # nothing reached the lab
        # a name outside them all does reach it
        d.ask("www.example.com.", "A")
        assert root_lab.queries_received() > before
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


OVERRIDES = """\
unblock-lan-zones = true
local-zone = ["test. nodefault", "onion. refuse", "example.com. inform"]
local-data = ["1.0.168.192.in-addr.arpa. PTR printer.lan."]
"""


def test_nodefault_replacing_zones_unblock_and_inform(root_lab, tmp_path):
    conf = tmp_path / "resolver.toml"
    conf.write_text(OVERRIDES)
    d = Daemon(tmp_path / "d", root_lab, "--config", str(conf)).start()
    try:
        before = root_lab.queries_received()
        # still local: localhost, invalid, the replacing onion zone, local data
        assert data(d.ask("localhost.", "A")) == {"127.0.0.1"}
        assert d.ask("x.invalid.", "A").rcode() == dns.rcode.NXDOMAIN
        assert d.ask("x.onion.", "A").rcode() == dns.rcode.REFUSED
        assert data(d.ask("1.0.168.192.in-addr.arpa.", "PTR")) == {"printer.lan."}
        assert root_lab.queries_received() == before
        assert d.stats()["engine"]["upstream_queries"] == 0
        # test. (nodefault) and 10.in-addr.arpa (unblock-lan-zones) go to the root, which
        # knows neither
        for name, rdtype in (("www.example.test.", "A"), ("5.0.0.10.in-addr.arpa.", "PTR"),
                             ("2.0.168.192.in-addr.arpa.", "PTR")):
            sent = root_lab.queries_received()
            resp = d.ask(name, rdtype)
            assert resp.rcode() == dns.rcode.NXDOMAIN and not resp.flags & dns.flags.AA
            assert root_lab.queries_received() > sent, name
        # an inform zone resolves as usual and logs the client's address and port
        client = d.ask("www.example.com.", "A")
        assert client.rcode() in (dns.rcode.NOERROR, dns.rcode.SERVFAIL, dns.rcode.NXDOMAIN)
        log = d.log_text()
        lines = [ln for ln in log.splitlines() if " inform 127.0.0.1@" in ln]
        assert len(lines) == 1, log[-2000:]
        assert "example.com. inform 127.0.0.1@" in lines[0]
        assert lines[0].endswith("www.example.com. A IN")
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_shadowed_forward_zone_and_needless_nodefault_are_warned_of(root_lab, tmp_path):
    conf = tmp_path / "resolver.toml"
    conf.write_text('local-zone = ["example.org. nodefault"]\n'
                    '[[forward-zone]]\nname = "corp.test."\nforward-addr = ["192.0.2.1"]\n')
    d = Daemon(tmp_path / "d", root_lab, "--config", str(conf)).start()
    try:
        assert d.ask("host.corp.test.", "A").rcode() == dns.rcode.NXDOMAIN
        assert d.stats()["engine"]["upstream_queries"] == 0
        assert ('zone corp.test. is answered by the local zone test. and never asked'
                in d.log_text())
        assert ("local-zone example.org. nodefault: there is no such default local zone"
                in d.log_text())
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_insecure_lan_zones_are_negative_trust_anchors(tmp_path):
    from resolver.daemon import config
    from resolver.daemon.server import make_resolver
    from resolver.zones import AS112_ZONES

    conf = tmp_path / "resolver.toml"
    conf.write_text('domain-insecure = ["corp.example."]\ninsecure-lan-zones = true\n')
    cfg = config.build(str(conf))
    assert config.insecure_domains(cfg) == ("corp.example.",) + AS112_ZONES
    r = make_resolver(cfg)
    assert r.dnssec.below_insecure_point(dns.name.from_text("1.0.0.10.in-addr.arpa.").to_wire())
    assert not r.dnssec.below_insecure_point(dns.name.from_text("1.1.1.1.in-addr.arpa.")
                                             .to_wire())
    plain = config.build(None)
    assert config.insecure_domains(plain) == ()
    assert not make_resolver(plain).dnssec.below_insecure_point(
        dns.name.from_text("1.0.0.10.in-addr.arpa.").to_wire())
