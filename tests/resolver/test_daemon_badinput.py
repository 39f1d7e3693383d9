"""Bad input from clients: short packets, responses as queries, QDCOUNT != 1, floods,
random bytes (hypothesis, through the socket and on the C parser directly), and clients
outside --allow. Each is counted and answered with the right rcode or dropped; the daemon
keeps serving everyone else and never crashes."""
from __future__ import annotations

import os
import random
import socket
import time

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon_proc import Daemon, frame, read_frame
from resolver.daemon import udp_listener
from resolver.response import error, query_error
from resolver.cache.answer import parse_query
from resolver.wire.codec import cache_key


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("badinput"), lab).start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def test_short_packets_and_responses_are_dropped_and_counted(daemon):
    before = daemon.stats()["dropped"]
    for data in (b"", b"\x00", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00"):
        assert daemon.raw_udp(data, timeout=0.3) is None
    response = dns.message.make_response(dns.message.make_query("www.example.com.", "A"))
    assert daemon.raw_udp(response.to_wire(), timeout=0.3) is None
    after = daemon.stats()["dropped"]
    assert after.get("short", 0) - before.get("short", 0) >= 2      # b"" may not arrive
    assert after.get("response", 0) - before.get("response", 0) == 1
    assert daemon.ask("www.example.com.").answer


def test_qdcount_zero_and_two_get_formerr(daemon):
    q = dns.message.make_query("www.example.com.", "A").to_wire()
    for qd in (0, 2):
        wire = q[:4] + bytes([0, qd]) + q[6:]
        r = daemon.raw_udp(wire)
        assert r is not None and r[:2] == q[:2] and r[3] & 0x0F == dns.rcode.FORMERR
    with daemon.tcp_conn() as s:
        s.sendall(frame(q[:4] + b"\x00\x02" + q[6:]))
        r = read_frame(s)
        assert r is not None and r[3] & 0x0F == dns.rcode.FORMERR


def test_flood_from_one_address_leaves_the_daemon_serving(daemon):
    """Thousands of datagrams of every kind from one socket, as fast as it can send:
    whatever is dropped, the daemon stays up and answers a normal client afterwards."""
    rng = random.Random(5)
    good = dns.message.make_query("www.example.com.", "A").to_wire()
    payloads = [good, b"\x00" * 5, os.urandom(40), good[:20],
                dns.message.make_query("nope.example.com.", "A").to_wire()]
    payloads += [dns.message.make_query(f"f{i}.flood.example.com.", "A").to_wire()
                 for i in range(300)]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 2.0
        while sent < 5000 and time.monotonic() < deadline:
            try:
                s.sendto(rng.choice(payloads), ("127.0.0.1", daemon.port))
                sent += 1
            except BlockingIOError:
                time.sleep(0.001)
    assert sent > 500
    assert daemon.alive()
    # Another client (another loopback address) is served at once (within a client's
    # usual retries: a datagram may meet the flood's backlog) ...
    q = dns.message.make_query("www.example.net.", "A")
    for attempt in range(3):
        try:
            r = dns.query.udp(q, "127.0.0.1", port=daemon.port, timeout=3, source="127.0.0.99")
            break
        except (dns.exception.Timeout, BlockingIOError):
            assert attempt < 2, "another client was not served during the flood's backlog"
    assert r.answer and r.answer[0][0].to_text() == "198.51.100.1"
    # ... and the flooding address itself once its resolutions in flight are done.
    for attempt in range(10):
        try:
            r = daemon.ask("www.example.org.", timeout=1.0)
            break
        except dns.exception.Timeout:
            continue
    assert r.rcode() == dns.rcode.NXDOMAIN
    stats = daemon.stats()
    assert stats["engine"]["client_queries"] > 100
    assert stats["dropped"].get("overload", 0) + stats["dropped"].get("short", 0) > 0


def _valid_query():
    label = st.text(alphabet="abcXYZ019-_", min_size=1, max_size=12)
    return st.builds(
        lambda labels, rdtype, edns, payload, do, rd, cd, qid: _make(labels, rdtype, edns,
                                                                    payload, do, rd, cd, qid),
        st.lists(label, min_size=1, max_size=5), st.sampled_from(["A", "AAAA", "TXT", "MX", "NS"]),
        st.booleans(), st.integers(0, 65535), st.booleans(), st.booleans(), st.booleans(),
        st.integers(0, 65535))


def _make(labels, rdtype, edns, payload, do, rd, cd, qid) -> bytes:
    q = dns.message.make_query(dns.name.from_text(".".join(labels) + "."), rdtype,
                               use_edns=0 if edns else False, payload=payload,
                               want_dnssec=do and edns)
    q.id = qid
    if not rd:
        q.flags &= ~dns.flags.RD
    if cd:
        q.flags |= dns.flags.CD
    return q.to_wire()


@settings(max_examples=400, deadline=None)
@given(st.one_of(_valid_query(), st.binary(max_size=300),
                 _valid_query().flatmap(lambda q: st.integers(0, len(q)).map(lambda n: q[:n])),
                 _valid_query().flatmap(lambda q: st.tuples(st.integers(0, len(q) - 1),
                                                            st.integers(0, 255)).map(
                     lambda t: q[:t[0]] + bytes([t[1]]) + q[t[0] + 1:]))))
def test_the_hit_paths_key_parser_never_misreads(data):
    """Whatever the bytes, the C key parser either hands the query to the engine (None) or
    reads exactly the question dnspython reads; it never reads past the packet."""
    got = parse_query(data)
    if got is not None:
        _check_key(data, *got)


@settings(max_examples=200, deadline=None)
@given(_valid_query())
def test_the_hit_paths_key_parser_takes_every_plain_query(data):
    """Every well-formed one-question QUERY (with or without EDNS, DO, CD, RD) is taken by
    the hit path, with the key of its question, and its UDP limit is its EDNS size."""
    got = parse_query(data)
    assert got is not None, data
    _check_key(data, *got)
    m = dns.message.from_wire(data)
    assert udp_listener.udp_limit(data) == (max(512, m.payload) if m.edns >= 0 else 512)


def _check_key(data: bytes, key: bytes, qend: int) -> None:
    m = dns.message.from_wire(data)
    q = m.question[0]
    variant = ((m.edns >= 0) | (bool(m.ednsflags & dns.flags.DO) << 1)
               | (bool(m.flags & dns.flags.CD) << 2))
    assert key == cache_key(q.name.to_wire().lower(), q.rdtype, q.rdclass, variant)
    assert qend == 12 + len(q.name.to_wire()) + 4


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=12, max_size=3000), st.integers(0, 4096))
def test_truncate_and_error_response_never_grow_past_the_limit(data, limit):
    out = udp_listener.truncate(data, limit)
    if len(data) <= limit:
        assert out is data
    else:
        assert out[2] & 0x02 and out[:2] == data[:2]
        assert out[6:10] == b"\0\0\0\0"
    err = error(data, 2)
    assert err[:2] == data[:2] and err[2] & 0x80 and err[3] & 0x0F == 2


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(min_size=12, max_size=600),
                 _valid_query().flatmap(lambda q: st.tuples(st.integers(0, len(q) - 1),
                                                            st.integers(0, 255)).map(
                     lambda t: q[:t[0]] + bytes([t[1]]) + q[t[0] + 1:]))),
       st.sampled_from([1, 4, 5]), st.booleans(), st.booleans())
def test_a_rejected_query_s_answer_repeats_nothing_but_its_question(data, rcode, question, opt):
    out = query_error(data, rcode, question, opt)
    # the id, QR set, opcode, RD and CD copied, RA clear, the rcode
    assert out[:2] == data[:2] and out[2] == 0x80 | (data[2] & 0x79)
    assert out[3] == (data[3] & 0x10) | rcode
    assert out[6:10] == bytes(4)
    if len(out) == 12:
        assert out[4:] == bytes(8)
        return
    assert question and out[4:6] == b"\0\1"
    m = dns.message.from_wire(out)              # a message that stands on its own
    qlen = len(m.question[0].name.to_wire()) + 4
    assert out[12:12 + qlen] == data[12:12 + qlen]
    assert len(out) == 12 + qlen + (11 if out[11] else 0)
    if out[11]:
        assert opt and m.edns == 0 and not m.options and data[10:12] == b"\0\1"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=200),
                 _valid_query().flatmap(lambda q: st.tuples(st.integers(0, len(q) - 1),
                                                            st.integers(0, 255)).map(
                     lambda t: q[:t[0]] + bytes([t[1]]) + q[t[0] + 1:]))))
def test_fuzzed_datagrams_get_a_matching_reply_or_none(daemon, data):
    r = daemon.raw_udp(data, timeout=0.05)
    if r is not None:
        assert len(data) >= 12 and not data[2] & 0x80, "answered a short packet or a response"
        assert r[:2] == data[:2] and r[2] & 0x80


def test_daemon_survived_the_fuzzing(daemon):
    assert daemon.alive()
    assert daemon.ask("www.example.com.").answer


# ---- the ACL ---------------------------------------------------------------------------------
def test_clients_outside_allow_get_refused_and_no_data(lab, tmp_path):
    d = Daemon(tmp_path, lab, "--allow", "10.0.0.0/8", "--allow", "::1/128").start()
    try:
        d.ask("www.example.com.")                  # would be cached if it were resolved
        for tcp in (False, True):
            r = d.ask("www.example.com.", tcp=tcp)
            assert r.rcode() == dns.rcode.REFUSED and not r.answer and not r.authority
        stats = d.stats()
        assert stats["refused_acl"] >= 3
        assert stats["engine"]["upstream_queries"] == 0, "nothing resolved for them"
    finally:
        assert d.stop() == 0
