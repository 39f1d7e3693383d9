"""The validator's counts that ``stats`` prints under Unbound's names, over the signed lab:
``rrsets_bogus`` (``num.rrset.bogus``) once per rrset whose signature fails, and not for a
zone's key verdict or an answer from the bogus cache; ``aggressive_nxdomain`` and
``aggressive_noerror`` (``num.query.aggressive.*``) once per answer synthesised from
validated NSEC ranges and wildcards (RFC 8198), by rcode; and how ``stats`` and the metrics
print them."""
from __future__ import annotations

import dns.flags
import dns.message
import dns.rcode


def q(name: str, rdtype: str = "A"):
    return dns.message.make_query(name, rdtype, want_dnssec=True)


def counts(r) -> tuple[int, int, int]:
    s = r.dnssec.stats
    return s.rrsets_bogus, s.aggressive_noerror, s.aggressive_nxdomain


def test_an_altered_rrset_is_counted_once_per_validation(run, validating):
    async def go():
        r = validating()
        assert (await r.resolve_message(q("www.example.com."))).flags & dns.flags.AD
        assert counts(r) == (0, 0, 0)
        assert (await r.resolve_message(q("www.altered.com."))).rcode() == dns.rcode.SERVFAIL
        assert counts(r) == (1, 0, 0)
        for _ in range(3):              # the bogus cache answers: nothing validated again
            assert (await r.resolve_message(q("www.altered.com."))).rcode() == \
                dns.rcode.SERVFAIL
        assert counts(r) == (1, 0, 0)
        # a zone whose keys fail their DS: the zone's verdict, no rrset found bogus
        assert (await r.resolve_message(q("www.badds.com."))).rcode() == dns.rcode.SERVFAIL
        assert counts(r) == (1, 0, 0)
        # past the bogus TTL the answer is fetched and its signature checked again
        r.clock = (lambda base=r.clock: lambda: base() + r.limits.dnssec_bogus_ttl + 1)()
        assert (await r.resolve_message(q("www.altered.com."))).rcode() == dns.rcode.SERVFAIL
        assert counts(r) == (2, 0, 0)
        assert r.dnssec.stats.bogus >= 2

    run(go(), timeout=20)


def test_synthesised_answers_are_counted_by_rcode(run, validating):
    async def go():
        r = validating()
        steps = [(("nope.example.com.", "A"), dns.rcode.NXDOMAIN, (0, 0, 0)),   # fetched
                 (("nopf.example.com.", "A"), dns.rcode.NXDOMAIN, (0, 0, 1)),   # its range
                 (("www.example.com.", "TXT"), dns.rcode.NOERROR, (0, 0, 1)),   # fetched
                 (("www.example.com.", "MX"), dns.rcode.NOERROR, (0, 1, 1)),    # its NSEC
                 (("x.wild.example.com.", "A"), dns.rcode.NOERROR, (0, 1, 1)),  # fetched
                 (("y.wild.example.com.", "A"), dns.rcode.NOERROR, (0, 2, 1))]  # wildcard
        before = counts(r)
        for (name, rdtype), rcode, after in steps:
            upstream = r.stats.upstream_queries
            resp = await r.resolve_message(q(name, rdtype))
            assert resp.rcode() == rcode and resp.flags & dns.flags.AD, (name, resp)
            assert counts(r) == after, (name, rdtype)
            # counted exactly when no authority was asked
            assert (r.stats.upstream_queries == upstream) == (after != before), (name, rdtype)
            before = after
        assert r.dnssec.stats.synthesized == 3
        # a denial made so is not kept as a message: asked again, it is made again (as in
        # Unbound); a wildcard's expansion is kept, and asked again it is a cache hit
        hits = r.stats.cache_hits
        await r.resolve_message(q("nopf.example.com."))
        assert counts(r) == (0, 2, 2) and r.stats.cache_hits == hits
        await r.resolve_message(q("y.wild.example.com."))
        assert counts(r) == (0, 2, 2) and r.stats.cache_hits == hits + 1

    run(go(), timeout=20)


def _stats(dnssec: dict | None) -> dict:
    """A Server.stats() dict with nothing counted but ``dnssec``."""
    from resolver.state import STATS_FIELDS

    out = {"engine": {k: 0 for k in STATS_FIELDS}, "queries": {}, "qtypes": {},
           "latency_buckets": [0.001], "latency_counts": [0, 0], "latency_sum": 0.0,
           "recursion_counts": [0, 0], "recursion_sum": 0.0, "recursion_bounds": [0.0, 0.001],
           "requestlist": {"inserts": 0, "sum": 0, "max": 0, "exceeded": 0},
           "dropped": {}, "refused_acl": 0, "truncated": 0, "inflight": 0, "uptime": 1.0,
           "tcp": {"open": 0, "accepted": 0, "rejected": 0, "idle_closed": 0},
           "cache": {"bytes": 0, "messages": 0, "rrsets": 0, "evictions": 0,
                     "message_bytes": 0, "rrset_bytes": 0, "servers": 0, "key_zones": 0},
           "memory": {"iterator": 0, "validator": 0, "stream_wait": 0,
                      "http_query_buffer": 0, "http_response_buffer": 0}}
    if dnssec is not None:
        out["dnssec"] = dnssec
    return out


def test_stats_and_metrics_print_the_counts_and_zeros_without_them():
    from resolver.daemon import metrics, unbound_stats
    from resolver.daemon.server import dnssec_counts

    figures = {"rrsets_bogus": 3, "aggressive_noerror": 5, "aggressive_nxdomain": 7}
    for given, want in ((figures, (3, 5, 7)), (dnssec_counts(None), (0, 0, 0)),
                        (None, (0, 0, 0))):
        lines = dict(line.split("=", 1)
                     for line in unbound_stats.render(_stats(given), now=0,
                                                          extended=True).splitlines())
        assert (int(lines["num.rrset.bogus"]), int(lines["num.query.aggressive.NOERROR"]),
                int(lines["num.query.aggressive.NXDOMAIN"])) == want
        names = list(lines)                 # in Unbound's order, after num.answer.bogus
        i = names.index("num.answer.bogus")
        assert names[i + 1:i + 4] == ["num.rrset.bogus", "num.query.aggressive.NOERROR",
                                      "num.query.aggressive.NXDOMAIN"]
        text = metrics.render(_stats(given))
        assert f"corenet_resolver_dnssec_rrsets_bogus_total {want[0]}\n" in text
        assert f'corenet_resolver_aggressive_answers_total{{rcode="NOERROR"}} {want[1]}\n' \
            in text
        assert f'corenet_resolver_aggressive_answers_total{{rcode="NXDOMAIN"}} {want[2]}\n' \
            in text
    # two workers' counts add; a stats reset shows what was counted since
    merged = metrics.merge([_stats(figures), _stats(figures)])
    assert merged["dnssec"] == {k: 2 * v for k, v in figures.items()}
    assert metrics.since(merged, _stats(figures))["dnssec"] == figures
