"""resolver.upstream.udp.UDPQuery (one upstream UDP query, in C) on every loop kind: what it
accepts, drops, times out on and leaves behind."""
from __future__ import annotations

import asyncio
import errno
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from looptools import open_fds

import corenet

from resolver.upstream import errors, udp
from resolver.limits import DEFAULT
from resolver.upstream.errors import UpstreamFailure, UpstreamTimeout, UpstreamUnreachable
from resolver.wire.codec import build_query, from_text


class Counts:
    dropped_mismatched = 0
    dropped_malformed = 0
    upstream_queries = 0


QNAME = from_text("www.Example.com.")
QUESTION = QNAME + struct.pack("!HH", 1, 1)


def _reply(query: bytes, qid: int | None = None, question: bytes | None = None) -> bytes:
    """A minimal answer to ``query`` (header + its question), ID/question replaceable."""
    qid = (query[0] << 8 | query[1]) if qid is None else qid
    q = query[12:12 + len(QUESTION)] if question is None else question
    return struct.pack("!HHHHHH", qid, 0x8400, 1, 0, 0, 0) + q


@pytest.fixture
def server():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    try:
        yield s
    finally:
        s.close()


def _serve(loop, s, answers):
    """On the first query, send every datagram ``answers(query)`` returns."""
    def on_query():
        try:
            data, peer = s.recvfrom(4096)
        except BlockingIOError:
            return
        for d in answers(data):
            s.sendto(d, peer)
    loop.add_reader(s.fileno(), on_query)


def test_only_the_matching_well_formed_reply_is_accepted(loop, run, server):
    stats = Counts()
    _serve(loop, server, lambda q: [
        _reply(q, qid=(q[0] << 8 | q[1]) ^ 0x5555),               # wrong ID
        _reply(q, question=QUESTION.lower()),                      # question case changed
        _reply(q)[:4] + b"\x00\x01\x00\x01" + _reply(q)[8:],      # claims an answer it lacks
        _reply(q),                                                  # the real one
    ])

    async def go():
        wire = build_query(0x1234, QNAME, 1, 1, edns=False)
        q = udp.UDPQuery(asyncio.get_running_loop(), "127.0.0.1",
                               server.getsockname()[1], wire, 0x1234, QUESTION, 2.0, stats,
                               DEFAULT)
        try:
            return await q.fut
        finally:
            q.close()

    data, parsed = run(go())
    assert data[:2] == b"\x12\x34" and parsed.qname == QNAME
    assert stats.dropped_mismatched == 2 and stats.dropped_malformed == 1
    loop.remove_reader(server.fileno())


def test_silence_times_out_and_closing_leaves_no_descriptor(loop, run, server):
    before = open_fds()

    async def go():
        q = udp.UDPQuery(asyncio.get_running_loop(), "127.0.0.1",
                               server.getsockname()[1], b"\x00" * 12, 7, QUESTION, 0.05, None,
                               DEFAULT)
        try:
            await q.fut
        finally:
            q.close()
            q.close()              # idempotent

    with pytest.raises(UpstreamTimeout):
        run(go())
    assert open_fds() == before


async def _ask(addr: str, port: int):
    """One query, awaited: (reply wire, parsed reply)."""
    qid = udp.fresh_id()
    wire = build_query(qid, QNAME, 1, 1, edns=True, do=True)
    q = udp.UDPQuery(asyncio.get_running_loop(), addr, port, wire, qid, QUESTION, 5.0, None,
                     DEFAULT)
    try:
        return await q.fut
    finally:
        q.close()


def test_closed_port_is_a_failure_not_a_wait(loop, run):
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()                   # nothing listens there now: ICMP port unreachable

    async def go():
        return await _ask("127.0.0.1", port)

    with pytest.raises(UpstreamFailure, match="refused"):
        run(go())


@pytest.mark.parametrize("err", [errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL,
                                 errno.EAFNOSUPPORT])
def test_no_route_errors_are_unreachable_failures(err):
    exc = errors.failure("2001:db8::1", OSError(err, "x"))
    assert isinstance(exc, UpstreamUnreachable) and isinstance(exc, UpstreamFailure)
    assert str(exc).startswith("2001:db8::1: ")
    assert type(errors.failure("192.0.2.1", OSError(errno.ECONNREFUSED, "x"))) is \
        UpstreamFailure                 # the server said no: not this host's routing


def test_an_ipv6_server_is_asked_over_an_ipv6_socket(loop, run):
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(("::1", 0))
    except OSError:
        pytest.skip("no ::1 on this host")
    s.setblocking(False)
    _serve(loop, s, lambda q: [_reply(q)])

    async def go():
        return await _ask("::1", s.getsockname()[1])

    try:
        reply, parsed = run(go())
    finally:
        loop.remove_reader(s.fileno())
        s.close()
    assert parsed.qname == QNAME


def test_non_numeric_addresses_are_a_failure_of_that_server(loop, run, server):
    async def go():
        lp = asyncio.get_running_loop()
        port = server.getsockname()[1]
        with pytest.raises(UpstreamFailure, match="not a numeric IPv4 address: 'localhost'"):
            udp.UDPQuery(lp, "localhost", port, b"", 1, QUESTION, 1.0, None, DEFAULT)

    before = open_fds()
    run(go())
    assert open_fds() == before


def _called_back(loop, port: int, timeout: float, stats=None, wire=b"\x00" * 12, qid=7):
    """A UDPQuery with ``on_done`` (no future): awaits its one call, returns the query."""
    async def go():
        lp = asyncio.get_running_loop()
        done = lp.create_future()
        calls = []

        def on_done(q):
            calls.append(q)
            q.close()
            done.set_result(q)
        q = udp.UDPQuery(lp, "127.0.0.1", port, wire, qid, QUESTION, timeout, stats,
                               DEFAULT, on_done)
        assert q.fut is None
        got = await done
        await asyncio.sleep(timeout + 0.05)         # no second call (the timer is gone)
        assert calls == [q]
        return got
    return go()


def test_on_done_gets_the_reply_the_timeout_or_the_icmp_error(loop, run, server):
    before = open_fds()
    stats = Counts()
    _serve(loop, server, lambda q: [_reply(q, qid=0x4321), _reply(q)])
    wire = build_query(0x1234, QNAME, 1, 1, edns=False)
    q = run(_called_back(loop, server.getsockname()[1], 0.5, stats, wire, 0x1234))
    assert q.error is None and q.reply[:2] == b"\x12\x34" and q.parsed.qname == QNAME
    assert stats.dropped_mismatched == 1
    loop.remove_reader(server.fileno())

    q = run(_called_back(loop, server.getsockname()[1], 0.05))      # nobody answers now
    assert isinstance(q.error, UpstreamTimeout) and q.reply is None

    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    q = run(_called_back(loop, port, 0.3))
    assert isinstance(q.error, UpstreamFailure) and "refused" in str(q.error)
    assert open_fds() == before


def test_deferred_send_leaves_at_the_end_of_the_iteration(loop, loop_kind, run, server):
    """defer=True on corenet: the query is sent when the loop's iteration ends (all those a
    burst starts go together); other loops send at once. A send that fails then ends the
    query through on_done, and nothing is left open."""
    before = open_fds()
    port = server.getsockname()[1]
    wire = build_query(0x1234, QNAME, 1, 1, edns=False)

    async def go():
        calls = []
        q = udp.UDPQuery(loop, "127.0.0.1", port, wire, 0x1234, QUESTION, 0.3, Counts(),
                               DEFAULT, calls.append, True)
        try:
            sent_at_once = server.recv(4096) == wire
        except BlockingIOError:
            sent_at_once = False
        assert (q.sent_at > 0) == sent_at_once      # its RTT counts from the send
        await asyncio.sleep(0.01)
        if not sent_at_once:
            assert server.recv(4096) == wire
        assert q.sent_at > 0
        q.close()
        assert calls == []
        return sent_at_once

    assert run(go()) == (loop_kind == "asyncio")

    async def too_big():
        done = loop.create_future()
        q = udp.UDPQuery(loop, "127.0.0.1", port, b"\x12\x34" + b"\x00" * 70000, 0x1234,
                               QUESTION, 0.3, Counts(), DEFAULT, done.set_result, True)
        got = await asyncio.wait_for(done, 2)
        q.close()
        return got

    if loop_kind == "asyncio":
        with pytest.raises(UpstreamFailure):       # sent at once: fails at once
            run(too_big())
    else:
        q = run(too_big())
        assert isinstance(q.error, UpstreamFailure) and "too long" in str(q.error)
    assert open_fds() == before


def test_deferred_query_reads_its_reply_and_closes_before_sending(loop, loop_kind, run, server):
    """defer=True: the socket is watched only once the query has left (corenet), and still
    gets its reply; a query closed before the end of the iteration is never sent and leaves
    no descriptor (closing a socket the loop does not watch yet)."""
    before = open_fds()
    port = server.getsockname()[1]
    wire = build_query(0x4321, QNAME, 1, 1, edns=False)

    async def answered():
        done = loop.create_future()
        q = udp.UDPQuery(loop, "127.0.0.1", port, wire, 0x4321, QUESTION, 2.0, Counts(),
                               DEFAULT, done.set_result, True)
        try:
            for _ in range(200):                       # the query leaves at the iteration's end
                try:
                    data, peer = server.recvfrom(4096)
                    break
                except BlockingIOError:
                    await asyncio.sleep(0.005)
            else:
                raise AssertionError("the deferred query was never sent")
            server.sendto(_reply(data), peer)
            got = await asyncio.wait_for(done, 2)
        finally:
            q.close()
        return got

    q = run(answered())
    assert q.error is None and q.reply[:2] == b"\x43\x21" and q.parsed.qname == QNAME

    async def closed_at_once():
        calls = []
        q = udp.UDPQuery(loop, "127.0.0.1", port, wire, 0x4321, QUESTION, 2.0, Counts(),
                               DEFAULT, calls.append, True)
        q.close()
        await asyncio.sleep(0.02)
        with pytest.raises(BlockingIOError):
            server.recv(4096)
        return calls

    if loop_kind != "asyncio":                         # asyncio's loop sends at once
        assert run(closed_at_once()) == []
    assert open_fds() == before


def test_query_ids_are_fresh_and_spread():
    ids = [udp.fresh_id() for _ in range(2000)]        # several refills of 256
    assert all(0 <= i <= 0xFFFF for i in ids)
    assert len(set(ids)) > 1900                     # ~30 birthday collisions expected


@pytest.mark.parametrize("flags,edns,retry", [(b"\x81\x80", True, False),   # NOERROR
                                              (b"\x83\x80", False, True),   # TC
                                              (b"\x81\x81", True, True),    # FORMERR to EDNS
                                              (b"\x81\x81", False, False),  # FORMERR, no EDNS
                                              (b"\x81\x82", True, False)])  # SERVFAIL
def test_needs_retry_on_truncation_or_formerr_to_edns(flags, edns, retry):
    assert udp.needs_retry(b"\x12\x34" + flags + b"\x00" * 8, edns) is retry


_octet = st.one_of(st.integers(0, 300).map(str), st.text("0123456789", max_size=4))


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_octet, min_size=1, max_size=5).map(".".join),
                 st.text("0123456789. x+-", max_size=18)))
def test_an_ipv4_address_is_read_as_inet_pton_reads_it(text):
    """The query's own dotted-quad reader takes exactly the texts inet_pton(AF_INET)
    takes: four decimal octets up to 255, no leading zero, nothing else."""
    try:
        socket.inet_pton(socket.AF_INET, text)
        numeric = True
    except OSError:
        numeric = False
    lp = corenet.new_event_loop()
    try:
        # defer: the query is never sent (the loop does not run), so nothing leaves the host
        q = udp.UDPQuery(lp, text, 53, b"\x00" * 12, 1, QUESTION, 5.0, None, DEFAULT,
                         on_done=lambda q: None, defer=True)
    except UpstreamFailure as exc:
        assert numeric == ("not a numeric" not in str(exc)), (text, exc)
    else:
        assert numeric, text
        q.close()
    finally:
        lp.close()


def test_mixed_case_draws_each_letter_s_case_and_leaves_the_rest():
    name = from_text("a-1.Example.COM.")
    drawn = {udp.mixed_case(name) for _ in range(400)}
    assert {d.lower() for d in drawn} == {name.lower()}
    # 11 letters: 2048 forms, of which 400 draws show most
    assert len(drawn) > 300
    for d in drawn:                                # the labels' lengths and "-1" as they were
        assert [d[i] for i in (0, 2, 3, 4, 12, 16)] == [name[i] for i in (0, 2, 3, 4, 12, 16)]


@pytest.mark.parametrize("echo", ["exact", "other case", "lower case"])
def test_a_query_in_random_case_takes_only_its_own_case_back(loop, run, server, echo):
    """With ``asked`` (use-caps-for-id) the query's question is in random case: a reply
    echoing it exactly is taken with the question put back as asked, and one whose question
    differs from it only in case ends the query with CapsMismatch (not a drop and a wait)."""
    stats = Counts()
    mixed = udp.mixed_case(QNAME)
    while mixed in (QNAME, QNAME.lower()):
        mixed = udp.mixed_case(QNAME)
    sent_question = mixed + QUESTION[-4:]
    other = {"exact": sent_question, "other case": sent_question.swapcase(),
             "lower case": QUESTION.lower()}[echo]
    _serve(loop, server, lambda q: [_reply(q, question=other)])

    async def go():
        wire = build_query(0x1234, mixed, 1, 1, edns=False)
        q = udp.UDPQuery(asyncio.get_running_loop(), "127.0.0.1", server.getsockname()[1],
                         wire, 0x1234, sent_question, 2.0, stats, DEFAULT)
        q.asked = QUESTION
        try:
            return await q.fut
        finally:
            q.close()

    if echo == "exact":
        reply, _ = run(go(), timeout=5)
        assert reply[12:12 + len(QUESTION)] == QUESTION          # as the caller asked
    else:
        with pytest.raises(errors.CapsMismatch):
            run(go(), timeout=5)
    assert stats.dropped_mismatched == 0
