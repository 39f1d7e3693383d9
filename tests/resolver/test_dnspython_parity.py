"""The same calls made of dnspython's own resolvers (stubs asking a corenet daemon that
recurses from the lab) and of corenet's library (recursing from the same lab) give the same
answers and raise the same exception types: dns.asyncresolver.Resolver next to
resolver.Resolver, and dns.resolver.Resolver next to resolver.sync.Resolver."""
from __future__ import annotations

import functools
import socket
import time

import dns.asyncresolver
import dns.name
import dns.rdataclass
import dns.resolver
import pytest

from daemon_proc import Daemon

from resolver import sync

#: the exception types compared, most specific first
KINDS = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoMetaqueries,
         dns.resolver.LifetimeTimeout, dns.resolver.NoNameservers)


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("parity"), lab).start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def _stub(cls, daemon):
    stub = cls(configure=False)
    stub.nameservers = ["127.0.0.1"]
    stub.port = daemon.port
    stub.lifetime = 8.0
    return stub


@pytest.fixture
def both(daemon, lab_resolver):
    """(dnspython's async stub, corenet's async Resolver)."""
    return _stub(dns.asyncresolver.Resolver, daemon), lab_resolver()


@pytest.fixture
def both_sync(daemon, lab):
    """(dnspython's sync stub, corenet's sync Resolver recursing from the lab)."""
    ours = sync.Resolver(configure=False, root_hints=lab.root_hints, port=lab.port,
                         do_not_query_localhost=False)
    yield _stub(dns.resolver.Resolver, daemon), ours
    ours.close()


def _kind_of(exc) -> tuple:
    kind = next(k for k in KINDS if isinstance(exc, k))
    extra = None
    if isinstance(exc, dns.resolver.NXDOMAIN):
        extra = ([str(n) for n in exc.qnames()], str(exc.canonical_name))
    return (kind.__name__, extra)


def _value_of(out) -> tuple:
    if isinstance(out, dns.name.Name):
        return ("name", str(out))
    if isinstance(out, dns.resolver.HostAnswers):
        return ("host", sorted(out.addresses()))
    rrset = out.rrset
    return ("answer", str(out.qname), str(out.canonical_name),
            None if rrset is None else (str(rrset.name), rrset.rdtype,
                                        sorted(rd.to_text() for rd in rrset)))


async def _awaited(call) -> tuple:
    """What ``await call()`` did, as comparable data."""
    try:
        out = await call()
    except KINDS as exc:
        return _kind_of(exc)
    return _value_of(out)


def _returned(call) -> tuple:
    """What ``call()`` did, as comparable data."""
    try:
        out = call()
    except KINDS as exc:
        return _kind_of(exc)
    return _value_of(out)


@pytest.fixture
def same_async(run, both):
    """same(call): ``call(r)`` on both async resolvers gives the same; that outcome."""
    def same(call):
        stub, ours = both
        theirs = run(_awaited(lambda: call(stub)))
        mine = run(_awaited(lambda: call(ours)))
        assert mine == theirs
        return mine
    same.pair = both
    return same


@pytest.fixture
def same_sync(both_sync):
    """same(call): ``call(r)`` on both sync resolvers gives the same; that outcome. The
    calls run in this thread, with no loop running (dnspython's sync use)."""
    def same(call):
        stub, ours = both_sync
        theirs = _returned(lambda: call(stub))
        mine = _returned(lambda: call(ours))
        assert mine == theirs
        return mine
    same.pair = both_sync
    return same


# ---- the calls, each made of both pairs -----------------------------------------------------

def _data(same, qname, rdtype):
    assert same(lambda r: r.resolve(qname, rdtype))[0] == "answer"


def _nxdomain_and_its_qnames(same, qname):
    assert same(lambda r: r.resolve(qname, "A"))[0] == "NXDOMAIN"


def _no_answer_and_raise_on_no_answer_false(same):
    assert same(lambda r: r.resolve("v4only.example.com", "AAAA"))[0] == "NoAnswer"
    assert same(lambda r: r.resolve("ent.example.com", "A"))[0] == "NoAnswer"
    got = same(lambda r: r.resolve("v4only.example.com", "AAAA", raise_on_no_answer=False))
    assert got[0] == "answer" and got[3] is None


def _cname_chains(same):
    for name in ("alias.example.com", "xalias.example.com", "chain8-00.example.com",
                 "www.dname.example.com"):
        assert same(lambda r: r.resolve(name, "A"))[0] == "answer"
        assert same(lambda r: r.canonical_name(name))[0] == "name"
    # a CNAME to nothing: NXDOMAIN, and canonical_name the chain's end all the same
    assert same(lambda r: r.resolve("dangling.example.com"))[0] == "NXDOMAIN"
    assert same(lambda r: r.canonical_name("dangling.example.com")) == \
        ("name", "nothing.example.net.")


def _resolve_address_and_resolve_name(same):
    assert same(lambda r: r.resolve_address("192.0.2.1"))[0] == "NXDOMAIN"
    assert same(lambda r: r.resolve_name("www.example.com"))[0] == "host"
    assert same(lambda r: r.resolve_name("v4only.example.com"))[0] == "host"


def _search_list(same):
    for r in same.pair:
        r.search = [dns.name.from_text("nowhere.example."), dns.name.from_text("example.com.")]
    assert same(lambda r: r.resolve("www", search=True))[1] == "www.example.com."
    assert same(lambda r: r.resolve("nope", search=True))[0] == "NXDOMAIN"
    assert same(lambda r: r.resolve("www", search=False))[0] == "NXDOMAIN"


def _query_name_case(same):
    """The name's case as the caller wrote it, after another case was asked (and cached):
    qname, canonical_name, the rrset's name and the NXDOMAIN's qnames."""
    for first, again in (("mail.example.com", "MAIL.Example.COM"),
                         ("alias.example.com", "Alias.Example.Com"),
                         ("nope.example.com", "NOPE.Example.com")):
        same(lambda r: r.resolve(first, "A"))
        assert any(c.isupper() for c in str(same(lambda r: r.resolve(again, "A"))[1]))
    assert same(lambda r: r.canonical_name("ALIAS.example.COM")) == ("name", "www.example.COM.")


def _default_local_zones(same):
    """Unbound's default local zones, which the daemon serves: localhost, the loopback
    reverse zones, RFC 6761's special-use names and RFC 6303's AS112 zones, answered by the
    library itself when it recurses, never asked upstream."""
    ours = same.pair[1]
    sent = ours.stats.upstream_queries
    for call in (lambda r: r.resolve("localhost"), lambda r: r.resolve("localhost.", "AAAA"),
                 lambda r: r.resolve("foo.localhost"), lambda r: r.resolve("localhost", "MX"),
                 lambda r: r.resolve_address("127.0.0.1"), lambda r: r.resolve_address("::1"),
                 lambda r: r.resolve_name("localhost"), lambda r: r.resolve("x.test"),
                 lambda r: r.resolve("x.invalid"), lambda r: r.resolve("y.home.arpa"),
                 lambda r: r.resolve_address("10.1.2.3"),
                 lambda r: r.resolve_address("192.168.1.1")):
        same(call)
    assert same(lambda r: r.resolve("localhost"))[3][2] == ["127.0.0.1"]
    assert ours.stats.upstream_queries == sent


def _meta_queries(same):
    assert same(lambda r: r.resolve("example.com", "ANY"))[0] == "NoMetaqueries"


CALLS = {
    **{f"data {q} {t}": functools.partial(_data, qname=q, rdtype=t) for q, t in [
        ("www.example.com", "A"), ("www.example.com", "AAAA"), ("example.com", "MX"),
        ("example.com", "TXT"), ("_sip._udp.example.com", "SRV"),
        ("host.wild.example.com", "A")]},
    **{f"nxdomain {q}": functools.partial(_nxdomain_and_its_qnames, qname=q)
       for q in ["nope.example.com", "nosuch.com", "nosuchtld."]},
    "no answer": _no_answer_and_raise_on_no_answer_false,
    "cname chains": _cname_chains,
    "resolve_address and resolve_name": _resolve_address_and_resolve_name,
    "search list": _search_list,
    "meta queries": _meta_queries,
    "query name case": _query_name_case,
    "default local zones": _default_local_zones,
}


@pytest.mark.parametrize("check", CALLS.values(), ids=list(CALLS))
def test_async_calls(same_async, check):
    check(same_async)


@pytest.mark.parametrize("check", CALLS.values(), ids=list(CALLS))
def test_sync_calls(same_sync, check):
    check(same_sync)


# ---- the table of COMPATIBILITY.md -----------------------------------------------------------

def _table_rows() -> list[tuple[str, str, str]]:
    """(call, dnspython's cell, corenet's cell) of the resolver table in COMPATIBILITY.md."""
    import pathlib
    text = (pathlib.Path(__file__).parents[2] / "COMPATIBILITY.md").read_text()
    section = text.split("## The resolver library next to dnspython", 1)[1].split("\n## ")[0]
    rows = []
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].endswith("`"):
            rows.append((cells[0][1:-1], cells[1], cells[2]))
    return rows


ROWS = _table_rows()


def _kind_name(exc) -> str:
    return next((k.__name__ for k in KINDS if isinstance(exc, k)), type(exc).__name__)


def _result_name(out) -> str:
    for cls in (dns.resolver.Answer, dns.resolver.HostAnswers, dns.name.Name):
        if isinstance(out, cls):
            return cls.__name__
    return type(out).__name__


def _free_udp_port() -> int:
    """A UDP port nothing holds now (dnspython binds its source_port on every address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("0.0.0.0", 0))
        return s.getsockname()[1]


def test_the_table_covers_the_calls_of_the_brief():
    calls = " ".join(c for c, _, _ in ROWS)
    for needle in ('"A")', '"AAAA")', '"MX")', '"ANY")', "nope.", "v4only.", "resolve_address(",
                   "canonical_name(", "resolve_name(", "zone_for_name(", "resolve_at(",
                   '"search"', '@" + PORT', '#" + PORT', "int(PORT))", "lifetime=", "alllame",
                   ".nameserver", ".port", "source=", "source_port=FREE_PORT"):
        assert needle in calls, needle


def _table_names(r, module, lab) -> dict:
    from dns.nameserver import Do53Nameserver

    return {"r": r, "PORT": str(lab.port), "FREE_PORT": _free_udp_port(),
            "Do53Nameserver": Do53Nameserver, "zone_for_name": module.zone_for_name,
            "resolve_at": module.resolve_at}


def _split(call):
    """(the call, the attribute read of its result, or None)."""
    if ".nameserver" in call or ".port" in call:
        inner, attr = call.rsplit(".", 1)
        return inner, attr
    return call, None


@pytest.mark.parametrize("call,theirs,mine", ROWS, ids=[c for c, _, _ in ROWS])
def test_the_compatibility_table_says_what_both_do(run, both, lab, call, theirs, mine):
    import resolver.functions

    observed = []
    inner, attr = _split(call)
    for r, module in zip(both, (dns.asyncresolver, resolver.functions)):
        names = _table_names(r, module, lab)

        async def call_it(names=names):
            try:
                out = eval(inner, {}, names)            # the table's own text, run
                if hasattr(out, "__await__"):
                    out = await out
                return _result_name(getattr(out, attr) if attr else out)
            except Exception as exc:
                return _kind_name(exc)

        observed.append(run(call_it()))
    assert observed == [theirs.split()[0], mine.split()[0]], (call, observed)
    if attr == "nameserver":
        stub, ours = both
        # dnspython names the server it asked; corenet the authority that answered
        assert run(stub.resolve("www.example.com")).nameserver == "127.0.0.1"
        assert run(ours.resolve("www.example.com")).nameserver in ("127.0.0.10", "127.0.0.11")


@pytest.mark.parametrize("call,theirs,mine", ROWS, ids=[c for c, _, _ in ROWS])
def test_the_compatibility_table_holds_for_the_sync_resolvers(both_sync, lab, call, theirs,
                                                               mine):
    observed = []
    inner, attr = _split(call)
    for r, module in zip(both_sync, (dns.resolver, sync)):
        try:
            out = eval(inner, {}, _table_names(r, module, lab))
            observed.append(_result_name(getattr(out, attr) if attr else out))
        except Exception as exc:
            observed.append(_kind_name(exc))
    assert observed == [theirs.split()[0], mine.split()[0]], (call, observed)


def test_an_answer_asked_again_later_has_the_ttls_left_as_dnspython_sees_them(both_sync):
    """dnspython (no cache) asks again and gets a server's answer from its cache, TTLs
    counted down; an answer from corenet's cache says the same, and the Answer given
    earlier is not changed under its holder."""
    theirs, ours = both_sync
    name = "www.example.com"
    drops = []
    for r in (theirs, ours):
        first = r.resolve(name, "A")
        ttl = first.rrset.ttl
        time.sleep(2.2)
        again = r.resolve(name, "A")
        assert again is not first and first.rrset.ttl == ttl
        drops.append(ttl - again.rrset.ttl)
        assert again.expiration - time.time() <= again.rrset.ttl + 1
    assert 2 <= drops[1] <= 3 and abs(drops[0] - drops[1]) <= 1, drops


def _cache_use(r, cache) -> list:
    """What ``r`` does with dnspython's ``cache`` assigned: answers, NODATA and NXDOMAIN
    asked twice, then the cache's counts, entries, ``get`` and ``flush``."""
    import dns.rdatatype

    r.cache = cache
    out: list = []
    for name, rdtype in (("www.example.com", "A"), ("www.example.com", "A"),
                         ("v4only.example.com", "AAAA"), ("v4only.example.com", "AAAA"),
                         ("nope.example.com", "A"), ("nope.example.com", "A")):
        out.append(_returned(lambda: r.resolve(name, rdtype)))
    out.append(_returned(lambda: r.resolve_address("192.0.2.1")))
    key = (dns.name.from_text("www.example.com"), dns.rdatatype.A, dns.rdataclass.IN)
    nx = (dns.name.from_text("nope.example.com"), dns.rdatatype.ANY, dns.rdataclass.IN)
    out.append((cache.hits(), cache.misses(), len(cache.data), cache.get(nx) is not None,
                sorted(rd.to_text() for rd in cache.get(key))))
    cache.flush(key)
    out.append(cache.get(key))
    r.resolve("www.example.com", "A")
    out.append((cache.hits(), cache.misses(), len(cache.data)))
    r.cache = None
    return out


@pytest.mark.parametrize("make", [dns.resolver.Cache, lambda: dns.resolver.LRUCache(10)],
                         ids=["Cache", "LRUCache"])
def test_an_assigned_dnspython_cache_is_read_and_filled_as_by_dnspython(both_sync, make):
    """``r.cache = dns.resolver.Cache()`` (or an LRUCache): each call asks it first and
    puts its answers in it, NXDOMAIN under type ANY; its counts, entries, ``get`` and
    ``flush(key)`` are as dnspython's own resolver leaves them."""
    theirs, ours = both_sync
    caches = (make(), make())
    assert _cache_use(ours, caches[1]) == _cache_use(theirs, caches[0])
    assert caches[1].hits() >= 3 and ours.cache is not caches[1]


def test_use_edns_with_do_gives_the_signatures_in_the_response_as_dnspython(signed_lab, run):
    """dnspython asking a validating server with use_edns(0, DO) gets the answer's RRSIG,
    AD and the OPT record in ``answer.response``; so does the library's Answer (the cache's
    DO variant). Without it, neither (and no OPT)."""
    import dns.flags
    import dns.rdatatype
    import resolver

    lab, anchor = signed_lab
    r = resolver.Resolver(lab.root_hints, port=lab.port, trust_anchor=anchor,
                          do_not_query_localhost=False)

    def seen(ans):
        m = ans.response
        return (sorted(dns.rdatatype.to_text(s.rdtype) for s in m.answer),
                bool(m.flags & dns.flags.AD), m.edns)

    plain = run(r.resolve("www.example.com.", "A"))
    r.use_edns(0, dns.flags.DO, 1232)
    signed = run(r.resolve("www.example.com.", "A"))
    r.use_edns(0, 0, 1232)
    edns_only = run(r.resolve("www.example.com.", "A"))
    assert seen(signed) == (["A", "RRSIG"], True, 0)
    assert seen(plain)[0] == seen(edns_only)[0] == ["A"]
    assert seen(plain)[2] == -1 and seen(edns_only)[2] == 0
    run(r.close())
