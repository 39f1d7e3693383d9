"""A dead authority is learnt, not hammered: consecutive timeouts back its timeout off and mark
it down (resolver.cache.infra); while it is down only a probe now and then goes to it, the
questions that need it fail fast with SERVFAIL and extended error 22, and the mark expires with
``infra_host_ttl``. The clock is a fake one throughout: no assertion depends on elapsed time."""
from __future__ import annotations

import asyncio
import socket

import dns.edns
import dns.message
import dns.rcode
import pytest

import resolver
from resolver import iterator as itr
from resolver.cache import Cache, infra as I
from resolver.limits import Limits
from resolver.resolution import start
from resolver.hints import parse_root_hints
from scenario import FakeClock, RunningClock, W, drive, root_hints, small_internet

DEAD = "10.0.3.1"


def _down(infra, addr: str, now: float, lim: Limits) -> None:
    """Marks ``addr`` down at ``now`` as a dead server gets marked: a run of timeouts one
    after the other, each having waited ``max_rto``, the last at ``now``."""
    n = lim.server_down_timeouts
    for k in range(n):
        infra.record_timeout(addr, now - (n - 1 - k) * lim.max_rto, lim.max_rto)


def test_timeouts_back_off_to_the_maximum_then_mark_the_server_down():
    lim = Limits(exploration=0.0)
    infra = I.InfraCache(lim)
    rtos, now = [], 100.0
    for _ in range(lim.server_down_timeouts - 1):
        waited = infra.rto(DEAD)             # each try waits the timeout it was given
        now += waited
        infra.record_timeout(DEAD, now, waited)
        rtos.append(infra.rto(DEAD))
        assert not infra.is_down(DEAD, now)
        assert infra.choose([DEAD], now) == DEAD         # not down yet: still asked
    assert rtos == sorted(rtos) and rtos[0] == min(2 * lim.initial_rto, lim.max_rto)
    now += infra.rto(DEAD)
    infra.record_timeout(DEAD, now, infra.rto(DEAD))
    assert infra.rto(DEAD) == lim.max_rto
    assert infra.is_down(DEAD, now)
    assert infra.info(DEAD).down_until == now + lim.infra_host_ttl


@pytest.mark.parametrize("answered", [False, True], ids=["never answered", "answered before"])
def test_queries_in_flight_together_that_time_out_together_are_one_moment_s_silence(
        answered):
    """A burst of queries to a server, all lost (or a stall of a moment on either side):
    however many time out together, the server has been silent for one timeout, not for
    as long as a query may wait, and is not marked down. The retries' timeouts, ``max_rto``
    after the first of them was sent, do mark it."""
    lim = Limits(exploration=0.0)
    infra = I.InfraCache(lim)
    now = 100.0
    if answered:                              # long before: its answer says nothing now
        infra.record_rtt(DEAD, 0.02, now - 60.0)
    waited = infra.rto(DEAD)                  # the burst, sent together at 100.0
    now += waited
    for _ in range(4 * lim.server_down_timeouts):
        infra.record_timeout(DEAD, now, waited)
    assert not infra.is_down(DEAD, now)
    assert infra.choose([DEAD], now) == DEAD
    assert infra.rto(DEAD) == lim.max_rto     # backed off all the same
    retry = infra.rto(DEAD)
    infra.record_timeout(DEAD, now + retry, retry)
    assert infra.is_down(DEAD, now + retry)


def test_after_its_timeouts_a_server_is_asked_one_query_at_a_time_the_others_wait():
    """A run of timeouts, not yet a mark: while one query is in flight finding out whether
    the server is down, no other is sent to it; a question with no other server to ask
    waits for it (``waiting_room``, while there is room), one with another asks that one;
    an answer, or the mark, ends the wait."""
    lim = Limits(exploration=0.0)
    infra = I.InfraCache(lim)
    now = 100.0
    for _ in range(lim.server_down_timeouts):
        infra.record_timeout(DEAD, now, lim.initial_rto)
    s = infra.info(DEAD)
    assert not infra.is_down(DEAD, now)
    assert infra.choose([DEAD], now) == DEAD           # nothing in flight: this one asks
    s.inflight = 1
    assert infra.choose([DEAD], now) is None
    assert infra.waiting_room([DEAD], now) is s
    assert infra.choose([DEAD, "10.0.3.2"], now) == "10.0.3.2"
    s.waiters = [object()] * lim.max_queries_per_server
    assert infra.waiting_room([DEAD], now) is None     # no room left: the question fails
    s.waiters = None
    infra.record_rtt(DEAD, 0.02, now + 0.1)            # it answers
    assert infra.choose([DEAD], now + 0.1) == DEAD
    assert infra.waiting_room([DEAD], now + 0.1) is None
    _down(infra, DEAD, now + 10.0, lim)                # it dies: nobody waits for it
    assert infra.waiting_room([DEAD], now + 10.0) is None


def test_a_down_server_gets_one_probe_per_interval_and_an_answer_clears_the_mark():
    lim = Limits(exploration=0.0, server_probe_interval=5.0)
    infra = I.InfraCache(lim)
    _down(infra, DEAD, 100.0, lim)
    assert infra.choose([DEAD], 100.0) is None
    assert infra.pick([DEAD], 104.9, 4.0)[0] is None
    assert infra.choose([DEAD], 105.0) == DEAD            # the probe
    assert infra.probes == 1
    assert infra.choose([DEAD], 105.0) is None            # one probe, not one per question
    assert infra.choose([DEAD], 109.9) is None
    infra.record_timeout(DEAD, 106.5)                     # the probe is lost: still down
    assert infra.is_down(DEAD, 107.0)
    assert infra.choose([DEAD], 110.0) == DEAD            # the next probe
    infra.record_rtt(DEAD, 0.02)                          # ... is answered
    assert not infra.is_down(DEAD, 110.1)
    assert [infra.choose([DEAD], 110.1) for _ in range(3)] == [DEAD] * 3


def test_the_mark_expires_with_the_host_ttl_and_the_server_starts_afresh():
    lim = Limits(exploration=0.0, infra_host_ttl=900.0)
    infra = I.InfraCache(lim)
    _down(infra, DEAD, 100.0, lim)
    for t in (100.0, 500.0, 999.9):
        assert infra.is_down(DEAD, t)
    assert not infra.is_down(DEAD, 1000.0)
    s = infra.info(DEAD)
    assert (s.timeouts, s.rto, s.down_until) == (0, lim.initial_rto, 0.0)
    # One timeout after the mark expired does not put it straight back down.
    infra.record_timeout(DEAD, 1001.0)
    assert not infra.is_down(DEAD, 1001.0)


def test_servers_marked_down_are_passed_over_while_another_is_up():
    lim = Limits(exploration=0.0)
    infra = I.InfraCache(lim)
    infra.record_rtt("10.0.3.2", 0.3)
    infra.record_rtt(DEAD, 0.001)           # the fastest, until it dies
    _down(infra, DEAD, 100.0, lim)
    for t in (100.0, 200.0, 300.0):         # probes are due, but a live server is asked
        assert infra.choose([DEAD, "10.0.3.2"], t) == "10.0.3.2"
    assert infra.probes == 0


def test_a_name_under_a_dead_zone_fails_without_a_packet_once_the_zone_is_learnt():
    net = small_internet()
    net.faults[DEAD] = "timeout"
    net.faults["10.0.3.2"] = "timeout"
    clock = FakeClock()
    lim = Limits(exploration=0.0)
    cache = Cache(1 << 20, lim)
    hints = parse_root_hints(root_hints())

    def ask(name: str) -> itr.Result:
        i = itr.Iterator(W(name), 1, 1, cache, hints, clock, limits=lim)
        return drive(i, net, clock)

    # Each question asks each server twice (a lost datagram is not a dead server): the
    # second question's timeouts mark them down.
    for n in (1, 2):
        assert not cache.infra.is_down(DEAD, clock())
        assert ask(f"a{n}.example.com.").rcode == itr.SERVFAIL
    for a in (DEAD, "10.0.3.2"):
        assert cache.infra.is_down(a, clock())
    asked = len(net.queries(DEAD)) + len(net.queries("10.0.3.2"))
    for n in range(3, 13):
        assert ask(f"a{n}.example.com.").rcode == itr.SERVFAIL
    assert len(net.queries(DEAD)) + len(net.queries("10.0.3.2")) == asked
    assert net.skipped                      # they were offered, and skipped
    # A probe interval later, one probe goes out, to one of them.
    clock.advance(lim.server_probe_interval)
    ask("b1.example.com.")
    assert len(net.queries(DEAD)) + len(net.queries("10.0.3.2")) in (asked + 1, asked + 2)
    # Once the servers answer again and the marks expire, names resolve.
    del net.faults[DEAD], net.faults["10.0.3.2"]
    clock.advance(lim.infra_host_ttl)
    assert ask("www.example.com.").rcode == itr.NOERROR


@pytest.fixture
def silent():
    """A UDP socket on loopback that reads and never answers: a dead authority."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock
    sock.close()


def _dead_resolver(silent, minimise: bool = True, **limits) -> tuple[resolver.Resolver,
                                                                     FakeClock]:
    r = resolver.Resolver([("a.root-servers.net.", "127.0.0.1")],
                          port=silent.getsockname()[1], do_not_query_localhost=False,
                          qname_minimisation=minimise,
                          limits=Limits(**{"initial_rto": 0.02, "max_rto": 0.05,
                                           "max_query_time": 30.0, **limits}))
    clock = RunningClock()          # its timers are real: silence is measured on it
    r.clock = clock
    return r, clock


def _ask(r, loop, name: str):
    fut = loop.create_future()
    q = dns.message.make_query(name, "A", use_edns=0)
    out = start(r, q.to_wire(), lambda drive, resp: fut.done() or fut.set_result(resp), loop)
    if isinstance(out, bytes):
        fut.set_result(out)
    return fut


def _ede(wire: bytes) -> list[int]:
    m = dns.message.from_wire(wire)
    return [o.code for o in m.options if isinstance(o, dns.edns.EDEOption)]


def test_the_daemon_fails_fast_with_no_reachable_authority_and_sends_nothing(run, loop, silent):
    r, clock = _dead_resolver(silent)
    infra = r.cache.infra
    _down(infra, "127.0.0.1", clock(), r.limits)

    async def go():
        sent = r.stats.upstream_queries
        out = await _ask(r, loop, "www.example.com.")
        m = dns.message.from_wire(out)
        assert m.rcode() == dns.rcode.SERVFAIL
        assert _ede(out) == [22]
        assert r.stats.upstream_queries == sent
        assert r.stats.upstream_skipped_down >= 1
        assert not r.resolutions and not r.shared_queries
        # The probe interval passes: the next question sends one probe, the others none.
        clock.advance(r.limits.server_probe_interval)
        outs = await asyncio.gather(*[_ask(r, loop, f"n{i}.example.com.")
                                           for i in range(5)])
        assert all(dns.message.from_wire(o).rcode() == dns.rcode.SERVFAIL for o in outs)
        assert r.stats.upstream_queries == sent + 1
        await r.close()

    run(go())


def test_questions_in_flight_under_a_dying_zone_stop_asking_once_it_is_marked_down(
        run, loop, silent):
    """Different names under one dead server, all in flight at once (water torture): after the
    first few timeouts mark it down, the others' retries are not sent."""
    r, clock = _dead_resolver(silent, max_tries_per_server=4)
    names = 30

    async def go():
        outs = await asyncio.gather(*[_ask(r, loop, f"w{i}.example.com.")
                                           for i in range(names)])
        assert all(dns.message.from_wire(o).rcode() == dns.rcode.SERVFAIL for o in outs)
        # Without the mark every name would be asked up to 4 times (120 queries and more).
        assert r.stats.upstream_queries <= names + 2 * r.limits.server_down_timeouts
        assert r.stats.upstream_skipped_down >= names - r.limits.server_down_timeouts
        assert r.cache.infra.is_down("127.0.0.1", clock())
        assert not r.resolutions and not r.shared_queries
        await r.close()

    run(go())


def test_the_same_question_asked_many_times_is_one_resolution(run, loop, silent):
    r, clock = _dead_resolver(silent)

    async def go():
        outs = await asyncio.gather(*[_ask(r, loop, "same.example.com.")
                                           for _ in range(10)])
        assert all(dns.message.from_wire(o).rcode() == dns.rcode.SERVFAIL for o in outs)
        assert r.stats.coalesced == 9
        assert r.stats.upstream_queries <= r.limits.server_down_timeouts + 1
        await r.close()

    run(go())


def test_upstream_sockets_in_flight_are_capped_and_the_excess_shed_and_counted(
        run, loop, silent):
    from resolver.upstream.udp import sockets_in_flight

    # Not minimised: each name is its own query (minimised, they would share the root's).
    r, clock = _dead_resolver(silent, False, max_upstream_sockets=4, initial_rto=5.0,
                              max_rto=5.0)
    names = 12

    async def go():
        base = sockets_in_flight()
        futs = [_ask(r, loop, f"c{i}.example.com.") for i in range(names)]
        await asyncio.sleep(0)
        assert sockets_in_flight() - base <= 4
        done = [f for f in futs if f.done()]
        assert len(done) >= names - 4 - 1           # shed at once: SERVFAIL
        assert all(dns.message.from_wire(f.result()).rcode() == dns.rcode.SERVFAIL
                   for f in done)
        assert r.stats.upstream_capped >= names - 4 - 1
        await r.close()
        assert sockets_in_flight() == base

    run(go())


def test_a_server_at_its_most_queries_in_flight_is_passed_over():
    lim = Limits(exploration=0.0, max_queries_per_server=2)
    infra = I.InfraCache(lim)
    infra.get(DEAD).inflight = 2
    assert infra.choose([DEAD, "10.0.3.2"], 1.0) == "10.0.3.2"
    assert infra.choose([DEAD], 1.0) is None
    infra.get(DEAD).inflight = 1
    assert infra.choose([DEAD], 1.0) == DEAD


def test_a_flood_under_one_silent_server_holds_at_most_its_share_of_sockets(run, loop, silent):
    """Before the server's timeouts come back (its RTO is long here), the questions past its
    queries in flight fail at once with EDE 22 instead of taking every socket."""
    from resolver.upstream.udp import sockets_in_flight

    r, clock = _dead_resolver(silent, False, max_queries_per_server=3, initial_rto=5.0,
                              max_rto=5.0)
    names = 10

    async def go():
        base = sockets_in_flight()
        futs = [_ask(r, loop, f"s{i}.example.com.") for i in range(names)]
        await asyncio.sleep(0)
        assert sockets_in_flight() - base == 3
        assert r.cache.infra.info("127.0.0.1").inflight == 3
        done = [f for f in futs if f.done()]
        assert len(done) == names - 3
        assert all(_ede(f.result()) == [22] for f in done)
        await r.close()
        assert sockets_in_flight() == base
        assert r.cache.infra.info("127.0.0.1").inflight == 0

    run(go())


def test_a_name_whose_servers_are_down_is_answered_stale_where_serve_stale_allows(
        run, loop, silent):
    from resolver.cache.answer import parse_query
    from resolver.wire.codec import build_query, build_response

    r, clock = _dead_resolver(silent)
    name = W("old.example.com.")
    q = build_query(1, name, 1, edns=True)
    key = parse_query(q)[0]
    wire = build_response(0, 0x8180, name + b"\x00\x01\x00\x01",
                          [(name, 1, 1, 10, bytes([192, 0, 2, 7]))], [], [], edns=True)
    r.cache.messages.store(key, wire, clock())
    clock.advance(60)                       # expired 50 s ago, within the stale window
    _down(r.cache.infra, "127.0.0.1", clock(), r.limits)

    async def go():
        stale = dns.message.from_wire(await _ask(r, loop, "old.example.com."))
        assert stale.rcode() == dns.rcode.NOERROR
        assert [rr.address for rr in stale.answer[0]] == ["192.0.2.7"]
        assert r.stats.stale_answers == 1 and r.stats.upstream_skipped_down >= 1
        other = await _ask(r, loop, "new.example.com.")
        assert dns.message.from_wire(other).rcode() == dns.rcode.SERVFAIL
        assert _ede(other) == [22]
        await r.close()

    run(go())


def test_a_lossy_server_that_still_answers_is_not_marked_down():
    lim = Limits(exploration=0.0)
    infra = I.InfraCache(lim)
    now = 100.0
    for _ in range(20):                     # answers, then a run of losses, again and again
        infra.record_rtt(DEAD, 0.02, now)
        for _ in range(lim.server_down_timeouts + 2):
            now += 0.1
            infra.record_timeout(DEAD, now)
            assert not infra.is_down(DEAD, now)
    # Silent for longer than a query waits: now its timeouts mark it.
    now += lim.max_rto + 0.1
    infra.record_timeout(DEAD, now)
    assert infra.is_down(DEAD, now)
