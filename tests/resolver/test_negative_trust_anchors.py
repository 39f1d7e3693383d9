"""domain-insecure (negative trust anchors) over the signed lab: names at and below one are
answered as unsigned (no AD, never SERVFAIL for bogus signatures), names elsewhere are still
validated, and a trust anchor at or below the insecure point still wins (as in Unbound)."""
from __future__ import annotations

import dns.dnssec
import dns.flags
import dns.message
import dns.rcode


def ask(r, name: str, rdtype: str = "A"):
    return r.resolve_message(dns.message.make_query(name, rdtype, want_dnssec=True))


def test_bogus_zones_below_a_negative_anchor_are_insecure(run, validating):
    async def go():
        plain = validating()
        for name in ("www.altered.com.", "www.badds.com."):
            assert (await ask(plain, name)).rcode() == dns.rcode.SERVFAIL, name
        r = validating(domain_insecure=["altered.com.", "BADDS.com"])
        for name in ("www.altered.com.", "www.badds.com."):
            resp = await ask(r, name)
            assert resp.rcode() == dns.rcode.NOERROR and resp.answer, name
            assert not resp.flags & dns.flags.AD, name
        # outside the negative anchors: validated as before
        assert (await ask(r, "www.example.com.")).flags & dns.flags.AD
        assert (await ask(r, "www.expired.com.")).rcode() == dns.rcode.SERVFAIL

    run(go(), timeout=20)


def test_a_negative_anchor_covers_every_name_below_it(run, validating):
    async def go():
        r = validating(domain_insecure=["com."])
        for name, rcode in (("www.example.com.", dns.rcode.NOERROR),
                            ("nope.example.com.", dns.rcode.NXDOMAIN),
                            ("www.altered.com.", dns.rcode.NOERROR)):
            resp = await ask(r, name)
            assert resp.rcode() == rcode and not resp.flags & dns.flags.AD, name
        # a sibling tree keeps its validation
        resp = await ask(r, "www.example.net.")
        assert resp.flags & dns.flags.AD
        assert r.dnssec.stats.bogus == 0

    run(go(), timeout=20)


def test_a_trust_anchor_below_the_negative_anchor_wins(run, validating, signed_lab, tmp_path):
    async def go():
        lab, root_anchor = signed_lab
        plain = validating(validate=False)
        keys = await plain.resolve("example.net.", "DNSKEY")
        ksk = [k for k in keys.rrset if k.flags & 1][0]
        ds = dns.dnssec.make_ds("example.net.", ksk, "SHA256")
        path = tmp_path / "anchors"
        path.write_text(root_anchor.read_text() + f"\nexample.net. IN DS {ds.to_text()}\n")
        r = validating(trust_anchor=path, domain_insecure=["net."])
        assert (await ask(r, "www.example.net.")).flags & dns.flags.AD
        assert (await ask(r, "nope.example.net.")).flags & dns.flags.AD
        # the rest of net. is below the negative anchor only
        assert not (await ask(r, "www.n3iter.net.")).flags & dns.flags.AD

    run(go(), timeout=20)
