"""``corenet-resolver serve --trust-anchor FILE`` over the signed lab (``dnssec_lab``),
through real sockets: every DNSSEC case of the library tests (``dnssec_cases``) with DO set,
asked twice so the second answer comes from the daemon's C cache-hit path; AD only for a
client that set DO or AD, whichever client filled the cache; CD; EDE on bogus answers;
and ``--no-validate``."""
from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import pytest

from daemon_proc import Daemon
from dnssec_cases import BY_ID, CASES, DCase, _ede, check
from dnssec_cases import flagged_query as _q


def _a(resp: dns.message.Message) -> set[str]:
    return {x.to_text() for rr in resp.answer if rr.rdtype == dns.rdatatype.A for x in rr}


def _ask(d: Daemon, q: dns.message.Message) -> dns.message.Message:
    """UDP, then TCP when the answer was truncated (the DO answers with RRSIGs can be)."""
    r = d.ask(q)
    if r.flags & dns.flags.TC:
        assert not r.answer, "a truncated answer carries no records"
        r = d.ask(q, tcp=True)
    assert r.id == q.id
    return r


@pytest.fixture(scope="module")
def validating_daemon(signed_lab, tmp_path_factory):
    lab, anchor = signed_lab
    d = Daemon(tmp_path_factory.mktemp("dnssec-daemon"), lab,
               "--trust-anchor", str(anchor)).start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


@pytest.fixture(scope="module")
def plain_daemon(signed_lab, tmp_path_factory):
    lab, anchor = signed_lab
    d = Daemon(tmp_path_factory.mktemp("dnssec-daemon-off"), lab,
               "--trust-anchor", str(anchor), "--no-validate").start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_every_signed_lab_case_with_do(validating_daemon, case):
    """Secure answers with AD and RRSIGs, secure NXDOMAIN/NODATA with their proofs,
    insecure answers without AD, bogus ones SERVFAIL with the case's EDE code; the same
    again from the cache (the C hit path for answers, the bogus cache for SERVFAIL) and
    over TCP."""
    d = validating_daemon
    first = _ask(d, _q(case.qname, case.rdtype, do=True))
    check(case, first, do=True)
    if case.rcode in ("NXDOMAIN", "NOERROR") and case.ad and not case.data:
        proofs = [rr for rr in first.authority
                  if rr.rdtype in (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)]
        if case.rdtype not in ("DNSKEY", "DS"):
            assert proofs, "a secure denial carries its NSEC/NSEC3 proof with DO"
    again = _ask(d, _q(case.qname, case.rdtype, do=True))
    check(case, again, do=True)
    q = _q(case.qname, case.rdtype, do=True)
    check(case, d.ask(q, tcp=True), do=True)


@pytest.mark.parametrize("case", [c for c in CASES if c.rcode != "SERVFAIL"][:10],
                         ids=lambda c: c.id)
def test_no_ad_and_no_rrsigs_unless_asked(validating_daemon, case):
    d = validating_daemon
    for _ in range(2):                    # filled by the engine, then the C hit path
        for edns in (False, True):
            resp = _ask(d, _q(case.qname, case.rdtype, edns=edns))
            check(DCase(case.qname, case.rdtype, case.rcode, False, case.data), resp, do=False)
            # AD asked without DO: AD on secure data (RFC 6840 5.7), still no RRSIGs
            check(case, _ask(d, _q(case.qname, case.rdtype, edns=edns, ad=True)), do=False)


@pytest.mark.parametrize("name,first_ad", [("mail.example.com.", False),
                                           ("ns1.example.com.", True)])
def test_the_client_that_fills_the_cache_does_not_decide_ad(validating_daemon, name,
                                                            first_ad):
    """Before the AD bit was part of the cache key, the second query here got the first
    one's AD bit from the C hit path."""
    d = validating_daemon
    order = [first_ad, not first_ad, first_ad, not first_ad]
    upstream = None
    for ad in order:
        resp = _ask(d, _q(name, "A", ad=ad))
        assert resp.rcode() == dns.rcode.NOERROR and resp.answer
        assert bool(resp.flags & dns.flags.AD) == ad, (name, ad)
        if upstream is None:
            upstream = d.stats()["engine"]["upstream_queries"]
    for ad in order:
        resp = _ask(d, _q(name, "A", edns=True, ad=ad))
        assert bool(resp.flags & dns.flags.AD) == ad, (name, "edns", ad)
    assert d.stats()["engine"]["upstream_queries"] == upstream, "all but the first from cache"


def test_cd_returns_bogus_data_and_is_echoed(validating_daemon):
    d = validating_daemon
    for _ in range(2):
        resp = _ask(d, _q("www.altered.com.", do=True, cd=True))
        assert resp.rcode() == dns.rcode.NOERROR
        assert resp.flags & dns.flags.CD and not resp.flags & dns.flags.AD
        rrset = resp.find_rrset(resp.answer, dns.name.from_text("www.altered.com."),
                                dns.rdataclass.IN, dns.rdatatype.A)
        assert {x.to_text() for x in rrset} == {"192.0.2.154"}
        assert [rr for rr in resp.answer if rr.rdtype == dns.rdatatype.RRSIG], \
            "DO: the (failing) RRSIGs come with the unvalidated data"
        bogus = _ask(d, _q("www.altered.com.", do=True))
        assert bogus.rcode() == dns.rcode.SERVFAIL and _ede(bogus) == [6]
        assert not bogus.answer
    # CD on secure data: the data, and AD for a client that asked (RFC 3655 2, as Unbound)
    resp = _ask(d, _q("www.example.com.", ad=True, cd=True))
    assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD
    resp = _ask(d, _q("www.example.com.", cd=True))
    assert resp.rcode() == dns.rcode.NOERROR and not resp.flags & dns.flags.AD
    assert _a(resp) == set(BY_ID["www.example.com.A"].data)


def test_bogus_without_edns_is_a_plain_servfail(validating_daemon):
    """EDE needs an OPT record: a client without EDNS gets SERVFAIL and nothing else."""
    resp = _ask(validating_daemon, _q("www.expired.com."))
    assert resp.rcode() == dns.rcode.SERVFAIL and resp.edns < 0 and not resp.answer


def test_bogus_answers_are_not_revalidated_by_the_daemon(validating_daemon):
    d = validating_daemon
    _ask(d, _q("www.badds.com.", do=True))
    before = d.stats()["engine"]["upstream_queries"]
    for _ in range(5):
        resp = _ask(d, _q("www.badds.com.", do=True))
        assert resp.rcode() == dns.rcode.SERVFAIL and _ede(resp) == [9]
    assert d.stats()["engine"]["upstream_queries"] == before


def test_no_validate_serves_bogus_data_without_ad(plain_daemon):
    d = plain_daemon
    for name, data in (("www.altered.com.", "192.0.2.154"), ("www.expired.com.", "192.0.2.152"),
                       ("www.badds.com.", "192.0.2.151")):
        resp = _ask(d, _q(name, do=True))
        assert resp.rcode() == dns.rcode.NOERROR, name
        assert not [o for o in resp.options if o.otype == dns.edns.EDE]
        assert _a(resp) == {data}
    secure = _ask(d, _q("www.example.com.", do=True, ad=True))
    assert secure.rcode() == dns.rcode.NOERROR and not secure.flags & dns.flags.AD
