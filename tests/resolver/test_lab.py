"""The lab itself, checked with plain dnspython queries to each server: so a resolver test
that fails points at the resolver, not at the lab."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

import dns.exception
import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import dns.zone
import pytest

from dnslab import CASES, Lab, LabError, bulk_names, many_zone_names
from dnslab import zones as Z
from ports import bind_all, loopback_usable

HERE = os.path.dirname(__file__)


def rdata_set(msg: dns.message.Message, name: str, rdtype: str) -> set[str]:
    rrset = msg.get_rrset(msg.answer, dns.name.from_text(name), dns.rdataclass.IN,
                          dns.rdatatype.from_text(rdtype))
    return {r.to_text() for r in rrset} if rrset else set()


def referral(msg: dns.message.Message) -> tuple[str, set[str], dict[str, str]]:
    """(delegated zone, NS names, glue name -> address) of a referral."""
    assert not msg.answer and not msg.flags & dns.flags.AA, msg
    ns = [rr for rr in msg.authority if rr.rdtype == dns.rdatatype.NS]
    assert len(ns) == 1, msg
    glue = {rr.name.to_text(): r.to_text() for rr in msg.additional
            if rr.rdtype == dns.rdatatype.A for r in rr}
    return ns[0].name.to_text(), {r.target.to_text() for r in ns[0]}, glue


def test_loopback_addresses_beyond_127_0_0_1_are_usable():
    assert all(loopback_usable(a) for a in Z.ALL_ADDRESSES)


def test_every_server_answers_for_its_zones_authoritatively(lab):
    for spec in Z.SERVERS:
        for origin in spec.zones:
            r = lab.ask(spec.address, origin, "SOA")
            assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.AA, (spec.address, origin)
            assert rdata_set(r, origin, "SOA"), (spec.address, origin)


def test_root_served_by_both_hint_addresses_refers_to_tlds_with_glue(lab):
    assert [a for _, a in lab.root_hints] == [Z.ROOT_A, Z.ROOT_B]
    for addr in (Z.ROOT_A, Z.ROOT_B):
        zone, ns, glue = referral(lab.ask(addr, "www.example.com.", "A"))
        assert zone == "com." and ns == {"a.gtld-servers.net.", "b.gtld-servers.net."}
        assert glue == {"a.gtld-servers.net.": Z.GTLD_A, "b.gtld-servers.net.": Z.GTLD_B}
        zone, ns, glue = referral(lab.ask(addr, "www.example.", "A"))
        assert zone == "example." and ns == {"ns1.nic.org."} and glue == {"ns1.nic.org.": Z.NIC_ORG}
        zone, ns, glue = referral(lab.ask(addr, "x.fault.", "A"))
        assert glue == {"ns1.fault.": Z.FAKE_TLD_1, "ns2.fault.": Z.FAKE_TLD_2}


def test_second_level_referrals_with_and_without_glue(lab):
    zone, ns, glue = referral(lab.ask(Z.GTLD_B, "www.example.com.", "A"))
    assert zone == "example.com." and glue == {"ns1.example.com.": Z.EXAMPLE_COM_1,
                                                "ns2.example.com.": Z.EXAMPLE_COM_2}
    # out of bailiwick: the NS name lives in another TLD, so no glue can be given
    zone, ns, glue = referral(lab.ask(Z.NIC_ORG, "www.oob.org.", "A"))
    assert (zone, ns, glue) == ("oob.org.", {"ns1.example.net."}, {})
    zone, ns, glue = referral(lab.ask(Z.NIC_ORG, "www.oobchain.org.", "A"))
    assert (zone, ns, glue) == ("oobchain.org.", {"ns.oob.org."}, {})
    # the cycle: cyc1.com. -> ns.cyc2.net. -> ns.cyc1.com.
    assert referral(lab.ask(Z.GTLD_A, "www.cyc1.com.", "A"))[1:] == ({"ns.cyc2.net."}, {})
    assert referral(lab.ask(Z.GTLD_A, "ns.cyc2.net.", "A"))[1:] == ({"ns.cyc1.com."}, {})
    # broken delegations point at the silent, refused and lame addresses
    assert referral(lab.ask(Z.GTLD_A, "www.alldead.com.", "A"))[2] == {
        "ns1.alldead.com.": Z.SILENT, "ns2.alldead.com.": Z.REFUSED}
    assert referral(lab.ask(Z.GTLD_A, "www.alllame.com.", "A"))[2] == {"ns1.alllame.com.": Z.LAME}
    assert referral(lab.ask(Z.GTLD_A, "www.mixed.com.", "A"))[2] == {
        "ns1.mixed.com.": Z.FAKE_MIXED, "ns2.mixed.com.": Z.EXAMPLE_COM_2}


@pytest.mark.parametrize("case", [c for c in CASES if c.auth], ids=lambda c: c.id)
def test_case_data_served_by_its_authority(lab, case):
    """The expected data of every case is what its authority serves."""
    r = lab.ask(case.auth, case.canonical_name, case.rdtype, tcp=case.kind == "TC then TCP")
    assert r.flags & dns.flags.AA
    assert dns.rcode.to_text(r.rcode()) == case.rcode
    if case.has_data:
        assert rdata_set(r, case.canonical_name, case.rdtype) == set(case.data)
    else:
        assert not rdata_set(r, case.canonical_name, case.rdtype)
        soa = [rr for rr in r.authority if rr.rdtype == dns.rdatatype.SOA]
        assert soa and soa[0].ttl == Z.NEG_TTL  # negative answers carry the SOA (RFC 2308)


def test_cname_chain_crosses_zones_at_every_link(lab):
    for n in (8, 20):
        name = f"chain{n}-00.example.com."
        for i in range(n):
            addr = Z.EXAMPLE_COM_1 if i % 2 == 0 else Z.EXAMPLE_NET
            r = lab.ask(addr, name, "A")
            cname = [rr for rr in r.answer if rr.rdtype == dns.rdatatype.CNAME]
            assert len(cname) == 1 and not rdata_set(r, cname[0][0].target.to_text(), "A")
            name = cname[0][0].target.to_text()
        assert name == f"chain{n}-{n:02d}.example.{'com' if n % 2 == 0 else 'net'}."


def test_cname_loop_and_dname_synthesis(lab):
    r = lab.ask(Z.EXAMPLE_COM_1, "loop1.example.com.", "A")
    assert rdata_set(r, "loop1.example.com.", "CNAME") == {"loop2.example.net."}
    r = lab.ask(Z.EXAMPLE_NET, "loop2.example.net.", "A")
    assert rdata_set(r, "loop2.example.net.", "CNAME") == {"loop1.example.com."}
    r = lab.ask(Z.EXAMPLE_COM_2, "www.dname.example.com.", "A")
    assert rdata_set(r, "dname.example.com.", "DNAME") == {"example.net."}
    assert rdata_set(r, "www.dname.example.com.", "CNAME") == {"www.example.net."}


def test_wildcard_answer_is_owned_by_the_query_name(lab):
    r = lab.ask(Z.EXAMPLE_COM_1, "any.thing.wild.example.com.", "A")
    assert rdata_set(r, "any.thing.wild.example.com.", "A") == {"192.0.2.80"}


def test_big_rrset_is_truncated_over_udp_and_whole_over_tcp(lab):
    r = lab.ask(Z.EXAMPLE_COM_1, "big.example.com.", "TXT")
    assert r.flags & dns.flags.TC and len(rdata_set(r, "big.example.com.", "TXT")) < 40
    r = lab.ask(Z.EXAMPLE_COM_1, "big.example.com.", "TXT", tcp=True)
    assert len(rdata_set(r, "big.example.com.", "TXT")) == 40 and len(r.to_wire()) > 1232


def test_lame_server_refuses_the_zones_delegated_to_it(lab):
    for name in ("www.lame.com.", "www.alllame.com."):
        r = lab.ask(Z.LAME, name, "A")
        assert r.rcode() == dns.rcode.REFUSED and not r.answer


def test_silent_address_never_answers_udp_or_tcp(lab):
    with pytest.raises(dns.exception.Timeout):
        lab.ask(Z.SILENT, "www.dead.com.", "A", timeout=0.3)
    with pytest.raises(dns.exception.Timeout):
        lab.ask(Z.SILENT, "www.dead.com.", "A", tcp=True, timeout=0.3)


def test_refused_address_has_nothing_bound(lab):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        s.connect((Z.REFUSED, lab.port))
        s.send(dns.message.make_query("www.deadr.com.", "A").to_wire())
        with pytest.raises(ConnectionRefusedError):
            s.recv(512)


def test_cache_names_and_many_zones_all_served(lab):
    for name, addr in bulk_names():
        assert rdata_set(lab.ask(Z.BULK, name, "A"), name, "A") == {addr}
    for name, addr in many_zone_names():
        assert rdata_set(lab.ask(Z.MANY, name, "A"), name, "A") == {addr}
        zone = name.split(".", 1)[1]
        assert referral(lab.ask(Z.NIC_ORG, name, "A"))[2] == {f"ns.{zone}": Z.MANY}


def test_rate_limiting_is_off(lab):
    """NSD's default RRL would drop most of a burst from one source."""
    for i in range(400):
        r = lab.ask(Z.BULK, f"h{i % 500:03d}.bulk.net.", "A", timeout=1.0)
        assert r.rcode() == dns.rcode.NOERROR and not r.flags & dns.flags.TC


def test_root_hints_file_has_the_usual_format(lab):
    z = dns.zone.from_file(str(lab.root_hints_file), origin=".", relativize=False, check_origin=False)
    ns = {r.target.to_text() for r in z.find_rdataset(".", "NS")}
    assert ns == {n for n, _ in lab.root_hints}
    for name, addr in lab.root_hints:
        assert {r.to_text() for r in z.find_rdataset(name, "A")} == {addr}


def test_start_fails_cleanly_when_the_port_is_taken(tmp_path):
    from ports import pick_port

    port = pick_port(Z.ALL_ADDRESSES)
    held = bind_all([Z.GTLD_B], port)
    try:
        with pytest.raises(LabError, match=Z.GTLD_B):
            Lab.start(tmp_path, port=port, timeout=5)
    finally:
        for s in held:
            s.close()
    # nothing left behind on the addresses that did bind
    for s in bind_all([a for a in Z.ALL_ADDRESSES if a != Z.GTLD_B], port):
        s.close()


def test_a_lab_with_other_zones_and_servers(tmp_path):
    """Later issues (DNSSEC) swap in their own zones: the lab serves what it is given."""
    root = Z.root_zone() + "signed. NS ns.signed.\nns.signed. A 127.0.0.40\n"
    child = "$ORIGIN signed.\n$TTL 60\n@ SOA ns hm 1 60 60 60 60\n@ NS ns\nns A 127.0.0.40\nwww A 192.0.2.240\n"
    servers = (Z.Server(Z.ROOT_A, (".",), "root"), Z.Server("127.0.0.40", ("signed.",), "ns.signed."))
    with Lab.start(tmp_path, zone_texts={".": root, "signed.": child}, servers=servers) as lab:
        assert referral(lab.ask(Z.ROOT_A, "www.signed.", "A"))[2] == {"ns.signed.": "127.0.0.40"}
        assert rdata_set(lab.ask("127.0.0.40", "www.signed."), "www.signed.", "A") == {"192.0.2.240"}
        assert [s.address for s in lab.servers] == [Z.ROOT_A, "127.0.0.40"]


def test_python_m_dnslab_runs_in_the_foreground_and_stops_on_sigint(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "dnslab", "--dir", str(tmp_path)], cwd=HERE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for _ in range(100):
            line = proc.stdout.readline()
            if not line:
                break
            if line.startswith("PORT="):
                port = int(line.split("=")[1])
            if line.startswith("ROOT_HINTS="):
                assert f"a.root-servers.net.={Z.ROOT_A}" in line
                break
        assert port, proc.stderr.read()
        q = dns.message.make_query(".", "NS")
        r = dns.query.udp(q, Z.ROOT_A, port=port, timeout=2)
        assert rdata_set(r, ".", "NS") == {"a.root-servers.net.", "b.root-servers.net."}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
        # every server gone: the port is free again on every address
        for s in bind_all(Z.ALL_ADDRESSES, port):
            s.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
