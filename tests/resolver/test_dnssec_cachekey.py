"""The message cache keeps apart the answers that differ by the query's DNSSEC bits: AD
(RFC 6840 5.7: AD only for a client that set DO or AD), DO (RRSIGs) and CD (unvalidated
data). Before the AD bit was part of the key, whichever client filled an entry decided
whether later clients got AD. The same through the daemon is in test_dnssec_daemon.py."""
from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.rcode
import dns.rrset
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dnssec_cases import flagged_query as _q
from resolver.cache.answer import answer_from_entry, parse_query
from resolver.wire import codec as wire


def test_the_key_tracks_edns_do_cd_but_not_ad_in_python_and_in_c():
    """AD does not change what is cached, only whether the flag is shown (RFC 6840 5.7): the
    entry holds AD for secure data and the hit paths clear it for clients that set neither
    AD nor DO. So the key leaves AD out."""
    keys = {}
    for edns in (False, True):
        for do in (False, True) if edns else (False,):
            for ad in (False, True):
                for cd in (False, True):
                    data = _q("www.Example.com.", edns=edns, do=do, ad=ad, cd=cd).to_wire()
                    key, qend = parse_query(data)
                    assert key[-1] == edns | do << 1 | cd << 2
                    keys.setdefault(key, set()).add(ad)
    assert len(keys) == 6 and all(v == {False, True} for v in keys.values())
    assert wire.cache_key(b"\x03www\x07example\x03com\x00", 1, 1, 5)[-5:] == \
        struct.pack("!HHB", 1, 1, 5)


def test_a_cached_answer_shows_ad_only_to_clients_that_asked():
    """answer_from_entry on an entry holding AD: AD kept for AD or DO queries, cleared for
    the others; ID, RD and question case are the client's."""
    from resolver.cache import MessageCache

    for edns, do in ((False, False), (True, False), (True, True)):
        for ad in (False, True):
            q = _q("WWW.example.com.", edns=edns, do=do, ad=ad)
            key, qend = parse_query(q.to_wire())
            secure = dns.message.make_response(q)
            secure.flags |= dns.flags.AD | dns.flags.RA
            secure.answer.append(dns.rrset.from_text("www.example.com.", 300, "IN", "A",
                                                     "192.0.2.1"))
            entry = MessageCache(1 << 20).store(key, secure.to_wire(), 100.0)
            out = dns.message.from_wire(answer_from_entry(entry, q.to_wire(), qend, 101.0))
            assert out.id == q.id and out.question[0].name.labels == q.question[0].name.labels
            assert bool(out.flags & dns.flags.AD) == (ad or do), (edns, do, ad)
            assert {x.to_text() for x in out.answer[0]} == {"192.0.2.1"}
            assert out.answer[0].ttl == 299


#: (query flags, AD expected on the secure name) in both orders of filling the cache
VARIANTS = [
    (dict(), False),
    (dict(ad=True), True),
    (dict(edns=True), False),
    (dict(edns=True, ad=True), True),
    (dict(do=True), True),
    (dict(do=True, cd=True), True),        # CD: validated all the same (RFC 3655 2)
    (dict(ad=True, cd=True), True),
    (dict(edns=True, cd=True), False),
]


@pytest.mark.parametrize("order", ["forward", "reverse"])
def test_whoever_fills_the_cache_does_not_decide_ad_for_others(run, validating, order):
    variants = VARIANTS if order == "forward" else VARIANTS[::-1]

    async def go():
        r = validating()
        for _round in range(2):          # the second round is all cache hits
            for flags, ad in variants:
                resp = await r.resolve_message(_q("www.example.com.", **flags))
                assert resp.rcode() == dns.rcode.NOERROR
                assert bool(resp.flags & dns.flags.AD) == ad, (order, flags)
                assert bool(resp.flags & dns.flags.CD) == bool(flags.get("cd"))
        assert r.stats.cache_hits >= len(variants)

    run(go(), timeout=15)


def test_library_answers_do_not_leak_ad_to_wire_clients(run, validating):
    """resolve() marks validated answers with AD; a wire client that asked for neither AD
    nor DO must not be served that entry, and one that asked AD gets the same answer."""
    async def go():
        r = validating()
        ans = await r.resolve("www.example.com.", "A")
        assert ans.response.flags & dns.flags.AD
        plain = await r.resolve_message(_q("www.example.com."))
        assert not plain.flags & dns.flags.AD
        hits = r.stats.cache_hits
        asked = await r.resolve_message(_q("www.example.com.", ad=True))
        assert asked.flags & dns.flags.AD
        assert r.stats.cache_hits == hits + 1, "stub queries share resolve()'s entry"
        again = await r.resolve("www.example.com.", "A")
        assert again.response.flags & dns.flags.AD

    run(go(), timeout=15)


@pytest.mark.parametrize("name", ["www.dname.example.com.", "xalias.example.com.",
                                  "q.wc.example.com.", "x.wild.example.com."])
def test_a_second_variant_from_the_rrset_cache_is_still_secure(run, validating, name):
    """The first query (no DNSSEC bits) fills the rrset cache; a DO query for the same name
    is then built from it and must validate the same way (a CNAME synthesized from a
    DNAME has no RRSIG of its own, a wildcard answer needs its proof)."""
    async def go():
        r = validating()
        plain = await r.resolve_message(_q(name))
        assert plain.rcode() == dns.rcode.NOERROR and not plain.flags & dns.flags.AD
        do = await r.resolve_message(_q(name, do=True))
        assert do.rcode() == dns.rcode.NOERROR, do
        assert do.flags & dns.flags.AD
        def data(m):
            return {x.to_text() for rr in m.answer if rr.rdtype == dns.rdatatype.A for x in rr}
        assert data(do) == data(plain) and data(plain)
        assert [rr for rr in do.answer if rr.rdtype == dns.rdatatype.RRSIG]

    run(go(), timeout=15)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["www.example.com.", "WwW.ExAmple.COM.", "a.b.example.com."]),
       st.integers(0, 0xFFFF), st.integers(0, 0xFF), st.integers(0, 0xFF),
       st.sampled_from([None, (False, 1232), (True, 1232), (True, 512)]),
       st.booleans())
def test_the_encoder_patches_id_rd_case_and_ad_for_any_header(name, qid, b2, b3, edns, secure):
    """For any header bits a client sets, the answer from a cached entry carries its ID, RD
    bit and question case, and AD only for secure data and a client that set AD or DO."""
    from resolver.cache import MessageCache

    q = dns.message.make_query(name, "A", use_edns=0 if edns else False,
                               want_dnssec=bool(edns and edns[0]),
                               payload=edns[1] if edns else 1232)
    q.id = qid
    data = bytearray(q.to_wire())
    data[2], data[3] = b2 & 0x01, b3 & 0x30        # RD, and any of AD/CD
    data = bytes(data)
    parsed = parse_query(data)
    assert parsed is not None
    key, qend = parsed
    r = dns.message.make_response(dns.message.from_wire(data))
    r.flags |= dns.flags.RA | (dns.flags.AD if secure else 0)
    r.answer.append(dns.rrset.from_text(name.lower(), 300, "IN", "A", "192.0.2.1"))
    mc = MessageCache(1 << 20)
    e = mc.store(key, r.to_wire(), 100.0)
    py_out = answer_from_entry(e, data, qend, 101.0)
    shown = bool(py_out[3] & 0x20)
    asked = bool(b3 & 0x20) or bool(edns and edns[0])
    assert shown == (secure and asked)
    assert py_out[2] & 0x01 == b2 & 0x01
    assert dns.message.from_wire(py_out).answer[0].ttl == 299
    assert py_out[:2] == data[:2] and py_out[12:qend] == data[12:qend]
