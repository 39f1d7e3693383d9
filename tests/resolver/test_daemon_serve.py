"""corenet-resolver serve, through real sockets on loopback, resolving from the NSD lab:
every lab case over UDP and TCP, and a recursive server's answer semantics (RA, RD clear, case
and EDNS echoed, FORMERR, NOTIMP, truncation, TCP pipelining, caps and timeouts)."""
from __future__ import annotations

import socket
import struct
import time

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from daemon_proc import Daemon, frame, read_frame
from dnslab import FAST_CASES
from dnslab.check import check_response, query


@pytest.fixture(scope="module")
def daemon(lab, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("daemon"), lab).start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


@pytest.mark.parametrize("case", FAST_CASES, ids=lambda c: c.id)
def test_every_lab_case_over_udp_then_tcp(daemon, case):
    q = query(case)
    r = daemon.ask(q)
    if r.flags & dns.flags.TC:
        assert not r.answer, "a truncated answer carries no records"
        r = daemon.ask(q, tcp=True)
    check_response(case, r, q)
    q2 = query(case)
    check_response(case, daemon.ask(q2, tcp=True), q2)


def test_question_case_id_ra_and_edns_echoed(daemon):
    daemon.ask("www.example.com.")      # cached now: the C path answers what follows
    for edns in (False, True):
        q = dns.message.make_query("wWw.ExAmPlE.CoM.", "A", use_edns=0 if edns else False)
        r = daemon.ask(q)
        assert r.id == q.id
        assert r.question[0].name.labels == q.question[0].name.labels
        assert r.flags & dns.flags.RA and r.flags & dns.flags.RD
        assert (r.edns >= 0) == edns
        assert {x.to_text() for x in r.answer[0]} == {"192.0.2.1", "192.0.2.11"}


def test_rd_clear_is_refused_unless_the_client_may_snoop(daemon, lab, tmp_path):
    """A query with RD clear reads the cache (what other clients asked): REFUSED, over UDP
    and TCP, unless the client is in allow-snoop; then it is answered from the cache only."""
    daemon.ask("www.example.net.")
    for tcp in (False, True):
        probe = daemon.ask("www.example.net.", rd=False, tcp=tcp)
        assert probe.rcode() == dns.rcode.REFUSED and not probe.answer
    d = Daemon(tmp_path, lab, "--allow-snoop", "127.0.0.0/8").start()
    try:
        d.ask("www.example.net.")
        for tcp in (False, True):
            cached = d.ask("www.example.net.", rd=False, tcp=tcp)
            assert cached.rcode() == dns.rcode.NOERROR and cached.answer
            assert not cached.flags & dns.flags.RD
        before = d.stats()["engine"]["upstream_queries"]
        uncached = d.ask("h321.bulk.net.", rd=False)
        assert uncached.rcode() == dns.rcode.REFUSED and not uncached.answer
        assert d.stats()["engine"]["upstream_queries"] == before, "RD clear must not recurse"
    finally:
        d.stop()


def test_formerr_and_notimp(daemon):
    q = dns.message.make_query("www.example.com.", "A")
    wire = bytearray(q.to_wire())
    wire[5] = 2                                           # QDCOUNT 2, one question present
    r = daemon.raw_udp(bytes(wire))
    assert r is not None and r[:2] == wire[:2] and r[2] & 0x80
    assert r[3] & 0x0F == dns.rcode.FORMERR
    garbage = bytes(q.to_wire()[:12]) + b"\x3f" + b"a" * 5     # label runs past the end
    r = daemon.raw_udp(garbage)
    assert r is not None and r[3] & 0x0F == dns.rcode.FORMERR
    q = dns.message.make_query("www.example.com.", "A")
    q.set_opcode(dns.opcode.STATUS)
    r = dns.message.from_wire(daemon.raw_udp(q.to_wire()))
    assert r.rcode() == dns.rcode.NOTIMP and r.id == q.id


def test_truncation_to_512_without_edns_and_to_the_edns_size(daemon):
    plain = daemon.ask("big.example.com.", "TXT")           # miss path (engine) first
    assert plain.flags & dns.flags.TC and not plain.answer
    again = daemon.ask("big.example.com.", "TXT")            # then the C hit path
    assert again.flags & dns.flags.TC and not again.answer and again.id
    q = dns.message.make_query("big.example.com.", "TXT", use_edns=0, payload=4096)
    capped = daemon.ask(q)                   # max-udp-size (1232) wins over the client's 4096
    assert capped.flags & dns.flags.TC and not capped.answer and capped.edns == 0
    small = dns.message.make_query("big.example.com.", "TXT", use_edns=0, payload=1232)
    r = daemon.ask(small)
    assert r.flags & dns.flags.TC and r.edns == 0, "EDNS kept in a truncated answer"
    assert len(daemon.ask("big.example.com.", "TXT", tcp=True).answer[0]) == 40
    assert daemon.stats()["truncated"] >= 3


def test_max_udp_size_lets_larger_udp_answers_through_when_raised(lab, tmp_path):
    d = Daemon(tmp_path, lab, "--max-udp-size", "4096").start()
    try:
        q = dns.message.make_query("big.example.com.", "TXT", use_edns=0, payload=4096)
        for _ in range(2):                                   # miss, then the C hit path
            full = d.ask(q)
            assert not full.flags & dns.flags.TC and len(full.answer[0]) == 40
            assert full.edns == 0
    finally:
        d.stop()


def test_tcp_pipelined_queries_answered_out_of_order(daemon):
    daemon.ask("www.example.com.")
    slow = dns.message.make_query("h400.bulk.net.", "A")      # a miss: needs the lab
    fast = dns.message.make_query("www.example.com.", "A")    # a hit: answered at once
    with daemon.tcp_conn() as s:
        s.sendall(frame(slow.to_wire()) + frame(fast.to_wire()))
        first = dns.message.from_wire(read_frame(s))
        second = dns.message.from_wire(read_frame(s))
    assert (first.id, second.id) == (fast.id, slow.id)
    assert second.answer[0][0].to_text() == "10.1.1.144"


def test_many_pipelined_misses_on_one_connection_all_answered(daemon):
    qs = [dns.message.make_query(f"h{i:03d}.bulk.net.", "A", id=i) for i in range(100, 160)]
    with daemon.tcp_conn(timeout=15) as s:      # distinct ids: random ones can collide
        s.sendall(b"".join(frame(q.to_wire()) for q in qs))
        got = {}
        for _ in qs:
            r = dns.message.from_wire(read_frame(s))
            got[r.id] = r
    assert len(got) == len(qs)
    for i, q in zip(range(100, 160), qs):
        assert got[q.id].question == q.question
        assert got[q.id].answer[0][0].to_text() == f"10.1.{i // 256}.{i % 256}"


def test_udp_queries_from_many_sockets_while_tcp_connections_open(daemon):
    conns = [daemon.tcp_conn() for _ in range(5)]
    try:
        for i in range(20):
            r = daemon.ask(f"h{i:03d}.bulk.net.")
            assert r.answer[0][0].to_text() == f"10.1.0.{i}"
        for c in conns:
            q = dns.message.make_query("www.example.com.", "A")
            c.sendall(frame(q.to_wire()))
            assert dns.message.from_wire(read_frame(c)).id == q.id
    finally:
        for c in conns:
            c.close()


def test_metrics_http_reports_what_happened(daemon):
    daemon.ask("www.example.com.")      # cached from here on, whatever ran before
    before = daemon.stats()
    for _ in range(3):
        daemon.ask("www.example.com.")
    daemon.ask("www.example.com.", tcp=True)
    text = daemon.metrics()
    after = daemon.stats()
    assert after["engine"]["cache_hits"] >= before["engine"]["cache_hits"] + 4
    for name in ("corenet_resolver_queries_total{transport=\"udp\",rcode=\"NOERROR\"}",
                 "corenet_resolver_queries_total{transport=\"tcp\",rcode=\"NOERROR\"}",
                 "corenet_resolver_cache_hits_total", "corenet_resolver_cache_misses_total",
                 "corenet_resolver_cache_bytes", "corenet_resolver_cache_evictions_total",
                 "corenet_resolver_upstream_queries_total",
                 "corenet_resolver_upstream_joined_total", "corenet_resolver_coalesced_total",
                 "corenet_resolver_upstream_skipped_down_total",
                 "corenet_resolver_zone_ratelimited_total",
                 "corenet_resolver_upstream_timeouts_total",
                 "corenet_resolver_answer_latency_seconds_bucket{le=\"+Inf\"}",
                 "corenet_resolver_dropped_total", "corenet_resolver_query_types_total{type=\"A\"}",
                 "corenet_resolver_root_primings_total{outcome=\"failed\"}"):
        assert name in text, name
    primed = next(x for x in text.splitlines()
                  if x.startswith('corenet_resolver_root_primings_total{outcome="primed"}'))
    assert int(primed.split()[-1]) >= 1       # the daemon's first miss primed the root
    line = next(x for x in text.splitlines()
                if x.startswith('corenet_resolver_queries_total{transport="udp",rcode="NOERROR"}'))
    assert int(line.split()[-1]) >= 3
    with socket.create_connection(("127.0.0.1", daemon.metrics_port), timeout=5) as s:
        s.sendall(b"GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n")
        assert b"404" in s.recv(1000).split(b"\r\n")[0]


# ---- TCP limits: with a daemon of their own ------------------------------------------------
@pytest.fixture(scope="module")
def tight(lab, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("tight"), lab, "--tcp-idle-timeout", "0.5",
               "--tcp-max-connections", "3", "--tcp-max-inflight", "2").start()
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def _closed_by_peer(s: socket.socket, within: float = 5.0) -> bool:
    s.settimeout(within)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                return True
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def test_idle_and_slow_loris_connections_are_closed(tight):
    idle = tight.tcp_conn()
    loris = tight.tcp_conn()
    q = frame(dns.message.make_query("www.example.com.", "A").to_wire())
    try:
        loris_closed = False
        for b in q[:12]:                  # a frame trickled byte by byte, never finished
            try:
                loris.sendall(bytes([b]))
            except (BrokenPipeError, ConnectionResetError):
                loris_closed = True       # closed while trickling: what we want
                break
            time.sleep(0.15)
        assert _closed_by_peer(idle)
        assert loris_closed or _closed_by_peer(loris)
    finally:
        idle.close()
        loris.close()
    assert tight.stats()["tcp"]["idle_closed"] >= 2
    assert tight.ask("www.example.com.", tcp=True).answer     # and it keeps serving


def test_connection_cap_sheds_the_oldest_idle_connection(tight):
    held = [tight.tcp_conn() for _ in range(3)]
    try:
        q = dns.message.make_query("www.example.com.", "A")
        for s in held:                      # make sure all three are accepted and counted
            s.sendall(frame(q.to_wire()))
            assert read_frame(s) is not None
        before = tight.stats()["tcp"]["shed_idle"]
        extra = tight.tcp_conn()            # at the cap: the oldest idle one makes room
        try:
            extra.sendall(frame(q.to_wire()))
            assert read_frame(extra) is not None
            assert _closed_by_peer(held[0], 3.0)
        finally:
            extra.close()
        assert tight.stats()["tcp"]["shed_idle"] == before + 1
    finally:
        for s in held:
            s.close()


def test_inflight_cap_per_connection_still_answers_every_query(tight):
    qs = [dns.message.make_query(f"h{i:03d}.bulk.net.", "A") for i in range(200, 220)]
    with tight.tcp_conn(timeout=15) as s:
        s.sendall(b"".join(frame(q.to_wire()) for q in qs))
        ids = {dns.message.from_wire(read_frame(s)).id for _ in qs}
    assert ids == {q.id for q in qs}


def test_oversized_tcp_frame_closes_that_connection_only(tight):
    with tight.tcp_conn() as s:
        s.sendall(struct.pack("!H", 60000) + b"\0" * 100)
        assert _closed_by_peer(s)
    assert tight.stats()["dropped"].get("tcp_oversize", 0) >= 1
    assert tight.ask("www.example.com.").answer


def test_ipv6_and_ipv4_listeners_on_one_port(lab, tmp_path):
    import dns.query

    from ports import free_port

    port = free_port()
    d = Daemon(tmp_path, lab, "--listen", f"[::1]:{port}", listen=False, port=port,
               metrics=False)
    d.args += ["--listen", f"127.0.0.1:{port}"]
    d.start()
    try:
        for _ in range(2):                   # a miss, then a hit from the C path
            q = dns.message.make_query("www.example.net.", "A")
            r = dns.query.udp(q, "::1", port=port, timeout=5)
            assert r.id == q.id and r.answer[0][0].to_text() == "198.51.100.1"
        r = dns.query.tcp(dns.message.make_query("www.example.net.", "A"), "::1", port=port,
                          timeout=5)
        assert r.answer
        assert d.ask("www.example.net.").answer
    finally:
        assert d.stop() == 0


def test_one_client_cannot_take_tcp_away_from_the_others(lab, tmp_path):
    """A per-client cap on TCP connections, and at the global cap the oldest idle
    connection makes room for a newcomer instead of the newcomer being refused."""
    d = Daemon(tmp_path, lab, "--tcp-max-connections", "4",
               "--tcp-max-connections-per-client", "2", "--tcp-idle-timeout", "30").start()
    held = []

    def connect(source: str) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(5)
        s.bind((source, 0))
        s.connect(("127.0.0.1", d.port))
        held.append(s)
        return s

    def answered(s: socket.socket) -> bool:
        try:
            s.sendall(frame(dns.message.make_query("www.example.com.", "A").to_wire()))
            wire = read_frame(s)
        except OSError:
            return False
        return wire is not None and bool(dns.message.from_wire(wire).answer)

    try:
        d.ask("www.example.com.")
        a1, a2 = connect("127.0.0.11"), connect("127.0.0.11")
        time.sleep(0.2)
        a3 = connect("127.0.0.11")                   # a third from the same client
        assert not answered(a3)
        b1, b2 = connect("127.0.0.12"), connect("127.0.0.12")   # the global cap is reached
        assert answered(b1) and answered(b2)
        c1 = connect("127.0.0.13")                   # room is made: a1 was idle the longest
        assert answered(c1)
        assert not answered(a1)
        assert answered(a2)
        tcp = d.stats()["tcp"]
        assert tcp["shed_idle"] == 1 and tcp["rejected"] == 1 and tcp["open"] == 4
    finally:
        for s in held:
            s.close()
        d.stop()
