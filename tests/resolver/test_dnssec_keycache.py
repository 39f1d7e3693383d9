"""The validator's cache of parsed DNSKEYs (``Validator.keys``): a zone's key set fetched
again reuses the keys already loaded, a rolled key is a key of its own, and the cache holds
at most ``limits.dnssec_key_cache_keys`` keys."""
from __future__ import annotations

import time

import dns.dnssec
import dns.name
import dns.rrset
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from resolver.dnssec import SECURE, Validator
from resolver.dnssec.sig import Bogus, Counter, Key, verify_rrset
from resolver.dnssec.trust_anchor import load
from resolver.limits import DEFAULT, Limits
from scenario import W
from test_dnssec_scenario import LIMITS, run, signed_internet


def _dnskey(flags: int = 256):
    priv = ec.generate_private_key(ec.SECP256R1())
    return priv, dns.dnssec.make_dnskey(priv.public_key(), dns.dnssec.Algorithm.ECDSAP256SHA256,
                                        flags=flags)


def test_a_key_set_fetched_again_reuses_the_loaded_keys():
    wall = time.time()
    net, anchor = signed_internet(wall)
    v = Validator(load(anchor), LIMITS, wallclock=lambda: wall)
    res, _it, _v = run(net, anchor, lambda: wall, v=v)
    assert res.security == SECURE
    before = {z: list(e.keys) for z, e in v.zones.items() if e.keys}
    assert W("example.com.") in before and len(v.keys) == 3      # ., com., example.com.
    v.zones.clear()                           # as when the zones' key sets expire
    res, it, _v = run(net, anchor, lambda: wall, v=v)
    assert res.security == SECURE and ("example.com.", "DNSKEY") in net.queries()
    for zone, keys in before.items():
        assert all(a is b for a, b in zip(v.zones[zone].keys, keys, strict=True))


def test_the_cache_is_bounded_and_least_recently_used_goes_first():
    v = Validator({}, DEFAULT.replace(dnssec_key_cache_keys=2))
    wires = [_dnskey()[1].to_wire() for _ in range(3)]
    k0 = v._key(wires[0])
    v._key(wires[1])
    assert v._key(wires[0]) is k0             # used again: now the most recent
    v._key(wires[2])
    assert list(v.keys) == [wires[0], wires[2]] and len(v.keys) == 2
    run_limits = Limits(exploration=0.0).replace(dnssec_key_cache_keys=1)
    wall = time.time()
    net, anchor = signed_internet(wall)
    res, _it, v = run(net, anchor, lambda: wall, limits=run_limits)
    assert res.security == SECURE and len(v.keys) == 1


def test_a_rolled_key_is_not_taken_for_the_old_one():
    """A new key with the old one's tag (a roll, or a forgery) is another entry, and the old
    key's signature does not verify with it."""
    old_priv, old = _dnskey()
    _new_priv, new = _dnskey()
    v = Validator({}, DEFAULT)
    k_old, k_new = v._key(old.to_wire()), v._key(new.to_wire())
    assert k_old is not k_new and len(v.keys) == 2
    k_new.tag = k_old.tag                     # pretend the tags collide
    rrset = dns.rrset.from_text("www.example.", 300, "IN", "A", "192.0.2.1")
    now = int(time.time())
    sig = dns.dnssec.sign(rrset, old_priv, dns.name.from_text("example."), old, now - 60,
                          now + 3600)
    rec = (W("www.example."), 46, 1, 300, sig.to_wire())
    args = (W("www.example."), 1, 1, [rrset[0].to_wire()], [rec], W("example."))
    with pytest.raises(Bogus, match="does not verify"):
        verify_rrset(*args, [k_new], now, DEFAULT, Counter())
    assert verify_rrset(*args, [k_new, k_old], now, DEFAULT, Counter()).key_tag == k_old.tag
    assert isinstance(v._key(old.to_wire()), Key) and v._key(old.to_wire()) is k_old
