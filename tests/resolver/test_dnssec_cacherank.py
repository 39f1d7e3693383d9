"""Validation comes before the VALIDATED rank: rrsets from the authorities enter
the rrset cache at an authority rank, and only the rdata the validator proved are raised to
VALIDATED, never data that replaced them while the validation was suspended, nor bogus data."""
from __future__ import annotations


import dns.flags
import dns.message
import dns.name
import dns.rcode

from resolver import cache as C

A, DNSKEY = 1, 48


def W(name: str) -> bytes:
    return dns.name.from_text(name).to_wire()


def _entry(r, name: str, rdtype: int):
    return r.cache.rrsets.lru.peek((W(name).lower(), rdtype, 1))


def test_secure_data_is_validated_rank_and_bogus_data_is_not(run, validating):
    async def go():
        r = validating()
        ok = await r.resolve_message(dns.message.make_query("www.example.com.", "A",
                                                            want_dnssec=True))
        assert ok.rcode() == dns.rcode.NOERROR
        assert _entry(r, "www.example.com.", A).rank == C.VALIDATED
        assert _entry(r, "example.com.", DNSKEY).rank == C.VALIDATED
        bad = await r.resolve_message(dns.message.make_query("www.altered.com.", "A",
                                                             want_dnssec=True))
        assert bad.rcode() == dns.rcode.SERVFAIL
        e = _entry(r, "www.altered.com.", A)
        assert e is not None and e.rank < C.VALIDATED, "bogus data kept, but never ranked up"
        ins = await r.resolve_message(dns.message.make_query("www.insecure.com.", "A",
                                                             want_dnssec=True))
        assert ins.rcode() == dns.rcode.NOERROR
        assert _entry(r, "www.insecure.com.", A).rank < C.VALIDATED

    run(go(), timeout=15)


def test_only_the_rdata_validated_get_the_rank(run, validating, monkeypatch):
    """The DNSKEY set is replaced in the cache (as a concurrent resolution could while this
    one is suspended) just before its signature is checked: the keys checked are secure,
    the replacement must stay at its own rank, and a query for it must not be AD."""
    from resolver.dnssec import validator as V

    real = V.verify_rrset
    target = W("example.com.")
    swapped = []

    def racing_verify(owner, rdtype, *args, **kw):
        if rdtype == DNSKEY and owner.lower() == target and not swapped:
            lru = r.cache.rrsets.lru
            key = (target, DNSKEY, 1)
            old = lru.peek(key)
            assert old is not None and old.rank < C.VALIDATED
            extra = bytes([1, 0, 3, 13]) + bytes(64)          # a ZONE key nobody signed
            lru.put(key, C.RRsetEntry(old.name, old.rdtype, old.rdclass, old.ttl, old.expires,
                                      old.rank, list(old.rdatas) + [extra], old.rrsigs))
            swapped.append(extra)
        return real(owner, rdtype, *args, **kw)

    monkeypatch.setattr(V, "verify_rrset", racing_verify)

    async def go():
        resp = await r.resolve_message(dns.message.make_query("www.example.com.", "A",
                                                              want_dnssec=True))
        assert resp.rcode() == dns.rcode.NOERROR and swapped
        e = _entry(r, "example.com.", DNSKEY)
        assert swapped[0] in e.rdatas
        assert e.rank < C.VALIDATED, "unchecked keys were ranked VALIDATED"
        keys = await r.resolve_message(dns.message.make_query("example.com.", "DNSKEY",
                                                              want_dnssec=True))
        assert not keys.flags & dns.flags.AD, "the unsigned key set must not come out secure"

    r = validating()
    run(go(), timeout=15)
