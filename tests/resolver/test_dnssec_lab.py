"""DNSSEC validation against a signed NSD hierarchy on loopback (``dnssec_lab``), on every
loop kind: secure, insecure and bogus answers, AD/CD/DO, EDE codes, the bogus cache, the
KeyTrap zone, and the cache not revalidating."""
from __future__ import annotations

import dns.dnssec
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
import dns.rrset
import pytest

from resolver import operations

from dnssec_cases import BY_ID, CASES, DCase, _ede, check


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_validation_with_do(run, validating, case):
    async def go():
        r = validating()
        q = dns.message.make_query(case.qname, case.rdtype, want_dnssec=True)
        resp = await r.resolve_message(q)
        check(case, resp, do=True)

    run(go(), timeout=15)


@pytest.mark.parametrize("case", [c for c in CASES if c.rcode != "SERVFAIL"][:8] +
                         [BY_ID["www.altered.com.A"]], ids=lambda c: c.id)
def test_no_ad_unless_asked_and_no_rrsigs_without_do(run, validating, case):
    async def go():
        r = validating()
        q = dns.message.make_query(case.qname, case.rdtype, use_edns=0)
        q.flags &= ~dns.flags.AD
        resp = await r.resolve_message(q)
        assert not resp.flags & dns.flags.AD
        assert dns.rcode.to_text(resp.rcode()) == case.rcode
        check(DCase(case.qname, case.rdtype, case.rcode, False, case.data, case.ede), resp,
              do=False)
        # AD asked without DO: AD on secure data (RFC 6840 5.7)
        r2 = validating()
        q2 = dns.message.make_query(case.qname, case.rdtype, use_edns=0)
        q2.flags |= dns.flags.AD
        resp2 = await r2.resolve_message(q2)
        check(case, resp2, do=False)

    run(go(), timeout=15)


def test_cd_returns_bogus_data_unvalidated(run, validating):
    async def go():
        r = validating()
        q = dns.message.make_query("www.altered.com.", "A", want_dnssec=True)
        q.flags |= dns.flags.CD
        resp = await r.resolve_message(q)
        assert resp.rcode() == dns.rcode.NOERROR
        assert not resp.flags & dns.flags.AD
        assert {x.to_text() for x in resp.find_rrset(resp.answer, dns.name.from_text(
            "www.altered.com."), dns.rdataclass.IN, dns.rdatatype.A)} == {"192.0.2.154"}
        # and without CD the same data is SERVFAIL
        q2 = dns.message.make_query("www.altered.com.", "A", want_dnssec=True)
        assert (await r.resolve_message(q2)).rcode() == dns.rcode.SERVFAIL

    run(go(), timeout=15)


def test_library_resolve_secure_insecure_bogus(run, validating):
    async def go():
        r = validating()
        ans = await r.resolve("www.example.com.", "A")
        assert ans.response.flags & dns.flags.AD
        assert {x.to_text() for x in ans.rrset} == {"192.0.2.1", "192.0.2.11"}
        ans = await r.resolve("www.insecure.com.", "A")
        assert not ans.response.flags & dns.flags.AD
        with pytest.raises(dns.resolver.NXDOMAIN):
            await r.resolve("nope.example.net.", "A")
        with pytest.raises(dns.resolver.NoNameservers, match="DNSSEC"):
            await r.resolve("www.expired.com.", "A")
        off = validating(validate=False)
        ans = await off.resolve("www.altered.com.", "A")
        assert {x.to_text() for x in ans.rrset} == {"192.0.2.154"}
        assert off.dnssec is None

    run(go(), timeout=15)


def test_bogus_answers_are_cached_briefly(run, validating):
    async def go():
        r = validating()
        q = dns.message.make_query("www.altered.com.", "A", want_dnssec=True)
        assert (await r.resolve_message(q)).rcode() == dns.rcode.SERVFAIL
        checks, upstream = r.dnssec.stats.sig_checks, r.stats.upstream_queries
        for _ in range(5):
            assert (await r.resolve_message(q)).rcode() == dns.rcode.SERVFAIL
        assert r.dnssec.stats.sig_checks == checks, "a bogus answer is not revalidated"
        assert r.stats.upstream_queries == upstream
        assert r.dnssec.stats.bogus_cached == 5
        # past the bogus TTL it is validated again
        r.clock = (lambda base=r.clock: lambda: base() + r.limits.dnssec_bogus_ttl + 1)()
        assert (await r.resolve_message(q)).rcode() == dns.rcode.SERVFAIL
        assert r.dnssec.stats.sig_checks > checks

    run(go(), timeout=15)


def test_cached_answers_are_not_revalidated(run, validating):
    async def go():
        r = validating()
        names = ["www.example.com.", "x.wild.example.com.", "nope.example.net.",
                 "xalias.example.com."]
        for n in names:
            await r.resolve_message(dns.message.make_query(n, "A", want_dnssec=True))
        checks = r.dnssec.stats.sig_checks
        assert checks > 0
        for _ in range(3):
            for n in names:
                resp = await r.resolve_message(dns.message.make_query(n, "A", want_dnssec=True))
                assert resp.flags & dns.flags.AD
        assert r.dnssec.stats.sig_checks == checks
        # another variant of the question (no DO) is built from validated rrsets: no crypto
        resp = await r.resolve_message(dns.message.make_query("www.example.com.", "A",
                                                              use_edns=0))
        assert r.dnssec.stats.sig_checks == checks
        assert not resp.flags & dns.flags.AD

    run(go(), timeout=15)


def test_keytrap_work_is_bounded(run, validating):
    """40 keys share one tag and 40 signatures name it: 1600 verifications without a budget.
    The answer is SERVFAIL because of the budget, not the time limit."""
    import dnssec_lab

    async def go():
        r = validating()
        q = dns.message.make_query("www.keytrap.org.", "A", want_dnssec=True)
        resp = await r.resolve_message(q)
        assert resp.rcode() == dns.rcode.SERVFAIL
        assert _ede(resp) == [6]
        lim = r.limits
        # the chain (root, org., keytrap.org. DNSKEY + DS) needs one check per rrset; the
        # A rrset gets at most the per-rrset budget
        assert r.dnssec.stats.sig_checks <= 6 + lim.dnssec_max_sig_checks_per_rrset
        assert dnssec_lab.KEYTRAP_KEYS * dnssec_lab.KEYTRAP_SIGS > 100 * lim.dnssec_max_sig_checks_per_rrset
        assert r.stats.servfail == 1
        assert "KeyTrap" in resp.options[0].text

    run(go(), timeout=15)


def test_lab_anchor_mismatch_makes_everything_bogus(run, validating):
    """The real root's anchor over the lab's root: no DNSKEY matches, every answer SERVFAIL."""
    from resolver.dnssec.trust_anchor import ROOT_ANCHOR_FILE

    async def go():
        r = validating(trust_anchor=ROOT_ANCHOR_FILE)
        resp = await r.resolve_message(dns.message.make_query("www.example.com.", "A",
                                                              want_dnssec=True))
        assert resp.rcode() == dns.rcode.SERVFAIL
        assert _ede(resp) == [9]

    run(go(), timeout=15)


def test_anchor_as_dnskey_rrset(run, validating, signed_lab):
    lab, _ = signed_lab

    async def go():
        # fetch the lab root's DNSKEY without validation and trust its KSK as an rrset
        plain = validating(validate=False)
        keys = await plain.resolve(".", "DNSKEY")
        rrset = dns.rrset.from_rdata_list(dns.name.root, 3600,
                                          [k for k in keys.rrset if k.flags & 1])
        r = validating(trust_anchor=rrset)
        resp = await r.resolve_message(dns.message.make_query("www.example.net.", "A",
                                                              want_dnssec=True))
        assert resp.flags & dns.flags.AD

    run(go(), timeout=15)


def test_validation_suspends_and_its_budget_ends_in_servfail(run, validating):
    """A CNAME across zones needs ~11 rrset validations (keys of ., com., example.com., net.,
    example.net., and the data): more than ``dnssec_validations_at_once``, so it suspends;
    with a tiny budget the same query is bogus rather than unbounded."""
    from resolver.limits import Limits

    async def go():
        r = validating()
        q = dns.message.make_query("xalias.example.com.", "A", want_dnssec=True)
        resp = await r.resolve_message(q)
        assert resp.flags & dns.flags.AD
        assert r.dnssec.stats.suspends >= 1
        tight = validating(limits=Limits().replace(dnssec_validations_at_once=2,
                                                   dnssec_max_suspends=1))
        resp = await tight.resolve_message(q)
        assert resp.rcode() == dns.rcode.SERVFAIL
        assert "budget" in resp.options[0].text

    run(go(), timeout=15)


def test_failed_ds_matches_are_capped(run, validating):
    import dnssec_lab

    async def go():
        r = validating()
        resp = await r.resolve_message(dns.message.make_query("www.manyds.com.", "A",
                                                              want_dnssec=True))
        assert resp.rcode() == dns.rcode.SERVFAIL
        assert dnssec_lab.MANY_DS > r.limits.dnssec_max_ds_match_failures
        assert "fail their DS digest" in resp.options[0].text

    run(go(), timeout=15)


def test_flush_forgets_bogus_verdicts_and_keys(run, validating):
    async def go():
        r = validating()
        q = dns.message.make_query("www.altered.com.", "A", want_dnssec=True)
        assert (await r.resolve_message(q)).rcode() == dns.rcode.SERVFAIL
        assert r.dnssec.bogus and r.dnssec.zones
        operations.flush(r, "www.altered.com.")
        assert not r.dnssec.bogus
        checks = r.dnssec.stats.sig_checks
        assert (await r.resolve_message(q)).rcode() == dns.rcode.SERVFAIL
        assert r.dnssec.stats.sig_checks > checks          # validated again
        operations.flush(r)
        assert not r.dnssec.zones and not r.dnssec.bogus

    run(go(), timeout=15)


def test_aggressive_nsec_answers_from_validated_ranges(run, validating):
    """RFC 8198: after one secure NXDOMAIN, names in the same NSEC range (and the wildcard
    proven absent) are answered NXDOMAIN from cache with AD, without asking anyone; a name
    outside the ranges seen is still asked."""
    async def go():
        r = validating()
        q = dns.message.make_query("nope.example.com.", "A", want_dnssec=True)
        first = await r.resolve_message(q)
        assert first.rcode() == dns.rcode.NXDOMAIN and first.flags & dns.flags.AD
        upstream, checks = r.stats.upstream_queries, r.dnssec.stats.sig_checks
        for name in ("nope2.example.com.", "mb.example.com.", "x.nope.example.com."):
            resp = await r.resolve_message(dns.message.make_query(name, "A", want_dnssec=True))
            assert resp.rcode() == dns.rcode.NXDOMAIN and resp.flags & dns.flags.AD, name
            assert [rr for rr in resp.authority if rr.rdtype == dns.rdatatype.NSEC]
        assert r.stats.upstream_queries == upstream
        assert r.dnssec.stats.synthesized >= 2
        assert r.dnssec.stats.sig_checks == checks
        # NODATA for a type the NSEC at a name does not list (www has A and AAAA)
        await r.resolve_message(dns.message.make_query("www.example.com.", "TXT",
                                                       want_dnssec=True))
        upstream = r.stats.upstream_queries
        resp = await r.resolve_message(dns.message.make_query("www.example.com.", "MX",
                                                              want_dnssec=True))
        assert resp.rcode() == dns.rcode.NOERROR and not resp.answer
        assert resp.flags & dns.flags.AD and r.stats.upstream_queries == upstream
        # outside the ranges learnt: asked
        resp = await r.resolve_message(dns.message.make_query("zzz.example.com.", "A",
                                                              want_dnssec=True))
        assert resp.rcode() == dns.rcode.NXDOMAIN and r.stats.upstream_queries > upstream
        # off switch
        off = validating()
        off.dnssec.nsec_cache = None
        await off.resolve_message(q)
        u = off.stats.upstream_queries
        await off.resolve_message(dns.message.make_query("nope2.example.com.", "A",
                                                         want_dnssec=True))
        assert off.stats.upstream_queries > u

    run(go(), timeout=15)


def test_anchor_below_the_root(run, validating, tmp_path):
    """An anchor for example.net. only: its names are secure, everything else insecure
    (outside every anchor), nothing bogus."""
    async def go():
        plain = validating(validate=False)
        keys = await plain.resolve("example.net.", "DNSKEY")
        ksk = [k for k in keys.rrset if k.flags & 1][0]
        ds = dns.dnssec.make_ds("example.net.", ksk, "SHA256")
        path = tmp_path / "example.net.ds"
        path.write_text(f"example.net. IN DS {ds.to_text()}\n")
        r = validating(trust_anchor=path)
        for name, ad in (("www.example.net.", True), ("nope.example.net.", True),
                         ("www.example.com.", False), ("www.altered.com.", False)):
            resp = await r.resolve_message(dns.message.make_query(name, "A", want_dnssec=True))
            assert resp.rcode() != dns.rcode.SERVFAIL, name
            assert bool(resp.flags & dns.flags.AD) == ad, name

    run(go(), timeout=15)
