"""Unbound, validating with the same trust anchor over the same signed lab, gives the same
rcode, AD bit and answer data as our validator for every DNSSEC case (and the case table's
expectations hold for it too). Unbound only queries port 53, so the lab runs there."""
from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from dnslab import LabError
from dnslab import zones as Z
from dnslab.unbound import Unbound, lab_on_port_53
from dnssec_cases import CASES, check


def _validating_unbound(workdir, lab, anchor) -> Unbound:
    return Unbound.start(workdir, lab, extra="\n".join([
        '  module-config: "validator iterator"',
        f'  trust-anchor-file: "{anchor}"',
        "  val-log-level: 2",
        "  ede: yes",
    ]))


@pytest.fixture(scope="module")
def unbound_signed(tmp_path_factory):
    import dnssec_lab

    missing = dnssec_lab.tools_missing()
    if missing:
        pytest.skip(f"{missing} not installed")
    addresses = sorted(set(Z.ALL_ADDRESSES) | {s.address for s in dnssec_lab.SERVERS})
    tmp = tmp_path_factory.mktemp("unbound-dnssec")
    zones, servers, anchor = dnssec_lab.build(tmp / "keys")
    lab = lab_on_port_53(tmp / "lab", addresses, zone_texts=zones, servers=servers)
    try:
        ub = _validating_unbound(tmp / "unbound", lab, anchor)
    except LabError:
        lab.stop()
        raise
    try:
        yield lab, anchor, ub
    finally:
        ub.stop()
        lab.stop()


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_same_verdict_as_unbound(unbound_signed, case):
    import resolver

    lab, anchor, ub = unbound_signed
    q = dns.message.make_query(case.qname, case.rdtype, want_dnssec=True)
    theirs = dns.query.udp(q, ub.address, port=ub.port, timeout=10)
    if theirs.flags & dns.flags.TC:
        theirs = dns.query.tcp(q, ub.address, port=ub.port, timeout=10)

    async def ours_():
        r = resolver.Resolver(root_hints=lab.root_hints, port=53, trust_anchor=anchor,
                              do_not_query_localhost=False)
        try:
            return await r.resolve_message(q)
        finally:
            await r.close()

    ours = asyncio.run(ours_())
    assert theirs.rcode() == ours.rcode(), (theirs, ours)
    assert bool(theirs.flags & dns.flags.AD) == bool(ours.flags & dns.flags.AD), (theirs, ours)

    def data(m):
        return {(rr.name, rr.rdtype, frozenset(x.to_text() for x in rr)) for rr in m.answer
                if rr.rdtype != dns.rdatatype.RRSIG}

    assert data(theirs) == data(ours)
    check(case, theirs, do=True)            # Unbound's EDE codes are ours too


#: query flags for the variant comparison: (EDNS, DO, AD, CD)
FLAG_VARIANTS = [(False, False, False, False), (False, False, True, False),
                 (True, False, False, False), (True, False, True, False),
                 (True, True, False, False), (True, True, True, False),
                 (True, True, False, True), (False, False, True, True)]


def test_daemon_shows_ad_rrsigs_and_cd_as_unbound_does(unbound_signed, tmp_path):
    """The daemon (``serve --trust-anchor``) and Unbound over the same lab agree, for each
    mix of EDNS/DO/AD/CD, on the rcode, AD, CD and whether RRSIGs come back; asked twice,
    so the second answers come from each one's cache whoever filled it."""
    from daemon_proc import Daemon

    lab, anchor, ub = unbound_signed
    d = Daemon(tmp_path / "daemon", lab, "--trust-anchor", str(anchor)).start()
    try:
        for name in ("www.example.com.", "nope.example.net.", "www.insecure.com.",
                     "www.altered.com."):
            for _round in range(2):
                for edns, do, ad, cd in FLAG_VARIANTS:
                    q = dns.message.make_query(name, "A", use_edns=0 if edns else False,
                                               want_dnssec=do)
                    q.flags &= ~(dns.flags.AD | dns.flags.CD)
                    q.flags |= (dns.flags.AD if ad else 0) | (dns.flags.CD if cd else 0)
                    answers = []
                    for addr, port in ((ub.address, ub.port), ("127.0.0.1", d.port)):
                        r = dns.query.udp(q, addr, port=port, timeout=10)
                        if r.flags & dns.flags.TC:
                            r = dns.query.tcp(q, addr, port=port, timeout=10)
                        sigs = any(rr.rdtype == dns.rdatatype.RRSIG for rr in r.answer)
                        answers.append((r.rcode(), bool(r.flags & dns.flags.AD),
                                        bool(r.flags & dns.flags.CD), sigs))
                    assert answers[0] == answers[1], (name, (edns, do, ad, cd), answers)
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def _owners_and_types(section) -> list:
    return sorted((rr.name.to_text().lower(), dns.rdatatype.to_text(rr.rdtype))
                  for rr in section)


def test_ns_answers_carry_the_server_addresses_unbound_s_do(unbound_signed, tmp_path):
    """An NS answer's additional section, daemon beside Unbound: in a signed zone the
    servers' addresses its own keys signed (proven from the reply's additional section,
    with their RRSIGs for DO), in an unsigned or insecure one the addresses as they came;
    with and without DO, fresh and from the cache."""
    from daemon_proc import Daemon

    lab, anchor, ub = unbound_signed
    d = Daemon(tmp_path / "daemon", lab, "--trust-anchor", str(anchor)).start()
    try:
        for name in ("example.com.", "example.net.", "twoalg.com.", "com.", "net.", "org.",
                     "unsigned.org.", "insecure.com."):
            for _round in range(2):
                for do in (False, True):
                    q = dns.message.make_query(name, "NS", use_edns=0, want_dnssec=do)
                    answers = []
                    for addr, port in ((ub.address, ub.port), ("127.0.0.1", d.port)):
                        r = dns.query.udp(q, addr, port=port, timeout=10)
                        answers.append((r.rcode(), bool(r.flags & dns.flags.AD),
                                        _owners_and_types(r.answer),
                                        _owners_and_types(r.additional)))
                    assert answers[0] == answers[1], (name, do, answers)
                    if name == "example.com." and do:
                        assert ("ns1.example.com.", "RRSIG") in answers[0][3], answers[0]
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def _sections(r) -> tuple:
    def rrsets(section):
        return sorted((rr.name.to_text().lower(), dns.rdatatype.to_text(rr.rdtype),
                       dns.rdatatype.to_text(rr.covers) if rr.rdtype == dns.rdatatype.RRSIG
                       else "") for rr in section)
    return (r.rcode(), dns.flags.to_text(r.flags), rrsets(r.answer), rrsets(r.authority),
            rrsets(r.additional))


def _both_sections(q, ub, d) -> list:
    """``_sections`` of Unbound's answer to ``q`` and of the daemon's (over TCP if TC)."""
    answers = []
    for addr, port in ((ub.address, ub.port), ("127.0.0.1", d.port)):
        r = dns.query.udp(q, addr, port=port, timeout=10)
        if r.flags & dns.flags.TC:
            r = dns.query.tcp(q, addr, port=port, timeout=10)
        answers.append(_sections(r))
    return answers


def test_every_case_s_sections_as_unbound_s(unbound_signed, tmp_path):
    """The case table asked of the daemon and of Unbound: without EDNS, then with EDNS
    with and without DO (answers made from the rrsets all the first round's questions
    cached), then all three again (from the message caches): the same rcode, flags and
    rrsets (owner, type, type covered) in each section, so nothing one answer's rrsets
    keep in the cache (a wildcard's proof, a server's address) follows them into
    another's."""
    from daemon_proc import Daemon

    lab, anchor, ub = unbound_signed
    d = Daemon(tmp_path / "daemon", lab, "--trust-anchor", str(anchor)).start()
    plain, edns, do = (False, False), (True, False), (True, True)
    try:
        for variants in ((plain,), (edns, do), (plain, edns, do)):
            for case in CASES:
                for use_edns, want_dnssec in variants:
                    q = dns.message.make_query(case.qname, case.rdtype,
                                               use_edns=0 if use_edns else False,
                                               want_dnssec=want_dnssec)
                    answers = _both_sections(q, ub, d)
                    assert answers[0] == answers[1], (case.id, use_edns, want_dnssec,
                                                      answers)
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_any_and_rrsig_questions_as_unbound_s(unbound_signed, tmp_path):
    """ANY and RRSIG questions, asked of a daemon and of an Unbound that have seen nothing
    else (Unbound answers a later ANY from what its cache holds of six types): the same
    rcode, flags and sections. ANY's rrsets are validated (AD for DO), come with their
    RRSIGs with or without DO (RFC 4035 3.2.1), and a name whose NSEC range is cached is
    not taken for NODATA; an RRSIG question gets the name's signatures (never AD: they
    have none of their own), and one for a name or type that is not there its proven
    denial (AD for DO)."""
    from daemon_proc import Daemon

    lab, anchor, _ = unbound_signed
    ub = _validating_unbound(tmp_path / "unbound", lab, anchor)
    d = Daemon(tmp_path / "daemon", lab, "--trust-anchor", str(anchor)).start()
    questions = [(n, "ANY") for n in ("example.com.", "www.example.com.", "insecure.com.",
                                      "nope.example.com.", "nope.dname.example.com.")]
    questions += [(n, "RRSIG") for n in ("example.com.", "www.example.com.",
                                         "nope.example.com.", "b.ent.example.com.",
                                         "insecure.com.")]
    seen = set()
    try:
        for name, rdtype in questions:
            for do in (False, True):
                q = dns.message.make_query(name, rdtype, use_edns=0, want_dnssec=do)
                answers = _both_sections(q, ub, d)
                assert answers[0] == answers[1], (name, rdtype, do, answers)
                seen.add((name, rdtype, do, answers[0][1], bool(answers[0][2])))
        # the table holds what the docstring says
        assert ("www.example.com.", "ANY", True, "QR RD RA AD", True) in seen
        assert ("www.example.com.", "RRSIG", True, "QR RD RA", True) in seen
        assert ("nope.example.com.", "RRSIG", True, "QR RD RA AD", False) in seen
    finally:
        ub.stop()
        assert d.stop() == 0, d.log_text()[-2000:]


def test_harden_algo_downgrade_as_unbound(unbound_signed, tmp_path):
    """With ``harden-algo-downgrade: yes`` on both, over the lab's twoalg.com. (signed with
    ECDSA P-256 and Ed25519, a DS for each, the Ed25519 RRSIG over down/A left out): the
    daemon (its unbound.conf line, served as it is) and Unbound give the same rcode and AD,
    www secure and down SERVFAIL; the library's ``Resolver(harden_algo_downgrade=True)`` as
    well. Off, both names are secure (the cases above)."""
    import resolver
    from daemon_proc import Daemon

    lab, anchor, _ = unbound_signed
    setting = "  harden-algo-downgrade: yes"
    ub = Unbound.start(tmp_path / "unbound", lab, extra="\n".join([
        '  module-config: "validator iterator"', f'  trust-anchor-file: "{anchor}"',
        setting]))
    conf = tmp_path / "unbound.conf"
    conf.write_text(f"server:\n{setting}\n  trust-anchor-file: \"{anchor}\"\n")
    d = Daemon(tmp_path / "daemon", lab, "--config", str(conf)).start()

    async def library(q):
        r = resolver.Resolver(root_hints=lab.root_hints, port=53, trust_anchor=anchor,
                              do_not_query_localhost=False, harden_algo_downgrade=True)
        try:
            return await r.resolve_message(q)
        finally:
            await r.close()

    try:
        for name, rcode in (("www.twoalg.com.", dns.rcode.NOERROR),
                            ("down.twoalg.com.", dns.rcode.SERVFAIL)):
            q = dns.message.make_query(name, "A", want_dnssec=True)
            answers = [dns.query.udp(q, addr, port=port, timeout=10)
                       for addr, port in ((ub.address, ub.port), ("127.0.0.1", d.port))]
            answers.append(asyncio.run(library(q)))
            seen = [(r.rcode(), bool(r.flags & dns.flags.AD)) for r in answers]
            assert seen == [(rcode, rcode == dns.rcode.NOERROR)] * 3, (name, seen)
    finally:
        ub.stop()
        assert d.stop() == 0, d.log_text()[-2000:]


def _validation_lines(text: str) -> list[str]:
    return [line.split(" info: ", 1)[1] for line in text.splitlines()
            if " info: validation failure" in line]


@pytest.mark.parametrize("level", [1, 2])
def test_failed_validations_are_logged_as_unbound_s_val_log_level(unbound_signed, tmp_path,
                                                                    level):
    """The same val-log-level for a fresh Unbound and the daemon over the same lab: one line
    per failed validation, none for the bogus answer asked again (from the cache) or for
    a secure one."""
    from daemon_proc import Daemon

    lab, anchor, _ = unbound_signed
    ub = Unbound.start(tmp_path / "unbound", lab, extra="\n".join([
        '  module-config: "validator iterator"', f'  trust-anchor-file: "{anchor}"',
        f"  val-log-level: {level}"]))
    conf = tmp_path / "corenet-resolver.toml"
    conf.write_text(f"val-log-level = {level}\nverbosity = 0\n")
    d = Daemon(tmp_path / "daemon", lab, "--trust-anchor", str(anchor),
               "--config", str(conf)).start()
    names = ("www.altered.com.", "www.expired.com.", "www.example.com.")
    try:
        for name in names * 2:
            for addr, port in ((ub.address, ub.port), ("127.0.0.1", d.port)):
                r = dns.query.udp(dns.message.make_query(name, "A", want_dnssec=True), addr,
                                  port=port, timeout=10)
                assert (r.rcode() == dns.rcode.NOERROR) == (name == "www.example.com.")
    finally:
        ub.stop()
        assert d.stop() == 0, d.log_text()[-2000:]
    theirs = _validation_lines((ub.workdir / "unbound.log").read_text())
    ours = _validation_lines(d.log_text())
    if level == 1:
        assert ours == theirs == ["validation failure www.altered.com. A IN",
                                  "validation failure www.expired.com. A IN"]
        return
    assert len(ours) == len(theirs) == 2, (ours, theirs)
    for mine, unbound_s, name in zip(ours, theirs, names):
        head = f"validation failure <{name} A IN>: "
        assert mine.startswith(head) and unbound_s.startswith(head), (mine, unbound_s)
        # the reason, then the server that gave the data, the one Unbound names
        reason, _, server = mine[len(head):].rpartition(" from ")
        assert reason and server == unbound_s[len(head):].split(" from ")[1].split()[0]
    print("\n".join(["ours:", *ours, "Unbound's:", *theirs]))
