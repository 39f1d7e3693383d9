"""A TLS handshake with nothing around it, through CPython's ``ssl`` module: the loop of
``openssl_server.c`` with a blocking ``SSLSocket``, on the same OpenSSL with the same defaults.

    python ssl_server.py PORT CERT_CHAIN_PEM KEY_PEM   (listens on 127.0.0.1; stopped by a signal)
"""
import socket
import ssl
import sys


def server_context(pem: str, key: str) -> ssl.SSLContext:
    """TLS 1.2 at least, OpenSSL's defaults otherwise (as ``openssl_server.c`` sets them)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pem, key)
    return ctx


def main() -> None:
    port, pem, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    ctx = server_context(pem, key)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    while True:
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            # wrap_socket takes the descriptor over (and closes it when the handshake fails)
            with ctx.wrap_socket(conn, server_side=True) as tls:
                while tls.recv(4096):
                    pass
        except OSError:          # ssl.SSLError is one: a failed handshake or a reset peer
            pass


if __name__ == "__main__":
    main()
