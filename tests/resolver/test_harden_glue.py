"""harden-glue: a referral's glue for a name outside the referring zone is used only when
hardening is off (Unbound's ``harden-glue: no``); on (the default) the NS name is resolved
instead, as Unbound does with ``harden-glue: yes``."""
from __future__ import annotations

from resolver.cache import Cache
from resolver.hints import parse_root_hints
from resolver.iterator import Iterator
from resolver.limits import Limits
from scenario import FakeClock, W, drive, referral_with_glue, root_hints, small_internet

COM = ("10.0.1.1", "10.0.1.2")
OOB = "10.0.9.1"      # where the out-of-zone glue points: the real server of oob.com.


def world():
    """com.'s servers delegate oob.com. to ns.elsewhere.net. with an A record for that name
    in the additional section, which com. has no authority for; net. says the name does not
    exist, so only the glue leads to oob.com.'s server."""
    net = small_internet()
    net.zone("oob.com.", "@ 3600 NS ns.elsewhere.net.\nwww 300 A 192.0.2.77\n", [OOB])
    referral_with_glue(net, COM, "oob.com.", "ns.elsewhere.net.", OOB)
    return net


def resolve(net, harden: bool):
    clock = FakeClock()
    limits = Limits(exploration=0.0)
    cache = Cache(1 << 22, limits)
    it = Iterator(W("www.oob.com."), 1, 1, cache, parse_root_hints(root_hints()), clock,
                  limits=limits)
    it.harden_glue = harden
    return drive(it, net, clock), cache, clock


def test_out_of_zone_glue_is_ignored_by_default():
    net = world()
    res, cache, clock = resolve(net, True)
    assert res.rcode == 2, "ns.elsewhere.net. does not exist: no server for oob.com."
    assert OOB not in [a for a, _, _ in net.log]
    # the NS name is looked up instead (minimised: net. says elsewhere.net. does not exist)
    assert any(q.endswith("elsewhere.net.") for q, _ in net.queries("10.0.2.1"))
    assert cache.rrsets.get(W("ns.elsewhere.net."), 1, 1, clock()) is None


def test_out_of_zone_glue_is_used_with_harden_glue_off():
    net = world()
    res, cache, clock = resolve(net, False)
    assert res.rcode == 0 and res.answer[0][4] == bytes([192, 0, 2, 77])
    assert ("www.oob.com.", "A") in net.queries(OOB)
    assert not any(q.endswith("elsewhere.net.") for q, _ in net.queries("10.0.2.1"))


def test_in_zone_glue_is_used_either_way():
    for harden in (True, False):
        net = world()
        clock = FakeClock()
        limits = Limits(exploration=0.0)
        it = Iterator(W("www.example.com."), 1, 1, Cache(1 << 22, limits),
                      parse_root_hints(root_hints()), clock, limits=limits)
        it.harden_glue = harden
        assert drive(it, net, clock).rcode == 0
        assert ("ns1.example.com.", "A") not in net.queries()


def test_the_resolver_passes_its_switch_to_every_iterator():
    import asyncio

    import resolver

    async def go():
        on = resolver.Resolver(root_hints(), validate=False)
        off = resolver.Resolver(root_hints(), validate=False, harden_glue=False)
        a = on.new_iterator(W("x."), 1, 1)
        b = off.new_iterator(W("x."), 1, 1)
        await on.close()
        await off.close()
        return a.harden_glue, b.harden_glue

    assert asyncio.run(go()) == (True, False)
