"""The compiled iterator events (resolver.iterator.events) and rrset entries (resolver.cache.store) keep
what callers relied on when they were dataclasses."""
from __future__ import annotations

import pytest

from resolver import cache as C
from resolver import iterator as it


def test_result_defaults_are_fresh_lists_and_fields_are_settable():
    a, b = it.Result(it.NOERROR), it.Result(it.NOERROR)
    a.answer.append(("x",))
    assert b.answer == [] and b.authority == []       # not one shared default list
    assert (a.reason, a.time_exhausted, a.security, a.ede) == (None, False, 0, None)
    a.security = it.SECURE
    assert a.security == it.SECURE
    r = it.Result(it.SERVFAIL, reason="why", time_exhausted=True)
    assert (r.rcode, r.reason, r.time_exhausted) == (it.SERVFAIL, "why", True)


def test_events_compare_field_by_field_and_only_within_their_class():
    q = it.Query(b"\x01a\x00", 1, 1, b"\x00", ["192.0.2.1"])
    assert q == it.Query(b"\x01a\x00", 1, 1, b"\x00", ["192.0.2.1"])
    assert q != it.Query(b"\x01a\x00", 28, 1, b"\x00", ["192.0.2.1"])
    assert it.Timeout("192.0.2.1") != it.Failure("192.0.2.1")
    assert it.Failure("192.0.2.1") == it.Failure("192.0.2.1", "")
    assert it.Reply("192.0.2.1", b"w") == it.Reply("192.0.2.1", b"w", 0.0, None)
    with pytest.raises(TypeError):
        hash(q)                                        # mutable, as the dataclasses were
    with pytest.raises(TypeError):
        it.Query(b"\x00", 1)                           # every field without a default needed


def test_event_repr_names_the_class_and_fields():
    assert repr(it.Failure("192.0.2.1", "refused")) == \
        "Failure(server='192.0.2.1', reason='refused', unreachable=False)"
    assert repr(it.Result(3)).startswith("Result(rcode=3, answer=[], authority=[]")


def test_rrset_entry_size_counts_rdatas_signatures_and_negative_records():
    name = b"\x03www\x07example\x00"
    one = C.RRsetEntry(name, 1, 1, 300, 300.0, C.AUTH_ANSWER, [b"\x01\x02\x03\x04"])
    e = C.RRsetEntry(name, 1, 1, 300, 300.0, C.AUTH_ANSWER, [b"\x01\x02\x03\x04"] * 2)
    # Each rdata costs its bytes and a bytes object's header; the entry costs its name too
    # (test_cache_memory.py checks these against the real heap).
    per_rdata = e.size - one.size
    assert per_rdata > 4 and one.size > per_rdata + len(name)
    sig = (name, 46, 1, 300, b"s" * 100)
    bare = e.size
    e.rrsigs = (sig,)
    assert e.size - bare > 100 + per_rdata
    soa = (b"\x07example\x00", 6, 1, 60, b"x" * 30)
    empty = C.RRsetEntry(name, 1, 1, 60, 60.0, C.AUTH_AUTHORITY, [], negative=0)
    neg = C.RRsetEntry(name, 1, 1, 60, 60.0, C.AUTH_AUTHORITY, [], negative=0, soa=[soa])
    assert neg.size - empty.size > 30
    assert neg.negative_records(50.0) == [(soa[0], 6, 1, 10, soa[4])]
    assert e.records(100.0) == [(name, 1, 1, 200, b"\x01\x02\x03\x04")] * 2
    assert e.sig_records(299.5) == [(name, 46, 1, 1, sig[4])]   # the begun second counts
    assert e.sig_records(300.0) == [(name, 46, 1, 0, sig[4])]


def test_rrset_entries_are_compared_by_identity():
    args = (b"\x00", 2, 1, 300, 300.0, C.REFERRAL, [b"\x00"])
    assert C.RRsetEntry(*args) != C.RRsetEntry(*args)

