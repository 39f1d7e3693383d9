"""resolver.install(loop, r) against the lab: loop.getaddrinfo and create_connection resolve
lab names through the engine, on every loop kind."""
from __future__ import annotations

import asyncio
import socket

import dns.message
import dns.query
import pytest

from dnslab import zones as Z


def test_getaddrinfo_and_create_connection_go_through_the_resolver(run, loop, lab, lab_resolver):
    import resolver

    r = lab_resolver()
    resolver.install(loop, r, hosts=None, resolv_conf=None)   # the host's files stay out

    async def go():
        infos = await loop.getaddrinfo("www.example.com", 443, type=socket.SOCK_STREAM)
        got = {(fam, sa[0], sa[1]) for fam, _, _, _, sa in infos}
        assert got == {(socket.AF_INET, "192.0.2.1", 443), (socket.AF_INET, "192.0.2.11", 443),
                       (socket.AF_INET6, "2001:db8::1", 443)}
        infos = await loop.getaddrinfo("alias.example.com", "http", family=socket.AF_INET,
                                       type=socket.SOCK_STREAM, flags=socket.AI_CANONNAME)
        assert infos[0][3] == "www.example.com" and {i[4] for i in infos} == {
            ("192.0.2.1", 80), ("192.0.2.11", 80)}
        with pytest.raises(socket.gaierror):
            await loop.getaddrinfo("nope.example.com", 80)
        queries = r.stats.client_queries
        await loop.getaddrinfo("127.0.0.10", 80)  # numeric: never sent to DNS
        assert r.stats.client_queries == queries
        # ns1.example.com. is 127.0.0.10 in the lab, where NSD listens for TCP on the lab port
        reader, writer = await asyncio.open_connection("ns1.example.com", lab.port)
        try:
            assert writer.get_extra_info("peername")[0] == Z.EXAMPLE_COM_1
            wire = dns.message.make_query("example.com.", "SOA").to_wire()
            writer.write(len(wire).to_bytes(2, "big") + wire)
            n = int.from_bytes(await reader.readexactly(2), "big")
            resp = dns.message.from_wire(await reader.readexactly(n))
            assert resp.answer and resp.answer[0].name.to_text() == "example.com."
        finally:
            writer.close()

    run(go())
