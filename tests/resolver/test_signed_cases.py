"""Cases of signed zones that real zones produce every day, on the signed fake network
(``signed_net``: NSEC in example.com., NSEC3 with an opt-out span in n3.example.com.), each
with the verdict the RFCs give."""
from __future__ import annotations

import time

import pytest

from resolver.dnssec import INSECURE, SECURE
from signed_net import signed_world
from test_ad_invariant import A, CNAME, _resolve, LIMITS, W
from resolver.cache import Cache

DS, DNAME, RRSIG = 43, 39, 46


@pytest.fixture(scope="module")
def world():
    wall = time.time()
    net, anchor, keys = signed_world(wall)
    return net, anchor, wall


def ask(world, name, qtype, cache=None):
    net, anchor, wall = world
    res, _ = _resolve(net, anchor, wall, cache or Cache(1 << 22, LIMITS), None, name, qtype)
    return res


def types(res) -> list[int]:
    return [r[1] for r in res.answer if r[1] != RRSIG]


def test_a_cname_asked_for_is_the_answer(world):
    """RFC 4035 3.2.3: QTYPE CNAME is answered by the signed CNAME itself, secure, not by
    chasing its target."""
    res = ask(world, "alias.example.com.", CNAME)
    assert res.rcode == 0 and res.security == SECURE and types(res) == [CNAME]


def test_cname_query_under_a_signed_dname_is_its_synthesis(world):
    """RFC 6672 5.3.1: the DNAME (signed) and the CNAME made from it, secure; the DNAME
    appears once. Asked again after an A query through the DNAME, the answer is the same
    (the server's unsigned synthesis is not what the cache keeps)."""
    res = ask(world, "host.dn.example.com.", CNAME)
    assert res.security == SECURE and types(res) == [DNAME, CNAME]
    cache = Cache(1 << 22, LIMITS)
    assert ask(world, "host.dn.example.com.", A, cache).security == SECURE
    res = ask(world, "host.dn.example.com.", CNAME, cache)
    assert res.security == SECURE and types(res) == [DNAME, CNAME]
    assert [r[4] for r in res.answer if r[1] == CNAME] == [W("host.target.example.com.")]


def test_the_literal_wildcard_name_is_not_an_expansion(world):
    """RFC 4034 3.1.3: the RRSIG's label count leaves out the "*", so *.wild itself is
    answered secure without a proof of no closer name."""
    for name in ("*.wild.example.com.", "*.wild.n3.example.com."):
        res = ask(world, name, A)
        assert res.rcode == 0 and res.security == SECURE, (name, res.reason)


def test_opt_out_span_makes_a_nodata_insecure_not_bogus(world):
    """RFC 5155 8.6, 9.2: no NSEC3 matches the unsigned delegation, its next closer name is
    covered by an opt-out span: NOERROR, insecure (no AD), not SERVFAIL."""
    res = ask(world, "unsigned.n3.example.com.", DS)
    assert res.rcode == 0 and res.security == INSECURE, res.reason
