"""A TLS handshake on corenet's loop and TLS transport with no application around it:
``loop.create_server(ssl=...)`` with a protocol that does nothing, the context made as in
``ssl_server.py``.

    python loop_server.py PORT CERT_CHAIN_PEM KEY_PEM  (listens on 127.0.0.1; stopped by a signal)
"""
import asyncio
import ssl
import sys

import corenet.loop


def main() -> None:
    port, pem, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pem, key)
    loop = corenet.loop.new_event_loop()
    loop.run_until_complete(loop.create_server(asyncio.Protocol, "127.0.0.1", port, ssl=ctx))
    loop.run_forever()


if __name__ == "__main__":
    main()
