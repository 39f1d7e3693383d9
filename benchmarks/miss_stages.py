"""Where the latency of a miss goes, corenet-resolver beside Unbound, stage by stage (a
measuring script, not a pytest benchmark): the servers, lab and pinning of
``test_daemon.py``; each server asked, one at a time, for ``www`` of zones it has not seen
(a referral from the TLD, then the answer: two upstream queries), and every datagram on
``lo`` timestamped by the kernel as it arrives (an ``AF_PACKET`` socket with
``SO_TIMESTAMPNS``). The medians of the stages: the client's query to the first upstream
query, the authority's answer, the referral to the second query, the authority's answer,
the last reply to the answer to the client.

    unshare -n sh -c 'ip link set lo up && .venv/bin/python benchmarks/miss_stages.py'

Needs root (the packet socket), what ``test_daemon.py`` needs (nsd, unbound, port 53 on the
lab addresses), and a network namespace of its own so that nothing else is on ``lo``.
"""
from __future__ import annotations

import argparse
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests" / "resolver"), str(HERE.parent / "tests")]

import dns.message  # noqa: E402
import dns.query  # noqa: E402
import test_daemon as td  # noqa: E402
from dnslab import many_zone_names  # noqa: E402
from procs import sigterm_as_interrupt  # noqa: E402

SO_TIMESTAMPNS = 35     # <asm-generic/socket.h>; Python's socket module does not name it
STAGES = ("query to first upstream query", "the authority (referral)",
          "referral to second upstream query", "the authority (answer)",
          "last reply to the answer")


class Sniffer:
    """Every IPv4 UDP datagram arriving on ``lo``: (kernel timestamp, source port,
    destination port), in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
        self.sock.bind(("lo", 0))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.settimeout(0.2)
        self.seen: list[tuple[float, int, int]] = []
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(2048, 64)
            except socket.timeout:
                continue
            if addr[2] == socket.PACKET_OUTGOING or len(data) < 28 or data[9] != 17:
                continue                    # lo shows each datagram leaving and arriving
            stamps = [d for _level, kind, d in anc if kind == SO_TIMESTAMPNS]
            if not stamps:
                continue
            sec, ns = struct.unpack("qq", stamps[0][:16])
            ihl = (data[0] & 15) * 4
            sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
            self.seen.append((sec + ns / 1e9, sport, dport))

    def close(self) -> None:
        self.running = False
        self.thread.join(5)
        self.sock.close()


def stages(sniffer: Sniffer, port: int, names: list[str]) -> list[list[float]]:
    """Each name asked alone; its six datagrams' gaps in µs (names whose exchange was not
    exactly query, two upstream exchanges and the answer are left out)."""
    out = []
    for name in names:
        sniffer.seen.clear()
        dns.query.udp(dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5)
        time.sleep(0.03)                    # the last datagrams reach the sniffer
        seen = sorted(sniffer.seen)
        if len(seen) == 6 and seen[0][2] == port and seen[-1][1] == port:
            out.append([(b[0] - a[0]) * 1e6 for a, b in zip(seen, seen[1:])])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    names = [n for n, _ in many_zone_names()]
    ap.add_argument("-n", type=int, default=len(names) - 1,
                    help=f"new zones asked of each server (at most {len(names) - 1})")
    a = ap.parse_args()
    if not 0 < a.n < len(names):
        ap.error(f"the lab has {len(names) - 1} zones to ask")
    sigterm_as_interrupt()         # a terminated run still stops its lab and servers
    tmp = Path(tempfile.mkdtemp())
    lab = td.lab_on_port_53(tmp / "lab")
    sniffer = Sniffer()
    try:
        s = td.Servers(lab, tmp / "servers")
        try:
            rows = {}
            for which, port, _pid in s.targets():
                dns.query.udp(dns.message.make_query(names[0], "A"), "127.0.0.1", port=port,
                              timeout=5)       # the root and the TLD known: every miss is two hops
                got = stages(sniffer, port, names[1:a.n + 1])
                rows[which] = [statistics.median(c) for c in zip(*got)] if got else None
                print(f"{which}: {len(got)} of {a.n} misses measured", file=sys.stderr)
        finally:
            s.stop()
    finally:
        sniffer.close()
        lab.stop()
    ours, theirs = rows["corenet-resolver"], rows["unbound"]
    print(f"{'median, µs':36s} {'corenet-resolver':>17s} {'Unbound':>8s}")
    for i, stage in enumerate(STAGES):
        print(f"{stage:36s} {ours[i]:17.0f} {theirs[i]:8.0f}")
    print(f"{'the whole miss':36s} {sum(ours):17.0f} {sum(theirs):8.0f}")


if __name__ == "__main__":
    main()
