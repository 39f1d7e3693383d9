"""Work per zone is bounded (Unbound's ratelimit, ratelimit-factor, ratelimit-for-domain,
ratelimit-below-domain): queries sent to one zone's servers per second, the excess refused
but one in ``factor``, counted. The clock is a fake one: nothing depends on elapsed time."""
from __future__ import annotations

import asyncio
import socket

import dns.message
import dns.rcode
import pytest

import resolver
from resolver.cache.infra import ZoneRates
from resolver.daemon.config import ConfigError, apply_zone_ratelimits, build
from resolver.limits import DEFAULT, Limits
from resolver.resolution import start
from scenario import FakeClock, W


def test_off_by_default_as_unbound():
    assert DEFAULT.ratelimit == 0
    rates = ZoneRates(DEFAULT.ratelimit, DEFAULT.ratelimit_factor)
    assert not rates.enabled
    assert all(rates.allow(W("example.com."), 5.0) for _ in range(10_000))


def test_past_the_limit_one_in_factor_is_let_through_and_the_next_second_starts_anew():
    rates = ZoneRates(100, 10)
    zone = W("Example.COM.")
    allowed = [rates.allow(zone, 7.2) for _ in range(300)]
    assert allowed[:100] == [True] * 100
    assert sum(allowed[100:]) == 20                  # one in ten of the 200 past it
    assert rates.refused == 180
    assert rates.rate(W("example.com."), 7.9) == 300
    assert rates.allow(zone, 8.0) and rates.rate(zone, 8.0) == 1
    assert rates.allow(W("other.com."), 7.5)         # another zone has its own count
    none = ZoneRates(1, 0)
    assert none.allow(zone, 0.0) and not any(none.allow(zone, 0.0) for _ in range(50))


def test_per_domain_limits_override_the_default_and_the_deepest_domain_above_wins():
    rates = ZoneRates(5, 0, for_domain=[(W("big.example."), 50), (W("free.example."), 0)],
                      below_domain=[(W("example."), 2), (W("deep.example."), 3)])
    def sent(zone):
        return sum(rates.allow(W(zone), 1.0) for _ in range(100))
    assert sent("big.example.") == 50                # its own
    assert sent("free.example.") == 100              # 0: no limit
    assert sent("a.example.") == 2                   # below example.
    assert sent("b.deep.example.") == 3              # the deepest domain above it
    assert sent("example.") == 5                     # not below itself: the default
    assert sent("elsewhere.org.") == 5


def test_config_tables_in_either_form_reach_the_resolver():
    cfg = build(None, {"ratelimit_for_domain": {"big.example": 50},
                       "ratelimit_below_domain": ["example. 2", "deep.example 3"],
                       "limits": {"ratelimit": 7, "ratelimit_factor": 0}})
    assert cfg.ratelimit_for_domain == (("big.example.", 50),)
    assert cfg.ratelimit_below_domain == (("example.", 2), ("deep.example.", 3))
    assert (cfg.limits.ratelimit, cfg.limits.ratelimit_factor) == (7, 0)
    rates = ZoneRates(cfg.limits.ratelimit, cfg.limits.ratelimit_factor)
    apply_zone_ratelimits(cfg, rates)
    assert sum(rates.allow(W("a.example."), 1.0) for _ in range(10)) == 2
    assert sum(rates.allow(W("big.example."), 1.0) for _ in range(100)) == 50
    for bad in (["example.com"], ["example.com x"], {"example.com": -1}):
        with pytest.raises(ConfigError):
            build(None, {"ratelimit_for_domain": bad})


@pytest.fixture
def silent():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def test_the_driver_sends_no_more_than_the_zone_limit_and_counts_the_rest(run, loop, silent):
    r = resolver.Resolver([("a.root-servers.net.", "127.0.0.1")],
                          port=silent.getsockname()[1], do_not_query_localhost=False,
                          limits=Limits(initial_rto=0.02, max_rto=0.05, ratelimit=2,
                                        ratelimit_factor=0, server_down_timeouts=100))
    clock = FakeClock()
    r.clock = clock

    def ask(name):
        fut = loop.create_future()
        q = dns.message.make_query(name, "A")
        start(r, q.to_wire(), lambda d, resp: fut.done() or fut.set_result(resp), loop)
        return fut

    async def go():
        outs = await asyncio.gather(*[ask(f"r{i}.example.") for i in range(6)])
        assert all(dns.message.from_wire(o).rcode() == dns.rcode.SERVFAIL for o in outs)
        assert r.stats.upstream_queries == 2             # the root's two for the second
        assert r.stats.zone_ratelimited >= 4
        assert r.cache.infra.rates.refused == r.stats.zone_ratelimited
        clock.advance(1.0)                               # a new second: two more
        await ask("later.example.")
        assert r.stats.upstream_queries == 4
        assert not r.resolutions and not r.shared_queries
        await r.close()

    run(go())
