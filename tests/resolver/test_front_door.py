"""The daemon's front door (``resolver.daemon.admission``): one verdict per query for every
transport. Its rules against a small oracle written from the documented rule list, on
generated headers; every path ending in one send or one drop of the query's reply; and, on the real daemon, every transport (UDP, TCP, DoT, DoH) reading a
miss twice and looking the cache up once, with the query log on or off."""
from __future__ import annotations

import socket
import ssl
import struct
import time

import dns.message
import dns.rcode
import dns.rrset
import h2.config
import h2.connection
import pytest
from hypothesis import given, settings, strategies as st

from daemon_proc import Daemon, frame, read_frame
from ports import free_port
from test_daemon_doh import b64, h2_exchange, h2_headers
from tls_certs import CA, SERVER_NAME

from resolver import Resolver
from resolver.cache.answer import parse_query
from resolver.daemon.admission import (ALLOWED_ACL, DENY_ACL, LOCAL_DENY_ACL, LOCAL_REFUSE_ACL,
                                       OUTSIDE_ACL, SNOOP_ACL, CallReply, FrontDoor)
from resolver.response import error
from resolver.wire.codec import MsgEntry
from resolver.zones import LocalZone, Zones

CACHED, LOCAL = "cached.example.", "printer.lan."
#: every standing a client can have by the ACL
STANDINGS = [OUTSIDE_ACL, ALLOWED_ACL, SNOOP_ACL, DENY_ACL, LOCAL_REFUSE_ACL, LOCAL_DENY_ACL]


def _door() -> FrontDoor:
    r = Resolver([("a.root-servers.net.", "192.0.2.1")], zones=Zones(local=[
        LocalZone("lan.", "static", ("lan. 600 SOA ns.lan. admin.lan. 1 3600 600 86400 120",
                                     f"{LOCAL} 60 A 192.168.1.5")),
        LocalZone("denied.test.", "deny")]))
    q = dns.message.make_query(CACHED, "A")
    resp = dns.message.make_response(q)
    resp.answer.append(dns.rrset.from_text(CACHED, 300, "IN", "A", "192.0.2.1"))
    r.cache.messages.table[parse_query(q.to_wire())[0]] = MsgEntry(resp.to_wire(),
                                                                  time.monotonic(), 0.0)
    return FrontDoor(r.cache.messages.table, r)


def _query(name: str = CACHED, rd: bool = True, opcode: int = 0, qr: bool = False) -> bytes:
    q = dns.message.make_query(name, "A")
    q.flags = (q.flags & ~dns.flags.RD) | (dns.flags.RD if rd else 0) | (dns.flags.QR if qr
                                                                          else 0)
    q.set_opcode(opcode)
    return q.to_wire()


def _rcode(out: bytes) -> int:
    return out[3] & 0x0F


def test_each_rule_gives_its_verdict():
    door = _door()
    assert door.verdict(b"\x00" * 11, ALLOWED_ACL)[0] == "drop_short"
    assert door.verdict(_query(qr=True), SNOOP_ACL)[0] == "drop_response"
    v, out, _ = door.verdict(_query(), OUTSIDE_ACL)
    assert v == "refused" and _rcode(out) == 5
    v, out, _ = door.verdict(_query(opcode=2), ALLOWED_ACL)           # STATUS
    assert v == "bad_header" and _rcode(out) == 4
    v, out, _ = door.verdict(_query(opcode=4), ALLOWED_ACL)           # NOTIFY: a query
    assert v == "local" and _rcode(out) == 5
    tc = bytearray(_query())
    tc[2] |= 0x02
    v, out, _ = door.verdict(bytes(tc), ALLOWED_ACL)                  # TC set
    assert v == "bad_header" and _rcode(out) == 1
    v, out, _ = door.verdict(_query(rd=False), ALLOWED_ACL)            # no snooping
    assert v == "refused" and _rcode(out) == 5
    v, out, _ = door.verdict(_query(rd=False), SNOOP_ACL)
    assert v == "hit" and dns.message.from_wire(out).answer
    v, out, _ = door.verdict(_query(LOCAL, rd=False), ALLOWED_ACL)     # local data, RD clear
    assert v == "local" and dns.message.from_wire(out).answer
    assert door.verdict(_query("x.denied.test.", rd=False), ALLOWED_ACL)[0] == "drop_local"
    v, out, key = door.verdict(_query(), ALLOWED_ACL)
    assert v == "hit" and key is None and dns.message.from_wire(out).answer
    miss = _query("new.example.")
    v, out, key = door.verdict(miss, ALLOWED_ACL)
    assert v == "miss" and out is None and key == parse_query(miss)[0]


def _raw_query(name: bytes, qid: int = 0x1234) -> bytes:
    return struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0) + name + b"\x00\x1c\x00\x01"


def _wire_name(labels: list[bytes]) -> bytes:
    return b"".join(bytes([len(p)]) + p for p in labels) + b"\x00"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=63), max_size=4),
       st.lists(st.binary(min_size=1, max_size=63), max_size=4), st.integers(0, 0xFFFF))
def test_a_question_missed_again_gets_the_same_key_object(a, b, qid):
    """The hit path interns its keys: the same question (whatever its ID and letter case)
    gets the key object made for it before, the one its entry will be stored under, so the
    cache's dict finds it by identity with its hash kept; another question never gets that
    key, whatever bytes their keys share."""
    door = test_a_question_missed_again_gets_the_same_key_object.door
    name_a, name_b = _wire_name(a), _wire_name(b)
    v, _, key_a = door.verdict(_raw_query(name_a), ALLOWED_ACL)
    assert v == "miss" and key_a == parse_query(_raw_query(name_a))[0]
    assert door.verdict(_raw_query(name_a.upper(), qid), ALLOWED_ACL)[2] is key_a
    key_b = door.verdict(_raw_query(name_b), ALLOWED_ACL)[2]
    assert key_b == parse_query(_raw_query(name_b))[0]
    assert (key_b is key_a) == (name_a.lower() == name_b.lower())


test_a_question_missed_again_gets_the_same_key_object.door = _door()


def test_interned_keys_that_differ_only_in_their_last_byte_or_length_stay_apart():
    """The table hashes a key eight bytes at a time and masks the last word's bytes past
    the key: keys of every length that differ only in their last byte, or in their length
    alone, each get their own key."""
    door = _door()
    seen: dict[bytes, bytes] = {}
    for size in range(1, 40):
        for last in (b"a", b"b", b"\x00"):
            name = _wire_name([b"x" * (size - 1) + last])
            key = door.verdict(_raw_query(name), ALLOWED_ACL)[2]
            assert key == parse_query(_raw_query(name))[0] and key not in seen
            seen[key] = name


def test_the_acl_actions_give_their_verdicts():
    """deny drops every query; refuse_non_local and deny_non_local let local zones answer
    whatever RD says and refuse or drop the rest, the cached answer included."""
    door = _door()
    for rd in (True, False):
        for name in (CACHED, LOCAL):
            assert door.verdict(_query(name, rd=rd), DENY_ACL)[:2] == ("drop_acl", None)
        for who in (LOCAL_REFUSE_ACL, LOCAL_DENY_ACL):
            v, out, _ = door.verdict(_query(LOCAL, rd=rd), who)
            assert v == "local" and dns.message.from_wire(out).answer
            assert door.verdict(_query("x.denied.test.", rd=rd), who)[0] == "drop_local"
        v, out, _ = door.verdict(_query(CACHED, rd=rd), LOCAL_REFUSE_ACL)
        assert v == "refused" and _rcode(out) == 5
        assert door.verdict(_query(CACHED, rd=rd), LOCAL_DENY_ACL)[:2] == ("drop_acl", None)
    # the opcode's rule comes before the local zones, as Unbound's
    v, out, _ = door.verdict(_query(LOCAL, opcode=2), LOCAL_DENY_ACL)
    assert v == "bad_header" and _rcode(out) == 4
    # a deny is counted as the drop reason "acl"
    calls = []
    door.handle(_query(), DENY_ACL, CallReply("udp", ("192.0.2.9", 53), calls.append,
                                              lambda: calls.append(None)))
    door.handle(_query(), LOCAL_DENY_ACL, CallReply("tcp", ("192.0.2.9", 53), calls.append,
                                                    lambda: calls.append(None)))
    assert calls == [None, None] and door.counters.dropped == {"acl": 2}


def _oracle(head: bytes, who: int) -> set[str]:
    """The verdicts the documented rules allow for a query with this header."""
    if len(head) < 12:
        return {"drop_short"}
    if head[2] & 0x80:
        return {"drop_response"}
    if who == OUTSIDE_ACL:
        return {"refused"}
    if who == DENY_ACL:
        return {"drop_acl"}
    if head[2] & 0x02 or (head[2] >> 3) & 0x0F not in (0, 4):   # TC, an opcode
        return {"bad_header"}
    if (head[2] >> 3) & 0x0F == 4:              # NOTIFY: refused, counted as a query
        return {"local"}
    if who == LOCAL_REFUSE_ACL:                 # the names asked are not local
        return {"refused"}
    if who == LOCAL_DENY_ACL:
        return {"drop_acl"}
    if not head[2] & 0x01:
        return {"refused", "hit"} if who == SNOOP_ACL else {"refused"}
    return {"hit", "miss"}


@settings(max_examples=400, deadline=None)
@given(flags=st.integers(0, 0xFFFF), who=st.sampled_from(STANDINGS),
       cut=st.integers(0, 40), name=st.sampled_from([CACHED, "other.example."]))
def test_generated_headers_get_the_verdict_the_rules_give(flags, who, cut, name):
    """Any header bits, any client standing, the query cut anywhere: the verdict is the
    one the rule list gives, an answering verdict has an answer with the query's ID and QR
    set, and nothing but a miss carries a cache key."""
    door = test_generated_headers_get_the_verdict_the_rules_give.door
    q = bytearray(dns.message.make_query(name, "A").to_wire())
    q[2:4] = flags.to_bytes(2, "big")
    q = bytes(q[:len(q) - cut] if cut < len(q) else q[:cut % 12])
    v, out, key = door.verdict(q, who)
    assert v in _oracle(q, who), (v, q.hex())
    if v in ("refused", "bad_header", "hit", "local"):
        assert out[:2] == q[:2] and out[2] & 0x80
    else:
        assert out is None
    assert key is None or v == "miss"


test_generated_headers_get_the_verdict_the_rules_give.door = _door()


class _Refusing(Resolver):
    """A resolver whose class replaces ``start_miss``: every miss REFUSED."""

    def start_miss(self, q, done, loop, absent=None, client=None):
        return error(q, 5)


def test_misses_start_through_the_resolvers_own_start_miss():
    """The door starts a plain Resolver's misses in C (``resolution.start``, which answers
    BADVERS to an EDNS version it does not speak), and calls the ``start_miss`` a subclass
    defines or an instance is given, also when its resolver is replaced after misses have
    started."""
    door = _door()
    plain = door.resolver
    q = dns.message.make_query("other.example.", "A", use_edns=1).to_wire()

    def rcode_of_a_miss() -> int:
        calls = []
        reply = CallReply("udp", ("192.0.2.9", 53), calls.append, lambda: calls.append(None))
        assert door.handle(q, ALLOWED_ACL, reply) == 1
        return dns.message.from_wire(calls[0]).rcode()

    assert rcode_of_a_miss() == dns.rcode.BADVERS
    door.resolver = _Refusing([("a.root-servers.net.", "192.0.2.1")])
    assert rcode_of_a_miss() == dns.rcode.REFUSED
    given = Resolver([("a.root-servers.net.", "192.0.2.1")])
    given.start_miss = lambda q, done, loop, absent=None, client=None: error(q, 4)
    door.resolver = given
    assert rcode_of_a_miss() == dns.rcode.NOTIMP
    door.resolver = plain
    assert rcode_of_a_miss() == dns.rcode.BADVERS


class _Engine:
    """The door's resolver with every miss answered at once (SERVFAIL), as the engine
    answers an error it finds."""

    def __init__(self, r: Resolver) -> None:
        self.r = r
        self.stats = r.stats
        self.started = 0

    def local_answer(self, q, client=None):
        return self.r.local_answer(q, client)

    def resolve_cached(self, q):
        return self.r.resolve_cached(q)

    def start_miss(self, q, done, loop, absent=None, client=None):
        self.started += 1
        return error(q, 2)


@settings(max_examples=300, deadline=None)
@given(flags=st.integers(0, 0xFFFF), who=st.sampled_from(STANDINGS),
       cut=st.integers(0, 40), name=st.sampled_from([CACHED, "other.example.",
                                                      "x.denied.test."]),
       label=st.sampled_from(["udp", "tcp", "https"]))
def test_every_path_ends_in_one_send_or_one_drop_and_is_counted(flags, who, cut, name, label):
    """Whatever the header, the client's standing and the transport, ``handle`` ends the
    query in exactly one call of its reply, ``send`` (answered now, or a miss the engine
    answered) or ``drop``; what it returns says which, and the counter block has one more
    answer for a send and one more drop for a drop (a local zone's deny aside, which is not
    counted as a drop)."""
    base = test_every_path_ends_in_one_send_or_one_drop_and_is_counted.door
    engine = _Engine(base.resolver)
    door = FrontDoor(base.resolver.cache.messages.table, engine)
    q = bytearray(dns.message.make_query(name, "A").to_wire())
    q[2:4] = flags.to_bytes(2, "big")
    q = bytes(q[:len(q) - cut] if cut < len(q) else q[:cut % 12])
    calls = []
    reply = CallReply(label, ("192.0.2.9", 53), lambda out: calls.append(("send", out)),
                      lambda: calls.append(("drop", None)))
    went = door.handle(q, who, reply)
    assert len(calls) == 1, calls
    kind, out = calls[0]
    c = door.counters
    answers, drops = sum(c.queries.values()), sum(c.dropped.values())
    if kind == "send":
        assert went == (1 if engine.started else 0)
        assert out[:2] == q[:2] and out[2] & 0x80
        assert drops == 0
        if door.verdict(q, who)[0] == "bad_header":     # counted apart, as Unbound does
            assert (answers, c.header_errors) == (0, 1)
        else:
            assert (answers, c.header_errors) == (1, 0)
            assert set(c.queries) == {(label, out[3] & 0x0F)}
    else:
        assert went == -1 and answers == 0
        verdict = door.verdict(q, who)[0]
        assert verdict in ("drop_short", "drop_response", "drop_acl", "drop_local")
        assert drops == (0 if verdict == "drop_local" else 1)


test_every_path_ends_in_one_send_or_one_drop_and_is_counted.door = _door()


# ---- every transport, on the daemon ----------------------------------------------------------
@pytest.fixture(scope="module", params=[False, True], ids=["no-log", "log-queries"])
def daemon(lab, tmp_path_factory, request):
    work = tmp_path_factory.mktemp("front-door")
    ca = CA(work / "pki")
    pem, key = ca.issue("server")
    tls, https = free_port(), free_port()
    conf = work / "front.toml"
    conf.write_text(f'tls-listen = ["127.0.0.1:{tls}"]\nhttps-listen = ["127.0.0.1:{https}"]\n'
                    f'tls-service-pem = "{pem}"\ntls-service-key = "{key}"\n'
                    f"log-queries = {'true' if request.param else 'false'}\n")
    d = Daemon(work, lab, "--config", str(conf)).start()
    d.ca, d.tls_port, d.https_port, d.logging = ca, tls, https, request.param
    yield d
    assert d.stop() == 0, d.log_text()[-2000:]


def _udp(d, q: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(8)
        s.sendto(q, ("127.0.0.1", d.port))
        return s.recv(65535)


def _tcp(d, q: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", d.port), timeout=8) as s:
        s.sendall(frame(q))
        return read_frame(s)


def _dot(d, q: bytes) -> bytes:
    ctx = ssl.create_default_context(cafile=str(d.ca.pem))
    raw = socket.create_connection(("127.0.0.1", d.tls_port), timeout=8)
    with ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as s:
        s.sendall(frame(q))
        return read_frame(s)


def _doh(d, q: bytes) -> bytes:
    ctx = ssl.create_default_context(cafile=str(d.ca.pem))
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", d.https_port), timeout=8)
    with ctx.wrap_socket(raw, server_hostname=SERVER_NAME) as s:
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        conn.send_headers(1, h2_headers(f"/dns-query?dns={b64(q)}"), end_stream=True)
        s.sendall(conn.data_to_send())
        got, _ = h2_exchange(s, conn, {1})
    assert got[1][0] == b"200"
    return got[1][1]


def _counts(d) -> tuple[int, int]:
    e = d.stats()["engine"]
    return e["query_parses"], e["cache_lookups"]


@pytest.mark.parametrize("transport,ask", [("udp", _udp), ("tcp", _tcp), ("dot", _dot),
                                           ("doh", _doh)])
def test_a_miss_is_read_twice_and_looked_up_once_on_every_transport(daemon, transport, ask):
    """A name never asked (a miss), then the same name (a hit): the miss reads the query
    twice (its question for the cache key, then the whole query in the engine) and looks
    the cache up once; the hit reads it once and looks it up once; the query log changes
    neither."""
    name = {"udp": "h101", "tcp": "h102", "dot": "h103", "doh": "h104"}[transport] + ".bulk.net."
    q = dns.message.make_query(name, "A", id=0).to_wire()
    before = _counts(daemon)
    out = dns.message.from_wire(ask(daemon, q))
    assert out.answer
    miss = _counts(daemon)
    assert (miss[0] - before[0], miss[1] - before[1]) == (2, 1)
    out = dns.message.from_wire(ask(daemon, q))
    assert out.answer
    hit = _counts(daemon)
    assert (hit[0] - miss[0], hit[1] - miss[1]) == (1, 1)
    if daemon.logging:
        deadline = time.monotonic() + 5
        while daemon.log_text().count(name.rstrip(".")) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert daemon.log_text().count(name.rstrip(".")) >= 2     # the miss and the hit
