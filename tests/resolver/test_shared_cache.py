"""The shared second-level cache (resolver.cache.shared) against a real redis-server: its
value format and what is trusted of it, two daemons sharing answers through it, what is
never written, and a Redis that is down, slow or restarted."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset
import pytest

from daemon_proc import Daemon, cli
from ports import free_port
from redis_proc import Redis
from resolver.cache.shared import (HEADER, INSECURE, SECURE, VERSION, BadEntry, pack,
                                   shared_key, unpack)
from resolver.limits import DEFAULT as DEFAULT_LIMITS
from resolver.wire.codec import MsgEntry, cache_key

SEED = "lab-seed"


def wire_name(text: str) -> bytes:
    return dns.name.from_text(text).to_wire()


def msg_key(qname: str, rdtype: str = "A", variant: int = 0) -> bytes:
    return cache_key(wire_name(qname), dns.rdatatype.from_text(rdtype), 1, variant)


def answer_wire(qname: str, address: str, ttl: int = 300, ad: bool = False,
                edns: bool = False, rcode: int = 0) -> bytes:
    q = dns.message.make_query(qname, "A", use_edns=0 if edns else False)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.RA | (dns.flags.AD if ad else 0)
    r.set_rcode(rcode)
    if rcode == 0:
        r.answer.append(dns.rrset.from_text(qname, ttl, "IN", "A", address))
    return r.to_wire()


def write_config(path, redis: Redis, seed: str = SEED, unix: bool = True,
                 timeout_ms: int = 300, **extra) -> str:
    lines = ['cachedb-backend = "redis"', f'cachedb-secret-seed = "{seed}"',
             f"redis-timeout = {timeout_ms}"]
    if unix:
        lines.append(f'redis-server-path = "{redis.socket}"')
    else:
        lines += [f'redis-server-host = "{redis.host}"', f"redis-server-port = {redis.port}"]
    for k, v in extra.items():
        lines.append(f"{k.replace('_', '-')} = {v}")
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def wait_for(pred, timeout: float = 5.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def in_process_config(redis: Redis):
    """The settings SharedCache.from_config reads, for a cache made in the test."""
    class Cfg:
        cachedb_secret_seed, redis_timeout, cachedb_store_expired = SEED, 500, False
        redis_server_path, redis_server_host, redis_server_port = redis.socket, "", 0
        redis_server_password, redis_logical_db = None, 0
        limits = DEFAULT_LIMITS
    return Cfg


@pytest.fixture
def daemons(lab, tmp_path):
    started: list[Daemon] = []

    def start(name: str, *args: str, ready: str = "ready") -> Daemon:
        d = Daemon(tmp_path / name, lab, *args).start(ready=ready)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop()


# ---- settings ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, names", [
    ('cachedb-backend = "memcached"\n', "cachedb-backend"),
    ("redis-server-port = 0\n", "redis-server-port"),
    ("redis-timeout = 0\n", "redis-timeout"),
    ('cachedb-store-expired = "yes"\n', "cachedb-store-expired"),
    ('cachedb-secret-seed = ""\n', "cachedb-secret-seed"),
])
def test_bad_shared_cache_setting_is_one_line_naming_it(tmp_path, text, names):
    conf = tmp_path / "config.toml"
    conf.write_text(text)
    r = cli("serve", "--config", str(conf), "--listen", f"127.0.0.1:{free_port()}")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and names in lines[0], r.stderr


# ---- the value format -----------------------------------------------------------------------
def test_key_depends_on_seed_question_and_variant():
    k = msg_key("www.example.com.")
    assert shared_key(b"a", k) != shared_key(b"b", k)
    assert shared_key(b"a", k) != shared_key(b"a", msg_key("www.example.com.", "AAAA"))
    assert shared_key(b"a", k) != shared_key(b"a", msg_key("www.example.com.", variant=3))
    assert shared_key(b"a", k) == shared_key(b"a", msg_key("WWW.Example.COM."))
    assert len(shared_key(b"a", k)) == 32        # a digest: the name is not in the key


def test_value_round_trip_ages_the_ttl_by_the_time_stored():
    wire = answer_wire("www.example.com.", "192.0.2.1", ttl=300)
    e = MsgEntry(wire, 50.0, 0.0)
    value = pack(e, 1_000_000.0, 50.0)
    assert value[0] == VERSION and value[HEADER.size:] == wire
    # read 60 s later on another host whose monotonic clock reads 7.0
    got = unpack(value, msg_key("www.example.com."), 1_000_060.0, 7.0, 30.0, 86400)
    assert got.ttl == 300
    assert got.expires == pytest.approx(7.0 + 240.0)
    assert got.stale_until == pytest.approx(7.0 + 270.0)
    from resolver.cache.answer import answer_from_entry
    q = dns.message.make_query("www.example.com.", "A", use_edns=False)
    q.id = 4321
    qw = q.to_wire()
    out = dns.message.from_wire(answer_from_entry(got, qw, len(qw), 7.0))
    assert out.id == 4321 and out.answer[0].ttl == 240


def test_secure_entry_is_not_served_past_its_signatures_on_another_host():
    """RFC 4035 5.3.3: a secure answer whose signatures expire 100 s after it was stored is
    neither answered nor served stale past that by the process that reads it from Redis,
    whatever that process's serve-stale window."""
    from resolver.cache.store import MessageCache
    from resolver.limits import Limits
    wire = answer_wire("www.example.com.", "192.0.2.1", ttl=300, ad=True)
    messages = MessageCache(1 << 20, Limits(stale_window=86400))
    e = messages.store(msg_key("www.example.com."), wire, 50.0, valid_for=100.0)
    assert e.expires == pytest.approx(150.0) and e.stale_until == pytest.approx(150.0)
    value = pack(e, 1_000_000.0, 50.0)
    got = unpack(value, msg_key("www.example.com."), 1_000_060.0, 7.0, 86400.0, 86400)
    assert got.wire[3] & 0x20
    assert got.expires == pytest.approx(7.0 + 40.0)
    assert got.stale_until == pytest.approx(7.0 + 40.0)
    plain = MsgEntry(answer_wire("www.example.com.", "192.0.2.1", ttl=300), 50.0, 0.0)
    got = unpack(pack(plain, 1_000_000.0, 50.0), msg_key("www.example.com."), 1_000_060.0,
                 7.0, 86400.0, 86400)
    assert got.stale_until == pytest.approx(7.0 + 240.0 + 86400.0)   # not secure: no bound


def test_entry_not_stored_as_secure_is_never_served_with_ad():
    wire = answer_wire("www.example.com.", "192.0.2.1", ad=True)
    key = msg_key("www.example.com.")
    for status, ad in ((INSECURE, False), (SECURE, True)):
        value = HEADER.pack(VERSION, status, 1000.0, 300, 300) + wire
        e = unpack(value, key, 1000.0, 1.0, 0.0, 86400)
        assert bool(e.wire[3] & 0x20) is ad


@pytest.mark.parametrize("value, why", [
    (b"", "empty"),
    (b"x" * 40, "garbage"),
    (HEADER.pack(9, 0, 0.0, 300, 300) + answer_wire("www.example.com.", "192.0.2.1"), "version"),
    (HEADER.pack(VERSION, 7, 0.0, 300, 300) + answer_wire("www.example.com.", "192.0.2.1"),
     "status"),
    (HEADER.pack(VERSION, 0, 0.0, 300, 300) + answer_wire("other.example.com.", "192.0.2.1"),
     "another question"),
    (HEADER.pack(VERSION, 0, 0.0, 300, 300)
     + answer_wire("www.example.com.", "192.0.2.1", rcode=2), "SERVFAIL"),
    (HEADER.pack(VERSION, 0, 0.0, 300, 300)
     + answer_wire("www.example.com.", "192.0.2.1")[:-6], "truncated wire"),
], ids=lambda v: v if isinstance(v, str) else "value")
def test_unusable_values_are_refused(value, why):
    with pytest.raises(BadEntry):
        unpack(value, msg_key("www.example.com."), 1000.0, 1.0, 0.0, 86400)


def test_the_shared_cache_s_bounds_are_its_limits(tmp_path):
    """The back-off and the largest value read come from ``cfg.limits`` (the bound on
    commands waiting: test_redis_link)."""
    limits = DEFAULT_LIMITS.replace(shared_cache_backoff=0.25,
                                    shared_cache_max_backoff=0.4, shared_cache_max_value=60)

    class Cfg:
        cachedb_secret_seed, redis_timeout, cachedb_store_expired = SEED, 500, False
        redis_server_path, redis_server_host, redis_server_port = str(tmp_path / "r"), "", 0
        redis_server_password, redis_logical_db = None, 0
    Cfg.limits = limits
    from resolver.cache.shared import SharedCache
    shared = SharedCache.from_config(Cfg)
    backoffs = []
    for _ in range(3):
        shared.down_until = 0.0
        shared._failed("errors")
        backoffs.append(shared.backoff)
    assert backoffs == [0.25, 0.4, 0.4]
    wire = answer_wire("www.example.com.", "192.0.2.1", ttl=300)
    value = pack(MsgEntry(wire, 50.0, 0.0), 1_000_000.0, 50.0)
    assert len(value) > 60
    unpack(value, msg_key("www.example.com."), 1000.0, 1.0, 0.0, 86400)
    with pytest.raises(BadEntry):
        unpack(value, msg_key("www.example.com."), 1000.0, 1.0, 0.0, 86400, 60)


def test_only_shareable_answers_are_written(lab, redis_server):
    """offer(): TTL-0, SERVFAIL, CD and stale answers are not written; a fresh NOERROR is,
    with a Redis expiry of its remaining TTL."""
    from corenet.loop import new_event_loop

    import resolver
    from resolver.cache.shared import SharedCache
    from resolver.cache.store import store_message

    loop = new_event_loop()
    try:
        r = resolver.Resolver(root_hints=lab.root_hints, port=lab.port,
                              do_not_query_localhost=False)
        shared = SharedCache.from_config(in_process_config(redis_server))
        msgs = r.cache.messages
        now = r.clock()
        cases = {
            "ttl0.example.com.": (answer_wire("ttl0.example.com.", "192.0.2.9", ttl=0), 0),
            "fail.example.com.": (answer_wire("fail.example.com.", "", rcode=2), 0),
            "cd.example.com.": (answer_wire("cd.example.com.", "192.0.2.9"), 4),
            "old.example.com.": (answer_wire("old.example.com.", "192.0.2.9"), 0),
            "good.example.com.": (answer_wire("good.example.com.", "192.0.2.9", ttl=120), 0),
        }
        for name, (wire, variant) in cases.items():
            store_message(msgs, msg_key(name, variant=variant), wire,
                          now - 5 if name.startswith("old") else now)
            shared.offer(r, loop, msg_key(name, variant=variant), now)

        async def settle():
            while shared.writes:
                await asyncio.sleep(0.01)
            await shared.close()
            await r.close()
        loop.run_until_complete(asyncio.wait_for(settle(), 10))
    finally:
        loop.close()
    c = redis_server.client()
    assert c.dbsize() == 1 and shared.counters["writes"] == 1
    key = shared_key(SEED.encode(), msg_key("good.example.com."))
    assert c.get(key)[HEADER.size:] == cases["good.example.com."][0]
    assert 110_000 < c.pttl(key) <= 120_000


# ---- daemons sharing answers ---------------------------------------------------------------
def test_an_answer_resolved_by_one_daemon_is_a_redis_hit_for_another(
        daemons, redis_server, tmp_path):
    conf = write_config(tmp_path / "shared.toml", redis_server)
    a = daemons("a", "--config", conf)
    b = daemons("b", "--config", write_config(tmp_path / "tcp.toml", redis_server,
                                               unix=False))
    first = a.ask("www.example.com.")
    assert first.rcode() == dns.rcode.NOERROR
    wait_for(lambda: redis_server.keys() == 1, what="the write to Redis")
    assert a.stats()["shared_cache"]["writes"] == 1

    before = b.stats()
    got = b.ask("www.example.com.")
    after = b.stats()
    assert sorted(r.to_text() for r in got.answer[0]) == sorted(
        r.to_text() for r in first.answer[0])
    assert got.answer[0].ttl <= first.answer[0].ttl
    assert after["engine"]["upstream_queries"] == before["engine"]["upstream_queries"] == 0
    assert after["shared_cache"]["hits"] == 1
    # now in B's local cache: answered without asking Redis again
    b.ask("www.example.com.")
    again = b.stats()
    assert again["shared_cache"]["lookups"] == after["shared_cache"]["lookups"]
    assert again["engine"]["cache_hits"] == after["engine"]["cache_hits"] + 1
    assert again["hit_rates"]["shared"] == 1.0
    text = b.metrics()
    assert 'corenet_resolver_shared_cache_events_total{event="hits"} 1' in text
    assert 'corenet_resolver_cache_hit_ratio{cache="shared"} 1' in text


def test_a_password_and_a_logical_db_as_unbound_s_cachedb_takes_them(daemons, lab, tmp_path):
    """redis-server-password and redis-logical-db, given in an unbound.conf's cachedb:
    clause: each connection authenticates and selects the database, so two daemons share
    answers through database 3 of a Redis that requires the password, and database 0 stays
    empty; with a wrong password Redis is counted as failing and the daemon resolves all
    the same, the refusal in its log."""
    redis = Redis(tmp_path / "redis", password="s3cret pass").start()
    try:
        def unbound_conf(name: str, password: str) -> str:
            path = tmp_path / f"{name}.conf"
            path.write_text('server:\n    module-config: "cachedb iterator"\n'
                            f'cachedb:\n    backend: redis\n    secret-seed: "{SEED}"\n'
                            f"    redis-server-host: 127.0.0.1\n"
                            f"    redis-server-port: {redis.port}\n"
                            f'    redis-server-password: "{password}"\n'
                            "    redis-logical-db: 3\n    redis-expire-records: no\n")
            return str(path)
        a = daemons("a", "-c", unbound_conf("a", "s3cret pass"))
        b = daemons("b", "-c", unbound_conf("b", "s3cret pass"))
        assert "not carried over" not in a.log_text(), a.log_text()
        first = a.ask("www.example.com.")
        assert first.rcode() == dns.rcode.NOERROR
        wait_for(lambda: redis.client(db=3).dbsize() == 1, what="the write to database 3")
        assert redis.client(db=0).dbsize() == 0
        got = b.ask("www.example.com.")
        assert b.stats()["shared_cache"]["hits"] == 1
        assert got.answer[0].to_rdataset() == first.answer[0].to_rdataset()
        wrong = daemons("wrong", "-c", unbound_conf("wrong", "not it"))
        assert wrong.ask("www.example.net.").rcode() == dns.rcode.NOERROR
        stats = wrong.stats()["shared_cache"]
        assert stats["hits"] == 0 and stats["errors"] >= 1, stats
        wait_for(lambda: "refused the connection's opening" in wrong.log_text(),
                 what="the refusal logged")
    finally:
        redis.stop()


def test_a_local_alias_target_resolved_by_another_daemon_is_a_redis_hit(
        daemons, redis_server, tmp_path):
    """A redirect zone's CNAME: its target's answer comes from Redis, the CNAME before it."""
    a = daemons("a", "--config", write_config(tmp_path / "a.toml", redis_server))
    b = daemons("b", "--config", write_config(
        tmp_path / "b.toml", redis_server, local_zone='["safe.test. redirect"]',
        local_data='["safe.test. CNAME www.example.com."]'))
    first = a.ask("www.example.com.")
    wait_for(lambda: redis_server.keys() == 1, what="the write to Redis")
    got = b.ask("x.safe.test.")
    assert got.rcode() == dns.rcode.NOERROR and got.flags & dns.flags.AA
    assert got.question[0].name.to_text() == "x.safe.test."
    assert [rrset.name.to_text() for rrset in got.answer] == ["x.safe.test.",
                                                             "www.example.com."]
    assert sorted(r.to_text() for r in got.answer[1]) == sorted(
        r.to_text() for r in first.answer[0])
    stats = b.stats()
    assert stats["shared_cache"]["hits"] == 1 and stats["engine"]["upstream_queries"] == 0


def test_another_secret_seed_shares_nothing(daemons, redis_server, tmp_path):
    a = daemons("a", "--config", write_config(tmp_path / "a.toml", redis_server))
    b = daemons("b", "--config", write_config(tmp_path / "b.toml", redis_server,
                                               seed="other"))
    a.ask("www.example.com.")
    wait_for(lambda: redis_server.keys() == 1, what="the write to Redis")
    assert b.ask("www.example.com.").rcode() == dns.rcode.NOERROR
    s = b.stats()
    assert s["shared_cache"]["hits"] == 0 and s["shared_cache"]["misses"] == 1
    assert s["engine"]["upstream_queries"] > 0


def test_planted_entries_keep_their_status_and_bad_ones_are_counted(
        daemons, redis_server, tmp_path):
    """What is read is trusted no further than its stored status: an insecure entry with AD
    in its wire is served without AD; a secure one with it. A value that answers another
    question is dropped, counted, and the name resolved."""
    c = redis_server.client()
    seed = SEED.encode()
    for name, status in (("plain.example.com.", INSECURE), ("signed.example.com.", SECURE)):
        wire = answer_wire(name, "203.0.113.7", ad=True, edns=True)
        key = shared_key(seed, msg_key(name, variant=3))        # EDNS + DO
        c.set(key, HEADER.pack(VERSION, status, time.time(), 300, 300) + wire)
    c.set(shared_key(seed, msg_key("www.example.com.")),
          HEADER.pack(VERSION, INSECURE, time.time(), 300, 0xFFFFFFFF)
          + answer_wire("evil.example.com.", "203.0.113.66"))
    d = daemons("d", "--config", write_config(tmp_path / "d.toml", redis_server))

    def ask_dnssec(name):
        q = dns.message.make_query(name, "A", want_dnssec=True)
        return d.ask(q)

    plain, signed = ask_dnssec("plain.example.com."), ask_dnssec("signed.example.com.")
    for r in (plain, signed):
        assert r.answer and r.answer[0][0].to_text() == "203.0.113.7"
    assert not plain.flags & dns.flags.AD
    assert signed.flags & dns.flags.AD
    www = d.ask("www.example.com.")
    assert {r.to_text() for r in www.answer[0]} == {"192.0.2.1", "192.0.2.11"}
    s = d.stats()["shared_cache"]
    assert s["hits"] == 2 and s["bad"] == 1


def test_servfail_and_cd_answers_are_not_written(daemons, redis_server, tmp_path):
    d = daemons("d", "--config", write_config(tmp_path / "d.toml", redis_server))
    assert d.ask("loop1.example.com.").rcode() == dns.rcode.SERVFAIL
    q = dns.message.make_query("www.example.com.", "A")
    q.flags |= dns.flags.CD
    assert d.ask(q).rcode() == dns.rcode.NOERROR
    time.sleep(0.3)
    assert redis_server.keys() == 0
    d.ask("www.example.com.")
    wait_for(lambda: redis_server.keys() == 1, what="the plain answer's write")


# ---- failure is not an outage -----------------------------------------------------------------
def test_redis_down_then_back_the_daemon_resolves_throughout(daemons, redis_server, tmp_path):
    conf = write_config(tmp_path / "d.toml", redis_server, unix=False, timeout_ms=100)
    redis_server.stop()
    d = daemons("d", "--config", conf)
    t0 = time.monotonic()
    for i in range(5):
        r = d.ask(f"h{i:03d}.bulk.net.", timeout=5)
        assert r.rcode() == dns.rcode.NOERROR and r.answer
    assert time.monotonic() - t0 < 5
    s = d.stats()["shared_cache"]
    assert s["errors"] + s["timeouts"] >= 1 and s["hits"] == 0
    assert s["errors"] + s["timeouts"] + s["skipped"] + s["misses"] >= 5

    redis_server.start()                              # same port: reconnects after a back-off
    deadline = time.monotonic() + 10
    i = 10
    while redis_server.keys() == 0 and time.monotonic() < deadline:
        assert d.ask(f"h{i:03d}.bulk.net.", timeout=5).rcode() == dns.rcode.NOERROR
        i += 1
        time.sleep(0.05)
    assert redis_server.keys() >= 1
    assert d.stats()["shared_cache"]["recoveries"] >= 1
    assert d.alive()


def test_redis_frozen_lookups_time_out_within_budget(daemons, redis_server, tmp_path):
    d = daemons("d", "--config", write_config(tmp_path / "d.toml", redis_server,
                                               timeout_ms=50))
    d.ask("www.example.com.")                              # warm the delegations
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        r = d.ask("h100.bulk.net.", timeout=5)
        took = time.monotonic() - t0
        assert r.rcode() == dns.rcode.NOERROR and r.answer
        assert took < 3.0, took  # Redis's 50 ms budget, not the 5 s of a frozen server
        s = d.stats()["shared_cache"]
        assert s["timeouts"] >= 1
        t0 = time.monotonic()                              # in a back-off: Redis skipped
        assert d.ask("h101.bulk.net.", timeout=5).rcode() == dns.rcode.NOERROR
        assert d.stats()["shared_cache"]["skipped"] >= 1
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)


# ---- workers on one host ------------------------------------------------------------------------
def test_workers_share_answers_through_redis(daemons, redis_server, tmp_path):
    """--workers 2: a name resolved by one worker is a Redis hit for the other, with no
    second upstream query; the parent's stats show each worker's figures."""
    d = daemons("d", "--workers", "2", "--config",
                write_config(tmp_path / "d.toml", redis_server))
    assert d.ask("www.example.com.").rcode() == dns.rcode.NOERROR
    wait_for(lambda: redis_server.keys() == 1, what="the write to Redis")
    s0 = d.stats()
    upstream = s0["engine"]["upstream_queries"]
    assert upstream > 0
    for _ in range(24):            # fresh source ports: SO_REUSEPORT spreads them over both
        r = d.ask("www.example.com.")
        assert {x.to_text() for x in r.answer[0]} == {"192.0.2.1", "192.0.2.11"}
    s = d.stats()
    assert s["engine"]["upstream_queries"] == upstream
    per = s["per_worker"]
    assert len(per) == 2 and all(w["client_queries"] > 0 for w in per), per
    resolved = [w for w in per if w["upstream_queries"] > 0]
    other = [w for w in per if w["upstream_queries"] == 0]
    assert len(resolved) == 1 and len(other) == 1, per
    assert other[0]["shared_hits"] == 1 and resolved[0]["shared_hits"] == 0
    assert s["shared_cache"]["hits"] == 1 and s["shared_cache"]["writes"] == 1
    assert 0 < other[0]["hit_rates"]["local"] < 1 and other[0]["hit_rates"]["shared"] == 1.0
    text = d.metrics()
    assert 'corenet_resolver_worker_cache_hit_ratio{worker="0",cache="shared"}' in text


# ---- serve-stale ------------------------------------------------------------------------------
@pytest.mark.parametrize("store_expired", [True, False])
def test_expired_entry_is_served_stale_only_when_resolving_fails(
        daemons, redis_server, tmp_path, store_expired):
    """With cachedb-store-expired, an entry found expired fills the local cache as a stale
    answer: loop1.example.com. cannot be resolved (a CNAME loop), so it is served, with the
    stale TTL; without the setting the same entry is not used."""
    c = redis_server.client()
    wire = answer_wire("loop1.example.com.", "203.0.113.9", ttl=300)
    c.set(shared_key(SEED.encode(), msg_key("loop1.example.com.")),
          HEADER.pack(VERSION, INSECURE, time.time() - 400, 300, 0xFFFFFFFF) + wire)
    d = daemons("d", "--config", write_config(
        tmp_path / "d.toml", redis_server,
        cachedb_store_expired="true" if store_expired else "false"))
    r = d.ask("loop1.example.com.")
    s = d.stats()["shared_cache"]
    if store_expired:
        assert r.rcode() == dns.rcode.NOERROR and r.answer[0][0].to_text() == "203.0.113.9"
        assert r.answer[0].ttl == 30
        assert s["stale"] == 1 and s["hits"] == 0
    else:
        assert r.rcode() == dns.rcode.SERVFAIL
        assert s["stale"] == 0 and s["misses"] == 1


def test_a_look_up_that_breaks_still_resolves(lab, redis_server):
    """The miss path in process (resolution.start with resolver.shared set): a look-up
    that fails for a reason other than Redis is counted and the name resolved."""
    from corenet.loop import new_event_loop

    import resolver
    from resolver.cache.shared import SharedCache
    from resolver.resolution import start

    redis_server.client().set(shared_key(SEED.encode(), msg_key("www.example.com.")),
                              b"x" * 40)
    loop = new_event_loop()
    try:
        r = resolver.Resolver(root_hints=lab.root_hints, port=lab.port,
                              do_not_query_localhost=False)
        shared = r.shared = SharedCache.from_config(in_process_config(redis_server))

        def broken(*args):
            raise RuntimeError("a bug in fill")
        shared.fill = broken
        q = dns.message.make_query("www.example.com.", "A", use_edns=False).to_wire()

        async def go():
            fut = loop.create_future()
            d = start(r, q, lambda _d, out: fut.done() or fut.set_result(out), loop)
            assert type(d) is not bytes and not d.finished
            out = await asyncio.wait_for(fut, 10)
            while shared.writes:
                await asyncio.sleep(0.01)
            await shared.close()
            await r.close()
            return out
        out = dns.message.from_wire(loop.run_until_complete(go()))
    finally:
        loop.close()
    assert out.rcode() == dns.rcode.NOERROR
    assert {x.to_text() for x in out.answer[0]} == {"192.0.2.1", "192.0.2.11"}
    assert shared.counters["errors"] == 1 and shared.counters["lookups"] == 1
    assert shared.counters["writes"] == 1          # the resolved answer replaced the bad one
    value = redis_server.client().get(shared_key(SEED.encode(), msg_key("www.example.com.")))
    assert value[:1] == bytes([VERSION])


def test_a_prefetched_answer_is_written_again(lab, redis_server):
    """A popular entry refreshed before it expires (Resolver.refresh) is written to Redis
    too, so the other processes do not fall back to resolving it when the first copy
    expires."""
    from corenet.loop import new_event_loop

    import resolver
    from resolver.cache.shared import SharedCache
    from resolver.resolution import start

    key = msg_key("www.example.com.")
    rkey = shared_key(SEED.encode(), key)
    c = redis_server.client()
    loop = new_event_loop()
    try:
        r = resolver.Resolver(root_hints=lab.root_hints, port=lab.port,
                              do_not_query_localhost=False)
        shared = r.shared = SharedCache.from_config(in_process_config(redis_server))
        q = dns.message.make_query("www.example.com.", "A", use_edns=False).to_wire()

        async def settle():
            deadline = time.monotonic() + 10
            while shared.writes or r.resolutions:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.01)

        async def go():
            fut = loop.create_future()
            start(r, q, lambda _d, out: fut.done() or fut.set_result(out), loop)
            await asyncio.wait_for(fut, 10)
            await settle()
            assert c.exists(rkey)
            c.delete(rkey)
            e = r.cache.messages.table[key]
            r.refresh(key, e)
            await settle()
            assert not e.prefetching
            await shared.close()
            await r.close()
        loop.run_until_complete(go())
    finally:
        loop.close()
    assert shared.counters["writes"] == 2
    assert c.get(rkey)[HEADER.size:][12:] == r.cache.messages.table[key].wire[12:]
