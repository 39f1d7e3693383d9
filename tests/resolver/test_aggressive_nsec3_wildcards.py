"""RFC 8198 aggressive use of the validated cache beyond NSEC denials, over the signed lab:
NSEC3 denials (example.net.) answer later questions they prove, and a validated wildcard
expansion answers other names below it (NSEC in example.com., NSEC3 in example.net.), all
without asking an authority, with AD and the proof in the authority section."""
from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype


def q(name: str, rdtype: str = "A"):
    return dns.message.make_query(name, rdtype, want_dnssec=True)


def types_in(section) -> set:
    return {rr.rdtype for rr in section}


async def first_then_synthesized(r, first, then):
    """Asks ``first`` (fetched and validated), then ``then``; returns the second response
    after checking that no upstream query was sent for it and that it was synthesized."""
    resp = await r.resolve_message(q(*first))
    assert resp.flags & dns.flags.AD, resp
    upstream, synthesized = r.stats.upstream_queries, r.dnssec.stats.synthesized
    resp = await r.resolve_message(q(*then))
    assert r.stats.upstream_queries == upstream, "answered without asking"
    assert r.dnssec.stats.synthesized == synthesized + 1
    assert resp.flags & dns.flags.AD
    return resp


def _sibling_in_the_same_range(resp, proven: str) -> str:
    """A name next to ``proven`` whose NSEC3 hash falls in the range that proved ``proven``
    absent (found by hashing candidates with the zone's parameters, at most 5000)."""
    import base64

    import dns.dnssec

    n3 = [(rr.name, rd) for rr in resp.authority if rr.rdtype == dns.rdatatype.NSEC3
          for rd in rr]
    salt, iterations = n3[0][1].salt, n3[0][1].iterations

    def h(name: str) -> str:
        return dns.dnssec.nsec3_hash(name, salt, iterations, 1).lower()

    def covers(owner, rd, x: str) -> bool:
        lo = owner.labels[0].decode().lower()
        hi = base64.b32hexencode(rd.next).decode().lower()
        return lo < x < hi if lo < hi else (x > lo or x < hi)

    target = h(proven)
    rng = [(o, rd) for o, rd in n3 if covers(o, rd, target)]
    assert rng, "the proof has an NSEC3 covering the name"
    for i in range(5000):
        cand = f"n{i}.example.net."
        if covers(*rng[0], h(cand)):
            return cand
    raise AssertionError("no sibling found in 5000 candidates")


def test_nsec3_nxdomain_answers_other_names_in_the_proven_ranges(run, validating):
    async def go():
        r = validating()
        first = await r.resolve_message(q("nope.example.net."))
        assert first.rcode() == dns.rcode.NXDOMAIN and first.flags & dns.flags.AD
        sibling = _sibling_in_the_same_range(first, "nope.example.net.")
        resp = await first_then_synthesized(r, ("nope.example.net.", "A"), (sibling, "A"))
        assert resp.rcode() == dns.rcode.NXDOMAIN
        assert dns.rdatatype.NSEC3 in types_in(resp.authority)
        assert dns.rdatatype.SOA in types_in(resp.authority)

    run(go(), timeout=15)


def test_nsec3_nodata_answers_other_missing_types(run, validating):
    async def go():
        r = validating()
        resp = await first_then_synthesized(r, ("www.example.net.", "MX"),
                                            ("www.example.net.", "TXT"))
        assert resp.rcode() == dns.rcode.NOERROR and not resp.answer
        assert dns.rdatatype.NSEC3 in types_in(resp.authority)
        # a type the NSEC3 lists is not denied: asked
        upstream = r.stats.upstream_queries
        resp = await r.resolve_message(q("www.example.net.", "A"))
        assert resp.answer and r.stats.upstream_queries > upstream

    run(go(), timeout=15)


def test_cached_nsec_wildcard_answers_other_names(run, validating):
    async def go():
        r = validating()
        resp = await first_then_synthesized(r, ("x.wild.example.com.", "A"),
                                            ("y.wild.example.com.", "A"))
        assert resp.rcode() == dns.rcode.NOERROR
        a = [rr for rr in resp.answer if rr.rdtype == dns.rdatatype.A]
        assert a and a[0].name.to_text() == "y.wild.example.com."
        assert {x.to_text() for x in a[0]} == {"192.0.2.80"}
        assert dns.rdatatype.RRSIG in types_in(resp.answer)
        assert dns.rdatatype.NSEC in types_in(resp.authority)
        # a type the wildcard does not have is not synthesized as an answer
        upstream = r.stats.upstream_queries
        resp = await r.resolve_message(q("z.wild.example.com.", "MX"))
        assert not [rr for rr in resp.answer if rr.rdtype == dns.rdatatype.MX]
        # a name that exists is not answered from the wildcard
        resp = await r.resolve_message(q("exact.wild.example.com.", "A"))
        assert {x.to_text() for rr in resp.answer for x in rr
                if rr.rdtype == dns.rdatatype.A} == {"192.0.2.81"}
        assert r.stats.upstream_queries > upstream

    run(go(), timeout=15)


def test_cached_nsec3_wildcard_answers_names_below_the_proven_next_closer(run, validating):
    async def go():
        r = validating()
        resp = await first_then_synthesized(r, ("q.wild.example.net.", "TXT"),
                                            ("a.q.wild.example.net.", "TXT"))
        txt = [rr for rr in resp.answer if rr.rdtype == dns.rdatatype.TXT]
        assert txt and txt[0].name.to_text() == "a.q.wild.example.net."
        assert {x.to_text() for x in txt[0]} == {'"wild3"'}
        assert dns.rdatatype.NSEC3 in types_in(resp.authority)

    run(go(), timeout=15)


def test_nothing_is_synthesized_with_aggressive_use_off(run, validating):
    async def go():
        r = validating()
        r.dnssec.nsec_cache = None
        await r.resolve_message(q("x.wild.example.com."))
        upstream = r.stats.upstream_queries
        resp = await r.resolve_message(q("y.wild.example.com."))
        assert resp.flags & dns.flags.AD and r.stats.upstream_queries > upstream

    run(go(), timeout=15)


def test_the_hashes_of_a_synthesis_are_bounded_by_a_limit(run, validating):
    """With ``nsec3_max_hashes_per_synthesis`` too low for the name, the proven range is
    not used: the question goes to the authorities."""
    from resolver.limits import DEFAULT

    async def go():
        r = validating(limits=DEFAULT.replace(nsec3_max_hashes_per_synthesis=1))
        first = await r.resolve_message(q("nope.example.net."))
        assert first.rcode() == dns.rcode.NXDOMAIN and first.flags & dns.flags.AD
        sibling = _sibling_in_the_same_range(first, "nope.example.net.")
        upstream, synthesized = r.stats.upstream_queries, r.dnssec.stats.synthesized
        resp = await r.resolve_message(q(sibling))
        assert resp.rcode() == dns.rcode.NXDOMAIN
        assert r.dnssec.stats.synthesized == synthesized
        assert r.stats.upstream_queries > upstream

    run(go(), timeout=15)
