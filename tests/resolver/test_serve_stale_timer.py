"""RFC 8767's client response timer (``serve-stale-client-timeout``, Unbound's
``serve-expired-client-timeout``): a client whose question has an expired answer in its
stale window gets that answer once the resolution has run the timeout, while the resolution
goes on to refresh the cache; 0 answers it at once (Unbound's ``serve-expired``), a timeout
past the resolution's own limit only when the resolution fails; with a Redis shared cache
(asked first, then the resolution) the same. The daemon forwards a zone to a server on
loopback that answers with a one-second TTL, or stops answering."""
from __future__ import annotations

import socket
import time

import dns.message
import pytest

from daemon_proc import Daemon, cli
from loopback_authority import LoopbackAuthority
from redis_proc import Redis

NAME = "www.stale.example."
STALE_TTL = 30                     # serve-stale-ttl's default: the TTL of an expired answer


@pytest.fixture
def authority():
    a = LoopbackAuthority("192.0.2.50", ttl=1)
    yield a
    a.close()


def start(tmp_path, lab, authority: LoopbackAuthority, timeout: float, limits: str,
          settings: str = "") -> Daemon:
    conf = tmp_path / "resolver.toml"
    conf.write_text(f"serve-stale-client-timeout = {timeout}\n{settings}"
                    'domain-insecure = ["stale.example."]\n'     # a zone of its own, unsigned
                    f'[[forward-zone]]\nname = "stale.example."\n'
                    f'forward-addr = ["127.0.0.1@{authority.port}"]\n'
                    f"[limits]\n{limits}\n")
    return Daemon(tmp_path / "d", lab, "--config", str(conf)).start()


def ask(d: Daemon, wait: float = 15.0, name: str = NAME,
        edns: bool = False) -> dns.message.Message:
    q = dns.message.make_query(name, "A", use_edns=0 if edns else False)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(wait)
        s.sendto(q.to_wire(), ("127.0.0.1", d.port))
        return dns.message.from_wire(s.recv(4096))


def answer(m: dns.message.Message) -> tuple[set[str], int]:
    (rrset,) = m.answer
    return {rd.to_text() for rd in rrset}, rrset.ttl


def in_flight(d: Daemon, name: str = NAME) -> bool:
    r = cli("--control", d.control, "dump_requestlist")
    assert r.returncode == 0, r.stdout + r.stderr
    return name in r.stdout


def expired(d: Daemon) -> None:
    """The answer cached, then past its one-second TTL."""
    assert answer(ask(d)) == ({"192.0.2.50"}, 1)
    time.sleep(1.3)


def served_stale_while_resolving(d: Daemon, authority: LoopbackAuthority) -> None:
    """The answer expired, the authority silent: the next query gets the expired answer
    while its resolution is still under way, counted as an answer."""
    expired(d)
    authority.silent.set()
    got = ask(d)
    assert answer(got) == ({"192.0.2.50"}, STALE_TTL)
    assert in_flight(d), "answered only once the resolution had ended"
    noerror = sum(n for k, n in d.stats()["queries"].items() if k.endswith(":0"))
    assert noerror == 2, d.stats()["queries"]
    assert d.alive() and "Traceback" not in d.log_text(), d.log_text()[-3000:]


def test_the_expired_answer_goes_out_at_the_timeout_while_the_resolution_goes_on(
        lab, tmp_path, authority):
    # the silent server's query waits 5 s, the resolution up to 20 s
    d = start(tmp_path, lab, authority, 0.2,
              "initial_rto = 5.0\nmax_rto = 5.0\nmax_query_time = 20.0")
    try:
        served_stale_while_resolving(d, authority)
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_with_a_shared_cache_the_expired_answer_goes_out_at_the_timeout_too(
        lab, tmp_path, authority):
    """A miss asks Redis first (which holds the answer only while it is fresh), then
    resolves: the timer runs over both."""
    redis = Redis(tmp_path / "redis").start()
    try:
        d = start(tmp_path, lab, authority, 0.2,
                  "initial_rto = 5.0\nmax_rto = 5.0\nmax_query_time = 20.0",
                  f'cachedb-backend = "redis"\ncachedb-secret-seed = "stale-timer"\n'
                  f'redis-server-path = "{redis.socket}"\n')
        try:
            served_stale_while_resolving(d, authority)
        finally:
            assert d.stop() == 0, d.log_text()[-2000:]
    finally:
        redis.stop()


def test_zero_answers_the_expired_answer_at_once_and_refreshes_behind_it(
        lab, tmp_path, authority):
    d = start(tmp_path, lab, authority, 0, "")
    try:
        expired(d)
        asked = len(authority.asked)
        authority.address = "192.0.2.51"        # the authority answers, with new data
        assert answer(ask(d)) == ({"192.0.2.50"}, STALE_TTL)
        deadline = time.monotonic() + 10
        while True:                              # the refresh lands in the cache
            got = answer(ask(d))
            if got[0] == {"192.0.2.51"}:
                break
            assert got == ({"192.0.2.50"}, STALE_TTL), got
            assert time.monotonic() < deadline, "the cache was never refreshed"
            time.sleep(0.05)
        assert len(authority.asked) > asked
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_a_timeout_past_the_resolution_s_limit_serves_it_only_once_resolving_fails(
        lab, tmp_path, authority):
    d = start(tmp_path, lab, authority, 30,
              "initial_rto = 0.3\nmax_rto = 0.3\nmax_query_time = 1.5")
    try:
        expired(d)
        authority.silent.set()
        got = ask(d)
        assert answer(got) == ({"192.0.2.50"}, STALE_TTL)
        assert not in_flight(d), "answered before the resolution had failed"
        assert len(authority.asked) >= 2
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]


def test_a_failed_resolution_serves_the_expired_answer_other_clients_left(
        lab, tmp_path, authority):
    """Cached by a query with EDNS only, the expired answer still answers a query without
    EDNS (glibc's stub sends none) once resolving fails, as Unbound's one entry per question
    does, and the other way round: each without an OPT record where none was asked for."""
    d = start(tmp_path, lab, authority, 30,
              "initial_rto = 0.3\nmax_rto = 0.3\nmax_query_time = 1.5")
    try:
        fresh = {True: ask(d, edns=True), False: ask(d, name="mail.stale.example.")}
        assert fresh[True].edns == 0 and fresh[False].edns < 0
        time.sleep(1.3)
        authority.silent.set()
        for edns, name in ((False, NAME), (True, "mail.stale.example.")):
            got = ask(d, name=name, edns=edns)
            assert answer(got) == ({"192.0.2.50"}, STALE_TTL), (name, edns)
            assert (got.edns >= 0) is edns, got
            assert not in_flight(d, name), "answered before the resolution had failed"
        assert d.stats()["engine"]["stale_answers"] == 2
    finally:
        assert d.stop() == 0, d.log_text()[-2000:]
