"""``corenet-resolver flush`` with a shared cache: a name's entries leave Redis too (every
type the daemon holds and the common ones, in each variant), a flush of everything leaves
Redis alone, and a Redis that cannot be reached fails the command after the local flush."""
from __future__ import annotations

import asyncio
import time

import dns.name
import dns.rcode

from daemon_proc import cli
from resolver.cache.shared import HEADER, INSECURE, VERSION, shared_key
from test_shared_cache import (SEED, answer_wire, daemons, msg_key,  # noqa: F401
                               wait_for, write_config)


def key(name: str, rdtype: str = "A", variant: int = 0) -> bytes:
    return shared_key(SEED.encode(), msg_key(name, rdtype, variant))


def test_flush_name_deletes_its_entries_from_redis(daemons, redis_server, tmp_path):
    conf = write_config(tmp_path / "shared.toml", redis_server)
    a = daemons("a", "--workers", "2", "--config", conf, ready="ready: 2 workers")
    b = daemons("b", "--config", conf)
    c = redis_server.client()
    a.ask("www.example.com.")                            # A, no EDNS
    a.ask("www.example.com.", edns=True)                 # A, EDNS
    a.ask("www.example.com.", "LOC")                     # NODATA: a type held, not common
    a.ask("www.example.net.")                            # another name: stays
    wait_for(lambda: redis_server.keys() == 4, what="the four writes")
    assert c.exists(key("www.example.com.", "LOC"))
    # an MX entry only another host holds: a common type, deleted all the same
    c.set(key("www.example.com.", "MX"), HEADER.pack(VERSION, INSECURE, time.time(), 300, 0xFFFFFFFF)
          + answer_wire("www.example.com.", "192.0.2.1"))

    r = cli("flush", "www.example.com.", "--control", a.control)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["ok", "deleted 4 entries from the shared cache"], r.stdout
    for k in (key("www.example.com."), key("www.example.com.", variant=1),
              key("www.example.com.", "LOC"), key("www.example.com.", "MX")):
        assert not c.exists(k)
    assert c.exists(key("www.example.net.")) and redis_server.keys() == 1

    # another daemon finds nothing in Redis and resolves the name
    got = b.ask("www.example.com.")
    assert got.rcode() == dns.rcode.NOERROR and got.answer
    s = b.stats()
    assert s["shared_cache"]["hits"] == 0 and s["shared_cache"]["misses"] == 1
    assert s["engine"]["upstream_queries"] > 0
    # and the flushed daemon forgot it locally: asked again, it looks in Redis again
    before = a.stats()["shared_cache"]["lookups"]
    for _ in range(4):                  # fresh source ports: both workers see it
        assert a.ask("www.example.com.").rcode() == dns.rcode.NOERROR
    assert a.stats()["shared_cache"]["lookups"] > before


def test_flush_everything_leaves_redis_alone(daemons, redis_server, tmp_path):
    d = daemons("d", "--config", write_config(tmp_path / "d.toml", redis_server))
    d.ask("www.example.com.")
    wait_for(lambda: redis_server.keys() == 1, what="the write")
    r = cli("flush_zone", ".", "--control", d.control)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok removed "), r.stdout
    assert redis_server.keys() == 1
    d.ask("www.example.com.")                             # local cache empty: a Redis hit
    assert d.stats()["shared_cache"]["hits"] == 1


def test_flush_name_with_redis_down_flushes_locally_and_fails(daemons, redis_server,
                                                              tmp_path):
    # the write before Redis stops must not time out on a loaded machine; once it has
    # stopped, its closed port refuses at once, whatever the timeout
    d = daemons("d", "--config", write_config(tmp_path / "d.toml", redis_server, unix=False,
                                               timeout_ms=2000))
    d.ask("www.example.com.")
    wait_for(lambda: redis_server.keys() == 1, what="the write")
    redis_server.stop()
    t0 = time.monotonic()
    r = cli("flush", "www.example.com.", "--control", d.control)
    assert time.monotonic() - t0 < 5
    assert r.returncode == 1
    assert "shared cache could not be reached" in r.stderr
    assert r.stdout.splitlines() == ["ok"]
    s = d.stats()
    upstream = s["engine"]["upstream_queries"]
    assert s["shared_cache"]["errors"] + s["shared_cache"]["timeouts"] >= 1
    assert d.ask("www.example.com.").rcode() == dns.rcode.NOERROR    # resolved again
    assert d.stats()["engine"]["upstream_queries"] > upstream


def test_a_write_pending_at_a_flush_does_not_outlive_it(lab, redis_server):
    """A write offered just before the flush does not land after it: it went out first on
    the one connection, so Redis does it before the delete, which removes it with what
    Redis had; forget no longer waits for it (not counted), and leaves other names' writes
    alone."""
    from corenet.loop import new_event_loop

    import resolver
    from resolver.cache.shared import SharedCache
    from resolver.cache.store import store_message
    from test_shared_cache import in_process_config

    c = redis_server.client()
    c.set(key("www.example.com.", "AAAA"), b"an older entry")
    loop = new_event_loop()
    try:
        r = resolver.Resolver(root_hints=lab.root_hints, port=lab.port,
                              do_not_query_localhost=False)
        shared = SharedCache.from_config(in_process_config(redis_server))
        now = r.clock()
        for name in ("www.example.com.", "www.example.net."):
            store_message(r.cache.messages, msg_key(name), answer_wire(name, "192.0.2.9"), now)
            shared.offer(r, loop, msg_key(name), now)
        assert len(shared.writes) == 2

        async def go():
            deleted = await shared.forget(r, dns.name.from_text("WWW.Example.COM.").to_wire())
            while shared.writes:
                await asyncio.sleep(0.01)
            await shared.close()
            await r.close()
            return deleted
        deleted = loop.run_until_complete(asyncio.wait_for(go(), 10))
    finally:
        loop.close()
    assert deleted == 2                                   # the A entry written, the AAAA
    assert not c.exists(key("www.example.com.")) and not c.exists(key("www.example.com.", "AAAA"))
    assert c.exists(key("www.example.net."))
    assert shared.counters["writes"] == 1
