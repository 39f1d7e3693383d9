"""How a sync Resolver asks its nameservers, side by side with dnspython's own resolver: each
try waits ``timeout`` (a reply that is merely late is taken), a silent server is asked again
until the ``lifetime`` (never given up on after a few timeouts), a server back from an outage
answers at once, and a server that answers an error rcode or cannot be reached is not asked
again for the question (SERVFAIL is, with ``retry_servfail``). Every case runs dnspython's
``dns.resolver.Resolver`` and ``resolver.sync.Resolver`` against the same fake nameserver.
"""
from __future__ import annotations

import logging
import random
import socket
import struct
import threading
import time

import dns.resolver
import pytest

from ports import refusing_port
from resolver import sync

A = 1
NOERROR, SERVFAIL, NXDOMAIN, REFUSED, YXDOMAIN = 0, 2, 3, 5, 6
#: seconds the fake waits for a query before looking at its stop flag again
POLL = 0.05


class Nameserver:
    """A UDP nameserver on a fresh loopback address and a port of the kernel's.
    ``behave(n, elapsed)`` says what to do with the n-th query (from 0) ``elapsed`` seconds
    after the first: ``("answer", delay)``, ``("drop", 0)`` or ``(rcode, delay)``. It
    records each query's arrival time."""

    def __init__(self, behave) -> None:
        self.behave = behave
        self.arrivals: list[float] = []
        self.address = f"127.54.{random.randint(1, 254)}.{random.randint(1, 254)}"
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.address, 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(POLL)
        self._running = True
        self._timers: list[threading.Timer] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self._running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            now = time.monotonic()
            self.arrivals.append(now)
            what, delay = self.behave(len(self.arrivals) - 1, now - self.arrivals[0])
            if what == "drop":
                continue
            reply = self._reply(data, what)
            timer = threading.Timer(delay, self._send, (reply, peer))
            self._timers.append(timer)
            timer.start()

    def _send(self, reply: bytes, peer) -> None:
        try:
            self.sock.sendto(reply, peer)
        except OSError:
            pass

    @staticmethod
    def _reply(query: bytes, what) -> bytes:
        end = 12
        while query[end]:
            end += query[end] + 1
        question = query[12:end + 5]
        rd = struct.unpack("!H", query[2:4])[0] & 0x0100
        rcode = NOERROR if what == "answer" else what
        answer = b""
        if what == "answer":
            answer = b"\xc0\x0c" + struct.pack("!HHIH", A, 1, 60, 4) + bytes([192, 0, 2, 9])
        header = struct.pack("!HHHHH", 0x8080 | rd | rcode, 1, 1 if answer else 0, 0, 0)
        return query[:2] + header + question + answer

    def close(self) -> None:
        self._running = False
        for timer in self._timers:
            timer.cancel()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def nameserver():
    made: list[Nameserver] = []

    def make(behave) -> Nameserver:
        made.append(Nameserver(behave))
        return made[-1]

    yield make
    for server in made:
        server.close()


def _made(kind, servers: list[Nameserver], **settings):
    """A ``kind`` (dnspython's Resolver or ours) asking ``servers``, with ``settings``."""
    r = kind(configure=False)
    r.nameservers = [s.address for s in servers]
    r.port = servers[0].port
    for key, value in settings.items():
        setattr(r, key, value)
    return r


def _ask(kind, servers: list[Nameserver], name: str, **settings):
    """``kind`` (dnspython's Resolver or ours) asking ``name`` of ``servers``: (what came
    out: the addresses or the exception's type name, seconds taken, queries each server
    got)."""
    r = _made(kind, servers, **settings)
    before = [len(s.arrivals) for s in servers]
    t0 = time.monotonic()
    try:
        out: object = sorted(rr.address for rr in r.resolve(name, "A"))
    except dns.exception.DNSException as exc:
        out = type(exc).__name__
    took = time.monotonic() - t0
    if kind is sync.Resolver:
        r.close()
    return out, took, [len(s.arrivals) - b for s, b in zip(servers, before)]


KINDS = (dns.resolver.Resolver, sync.Resolver)


def test_a_late_reply_within_the_timeout_is_taken_as_by_dnspython(nameserver):
    """A server that answers after 0.6 s, with a 1 s timeout: one query, answered; no
    retransmission after an adaptive timeout throws the late reply away."""
    server = nameserver(lambda n, t: ("answer", 0.6))
    outs = [_ask(kind, [server], f"late{i}.test.", timeout=1.0, lifetime=3.0)
            for i, kind in enumerate(KINDS)]
    assert [o[0] for o in outs] == [["192.0.2.9"]] * 2
    assert [o[2] for o in outs] == [[1], [1]]


def test_a_server_slower_than_the_engine_s_own_limits_answers_as_by_dnspython(nameserver):
    """Past the engine's ``max_query_time``: a server that takes 4.5 s is waited for when
    ``timeout`` and ``lifetime`` say so."""
    server = nameserver(lambda n, t: ("answer", 4.5))
    outs = [_ask(kind, [server], f"slow{i}.test.", timeout=6.0, lifetime=7.0)
            for i, kind in enumerate(KINDS)]
    assert [o[0] for o in outs] == [["192.0.2.9"]] * 2
    assert [o[2] for o in outs] == [[1], [1]]


def test_the_default_timeout_is_dnspython_s(nameserver):
    """A server that answers after 1.7 s is answered on the first try with the default
    ``timeout`` (2 s), as dnspython's."""
    assert sync.Resolver(configure=False).timeout == dns.resolver.Resolver(
        configure=False).timeout
    server = nameserver(lambda n, t: ("answer", 1.7))
    outs = [_ask(kind, [server], f"default{i}.test.") for i, kind in enumerate(KINDS)]
    assert [o[0] for o in outs] == [["192.0.2.9"]] * 2
    assert [o[2] for o in outs] == [[1], [1]]


def test_a_silent_server_is_asked_until_the_lifetime_as_by_dnspython(nameserver):
    """Not given up on after a few timeouts: each try waits ``timeout`` and the call ends
    with LifetimeTimeout when the lifetime does."""
    server = nameserver(lambda n, t: ("drop", 0))
    outs = [_ask(kind, [server], f"silent{i}.test.", timeout=0.3, lifetime=2.0)
            for i, kind in enumerate(KINDS)]
    assert [o[0] for o in outs] == ["LifetimeTimeout"] * 2
    theirs, mine = outs
    assert mine[1] >= 1.9 and theirs[1] >= 1.9
    # dnspython backs off between rounds (0.1, 0.2, 0.4 s...), this resolver does not
    assert mine[2][0] >= theirs[2][0] >= 4


def test_a_server_back_from_an_outage_answers_at_once_as_by_dnspython(nameserver):
    """Silent for its first 1.2 s, then answering: the question asked during the outage is
    answered within its lifetime, and the next one at once (the server is not held down)."""
    for i, kind in enumerate(KINDS):
        server = nameserver(lambda n, t: ("drop", 0) if t < 1.2 else ("answer", 0))
        first = _ask(kind, [server], f"outage{i}.test.", timeout=0.4, lifetime=4.0)
        assert first[0] == ["192.0.2.9"], kind
        assert 1.1 < first[1] < 4.0
        r = kind(configure=False)
        r.nameservers, r.port = [server.address], server.port
        for j in range(3):
            t0 = time.monotonic()
            assert [rr.address for rr in r.resolve(f"after{i}-{j}.test.", "A")] == [
                "192.0.2.9"]
            assert time.monotonic() - t0 < 1.5, kind  # no try's timeout (2 s) waited for


@pytest.mark.parametrize("rcode, raised", [(SERVFAIL, "NoNameservers"),
                                           (REFUSED, "NoNameservers"),
                                           (YXDOMAIN, "YXDOMAIN")])
def test_an_error_rcode_ends_the_server_s_part_as_in_dnspython(nameserver, rcode, raised):
    """The server is asked once and the call ends at once with dnspython's exception."""
    server = nameserver(lambda n, t: (rcode, 0))
    outs = [_ask(kind, [server], f"rcode{rcode}-{i}.test.", timeout=0.5, lifetime=3.0)
            for i, kind in enumerate(KINDS)]
    assert [o[0] for o in outs] == [raised] * 2
    assert [o[2] for o in outs] == [[1], [1]]
    assert all(o[1] < 1.0 for o in outs)


def test_retry_servfail_asks_the_server_again_as_dnspython(nameserver):
    """SERVFAIL, then an answer: with ``retry_servfail`` both ask a second time."""
    server = nameserver(lambda n, t: (SERVFAIL, 0) if n % 2 == 0 else ("answer", 0))
    outs = [_ask(kind, [server], f"retry{i}.test.", retry_servfail=True, lifetime=3.0)
            for i, kind in enumerate(KINDS)]
    assert [o[0] for o in outs] == [["192.0.2.9"]] * 2
    assert [o[2] for o in outs] == [[2], [2]]


def test_the_next_server_answers_after_one_fails_as_in_dnspython(nameserver):
    """A SERVFAIL server first and a good one second: each asked once, answered."""
    bad = nameserver(lambda n, t: (SERVFAIL, 0))
    good = nameserver(lambda n, t: ("answer", 0))
    for i, kind in enumerate(KINDS):
        r = kind(configure=False)
        # one port for both: dnspython's ``port``; ours asks each at its own too
        r.nameservers = [bad.address, good.address]
        r.nameserver_ports = {bad.address: bad.port, good.address: good.port}
        before = (len(bad.arrivals), len(good.arrivals))
        assert [rr.address for rr in r.resolve(f"next{i}.test.", "A")] == ["192.0.2.9"]
        asked = (len(bad.arrivals) - before[0], len(good.arrivals) - before[1])
        assert asked[1] == 1 and asked[0] <= 1, kind


@pytest.mark.parametrize("name", ["localhost.", "x.test.", "1.0.0.127.in-addr.arpa."])
def test_nameservers_are_asked_the_special_use_names_as_by_dnspython(nameserver, name):
    """Asking nameservers, the names of the default local zones (answered locally while
    recursing) are theirs to answer, as dnspython leaves them."""
    server = nameserver(lambda n, t: ("answer", 0))
    outs = [_ask(kind, [server], name, lifetime=3.0) for kind in KINDS]
    assert [o[0] for o in outs] == [["192.0.2.9"]] * 2
    assert [o[2] for o in outs] == [[1], [1]]


def _failure(kind, servers: list[Nameserver], name: str, **settings):
    """What ``kind`` raised asking ``name`` of ``servers``, each on its own port: (the
    exception's type name, its text with the seconds taken left out, its ``errors``
    (server, tcp, port, error's type and text, response's type and rcode))."""
    r = _made(kind, servers, nameserver_ports={s.address: s.port for s in servers},
              **settings)
    with pytest.raises(dns.exception.DNSException) as caught:
        r.resolve(name, "A")
    if kind is sync.Resolver:
        r.close()
    exc = caught.value
    text = str(exc).split(" seconds: ")[-1]
    return (type(exc).__name__, text, [
        (server, tcp, port, type(error).__name__, str(error), type(response).__name__,
         None if response is None else response.rcode())
        for server, tcp, port, error, response in exc.kwargs["errors"]])


@pytest.mark.parametrize("rcode", [SERVFAIL, REFUSED])
def test_no_nameservers_names_each_server_and_its_response_as_dnspython(nameserver, rcode):
    """Two servers answering an error rcode: ``errors`` holds dnspython's tuples, each
    server named as dnspython names it (``Do53:ADDR@PORT``) with its response, and the
    message reads the same."""
    servers = [nameserver(lambda n, t: (rcode, 0)) for _ in range(2)]
    theirs, mine = (_failure(kind, servers, f"fail{rcode}.test.", lifetime=3.0)
                    for kind in KINDS)
    assert mine == theirs
    assert theirs[0] == "NoNameservers" and len(theirs[2]) == 2
    assert theirs[2][0][0] == f"Do53:{servers[0].address}@{servers[0].port}"
    assert theirs[2][0][5:] == ("QueryMessage", rcode)


def test_lifetime_timeout_names_each_silent_try_as_dnspython(nameserver):
    """A silent server and a lifetime shorter than one try: one Timeout for that try, its
    server named as dnspython names it, and the message reads the same; with several
    tries, the same entries (dnspython backs off between rounds, so their counts differ)."""
    server = nameserver(lambda n, t: ("drop", 0))
    theirs, mine = (_failure(kind, [server], "silent.test.", timeout=2.0, lifetime=0.6)
                    for kind in KINDS)
    assert mine == theirs
    assert theirs[0] == "LifetimeTimeout" and len(theirs[2]) == 1
    assert theirs[2][0][3:] == ("Timeout", "The DNS operation timed out.", "NoneType", None)
    theirs, mine = (_failure(kind, [server], "tries.test.", timeout=0.3, lifetime=1.0)
                    for kind in KINDS)
    assert set(mine[2]) == set(theirs[2]) and len(mine[2]) >= 3


def test_a_refusing_port_ends_the_call_at_once_where_dnspython_waits():
    """ICMP port unreachable: the server cannot be reached, so it is not asked again and
    the call ends with NoNameservers at once, as glibc's does. dnspython's unconnected UDP
    socket never hears the ICMP error, so it waits for the lifetime (the one deliberate
    difference here)."""
    with refusing_port(socket.SOCK_DGRAM) as port:
        for kind, raised, least, most in ((dns.resolver.Resolver, "LifetimeTimeout", 0.9, 3),
                                          (sync.Resolver, "NoNameservers", 0.0, 0.9)):
            r = kind(configure=False)
            r.nameservers, r.port, r.lifetime = ["127.0.0.1"], port, 1.0
            t0 = time.monotonic()
            with pytest.raises(dns.exception.DNSException) as caught:
                r.resolve("refused.test.", "A")
            assert type(caught.value).__name__ == raised
            assert least <= time.monotonic() - t0 < most, kind


def test_a_failed_call_logs_nothing_at_info(caplog):
    """Why the forwarders failed is query-level detail (DEBUG): an application logging at
    INFO gets the exception, not a line per failed call."""
    with refusing_port(socket.SOCK_DGRAM) as port:
        r = sync.Resolver(configure=False)
        r.nameservers, r.port, r.lifetime = ["127.0.0.1"], port, 1.0
        for level, lines in ((logging.INFO, 0), (logging.DEBUG, 1)):
            caplog.clear()
            with caplog.at_level(level, logger="resolver"):
                with pytest.raises(dns.resolver.NoNameservers):
                    r.resolve("refused.test.", "A")
            said = [x.getMessage() for x in caplog.records if x.name == "resolver.iterator"]
            assert len(said) == lines, said
        assert said[0].startswith("SERVFAIL forwarding")


@pytest.mark.parametrize("rcode", [SERVFAIL, REFUSED])
def test_a_forward_zone_s_failing_server_is_asked_a_few_times_a_question(nameserver, rcode):
    """Unbound's semantics for a daemon's forward zone (not dnspython's): a forwarder that
    answers an error is asked ``Limits.max_tries_per_server`` times for one question, not
    until the query budget is spent."""
    from resolver import Resolver
    from resolver.zones import ForwardZone, Upstream, Zones

    server = nameserver(lambda n, t: (rcode, 0))
    zones = Zones(forward=[ForwardZone("fwd.internal.", (Upstream(server.address,
                                                              server.port),))])
    r = sync.Resolver(configure=False, zones=zones)
    with pytest.raises(dns.resolver.NoNameservers):
        r.resolve("www.fwd.internal.", "A")
    assert len(server.arrivals) == Resolver().limits.max_tries_per_server
    r.close()
