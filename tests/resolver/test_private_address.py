"""``private-address`` and ``private-domain`` (the DNS-rebinding guard) as Unbound's.

The guard itself, sans-IO, on parsed replies (``resolver.iterator.private``); then the daemon
and the real Unbound side by side with the same lines, one NSD on loopback serving a
forward zone and a stub zone (the forwarder's path and the iterator's), with and without a
private domain: the same rcode, the same answer data and the same section counts
(Unbound's ``minimal-responses: yes``, the default of both) for every question, and the
answers Unbound's iter_priv.c gives pinned as well. Local data is never filtered."""
from __future__ import annotations

import time

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdata
import dns.rrset
import pytest

from ci_policy import installed
from daemon_proc import Daemon
from dnslab.nsd import nsd_on_loopback
from ports import pick_port
from procs import stop as stop_process
from resolver.iterator.private import PrivateAddresses, make
from resolver.wire.codec import parse_response

NETS = ("10.0.0.0/8", "192.168.0.0/16", "fd00::/8")


def parsed(answer=(), authority=(), additional=()):
    q = dns.message.make_query("x.example.", "A")
    r = dns.message.make_response(q)
    for section, items in ((r.answer, answer), (r.authority, authority),
                           (r.additional, additional)):
        for text in items:
            name, ttl, kind, *data = text.split(None, 3)
            section.append(dns.rrset.from_text(name, int(ttl), "IN", kind, *data))
    return parse_response(r.to_wire())


def texts(records):
    return sorted(dns.rdata.from_wire(1, t, rd, 0, len(rd)).to_text()
                  for _, t, _, _, rd in records)


def test_private_addresses_leave_every_section_public_ones_stay():
    m = parsed(answer=["x.example. 60 A 10.0.0.1", "x.example. 60 A 192.0.2.1",
                       "x.example. 60 AAAA fd00::1", "x.example. 60 AAAA 2001:db8::1"],
               authority=["example. 60 NS ns.example."],
               additional=["ns.example. 60 A 192.168.1.1", "ns.example. 60 AAAA 2001:db8::2"])
    assert PrivateAddresses(NETS).scrub(m) == 3
    assert texts(m.answer) == ["192.0.2.1", "2001:db8::1"]
    assert texts(m.authority) == ["ns.example."]
    assert texts(m.additional) == ["2001:db8::2"]


def test_mapped_addresses_are_matched_as_written():
    """Unbound matches an AAAA's 16 bytes against IPv6 networks only: ``10.0.0.0/8`` lets
    ``::ffff:10.0.0.1`` through, ``::ffff:0:0/96`` stops it."""
    m = parsed(answer=["x.example. 60 AAAA ::ffff:10.0.0.1"])
    assert PrivateAddresses(NETS).scrub(m) == 0 and texts(m.answer) == ["::ffff:10.0.0.1"]
    assert PrivateAddresses((*NETS, "::ffff:0:0/96")).scrub(m) == 1 and m.answer == []


def test_private_domains_keep_their_addresses_by_owner_name():
    m = parsed(answer=["www.example. 60 CNAME nas.LAN.example.", "nas.lan.example. 60 A 10.1.2.3",
                       "other.example. 60 A 10.1.2.4"])
    guard = PrivateAddresses(["10.0.0.0/8", "192.0.2.7"], ["lan.example"])
    assert guard.scrub(m) == 1
    assert texts(m.answer) == ["10.1.2.3", "nas.LAN.example."]
    assert guard.private(bytes([192, 0, 2, 7])) and not guard.private(bytes([192, 0, 2, 8]))


def test_no_networks_no_guard():
    assert make((), ["lan.example."]) is None
    assert make(["10.0.0.0/8"]) is not None


# ---- side by side with Unbound ------------------------------------------------------------
ZONE = """$TTL 300
@ SOA ns.{o} admin.{o} 1 3600 600 86400 60
@ NS ns.{o}
ns A 127.0.0.1
priv A 10.0.0.1
lan A 192.168.1.1
mixed A 10.0.0.1
mixed A 192.0.2.1
mixed AAAA fd00::1
mixed AAAA 2001:db8::1
mapped AAAA ::ffff:10.0.0.1
pub A 192.0.2.2
alias CNAME priv
inside CNAME host.ok
host.ok A 10.0.0.2
host.ok AAAA fd00::2
mx MX 10 priv
"""
FWD, STUB = "fwd.example.", "stub.example."
NAMES = [("priv", "A"), ("priv", "AAAA"), ("lan", "A"), ("mixed", "A"), ("mixed", "AAAA"),
         ("mapped", "AAAA"), ("pub", "A"), ("alias", "A"), ("inside", "A"),
         ("host.ok", "A"), ("host.ok", "AAAA"), ("mx", "MX")]
QUESTIONS = [(f"{n}.{zone}", t) for zone in (FWD, STUB) for n, t in NAMES]
#: what Unbound answers (data of the answer section), with and without a private domain
#: ``ok.<zone>``; a name missing here answers NOERROR with no data
PUBLIC = {("mixed", "A"): ["192.0.2.1"], ("mixed", "AAAA"): ["2001:db8::1"],
          ("mapped", "AAAA"): ["::ffff:10.0.0.1"], ("pub", "A"): ["192.0.2.2"],
          ("alias", "A"): ["priv.{z}"], ("inside", "A"): ["host.ok.{z}"],
          ("mx", "MX"): ["10 priv.{z}"]}
ALLOWED = {**PUBLIC, ("inside", "A"): ["10.0.0.2", "host.ok.{z}"],
           ("host.ok", "A"): ["10.0.0.2"], ("host.ok", "AAAA"): ["fd00::2"]}
PRIVATE = ["10.0.0.0/8", "192.168.0.0/16", "fd00::/8"]
LOCAL = ("nas.lan. A 192.168.7.7",)


def nsd_zones():
    return {o: ZONE.format(o=o) for o in (FWD, STUB)}


@pytest.fixture(scope="module")
def nsd(tmp_path_factory):
    installed("nsd", "nsd")
    srv = nsd_on_loopback(tmp_path_factory.mktemp("private-nsd"), nsd_zones())
    yield srv
    srv.signal_stop()
    srv.wait_stopped(time.monotonic() + 5)


def unbound_lines(port: int, domains: list[str]) -> list[str]:
    return ["do-not-query-localhost: no", 'local-zone: "lan." static',
            *(f'local-data: "{r}"' for r in LOCAL),
            *(f"private-address: {n}" for n in PRIVATE),
            *(f'private-domain: "{d}"' for d in domains),
            "forward-zone:", f'  name: "{FWD}"', f"  forward-addr: 127.0.0.1@{port}",
            "stub-zone:", f'  name: "{STUB}"', f"  stub-addr: 127.0.0.1@{port}"]


def corenet_config(port: int, domains: list[str]) -> str:
    def toml_list(items):
        return "[" + ", ".join(f'"{i}"' for i in items) + "]"
    return (f"do-not-query-localhost = false\nprivate-address = {toml_list(PRIVATE)}\n"
            f"private-domain = {toml_list(domains)}\n"
            f'[[local-zone]]\nname = "lan."\ntype = "static"\nlocal-data = {toml_list(LOCAL)}\n'
            f'[[forward-zone]]\nname = "{FWD}"\nforward-addr = ["127.0.0.1@{port}"]\n'
            f'[[stub-zone]]\nname = "{STUB}"\nstub-addr = ["127.0.0.1@{port}"]\n')


@pytest.fixture(scope="module", params=[False, True], ids=["no-private-domain", "private-domain"])
def pair(request, nsd, tmp_path_factory):
    from dnslab.unbound import local_unbound, unasked_root_hints

    installed("unbound", "unbound")
    allow = request.param
    domains = [f"ok.{FWD}", f"ok.{STUB}"] if allow else []
    w = tmp_path_factory.mktemp("private-pair")
    hints = unasked_root_hints(w / "root.hints")
    (w / "unbound").mkdir()
    uport = pick_port(["127.0.0.1"])
    proc = local_unbound(w / "unbound", uport,
                         [f'root-hints: "{hints}"', *unbound_lines(nsd.port, domains)])
    conf = w / "corenet-resolver.toml"
    conf.write_text(corenet_config(nsd.port, domains))
    d = Daemon(w / "daemon", None, "--config", str(conf), "--root-hints", str(hints))
    try:
        d.start()
        yield uport, d, allow
    finally:
        d.stop()
        stop_process(proc, 5.0, group=True)


def ask(port: int, name: str, rdtype: str) -> dns.message.Message:
    return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port,
                         timeout=8)


def shape(m: dns.message.Message):
    """rcode, answer data, and the count of rrsets in each section."""
    data = sorted(rd.to_text() for rrset in m.answer for rd in rrset)
    return (m.rcode(), data, len(m.answer), len(m.authority), len(m.additional))


@pytest.mark.parametrize("question", QUESTIONS, ids=lambda q: f"{q[0]}{q[1]}")
def test_the_same_answers_as_unbound(pair, question):
    uport, d, allow = pair
    name, rdtype = question
    theirs, ours = ask(uport, name, rdtype), ask(d.port, name, rdtype)
    assert shape(ours) == shape(theirs), f"ours:\n{ours}\nunbound:\n{theirs}"
    zone = FWD if name.endswith(FWD) else STUB
    label = name[:-len(zone) - 1]
    expected = (ALLOWED if allow else PUBLIC).get((label, rdtype), [])
    assert shape(ours)[:2] == (dns.rcode.NOERROR, sorted(e.format(z=zone) for e in expected))


def test_local_data_is_never_filtered(pair):
    uport, d, _ = pair
    for port in (uport, d.port):
        assert shape(ask(port, "nas.lan.", "A"))[:2] == (dns.rcode.NOERROR, ["192.168.7.7"])


@pytest.mark.parametrize("private, name", [
    ("192.0.2.11/32", "www.example.com."),     # one record of a signed rrset taken out
    ("192.0.2.0/24", "www.example.com."),      # the whole signed rrset taken out
    ("192.0.2.0/24", "x.wild.example.com."),   # a signed wildcard's answer
])
def test_a_signed_answer_with_private_addresses_is_bogus_never_vouched_for(
        signed_lab, tmp_path, private, name):
    """The guard runs before validation: a signed rrset it takes records out of no longer
    matches its signature (and one it takes out whole leaves a signature with no data and no
    proof of NODATA), so the answer is bogus: SERVFAIL, never NOERROR with the private data
    gone and AD set, nor the stripped set passed off as insecure. An unsigned zone's
    answer is filtered as anywhere else."""
    lab, anchor = signed_lab
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text(f'private-address = ["{private}"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf), "--trust-anchor", str(anchor))
    try:
        d.start()
        for _ in range(2):                       # the miss, then the cache's answer
            q = dns.message.make_query(name, "A", want_dnssec=True)
            r = d.ask(q)
            assert r.rcode() == dns.rcode.SERVFAIL, r
            assert not r.flags & dns.flags.AD and not r.answer
        # an unsigned zone's address (192.0.2.150): filtered when private, NOERROR either way
        import ipaddress
        r = d.ask(dns.message.make_query("www.insecure.com.", "A", want_dnssec=True))
        hidden = ipaddress.ip_address("192.0.2.150") in ipaddress.ip_network(private)
        assert (r.rcode(), bool(r.answer), r.flags & dns.flags.AD) == (
            dns.rcode.NOERROR, not hidden, 0), r
        # and a signed answer the guard leaves alone is still validated
        r = d.ask(dns.message.make_query("www.example.net.", "A", want_dnssec=True))
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AD, r
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
