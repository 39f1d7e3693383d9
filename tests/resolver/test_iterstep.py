"""resolver.iterator.replies (the iterator's per-reply bookkeeping in C) against plain-Python
statements of the same rules, on generated names and records."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from resolver.iterator import replies as S
from resolver.wire.codec import Parsed, is_subdomain, same_name

# Labels mixing cases and the bytes just outside A-Z ('@' and '['), which must not fold.
LABELS = [b"\x01a", b"\x01A", b"\x02bB", b"\x01@", b"\x01[", b"\x03cOm", b"\x03COM"]
names = st.lists(st.sampled_from(LABELS), max_size=4).map(lambda ls: b"".join(ls) + b"\x00")
rtypes = st.sampled_from([1, 2, 6, 28, 46])
records = st.lists(st.tuples(names, rtypes, st.just(1), st.integers(0, 5000),
                             st.one_of(names, st.binary(max_size=4))), max_size=8)


def ref_is_subdomain(child: bytes, parent: bytes) -> bool:
    labels = []
    pos = 0
    while child[pos] != 0:
        labels.append(pos)
        pos += 1 + child[pos]
    labels.append(pos)
    return any(child[p:].lower() == parent.lower() for p in labels)


def ref_referral(m, zone, qname):
    if m.rcode != 0 or m.answer:
        return None
    ns = [r for r in m.authority if r[1] == 2]
    if not ns or any(r[1] == 6 and ref_is_subdomain(r[0], zone) for r in m.authority):
        return None
    child = ns[0][0]
    if (len(child) <= len(zone) or not ref_is_subdomain(child, zone)
            or not ref_is_subdomain(qname, child)):
        return None
    return child, [r for r in ns if r[0].lower() == child.lower()]


def Msg(rcode, flags, answer, authority, additional):
    """A parsed reply with these sections (the classifiers take resolver.wire.codec.Parsed)."""
    m = Parsed()
    m.rcode, m.flags = rcode, flags
    m.answer, m.authority, m.additional = answer, authority, additional
    return m


@settings(max_examples=400)
@given(names, names)
def test_name_comparisons_fold_ascii_letters_only(a, b):
    assert is_subdomain(a, b) == ref_is_subdomain(a, b)
    assert same_name(a, b) == (a.lower() == b.lower())


@settings(max_examples=300)
@given(st.sampled_from([0, 3]), st.sampled_from([0, 0x0400, 0x0080, 0x0480]), records,
       records, records, names, names)
def test_classification_matches_the_rules(rcode, flags, answer, authority, additional, zone,
                                          qname):
    m = Msg(rcode, flags, answer, authority, additional)
    ref = S.referral(m, zone, qname)
    assert ref == ref_referral(m, zone, qname)
    ns = [r for r in authority if r[1] == 2]
    soa = any(r[1] == 6 and ref_is_subdomain(r[0], zone) for r in authority)
    aa, ra = bool(flags & 0x0400), bool(flags & 0x0080)
    if ref is not None:
        lame = False
    elif ns and not answer and not soa and rcode == 0:
        # an upward/sideways referral, or an NS set at the zone without AA
        lame = not all(ref_is_subdomain(r[0], zone) for r in ns) or not aa
    elif aa or any(ref_is_subdomain(r[0], zone) for r in answer):
        lame = False        # an answer, with or without AA (without: at a lower rank)
    else:
        lame = ra if soa else True     # a negative answer from a cache, or nothing at all
    assert S.is_lame(m, zone, qname, ref) == lame
    assert S.in_zone(answer, zone) == [r for r in answer if ref_is_subdomain(r[0], zone)]
    assert S.has_soa(authority, zone) == soa
    assert S.glue(additional, zone, ns) == [
        r for r in additional if r[1] in (1, 28) and ref_is_subdomain(r[0], zone)
        and any(r[0].lower() == n[4].lower() for n in ns)]


@settings(max_examples=300)
@given(records)
def test_grouping_keeps_the_smallest_ttl_and_distinct_rdatas_in_order(recs):
    want: dict = {}
    for owner, rdtype, rdclass, ttl, rdata in recs:
        g = want.setdefault((owner.lower(), rdtype, rdclass), [owner, ttl, []])
        g[1] = min(g[1], ttl)
        if rdata not in g[2]:
            g[2].append(rdata)
    assert S.group(recs) == want


def ref_covers(r, t):
    return r[1] == 46 and len(r[4]) >= 2 and ((r[4][0] << 8) | r[4][1]) == t


def ref_label_count(name: bytes) -> int:
    pos = k = 0
    while name[pos] != 0:
        pos += 1 + name[pos]
        k += 1
    return k


sig_records = st.lists(st.tuples(names, st.sampled_from([1, 5, 46]), st.just(1),
                                 st.integers(0, 99), st.binary(max_size=6)), max_size=8)


@settings(max_examples=400)
@given(sig_records, names, st.sampled_from([1, 5, 46, 255, 258]))
def test_answer_selection_matches_the_rules(recs, name, qtype):
    lname = name.lower()
    hit = ([r for r in recs if r[0].lower() == lname and r[1] == qtype]
           or (qtype == 255 and any(r[0].lower() == lname for r in recs)))
    want = [r for r in recs if r[0].lower() == lname
            and (r[1] == qtype or qtype == 255 or ref_covers(r, qtype))] if hit else None
    assert S.owned(recs, name, qtype) == want
    assert S.split_sigs(recs) == ([r for r in recs if r[1] != 46], [r for r in recs if r[1] == 46])
    assert S.wildcard_expanded(recs) == any(
        r[1] == 46 and len(r[4]) >= 4 and r[4][3] < ref_label_count(r[0]) for r in recs)


@settings(max_examples=200)
@given(sig_records, st.sampled_from([1, 5, 46]))
def test_type_counting_and_filtering(recs, rdtype):
    assert S.count_type(recs, rdtype) == sum(1 for r in recs if r[1] == rdtype)
    types = frozenset((rdtype, 47))
    assert S.without_types(recs, types) == [r for r in recs if r[1] not in types]
