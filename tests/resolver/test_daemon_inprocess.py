"""resolver.daemon.server.Server in the test's own process, on every loop kind: the Cython
recvmmsg listener on corenet's loop (both trigger modes) and the plain fallback on stock
asyncio must answer alike (miss, hit, truncation, RD clear, ACL), through real sockets."""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import replace

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest

from ports import free_port
from looptools import CORENET_KINDS, open_fds
from resolver.daemon import udp_listener
from resolver.daemon.acl import ACL
from resolver.daemon.admission import SNOOP_ACL, FrontDoor
from resolver.response import error
from resolver.daemon.config import build
from resolver.daemon.server import Server


def _cfg(lab, **kw):
    return build(None, {"listen": [f"127.0.0.1:{free_port()}"], "root_hints": None,
                        "upstream_port": lab.port, "do_not_query_localhost": False, **kw})


async def _serve(lab, **kw) -> Server:
    cfg = _cfg(lab, **kw)
    s = Server(cfg, resolver=_resolver(cfg, lab))
    await s.start()
    return s


def _resolver(cfg, lab):
    import resolver
    return resolver.Resolver(lab.root_hints, port=lab.port, cache_size=cfg.cache_size,
                             do_not_query_localhost=False)


def test_udp_and_tcp_answers_on_every_loop(run, lab, loop_kind):
    async def go():
        s = await _serve(lab)
        host, port = s.addresses[0]
        try:
            assert s.fast_udp == (loop_kind != "asyncio")
            for _ in range(2):                 # a miss, then a hit
                q = dns.message.make_query("WWW.example.com.", "A")
                r = await dns.asyncquery.udp(q, host, port=port, timeout=5)
                assert r.id == q.id and r.flags & dns.flags.RA
                assert r.question[0].name.labels == q.question[0].name.labels
                assert {x.to_text() for x in r.answer[0]} == {"192.0.2.1", "192.0.2.11"}
            for _ in range(2):
                q = dns.message.make_query("big.example.com.", "TXT")
                r = await dns.asyncquery.udp(q, host, port=port, timeout=5,
                                             raise_on_truncation=False)
                assert r.flags & dns.flags.TC and not r.answer
            r = await dns.asyncquery.tcp(q, host, port=port, timeout=5)
            assert len(r.answer[0]) == 40
            q = dns.message.make_query("h300.bulk.net.", "A")
            q.flags &= ~dns.flags.RD
            r = await dns.asyncquery.udp(q, host, port=port, timeout=5)
            assert r.rcode() == dns.rcode.REFUSED
            s.set_allow(replace(s.cfg, allow=(ipaddress.ip_network("10.0.0.0/8"),)))
            q = dns.message.make_query("www.example.com.", "A")
            r = await dns.asyncquery.udp(q, host, port=port, timeout=5)
            assert r.rcode() == dns.rcode.REFUSED and not r.answer
            stats = s.stats()
            assert stats["engine"]["cache_hits"] >= 2 and stats["truncated"] >= 2
            assert stats["refused_acl"] == 2     # the RD-clear probe and the client outside
        finally:
            await s.stop(1.0)
    run(go(), timeout=30)


def test_error_response_keeps_id_opcode_rd_and_edns():
    q = dns.message.make_query("www.example.com.", "A", use_edns=0).to_wire()
    r = dns.message.from_wire(error(q, 5))
    assert r.rcode() == dns.rcode.REFUSED and r.edns == 0 and r.flags & dns.flags.RD
    assert r.flags & dns.flags.QR and r.flags & dns.flags.RA
    assert not r.flags & dns.flags.CD
    assert error(q[:11], 5) is None
    # BADVERS is an extended rcode: its upper bits travel in the OPT record.
    r = dns.message.from_wire(error(q, 16))
    assert r.rcode() == dns.rcode.BADVERS and r.question
    # FORMERR leaves the question out; an unreadable question is left out for any rcode.
    assert not dns.message.from_wire(error(q, 1)).question
    assert dns.message.from_wire(error(q[:12] + b"\x40", 5)).rcode() == dns.rcode.REFUSED


@pytest.mark.parametrize("cd", [False, True])
def test_error_responses_copy_cd_and_nothing_else_of_the_flags(cd):
    """RFC 4035 3.2.2: CD is copied into the answer, errors included (as Unbound does); AD,
    AA and TC of the query are not."""
    m = dns.message.make_query("www.example.com.", "A", use_edns=0)
    m.flags |= dns.flags.AD | dns.flags.AA | dns.flags.TC | (dns.flags.CD if cd else 0)
    q = m.to_wire()
    for wire in (error(q, 5), error(q, 4), error(q, 1)):
        r = dns.message.from_wire(wire)
        assert bool(r.flags & dns.flags.CD) is cd
        assert not r.flags & (dns.flags.AD | dns.flags.AA | dns.flags.TC)
        assert r.flags & dns.flags.RD and r.flags & dns.flags.QR and r.flags & dns.flags.RA


@pytest.mark.parametrize("loop_kind", CORENET_KINDS)   # the C listener needs corenet's loop
def test_c_listener_survives_an_entry_it_cannot_read(run, lab, loop_kind):
    """A cache entry of the wrong kind is not read by the C hit path: the query goes to the
    engine, whose failure the client sees as SERVFAIL; the listener keeps answering."""
    from resolver.cache.answer import parse_query

    async def go():
        s = await _serve(lab)
        host, port = s.addresses[0]
        try:
            bad = dns.message.make_query("bad.example.com.", "A")
            s.resolver.cache.messages.table[parse_query(bad.to_wire())[0]] = object()
            r = await dns.asyncquery.udp(bad, host, port=port, timeout=5)
            assert r.rcode() == dns.rcode.SERVFAIL and r.id == bad.id
            q = dns.message.make_query("www.example.net.", "A")
            for _ in range(2):
                r = await dns.asyncquery.udp(q, host, port=port, timeout=5)
                assert r.answer[0][0].to_text() == "198.51.100.1"
            assert s.stats()["queries"] == {"udp:2": 1, "udp:0": 2}
        finally:
            await s.stop(1.0)
    run(go(), timeout=30)


def test_two_listen_addresses_answer_from_their_own_socket(run, lab, loop_kind):
    """Each listener replies from the address it was asked on (the client's connected
    socket would drop anything else)."""
    import socket

    port = free_port()

    async def go():
        cfg = build(None, {"listen": [f"127.0.0.1:{port}", f"[::1]:{port}"],
                           "upstream_port": lab.port})
        s = Server(cfg, resolver=_resolver(cfg, lab))
        await s.start()
        try:
            for host, family in (("127.0.0.1", socket.AF_INET), ("::1", socket.AF_INET6)):
                sock = socket.socket(family, socket.SOCK_DGRAM)
                sock.setblocking(False)
                sock.connect((host, port))
                q = dns.message.make_query("www.example.net.", "A")
                await asyncio.get_running_loop().sock_sendall(sock, q.to_wire())
                data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), 5)
                sock.close()
                assert dns.message.from_wire(data).answer[0][0].to_text() == "198.51.100.1"
        finally:
            await s.stop(1.0)
    run(go(), timeout=30)


def test_tcp_cache_hits_answered_by_the_framer_in_c(run, lab, loop_kind):
    """After a miss over TCP, the same question (other case, other ID) is answered by the
    framer's C path, on every loop; a big answer is whole over TCP."""
    async def go():
        s = await _serve(lab)
        host, port = s.addresses[0]
        try:
            for name, rdtype in (("www.example.com.", "A"), ("big.example.com.", "TXT")):
                await dns.asyncquery.tcp(dns.message.make_query(name, rdtype), host,
                                         port=port, timeout=5)
            before = s.stats()["tcp"]["fast_hits"]
            q = dns.message.make_query("WWW.Example.COM.", "A")
            r = await dns.asyncquery.tcp(q, host, port=port, timeout=5)
            assert r.id == q.id and r.question[0].name.labels == q.question[0].name.labels
            assert {x.to_text() for x in r.answer[0]} == {"192.0.2.1", "192.0.2.11"}
            r = await dns.asyncquery.tcp(dns.message.make_query("big.example.com.", "TXT"),
                                         host, port=port, timeout=5)
            assert len(r.answer[0]) == 40 and not r.flags & dns.flags.TC
            assert s.stats()["tcp"]["fast_hits"] == before + 2
            q = dns.message.make_query("www.example.com.", "A")
            q.flags &= ~dns.flags.RD                       # RD clear: a cache probe
            r = await dns.asyncquery.tcp(q, host, port=port, timeout=5)
            assert r.rcode() == dns.rcode.REFUSED and not r.answer     # no snooping
            s.acl.set([("127.0.0.0/8", SNOOP_ACL)])
            r = await dns.asyncquery.tcp(q, host, port=port, timeout=5)
            assert r.answer and not r.flags & dns.flags.RD
            r = await dns.asyncquery.udp(q, host, port=port, timeout=5)
            assert r.answer and not r.flags & dns.flags.RD
            # The snooper's probe is a hit of the same front door, answered by the framer.
            assert s.stats()["tcp"]["fast_hits"] == before + 3
        finally:
            await s.stop(1.0)
    run(go(), timeout=30)


def test_listener_gathers_the_engines_answers_of_an_iteration(corenet_kind):
    """Answers from the miss path leave together once the iteration ends (one sendmmsg for a
    burst of misses), past the batch size too, in order; close() sends what is still
    queued, and an answer after it is ignored."""
    import socket

    from looptools import make_loop

    loop = make_loop(corenet_kind)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind(("127.0.0.1", 0))
    client.setblocking(False)
    addr = client.getsockname()
    sends = []                      # the miss's answer, through the door to its UdpReply

    class Engine:
        """Keeps the miss: its answers are handed to the door's callback by the test."""
        def start_miss(self, q, done, loop, absent=None, client=None):
            sends.append(lambda out: done(None, out))
            return _Pending()

    listener = udp_listener.UDPListener(sock.fileno())
    front = FrontDoor({}, Engine())
    listener.setup(loop, sock, front, ACL(["127.0.0.0/8"]))

    def received():
        got = []
        while True:
            try:
                got.append(client.recv(100))
            except BlockingIOError:
                return got

    try:
        seen_during = []

        def burst():
            for i in range(70):                     # more than one sendmmsg batch (64)
                sends[0](b"answer %d" % i)
            seen_during.append(len(received()))

        listener.start()
        client.sendto(dns.message.make_query("miss.example.", "A").to_wire(),
                      sock.getsockname())
        deadline = time.monotonic() + 5
        while not sends and time.monotonic() < deadline:
            loop.run_until_complete(asyncio.sleep(0.01))
        assert len(sends) == 1
        loop.call_soon(burst)
        loop.run_until_complete(asyncio.sleep(0.05))
        # The first 64 left when the 65th was queued; the rest waited for the iteration's end.
        assert seen_during == [64]
        got = received()
        assert len(got) == 6 and got[-1] == b"answer 69"
        assert "send_error" not in front.counters.dropped      # none counted

        sends[0](b"at close")
        listener.close()
        assert received() == [b"at close"]
        sends[0](b"after close")                    # ignored, not an error
        assert received() == []
    finally:
        listener.close()
        client.close()
        loop.close()


def test_the_acl_allows_what_its_networks_hold_and_nothing_else():
    acl = ACL(["127.0.0.0/8", "2001:db8::/32", "192.0.2.7"])
    assert len(acl) == 3
    for host, ok in [("127.1.2.3", True), ("128.0.0.1", False), ("192.0.2.7", True),
                     ("192.0.2.8", False), ("2001:db8::1", True), ("2001:db9::1", False),
                     ("::ffff:127.0.0.1", True),       # IPv4-mapped: checked as IPv4
                     ("fe80::1%eth0", False), ("not an address", False), ("", False)]:
        assert acl.allows(host) is ok, host
    with pytest.raises(ValueError):
        acl.set(["127.0.0.0/8", "nonsense"])
    assert acl.allows("127.0.0.1") and len(acl) == 3     # a bad set changes nothing
    with pytest.raises(ValueError, match="at most 256"):
        ACL([f"10.{i // 256}.{i % 256}.0/24" for i in range(257)])
    acl.set([])
    assert not acl.allows("127.0.0.1")


def test_max_udp_size_caps_udp_answers_whatever_the_client_asks(run, lab, loop_kind):
    """A client asking for 65,535 bytes over UDP gets at most max-udp-size, on the miss
    path and on the C hit path; TCP is not capped."""
    async def go():
        s = await _serve(lab, max_udp_size=1232)
        host, port = s.addresses[0]
        try:
            q = dns.message.make_query("big.example.com.", "TXT", use_edns=0, payload=65535)
            sizes = []
            for _ in range(2):                                   # a miss, then a hit
                r = await dns.asyncquery.udp(q, host, port=port, timeout=5,
                                             raise_on_truncation=False)
                wire_len = len(r.to_wire())
                assert r.flags & dns.flags.TC and wire_len <= 1232
                sizes.append(wire_len)
            full = await dns.asyncquery.tcp(q, host, port=port, timeout=5)
            assert len(full.answer[0]) == 40 and len(full.to_wire()) > 1232
            s.apply(build(None, {"listen": [f"{host}:{port}"], "root_hints": None,
                                 "upstream_port": lab.port, "max_udp_size": 4096}))
            r = await dns.asyncquery.udp(q, host, port=port, timeout=5,
                                         raise_on_truncation=False)
            assert not r.flags & dns.flags.TC and len(r.answer[0]) == 40   # reload applies
            return sizes, len(q.to_wire())
        finally:
            await s.stop(1.0)
    sizes, qlen = run(go(), timeout=30)
    assert max(sizes) / qlen < 2          # truncated answers do not amplify


def test_running_out_of_descriptors_is_shed_not_blamed_on_the_server(run, lab, loop_kind):
    """With no descriptor left for an upstream socket, the question ends in SERVFAIL, is
    counted as no_descriptors, and no server is marked as failing; once descriptors are
    back, resolution goes on."""
    import resource

    r = _resolver(_cfg(lab), lab)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hold = []

    async def go():
        await r.resolve("www.example.com")               # warm: the loop's own descriptors
        used = len(open_fds())
        resource.setrlimit(resource.RLIMIT_NOFILE, (used + 8, hard))
        try:
            while True:                                  # take every descriptor left
                hold.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        except OSError:
            pass
        q = dns.message.make_query("h100.bulk.net.", "A")
        out = dns.message.from_wire(await r.resolve_message(q.to_wire()))
        assert out.rcode() == dns.rcode.SERVFAIL
        assert r.stats.no_descriptors >= 1 and r.stats.upstream_failures == 0
        assert r.shared_queries == {}      # no entry left for the query that never left
        for s in hold:
            s.close()
        hold.clear()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
        ans = await r.resolve("h101.bulk.net.")
        assert ans[0].address == "10.1.0.101"
        await r.close()

    try:
        run(go(), timeout=30)
    finally:
        for s in hold:
            s.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_the_daemon_raises_its_descriptor_limit_to_what_it_needs_and_fits_its_bounds():
    """In a child process with a given limit: the soft limit goes up to what the bounds
    need, no further and as far as the hard limit allows, and bounds the limit cannot hold
    are lowered, with a warning naming each."""
    import json
    import resource
    import subprocess
    import sys
    from pathlib import Path

    code = ("import json, logging, resource, sys\n"
            "logging.basicConfig(stream=sys.stderr, level=logging.INFO)\n"
            "from resolver.daemon import worker\n"
            "from resolver.daemon.config import build\n"
            "cfg = build(None, {'root_hints': None, 'max_inflight': 10000,"
            " 'tcp_max_connections': 1000})\n"
            "f = worker.fit_descriptors(cfg)\n"
            "print(json.dumps([resource.getrlimit(resource.RLIMIT_NOFILE)[0],"
            " f.max_inflight, f.tcp_max_connections, f.limits.max_upstream_sockets,"
            " worker.FD_RESERVE]))\n")
    root = str(Path(__file__).resolve().parents[2])

    def child(soft: int, hard: int):
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           cwd=root, timeout=60,
                           preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE,
                                                                 (soft, hard)))
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout), r.stderr

    (got, misses, tcp, upstream, reserve), log = child(256, 256)      # cannot be raised
    assert got == 256 and tcp == (256 - reserve) // 2
    assert misses == upstream == 256 - reserve - tcp
    assert log.count("is below the") == 1
    for lowered in (f"max-inflight 10000 to {misses}", f"max-upstream-sockets 1024 to "
                    f"{upstream}", f"tcp-max-connections 1000 to {tcp}"):
        assert lowered in log
    need = reserve + 1000 + 10000          # TCP clients, then misses (more than upstream's 1024)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= need + 100:
        (got, misses, tcp, upstream, _), log = child(1024, need + 100)
        assert got == need                     # what the bounds need, not the hard limit
        assert (misses, tcp, upstream) == (10000, 1000, 1024)
        assert f"limit {need} (was 1024, the config needs {need})" in log
        assert "lowered" not in log


class _Pending:
    """A miss left in flight, as the engine's Drive is (hashable, cancellable)."""
    finished = False

    def cancel(self) -> None:
        pass


def test_a_reload_changes_the_acl_only_when_the_config_s_does(run, lab):
    """A reload that keeps the access control keeps the ACL as it was (its networks are not
    parsed again); one that changes it takes effect, both ways."""
    from resolver.daemon.admission import ALLOWED_ACL, OUTSIDE_ACL

    async def go():
        s = await _serve(lab, access_control=["10.0.0.0/8 allow"])
        host, port = s.addresses[0]
        listen = {"listen": [f"{host}:{port}"], "root_hints": None, "upstream_port": lab.port}
        refusing = build(None, {**listen, "access_control": ["10.0.0.0/8 allow",
                                                              "10.1.0.0/16 refuse"]})
        allowing = build(None, {**listen, "access_control": ["10.0.0.0/8 allow"]})
        s.acl = spy = _Spy(s.acl)
        seen = []
        try:
            assert s.who(("10.1.2.3", 53)) == ALLOWED_ACL
            for cfg in (refusing, refusing, allowing):
                before = spy.sets
                s.apply(cfg)
                seen.append((s.who(("10.1.2.3", 53)), s.who(("10.2.0.1", 53)),
                             spy.sets - before))
            return seen
        finally:
            await s.stop(1.0)
    assert run(go(), timeout=30) == [(OUTSIDE_ACL, ALLOWED_ACL, 1),     # changed
                                     (OUTSIDE_ACL, ALLOWED_ACL, 0),     # the same again
                                     (ALLOWED_ACL, ALLOWED_ACL, 1)]     # changed back


class _Spy:
    """The server's ACL, its ``set`` calls counted (the listeners keep the ACL itself)."""

    def __init__(self, acl) -> None:
        self.acl, self.sets = acl, 0

    def set(self, networks) -> None:
        self.sets += 1
        self.acl.set(networks)

    def standing(self, addr):
        return self.acl.standing(addr)
