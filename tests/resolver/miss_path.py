"""The daemon's miss path for tests that hold it to an oracle: one query through
``Resolver.start_miss`` (the shared cache first when the resolver has one, then Drive, the
message cache and the deferred store on the running loop), and a Redis second-level cache
to give such a resolver."""
from __future__ import annotations

import asyncio

import dns.flags
import dns.message


async def ask_miss(r, name: str, qtype: int, do: bool = True, cd: bool = False):
    """The response to one query, as a dnspython message, once any shared-cache write of
    it is done."""
    q = dns.message.make_query(name, qtype, want_dnssec=do)
    q.flags &= ~dns.flags.AD
    if cd:
        q.flags |= dns.flags.CD
    loop = asyncio.get_running_loop()
    fut = loop.create_future()
    d = r.start_miss(q.to_wire(), lambda _d, out: fut.done() or fut.set_result(out), loop)
    out = d if type(d) is bytes else await asyncio.wait_for(fut, 10)
    for _ in range(500):
        if r.shared is None or not r.shared.writes:
            break
        await asyncio.sleep(0.01)
    return dns.message.from_wire(out)


def shared_cache_factory(server):
    """A function making a SharedCache on the Redis ``server`` (``redis_proc.Redis``)."""
    from resolver.cache.shared import SharedCache
    from resolver.limits import Limits

    class Cfg:
        cachedb_secret_seed, redis_timeout, cachedb_store_expired = "seed", 500, True
        redis_server_path, redis_server_host, redis_server_port = server.socket, "", 0
        redis_server_password, redis_logical_db = None, 0
        limits = Limits()

    return lambda: SharedCache.from_config(Cfg)
