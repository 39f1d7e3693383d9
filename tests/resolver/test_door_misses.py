"""The front door's miss path in C (resolver.daemon.admission): latency buckets, the qtype
read from the wire, UDP truncation, the miss budgets' drops (each ending in the reply's
drop) and the release of per-client counts, without sockets (a stand-in engine answers)."""
from __future__ import annotations

import time

import dns.exception
import dns.message
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from resolver.daemon.admission import (LATENCY_BUCKETS, CallReply, Counters, FrontDoor,
                                       client_key, qtype_of)
from resolver.daemon.config import build
from resolver.wire.codec import parse_response


def _query(name: str = "www.example.", rdtype: str = "AAAA", rd: bool = True, **kw) -> bytes:
    q = dns.message.make_query(name, rdtype, **kw)
    if not rd:
        q.flags &= ~dns.flags.RD
    return q.to_wire()


@pytest.mark.parametrize("rdtype", ["A", "AAAA", "TXT", "HTTPS", "CAA"])
def test_qtype_is_read_from_the_question(rdtype):
    assert qtype_of(_query(rdtype=rdtype)) == dns.rdatatype.from_text(rdtype)


@pytest.mark.parametrize("wire", [b"", b"\x00" * 11, b"\x12\x34\x01\x00\x00\x02" + b"\x00" * 6,
                                  _query()[:-2], _query(use_edns=1),
                                  _query()[:12] + b"\xc0\x0c\x00\x01\x00\x01"],
                         ids=["empty", "short header", "two questions", "cut question",
                              "EDNS version 1", "compressed name"])
def test_a_query_without_a_question_to_read_is_counted_under_no_type(wire):
    """As Unbound counts them (a FORMERR, a BADVERS): under no type, not under 0."""
    assert qtype_of(wire) == 0x10000


@pytest.mark.parametrize("wire,rdtype", [(_query() + b"\0\0\0", "AAAA"),
                                         (_query(rdtype="AXFR"), "AXFR"),
                                         (_query(rdtype="TYPE128"), "TYPE128")],
                         ids=["bytes after it", "zone transfer", "meta type"])
def test_the_type_of_a_question_that_reads_is_counted(wire, rdtype):
    assert qtype_of(wire) == dns.rdatatype.from_text(rdtype)


def _dnspython_type(wire: bytes) -> int:
    """The type dnspython reads in the one question of ``wire``, 0x10000 when it reads no
    such question, or refuses the EDNS version (as Unbound counts these under no type)."""
    try:
        m = dns.message.from_wire(wire, ignore_trailing=True, one_rr_per_rrset=True)
    except dns.message.BadEDNS:
        return 0x10000
    if len(m.question) != 1 or m.edns > 0:
        return 0x10000
    return int(m.question[0].rdtype)


@settings(max_examples=600, deadline=None)
@given(head=st.binary(min_size=12, max_size=12), body=st.binary(max_size=60),
       qtype=st.integers(0, 0xFFFF), edns=st.sampled_from([None, 0, 1]))
def test_the_type_counted_is_the_question_dnspython_reads(head, body, qtype, edns):
    """Random headers and tails around a real question (and arbitrary bytes alone): the
    type counted is the one dnspython reads in the question, none where it reads none; and
    whatever the bytes, no error. (A header with answer or authority counts is left to
    arbitrary bytes: dnspython reads those records, the count does not look at them.)"""
    q = dns.message.make_query("a.example.", qtype, use_edns=edns)
    wire = q.to_wire()
    counts = bytes([0, 1, 0, 0, 0, 0]) + wire[10:12]
    framed = head[:4] + counts + wire[12:] + (body if edns is None else b"")
    try:
        expected = _dnspython_type(framed)
    except dns.exception.DNSException:
        expected = None                   # dnspython refuses a tail it cannot read
    if expected is not None:
        assert qtype_of(framed) == expected
    assert 0 <= qtype_of(head + body) <= 0x10000
@pytest.mark.parametrize("seconds,bucket", [(0.0, 0), (0.0001, 0), (0.00011, 1), (0.003, 4),
                                            (5.0, 13), (5.1, 14), (1e9, 14)])
def test_latency_goes_to_the_first_bucket_at_or_above_it(seconds, bucket):
    c = Counters()
    c.answered("udp", b"\x00\x00\x81\x83" + b"\x00" * 8, 28, seconds)
    assert c.latency[bucket] == 1 and sum(c.latency) == 1
    assert len(c.latency) == len(LATENCY_BUCKETS) + 1
    assert c.latency_sum == seconds
    assert c.queries == {("udp", 3): 1} and c.qtypes == {28: 1}


class _Engine:
    """Answers every miss at once with ``out``, or keeps it pending."""

    def __init__(self, out: bytes | None = None) -> None:
        self.out = out
        self.pending: list = []

    def resolve_cached(self, q):
        return None

    def local_answer(self, q, client=None):
        return None

    def start_miss(self, q, done, loop, absent=None, client=None):
        if self.out is not None:
            return self.out
        d = _Pending(done, q)
        self.pending.append(d)
        return d


class _Pending:
    """A miss in flight, as a Drive: ``miss`` holds the query as parsed when it arrived."""
    finished = False

    def __init__(self, done, q: bytes) -> None:
        self.done = done
        m = parse_response(q)
        self.miss = (m, m.edns, bool(m.edns_flags & 0x8000), bool(m.flags & 0x10))

    def finish(self, out: bytes) -> None:
        self.finished = True
        self.done(self, out)


def _dispatch(engine, **cfg) -> FrontDoor:
    return FrontDoor({}, engine, cfg=build(None, {"listen": ["127.0.0.1:5300"], **cfg}))


def _miss(d: FrontDoor, q: bytes, addr, transport: str, send, t0: float,
          busy: bool = False) -> bool:
    """A miss started on the door: False when it was dropped, and then its reply was
    dropped (and nothing sent)."""
    dropped: list = []
    reply = CallReply(transport, addr, send, lambda: dropped.append(addr))
    started = d.start_held(q, reply, busy, None, t0)
    assert dropped == ([] if started else [addr])
    return started


def test_a_large_answer_is_truncated_to_the_clients_udp_limit_and_counted():
    big = dns.message.make_response(dns.message.make_query("big.example.", "TXT"))
    big.answer.append(dns.rrset.from_text("big.example.", 60, "IN", "TXT",
                                          *[f'"{i}{"x" * 200}"' for i in range(5)]))
    out = big.to_wire()
    assert len(out) > 512
    d = _dispatch(_Engine(out))
    sent: list[bytes] = []
    assert _miss(d, _query("big.example.", "TXT"), ("127.0.0.1", 9), "udp", sent.append, 0.0)
    assert len(sent) == 1 and len(sent[0]) <= 512 and sent[0][2] & 0x02      # TC
    assert d.counters.truncated == 1
    # With EDNS 4096 the whole answer fits: not truncated, not counted.
    assert _miss(d, _query("big.example.", "TXT", use_edns=0, payload=4096), ("127.0.0.1", 9),
                   "udp", sent.append, 0.0)
    assert sent[1] == out and d.counters.truncated == 1
    # Over TCP nothing is truncated.
    assert _miss(d, _query("big.example.", "TXT"), ("127.0.0.1", 9), "tcp", sent.append, 0.0)
    assert sent[2] == out


@pytest.mark.parametrize("payload,fits", [(None, False), (600, False), (4096, True)])
def test_a_resolved_miss_is_truncated_and_counted_from_its_parsed_query(payload, fits):
    """A miss answered later takes its qtype and UDP limit from the query as parsed when it
    arrived (the Drive's), with the same results as reading the bytes."""
    big = dns.message.make_response(dns.message.make_query("big.example.", "TXT"))
    big.answer.append(dns.rrset.from_text("big.example.", 60, "IN", "TXT",
                                          *[f'"{i}{"x" * 200}"' for i in range(5)]))
    out = big.to_wire()
    engine = _Engine()
    d = _dispatch(engine)
    sent: list[bytes] = []
    kw = {} if payload is None else {"use_edns": 0, "payload": payload}
    assert _miss(d, _query("big.example.", "TXT", **kw), ("127.0.0.1", 9), "udp",
                   sent.append, 0.0)
    assert engine.pending and engine.pending[0].miss[0].edns_payload == (payload or 0)
    engine.pending[0].finish(out)
    assert len(sent) == 1
    if fits:
        assert sent[0] == out and d.counters.truncated == 0
    else:
        assert len(sent[0]) <= max(512, payload or 0) and sent[0][2] & 0x02    # TC
        assert d.counters.truncated == 1
    assert d.counters.qtypes == {16: 1}


def test_misses_past_the_per_client_cap_are_dropped_and_counts_are_released():
    engine = _Engine()
    d = _dispatch(engine, max_inflight_per_client=2)
    sent: list[bytes] = []
    q = _query()
    assert _miss(d, q, ("127.0.0.1", 1), "udp", sent.append, 0.0)
    assert _miss(d, q, ("127.0.0.1", 2), "udp", sent.append, 0.0)
    assert not _miss(d, q, ("127.0.0.1", 3), "udp", sent.append, 0.0)      # third: dropped
    assert _miss(d, q, ("127.0.0.2", 1), "udp", sent.append, 0.0)          # another client
    assert d.counters.dropped["overload"] == 1
    assert d.inflight_by_client == {"127.0.0.1": 2, "127.0.0.2": 1} and len(d.misses) == 3
    answer = b"\x00\x00\x81\x80" + b"\x00" * 8
    for p in engine.pending:
        p.finish(answer)
    assert d.inflight_by_client == {} and d.misses == {} and len(sent) == 3
    assert d.counters.queries[("udp", 0)] == 3


def test_misses_past_a_clients_rate_are_dropped_and_the_budget_refills():
    engine = _Engine()
    d = _dispatch(engine, ip_ratelimit=3, max_inflight_per_client=1000)
    sent: list[bytes] = []
    q = _query()
    started = [_miss(d, q, ("127.0.0.1", 1), "udp", sent.append, 10.0) for _ in range(5)]
    assert started == [True, True, True, False, False]          # one second's worth: 3
    assert d.counters.dropped["ratelimit"] == 2
    assert _miss(d, q, ("127.0.0.2", 1), "udp", sent.append, 10.0)     # another client
    assert not _miss(d, q, ("127.0.0.1", 1), "udp", sent.append, 10.2)   # 0.6 of a token
    assert _miss(d, q, ("127.0.0.1", 1), "udp", sent.append, 10.5)       # 1.5 tokens now
    assert _miss(d, q, ("127.0.0.1", 1), "udp", sent.append, 20.0)       # refilled, capped
    assert len(engine.pending) == 6
    off = _dispatch(_Engine(), ip_ratelimit=0, max_inflight_per_client=1000)
    assert all(_miss(off, q, ("127.0.0.1", 1), "udp", sent.append, 10.0) for _ in range(50))


class _Cancellable(_Pending):
    def cancel(self) -> None:
        if not self.finished:
            self.finished = True
            self.done(self, None)


class _SlowEngine(_Engine):
    def start_miss(self, q, done, loop, absent=None, client=None):
        d = _Cancellable(done, q)
        self.pending.append(d)
        return d


def test_with_every_slot_taken_a_new_miss_jostles_out_one_that_ran_too_long():
    engine = _SlowEngine()
    d = _dispatch(engine, max_inflight=2, jostle_timeout=0.2, ip_ratelimit=0)
    sent: list[bytes] = []
    q = _query()
    assert _miss(d, q, ("127.0.0.1", 1), "udp", sent.append, 10.0)
    assert _miss(d, q, ("127.0.0.2", 1), "udp", sent.append, 10.1)
    # Full, and the oldest has run 0.15 s only: the newcomer is dropped.
    assert not _miss(d, q, ("127.0.0.3", 1), "udp", sent.append, 10.15)
    assert d.counters.dropped == {"overload": 1}
    # At 10.25 the oldest has run 0.25 s: it is cancelled (no answer) and the newcomer runs.
    assert _miss(d, q, ("127.0.0.3", 1), "udp", sent.append, 10.25)
    assert d.counters.dropped == {"overload": 1, "jostled": 1}
    assert engine.pending[0].finished and not sent
    assert list(d.inflight_by_client) == ["127.0.0.2", "127.0.0.3"] and len(d.misses) == 2
    # The next oldest (from 10.1) has run 0.2 s at 10.3: jostled in turn.
    assert _miss(d, q, ("127.0.0.4", 1), "udp", sent.append, 10.3)
    assert d.counters.dropped["jostled"] == 2
    off = _dispatch(_SlowEngine(), max_inflight=1, jostle_timeout=0, ip_ratelimit=0)
    assert _miss(off, q, ("127.0.0.1", 1), "udp", sent.append, 10.0)
    assert not _miss(off, q, ("127.0.0.2", 1), "udp", sent.append, 99.0)
    assert off.counters.dropped == {"overload": 1}


def test_ipv6_clients_of_one_prefix_share_a_rate_and_a_concurrency_budget():
    assert client_key("192.0.2.7", 32, 56) == "192.0.2.7"
    assert client_key("192.0.2.7", 24, 56) == client_key("192.0.2.200", 24, 56)
    assert client_key("192.0.2.7", 24, 56) != client_key("192.0.3.7", 24, 56)
    assert client_key("2001:db8:0:ff::1", 32, 56) == client_key("2001:db8:0:1::2", 32, 56)
    assert client_key("2001:db8:0:100::1", 32, 56) != client_key("2001:db8:0:1::2", 32, 56)
    assert client_key("2001:db8::1", 32, 128) == "2001:db8::1"
    assert client_key("fe80::1%lo", 32, 64) == client_key("fe80::2", 32, 64)
    # an IPv6 network never counts as the IPv4 one whose leading bytes it shares
    assert client_key("2001:db8::1", 24, 24) != client_key("32.1.13.1", 24, 24)
    engine = _Engine()
    d = _dispatch(engine, ip_ratelimit=2, max_inflight_per_client=1000)
    sent: list[bytes] = []
    q = _query()
    started = [_miss(d, q, (f"2001:db8:0:{i:x}::{i}", 1, 0, 0), "udp", sent.append, 10.0)
               for i in range(1, 5)]
    assert started == [True, True, False, False]       # one /56: one budget of 2
    assert _miss(d, q, ("2001:db8:1::1", 1, 0, 0), "udp", sent.append, 10.0)   # another /56
    d = _dispatch(_Engine(), ip_ratelimit=0, max_inflight_per_client=2)
    started = [_miss(d, q, (f"2001:db8::{i}", 1, 0, 0), "udp", sent.append, 10.0)
               for i in range(1, 4)]
    assert started == [True, True, False]


def test_behind_only_clients_with_nothing_in_flight_start_a_miss():
    """``busy`` (the UDP listener is past its quota for this wake-up): a flood's source with
    misses in flight is dropped, a client that asks now and then still gets its miss."""
    engine = _Engine()
    d = _dispatch(engine, ip_ratelimit=0)
    sent: list[bytes] = []
    q = _query()
    assert _miss(d, q, ("127.0.0.1", 1), "udp", sent.append, 0.0)                 # flooder
    assert not _miss(d, q, ("127.0.0.1", 2), "udp", sent.append, 0.0, True)      # behind
    assert _miss(d, q, ("127.0.0.99", 1), "udp", sent.append, 0.0, True)          # newcomer
    assert not _miss(d, q, ("127.0.0.99", 2), "udp", sent.append, 0.0, True)
    assert d.counters.dropped == {"busy": 2}
    assert _miss(d, q, ("127.0.0.1", 3), "udp", sent.append, 0.0)                 # not behind


def test_the_rate_table_s_size_is_a_limit():
    """Past ``limits.max_rate_clients`` addresses the rate table starts afresh: a client
    whose budget was spent gets a new one."""
    q = _query()
    sent: list[bytes] = []
    for max_clients, admitted_again in ((2, True), (65536, False)):
        d = _dispatch(_Engine(), ip_ratelimit=1, max_inflight_per_client=1000,
                      limits={"max_rate_clients": max_clients})
        assert _miss(d, q, ("192.0.2.1", 1), "udp", sent.append, 10.0)
        assert not _miss(d, q, ("192.0.2.1", 1), "udp", sent.append, 10.0)
        assert _miss(d, q, ("192.0.2.2", 1), "udp", sent.append, 10.0)
        assert _miss(d, q, ("192.0.2.3", 1), "udp", sent.append, 10.0)
        assert _miss(d, q, ("192.0.2.1", 1), "udp", sent.append, 10.0) is admitted_again


def test_a_client_whose_own_miss_is_jostled_out_holds_one_count_not_two():
    """The jostled miss releases its client's count as it is cancelled; the new miss of
    that same client then counts one, and once it ends the client holds none."""
    engine = _SlowEngine()
    d = _dispatch(engine, max_inflight=1, jostle_timeout=0.2, ip_ratelimit=0)
    sent: list[bytes] = []
    q = _query()
    assert _miss(d, q, ("127.0.0.1", 1), "udp", sent.append, 10.0)
    assert _miss(d, q, ("127.0.0.1", 2), "udp", sent.append, 10.5)     # jostles the first
    assert engine.pending[0].finished and d.counters.dropped == {"jostled": 1}
    assert d.inflight_by_client == {"127.0.0.1": 1}
    engine.pending[1].finish(b"\x00\x00\x81\x80" + b"\x00" * 8)
    assert d.inflight_by_client == {} and d.misses == {} and len(sent) == 1


def test_a_jostled_reply_that_asks_again_at_once_cannot_push_misses_past_the_cap():
    """The dropped reply of a jostled miss hands the door its connection's next query at
    once (as an HTTP/1.1 DoH connection does): that query takes the freed room, and the
    miss that jostled is then dropped rather than run past ``max-inflight``."""
    engine = _SlowEngine()
    d = _dispatch(engine, max_inflight=1, jostle_timeout=0.2, ip_ratelimit=0)
    sent: list[bytes] = []
    q = _query()
    again = CallReply("https", ("127.0.0.3", 1), sent.append)
    first = CallReply("https", ("127.0.0.1", 1), sent.append,
                      lambda: d.start_held(q, again, False, None, 10.5))
    assert d.start_held(q, first, False, None, 10.0)
    assert not _miss(d, q, ("127.0.0.2", 1), "udp", sent.append, 10.5)
    assert d.counters.dropped == {"jostled": 1, "overload": 1}
    assert len(d.misses) == 1 and again.started is not None and first.started is None
    assert d.inflight_by_client == {"127.0.0.3": 1}


class _Stale(_Cancellable):
    """A miss in flight whose cache entry gives ``out`` (None: nothing) while it runs;
    ``asked`` counts the door's questions about it."""

    def __init__(self, done, q: bytes, out: bytes | None) -> None:
        super().__init__(done, q)
        self.out = out
        self.asked = 0

    def stale(self):
        self.asked += 1
        return None if self.finished else self.out


class _StaleEngine(_Engine):
    def __init__(self, out: bytes | None) -> None:
        super().__init__()
        self.stale_out = out

    def start_miss(self, q, done, loop, absent=None, client=None):
        d = _Stale(done, q, self.stale_out)
        self.pending.append(d)
        return d


class _Timers:
    """The door's loop, keeping the timers it is asked for, to be run by hand."""

    def __init__(self) -> None:
        self.set: list = []
        self.cancelled: list = []

    def call_later(self, delay, callback, *args):
        self.set.append((delay, callback))
        return _Handle(self.cancelled)


class _Handle:
    def __init__(self, cancelled: list) -> None:
        self.cancelled = cancelled

    def cancel(self) -> None:
        self.cancelled.append(self)


def _stale_door(engine, timeout: float, **cfg) -> tuple[FrontDoor, _Timers]:
    d = _dispatch(engine, serve_stale_client_timeout=timeout, ip_ratelimit=0,
                  max_inflight_per_client=1000, **cfg)
    d.loop = _Timers()
    return d, d.loop


STALE = b"\x00\x00\x81\x80" + b"\x00\x01\x00\x01\x00\x00\x00\x00" + b"\x00" * 30
FRESH = b"\x00\x00\x81\x80" + b"\x00" * 8


def test_one_timer_gives_each_miss_its_stale_answer_once_it_has_run_the_timeout():
    """RFC 8767's client response timer: the door asks nothing of a miss as it starts and
    keeps one timer for all of them, set for the oldest; each miss that has run the
    timeout gets its expired answer once (and no second answer when its resolution ends),
    a miss that ended before gets none, a miss still waiting after its turn is not asked
    again."""
    engine = _StaleEngine(STALE)
    d, timers = _stale_door(engine, 0.5)
    sent: dict[int, list] = {}
    now = time.monotonic()
    ages = [1.0, 0.6, 0.46, 0.2] + [0.0] * 40
    for port, age in enumerate(ages):
        assert _miss(d, _query(), ("127.0.0.1", port), "udp",
                     sent.setdefault(port, []).append, now - age)
    assert len(timers.set) == 1 and -0.6 < timers.set[0][0] <= -0.5   # the oldest's, due
    assert [p.asked for p in engine.pending] == [0] * len(ages)
    engine.pending[3].finish(FRESH)                  # resolved before its time
    timers.set[0][1]()
    assert sent[0] == [STALE] and sent[1] == [STALE] and sent[3] == [FRESH]
    assert not any(sent[p] for p in (2, *range(4, len(ages))))
    assert [p.asked for p in engine.pending[:5]] == [1, 1, 0, 0, 0]
    assert len(d.misses) == len(ages) - 1            # the answered ones refresh the cache
    delay = timers.set[1][0]                          # the next: the miss of age 0.46
    assert 0.0 < delay <= 0.04
    time.sleep(delay + 0.01)
    timers.set[1][1]()
    assert sent[2] == [STALE] and [p.asked for p in engine.pending[:3]] == [1, 1, 1]
    assert len(timers.set) == 3 and 0.4 < timers.set[2][0] <= 0.5
    engine.pending[0].finish(FRESH)                  # the refresh: to no one
    assert sent[0] == [STALE] and d.inflight_by_client["127.0.0.1"] == len(ages) - 2
    for p in engine.pending:
        if not p.finished:
            p.finish(FRESH)
    assert d.misses == {} and d.inflight_by_client == {}
    timers.set[2][1]()                                # nothing left: no timer again
    assert len(timers.set) == 3


def test_a_miss_with_nothing_stale_at_its_turn_is_not_asked_again():
    engine = _StaleEngine(None)
    d, timers = _stale_door(engine, 0.5)
    sent: list = []
    now = time.monotonic()
    assert _miss(d, _query(), ("127.0.0.1", 1), "udp", sent.append, now - 1.0)
    timers.set[0][1]()
    assert engine.pending[0].asked == 1 and not sent and len(timers.set) == 1
    engine.stale_out = STALE
    assert _miss(d, _query(), ("127.0.0.1", 2), "udp", sent.append, now - 0.9)
    assert len(timers.set) == 2
    timers.set[1][1]()                                # the first comes round: not asked
    assert [p.asked for p in engine.pending] == [1, 1] and sent == [STALE]


def test_zero_answers_the_stale_answer_as_the_miss_starts_without_a_timer():
    engine = _StaleEngine(STALE)
    d, timers = _stale_door(engine, 0.0)
    sent: list = []
    assert _miss(d, _query(), ("127.0.0.1", 1), "udp", sent.append, time.monotonic())
    assert sent == [STALE] and timers.set == [] and len(d.misses) == 1


def test_a_miss_past_its_stale_turn_is_jostled_first_though_younger_ones_lead():
    """The sweep moves a miss still running after its turn behind the younger ones; it is
    still the oldest, the one a full door cancels."""
    engine = _StaleEngine(None)
    d, timers = _stale_door(engine, 0.5, max_inflight=2, jostle_timeout=0.2)
    sent: list = []
    now = time.monotonic()
    assert _miss(d, _query(), ("127.0.0.1", 1), "udp", sent.append, now - 1.0)
    assert _miss(d, _query(), ("127.0.0.2", 1), "udp", sent.append, now - 0.05)
    timers.set[0][1]()
    assert list(d.misses) == [engine.pending[1], engine.pending[0]]
    assert _miss(d, _query(), ("127.0.0.3", 1), "udp", sent.append, now)
    assert engine.pending[0].finished and not engine.pending[1].finished
    assert d.counters.dropped == {"jostled": 1} and not sent


def test_a_miss_started_by_a_stale_answer_leaves_one_timer_set():
    """Sending a stale answer can hand the door the connection's next query (a DoH
    stream's) while the sweep runs: the timer that miss sets is replaced by the sweep's
    own, set for the oldest miss still to run the timeout, so one is set, not two."""
    engine = _StaleEngine(STALE)
    d, timers = _stale_door(engine, 0.5)
    sent: list = []
    now = time.monotonic()
    nxt = CallReply("https", ("127.0.0.1", 2), sent.append)

    def send(out: bytes) -> None:
        sent.append(out)
        d.start_held(_query("next.example."), nxt, False, None, time.monotonic())

    assert d.start_held(_query(), CallReply("https", ("127.0.0.1", 1), send), False, None,
                        now - 1.0)
    assert _miss(d, _query(), ("127.0.0.1", 3), "udp", sent.append, now - 0.3)
    timers.set[0][1]()
    assert sent == [STALE] and len(engine.pending) == 3
    assert len(timers.set) == 3 and timers.cancelled and len(timers.cancelled) == 1
    assert 0.1 < timers.set[2][0] <= 0.2           # the miss of age 0.3, not the new one
