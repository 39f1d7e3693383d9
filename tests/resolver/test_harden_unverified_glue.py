"""harden-unverified-glue (Unbound 1.21's): a referral's glue is used at once only for
servers named inside the zone it delegates; a server named in a sibling zone (in bailiwick
of the parent, so harden-glue lets its glue through) has its name resolved, and its glue
is tried only when that fails. Off (the default), the glue is used as it comes."""
from __future__ import annotations

from resolver.cache import Cache
from resolver.hints import parse_root_hints
from resolver.iterator import Iterator
from resolver.limits import Limits
from scenario import FakeClock, W, drive, referral_with_glue, root_hints, small_internet

COM = ("10.0.1.1", "10.0.1.2")
GLUE = "10.0.9.9"     # where com.'s glue for the sibling-named server points


def world(ns: str):
    """com.'s servers delegate sib.com. to ``ns`` (a name in example.com., a sibling) with
    glue for it pointing at GLUE; sib.com. is served at GLUE and at ns1.example.com.'s own
    address (10.0.3.1)."""
    net = small_internet()
    net.zone("sib.com.", f"@ 3600 NS {ns}\nwww 300 A 192.0.2.99\n", ["10.0.3.1", GLUE])
    referral_with_glue(net, COM, "sib.com.", ns, GLUE)
    return net


def resolve(net, name: str, harden: bool):
    clock = FakeClock()
    limits = Limits(exploration=0.0)
    it = Iterator(W(name), 1, 1, Cache(1 << 22, limits), parse_root_hints(root_hints()),
                  clock, limits=limits)
    it.harden_unverified_glue = harden
    return drive(it, net, clock)


def test_a_sibling_named_server_is_resolved_instead_of_its_glue():
    net = world("ns1.example.com.")
    res = resolve(net, "www.sib.com.", True)
    assert res.rcode == 0 and res.answer[0][4] == bytes([192, 0, 2, 99])
    assert net.queries(GLUE) == []
    assert ("www.sib.com.", "A") in net.queries("10.0.3.1")


def test_the_glue_is_used_as_it_comes_by_default():
    net = world("ns1.example.com.")
    res = resolve(net, "www.sib.com.", False)
    assert res.rcode == 0 and ("www.sib.com.", "A") in net.queries(GLUE)
    assert ("ns1.example.com.", "A") not in net.queries()


def test_the_glue_is_the_last_resort_when_the_name_does_not_resolve():
    net = world("gone.example.com.")          # example.com. says it does not exist
    res = resolve(net, "www.sib.com.", True)
    assert res.rcode == 0 and res.answer[0][4] == bytes([192, 0, 2, 99])
    asked = net.queries()
    assert asked.index(("gone.example.com.", "A")) < asked.index(("www.sib.com.", "A"))
    assert ("www.sib.com.", "A") in net.queries(GLUE)


def test_in_zone_glue_is_used_at_once_either_way():
    for harden in (True, False):
        net = small_internet()
        assert resolve(net, "www.example.com.", harden).rcode == 0
        assert ("ns1.example.com.", "A") not in net.queries()


def test_the_resolver_and_the_daemon_s_setting_reach_every_iterator(tmp_path):
    """``Resolver(harden_unverified_glue=True)``, and the daemon's setting from its TOML and
    from an unbound.conf's line."""
    import asyncio

    import resolver
    from resolver.daemon import config
    from resolver.daemon.server import make_resolver

    (tmp_path / "corenet.toml").write_text("harden-unverified-glue = true\n")
    (tmp_path / "unbound.conf").write_text("server:\n  harden-unverified-glue: yes\n")

    async def go():
        made = [resolver.Resolver(root_hints(), validate=False, harden_unverified_glue=True),
                resolver.Resolver(root_hints(), validate=False)]
        made += [make_resolver(config.build(str(tmp_path / f))) for f in
                 ("corenet.toml", "unbound.conf")]
        seen = [r.new_iterator(W("x."), 1, 1).harden_unverified_glue for r in made]
        for r in made:
            await r.close()
        return seen

    assert asyncio.run(go()) == [True, False, True, True]
