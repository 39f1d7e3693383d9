"""serve-stale, prefetch and the query log change at reload (``Server.apply``), in the test's
own process on every loop kind; the pidfile still needs a restart."""
from __future__ import annotations

import logging

import dns.asyncquery
import dns.message

from ports import free_port
from resolver.daemon.config import build
from resolver.daemon.server import Server
from resolver.limits import DEFAULT


def _cfg(lab, listen, **kw):
    return build(None, {"listen": [listen], "root_hints": None, "upstream_port": lab.port,
                        "do_not_query_localhost": False, **kw})


async def _serve(lab, **kw) -> Server:
    import resolver

    cfg = _cfg(lab, f"127.0.0.1:{free_port()}", **kw)
    r = resolver.Resolver(lab.root_hints, port=lab.port, cache_size=cfg.cache_size,
                          do_not_query_localhost=False)
    s = Server(cfg, resolver=r)
    await s.start()
    return s


def _door_fraction(s: Server) -> float:
    """The prefetch point the front door (every listener's hit path) uses."""
    return s.front.prefetch_fraction


def test_serve_stale_and_prefetch_change_at_reload(run, lab, loop_kind):
    async def go():
        s = await _serve(lab)
        host, port = s.addresses[0]
        listen = f"{host}:{port}"
        r = s.resolver
        try:
            assert r.limits.stale_window == DEFAULT.stale_window > 0
            assert r.limits.prefetch_fraction == DEFAULT.prefetch_fraction > 0
            assert s.fast_udp == (loop_kind != "asyncio")
            assert _door_fraction(s) == DEFAULT.prefetch_fraction
            off = _cfg(lab, listen, serve_stale=False, prefetch=False, prefetch_min_hits=5,
                       serve_stale_ttl=7)
            assert s.apply(off) == []
            assert (r.limits.stale_window, r.limits.prefetch_fraction,
                    r.limits.prefetch_min_hits, r.limits.stale_answer_ttl) == (0, 0.0, 5, 7)
            assert r.lv.stale_window == 0 and r.lv.prefetch_fraction == 0.0
            assert r.cache.messages.limits.stale_window == 0
            assert r.cache.limits.stale_window == 0
            assert _door_fraction(s) == 0.0
            # a resolution still works and is cached under the new limits
            q = dns.message.make_query("www.example.com.", "A")
            assert (await dns.asyncquery.udp(q, host, port=port, timeout=5)).answer
            on = _cfg(lab, listen, serve_stale_window=600)
            assert s.apply(on) == []
            assert r.limits.stale_window == 600
            assert r.limits.prefetch_fraction == DEFAULT.prefetch_fraction
            assert r.cache.messages.limits.stale_window == 600
            assert _door_fraction(s) == DEFAULT.prefetch_fraction
            # the pidfile is written before privileges drop: a restart
            assert s.apply(_cfg(lab, listen, pidfile="/tmp/none.pid")) == ["pidfile"]
        finally:
            await s.stop(1.0)

    run(go(), timeout=30)


def test_query_log_changes_at_reload(run, lab, loop_kind, caplog):
    """On and off at once on every loop kind; on or off, UDP is served by the same listener
    (the C one on corenet's loop), cache hits logged as misses are."""
    async def go():
        s = await _serve(lab, log_queries=True)
        host, port = s.addresses[0]
        listen = f"{host}:{port}"
        try:
            assert s.query_log is not None
            assert s.fast_udp == (loop_kind != "asyncio")       # logging takes no other path
            assert s.apply(_cfg(lab, listen, log_queries=False)) == []
            assert s.query_log is None
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="resolver.queries"):
                q = dns.message.make_query("www.example.com.", "A")
                assert (await dns.asyncquery.udp(q, host, port=port, timeout=5)).answer
                assert not [x for x in caplog.records if x.name == "resolver.queries"]
                assert s.apply(_cfg(lab, listen, log_queries=True)) == []
                assert (await dns.asyncquery.udp(q, host, port=port, timeout=5)).answer
                assert (await dns.asyncquery.tcp(q, host, port=port, timeout=5)).answer
                lines = [x.getMessage() for x in caplog.records if x.name == "resolver.queries"]
                assert len(lines) == 2 and all("www.example.com" in x for x in lines)
        finally:
            await s.stop(1.0)
        s = await _serve(lab)
        try:
            host, port = s.addresses[0]
            assert s.apply(_cfg(lab, f"{host}:{port}", log_queries=True)) == []
            assert s.query_log is not None
        finally:
            await s.stop(1.0)

    run(go(), timeout=30)


def test_engine_settings_are_set_at_start_and_changed_at_reload(lab):
    """Each setting that sets an attribute of the engine (``Setting.engine``) is set by
    ``make_resolver`` and changed by a reload unless it needs a restart; infra-host-ttl is a
    limit like the others, and reaches the per-server marks at reload."""
    from resolver.daemon.config import ENGINE_SETTINGS
    from resolver.daemon.server import make_resolver
    from resolver.daemon.settings import BY_NAME

    assert set(ENGINE_SETTINGS) >= {"do_ip6", "do_ip4", "do_not_query_localhost",
                                    "qname_minimisation", "deny_any", "outgoing_interface",
                                    "val_log_level"}
    # a value away from the default for each: a switch flipped, else one from this table,
    # with the attribute's value for it and for the default where the two differ
    other = {"outgoing_interface": (("127.0.0.9", "::1"), ("127.0.0.9", "::1"), None),
             "val_log_level": (2, 2, 0),
             "caps_exempt": (("Example.COM.",), ("Example.COM.",), ())}
    flipped = {name: other[name][0] if name in other else not BY_NAME[name].default
               for name in ENGINE_SETTINGS}
    flipped_attr = {name: other[name][1] if name in other else flipped[name]
                    for name in ENGINE_SETTINGS}
    default_attr = {name: other[name][2] if name in other else BY_NAME[name].default
                    for name in ENGINE_SETTINGS}
    cfg = _cfg(lab, f"127.0.0.1:{free_port()}", infra_host_ttl=30.0, **flipped)
    r = make_resolver(cfg)
    for name, attr in ENGINE_SETTINGS.items():
        assert getattr(r, attr) == flipped_attr[name], name
    assert r.limits.infra_host_ttl == 30.0 and r.cache.infra.host_ttl == 30.0
    s = Server(cfg, resolver=r)
    back = _cfg(lab, cfg.listen[0][0] + f":{cfg.listen[0][1]}", infra_host_ttl=60.0,
                **{name: BY_NAME[name].default for name in ENGINE_SETTINGS})
    need_restart = s.apply(back)
    for name, attr in ENGINE_SETTINGS.items():
        restart = BY_NAME[name].restart
        assert (name in need_restart) == restart, name
        assert getattr(r, attr) == (flipped_attr if restart else default_attr)[name], name
    assert r.cache.infra.host_ttl == 60.0


def test_a_reload_keeps_the_negative_trust_anchors_insecure_lan_zones_adds(lab):
    """The negative trust anchors are ``domain-insecure`` and, with ``insecure-lan-zones``,
    the AS112 zones: the same set at start and after a reload (``insecure_domains``, applied
    one way)."""
    import dns.name

    from resolver.daemon.server import make_resolver

    def insecure(r, name):
        return r.dnssec.below_insecure_point(dns.name.from_text(name).to_wire())

    cfg = _cfg(lab, f"127.0.0.1:{free_port()}", insecure_lan_zones=True,
               domain_insecure=("corp.example.",))
    r = make_resolver(cfg)
    s = Server(cfg, resolver=r)
    for _ in range(2):
        assert insecure(r, "1.0.0.10.in-addr.arpa.") and insecure(r, "www.corp.example.")
        assert not insecure(r, "1.1.1.1.in-addr.arpa.")
        assert s.apply(cfg) == []
    s.apply(_cfg(lab, f"{cfg.listen[0][0]}:{cfg.listen[0][1]}"))
    assert not insecure(r, "1.0.0.10.in-addr.arpa.") and not insecure(r, "www.corp.example.")
