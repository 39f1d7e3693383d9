"""Forward zones over TLS (RFC 7858) against a real Unbound serving DNS over TLS on loopback,
its certificate from a throwaway CA: answers, the certificate and its name verified,
pipelining on one kept connection, failover, answers out of order, the daemon's config and
metrics, and the reverse (Unbound forwarding over TLS to the daemon's DoT listener).

Unbound answers from the lab: its stub zones point at the lab's authorities on the lab's
port (its own recursion asks port 53 only), and a local record tells its instances apart."""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import ssl
import time
from pathlib import Path

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rrset
import pytest

from ci_policy import unavailable
from daemon_proc import Daemon
from ports import free_port
from dnslab import zones as Z
from dnslab.unbound import UNBOUND, launch, server_lines
from procs import stop as stop_process
from resolver.limits import DEFAULT
from resolver.upstream.dot import DoTUpstreams
from resolver.upstream.errors import UpstreamFailure, UpstreamTimeout
from resolver.zones import ForwardZone, Upstream, Zones
from tls_certs import CA, SERVER_NAME

OTHER = "127.0.0.60"            # a second loopback address of Unbound's, no lab server's


class UnboundDoT:
    """Unbound serving DNS over TLS (and plain DNS, to see it ready) on free loopback ports,
    stopped by PID."""

    def __init__(self, workdir: Path, lab, pem: Path, key: Path, tag: str,
                 extra: tuple[str, ...] = (), stubs: tuple[tuple[str, str], ...] = (
                     ("bulk.net.", Z.BULK), ("example.com.", Z.EXAMPLE_COM_1))) -> None:
        if not os.path.exists(UNBOUND):
            unavailable("unbound (Debian package 'unbound') is not installed: "
                        "scripts/setup.sh installs it")
        w = self.dir = Path(workdir)
        w.mkdir(parents=True, exist_ok=True)
        self.port, self.tls_port = free_port(), free_port()
        self.proc = launch(w, [
            f"  interface: 127.0.0.1@{self.port}",
            f"  interface: 127.0.0.1@{self.tls_port}",
            f"  interface: {OTHER}@{self.tls_port}",
            f"  port: {self.port}",
            f"  tls-port: {self.tls_port}",
            f'  tls-service-pem: "{pem}"',
            f'  tls-service-key: "{key}"',
            *server_lines(w, lab),
            f'  local-data: "who.fwd.test. 60 TXT {tag}"',
            *extra,
            *(line for name, addr in stubs for line in (
                "stub-zone:", f'  name: "{name}"', f"  stub-addr: {addr}@{lab.port}"))],
            "127.0.0.1", self.port, timeout=15)

    def stop(self) -> None:
        stop_process(self.proc, 5.0, group=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = CA(tmp_path_factory.mktemp("pki"))
    pem, key = ca.issue("unbound")
    return ca, pem, key


@pytest.fixture(scope="module")
def unbound(lab, pki, tmp_path_factory):
    ca, pem, key = pki
    ub = UnboundDoT(tmp_path_factory.mktemp("unbound-dot"), lab, pem, key, "unbound-one")
    yield ub
    ub.stop()


#: servers never measured are asked in the zone's order (no random exploration)
IN_ORDER = DEFAULT.replace(exploration=0.0)


def dead_port() -> int:
    """A loopback TCP port nobody listens on (bound, then released)."""
    return free_port()


def tls_zone(name: str, servers, ca=None) -> Zones:
    return Zones(forward=[ForwardZone(name, tuple(servers), transport="tls",
                                      tls_cert_bundle=None if ca is None else str(ca.pem))])


def established_to(port: int) -> set[int]:
    """The local ports of the TCP connections established to 127.0.0.1:port."""
    out = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            local, remote, state = parts[1], parts[2], parts[3]
            if state == "01" and remote == f"0100007F:{port:04X}":
                out.add(int(local.split(":")[1], 16))
    return out


def a_records(msg) -> set[str]:
    return {rd.to_text() for rr in msg.answer if rr.rdtype == 1 for rd in rr}


def bulk_address(i: int) -> str:
    return f"10.1.{i // 256}.{i % 256}"


# ---- the library, on every loop kind ----------------------------------------------------------
def test_forwards_over_tls_with_the_certificate_and_its_name_verified(run, lab_resolver, pki,
                                                                      unbound):
    ca = pki[0]
    r = lab_resolver(zones=tls_zone("example.com.", [
        Upstream("127.0.0.1", unbound.tls_port, SERVER_NAME)], ca))

    async def go():
        ans = await r.resolve("www.example.com.", "A")
        return {x.to_text() for x in ans.rrset}

    assert run(go()) == {"192.0.2.1", "192.0.2.11"}
    s = r.tls_upstreams.stats()
    assert s["connections"] == 1 and s["queries"] == 1 and s["open"] == 1
    assert r.stats.upstream_queries == 1           # asked of Unbound only, not the lab


def test_dnspython_dot_nameservers_are_asked_over_tls_never_plain(run, lab_resolver, pki,
                                                                 unbound):
    """dnspython's ``DoTNameserver`` as ``nameservers``: the questions go over TLS, the
    certificate checked against its ``hostname`` (a wrong one: no answer); what the resolver
    cannot ask as asked (``verify=False``, no hostname, DoH, mixed with plain) is refused
    when set, never sent in the clear."""
    import dns.nameserver
    import dns.resolver

    ca = pki[0]
    r = lab_resolver()
    r.nameservers = [dns.nameserver.DoTNameserver("127.0.0.1", unbound.tls_port,
                                                  hostname=SERVER_NAME, verify=str(ca.pem))]
    assert r.nameservers == [f"127.0.0.1@{unbound.tls_port}#{SERVER_NAME}"]

    async def go():
        ans = await r.resolve("www.example.com.", "A")
        return {x.to_text() for x in ans.rrset}

    assert run(go()) == {"192.0.2.1", "192.0.2.11"}
    s = r.tls_upstreams.stats()
    assert s["connections"] == 1 and s["queries"] == 1
    wrong = lab_resolver()
    wrong.nameservers = [dns.nameserver.DoTNameserver("127.0.0.1", unbound.tls_port,
                                                      hostname="other.test", verify=str(ca.pem))]
    with pytest.raises(dns.resolver.NoNameservers):
        run(wrong.resolve("www.example.com.", "A"))
    s = wrong.tls_upstreams.stats()
    # a server that cannot be reached is not asked again for the question (as dnspython)
    assert s["connections"] == 0 and s["failed_verify"] == 1, s
    for bad in ([dns.nameserver.DoTNameserver("127.0.0.1", 853, hostname="a.test",
                                              verify=False)],
                [dns.nameserver.DoTNameserver("127.0.0.1", 853)],
                [dns.nameserver.DoHNameserver("https://127.0.0.1/dns-query")],
                [dns.nameserver.DoTNameserver("127.0.0.1", 853, hostname="a.test"),
                 "127.0.0.1"]):
        with pytest.raises(ValueError):
            r.nameservers = bad
    assert r.nameservers == [f"127.0.0.1@{unbound.tls_port}#{SERVER_NAME}"]


def test_the_tls_connection_leaves_from_the_resolvers_source(run, lab_resolver, pki, unbound):
    ca = pki[0]
    r = lab_resolver(zones=tls_zone("example.com.", [
        Upstream("127.0.0.1", unbound.tls_port, SERVER_NAME)], ca), source=("127.0.0.9", "::1"))
    assert {x.to_text() for x in run(r.resolve("www.example.com.", "A")).rrset} == \
        {"192.0.2.1", "192.0.2.11"}
    assert established_from(unbound.tls_port) == {"127.0.0.9"}


def established_from(port: int) -> set[str]:
    """The local addresses of the TCP connections established to 127.0.0.1:port."""
    out = set()
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, remote, state = line.split()[1:4]
            if state == "01" and remote == f"0100007F:{port:04X}":
                out.add(".".join(str(b) for b in reversed(bytes.fromhex(local.split(":")[0]))))
    return out


def test_many_concurrent_queries_pipelined_on_one_connection(run, lab_resolver, pki, unbound):
    ca = pki[0]
    r = lab_resolver(zones=tls_zone("bulk.net.", [
        Upstream("127.0.0.1", unbound.tls_port, SERVER_NAME)], ca))
    before = established_to(unbound.tls_port)

    async def batch(first: int, n: int):
        answers = await asyncio.gather(*(r.resolve_message(
            dns.message.make_query(f"h{i:03d}.bulk.net.", "A").to_wire())
            for i in range(first, first + n)))
        return [a_records(dns.message.from_wire(a)) for a in answers]

    # 60 questions at once, before the connection is even open: all wait for one handshake
    assert run(batch(0, 60)) == [{bulk_address(i)} for i in range(60)]
    opened = established_to(unbound.tls_port) - before      # (earlier tests' may be closing)
    assert len(opened) == 1
    # 60 more on the connection now open
    assert run(batch(60, 60)) == [{bulk_address(i)} for i in range(60, 120)]
    s = r.tls_upstreams.stats()
    assert s["connections"] == 1 and s["queries"] == 120 and s["open"] == 1
    assert established_to(unbound.tls_port) - before == opened
    assert not any(v for k, v in s.items() if k.startswith("failed_")), s


def test_wrong_authentication_name_fails_verification_and_gets_servfail(
        run, lab_resolver, pki, unbound, caplog):
    ca = pki[0]
    r = lab_resolver(zones=tls_zone("example.com.", [
        Upstream("127.0.0.1", unbound.tls_port, "wrong.example")], ca))

    async def go():
        return dns.message.from_wire(await r.resolve_message(
            dns.message.make_query("www.example.com.", "A").to_wire()))

    with caplog.at_level(logging.WARNING, logger="resolver.upstream.dot"):
        assert run(go()).rcode() == dns.rcode.SERVFAIL
    s = r.tls_upstreams.stats()
    # each handshake that fails costs the server too: a few per question, not the budget
    assert s["failed_verify"] == r.limits.max_tries_per_server == s["queries"], s
    assert s["connections"] == 0
    text = caplog.text
    assert f"127.0.0.1@{unbound.tls_port}#wrong.example" in text
    assert "certificate verification failed" in text and "wrong.example" in text


def test_a_certificate_from_another_ca_is_refused(run, lab_resolver, unbound, tmp_path):
    other = CA(tmp_path / "other", cn="another CA")
    r = lab_resolver(zones=tls_zone("example.com.", [
        Upstream("127.0.0.1", unbound.tls_port, SERVER_NAME)], other))

    async def go():
        return dns.message.from_wire(await r.resolve_message(
            dns.message.make_query("www.example.com.", "A").to_wire()))

    assert run(go()).rcode() == dns.rcode.SERVFAIL
    assert r.tls_upstreams.stats()["failed_verify"] >= 1


def test_tls_system_cert_trusts_the_systems_store_beside_the_bundle(run, lab_resolver, pki,
                                                                   unbound, tmp_path,
                                                                   monkeypatch):
    """``tls-system-cert``: the server's CA is not in the bundle but in the system's store
    (OpenSSL's, here the file SSL_CERT_FILE names). With the option the store is trusted
    beside the bundle and the server answers; without it the bundle alone is, and the server
    is refused. With no bundle the store is trusted either way."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki[0].pem))
    other = CA(tmp_path / "other", cn="another CA")

    def ask(bundle, system):
        r = lab_resolver(zones=Zones(forward=[ForwardZone(
            "example.com.", (Upstream("127.0.0.1", unbound.tls_port, SERVER_NAME),),
            transport="tls", tls_cert_bundle=bundle, tls_system_cert=system)]))

        async def go():
            return dns.message.from_wire(await r.resolve_message(
                dns.message.make_query("www.example.com.", "A").to_wire()))

        return run(go()).rcode(), r.tls_upstreams.stats()

    rcode, stats = ask(str(other.pem), False)
    assert rcode == dns.rcode.SERVFAIL and stats["failed_verify"] >= 1, stats
    rcode, stats = ask(str(other.pem), True)
    assert rcode == dns.rcode.NOERROR and stats["connections"] == 1, stats
    for system in (False, True):
        rcode, stats = ask(None, system)
        assert rcode == dns.rcode.NOERROR and stats["failed_verify"] == 0, stats


@pytest.mark.parametrize("lines, verified", [((), False), (("tls-system-cert: yes",), True),
                                              (("tls-win-cert: yes",), True)])
def test_unbound_trusts_the_systems_store_only_under_tls_system_cert(lab, pki, unbound,
                                                                     tmp_path, monkeypatch,
                                                                     lines, verified):
    """The anchor of ``tls-system-cert``: Unbound forwarding over TLS to a server named
    with ``#AUTH-NAME``, its CA in the system's store (SSL_CERT_FILE) and no
    ``tls-cert-bundle``, verifies it under ``tls-system-cert`` or ``tls-win-cert`` and
    cannot without either (it trusts no CA then), where corenet uses the store either way
    (the test above)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(pki[0].pem))
    ub = UnboundDoT(tmp_path / "ub", lab, pki[1], pki[2], "unbound-client", extra=(
        *(f"  {line}" for line in lines),
        "forward-zone:",
        '  name: "example.com."',
        f"  forward-addr: 127.0.0.1@{unbound.tls_port}#{SERVER_NAME}",
        "  forward-tls-upstream: yes"), stubs=())
    try:
        r = dns.query.udp(dns.message.make_query("www.example.com.", "A"), "127.0.0.1",
                          port=ub.port, timeout=15)
    finally:
        ub.stop()
    if verified:
        assert a_records(r) == {"192.0.2.1", "192.0.2.11"}, r
    else:
        assert r.rcode() == dns.rcode.SERVFAIL, r


def test_fails_over_to_the_next_server_when_one_is_dead_or_unverified(run, lab_resolver, pki,
                                                                      unbound):
    ca = pki[0]
    dead = dead_port()
    r = lab_resolver(limits=IN_ORDER, zones=tls_zone("example.com.", [
        Upstream("127.0.0.1", dead, SERVER_NAME),                    # nobody listens
        Upstream("127.0.0.2", unbound.tls_port, SERVER_NAME),        # no Unbound there either
        Upstream(OTHER, unbound.tls_port, "wrong.example"),          # fails verification
        Upstream("127.0.0.1", unbound.tls_port, SERVER_NAME)], ca))  # the good one

    async def go():
        t0 = time.monotonic()
        ans = await r.resolve("www.example.com.", "A")
        return {x.to_text() for x in ans.rrset}, time.monotonic() - t0

    # servers never measured are asked first, in order: the three bad ones, then the good one
    addrs, took = run(go())
    assert addrs == {"192.0.2.1", "192.0.2.11"}
    assert took < 2.0                          # refusals and verification fail fast
    s = r.tls_upstreams.stats()
    assert s["failed_connect"] == 2 and s["failed_verify"] == 1 and s["connections"] == 1


def test_a_silent_server_times_out_and_the_next_one_answers(run, lab_resolver, pki, unbound):
    """A server that accepts TCP and never speaks TLS: the query times out, the connection is
    closed, and the zone's next server answers within the time limit."""
    ca = pki[0]

    async def go():
        loop = asyncio.get_running_loop()
        accepted = []
        silent = await loop.create_server(lambda: _Mute(accepted), "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        r = lab_resolver(limits=IN_ORDER, zones=tls_zone("example.com.", [
            Upstream("127.0.0.1", port, SERVER_NAME),
            Upstream("127.0.0.1", unbound.tls_port, SERVER_NAME)], ca))
        try:
            ans = await r.resolve("www.example.com.", "A")
            return {x.to_text() for x in ans.rrset}, r.tls_upstreams.stats(), len(accepted)
        finally:
            silent.close()
            for t in accepted:
                t.close()

    addrs, s, accepted = run(go())
    assert addrs == {"192.0.2.1", "192.0.2.11"} and accepted == 1
    assert s["failed_timeout"] == 1 and s["connections"] == 1


class _Mute(asyncio.Protocol):
    def __init__(self, accepted: list) -> None:
        self.accepted = accepted

    def connection_made(self, transport) -> None:
        self.accepted.append(transport)


# ---- the connection: order, retry, bad answers, bounds, idleness ---------------------------------
def answer_to(wire: bytes) -> bytes:
    resp = dns.message.make_response(dns.message.from_wire(wire))
    resp.answer.append(dns.rrset.from_text(resp.question[0].name, 60, "IN", "A", "192.0.2.77"))
    return resp.to_wire()


async def fake_dot(pki, serve) -> tuple[asyncio.AbstractServer, int]:
    """``serve(reader, writer)`` as a DNS-over-TLS server with the test CA's certificate, on
    the running loop: (server, port)."""
    _, pem, key = pki
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(str(pem), str(key))
    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=ctx)
    return server, server.sockets[0].getsockname()[1]


def send(pool: DoTUpstreams, pki, port: int, name: str, qid: int, on_done,
         timeout: float = 5.0, limits=DEFAULT):
    """Asks ``name`` A (message ID ``qid``) of the fake server on ``port`` through ``pool``."""
    wire = dns.message.make_query(name, "A", id=qid).to_wire()
    return pool.query(asyncio.get_running_loop(), "127.0.0.1", port, SERVER_NAME,
                      str(pki[0].pem), wire, qid, wire[12:], timeout, limits, on_done)


async def ask(pool: DoTUpstreams, pki, port: int, name: str, qid: int, timeout: float = 5.0):
    """``send``, then the query once it is done."""
    fut = asyncio.get_running_loop().create_future()
    send(pool, pki, port, name, qid, fut.set_result, timeout)
    return await asyncio.wait_for(fut, 5)


def test_answers_out_of_order_are_matched_by_id(run, pki):
    """A DoT server that holds five queries and answers them last first, plus one answer to
    nothing: every query gets its own answer on one connection."""

    async def go():
        held: list[bytes] = []
        conns = []

        async def serve(reader, writer):
            conns.append(writer)
            while True:
                try:
                    head = await reader.readexactly(2)
                    held.append(await reader.readexactly(int.from_bytes(head, "big")))
                except (asyncio.IncompleteReadError, ConnectionError):
                    writer.close()
                    return
                if len(held) == 5:
                    stray = dns.message.make_query("stray.test.", "A", id=4242)
                    out = [dns.message.make_response(stray).to_wire()]
                    out += [answer_to(wire) for wire in reversed(held)]
                    writer.write(b"".join(len(o).to_bytes(2, "big") + o for o in out))
                    await writer.drain()

        server, port = await fake_dot(pki, serve)
        pool = DoTUpstreams()
        done: dict[bytes, object] = {}
        fut = asyncio.get_running_loop().create_future()

        def on_done(q):
            done[q.question] = q
            if len(done) == 5 and not fut.done():
                fut.set_result(None)

        for i in range(5):
            send(pool, pki, port, f"n{i}.test.", 1000 + i, on_done)
        await asyncio.wait_for(fut, 5)
        stats = pool.stats()
        pool.close()
        server.close()
        return done, stats, len(conns)

    done, stats, conns = run(go())
    assert conns == 1 and stats["connections"] == 1 and stats["unmatched"] == 1
    for q in done.values():
        assert q.error is None, q.error
        assert q.parsed is not None and q.reply[:2] == q.qid.to_bytes(2, "big")
        assert q.reply[12:].startswith(q.question)
        assert dns.message.from_wire(q.reply).answer[0][0].to_text() == "192.0.2.77"


def test_a_query_on_a_connection_the_server_closes_is_sent_once_more(run, pki):
    """The server answers the first query of each connection and closes the connection on
    the next one without answering (as a server closing an idle connection while a query is
    on its way): that query is sent again on a new connection and answered there. A
    connection closed before answering anything is not retried: its query fails."""

    async def go():
        conns = []
        answer_first = True                   # read by serve, turned off for the last part

        async def serve(reader, writer):
            conns.append(writer)
            try:
                head = await reader.readexactly(2)
                wire = await reader.readexactly(int.from_bytes(head, "big"))
                if answer_first:
                    out = answer_to(wire)
                    writer.write(len(out).to_bytes(2, "big") + out)
                    await writer.drain()
                    await reader.readexactly(2)       # the next query: no answer
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            writer.close()

        server, port = await fake_dot(pki, serve)
        pool = DoTUpstreams()
        first = await ask(pool, pki, port, "one.test.", 1)
        second = await ask(pool, pki, port, "two.test.", 2)
        kept = dict(pool.stats())
        answer_first = False
        pool.close()
        third = await ask(pool, pki, port, "three.test.", 3)
        pool.close()
        server.close()
        return first, second, kept, third, pool.stats(), len(conns)

    first, second, kept, third, after, conns = run(go())
    assert first.error is None and second.error is None, (first.error, second.error)
    assert second.reply[12:].startswith(second.question)
    assert kept["connections"] == 2 and kept["resent"] == 1 and kept["failed_closed"] == 0
    assert isinstance(third.error, Exception) and "closed" in str(third.error)
    assert after["failed_closed"] == 1 and after["resent"] == 1 and conns == 3


@pytest.mark.parametrize("garbage, words", [
    (lambda wire: wire[:2] + b"\x80\x00 not a dns message", "does not match"),
    (lambda wire: wire + b"\xc0", None),              # junk after a whole message: as over TCP
    (lambda wire: (wire[0] ^ 0xFF).to_bytes(1, "big") + wire[1:], "timeout")])   # no such ID
def test_garbage_from_the_server_fails_the_query_cleanly(run, pki, garbage, words):
    """Answers the server mangles: one carrying the query's ID but not its question fails
    the query at once; one with an ID no query has is counted and the query times out (the
    connection, which did send something, is not taken for dead)."""

    async def go():
        async def serve(reader, writer):
            try:
                while True:
                    head = await reader.readexactly(2)
                    wire = await reader.readexactly(int.from_bytes(head, "big"))
                    out = garbage(answer_to(wire))
                    writer.write(len(out).to_bytes(2, "big") + out)
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server, port = await fake_dot(pki, serve)
        pool = DoTUpstreams()
        q = await ask(pool, pki, port, "junk.test.", 77, timeout=0.5)
        stats = pool.stats()
        pool.close()
        server.close()
        return q, stats

    q, stats = run(go())
    if words is None:
        assert q.error is None and q.parsed is not None
    elif words == "timeout":
        assert isinstance(q.error, UpstreamTimeout)
        assert stats["unmatched"] == 1 and stats["failed_timeout"] == 0   # it had answered
    else:
        assert words in str(q.error) and stats["unmatched"] == 0


def test_outstanding_queries_on_one_connection_are_bounded(run, pki):
    """With the bound at 3, a fourth query to a server that has not answered yet is refused
    at once (counted; the resolution moves to the next server), and a slot freed by a query
    given up takes a new one."""

    async def go():
        async def serve(reader, writer):
            try:
                while await reader.read(4096):     # reads, never answers
                    pass
            except ConnectionError:
                pass
            writer.close()

        server, port = await fake_dot(pki, serve)
        pool = DoTUpstreams()
        limits = DEFAULT.replace(tls_upstream_max_outstanding=3)

        def query(i: int):
            return send(pool, pki, port, f"q{i}.test.", i, lambda q: None, limits=limits)

        held = [query(i) for i in range(3)]
        with pytest.raises(UpstreamFailure, match="3 queries outstanding"):
            query(3)
        held[0].close()                              # given up: its slot is free again
        held.append(query(4))
        stats = pool.stats()
        pool.close()
        server.close()
        return stats

    stats = run(go())
    assert stats["failed_full"] == 1 and stats["queries"] == 4


def test_idle_connection_closes_and_the_next_query_opens_another(run, lab_resolver, pki,
                                                                 unbound):
    ca = pki[0]
    r = lab_resolver(limits=DEFAULT.replace(tls_upstream_idle_timeout=0.2),
                     zones=tls_zone("bulk.net.", [
                         Upstream("127.0.0.1", unbound.tls_port, SERVER_NAME)], ca))

    async def go():
        await r.resolve("h200.bulk.net.", "A")
        opened = r.tls_upstreams.stats()["open"]
        await asyncio.sleep(0.5)
        idle = r.tls_upstreams.stats()
        await r.resolve("h201.bulk.net.", "A")
        return opened, idle, r.tls_upstreams.stats()

    opened, idle, after = run(go())
    assert opened == 1 and idle["open"] == 0 and idle["idle_closed"] == 1
    assert after["connections"] == 2 and after["open"] == 1


# ---- the daemon, and Unbound forwarding to it ---------------------------------------------------
def test_daemon_forwards_over_tls_from_its_config_and_counts_it(lab, pki, unbound, tmp_path):
    ca = pki[0]
    conf = tmp_path / "fwd.toml"
    # the lab's names are under test., which the daemon answers itself unless told not to
    conf.write_text(f'tls-cert-bundle = "{ca.pem}"\nexploration = 0.0\n'
                    'local-zone = ["test. nodefault"]\n'
                    '[[forward-zone]]\nname = "fwd.test."\nforward-tls-upstream = true\n'
                    f'forward-addr = ["127.0.0.1@{dead_port()}#{SERVER_NAME}", '
                    f'"127.0.0.1@{unbound.tls_port}#{SERVER_NAME}"]\n'
                    '[[forward-zone]]\nname = "bad.fwd.test."\nforward-tls-upstream = true\n'
                    f'forward-addr = ["127.0.0.1@{unbound.tls_port}#not-{SERVER_NAME}"]\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        r = d.ask("who.fwd.test.", "TXT")
        assert r.rcode() == dns.rcode.NOERROR, d.log_text()[-3000:]
        assert [rd.to_text() for rr in r.answer for rd in rr] == ['"unbound-one"']
        for _ in range(3):                              # from the cache, or the same connection
            assert d.ask("who.fwd.test.", "TXT").rcode() == dns.rcode.NOERROR
        assert d.ask("x.bad.fwd.test.", "A").rcode() == dns.rcode.SERVFAIL
        t = d.stats()["tls_upstream"]
        assert t["connections"] == 1 and t["failed_connect"] == 1 and t["failed_verify"] >= 1
        metrics = d.metrics()
        assert 'corenet_resolver_tls_upstream_failures_total{cause="verify"}' in metrics
        assert "corenet_resolver_tls_upstream_connections_total 1" in metrics
        log = d.log_text()
        assert f"#not-{SERVER_NAME}: certificate verification failed" in log
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_reload_changes_the_authentication_name_and_the_ca(lab, pki, unbound, tmp_path):
    """A wrong name, then the right name with a CA that did not sign Unbound's certificate,
    then both right: each reload (SIGHUP) applies the zone and the bundle at once."""
    ca = pki[0]
    other = CA(tmp_path / "other", cn="another CA")
    conf = tmp_path / "fwd.toml"

    def write(bundle, name: str) -> None:
        conf.write_text(f'tls-cert-bundle = "{bundle}"\nlocal-zone = ["test. nodefault"]\n'
                        '[[forward-zone]]\nname = "fwd.test."\nforward-tls-upstream = true\n'
                        f'forward-addr = ["127.0.0.1@{unbound.tls_port}#{name}"]\n')

    def rcode_after_reload(bundle, name: str) -> int:
        write(bundle, name)
        before = d.log_text().count("config reloaded")
        os.kill(d.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while d.log_text().count("config reloaded") == before:     # logged once applied
            assert time.monotonic() < deadline, d.log_text()[-2000:]
            time.sleep(0.05)
        return d.ask("who.fwd.test.", "TXT").rcode()

    write(ca.pem, "wrong.example")
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    try:
        assert d.ask("who.fwd.test.", "TXT").rcode() == dns.rcode.SERVFAIL
        assert rcode_after_reload(other.pem, SERVER_NAME) == dns.rcode.SERVFAIL
        assert rcode_after_reload(ca.pem, SERVER_NAME) == dns.rcode.NOERROR
        t = d.stats()["tls_upstream"]
        assert t["failed_verify"] >= 2 and t["connections"] == 1
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_unbound_forwards_over_tls_to_the_daemons_dot_listener(lab, pki, tmp_path):
    ca, pem, key = pki
    tls_port = free_port()
    conf = tmp_path / "dot.toml"
    conf.write_text(f'tls-listen = ["127.0.0.1:{tls_port}"]\ntls-service-pem = "{pem}"\n'
                    f'tls-service-key = "{key}"\n')
    d = Daemon(tmp_path / "d", lab, "--config", str(conf)).start()
    ub = None
    try:
        ub = UnboundDoT(tmp_path / "ub", lab, pem, key, "unbound-two", extra=(
            f'  tls-cert-bundle: "{ca.pem}"',
            "forward-zone:",
            '  name: "bulk.net."',
            f"  forward-addr: 127.0.0.1@{tls_port}#{SERVER_NAME}",
            "  forward-tls-upstream: yes"), stubs=())
        for i in range(300, 310):
            r = dns.query.udp(dns.message.make_query(f"h{i}.bulk.net.", "A"), "127.0.0.1",
                              port=ub.port, timeout=5)
            assert a_records(r) == {bulk_address(i)}, r
        st = d.stats()
        tls = st["tls"]
        assert tls["handshakes"] >= 1
        assert sum(n for k, n in st["queries"].items() if k.startswith("tls:")) >= 10
    finally:
        if ub is not None:
            ub.stop()
        assert d.stop() == 0, d.log_text()[-2000:]


def test_queries_are_padded_to_a_multiple_of_the_block(run, pki, tmp_path):
    """The queries sent over TLS carry the EDNS padding option, their size a multiple of
    128 octets (RFC 8467's block, Unbound's ``pad-queries``) or of the block set; none
    with a block of 0; the daemon's ``pad-queries`` settings set the block."""
    import dns.edns

    from resolver.api import Resolver
    from resolver.daemon.config import build, engine_attributes

    async def go(block):
        got: list[bytes] = []

        async def serve(reader, writer):
            while True:
                try:
                    head = await reader.readexactly(2)
                    wire = await reader.readexactly(int.from_bytes(head, "big"))
                except (asyncio.IncompleteReadError, ConnectionError):
                    writer.close()
                    return
                got.append(wire)
                out = answer_to(wire)
                writer.write(len(out).to_bytes(2, "big") + out)
                await writer.drain()

        server, port = await fake_dot(pki, serve)
        pool = DoTUpstreams()
        if block is not None:
            pool.pad_block = block
        for i, name in enumerate(("a.test.", "a-much-longer-name.example.test.")):
            wire = dns.message.make_query(name, "A", id=7000 + i, use_edns=0).to_wire()
            fut = asyncio.get_running_loop().create_future()
            pool.query(asyncio.get_running_loop(), "127.0.0.1", port, SERVER_NAME,
                       str(pki[0].pem), wire, 7000 + i,
                       wire[12:16 + len(dns.name.from_text(name).to_wire())], 5.0, DEFAULT,
                       fut.set_result)
            q = await asyncio.wait_for(fut, 5)
            assert q.error is None and q.parsed is not None
        pool.close()
        server.close()
        return got

    for block, size in ((None, 128), (300, 300)):
        for wire in run(go(block)):
            assert len(wire) % size == 0
            pad = [o for o in dns.message.from_wire(wire).options
                   if o.otype == dns.edns.OptionType.PADDING]
            assert len(pad) == 1 and len(wire) - size < len(wire) - len(pad[0].data) - 4
    for wire in run(go(0)):
        assert not dns.message.from_wire(wire).options and len(wire) < 128
    conf = tmp_path / "pad.toml"
    conf.write_text("pad-queries-block-size = 256\n")
    assert engine_attributes(build(str(conf)))["pad_queries"] == 256
    conf.write_text("pad-queries = false\n")
    assert engine_attributes(build(str(conf)))["pad_queries"] == 0
    r = Resolver()
    assert r.pad_queries == 128
    r.pad_queries = 0
    assert r.tls_upstreams.pad_block == 0
    with pytest.raises(ValueError, match="pad_queries"):
        r.pad_queries = True
