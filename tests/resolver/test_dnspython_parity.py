"""The same calls made of dnspython's own dns.asyncresolver.Resolver (a stub asking a corenet
daemon that recurses from the lab) and of corenet's library (recursing from the same lab)
give the same answers and raise the same exception types."""
from __future__ import annotations

import dns.asyncresolver
import dns.name
import dns.resolver
import pytest

from daemon_proc import Daemon

#: the exception types compared, most specific first
KINDS = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer, dns.resolver.NoMetaqueries,
         dns.resolver.LifetimeTimeout, dns.resolver.NoNameservers)


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("parity"), lab).start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


@pytest.fixture
def both(daemon, lab_resolver):
    stub = dns.asyncresolver.Resolver(configure=False)
    stub.nameservers = ["127.0.0.1"]
    stub.port = daemon.port
    stub.lifetime = 8.0
    return stub, lab_resolver()


def _outcome(coro_fn):
    async def go():
        try:
            out = await coro_fn()
        except KINDS as exc:
            kind = next(k for k in KINDS if isinstance(exc, k))
            extra = None
            if isinstance(exc, dns.resolver.NXDOMAIN):
                extra = ([str(n) for n in exc.qnames()], str(exc.canonical_name))
            return (kind.__name__, extra)
        if isinstance(out, dns.name.Name):
            return ("name", str(out))
        if isinstance(out, dns.resolver.HostAnswers):
            return ("host", sorted(out.addresses()))
        rrset = out.rrset
        return ("answer", str(out.qname), str(out.canonical_name),
                None if rrset is None else (str(rrset.name), rrset.rdtype,
                                            sorted(rd.to_text() for rd in rrset)))
    return go()


def _same(run, both, call):
    stub, ours = both
    theirs = run(_outcome(lambda: call(stub)))
    mine = run(_outcome(lambda: call(ours)))
    assert mine == theirs
    return mine


@pytest.mark.parametrize("qname,rdtype", [
    ("www.example.com", "A"), ("www.example.com", "AAAA"), ("example.com", "MX"),
    ("example.com", "TXT"), ("_sip._udp.example.com", "SRV"),
    ("host.wild.example.com", "A"),
])
def test_data(run, both, qname, rdtype):
    assert _same(run, both, lambda r: r.resolve(qname, rdtype))[0] == "answer"


@pytest.mark.parametrize("qname", ["nope.example.com", "nosuch.com", "nosuchtld."])
def test_nxdomain_and_its_qnames(run, both, qname):
    assert _same(run, both, lambda r: r.resolve(qname, "A"))[0] == "NXDOMAIN"


def test_no_answer_and_raise_on_no_answer_false(run, both):
    assert _same(run, both, lambda r: r.resolve("v4only.example.com", "AAAA"))[0] == "NoAnswer"
    assert _same(run, both, lambda r: r.resolve("ent.example.com", "A"))[0] == "NoAnswer"
    got = _same(run, both, lambda r: r.resolve("v4only.example.com", "AAAA",
                                               raise_on_no_answer=False))
    assert got[0] == "answer" and got[3] is None


def test_cname_chains(run, both):
    for name in ("alias.example.com", "xalias.example.com", "chain8-00.example.com",
                 "www.dname.example.com"):
        assert _same(run, both, lambda r: r.resolve(name, "A"))[0] == "answer"
        assert _same(run, both, lambda r: r.canonical_name(name))[0] == "name"
    # a CNAME to nothing: NXDOMAIN, and canonical_name the chain's end all the same
    assert _same(run, both, lambda r: r.resolve("dangling.example.com"))[0] == "NXDOMAIN"
    assert _same(run, both, lambda r: r.canonical_name("dangling.example.com")) == \
        ("name", "nothing.example.net.")


def test_resolve_address_and_resolve_name(run, both):
    assert _same(run, both, lambda r: r.resolve_address("192.0.2.1"))[0] == "NXDOMAIN"
    assert _same(run, both, lambda r: r.resolve_name("www.example.com"))[0] == "host"
    assert _same(run, both, lambda r: r.resolve_name("v4only.example.com"))[0] == "host"


def test_search_list(run, both):
    for r in both:
        r.search = [dns.name.from_text("nowhere.example."), dns.name.from_text("example.com.")]
    assert _same(run, both, lambda r: r.resolve("www", search=True))[1] == "www.example.com."
    assert _same(run, both, lambda r: r.resolve("nope", search=True))[0] == "NXDOMAIN"
    assert _same(run, both, lambda r: r.resolve("www", search=False))[0] == "NXDOMAIN"


def test_meta_queries(run, both):
    assert _same(run, both, lambda r: r.resolve("example.com", "ANY"))[0] == "NoMetaqueries"


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


def _kind(coro_fn):
    """The first word a table cell gives for what the call did."""
    async def go():
        try:
            out = await coro_fn()
        except Exception as exc:
            return next((k.__name__ for k in KINDS if isinstance(exc, k)), type(exc).__name__)
        for cls in (dns.resolver.Answer, dns.resolver.HostAnswers, dns.name.Name):
            if isinstance(out, cls):
                return cls.__name__
        return type(out).__name__
    return go()


def test_the_table_covers_the_calls_of_the_brief():
    calls = " ".join(c for c, _, _ in ROWS)
    for needle in ('"A")', '"AAAA")', '"MX")', '"ANY")', "nope.", "v4only.", "resolve_address(",
                   "canonical_name(", "resolve_name(", "zone_for_name(", "resolve_at(",
                   '"search"', '@" + PORT', '#" + PORT', "int(PORT))", "lifetime=", "alllame",
                   ".nameserver", ".port", "source=", "source_port="):
        assert needle in calls, needle


@pytest.mark.parametrize("call,theirs,mine", ROWS, ids=[c for c, _, _ in ROWS])
def test_the_compatibility_table_says_what_both_do(run, both, lab, call, theirs, mine):
    import dns.asyncresolver
    from dns.nameserver import Do53Nameserver

    import resolver.functions

    stub, ours = both
    observed = []
    for r, module in ((stub, dns.asyncresolver), (ours, resolver.functions)):
        names = {"r": r, "PORT": str(lab.port), "Do53Nameserver": Do53Nameserver,
                 "zone_for_name": module.zone_for_name, "resolve_at": module.resolve_at}

        async def call_it(names=names):
            out = eval(call, {}, names)             # the table's own text, run
            if hasattr(out, "__await__"):
                return await out
            return out

        if ".nameserver" in call or ".port" in call:
            attr = call.rsplit(".", 1)[1]
            inner = call.rsplit(".", 1)[0]

            async def call_it(names=names, inner=inner, attr=attr):
                return getattr(await eval(inner, {}, names), attr)

        observed.append(run(_kind(call_it)))
    assert observed == [theirs.split()[0], mine.split()[0]], (call, observed)
    if ".nameserver" in call:
        # dnspython names the server it asked; corenet the authority that answered
        assert run(stub.resolve("www.example.com")).nameserver == "127.0.0.1"
        assert run(ours.resolve("www.example.com")).nameserver in ("127.0.0.10", "127.0.0.11")
