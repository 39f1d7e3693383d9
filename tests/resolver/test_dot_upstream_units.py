"""Forwarding over TLS without sockets: the pipeline's matching by message ID, the forward
zone's TLS forms, the config keys and the metrics they feed."""
from __future__ import annotations

import pytest

from resolver.daemon.config import ConfigError, build, make_zones
from resolver.daemon.metrics import render
from resolver.upstream.dot import DoTUpstreams, Full, Pipeline
from resolver.daemon.zone_tables import forward_zone
from resolver.zones import ForwardZone, Upstream, Zones


def reply(wid: int, body: bytes = b"rest") -> bytes:
    return wid.to_bytes(2, "big") + body


def test_pipeline_matches_answers_in_any_order_and_forgets_each_once():
    p = Pipeline(10)
    queries = [object() for _ in range(5)]
    ids = [p.add(q, 100 + i) for i, q in enumerate(queries)]
    assert ids == [100, 101, 102, 103, 104]            # free IDs are kept as they are
    for i in (4, 0, 3, 1, 2):                          # answers in another order
        assert p.match(reply(ids[i])) is queries[i]
    assert len(p) == 0
    assert p.match(reply(ids[0])) is None              # a second answer matches nothing
    assert p.match(b"\x00") is None                    # too short to carry an ID


def test_pipeline_sends_a_colliding_id_as_another_and_bounds_the_outstanding():
    p = Pipeline(3)
    a, b, c = object(), object(), object()
    assert p.add(a, 7) == 7
    wid = p.add(b, 7)                                  # the same ID is outstanding
    assert wid != 7 and 0 <= wid < 65536
    p.add(c, 9)
    with pytest.raises(Full):
        p.add(object(), 11)
    assert p.match(reply(wid)) is b and p.match(reply(7)) is a
    p.drop(9, object())                                # not that query: kept
    assert len(p) == 1
    p.drop(9, c)
    assert len(p) == 0
    p.add(a, 1)
    assert p.take_all() == [a] and len(p) == 0


def test_forward_zone_tls_form_needs_an_authentication_name():
    z = forward_zone({"name": "corp.", "forward-tls-upstream": True,
                      "forward-addr": ["192.0.2.1@8853#dns.corp.example", "192.0.2.2#dns.test",
                                       "2001:db8::1#DNS.Test."]})
    assert z.transport == "tls"
    assert [(s.addr, s.port, s.auth) for s in z.servers] == [
        ("192.0.2.1", 8853, "dns.corp.example"), ("192.0.2.2", 853, "dns.test"),
        ("2001:db8::1", 853, "dns.test")]
    # the key names the server to the driver: with its name, unique across zones
    assert [s.key for s in z.servers] == ["192.0.2.1@8853#dns.corp.example",
                                          "192.0.2.2@853#dns.test", "2001:db8::1@853#dns.test"]
    assert str(z.servers[0]) == "192.0.2.1@8853#dns.corp.example"
    # forward-tls-upstream wins over forward-tcp-upstream (TLS runs over TCP anyway)
    assert forward_zone({"name": "a.", "forward-tls-upstream": True,
                         "forward-tcp-upstream": True,
                         "forward-addr": "192.0.2.1#x.test"}).transport == "tls"
    for bad, words in [
            ({"forward-addr": ["192.0.2.1"]}, "authentication name"),
            ({"forward-addr": ["192.0.2.1@853"]}, "authentication name"),
            ({"forward-addr": ["192.0.2.1@853#bad..name"]}, "bad..name"),
            ({"forward-addr": ["192.0.2.1@70000#x.test"]}, "out of range"),
            ({"forward-addr": ["192.0.2.1#a.test", "192.0.2.1@853#b.test"]}, "twice"),
            ({"forward-addr": ["192.0.2.1#a.test"], "forward-tls-upstream": "yes"},
             "true or false")]:
        with pytest.raises(ValueError, match=words.replace(".", r"\.")):
            forward_zone({"name": "a.", "forward-tls-upstream": True, **bad})
    # without TLS a name after # is refused, naming the reason
    with pytest.raises(ValueError, match="TLS transport"):
        forward_zone({"name": "a.", "forward-addr": ["192.0.2.1@853#dns.test"]})
    # built in code: a TLS zone's servers need their names too
    with pytest.raises(ValueError, match="authentication name"):
        Zones(forward=[ForwardZone("a.", (Upstream("192.0.2.1"),), transport="tls")])
    with pytest.raises(ValueError, match="twice"):       # one name per address and port
        Zones(forward=[ForwardZone("a.", (Upstream("192.0.2.1", 853, "a.test"),
                                          Upstream("192.0.2.1", 853, "b.test")),
                                   transport="tls")])


def test_tls_cert_bundle_setting_is_checked_and_reaches_the_tls_zones(tmp_path):
    from tls_certs import CA

    ca = CA(tmp_path / "pki")
    conf = tmp_path / "c.toml"
    conf.write_text(f'tls-cert-bundle = "{ca.pem}"\ntls-system-cert = true\n'
                    '[[forward-zone]]\nname = "tls.test."\nforward-tls-upstream = true\n'
                    'forward-addr = ["127.0.0.1@8853#dns.test"]\n'
                    '[[forward-zone]]\nname = "udp.test."\nforward-addr = ["127.0.0.1"]\n')
    cfg = build(str(conf))
    assert cfg.tls_cert_bundle == str(ca.pem)
    zones = make_zones(cfg)
    tls = zones.match(b"\x01x\x03tls\x04test\x00")
    assert tls.zone.tls_cert_bundle == str(ca.pem) and tls.zone.tls_system_cert
    assert tls.tls == {"127.0.0.1@8853#dns.test": ("dns.test", str(ca.pem), True)}
    assert zones.tls == tls.tls                 # every TLS zone's servers, for the driver
    assert tls.ports == {"127.0.0.1@8853#dns.test": ("127.0.0.1", 8853)}
    assert zones.match(b"\x01x\x03udp\x04test\x00").tls is None
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    for value, words in [(str(tmp_path / "missing.pem"), "tls-cert-bundle"),
                         (str(garbage), "cannot load")]:
        with pytest.raises(ConfigError, match=words):
            build(None, {"tls_cert_bundle": value})


def test_a_ca_file_that_does_not_load_fails_the_query_not_the_resolver(tmp_path):
    pool = DoTUpstreams()
    from resolver.upstream.errors import UpstreamFailure
    with pytest.raises(UpstreamFailure, match="tls-cert-bundle"):
        pool.context(str(tmp_path / "gone.pem"))
    ctx = pool.context(None)                        # the system's store
    import ssl
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert pool.context(None) is ctx                # made once


def test_metrics_show_tls_upstream_failures_by_cause():
    from resolver.daemon.metrics import merge
    pool = DoTUpstreams()
    pool.count("connections")
    pool.count("failed_verify")
    pool.count("failed_verify")
    pool.count("failed_connect")
    base = {"queries": {}, "qtypes": {}, "engine": {k: 0 for k in (
        "cache_hits", "cache_misses", "upstream_queries", "upstream_tcp", "upstream_timeouts",
        "upstream_failures", "upstream_unreachable", "dropped_malformed", "dropped_mismatched",
        "servfail", "stale_answers", "prefetches", "primings", "priming_failures")},
        "cache": {"bytes": 0, "messages": 0, "rrsets": 0, "evictions": 0,
                  "message_bytes": 0, "rrset_bytes": 0, "servers": 0, "key_zones": 0},
        "latency_buckets": [0.001], "latency_counts": [0, 0], "latency_sum": 0.0,
        "recursion_counts": [0, 0], "recursion_sum": 0.0, "recursion_bounds": [0.0, 0.001],
        "requestlist": {"inserts": 0, "sum": 0, "max": 0, "exceeded": 0},
        "dropped": {}, "refused_acl": 0, "truncated": 0,
        "tcp": {"open": 0, "accepted": 0, "rejected": 0, "idle_closed": 0},
        "inflight": 0, "uptime": 1.0}
    stats = merge([{**base, "tls_upstream": pool.stats()}, {**base,
                                                            "tls_upstream": pool.stats()}])
    text = render(stats)
    assert 'corenet_resolver_tls_upstream_failures_total{cause="verify"} 4' in text
    assert 'corenet_resolver_tls_upstream_failures_total{cause="connect"} 2' in text
    assert "corenet_resolver_tls_upstream_connections_total 2" in text
