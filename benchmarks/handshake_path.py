"""Which part of a server's TLS 1.3 handshake sets the handshakes per second (a measuring
script, not a pytest benchmark).

``openssl s_time -new`` opens one connection after another, so its rate is a sum of waits:
some of the server's work is on that path and some runs while the client is busy. This
script finds how much of each part counts. It starts corenet ``create_server(ssl=)``
servers with nothing above TLS, identical except that each burns a fixed ``--burn`` µs of
CPU at one point of every handshake:

- ``before-flight``: when the ClientHello arrives, before OpenSSL answers it;
- ``after-flight``: in a callback of the same loop iteration, once the server's flight
  (ServerHello to Finished) has been sent;
- ``after-finished``: when the client's Finished has arrived and the handshake succeeds
  (where a server makes its application's connection);

and one that burns nothing. Each server is pinned to core 0 and ``s_time`` to core 1 (with
two cores or more); the servers are measured in turn, ``--rounds`` times. For each point it
prints the handshakes per second and the weight of that point: how many µs of ``s_time``'s
time per handshake each µs of the server's work there adds (1: all of it is waited for;
0: none).

    .venv/bin/python benchmarks/handshake_path.py [--burn 50] [--seconds 6] [--rounds 3]
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
POINTS = ["none", "before-flight", "after-flight", "after-finished"]


def serve(point: str, burn_us: float, pem: str, key: str) -> None:
    """A TLS server on 127.0.0.1 that burns ``burn_us`` at ``point``; prints its port."""
    import asyncio
    import socket
    import ssl

    import corenet
    from corenet import tls

    clock = time.perf_counter
    seconds = burn_us / 1e6

    def burn():
        end = clock() + seconds
        while clock() < end:
            pass

    class Burning(tls.SSLProtocol):
        reads = 0

        def buffer_updated(self, nbytes):
            self.reads += 1
            if self.reads == 1:
                if point == "before-flight":
                    burn()
                elif point == "after-flight":
                    self._loop.call_soon(burn)
            tls.SSLProtocol.buffer_updated(self, nbytes)

    class App(asyncio.Protocol):
        def connection_made(self, transport):       # once the handshake has finished
            if point == "after-finished":
                burn()

    loop = corenet.new_event_loop()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pem, key)
    lsock = socket.socket()
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(128)
    lsock.setblocking(False)
    # (loop, application, context, waiter, server_side, server_hostname,
    # call_connection_made, handshake timeout)
    loop.run_until_complete(loop.create_server(
        lambda: Burning(loop, App(), ctx, None, True, None, True, 10.0), sock=lsock))
    print(lsock.getsockname()[1], flush=True)
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--burn", type=float, default=50.0, help="µs burnt per handshake")
    ap.add_argument("--seconds", type=int, default=6, help="s_time's time per run")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--serve", nargs=4, metavar=("POINT", "BURN", "PEM", "KEY"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        point, burn_us, pem, key = args.serve
        serve(point, float(burn_us), pem, key)
        return
    sys.path.insert(0, HERE)
    from test_daemon import _pin
    from test_encrypted import OPENSSL, _handshakes
    from tls_handshake import make_certificate

    if OPENSSL is None:
        sys.exit("needs openssl (Debian package 'openssl') for s_time")

    env = {**os.environ, "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with tempfile.TemporaryDirectory() as tmp:
        pem, key = make_certificate(tmp)
        servers: dict[str, tuple[subprocess.Popen, int]] = {}
        try:
            for point in POINTS:
                burn_us = 0.0 if point == "none" else args.burn
                proc = subprocess.Popen(
                    [sys.executable, os.path.abspath(__file__), "--serve", point,
                     str(burn_us), pem, key], env=env, stdout=subprocess.PIPE, text=True)
                servers[point] = (proc, 0)        # stopped below even if it never starts
                servers[point] = (proc, int(proc.stdout.readline()))
                _pin(proc.pid)
            rates: dict[str, list[float]] = {p: [] for p in POINTS}
            for _ in range(args.rounds):
                for point, (proc, port) in servers.items():
                    rates[point].append(
                        _handshakes(port, proc.pid, "-new", args.seconds)["per_s"])
        finally:
            for proc, _ in servers.values():
                proc.terminate()
            for proc, _ in servers.values():
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    mean = {p: sum(v) / len(v) for p, v in rates.items()}
    base_period = 1e6 / mean["none"]
    print(f"{args.burn:g} µs burnt per handshake; s_time -new, {args.seconds} s x "
          f"{args.rounds} rounds")
    print(f"{'point':16s} {'handshakes/s':>12s} {'µs per handshake':>17s} {'weight':>7s}"
          "   rounds")
    for point in POINTS:
        period = 1e6 / mean[point]
        weight = "" if point == "none" else f"{(period - base_period) / args.burn:.2f}"
        runs = " ".join(f"{r:.0f}" for r in rates[point])
        print(f"{point:16s} {mean[point]:12.0f} {period:17.1f} {weight:>7s}   {runs}")


if __name__ == "__main__":
    main()
