"""The handshake of ``c_handshake.pyx`` (in C on corenet's loop) with, at its end, a Python
object made per connection that keeps the bookkeeping a DNS server's connection keeps: a
set of connections, a count per client, an idle timer, all undone when the peer has gone.

    python c_handshake_server.py --build DIR                  (compiles the extension into DIR)
    python c_handshake_server.py PORT CERT_CHAIN_PEM KEY_PEM  (with DIR on PYTHONPATH)

Listens on 127.0.0.1; stopped by a signal.
"""
import socket
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(directory: str) -> None:
    from Cython.Build import cythonize
    from setuptools import Extension, setup
    root = str(HERE.parent.parent)
    ext = Extension("c_handshake", [str(HERE / "c_handshake.pyx")],
                    libraries=["ssl", "crypto"])
    setup(ext_modules=cythonize([ext], include_path=[root], build_dir=directory, quiet=True),
          script_args=["build_ext", "--build-lib", directory, "--build-temp", directory, "-q"])


def main() -> None:
    import corenet.loop
    from c_handshake import serve

    port, pem, key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    loop = corenet.loop.new_event_loop()
    connections: set = set()
    by_client: dict = {}

    class Connection:
        def __init__(self) -> None:
            self.client = "127.0.0.1"
            connections.add(self)
            by_client[self.client] = by_client.get(self.client, 0) + 1
            self.timer = loop.call_later(10.0, self.idle)

        def idle(self) -> None:
            pass

        def connection_lost(self, exc) -> None:
            connections.discard(self)
            by_client[self.client] -= 1
            self.timer.cancel()

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(128)
    sock.setblocking(False)
    listener = serve(loop, sock, pem, key, Connection)
    try:
        loop.run_forever()
    finally:
        del listener


if __name__ == "__main__":
    if sys.argv[1:2] == ["--build"]:
        build(sys.argv[2])
    else:
        main()
