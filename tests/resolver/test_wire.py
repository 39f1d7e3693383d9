"""resolver.wire.codec (the reply parser the iterator uses, the message builders) and the
cache-hit key and encoder of resolver.cache.answer, on raw bytes."""
from __future__ import annotations

import struct

import dns.flags
import dns.message
import dns.name
import dns.rdata
import dns.rrset
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resolver.cache import answer
from resolver.wire import codec as wire
from resolver.wire.codec import WireError


def W(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


def sample_response(qname: str = "www.example.com.", edns: bool = True) -> bytes:
    q = dns.message.make_query(qname, "A", use_edns=0 if edns else False)
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text(qname, 300, "IN", "CNAME", "web.example.com."))
    r.answer.append(dns.rrset.from_text("web.example.com.", 200, "IN", "A", "192.0.2.1", "192.0.2.2"))
    r.authority.append(dns.rrset.from_text("example.com.", 3600, "IN", "NS", "ns1.example.com.",
                                           "ns2.example.net."))
    r.additional.append(dns.rrset.from_text("ns1.example.com.", 3600, "IN", "A", "10.0.0.1"))
    return r.to_wire()


# ---- parse_query ---------------------------------------------------------------------------

def test_parse_query_key_is_case_folded_and_variant_tracks_edns_do_cd():
    plain = dns.message.make_query("WwW.Example.COM.", "AAAA", use_edns=False)
    key, qend = answer.parse_query(plain.to_wire())
    assert key == W("www.example.com.") + struct.pack("!HHB", 28, 1, 0)
    assert qend == 12 + len(W("www.example.com.")) + 4
    ed = dns.message.make_query("www.example.com.", "AAAA", use_edns=0)
    do = dns.message.make_query("www.example.com.", "AAAA", want_dnssec=True)
    cd = dns.message.make_query("www.example.com.", "AAAA", use_edns=0)
    cd.flags |= dns.flags.CD
    variants = [answer.parse_query(m.to_wire())[0][-1] for m in (ed, do, cd)]
    assert variants == [1, 3, 5]
    assert wire.cache_key(W("WWW.example.com."), 28, 1, 3) == answer.parse_query(do.to_wire())[0]


def test_parse_query_declines_what_the_hot_path_cannot_answer():
    q = dns.message.make_query("a.example.", "A").to_wire()
    assert answer.parse_query(q) is not None
    response = bytearray(q)
    response[2] |= 0x80
    notify = bytearray(q)
    notify[2] |= 4 << 3
    two_questions = bytearray(q)
    two_questions[5] = 2
    edns1 = dns.message.make_query("a.example.", "A", use_edns=1).to_wire()
    compressed = q[:12] + b"\xc0\x0c" + q[-4:]
    for bad in (bytes(response), bytes(notify), bytes(two_questions), q[:-1], q + b"x",
                edns1, compressed, b"", b"\x00" * 11):
        assert answer.parse_query(bad) is None


# ---- the cache-hit rewrite -------------------------------------------------------------------

def test_answer_from_entry_patches_id_rd_case_and_ttls():
    resp = sample_response()
    e = wire.MsgEntry(resp, 100.0, 50.0)
    assert e.ttl == 200 and e.expires == 300.0 and e.stale_until == 350.0
    q = dns.message.make_query("WWW.EXAMPLE.com.", "A", use_edns=0)
    q.id = 0xBEEF
    q.flags &= ~dns.flags.RD
    qw = q.to_wire()
    out = answer.answer_from_entry(e, qw, answer.parse_query(qw)[1], 161.7)
    m = dns.message.from_wire(out)
    assert m.id == 0xBEEF
    assert not m.flags & dns.flags.RD
    assert out[12:12 + 17] == qw[12:12 + 17]          # exact case echoed
    ttls = sorted(rs.ttl for rs in m.answer + m.authority + m.additional)
    assert ttls == [139, 239, 3539, 3539]
    stale = dns.message.from_wire(answer.answer_from_entry(e, qw, answer.parse_query(qw)[1], 999.0, 30))
    assert {rs.ttl for rs in stale.answer + stale.authority} == {30}
    # The cached bytes themselves are untouched.
    assert e.wire == resp


def test_resolve_cached_serves_fresh_entries_only():
    import resolver

    r = resolver.Resolver([("a.lab.", "127.0.0.1")], do_not_query_localhost=False)
    now = [0.0]
    r.clock = lambda: now[0]
    q = dns.message.make_query("www.example.com.", "A", use_edns=0).to_wire()
    key, _ = answer.parse_query(q)
    r.cache.messages.store(key, sample_response(), 0.0)
    now[0] = 10.0
    assert dns.message.from_wire(r.resolve_cached(q)).answer
    assert r.stats.cache_hits == 1
    other = dns.message.make_query("www.example.com.", "A", use_edns=False).to_wire()
    assert r.resolve_cached(other) is None           # another variant of the question
    now[0] = 201.0
    assert r.resolve_cached(q) is None               # expired
    assert r.stats.cache_hits == 1


# ---- parse_response ----------------------------------------------------------------------------

def _as_dnspython(records):
    out = set()
    for owner, t, c, ttl, rd in records:
        out.add((dns.name.from_wire(owner, 0)[0], t, c, ttl,
                 dns.rdata.from_wire(c, t, rd, 0, len(rd)).to_text()))
    return out


@pytest.mark.parametrize("rtype,data", [
    ("A", "192.0.2.1"), ("AAAA", "2001:db8::1"), ("MX", "10 mail.example.com."),
    ("SOA", "ns.example.com. host.example.com. 1 2 3 4 5"), ("SRV", "1 2 3 t.example.com."),
    ("TXT", '"a b" "c"'), ("DNAME", "other.example."), ("PTR", "x.example.com."),
    ("NS", "ns.example.com."), ("CNAME", "c.example.com."), ("RP", "a.example. b.example."),
    ("AFSDB", "1 x.example.com."), ("RT", "1 x.example.com."), ("KX", "1 x.example.com."),
    ("NAPTR", '1 2 "s" "SIP+D2U" "" _sip._udp.example.com.'), ("DS", "1 8 2 " + "ab" * 32),
])
def test_parse_response_matches_dnspython(rtype, data):
    q = dns.message.make_query("x.example.com.", rtype, want_dnssec=True)
    r = dns.message.make_response(q)
    r.use_edns(0, dns.flags.DO, 1232)
    r.answer.append(dns.rrset.from_text("x.example.com.", 77, "IN", rtype, data))
    r.authority.append(dns.rrset.from_text("example.com.", 88, "IN", "NS", "ns.example.com."))
    w = r.to_wire()
    p = wire.parse_response(w)
    assert p.qr and p.edns and p.edns_flags & 0x8000 and p.id == q.id
    assert p.qname == W("x.example.com.") and p.question == w[12:12 + len(p.question)]
    ref = dns.message.from_wire(w)
    expect = {(rs.name, rs.rdtype, rs.rdclass, rs.ttl, rd.to_text())
              for rs in ref.answer + ref.authority for rd in rs}
    assert _as_dnspython(p.answer + p.authority) == expect


def test_parse_response_keeps_name_case_and_extended_rcode():
    q = dns.message.make_query("Mixed.Case.", "A", use_edns=0)
    r = dns.message.make_response(q)
    r.set_rcode(16)        # BADVERS: needs the OPT extended rcode
    p = wire.parse_response(r.to_wire())
    assert p.qname == b"\x05Mixed\x04Case\x00" and p.rcode == 16


def test_compression_loop_and_bad_pointers_are_wire_errors():
    header = struct.pack("!HHHHHH", 1, 0x8400, 1, 0, 0, 0)
    loop_self = header + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    loop_pair = header + b"\x01a\xc0\x0e\xc0\x0c" + b"\x00\x01\x00\x01"
    beyond = header + b"\xc0\xff" + b"\x00\x01\x00\x01"
    bad_label_type = header + b"\x41a\x00\x00\x01\x00\x01"
    for bad in (loop_self, loop_pair, beyond, bad_label_type):
        with pytest.raises(WireError):
            wire.parse_response(bad)
    # A long but legal chain of pointers is bounded by max_jumps.
    with pytest.raises(WireError):
        wire.parse_response(sample_response(), max_jumps=0)


def test_name_longer_than_255_is_rejected():
    labels = b"".join(b"\x3f" + b"a" * 63 for _ in range(4)) + b"\x00"   # 257 bytes
    msg = struct.pack("!HHHHHH", 1, 0x8400, 1, 0, 0, 0) + labels + b"\x00\x01\x00\x01"
    with pytest.raises(WireError):
        wire.parse_response(msg)


def test_every_truncation_is_a_wire_error():
    w = sample_response()
    for n in range(len(w)):
        with pytest.raises(WireError):
            wire.parse_response(w[:n])


def test_rdata_with_name_overrunning_rdlength_is_rejected():
    q = dns.message.make_query("x.example.", "NS")
    r = dns.message.make_response(q)
    r.answer.append(dns.rrset.from_text("x.example.", 60, "IN", "NS", "ns.x.example."))
    w = bytearray(r.to_wire())
    rdlen_at = len(w) - len(W("ns.x.example.")) + 0 - 2
    # Shrink the rdlength so the name runs past it.
    w[rdlen_at:rdlen_at + 2] = struct.pack("!H", 3)
    with pytest.raises(WireError):
        wire.parse_response(bytes(w[:rdlen_at + 2 + 3]))


_label_or_pointer = st.one_of(
    st.binary(min_size=1, max_size=12).map(lambda b: bytes([len(b)]) + b),
    st.integers(0, 0x3FFF).map(lambda p: bytes([0xC0 | (p >> 8), p & 0xFF])),
    st.integers(12, 80).map(lambda p: bytes([0xC0, p])),
    st.just(b"\x00"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_label_or_pointer, max_size=40), st.integers(0, 3), st.integers(0, 3))
def test_fuzz_pointer_soup_terminates(parts, an, ns):
    """Names made of random labels and pointers (loops, forward jumps, pointers into the
    header): parsing ends with a result or a WireError, never hangs or reads out of bounds."""
    body = b"".join(parts)
    msg = struct.pack("!HHHHHH", 1, 0x8400, 1, an, ns, 0) + body + b"\x00\x01\x00\x01" + body
    try:
        m = wire.parse_response(msg)
    except WireError:
        return
    assert m.qname is not None and len(m.qname) <= 255


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=600))
def test_fuzz_garbage_only_raises_wire_error(data):
    try:
        m = wire.parse_response(data)
    except WireError:
        return
    assert len(data) >= 12 and isinstance(m.answer, list)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_responses(data):
    w = bytearray(sample_response())
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(w) - 1))
        w[i] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(w)))
    blob = bytes(w[:cut])
    try:
        wire.parse_response(blob)
    except WireError:
        pass
    try:
        wire.ttl_offsets(blob)
    except WireError:
        pass
    pq = answer.parse_query(blob)
    assert pq is None or (isinstance(pq[0], bytes) and pq[1] <= len(blob))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_without_sections_the_same_message_is_read_or_refused(data):
    """A query read without its sections (as a client's query is) gives the same header,
    question and EDNS as a full read, no record lists, and fails exactly when it fails."""
    w = bytearray(sample_response())
    for _ in range(data.draw(st.integers(0, 4))):
        i = data.draw(st.integers(0, len(w) - 1))
        w[i] = data.draw(st.integers(0, 255))
    blob = bytes(w[:data.draw(st.integers(0, len(w)))])
    try:
        full = wire.parse_response(blob)
    except WireError:
        with pytest.raises(WireError):
            wire.parse_response(blob, sections=False)
        return
    head = wire.parse_response(blob, sections=False)
    assert head.answer is None and head.authority is None and head.additional is None
    for field in ("id", "flags", "rcode", "qname", "qtype", "qclass", "question", "edns",
                  "edns_flags", "edns_payload"):
        assert getattr(head, field) == getattr(full, field), field


# ---- writing and names ---------------------------------------------------------------------

def test_build_query_and_response_round_trip():
    q = wire.build_query(99, W("a.example."), 15, do=True)
    m = dns.message.from_wire(q)
    assert m.id == 99 and m.edns == 0 and m.payload == 1232 and m.ednsflags & dns.flags.DO
    assert not m.flags & dns.flags.RD
    rec = (W("a.example."), 1, 1, 60, b"\x01\x02\x03\x04")
    r = wire.build_response(7, 0x8180, q[12:12 + len(W("a.example.")) + 4], [rec], [], [],
                            edns=True, rcode=0)
    m = dns.message.from_wire(r)
    assert m.id == 7 and m.answer[0][0].address == "1.2.3.4" and m.answer[0].ttl == 60
    assert b"\xc0\x0c" in r    # owner written as a pointer to the question


_NAMES = ["example.com.", "www.example.com.", "WWW.Example.COM.", "mail.example.com.",
          "cdn.example.net.", "edge.cdn.example.net.", "a.b.c.example.org.", "example.org.", "."]
_RDATA = {"A": ["192.0.2.1", "192.0.2.2"], "AAAA": ["2001:db8::1"], "TXT": ['"x y"'],
          "CNAME": _NAMES, "NS": _NAMES, "PTR": _NAMES, "DNAME": _NAMES,
          "MX": [f"10 {n}" for n in _NAMES], "SRV": [f"1 2 3 {n}" for n in _NAMES],
          "SOA": [f"{a} {b} 1 2 3 4 5" for a in _NAMES[:3] for b in _NAMES[3:6]]}
_RECORD = st.tuples(st.sampled_from(_NAMES), st.sampled_from(sorted(_RDATA)),
                    st.integers(0, 3))


def _records(rrs):
    out = []
    for owner, rtype, k in rrs:
        data = _RDATA[rtype][k % len(_RDATA[rtype])]
        rd = dns.rdata.from_text("IN", rtype, data)
        out.append((W(owner), rd.rdtype, 1, 60, rd.to_digestable()))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_NAMES[:7]), st.lists(_RECORD, max_size=12),
       st.lists(_RECORD, max_size=6), st.lists(_RECORD, max_size=6), st.booleans())
def test_responses_are_compressed_as_dnspython_compresses_them(qname, an, ns, ar, edns):
    """Byte for byte what dnspython writes for the same records: every owner and the names
    in the rdata of RFC 1035's types (NS, CNAME, SOA, PTR, MX) point at the longest ending
    already written, the question's name included; DNAME, SRV and the rest keep theirs whole
    (RFC 3597 4)."""
    q = dns.message.make_query(qname, "A", use_edns=0 if edns else False)
    question = q.to_wire()[12:12 + len(W(qname)) + 4]
    sections = [_records(an), _records(ns), _records(ar)]
    ours = wire.build_response(q.id, 0x8180, question, *sections, edns=edns)
    m = dns.message.make_response(q, our_payload=1232)
    m.flags = 0x8180
    for target, records in zip((m.answer, m.authority, m.additional), sections):
        for owner, rtype, _, ttl, rdata in records:
            rd = dns.rdata.from_wire("IN", rtype, rdata, 0, len(rdata))
            target.append(dns.rrset.from_rdata(dns.name.from_wire(owner, 0)[0], ttl, rd))
    # one record per rrset, in the order written, as the records were given
    assert ours == m.to_wire(), (dns.message.from_wire(ours), m)


def test_compression_keeps_to_what_a_pointer_can_reach_and_what_the_table_holds():
    """A response too big for every name to be remembered (600 owners of their own) or
    pointed at (past 0x3FFF) is still read back record for record."""
    q = dns.message.make_query("big.example.", "TXT")
    question = q.to_wire()[12:]
    records = [(W(f"n{i}.big.example."), 5, 1, 60, W(f"t{i}.big.example."))
               for i in range(600)]
    records += [(W("big.example."), 16, 1, 60, b"\xff" + b"x" * 255)] * 100
    out = wire.build_response(1, 0x8180, question, records, [], [])
    assert len(out) > 0x4000
    back = wire.parse_response(out, max_records=1000)
    assert [tuple(r) for r in back.answer] == records
    assert len(out) < 12 + len(question) + sum(len(r[0]) + 10 + len(r[4]) for r in records)


def test_name_helpers_match_dnspython():
    n = W("a.b.Example.com.")
    assert wire.is_subdomain(n, W("example.COM."))
    assert wire.is_subdomain(n, b"\x00")
    assert not wire.is_subdomain(n, W("ample.com."))
    assert not wire.is_subdomain(W("com."), n)
    assert wire.label_count(n) == 4 and wire.label_count(b"\x00") == 0
    assert wire.strip_to(n, 2) == W("Example.com.")
    assert wire.parent(W("com.")) == b"\x00" and wire.parent(b"\x00") == b"\x00"
    odd = dns.name.Name((b"a.b", b"sp ace", b"\x01", b""))
    assert wire.to_text(odd.to_wire()) == odd.to_text()
    assert wire.to_text(b"\x00") == "."


@settings(max_examples=500, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=63), max_size=6),
       st.binary(max_size=8))
def test_to_text_is_dnspythons_text_and_refuses_what_is_no_name(labels, garbage):
    """Every byte value in labels of every length: the text is dnspython's; bytes that are no
    whole wire name (no root label, a label past the end) raise ValueError."""
    name = dns.name.Name((*labels, b""))
    if len(name.to_wire()) <= 255:
        assert wire.to_text(name.to_wire()) == name.to_text()
    labels_only = name.to_wire()[:-1]
    for cut in (labels_only, labels_only + bytes([len(garbage) + 1]) + garbage):
        if cut:
            with pytest.raises(ValueError):
                wire.to_text(cut)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=40), st.data())
def test_names_compare_as_lowered_bytes(a, data):
    """``same_name`` and ``is_subdomain`` ignore ASCII case only: every byte value, every
    length around the word size, and pairs that differ in one byte or only in case."""
    b = data.draw(st.sampled_from([
        a, a.upper(), a.lower(), a.swapcase(),
        data.draw(st.binary(min_size=len(a), max_size=len(a))),
        a[:-1] + bytes([(a[-1] + data.draw(st.integers(1, 255))) % 256]) if a else a]))
    assert wire.same_name(a, b) == (a.lower() == b.lower())
    child = b"\x01x" + bytes([len(a) % 64]) + a[:len(a) % 64] + b"\x00"
    parent = bytes([len(b) % 64]) + b[:len(b) % 64] + b"\x00"
    assert wire.is_subdomain(child, parent) == (child[2:].lower() == parent.lower())


def test_under_any_is_is_subdomain_of_any():
    names = [W(t) for t in ("a.b.Example.com.", "com.", "ample.com.", "xcom.", ".",
                            "localhost.", "x.LOCALHOST.", "a.arpa.")]
    names.append(b"\x06ab\x04com\x00")     # a label whose bytes end like a parent's
    parents = [W(t) for t in ("com.", "example.com.", "localhost.", "arpa.", ".")]
    for n in names:
        for k in range(len(parents) + 1):
            chosen = tuple(parents[:k])
            assert wire.under_any(n, chosen) == any(wire.is_subdomain(n, p) for p in chosen)
    assert not wire.under_any(W("a.test."), ())


def test_writers_refuse_fields_their_wire_cannot_hold():
    from resolver.wire.codec import build_query, build_response
    with pytest.raises(ValueError):
        build_query(0x10000, b"\x00", 1)
    with pytest.raises(ValueError):
        build_query(1, b"\x00", 0x10000)
    with pytest.raises(ValueError):
        build_response(1, 0x8000, b"\x00\x00\x01\x00\x01", [(b"\x00", 1, 1, 2**32, b"")], [], [])
    with pytest.raises(ValueError):
        build_response(1, 0x8000, b"\x00\x00\x01\x00\x01", [(b"\x00", 1, 1, 0, b"x" * 65536)],
                       [], [])


def test_cache_key_lowers_ascii_letters_only():
    from resolver.wire.codec import cache_key
    name = b"\x03A\xc9z\x00"
    assert cache_key(name, 0x1234, 1, 5) == b"\x03a\xc9z\x00" + b"\x12\x34\x00\x01\x05"
    assert cache_key(name, 1, 1, 0)[:5] == name.lower()


# ---- EDNS padding (RFC 7830, RFC 8467's block-length strategy) ---------------------------------
@settings(max_examples=200, deadline=None)
@given(records=st.integers(0, 40), block=st.integers(1, 1000), ede=st.booleans())
def test_padding_makes_the_message_a_multiple_of_the_block(records, block, ede):
    """The padding option closes the OPT, zeros, and the message is the smallest multiple
    of the block that holds it (as Unbound's ``attach_edns_record``); other options stay."""
    import dns.edns
    r = dns.message.make_response(dns.message.make_query("www.example.com.", "TXT",
                                                         use_edns=0))
    r.answer.append(dns.rrset.from_text("www.example.com.", 60, "IN", "TXT",
                                        *[f'"{i:03d}"' for i in range(records)] or ['"x"']))
    if ede:
        r.use_edns(0, options=[dns.edns.EDEOption(3, "stale")])
    wire_in = r.to_wire()
    out = wire.with_padding(wire_in, block)
    assert len(out) % block == 0 and len(out) - block < len(wire_in) + 4 <= len(out)
    back = dns.message.from_wire(out)
    assert back.answer == r.answer
    pad = [o for o in back.options if o.otype == dns.edns.OptionType.PADDING]
    assert len(pad) == 1 and pad[0].to_wire() == bytes(len(out) - len(wire_in) - 4)
    assert [o.otype for o in back.options][-1] == dns.edns.OptionType.PADDING
    assert ([o for o in back.options if o.otype == dns.edns.OptionType.EDE] != []) == ede


def test_padding_leaves_a_message_without_edns_and_caps_at_a_frame():
    plain = dns.message.make_response(dns.message.make_query("a.example.", "A",
                                                             use_edns=False)).to_wire()
    assert wire.with_padding(plain, 468) == plain
    big = dns.message.make_response(dns.message.make_query("a.example.", "A", use_edns=0))
    big.answer.append(dns.rrset.from_text("a.example.", 60, "IN", "TXT",
                                          *[f'"{i:03d}{"x" * 247}"' for i in range(160)]))
    wire_in = big.to_wire(max_size=65535)
    assert 40000 < len(wire_in) < 65531                 # the next block is past a frame
    padded = wire.with_padding(wire_in, 40000)
    assert len(padded) == 65535 and dns.message.from_wire(padded).answer == big.answer


def test_an_option_closes_the_opt_that_ends_a_message():
    import dns.edns
    q = dns.message.make_query("a.example.", "A", use_edns=0)
    r = dns.message.make_response(q)
    r.use_edns(0, options=[dns.edns.GenericOption(15, b"\x00\x03")])
    got = dns.message.from_wire(wire.with_option(r.to_wire(), 3, b"resolver1"))
    assert [(o.otype, o.to_wire()) for o in got.options] == [(15, b"\x00\x03"),
                                                            (3, b"resolver1")]
    assert got.id == r.id and got.question == r.question
    plain = dns.message.make_response(dns.message.make_query("a.example.", "A",
                                                             use_edns=False)).to_wire()
    assert wire.with_option(plain, 3, b"resolver1") == plain     # no OPT to carry it
    big = dns.message.make_response(q)
    big.answer.append(dns.rrset.from_text("a.example.", 60, "IN", "TXT",
                                          *[f'"{i:03d}{"x" * 247}"' for i in range(249)]))
    full = big.to_wire(max_size=65535)
    assert 65535 - 13 < len(full) <= 65535
    assert wire.with_option(full, 3, b"resolver1") == full       # past a frame: as it was


def test_an_opt_not_owned_by_the_root_takes_no_option():
    """RFC 6891 gives the OPT record the root for owner, and the option's offsets rest on
    it: an OPT under another name (a malformed message) is left as it is, not written past
    its owner into its TTL, nor refused with a ValueError."""
    q = dns.message.make_query("a.example.", "A", use_edns=0).to_wire()
    assert q[-11:-8] == b"\x00\x00\x29"                   # the root's OPT, no options
    odd = q[:-11] + b"\x01a\x00" + q[-10:]               # the OPT owned by "a."
    assert wire.with_option(odd, 3, b"xyz") == odd
    assert wire.with_padding(odd, 128) == odd
    assert len(wire.with_padding(q, 128)) == 128          # the root's still takes it


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(options=st.lists(st.sampled_from([3, 8, 10, 12, 15]), max_size=4),
       edns=st.booleans(), cut=st.integers(0, 80), junk=st.binary(max_size=40))
def test_a_query_asks_for_an_option_when_its_opt_has_it(options, edns, cut, junk):
    """The daemon's check of a query's EDNS options (padding, NSID), in C, agrees with dnspython's reading
    of it, and reads nothing past a query cut short or followed by garbage."""
    import dns.edns
    q = dns.message.make_query("www.example.com.", "A", use_edns=0 if edns else False,
                               options=[dns.edns.GenericOption(o, b"\x00" * o)
                                        for o in options] if edns else None)
    wire_in = q.to_wire()
    for code in (3, 12):             # NSID, padding
        assert wire.query_asks_option(wire_in, code) == (edns and code in options)
    bad = wire_in[:max(0, len(wire_in) - cut)] + junk
    try:
        read = dns.message.from_wire(bad)
    except Exception:               # noqa: BLE001 - dnspython's reading is the reference
        read = None
    for code in (3, 12):
        asked = wire.query_asks_option(bad, code)
        if read is not None:
            assert asked == any(o.otype == code for o in read.options)


@given(st.lists(st.binary(min_size=1, max_size=12), max_size=6), st.integers(0, 8))
@settings(max_examples=300, deadline=None)
def test_label_count_and_strip_to_match_dnspython(labels, keep):
    name = dns.name.Name((*labels, b""))
    wire_name = name.to_wire()
    assert wire.label_count(wire_name) == len(labels)
    # the ancestor with ``keep`` labels, the name itself when it has no more
    want = name if keep >= len(labels) else name.split(keep + 1)[1]
    assert wire.strip_to(wire_name, keep) == want.to_wire()


def test_label_count_and_strip_to_refuse_none():
    for call in (lambda: wire.label_count(None), lambda: wire.strip_to(None, 1)):
        with pytest.raises(TypeError):
            call()
