"""Local zones answer queries with RD clear, as Unbound does, through the daemon's server in
the test's own process on every loop kind (the C listener and the asyncio fallback), over
UDP and TCP; what is not local data is still no cache probe for a client outside
allow-snoop."""
from __future__ import annotations

import dns.asyncquery
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import pytest

from ports import free_port
from resolver.daemon.config import build
from resolver.daemon.server import Server
from resolver.zones import LocalZone, Zones

ZONES = Zones(local=[
    LocalZone("lan.", "static", ("lan. SOA ns.lan. admin.lan. 1 3600 600 86400 120",
                                 "router.lan. 60 A 10.0.0.1")),
    LocalZone("ads.test.", "redirect", ("ads.test. 60 A 10.0.0.9",)),
    LocalZone("blocked.test.", "always_nxdomain"),
    LocalZone("refused.test.", "refuse"),
    LocalZone("denied.test.", "deny"),
    LocalZone("example.com.", "transparent", ("printer.example.com. 60 A 10.0.0.5",)),
])


async def _serve(lab) -> Server:
    import resolver

    cfg = build(None, {"listen": [f"127.0.0.1:{free_port()}"], "root_hints": None,
                       "upstream_port": lab.port, "do_not_query_localhost": False})
    r = resolver.Resolver(lab.root_hints, port=lab.port, cache_size=cfg.cache_size,
                          do_not_query_localhost=False, zones=ZONES)
    s = Server(cfg, resolver=r)
    await s.start()
    return s


def rd_clear(name: str, rdtype: str = "A"):
    q = dns.message.make_query(name, rdtype)
    q.flags &= ~dns.flags.RD
    return q


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_local_zones_answer_rd_clear(run, lab, loop_kind, tcp):
    async def go():
        s = await _serve(lab)
        host, port = s.addresses[0]

        async def ask(q, timeout=5.0):
            if tcp:
                return await dns.asyncquery.tcp(q, host, port=port, timeout=timeout)
            return await dns.asyncquery.udp(q, host, port=port, timeout=timeout)

        try:
            # a recursive query first: what it caches is still no answer for RD clear
            r = await ask(dns.message.make_query("www.example.com.", "A"))
            assert r.rcode() == dns.rcode.NOERROR and r.answer
            before = s.stats()["engine"]["upstream_queries"]
            cases = [("router.lan.", dns.rcode.NOERROR, {"10.0.0.1"}),
                     ("nope.lan.", dns.rcode.NXDOMAIN, set()),
                     ("x.ads.test.", dns.rcode.NOERROR, {"10.0.0.9"}),
                     ("x.blocked.test.", dns.rcode.NXDOMAIN, set()),
                     ("x.refused.test.", dns.rcode.REFUSED, set()),
                     ("printer.example.com.", dns.rcode.NOERROR, {"10.0.0.5"}),
                     ("www.example.com.", dns.rcode.REFUSED, set())]     # no snooping
            for name, rcode, data in cases:
                q = rd_clear(name)
                r = await ask(q)
                assert r.id == q.id and r.rcode() == rcode, name
                assert not r.flags & dns.flags.RD, name
                assert {rd.to_text() for rr in r.answer for rd in rr} == data, name
            with pytest.raises(dns.exception.Timeout):
                await ask(rd_clear("x.denied.test."), timeout=0.5)
            stats = s.stats()
            assert stats["engine"]["upstream_queries"] == before, "RD clear never recurses"
            assert stats["engine"]["local_answers"] >= 6
            assert stats["refused_acl"] == 1          # the cache probe
        finally:
            await s.stop(1.0)

    run(go(), timeout=30)


@pytest.mark.parametrize("rd", [True, False], ids=["rd", "rd-clear"])
def test_deny_zone_drops_free_their_tcp_slot(run, lab, loop_kind, rd):
    """A query a deny zone drops gets no answer, and the TCP connection it came on does not
    keep it as a query in flight: more dropped queries than ``tcp-max-inflight`` on one
    connection, and an ordinary query after them is still answered."""
    import asyncio
    import struct

    async def go():
        s = await _serve(lab)
        host, port = s.addresses[0]
        limit = s.cfg.tcp_max_inflight
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in range(limit + 8):
                q = dns.message.make_query(f"x{i}.denied.test.", "A")
                if not rd:
                    q.flags &= ~dns.flags.RD
                wire = q.to_wire()
                writer.write(struct.pack("!H", len(wire)) + wire)
            q = dns.message.make_query("router.lan.", "A")
            wire = q.to_wire()
            writer.write(struct.pack("!H", len(wire)) + wire)
            await writer.drain()
            size = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))[0]
            r = dns.message.from_wire(await asyncio.wait_for(reader.readexactly(size), 5))
            assert r.id == q.id and r.rcode() == dns.rcode.NOERROR     # the only answer
            assert {rd.to_text() for rr in r.answer for rd in rr} == {"10.0.0.1"}
        finally:
            writer.close()
            await s.stop(1.0)

    run(go(), timeout=30)
