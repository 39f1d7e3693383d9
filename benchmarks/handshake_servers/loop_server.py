"""A TLS handshake on corenet's loop and TLS transport with no application around it:
``loop.create_server(ssl=...)`` with a protocol that does nothing, the context
``ssl_server.py`` makes.

    python loop_server.py PORT CERT_CHAIN_PEM KEY_PEM  (listens on 127.0.0.1; stopped by a signal)
"""
import asyncio
import sys

import corenet.loop
from ssl_server import server_context      # this script's directory is on sys.path


def main() -> None:
    port, pem, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    loop = corenet.loop.new_event_loop()
    loop.run_until_complete(loop.create_server(asyncio.Protocol, "127.0.0.1", port,
                                               ssl=server_context(pem, key)))
    loop.run_forever()


if __name__ == "__main__":
    main()
