"""resolver.Resolver as a drop-in for dns.asyncresolver.Resolver: forwarders with ports,
dnspython's attributes, its exceptions and its module-level functions, against fake servers
on 127.57.x.y."""
from __future__ import annotations

import asyncio

import dns.flags
import dns.message
import dns.name
import dns.resolver
import pytest

import resolver
import resolver.functions
from resolver.limits import Limits
from scenario import FakeServers, root_hints, small_internet

P = "127.57"
FAST = Limits(exploration=0.0, initial_rto=0.1, max_rto=0.2, max_query_time=1.5)
N = dns.name.from_text


@pytest.fixture
def world(run):
    net = small_internet(prefix=P)
    fs = FakeServers(net)
    port = run(fs.start(sorted(net.served)))
    try:
        yield net, fs, port
    finally:
        run(fs.stop())


def make(port, **kw) -> resolver.Resolver:
    kw.setdefault("limits", FAST)
    kw.setdefault("do_not_query_localhost", False)
    return resolver.Resolver(root_hints(P), port=port, **kw)


def _spy(net):
    seen = []
    answer = net.answer

    def spy(addr, wire, tcp=False):
        seen.append(addr)
        return answer(addr, wire, tcp)
    net.answer = spy
    return seen


# ---- forwarders ------------------------------------------------------------------------------

@pytest.mark.parametrize("form", ["at", "hash", "tuple"])
def test_forwarders_with_a_port_of_their_own(world, run, form):
    net, fs, port = world
    seen = _spy(net)
    good = f"{P}.3.1"                 # example.com's server answers for it
    entry = {"at": f"{good}@{port}", "hash": f"{good}#{port}", "tuple": (good, port)}[form]
    r = resolver.Resolver(forward=[entry], limits=FAST)      # port= left at 53
    assert r.forward == [f"{good}@{port}"] and r.port == 53  # the server's port its own
    ans = run(r.resolve("www.example.com"))
    assert [rd.address for rd in ans] == ["192.0.2.1"]
    assert set(seen) == {good}
    assert (ans.nameserver, ans.port) == (good, port)


def test_forwarders_on_different_ports(world, run):
    net, fs, port = world
    seen = _spy(net)
    good = f"{P}.3.1"
    # the first one has nobody on its port: the second answers
    r = resolver.Resolver(forward=[(f"{P}.3.2", 9), f"[{good}]@{port}"], limits=FAST)
    assert r.forward == [f"{P}.3.2@9", f"{good}@{port}"]
    assert [rd.address for rd in run(r.resolve("www.example.com"))] == ["192.0.2.1"]
    assert good in seen
    assert r.stats.forwarded >= 1


def test_a_nameserver_s_own_port_does_not_become_the_resolver_s(world):
    """As dnspython's: a Do53Nameserver's port is its own; ``port`` stays what it was for
    the addresses given later without one (it became the first server's port)."""
    import dns.nameserver

    net, fs, port = world
    good = f"{P}.3.1"
    r = resolver.Resolver(limits=FAST)
    r.nameservers = [dns.nameserver.Do53Nameserver(good, port)]
    assert (r.nameservers, r.port) == ([f"{good}@{port}"], 53)
    r.nameservers = [f"{P}.3.2"]
    assert (r.nameservers, r.port) == ([f"{P}.3.2"], 53)
    r.nameservers = ["192.0.2.53", dns.nameserver.Do53Nameserver(good, port)]
    assert r.nameservers == ["192.0.2.53", f"{good}@{port}"]


def test_forward_entries_are_checked():
    with pytest.raises(ValueError, match="numeric"):
        resolver.Resolver(forward=["dns.example@53"])
    with pytest.raises(ValueError, match="not a number"):
        resolver.Resolver(forward=["192.0.2.1@x"])
    with pytest.raises(ValueError, match="out of range"):
        resolver.Resolver(forward=[("192.0.2.1", 70000)])
    with pytest.raises(ValueError, match="twice"):
        resolver.Resolver(forward=[("192.0.2.1@53", 53)])
    r = resolver.Resolver(forward="192.0.2.1#5353")
    assert (r.forward, r.port) == (["192.0.2.1@5353"], 53)


# ---- dnspython's attributes ------------------------------------------------------------------

def test_nameservers_empty_when_recursing_and_setting_it_forwards(world, run):
    net, fs, port = world
    r = make(port)
    assert r.nameservers == [] and r.port == port
    assert r.dnssec is None                      # the fake root has no trust anchor
    seen = _spy(net)
    r.nameservers = [f"{P}.3.1"]                 # dnspython's way to pick the servers
    assert r.nameservers == [f"{P}.3.1"] and r.forward == [f"{P}.3.1"]
    ans = run(r.resolve("mail.example.com", "MX"))
    assert seen == [f"{P}.3.1"]
    assert ans.response.flags & dns.flags.RA or ans.rrset is not None
    r.nameservers = []                           # back to recursion
    assert r.nameservers == [] and r.forward is None
    seen.clear()
    run(r.resolve("www.example.com", "AAAA"))
    assert f"{P}.0.1" in seen or f"{P}.0.2" in seen
    with pytest.raises(ValueError):
        r.nameservers = "192.0.2.1"


def test_timeout_lifetime_edns_rotate_cache(world, run):
    net, fs, port = world
    r = make(port)
    assert r.lifetime == dns.resolver.Resolver(configure=False).lifetime
    r.lifetime = 0.3
    assert r.lifetime == 0.3
    for a in list(net.served):
        net.faults[a] = "timeout"
    with pytest.raises(dns.resolver.LifetimeTimeout) as ei:
        run(r.resolve("www.example.com"))
    assert ei.value.kwargs["timeout"] == 0.3
    r.timeout = 0.15
    assert r.timeout == 0.15 == r.limits.max_rto and r.limits.initial_rto <= 0.15
    r.use_edns(-1)
    assert r.edns == -1
    r.use_edns(True, payload=4096)
    assert (r.edns, r.payload) == (0, 4096)
    r.rotate = True
    cache = r.cache
    r.cache = dns.resolver.LRUCache()            # accepted, ours stays
    assert r.cache is cache
    with pytest.raises(TypeError):
        r.cache = {}


def test_cache_none_forgets_what_is_cached(world, run):
    net, fs, port = world
    r = make(port)
    run(r.resolve("www.example.com"))
    seen = _spy(net)
    run(r.resolve("www.example.com"))
    assert seen == []
    r.cache = None
    run(r.resolve("www.example.com"))
    assert seen                                  # asked again
    assert r.cache is not None


def test_cache_flush_takes_dnspython_s_key(world, run):
    """``r.cache.flush(key)`` with dnspython's cache key ``(name, rdtype, rdclass)`` (or a
    Name, or text) forgets that name, as ``flush`` on dnspython's Cache forgets the key;
    anything else is a TypeError, never a crash inside."""
    import dns.rdataclass
    import dns.rdatatype

    net, fs, port = world
    r = make(port)
    key = (N("www.example.com"), dns.rdatatype.A, dns.rdataclass.IN)
    for forget in (key, key[0], "www.example.com"):
        run(r.resolve("www.example.com"))
        seen = _spy(net)
        r.cache.flush(forget)
        run(r.resolve("www.example.com"))
        assert seen, forget                      # asked again
    with pytest.raises(TypeError):
        r.cache.flush(42)


def test_search_and_domain_take_text(world, run):
    net, fs, port = world
    r = make(port)
    r.search = ["example.com."]
    assert run(r.resolve("www", search=True)).qname == N("www.example.com.")
    r.search = ["nowhere.test", "example.com"]   # relative text: taken as absolute
    ans = run(r.resolve("alias", search=True))
    assert ans.canonical_name == N("www.example.com.")
    r.search = []
    r.domain = N("example.com.")                 # dnspython: the search list when none
    assert run(r.resolve("mail", "MX", search=True)).qname == N("mail.example.com.")
    r.domain = "example.com"
    with pytest.raises(dns.resolver.NXDOMAIN) as ei:
        run(r.resolve("nope", search=True))
    assert [str(n) for n in ei.value.qnames()] == ["nope.example.com.", "nope."]


def test_source_is_the_resolvers_and_source_port_must_be_0(world, run):
    net, fs, port = world
    r = make(port)
    r.source = "127.0.0.1"
    ans = run(r.resolve("www.example.com", source="127.0.0.1", source_port=0,
                        backend=None))
    assert [rd.address for rd in ans] == ["192.0.2.1"]
    with pytest.raises(ValueError, match="numeric"):
        run(r.resolve("www.example.com", source="localhost"))
    with pytest.raises(ValueError, match="Resolver\\(source="):
        run(r.resolve("www.example.com", source="127.0.0.2"))
    with pytest.raises(ValueError, match="fresh random source port"):
        run(r.resolve("www.example.com", source_port=5353))
    with pytest.raises(ValueError, match="out of range"):
        run(r.resolve("www.example.com", source_port=70000))


# ---- errors ----------------------------------------------------------------------------------

def test_silent_servers_give_lifetime_timeout(world, run):
    net, fs, port = world
    for a in (f"{P}.3.1", f"{P}.3.2"):           # example.com's servers never answer
        net.faults[a] = "timeout"
    r = make(port, limits=FAST.replace(max_query_time=0.8))
    with pytest.raises(dns.resolver.LifetimeTimeout) as ei:
        run(r.resolve("www.example.com"))
    text = str(ei.value)
    # the silent servers, named as dnspython names them
    assert "None" not in text and f"Server Do53:{P}.3.1@{port} answered" in text
    assert ei.value.kwargs["errors"]


def test_failing_servers_give_a_readable_no_nameservers(world, run):
    net, fs, port = world
    for a in (f"{P}.3.1", f"{P}.3.2"):
        net.faults[a] = "refused"
    r = make(port)
    with pytest.raises(dns.resolver.NoNameservers) as ei:
        run(r.resolve("www.example.com"))
    text = str(ei.value)
    assert "Server None" not in text and "www.example.com. IN A" in text
    net.faults.clear()
    a, b = f"{P}.3.1", f"{P}.3.2"
    net.faults[a] = "servfail"
    f = resolver.Resolver(forward=[f"{a}@{port}"], limits=FAST)
    with pytest.raises(dns.resolver.NoNameservers) as ei:
        run(f.resolve("www.example.com"))
    assert f"Server Do53:{a}@{port} answered" in str(ei.value)


def test_any_and_meta_queries_raise_no_metaqueries(world, run):
    net, fs, port = world
    r = make(port)
    for rdtype in ("ANY", "AXFR", "IXFR"):
        with pytest.raises(dns.resolver.NoMetaqueries):
            run(r.resolve("www.example.com", rdtype))
    with pytest.raises(dns.resolver.NoMetaqueries):
        run(r.resolve("www.example.com", "A", "ANY"))
    q = dns.message.make_query("www.example.com", "ANY")      # the wire path answers ANY
    assert run(r.resolve_message(q)).rcode() == 0


# ---- module-level functions ------------------------------------------------------------------

@pytest.fixture
def default(world, monkeypatch):
    net, fs, port = world
    r = make(port)
    monkeypatch.setattr(resolver.functions, "default_resolver", r)
    return net, port, r


def test_module_functions_use_the_default_resolver(default, run):
    net, port, r = default
    assert resolver.get_default_resolver() is r
    assert [rd.address for rd in run(resolver.resolve("www.example.com"))] == ["192.0.2.1"]
    assert run(resolver.canonical_name("alias.example.com")) == N("www.example.com.")
    both = run(resolver.resolve_name("www.example.com"))
    assert set(both.addresses()) == {"192.0.2.1", "2001:db8::1"}
    with pytest.raises(dns.resolver.NXDOMAIN):
        run(resolver.resolve_address("192.0.2.1"))
    assert run(resolver.zone_for_name("www.example.com")) == N("example.com.")
    assert run(resolver.zone_for_name("nope.example.com.")) == N("example.com.")
    assert run(resolver.zone_for_name("host.other.net", resolver=r)) == N("other.net.")
    with pytest.raises(dns.resolver.NotAbsolute):
        run(resolver.zone_for_name(N("www", None)))
    assert r.stats.client_queries >= 6


def test_resolve_at_asks_that_server(default, run):
    net, port, r = default
    seen = _spy(net)
    ans = run(resolver.resolve_at(f"{P}.4.1", "host.other.net", port=port))
    assert [rd.address for rd in ans] == ["198.51.100.7"]
    assert set(seen) == {f"{P}.4.1"}
    seen.clear()
    # a name: its address from the default resolver, then that server asked
    ans = run(resolver.resolve_at("ns.other.net", "www.other.net", port=port))
    assert [rd.address for rd in ans] == ["198.51.100.8"]
    assert seen[-1] == f"{P}.4.1"


def test_assigning_resolver_default_resolver_chooses_it(world, run, monkeypatch):
    net, fs, port = world
    r = make(port)
    monkeypatch.setattr(resolver.functions, "default_resolver", None)
    resolver.default_resolver = r                   # dns.asyncresolver's idiom
    assert resolver.functions.default_resolver is r and resolver.default_resolver is r
    assert [rd.address for rd in run(resolver.resolve("www.example.com"))] == ["192.0.2.1"]
    assert r.stats.client_queries == 1


def test_reset_default_resolver_makes_a_new_one(monkeypatch):
    monkeypatch.setattr(resolver.functions, "default_resolver", None)
    first = resolver.get_default_resolver()
    assert isinstance(first, resolver.Resolver) and first.nameservers == []
    resolver.reset_default_resolver()
    assert resolver.get_default_resolver() is not first
    assert asyncio.iscoroutinefunction(resolver.resolve)


def test_nameservers_turn_validation_off_and_back_on():
    r = resolver.Resolver()                      # the real root: validating (no query made)
    validator = r.dnssec
    assert validator is not None and r.nameservers == []
    r.nameservers = ["192.0.2.53", ("192.0.2.54", 5353)]
    assert r.dnssec is None and r.nameservers == ["192.0.2.53", "192.0.2.54@5353"]
    r.nameservers = []
    assert r.dnssec is validator and r.forward is None


#: dnspython's settings a new Resolver has, read off both
DEFAULTS = ("lifetime", "edns", "ednsflags", "payload", "ednsoptions", "flags", "retry_servfail",
            "rotate", "ndots", "search", "domain", "use_search_by_default", "port",
            "nameserver_ports", "keyring", "keyname", "keyalgorithm")


def _defaults(r, names=DEFAULTS) -> dict:
    return {name: getattr(r, name) for name in names}


def test_a_new_resolver_has_dnspython_s_settings(run, tmp_path):
    """``resolver.Resolver()`` as ``dns.asyncresolver.Resolver(configure=False)``, and
    ``resolver.sync.Resolver`` as ``dns.resolver.Resolver``, made without a resolv.conf and
    from a simple one; ``timeout`` too for the sync one. Kept apart: the async one's
    ``timeout`` is the recursion's ``Limits.max_rto``, and the cache is always on."""
    import dns.asyncresolver

    from resolver import sync

    async def made():
        return resolver.Resolver(), dns.asyncresolver.Resolver(configure=False)

    mine, theirs = run(made())
    assert _defaults(mine) == _defaults(theirs)
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.1\n")
    for kw in ({"configure": False}, {"filename": str(conf)}):
        mine, theirs = sync.Resolver(**kw), dns.resolver.Resolver(**kw)
        try:
            names = DEFAULTS + ("timeout", "nameservers")
            assert _defaults(mine, names) == _defaults(theirs, names), kw
        finally:
            mine.close()


def test_the_module_has_dns_asyncresolver_s_names():
    """What ``from dns import asyncresolver`` code reaches for on the module
    (``except asyncresolver.NXDOMAIN``), bar DDR, which asks the network."""
    import inspect

    import dns.asyncresolver

    names = {n for n, v in vars(dns.asyncresolver).items() if not n.startswith("_")
             and (inspect.isfunction(v) or inspect.isclass(v)) and n != "Any"}
    assert sorted(n for n in names if not hasattr(resolver, n)) == ["try_ddr"]
    for name in ("NXDOMAIN", "NoAnswer", "NoRootSOA", "NotAbsolute"):
        assert getattr(resolver, name) is getattr(dns.asyncresolver, name)


def test_dnspython_s_configuration_calls_as_dns_asyncresolver_s(world, run, tmp_path):
    """``read_resolv_conf``, ``nameserver_ports``, ``reset``, ``set_flags`` and
    ``use_tsig`` on the async resolver, as on ``dns.asyncresolver.Resolver``: the
    settings a resolv.conf gives, the nameservers asked, and dnspython's defaults back."""
    import dns.asyncresolver

    net, fs, port = world
    good = f"{P}.3.1"                 # example.com's server answers for it
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver {good}\nsearch example.com\noptions ndots:2 timeout:1 "
                    "attempts:3 edns0\n")

    def settings(r):
        return (list(r.search), r.ndots, r.edns, r.domain, r.flags, r.keyring,
                r.retry_servfail)

    mine = resolver.Resolver(limits=FAST)
    theirs = dns.asyncresolver.Resolver(configure=False)
    for r in (mine, theirs):
        r.read_resolv_conf(str(conf))
        r.set_flags(dns.flags.RD)
        r.use_tsig(None)
    assert settings(mine) == settings(theirs)
    assert mine.timeout == theirs.timeout == 1.0 and mine.attempts == 3
    with pytest.raises(NotImplementedError):
        mine.use_tsig({"key.": b"secret"})

    async def ask(r):
        r.nameserver_ports = {good: port}
        r.nameservers = [good]                    # the port from the map, as dnspython
        answer = await r.resolve("www.example.com", "A")
        return sorted(rd.address for rd in answer), answer.port

    assert run(ask(mine)) == run(ask(theirs))
    for r in (mine, theirs):
        r.reset()
    assert settings(mine) == settings(theirs)
    assert mine.nameservers == [] and mine.nameserver_ports == {} and mine.lifetime == 5.0
    assert (mine.edns, mine.attempts, mine.trust_ad) == (-1, None, False)
