"""Every limit of resolver.limits pushed through sockets by a fake authority in the lab's
``fault.`` TLD, on every loop kind: each exhausted limit is a SERVFAIL, with the work done
(queries the fakes saw) bounded by the limit, never an endless loop."""
from __future__ import annotations

import time

import dns.message
import dns.name
import dns.rcode
import dns.resolver
import pytest

from dnslab import zones as Z
from dnslab.authority import referral, response
from dnslab.check import query
from dnslab.scenarios import fault_authority

BOTH = (Z.FAKE_TLD_1, Z.FAKE_TLD_2)
SERVFAIL_ERRORS = (dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout)


def limits(**kw):
    import resolver

    return resolver.Limits().replace(**kw)


def chain_handler(seen):
    """c<n>-<i>.fault. is a CNAME to c<n>-<i+1>.fault. until i == n, which has an address:
    one link per reply, so the resolver chases every link itself."""
    q = seen.message.question[0]
    label = q.name.labels[0].decode().lower()
    if q.name.parent() != dns.name.from_text("fault.") or not label.startswith("c"):
        return fault_authority()(seen.message)
    n, i = (int(x) for x in label[1:].split("-"))
    if i == n:
        return response(seen.message, answer=[f"{q.name} 300 IN A 192.0.2.{n}"])
    return response(seen.message, answer=[f"{q.name} 300 IN CNAME c{n}-{i + 1}.fault."])


@pytest.mark.parametrize("bound", [None, 3])
def test_cname_chain_limit(run, fakes, lab_resolver, bound):
    """A chain of exactly max_cname_chain CNAMEs is followed; one more is a SERVFAIL."""
    for a in BOTH:
        fakes(a, chain_handler)

    async def go():
        r = lab_resolver() if bound is None else lab_resolver(limits=limits(max_cname_chain=bound))
        n = r.limits.max_cname_chain
        ans = await r.resolve(f"c{n}-0.fault.", "A")
        assert [x.to_text() for x in ans.rrset] == [f"192.0.2.{n}"]
        assert ans.canonical_name.to_text() == f"c{n}-{n}.fault."
        resp = await r.resolve_message(query(f"c{n + 1}-0.fault."))
        assert resp.rcode() == dns.rcode.SERVFAIL
        return r

    r = run(go())
    if bound is not None:
        assert r.limits.max_cname_chain == bound


def deep_handler():
    """Every query under deep.fault. gets a referral one label deeper than the last one,
    served again by the fault slots: an endless staircase of zone cuts."""
    state = {"depth": 0}
    base = dns.name.from_text("deep.fault.")
    auth = fault_authority()

    def handler(seen):
        name = seen.message.question[0].name
        if not name.is_subdomain(base):
            return auth(seen.message)
        k = min(state["depth"], len(name) - len(base))
        state["depth"] += 1
        zone = name.split(len(base) + k)[1]
        return referral(seen.message, zone.to_text(),
                        [(f"ns.{zone}", Z.FAKE_TLD_1), (f"ns2.{zone}", Z.FAKE_TLD_2)])

    return handler, state


@pytest.mark.parametrize("bound", [None, 5])
def test_referral_depth_limit(run, fakes, lab_resolver, bound):
    handler, state = deep_handler()
    for a in BOTH:
        fakes(a, handler)
    qname = ".".join(f"x{i}" for i in range(60)) + ".deep.fault."

    async def go():
        r = lab_resolver() if bound is None else lab_resolver(limits=limits(max_referrals=bound))
        resp = await r.resolve_message(query(qname))
        assert resp.rcode() == dns.rcode.SERVFAIL
        return r

    r = run(go(), timeout=15)
    assert 1 <= state["depth"] <= min(r.limits.max_referrals, r.limits.max_upstream_queries) + 2


def wide_handler(n_names: int):
    """wide.fault. is delegated to n glueless NS names nsname<i>.fault., each of which is
    NXDOMAIN: the NRDelegation pattern."""
    auth = fault_authority()

    def handler(seen):
        name = seen.message.question[0].name
        if name.is_subdomain(dns.name.from_text("wide.fault.")):
            return referral(seen.message, "wide.fault.",
                            [(f"nsname{i}.fault.", None) for i in range(n_names)])
        return auth(seen.message)

    return handler


def test_ns_names_resolved_per_delegation_are_bounded(run, fakes, lab_resolver):
    servers = [fakes(a, wide_handler(20)) for a in BOTH]

    async def go():
        r = lab_resolver()
        resp = await r.resolve_message(query("www.wide.fault."))
        assert resp.rcode() == dns.rcode.SERVFAIL
        return r

    r = run(go(), timeout=15)
    asked = {q.lower() for s in servers for q in s.qnames if q.lower().startswith("nsname")}
    assert 1 <= len(asked) <= r.limits.max_ns_names_per_delegation, sorted(asked)


def test_upstream_queries_per_client_query_are_bounded(run, fakes, lab_resolver):
    servers = [fakes(a, wide_handler(40)) for a in BOTH]
    lim = limits(max_upstream_queries=8, max_ns_names_per_delegation=40)

    async def go():
        r = lab_resolver(limits=lim)
        resp = await r.resolve_message(query("www.wide.fault."))
        assert resp.rcode() == dns.rcode.SERVFAIL
        return r

    r = run(go(), timeout=15)
    seen = sum(s.count() for s in servers)
    assert 1 <= seen <= lim.max_upstream_queries
    assert r.stats.upstream_queries <= lim.max_upstream_queries


def test_glueless_dependency_chain_is_bounded(run, fakes, lab_resolver):
    """d<k>.fault. is served by ns.d<k+1>.fault., without glue, for every k: each NS name
    needs a sub-query that meets the next glueless delegation."""
    auth = fault_authority()

    def handler(seen):
        name = seen.message.question[0].name
        rel = name.relativize(dns.name.from_text("fault.")).labels
        if name.is_subdomain(dns.name.from_text("fault.")) and rel and rel[-1].startswith(b"d"):
            k = int(rel[-1][1:])
            return referral(seen.message, f"d{k}.fault.", [(f"ns.d{k + 1}.fault.", None)])
        return auth(seen.message)

    servers = [fakes(a, handler) for a in BOTH]

    async def go():
        r = lab_resolver()
        resp = await r.resolve_message(query("www.d0.fault."))
        assert resp.rcode() == dns.rcode.SERVFAIL
        return r

    r = run(go(), timeout=15)
    deepest = max(int(q.lower().split(".")[-3][1:]) for s in servers for q in s.qnames
                  if q.lower().split(".")[-3:-2] and q.lower().split(".")[-3].startswith("d"))
    assert deepest <= r.limits.max_dependency_depth + 1
    assert sum(s.count() for s in servers) <= r.limits.max_upstream_queries


def test_total_time_per_client_query(run, fakes, lab_resolver):
    """Every server silent: the client gets SERVFAIL once max_query_time runs out (and
    resolve raises LifetimeTimeout or NoNameservers), not after a minute."""
    servers = [fakes(a, lambda seen: None) for a in BOTH]
    lim = limits(max_query_time=1.0)

    async def go():
        r = lab_resolver(limits=lim)
        t0 = time.monotonic()
        resp = await r.resolve_message(query("www.fault."))
        elapsed = time.monotonic() - t0
        assert resp.rcode() == dns.rcode.SERVFAIL
        assert elapsed < lim.max_query_time + 1.5  # loose: a hang is what this catches
        with pytest.raises(SERVFAIL_ERRORS):
            await r.resolve("n005.fault.", "A")
        return r

    r = run(go(), timeout=10)
    assert r.stats.upstream_timeouts >= 1
    assert sum(s.count() for s in servers) <= lim.max_upstream_queries


def test_default_limits_are_those_documented():
    """The bounds the issue names, in one place, with their defaults."""
    import resolver

    d = resolver.Limits()
    assert d.max_cname_chain == 11
    assert 1 <= d.max_query_time <= 10  # "a few seconds"
    assert d.max_referrals > 0 and d.max_ns_names_per_delegation > 0
    assert d.max_upstream_queries > 0
    with pytest.raises(TypeError):
        d.replace(no_such_limit=1)
