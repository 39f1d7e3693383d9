"""The message cache as text (``resolver.cache.dump``): what ``dump_cache`` writes and
``load_cache`` reads, on a cache driven by hand, with its own clock."""
from __future__ import annotations

import base64
import struct

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rrset
import pytest

from resolver.cache import Cache
from resolver.cache.dump import DumpError, dump, load, parse


def key(name: str, rdtype: int, variant: int = 3) -> bytes:
    return dns.name.from_text(name).to_wire() + struct.pack("!HHB", rdtype, 1, variant)


def answer(name: str, ttl: int, secure: bool, rcode=dns.rcode.NOERROR) -> bytes:
    q = dns.message.make_query(name, "A")
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    if rcode == dns.rcode.NOERROR:
        r.answer.append(dns.rrset.from_text(name, ttl, "IN", "A", "192.0.2.1"))
    else:
        r.authority.append(dns.rrset.from_text(
            "example.", ttl, "IN", "SOA", "ns.example. h.example. 1 2 3 4 5"))
    r.flags = (r.flags | dns.flags.AD) if secure else (r.flags & ~dns.flags.AD)
    return r.to_wire()


def filled(now: float) -> Cache:
    c = Cache(1 << 20)
    c.messages.store(key("secure.example.", 1), answer("secure.example.", 300, True), now)
    c.messages.store(key("plain.example.", 1), answer("plain.example.", 600, False), now)
    c.messages.store(key("nx.example.", 1), answer("nx.example.", 100, True,
                                                   dns.rcode.NXDOMAIN), now)
    c.messages.store(key("gone.example.", 1), answer("gone.example.", 5, False), now)
    return c


def test_a_dump_loads_back_with_the_ttl_left_and_each_entry_s_status():
    cache = filled(1000.0)
    lines = dump(cache, 1010.0)                  # ten seconds later; gone.example. expired
    entries = [x for x in lines if x.startswith("msg ")]
    assert len(entries) == 3
    by_name = {x.split()[1]: x.split() for x in entries}
    assert by_name["secure.example."][5:8] == ["290", "secure", "NOERROR"]
    assert by_name["plain.example."][5:8] == ["590", "insecure", "NOERROR"]
    assert by_name["nx.example."][5:8] == ["90", "secure", "NXDOMAIN"]
    fresh = Cache(1 << 20)
    assert load(fresh, parse("\n".join(lines)), 5000.0) == 3
    e = fresh.messages.lru.data[key("secure.example.", 1)]
    assert e.expires == 5000.0 + 290
    msg = dns.message.from_wire(e.wire)
    assert msg.flags & dns.flags.AD and msg.answer[0].ttl == 290      # TTLs as they stood
    plain = dns.message.from_wire(fresh.messages.lru.data[key("plain.example.", 1)].wire)
    assert not plain.flags & dns.flags.AD
    assert fresh.messages.lru.data[key("nx.example.", 1)].rcode == dns.rcode.NXDOMAIN


def test_the_status_word_decides_the_ad_bit():
    lines = dump(filled(0.0), 0.0)
    text = "\n".join(x.replace(" secure ", " insecure ") for x in lines)
    fresh = Cache(1 << 20)
    load(fresh, parse(text), 0.0)
    assert not any(dns.message.from_wire(e.wire).flags & dns.flags.AD
                   for e in fresh.messages.lru.data.values())
    text = "\n".join(x.replace(" insecure ", " secure ") for x in lines)
    load(fresh, parse(text), 0.0)
    assert all(dns.message.from_wire(e.wire).flags & dns.flags.AD
               for e in fresh.messages.lru.data.values())


@pytest.mark.parametrize("bad, words", [
    ("msg a.example. A IN 3 100 secure NOERROR", "expected"),
    ("msg a.example. A IN 3 100 trusted NOERROR AAAA", "status 'trusted'"),
    ("msg a.example. A IN 9 100 secure NOERROR AAAA", "variant 9"),
    ("msg a.example. A IN 3 -5 secure NOERROR AAAA", "TTL -5"),
    ("msg a.example. NOTATYPE IN 3 100 secure NOERROR AAAA", "NOTATYPE"),
    ("msg a.example. A IN 3 100 secure NOERROR !!!!", "line 2"),
    ("msg a.example. A IN 3 100 secure NOERROR AAAAAAAAAAAAAAAAAAAA", "line 2"),
    ("msg other.example. A IN 3 100 secure NOERROR " + base64.b64encode(
        answer("secure.example.", 300, True)).decode(), "another question"),
    ("msg secure.example. AAAA IN 3 100 secure NOERROR " + base64.b64encode(
        answer("secure.example.", 300, True)).decode(), "another question"),
])
def test_a_bad_line_is_an_error_naming_it_and_nothing_is_read(bad, words):
    good = [x for x in dump(filled(0.0), 0.0) if x.startswith("msg ")][0]
    with pytest.raises(DumpError, match="line 2") as e:
        parse("\n".join([good, bad, good]))
    assert words in str(e.value)
