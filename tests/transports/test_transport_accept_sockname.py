"""The sockname of an accepted TCP connection is its socket's own local address, whether
the listener is bound to one address (the acceptor gives the listener's) or to a wildcard
(the connection asks its socket)."""
from __future__ import annotations

import asyncio
import socket

import pytest


@pytest.mark.parametrize("bind, connect", [("127.0.0.1", "127.0.0.1"),
                                           ("0.0.0.0", "127.0.0.1"),
                                           ("0.0.0.0", "127.0.0.2"),
                                           ("::1", "::1")])
def test_an_accepted_connection_names_its_own_local_address(loop, run, bind, connect):
    if ":" in bind and not socket.has_ipv6:
        pytest.fail("no IPv6 support in this Python")
    accepted = []

    class Keep(asyncio.Protocol):
        def connection_made(self, transport):
            accepted.append(transport)

    async def main():
        srv = await loop.create_server(Keep, bind, 0)
        port = srv.sockets[0].getsockname()[1]
        results = []
        for _ in range(2):
            tr, _ = await loop.create_connection(asyncio.Protocol, connect, port)
            for _ in range(500):
                if len(accepted) > len(results):
                    break
                await asyncio.sleep(0.001)
            got = accepted[len(results)]
            results.append((got.get_extra_info("sockname"),
                            got.get_extra_info("socket").getsockname(),
                            tr.get_extra_info("peername")))
            tr.close()
            got.close()
        srv.close()
        await srv.wait_closed()
        return port, results

    port, results = run(main())
    for name, real, client_sees in results:
        assert name == real == client_sees
        assert name[0] == connect and name[1] == port
