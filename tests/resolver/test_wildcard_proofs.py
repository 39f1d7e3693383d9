"""RFC 4035 section 3.1.3.3: a secure answer expanded from a wildcard carries, in its
authority section, the NSEC or NSEC3 records proving that no closer name exists; a client
that sets DO gets them whether the answer was fetched or rebuilt from the cache. Over the
signed lab (NSD): example.com. is signed with NSEC, example.net. with NSEC3."""
from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import pytest

PROOF_TYPES = (dns.rdatatype.NSEC, dns.rdatatype.NSEC3)


def proofs(resp: dns.message.Message) -> list:
    return [rr for rr in resp.authority if rr.rdtype in PROOF_TYPES]


def proof_sigs(resp: dns.message.Message) -> list:
    return [rr for rr in resp.authority if rr.rdtype == dns.rdatatype.RRSIG
            and rr.covers in PROOF_TYPES]


CASES = [("x.wild.example.com.", "A", dns.rdatatype.NSEC),
         ("q.wild.example.net.", "TXT", dns.rdatatype.NSEC3)]


@pytest.mark.parametrize("name,rdtype,kind", CASES, ids=["nsec", "nsec3"])
def test_fresh_wildcard_answer_carries_its_proof(run, validating, name, rdtype, kind):
    async def go():
        r = validating()
        resp = await r.resolve_message(dns.message.make_query(name, rdtype, want_dnssec=True))
        assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD
        assert resp.answer
        got = proofs(resp)
        assert got and {rr.rdtype for rr in got} == {kind}
        assert proof_sigs(resp), "the proof comes with its signatures"

    run(go(), timeout=15)


@pytest.mark.parametrize("name,rdtype,kind", CASES, ids=["nsec", "nsec3"])
def test_wildcard_answer_rebuilt_from_the_cache_carries_its_proof(run, validating, name,
                                                                  rdtype, kind):
    """The first query (no DO) fills the rrset cache; the DO query is another message-cache
    entry, so its answer is rebuilt from the cached rrsets without asking anyone: the proof
    kept with the wildcard rrset comes back with it."""
    async def go():
        r = validating()
        plain = await r.resolve_message(dns.message.make_query(name, rdtype))
        assert plain.rcode() == dns.rcode.NOERROR and not proofs(plain)
        upstream = r.stats.upstream_queries
        resp = await r.resolve_message(dns.message.make_query(name, rdtype, want_dnssec=True))
        assert r.stats.upstream_queries == upstream, "answered from the cache"
        assert resp.rcode() == dns.rcode.NOERROR and resp.flags & dns.flags.AD
        got = proofs(resp)
        assert got and {rr.rdtype for rr in got} == {kind}
        assert proof_sigs(resp)
        # TTLs: never longer than the data they prove
        ttl = min(rr.ttl for rr in resp.answer)
        assert all(rr.ttl <= ttl for rr in got)

    run(go(), timeout=15)


def test_a_name_that_exists_gets_no_wildcard_proof(run, validating):
    async def go():
        r = validating()
        resp = await r.resolve_message(dns.message.make_query("exact.wild.example.com.", "A",
                                                              want_dnssec=True))
        assert resp.flags & dns.flags.AD and not proofs(resp)

    run(go(), timeout=15)


def test_without_validation_the_proof_is_kept_with_the_cached_wildcard(run, validating):
    """A resolver that does not validate passes the proof on to DO clients as well, also
    when the answer is rebuilt from its cache (on corenet's loop the rrsets of such an answer
    are stored after the client has it)."""
    async def go():
        r = validating(validate=False)
        plain = await r.resolve_message(dns.message.make_query("x.wild.example.com.", "A"))
        assert plain.answer and not proofs(plain)
        upstream = r.stats.upstream_queries
        resp = await r.resolve_message(dns.message.make_query("x.wild.example.com.", "A",
                                                              want_dnssec=True))
        assert r.stats.upstream_queries == upstream
        assert resp.answer and not resp.flags & dns.flags.AD
        assert {rr.rdtype for rr in proofs(resp)} == {dns.rdatatype.NSEC}

    run(go(), timeout=15)
