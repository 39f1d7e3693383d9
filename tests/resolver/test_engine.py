"""resolver.Resolver through real sockets against fake authorities on 127.53.x.y, on every loop
kind the shared fixtures provide."""
from __future__ import annotations

import asyncio
import os
import socket

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.resolver
import pytest

import resolver
from resolver.limits import Limits
from scenario import FakeClock, FakeServers, root_hints, small_internet

P = "127.53"
FAST = Limits(exploration=0.0, initial_rto=0.1, max_rto=0.2, max_query_time=1.5)


@pytest.fixture
def world(run):
    net = small_internet(prefix=P)
    fs = FakeServers(net)
    port = run(fs.start(sorted(set(net.served) | {f"{P}.7.7"})))
    try:
        yield net, fs, port
    finally:
        run(fs.stop())


def make(port, **kw) -> resolver.Resolver:
    kw.setdefault("limits", FAST)
    kw.setdefault("do_not_query_localhost", False)     # the fake servers are on loopback
    return resolver.Resolver(root_hints(P), port=port, **kw)


def test_resolve_returns_dnspython_answer_and_caches(world, run):
    net, fs, port = world
    r = make(port)
    ans = run(r.resolve("alias.example.com", "A"))
    assert [rd.address for rd in ans] == ["192.0.2.1"]
    assert ans.canonical_name == dns.name.from_text("www.example.com.")
    assert isinstance(ans.response, dns.message.Message) and ans.rrset.ttl <= 300
    assert ans.expiration > 0
    sent = r.stats.upstream_queries
    assert sent >= 3
    again = run(r.resolve("alias.example.com", "A"))
    assert r.stats.upstream_queries == sent and r.stats.cache_hits == 1
    assert again.rrset == ans.rrset


def test_resolve_raises_dnspython_exceptions(world, run):
    net, fs, port = world
    r = make(port)
    with pytest.raises(dns.resolver.NXDOMAIN):
        run(r.resolve("nope.example.com"))
    with pytest.raises(dns.resolver.NoAnswer):
        run(r.resolve("txt.example.com", "A"))
    with pytest.raises(dns.resolver.NXDOMAIN):      # from the negative cache this time
        run(r.resolve("nope.example.com", "AAAA"))
    for a in (f"{P}.3.1", f"{P}.3.2"):
        net.faults[a] = "refused"
    with pytest.raises(dns.resolver.NoNameservers):
        run(r.resolve("www.example.com"))


def test_every_authority_dead_ends_within_the_time_limit(world, run, loop):
    net, fs, port = world
    for a in (f"{P}.0.1", f"{P}.0.2"):
        net.faults[a] = "timeout"
    r = make(port, limits=FAST.replace(max_query_time=0.6, max_rto=0.4, initial_rto=0.4))
    t0 = loop.time()
    with pytest.raises((dns.resolver.LifetimeTimeout, dns.resolver.NoNameservers)):
        run(r.resolve("www.example.com"))
    assert loop.time() - t0 < 5.0          # a bound, not a speed measurement
    assert r.stats.upstream_timeouts >= 1 and r.stats.upstream_queries >= 2


@pytest.mark.parametrize("fault", ["lost", "slow"])
def test_a_burst_lost_at_first_contact_does_not_cut_a_zone_off(world, run, loop, fault):
    """Questions under a zone with one server, all in flight when it first hears from us,
    and that first burst unanswered in time: lost (a moment's stall: the server's, the
    network's or ours), or every reply slower than the first timeout (a distant or loaded
    server). Their timeouts come back together, the retries go out with the backed-off
    timeout, and every question is answered, as none would be had the burst's timeouts
    marked the server down."""
    net, fs, port = world
    server, burst = f"{P}.4.1", []

    def answer(data: bytes, sendto) -> None:
        out = net.answer(server, data)
        if out is not None:
            sendto(out)

    def stall(data: bytes, sendto) -> None:
        if fault == "slow":
            burst.append(loop.time())
            loop.call_later(1.5 * FAST.initial_rto, answer, data, sendto)
        elif not burst or loop.time() - burst[0] < FAST.initial_rto / 2:
            burst.append(loop.time())
        else:
            answer(data, sendto)

    fs.udp_hooks[server] = stall
    r = make(port)
    names = [f"h{i}.other.net." for i in range(6)]
    outs = run(asyncio.gather(*(r.resolve(n, "A") for n in names), return_exceptions=True))
    assert len(burst) >= r.limits.server_down_timeouts
    assert r.stats.upstream_timeouts >= r.limits.server_down_timeouts
    assert all(isinstance(o, dns.resolver.NXDOMAIN) for o in outs), outs
    assert not r.cache.infra.is_down(server, r.clock())


def test_questions_waiting_for_a_server_go_on_as_soon_as_it_answers(world, run, loop):
    """After a lost burst, the questions that wait while one query finds out whether the
    server is down (``Resolution._wait``) send theirs as soon as that query is answered,
    not when their own wait would end (``initial_rto`` later). Timers keep their order
    however late the loop runs them: the marker set when the first answer leaves fires
    half a wait later, and every waiting question's query must have come before it."""
    net, fs, port = world
    server, lost, seen = f"{P}.4.1", [], []
    limits = FAST.replace(initial_rto=0.4, max_rto=0.8, max_query_time=5.0)
    names = [f"h{i}.other.net." for i in range(8)]
    marker = {}

    def hook(data: bytes, sendto) -> None:
        if len(lost) < len(names):              # the whole first burst is lost
            lost.append(data)
            return
        seen.append("marker passed" in marker)
        if not marker:
            marker["set"] = loop.call_later(limits.initial_rto / 2, marker.__setitem__,
                                            "marker passed", True)
        out = net.answer(server, data)
        if out is not None:
            sendto(out)

    fs.udp_hooks[server] = hook
    r = make(port, limits=limits)
    outs = run(asyncio.gather(*(r.resolve(n, "A") for n in names), return_exceptions=True))
    assert all(isinstance(o, dns.resolver.NXDOMAIN) for o in outs), outs
    assert r.stats.upstream_timeouts >= limits.server_down_timeouts
    assert len(seen) == len(names) and not any(seen), seen
    assert not r.cache.infra.info(server).waiters


def test_questions_that_need_a_silent_server_wait_for_one_query_to_find_it_dead(world, run):
    """A zone's one server stops answering with many questions in flight: their timeouts
    come back together, then one query at a time asks it (backed off) while the other
    questions wait for it, and once it is marked down they all end at once. The dead
    server costs each question its first query and a few more in all, not a second
    round of them."""
    net, fs, port = world
    server, heard = f"{P}.4.1", []
    fs.udp_hooks[server] = lambda data, sendto: heard.append(data)
    r = make(port)
    names = [f"h{i}.other.net." for i in range(40)]
    outs = run(asyncio.gather(*(r.resolve(n, "A") for n in names), return_exceptions=True))
    assert all(isinstance(o, (dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout))
               for o in outs), outs
    assert r.cache.infra.is_down(server, r.clock())
    assert len(names) < len(heard) <= len(names) + r.limits.server_down_timeouts
    assert not r.cache.infra.info(server).waiters       # nobody is left waiting


def test_resolve_message_wire_and_message(world, run):
    net, fs, port = world
    r = make(port)
    r.clock = clock = FakeClock()
    q = dns.message.make_query("WWW.Example.com", "A", want_dnssec=True)
    q.id = 4321
    out = run(r.resolve_message(q.to_wire()))
    assert isinstance(out, bytes)
    m = dns.message.from_wire(out)
    assert m.id == 4321 and m.flags & dns.flags.RA and m.flags & dns.flags.QR
    assert m.flags & dns.flags.RD and m.edns == 0 and m.ednsflags & dns.flags.DO
    assert out[12:12 + 17] == q.to_wire()[12:12 + 17]
    assert m.answer[0][0].address == "192.0.2.1"
    clock.advance(100)
    q2 = dns.message.make_query("www.example.COM", "A", want_dnssec=True)
    hit = run(r.resolve_message(q2.to_wire()))
    m2 = dns.message.from_wire(hit)
    assert m2.id == q2.id and m2.answer[0].ttl == m.answer[0].ttl - 100
    assert r.resolve_cached(q2.to_wire()) is not None
    msg = run(r.resolve_message(dns.message.make_query("nope.example.com", "MX")))
    assert isinstance(msg, dns.message.Message) and msg.rcode() == dns.rcode.NXDOMAIN
    assert msg.authority and msg.authority[0].rdtype == dns.rdatatype.SOA


def test_resolve_message_bad_queries_get_error_rcodes(world, run):
    net, fs, port = world
    r = make(port)
    q = dns.message.make_query("www.example.com", "A").to_wire()
    notimp = bytearray(q)
    notimp[2] |= 2 << 3                       # opcode STATUS
    m = dns.message.from_wire(run(r.resolve_message(bytes(notimp))))
    assert m.rcode() == dns.rcode.NOTIMP
    ch = dns.message.make_query("version.bind", "TXT", "CH").to_wire()
    assert dns.message.from_wire(run(r.resolve_message(ch))).rcode() == dns.rcode.REFUSED
    garbage = q[:12] + b"\xff\xff\xff"
    out = run(r.resolve_message(garbage))
    assert out[:2] == q[:2] and out[3] & 0x0F == dns.rcode.FORMERR
    badvers = dns.message.make_query("www.example.com", "A", use_edns=1).to_wire()
    assert dns.message.from_wire(run(r.resolve_message(badvers))).rcode() == dns.rcode.BADVERS
    with pytest.raises(resolver.wire.codec.WireError):
        run(r.resolve_message(b"\x00\x01"))
    assert r.stats.upstream_queries == 0


def test_truncated_answer_is_retried_over_tcp(world, run):
    net, fs, port = world
    for a in (f"{P}.3.1", f"{P}.3.2"):
        net.faults[a] = "tc"
    r = make(port)
    ans = run(r.resolve("www.example.com"))
    assert ans[0].address == "192.0.2.1"
    assert r.stats.upstream_tcp >= 1


def test_formerr_to_edns_is_retried_without_edns_and_remembered(world, run):
    net, fs, port = world
    net.faults[f"{P}.3.1"] = net.faults[f"{P}.3.2"] = "formerr-edns"
    r = make(port)
    assert run(r.resolve("www.example.com"))[0].address == "192.0.2.1"
    assert (not r.cache.infra.edns(f"{P}.3.1", r.clock())
            or not r.cache.infra.edns(f"{P}.3.2", r.clock()))


def test_mismatched_and_spoofed_replies_are_ignored(world, run):
    net, fs, port = world
    spoofer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    spoofer.bind((f"{P}.9.9", 0))

    def hook(data, reply):
        real = net.answer(f"{P}.0.1", data)
        m = dns.message.from_wire(real)
        fake = dns.message.from_wire(real)
        fake.authority = []
        fake.answer = [dns.rrset.from_text(m.question[0].name, 300, "IN", "A", "6.6.6.6")]
        fake.flags |= dns.flags.AA
        wrong_id = bytearray(fake.to_wire())
        wrong_id[0] ^= 0xFF
        reply(bytes(wrong_id))
        wrong_case = bytearray(fake.to_wire())
        wrong_case[13] ^= 0x20                  # flip the case of the first qname letter
        reply(bytes(wrong_case))
        peer = fs_peer[0]
        spoofer.sendto(fake.to_wire(), peer)    # right ID, wrong source address
        reply(real)

    fs_peer = [None]
    import scenario

    orig = scenario._UDP.datagram_received

    def capture(self, data, peer):
        fs_peer[0] = peer
        return orig(self, data, peer)

    scenario._UDP.datagram_received = capture
    try:
        fs.udp_hooks[f"{P}.0.1"] = fs.udp_hooks[f"{P}.0.2"] = hook
        r = make(port)
        ans = run(r.resolve("www.example.com"))
    finally:
        scenario._UDP.datagram_received = orig
        spoofer.close()
    assert ans[0].address == "192.0.2.1"
    assert r.stats.dropped_mismatched >= 2


def test_garbage_from_one_server_is_dropped_and_another_asked(world, run):
    net, fs, port = world
    net.faults[f"{P}.0.1"] = "garbage"        # wrong question bytes: ignored, then timeout
    net.faults[f"{P}.3.1"] = "malformed"      # right ID/question, broken records: dropped,
    #                                             the real answer still awaited (then timeout)
    r = make(port)
    r.cache.infra.record_rtt(f"{P}.0.2", 0.05)     # the broken ones, unmeasured, go first
    r.cache.infra.record_rtt(f"{P}.3.2", 0.05)
    assert run(r.resolve("www.example.com"))[0].address == "192.0.2.1"
    assert r.stats.dropped_mismatched >= 1 and r.stats.dropped_malformed == 1
    asked = [a for a, q, t in net.log]
    assert f"{P}.0.2" in asked and f"{P}.3.2" in asked


def test_identical_lookups_in_flight_share_one_resolution(world, run):
    net, fs, port = world
    r = make(port)

    async def many():
        return await asyncio.gather(*(r.resolve("www.example.com") for _ in range(20)))

    answers = run(many())
    assert all(a[0].address == "192.0.2.1" for a in answers)
    assert r.stats.coalesced == 19
    # one to prime the root (. NS), then one per zone: the root, com. and example.com.
    assert r.stats.upstream_queries == 4 and r.stats.primings == 1


def test_serve_stale_when_authorities_fail(world, run):
    net, fs, port = world
    r = make(port)
    r.clock = clock = FakeClock()
    q = dns.message.make_query("www.example.com", "A").to_wire()
    run(r.resolve_message(q))
    clock.advance(400)                       # past the 300 s TTL, within the stale window
    for a in list(net.served):
        net.faults[a] = "refused"
    r.cache.rrsets.lru.clear()               # force a real attempt upstream
    m = dns.message.from_wire(run(r.resolve_message(q)))
    assert m.rcode() == dns.rcode.NOERROR and m.answer[0].ttl == FAST.stale_answer_ttl
    assert r.stats.stale_answers == 1
    clock.advance(FAST.stale_window + 10)
    m = dns.message.from_wire(run(r.resolve_message(q)))
    assert m.rcode() == dns.rcode.SERVFAIL


def test_popular_entry_is_prefetched_near_expiry(world, run):
    net, fs, port = world
    r = make(port)
    r.clock = clock = FakeClock()
    q = dns.message.make_query("www.example.com", "A").to_wire()
    run(r.resolve_message(q))
    run(r.resolve_message(q))
    clock.advance(280)                       # in the last 10 % of 300 s
    before = r.stats.upstream_queries

    async def hit_then_wait():
        out = r.resolve_cached(q)
        assert r.resolutions                   # the refresh is under way
        for _ in range(200):                 # and ends on its own
            if not r.resolutions:
                break
            await asyncio.sleep(0.01)
        return out

    assert run(hit_then_wait()) is not None
    assert r.stats.prefetches == 1 and r.stats.upstream_queries > before
    key = resolver.cache.answer.parse_query(q)[0]
    assert r.cache.messages.table[key].expires == clock() + 300
    run(r.close())


def test_hostile_queries_never_crash(world, run):
    net, fs, port = world
    r = make(port)
    import random
    rnd = random.Random(5)
    base = dns.message.make_query("www.example.com", "A").to_wire()

    async def batch():
        for _ in range(300):
            b = bytearray(base)
            for _ in range(rnd.randint(1, 4)):
                b[rnd.randrange(len(b))] = rnd.randrange(256)
            b = bytes(b[:rnd.randint(12, len(b))])
            try:
                out = await r.resolve_message(b)
            except resolver.wire.codec.WireError:
                continue
            assert out[:2] == b[:2]

    run(batch(), timeout=60)


def test_a_cancelled_caller_does_not_cancel_the_shared_resolution(world, run):
    net, fs, port = world
    r = make(port)

    async def go():
        first = asyncio.ensure_future(r.resolve("www.example.com"))
        second = asyncio.ensure_future(r.resolve("www.example.com"))
        await asyncio.sleep(0)
        first.cancel()
        ans = await second
        with pytest.raises(asyncio.CancelledError):
            await first
        return ans

    assert run(go())[0].address == "192.0.2.1"
    assert r.stats.coalesced == 1 and not r.resolutions


def test_root_hints_shipped_file_custom_file_and_errors(tmp_path):
    from resolver.hints import parse_root_hints

    shipped = parse_root_hints(resolver.hints.ROOT_HINTS_FILE)
    assert len({n.lower() for n, _ in shipped}) == 13
    assert ("198.41.0.4" in {a for _, a in shipped}) and any(":" in a for _, a in shipped)
    r = resolver.Resolver()
    assert len(r.hints) == len(shipped)
    f = tmp_path / "hints"
    f.write_text("; lab\n.  3600 IN NS a.lab.\na.lab. 3600 IN A 127.0.0.9\n"
                 "stray.lab. 3600 A 127.0.0.10\n")
    assert parse_root_hints(str(f)) == [(b"\x01a\x03lab\x00", "127.0.0.9")]
    f.write_text("example. 3600 NS a.lab.\n")
    with pytest.raises(ValueError):
        parse_root_hints(f)
    f.write_text("garbage line\n")
    with pytest.raises(ValueError):
        parse_root_hints(f)
    with pytest.raises(ValueError):
        resolver.Resolver([])
    # Every hint must be a numeric address: the resolver never looks a server's name up
    # through the host's resolver.
    f.write_text(".  3600 IN NS a.lab.\na.lab. 3600 IN A localhost\n")
    with pytest.raises(ValueError, match="'localhost', which is not a numeric"):
        parse_root_hints(f)
    with pytest.raises(ValueError, match="a.lab. has 'a.lab'"):
        resolver.Resolver([("a.lab.", "a.lab")])
    assert parse_root_hints([("a.lab.", "::1")]) == [(b"\x01a\x03lab\x00", "::1")]


def test_resolve_serves_stale_answers_too(world, run):
    net, fs, port = world
    r = make(port)
    r.clock = clock = FakeClock()
    run(r.resolve("www.example.com"))
    clock.advance(400)
    for a in list(net.served):
        net.faults[a] = "refused"
    r.cache.rrsets.lru.clear()
    ans = run(r.resolve("www.example.com"))
    assert ans[0].address == "192.0.2.1" and ans.rrset.ttl == FAST.stale_answer_ttl
    assert r.stats.stale_answers == 1


def test_no_descriptor_leaks_across_timeouts_tcp_and_cancellation(world, run):
    def open_fds() -> set[str]:
        return set(os.listdir("/proc/self/fd"))

    net, fs, port = world
    net.faults[f"{P}.0.1"] = "timeout"
    net.faults[f"{P}.3.1"] = net.faults[f"{P}.3.2"] = "tc"
    r = make(port)
    run(r.resolve("www.example.com"))            # warm up lazily created loop resources
    before = open_fds()

    async def go():
        for name in ("mail.example.com", "txt.example.com", "alias.example.com"):
            try:
                await r.resolve(name, "MX")
            except dns.resolver.NoAnswer:
                pass
        t = asyncio.ensure_future(r.resolve("www.other.net"))
        await asyncio.sleep(0.01)
        t.cancel()
        await r.close()

    run(go())
    assert open_fds() - before == set()


# ---- dnspython's resolver API ------------------------------------------------------------

def test_raise_on_no_answer_false_gives_an_answer_without_rrset(world, run):
    net, fs, port = world
    r = make(port)
    for _ in range(2):                                   # a miss, then a hit
        ans = run(r.resolve("txt.example.com", "AAAA", raise_on_no_answer=False))
        assert ans.rrset is None and ans.response.rcode() == dns.rcode.NOERROR
        assert ans.qname == dns.name.from_text("txt.example.com.")
    with pytest.raises(dns.resolver.NoAnswer):
        run(r.resolve("txt.example.com", "AAAA"))


def test_lifetime_bounds_the_call(world, run):
    net, fs, port = world
    r = make(port, limits=Limits(exploration=0.0, initial_rto=0.1, max_query_time=30))
    for a in list(net.served):
        net.faults[a] = "timeout"
    with pytest.raises(dns.resolver.LifetimeTimeout) as ei:
        run(r.resolve("www.example.com", lifetime=0.2))
    assert ei.value.kwargs["timeout"] == 0.2
    assert not r.resolutions                               # nobody else waited: it stopped


def test_search_domains_and_ndots_as_dnspython(world, run):
    net, fs, port = world
    r = make(port)
    with pytest.raises(dns.resolver.NXDOMAIN):
        run(r.resolve("www"))                            # no search by default: "www."
    r.search = [dns.name.from_text("example.com.")]
    ans = run(r.resolve("www", search=True))
    assert ans.qname == dns.name.from_text("www.example.com.")
    r.use_search_by_default = True
    assert run(r.resolve("alias")).canonical_name == dns.name.from_text("www.example.com.")
    # Two labels > ndots (1): the name as it is first ("www.example." does not exist),
    # then with the search domain.
    r.search = [dns.name.from_text("com.")]
    assert run(r.resolve("www.example")).qname == dns.name.from_text("www.example.com.")
    with pytest.raises(dns.resolver.NXDOMAIN) as ei:
        run(r.resolve("nope"))
    assert [str(n) for n in ei.value.qnames()] == ["nope.com.", "nope."]
    assert run(r.resolve("www.example.com.")).qname == dns.name.from_text("www.example.com.")


def test_canonical_name_follows_the_chain_even_to_nxdomain(world, run):
    net, fs, port = world
    r = make(port)
    assert run(r.canonical_name("alias.example.com")) == dns.name.from_text("www.example.com.")
    assert run(r.canonical_name("www.example.com")) == dns.name.from_text("www.example.com.")
    assert run(r.canonical_name("nope.example.com")) == dns.name.from_text("nope.example.com.")
    assert run(r.canonical_name("txt.example.com")) == dns.name.from_text("txt.example.com.")


def test_resolve_name_gives_host_answers(world, run):
    net, fs, port = world
    r = make(port)
    both = run(r.resolve_name("www.example.com"))
    assert set(both.addresses()) == {"192.0.2.1", "2001:db8::1"}
    v4 = run(r.resolve_name("alias.example.com", socket.AF_INET))
    assert list(v4.addresses()) == ["192.0.2.1"]
    v6 = run(r.resolve_name("www.example.com", family=socket.AF_INET6))
    assert list(v6.addresses()) == ["2001:db8::1"]
    with pytest.raises(dns.resolver.NoAnswer):
        run(r.resolve_name("txt.example.com"))
    empty = run(r.resolve_name("txt.example.com", raise_on_no_answer=False))
    assert list(empty.addresses()) == [] and len(empty) == 2     # both answers, empty
    # as dnspython: a type or class given is passed over (A and AAAA, in IN)
    given = run(r.resolve_name("www.example.com", rdtype="MX", rdclass="CH"))
    assert set(given.addresses()) == {"192.0.2.1", "2001:db8::1"}


def test_resolve_address_asks_the_reverse_name_for_ptr(world, run):
    net, fs, port = world
    r = make(port)
    with pytest.raises(dns.resolver.NXDOMAIN) as ei:      # the fake root has no arpa zone
        run(r.resolve_address("192.0.2.1"))
    assert [str(n) for n in ei.value.qnames()] == ["1.2.0.192.in-addr.arpa."]
    with pytest.raises(dns.resolver.NXDOMAIN) as ei:
        run(r.resolve_address("2001:db8::1"))
    assert str(ei.value.qnames()[0]).endswith(".8.b.d.0.1.0.0.2.ip6.arpa.")


def test_tcp_asks_every_upstream_query_over_tcp(world, run):
    net, fs, port = world
    r = make(port)
    ans = run(r.resolve("alias.example.com", tcp=True))
    assert [rd.address for rd in ans] == ["192.0.2.1"]
    assert r.stats.upstream_tcp == r.stats.upstream_queries >= 3
    with pytest.raises(ValueError):
        run(r.resolve("www.example.com", source_port=70000))


# ---- forwarding ------------------------------------------------------------------------------

def test_forward_mode_asks_the_forwarders_with_rd_and_caches(world, run):
    net, fs, port = world
    seen = []
    answer = net.answer

    def spy(addr, wire, tcp=False):
        m = dns.message.from_wire(wire)
        seen.append((addr, bool(m.flags & dns.flags.RD)))
        return answer(addr, wire, tcp)
    net.answer = spy
    dead, good = f"{P}.4.1", f"{P}.3.1"       # other.net's server knows nothing of example.com
    net.faults[dead] = "timeout"
    r = resolver.Resolver(forward=[dead, good], port=port, limits=FAST)
    assert r.dnssec is None
    ans = run(r.resolve("www.example.com"))
    assert [rd.address for rd in ans] == ["192.0.2.1"]
    assert seen and all(rd for _, rd in seen)          # every query asked for recursion
    assert {a for a, _ in seen} <= {dead, good}        # and only of the forwarders
    asked = len(seen)
    run(r.resolve("www.example.com"))
    assert len(seen) == asked                          # from the cache
    with pytest.raises(dns.resolver.NXDOMAIN):
        run(r.resolve("nope.example.com"))
    q = dns.message.make_query("mail.example.com", "MX")
    out = dns.message.from_wire(run(r.resolve_message(q.to_wire())))
    assert out.answer and out.flags & dns.flags.RA


def test_forward_mode_gives_servfail_when_no_forwarder_answers(world, run):
    net, fs, port = world
    a, b = f"{P}.3.1", f"{P}.3.2"
    net.faults[a] = "servfail"
    net.faults[b] = "refused"
    r = resolver.Resolver(forward=[a, b], port=port, limits=FAST)
    with pytest.raises(dns.resolver.NoNameservers) as ei:
        run(r.resolve("www.example.com"))
    # each server asked once, named as dnspython names it
    assert str(ei.value).endswith(f": Server Do53:{a}@{port} answered SERVFAIL; "
                                  f"Server Do53:{b}@{port} answered REFUSED")


def test_forward_mode_checks_its_arguments(tmp_path):
    with pytest.raises(ValueError, match="numeric"):
        resolver.Resolver(forward=["dns.example"])
    with pytest.raises(ValueError, match="at least one"):
        resolver.Resolver(forward=[])
    with pytest.raises(ValueError, match="not supported"):
        resolver.Resolver(forward=["192.0.2.53"], trust_anchor=str(tmp_path / "k"))
    from resolver.hostconf import nameservers
    f = tmp_path / "resolv.conf"
    f.write_text("nameserver 192.0.2.53\nnameserver fe80::1%eth0\nnameserver bogus\n"
                 "# nameserver 192.0.2.99\n")
    assert nameservers(f) == ["192.0.2.53", "fe80::1"]
    assert resolver.Resolver(forward=nameservers(f)).forward == ["192.0.2.53", "fe80::1"]


def test_meta_qtypes_and_zone_transfers_get_an_rcode_and_no_upstream_query(world, run):
    net, fs, port = world
    r = make(port)
    for rdtype, rcode in [("AXFR", dns.rcode.REFUSED), ("IXFR", dns.rcode.REFUSED),
                          ("OPT", dns.rcode.FORMERR), ("TSIG", dns.rcode.FORMERR),
                          ("TKEY", dns.rcode.FORMERR), ("MAILA", dns.rcode.FORMERR),
                          (200, dns.rcode.FORMERR)]:
        q = dns.message.make_query("www.example.com", rdtype)
        m = dns.message.from_wire(run(r.resolve_message(q.to_wire())))
        assert m.rcode() == rcode and m.id == q.id, rdtype
    assert r.stats.upstream_queries == 0
    q = dns.message.make_query("www.example.com", "ANY")       # ANY is resolved
    assert dns.message.from_wire(run(r.resolve_message(q.to_wire()))).rcode() == 0


def test_a_compression_pointer_in_the_question_is_formerr(world, run):
    net, fs, port = world
    r = make(port)
    q = dns.message.make_query("www.example.com", "A").to_wire()
    # "www" then a pointer back to "example.com" in an OPT-less copy: a question that does
    # not stand on its own (the pointer aims inside the header, still a valid offset).
    pointed = q[:12] + b"\x03www\xc0\x0c" + q[-4:]
    m = dns.message.from_wire(run(r.resolve_message(pointed)), ignore_trailing=True)
    assert m.rcode() == dns.rcode.FORMERR and not m.question
    assert r.stats.upstream_queries == 0
