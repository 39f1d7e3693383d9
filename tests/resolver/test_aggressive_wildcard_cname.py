"""Aggressive use of a cached wildcard CNAME (RFC 8198 5.3, RFC 4592 4.4): once a
wildcard CNAME's expansion was validated, other names below it are answered from the cache
for every type, not only the type asked first, and the CNAME's target is resolved as for
any CNAME. On the signed fake network, with ``*.cwild.example.com. CNAME www.example.com.``
added to example.com. (NSEC)."""
from __future__ import annotations

import time

import pytest

from resolver import iterator as itr
from resolver.cache import Cache
from resolver.dnssec import SECURE, Validator
from resolver.dnssec.trust_anchor import load
from resolver.hints import parse_root_hints
from resolver.limits import Limits
from scenario import FakeClock, W, drive, root_hints
from signed_net import signed_world

LIMITS = Limits(exploration=0.0)
A, CNAME, TXT, AAAA, RRSIG = 1, 5, 16, 28, 46


@pytest.fixture(scope="module")
def world():
    wall = time.time()
    net, anchor, keys = signed_world(wall, extra="*.cwild 300 CNAME www.example.com.\n")
    return net, anchor, wall


def _asker(world):
    """(ask, validator): ``ask(name, qtype)`` resolves through one cache and validator,
    giving the Result and the questions sent upstream."""
    net, anchor, wall = world
    cache = Cache(1 << 22, LIMITS)
    v = Validator(load(anchor), LIMITS, wallclock=lambda: wall)
    clock = FakeClock()

    def ask(name, qtype):
        it = itr.Iterator(W(name), qtype, 1, cache, parse_root_hints(root_hints()), clock,
                          limits=LIMITS, dnssec=v)
        before = len(net.log)
        return drive(it, net, clock), net.log[before:]
    return ask, v


def test_a_cached_wildcard_cname_answers_other_names_for_any_type(world):
    ask, v = _asker(world)
    res, _log = ask("a.cwild.example.com.", A)
    assert res.rcode == 0 and res.security == SECURE, res.reason
    assert [r[1] for r in res.answer if r[1] != RRSIG] == [CNAME, A]
    synthesized = v.stats.synthesized
    for name, qtype, final in (("b.cwild.example.com.", AAAA, AAAA),
                               ("c.cwild.example.com.", A, A),
                               ("d.cwild.example.com.", TXT, None)):
        res, log = ask(name, qtype)
        assert res.rcode == 0 and res.security == SECURE, (name, res.reason)
        assert [q for _a, q, _t in log if q == name] == [], name    # from the cache
        owners = {(r[0], r[1]) for r in res.answer if r[1] != RRSIG}
        assert (W(name), CNAME) in owners
        if final is not None:
            assert (W("www.example.com."), final) in owners
    assert v.stats.synthesized == synthesized + 3


def test_the_wildcard_s_proof_stays_with_the_expanded_cname_not_its_target(world):
    """The NSEC proving the wildcard expansion is kept with the expanded CNAME only: the
    CNAME's target, a name of its own, answers later from the cache without it (with DO
    Unbound gives www.example.com. A no authority records)."""
    ask, _v = _asker(world)
    res, _log = ask("e.cwild.example.com.", A)
    assert res.rcode == 0 and res.security == SECURE, res.reason
    assert any(r[1] == 47 for r in res.authority)           # the wildcard's NSEC proof
    res, log = ask("www.example.com.", A)
    assert log == [] and res.rcode == 0 and res.security == SECURE, res.reason
    assert res.authority == []
    res, log = ask("f.cwild.example.com.", A)         # the expanded CNAME keeps its proof
    assert [q for _a, q, _t in log if q == W("f.cwild.example.com.")] == []
    assert res.security == SECURE, res.reason
